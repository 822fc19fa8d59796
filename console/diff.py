"""``stressdeck diff RUN_A RUN_B``: is run B worse than run A, beyond the runs' own noise?

Each run's latest ``snapshot-N.json`` carries its metrics, its fault impact ledger
(:mod:`console.ledger`) and how much each figure varied from interval to interval while no fault
acted (``intervals``, :func:`console.timeline.interval_spread`). The diff compares

* every trend's p50, p95 and p99, every rate (error rates, check pass rates) and every counter's
  throughput (the median of its per-second interval figures, so a slow start-up does not read as
  lower throughput);
* every fault of B matched to one of A by action, target and time: the recovery time (the
  slowest key metric of the slowest group back to its baseline, see the ledger).

A figure is a **regression** when it got worse by more than ``max_regression`` (10%) *and* by
more than the noise: twice the combined interval spread of the two runs (relative to the
figure; p50's is p95's, the timeline keeps p95 and p99 per interval), at least a floor per unit (1 ms, half a percentage point, two sample
intervals of recovery). A change inside the noise is reported as noise, never as a regression.
Which direction is worse comes from the metric: latencies, failures, losses and drops up;
throughput and success rates down. The console's own figures (``console_*``) are the load
generator's, not the system's, and are left out.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from console import markdown
from console.metrics import format_value

__all__ = ["DiffError", "FaultChange", "FigureChange", "RunDiff", "diff_runs", "load_run"]

MAX_REGRESSION = 0.10
NOISE_SIGMAS = 2.0
# Metric names whose growth is bad even though they are rates or counters.
_BAD_UP = re.compile(r"fail|error|loss|lost|abnormal|drop|timeout|restart|crash", re.IGNORECASE)
_SKIP = re.compile(r"^(console_|faults_injected)")
_TREND_STATS = (("p(50)", "med", "p95"), ("p(95)", "p(95)", "p95"), ("p(99)", "p(99)", "p99"))


class DiffError(Exception):
    """A run directory without a snapshot, or a snapshot that is not one."""


@dataclass(frozen=True)
class FigureChange:
    metric: str
    figure: str  # "p(95)", "rate", "throughput"
    unit: str
    a: float | None
    b: float | None
    change: float | None  # relative, positive = worse
    noise: float  # in the figure's unit
    verdict: str  # "regression", "improvement", "noise", "same", "new", "gone"


@dataclass(frozen=True)
class FaultChange:
    action: str
    target: str
    t_a: float | None
    t_b: float | None
    recovery_a: float | None  # seconds; None: not back (or no ledger entry)
    recovery_b: float | None
    state_a: str
    state_b: str
    verdict: str  # "regression", "improvement", "noise", "only in A", "only in B", "not judged"


@dataclass(frozen=True)
class RunDiff:
    a: str
    b: str
    max_regression: float
    figures: tuple[FigureChange, ...]
    faults: tuple[FaultChange, ...]

    @property
    def regressions(self) -> int:
        verdicts = [f.verdict for f in self.figures] + [f.verdict for f in self.faults]
        return verdicts.count("regression")

    def to_json(self) -> dict[str, Any]:
        return {
            "a": self.a,
            "b": self.b,
            "max_regression": self.max_regression,
            "regressions": self.regressions,
            "figures": [asdict(f) for f in self.figures],
            "faults": [asdict(f) for f in self.faults],
        }


def load_run(path: Path) -> dict[str, Any]:
    """A run's newest snapshot: ``path`` is a run directory or a ``snapshot-N.json``."""
    if path.is_dir():
        snapshots = sorted(
            path.glob("snapshot-*.json"),
            key=lambda p: int(m.group(1)) if (m := re.search(r"-(\d+)\.json$", p.name)) else -1,
        )
        if not snapshots:
            raise DiffError(f"{path}: no snapshot-N.json in this directory (not a run?)")
        path = snapshots[-1]
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DiffError(f"{path}: {exc}") from exc
    if not isinstance(data, dict) or "metrics" not in data:
        raise DiffError(f"{path}: not a Stressdeck snapshot")
    return data


def _floor(unit: str) -> float:
    return {"ms": 1.0, "s": 0.001, "fraction": 0.005, "/s": 1.0, "bytes": 1024.0}.get(unit, 0.0)


def _spread(run: Mapping[str, Any], metric: str, stat: str) -> Mapping[str, float] | None:
    found = run.get("intervals", {}).get(f"run|{metric}|{stat}")
    return found if isinstance(found, Mapping) else None


def _relative_sd(run: Mapping[str, Any], metric: str, stat: str) -> float:
    spread = _spread(run, metric, stat)
    if not spread or not spread.get("median"):
        return 0.0
    return float(spread["sd"]) / abs(float(spread["median"]))


def _judge(
    metric: str,
    figure: str,
    unit: str,
    a: float | None,
    b: float | None,
    noise: float,
    higher_is_worse: bool,
    max_regression: float,
) -> FigureChange:
    if a is None or b is None:
        verdict = "same" if a is None and b is None else "new" if a is None else "gone"
        return FigureChange(metric, figure, unit, a, b, None, noise, verdict)
    worse = (b - a) if higher_is_worse else (a - b)
    change = worse / abs(a) if a else (math.inf if worse > 0 else -math.inf if worse < 0 else 0.0)
    if abs(b - a) <= noise:
        verdict = "noise" if b != a else "same"
    elif change > max_regression:
        verdict = "regression"
    elif change < -max_regression:
        verdict = "improvement"
    else:
        verdict = "noise"
    return FigureChange(
        metric, figure, unit, a, b, change if math.isfinite(change) else None, noise, verdict
    )


def _metrics(run: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {m["name"]: m for m in run.get("metrics", []) if not _SKIP.match(m["name"])}


def compare_metrics(
    a: Mapping[str, Any], b: Mapping[str, Any], max_regression: float
) -> list[FigureChange]:
    out: list[FigureChange] = []
    ma, mb = _metrics(a), _metrics(b)
    for name in [n for n in ma if n in mb]:
        kind, unit = ma[name]["type"], ma[name]["unit"]
        va, vb = ma[name]["values"], mb[name]["values"]
        if kind == "trend":
            if not (va.get("count") and vb.get("count")):
                continue
            for label, key, stat in _TREND_STATS:
                x, y = va.get(key), vb.get(key)
                rel = math.hypot(_relative_sd(a, name, stat), _relative_sd(b, name, stat))
                noise = max(_floor(unit), NOISE_SIGMAS * rel * max(abs(x or 0), abs(y or 0)))
                out.append(_judge(name, label, unit, x, y, noise, True, max_regression))
        elif kind == "rate":
            if not (va.get("count") and vb.get("count")):
                continue
            sa, sb = _spread(a, name, "rate"), _spread(b, name, "rate")
            sd = math.hypot(sa["sd"] if sa else 0.0, sb["sd"] if sb else 0.0)
            noise = max(_floor("fraction"), NOISE_SIGMAS * sd)
            up = bool(_BAD_UP.search(name))
            out.append(
                _judge(
                    name,
                    "rate",
                    "fraction",
                    va.get("rate"),
                    vb.get("rate"),
                    noise,
                    up,
                    max_regression,
                )
            )
        elif kind == "counter":
            sa, sb = _spread(a, name, "rate"), _spread(b, name, "rate")
            if not (va.get("count") or vb.get("count")):
                continue
            x = float(sa["median"]) if sa else va.get("rate")
            y = float(sb["median"]) if sb else vb.get("rate")
            sd = math.hypot(sa["sd"] if sa else 0.0, sb["sd"] if sb else 0.0)
            noise = max(_floor("/s"), NOISE_SIGMAS * sd)
            up = bool(_BAD_UP.search(name))
            out.append(_judge(name, "throughput", "/s", x, y, noise, up, max_regression))
    return out


def _recovery(entry: Mapping[str, Any]) -> tuple[float | None, str]:
    """The slowest key metric's time back (None when one was not back) and a state."""
    impacts = [i for i in entry.get("impacts", []) if i.get("state") != "no baseline"]
    if any(i.get("state") == "not back" for i in impacts):
        return None, "not back"
    if any(i.get("state") in ("watching", "run ended") for i in impacts):
        return None, "not judged"
    if not impacts:
        return None, "no baseline"
    return max(float(i.get("back_after") or 0.0) for i in impacts), "back"


def compare_faults(
    a: Mapping[str, Any], b: Mapping[str, Any], max_regression: float
) -> list[FaultChange]:
    unmatched = list(a.get("ledger", []))
    interval = max(float(a.get("sample_interval", 1.0) or 1.0), 1.0)
    floor = 2 * interval
    out: list[FaultChange] = []
    for fb in b.get("ledger", []):
        candidates = [
            fa
            for fa in unmatched
            if fa["action"] == fb["action"]
            and fa["target"] == fb["target"]
            and abs(fa["t"] - fb["t"]) <= max(2.0, 0.05 * fb["t"])
        ]
        rb, sb = _recovery(fb)
        if not candidates:
            out.append(
                FaultChange(
                    fb["action"], fb["target"], None, fb["t"], None, rb, "-", sb, "only in B"
                )
            )
            continue
        fa = min(candidates, key=lambda f: abs(f["t"] - fb["t"]))
        unmatched.remove(fa)
        ra, sa = _recovery(fa)
        if sa == "back" and sb == "not back":
            verdict = "regression"
        elif sa == "not back" and sb == "back":
            verdict = "improvement"
        elif ra is None or rb is None:
            verdict = "not judged" if "not judged" in (sa, sb) or sa != sb else "same"
        elif abs(rb - ra) <= floor:
            verdict = "noise" if rb != ra else "same"
        elif (rb - ra) / max(ra, 1e-9) > max_regression:
            verdict = "regression"
        elif (ra - rb) / max(ra, 1e-9) > max_regression:
            verdict = "improvement"
        else:
            verdict = "noise"
        out.append(
            FaultChange(fa["action"], fa["target"], fa["t"], fb["t"], ra, rb, sa, sb, verdict)
        )
    for fa in unmatched:
        ra, sa = _recovery(fa)
        out.append(
            FaultChange(fa["action"], fa["target"], fa["t"], None, ra, None, sa, "-", "only in A")
        )
    return out


def diff_runs(path_a: Path, path_b: Path, max_regression: float = MAX_REGRESSION) -> RunDiff:
    a, b = load_run(path_a), load_run(path_b)
    return RunDiff(
        str(path_a),
        str(path_b),
        max_regression,
        tuple(compare_metrics(a, b, max_regression)),
        tuple(compare_faults(a, b, max_regression)),
    )


_MARKS = {"regression": "❌ regression", "improvement": "✅ improvement"}


def _change(change: float | None) -> str:
    if change is None:
        return "-"
    if abs(change) < 0.0005:
        return "0.0%"
    return f"{change * 100:+.1f}% worse" if change > 0 else f"{-change * 100:.1f}% better"


def _seconds(value: float | None, state: str) -> str:
    return f"{value:.1f}s" if value is not None else state


def to_markdown(diff: RunDiff, *, all_figures: bool = False) -> str:
    """For a PR comment: the verdict, then every figure that changed beyond the noise (all with
    ``all_figures``), then every fault."""
    verdict = (
        f"❌ **{diff.regressions} regression(s)** beyond {diff.max_regression * 100:.0f}% and the noise"
        if diff.regressions
        else f"✅ no regression beyond {diff.max_regression * 100:.0f}% and the noise"
    )
    lines = ["## stressdeck diff", "", f"`{diff.a}` → `{diff.b}`", "", verdict, ""]
    shown: Sequence[FigureChange] = [
        f
        for f in diff.figures
        if all_figures or f.verdict in ("regression", "improvement", "new", "gone")
    ]
    quiet = len(diff.figures) - len(shown)
    if shown:
        lines += markdown.table(
            ["Metric", "Figure", "A", "B", "Change", "Noise", "Verdict"],
            [
                [
                    f.metric,
                    f.figure,
                    format_value(f.a, f.unit),
                    format_value(f.b, f.unit),
                    _change(f.change),
                    f"±{format_value(f.noise, f.unit)}",
                    _MARKS.get(f.verdict, f.verdict),
                ]
                for f in shown
            ],
        )
        lines.append("")
    if quiet:
        lines += [
            f"{quiet} more figure(s) within the noise or the {diff.max_regression * 100:.0f}% margin.",
            "",
        ]
    if diff.faults:
        lines += ["### Faults", ""]
        lines += markdown.table(
            ["Fault", "Target", "At (A / B)", "Recovery A", "Recovery B", "Verdict"],
            [
                [
                    c.action,
                    c.target,
                    " / ".join("-" if t is None else f"{t:.1f}s" for t in (c.t_a, c.t_b)),
                    _seconds(c.recovery_a, c.state_a),
                    _seconds(c.recovery_b, c.state_b),
                    _MARKS.get(c.verdict, c.verdict),
                ]
                for c in diff.faults
            ],
        )
        lines.append("")
    return "\n".join(lines)
