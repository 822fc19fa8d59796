"""``stressdeck freeze RUN -o profile.toml``: an exploration, frozen into a profile for CI.

The frozen profile is the run's own profile (as its snapshot recorded it, secrets redacted)
with

* its ``[[faults]]`` replaced by every fault the run injected (scheduled, keys, commands, the
  API, replays; not the observed ones, which are outcomes), each at the run time it happened,
  on the session it reached when it reached one (:func:`console.replay.to_toml`);
* its ``[[criteria]]`` replaced by criteria derived from what the run observed, with margins,
  each commented with the observation it came from: latency p95 over the run and over a sliding
  window, error and loss rates, throughput, abnormal ends, and recovery after each kind of
  fault whose sessions came back.

Margins are generous on purpose (:data:`LATENCY_MARGIN` and an absolute headroom for fast
targets, whose few milliseconds double on a busy CI machine): the frozen profile should pass
again on the same target and fail when the target is clearly worse, such as 300 ms slower.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from console.diff import load_run
from console.replay import ReplayFault, to_toml
from console.secrets import REDACTED

__all__ = ["LATENCY_MARGIN", "freeze", "toml_dump"]

LATENCY_MARGIN = 1.5  # times the observed latency ...
LATENCY_HEADROOM = 50.0  # ... or this many ms more, whichever is larger
RATE_HEADROOM = 0.01  # error rates: twice the observed, or one percentage point more
THROUGHPUT_MARGIN = 0.7  # at least this share of the observed throughput
RECOVERY_MARGIN = 2.0  # recovery within twice the slowest observed, at least 5 s more
WINDOW = "10s"

# (metric, aggregation, higher is worse): what a frozen profile checks when the run had it.
LATENCIES = ("http_req_duration", "ssh_exec_latency", "ssh_connect_time")
ERROR_RATES = ("http_req_failed", "pty_output_loss", "checks")


# ----- TOML out ------------------------------------------------------------------------------

_BARE = re.compile(r"[A-Za-z0-9_-]+")


def _key(key: str) -> str:
    return key if _BARE.fullmatch(key) else json.dumps(key)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    return json.dumps(str(value))  # JSON's string escapes are TOML's basic-string escapes


def _is_tables(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, Mapping) for v in value)


def _table(path: str, data: Mapping[str, Any], header: str) -> Iterator[str]:
    # Top-level tables ([run]) and tables of tables are sections; smaller ones stay inline.
    plain = {
        k: v
        for k, v in data.items()
        if not (
            isinstance(v, Mapping) and (not path or any(isinstance(x, Mapping) for x in v.values()))
        )
        and not _is_tables(v)
    }
    if header:
        yield header
    for k, v in plain.items():
        yield f"{_key(k)} = {_value(v)}"
    for k, v in data.items():
        if k in plain:
            continue
        sub = f"{path}.{_key(k)}" if path else _key(k)
        if _is_tables(v):
            for item in v:
                yield ""
                yield from _table(sub, item, f"[[{sub}]]")
        else:
            yield ""
            yield from _table(sub, v, f"[{sub}]")


def toml_dump(data: Mapping[str, Any]) -> str:
    """``data`` as TOML: scalars and inline tables in place, tables and arrays of tables as
    sections (enough for a profile; tomllib reads it back to the same data)."""
    return "\n".join(_table("", data, "")).strip() + "\n"


# ----- what the run observed -----------------------------------------------------------------


def _metric(run: Mapping[str, Any], name: str) -> Mapping[str, Any] | None:
    return next((m["values"] for m in run.get("metrics", []) if m["name"] == name), None)


def _criterion(name: str, observed: str, **fields: Any) -> list[str]:
    lines = [f"# observed: {observed}", "[[criteria]]", f"name = {_value(name)}"]
    lines += [f"{k} = {_value(v)}" for k, v in fields.items()]
    return [*lines, ""]


def _ms(value: float) -> str:
    return f"{value:.0f}ms" if value >= 10 else f"{value:.2f}ms"


def derived_criteria(run: Mapping[str, Any], run_dir: Path | None) -> list[str]:
    out: list[str] = []
    intervals = run.get("intervals", {})
    for name in LATENCIES:
        values = _metric(run, name)
        if not values or not values.get("count") or values.get("p(95)") is None:
            continue
        p95 = float(values["p(95)"])
        limit = max(p95 * LATENCY_MARGIN, p95 + LATENCY_HEADROOM)
        out += _criterion(
            f"{name} p95 as observed",
            f"p(95) = {_ms(p95)} over the run; limit max(x{LATENCY_MARGIN:g}, +{LATENCY_HEADROOM:g}ms)",
            metric=name,
            threshold=f"p(95)<={limit:.1f}",
        )
        worst = intervals.get(f"run|{name}|p95", {}).get("max")
        if worst is not None:
            limit = max(worst * LATENCY_MARGIN, worst + LATENCY_HEADROOM)
            out += _criterion(
                f"{name} p95 over {WINDOW} as observed",
                f"worst p(95) of one sample interval = {_ms(worst)}",
                metric=name,
                threshold=f"p(95)<={limit:.1f}",
                window=WINDOW,
            )
    for name in ERROR_RATES:
        values = _metric(run, name)
        if not values or not values.get("count") or values.get("rate") is None:
            continue
        rate = float(values["rate"])
        if name == "checks":  # a pass rate: lower is worse
            limit = max(min(rate - RATE_HEADROOM, rate / 2), 0.0)
            out += _criterion(
                "checks pass as observed",
                f"{rate * 100:.2f}% of checks passed",
                metric=name,
                threshold=f"rate>={limit * 100:.2f}%",
            )
            continue
        limit = max(rate * 2, rate + RATE_HEADROOM)
        out += _criterion(
            f"{name} as observed",
            f"rate = {rate * 100:.2f}%",
            metric=name,
            threshold=f"rate<={limit * 100:.2f}%",
        )
    reqs = _metric(run, "http_reqs")
    if reqs and reqs.get("rate"):
        rate = float(reqs["rate"])
        out += _criterion(
            "throughput as observed",
            f"{rate:.1f} requests/s over the run; at least x{THROUGHPUT_MARGIN:g}",
            metric="http_reqs",
            threshold=f"rate>={rate * THROUGHPUT_MARGIN:.2f}",
        )
    ends = _metric(run, "session_abnormal_ends")
    if ends is not None:
        count = float(ends.get("count") or 0)
        out += _criterion(
            "abnormal ends as observed",
            f"{count:g} session(s) ended abnormally",
            metric="session_abnormal_ends",
            threshold=f"count<={count:g}",
        )
    for action, slowest in sorted(_recoveries(run, run_dir).items()):
        within = max(slowest * RECOVERY_MARGIN, slowest + 5.0)
        out += _criterion(
            f"back after {action} as observed",
            f"slowest session back {slowest:.1f}s after a {action}",
            after=action,
            within=f"{within:.1f}s",
            threshold="rate>=100%",
        )
    return out


def _recoveries(run: Mapping[str, Any], run_dir: Path | None) -> dict[str, float]:
    """The slowest recovery per fault action, from the run's ``session_recovered`` events
    (each belongs to the newest fault before it that reached its session)."""
    path = None if run_dir is None else run_dir / "events.jsonl"
    if path is None or not path.is_file():
        return {}
    faults = [f for f in run.get("faults", []) if f.get("source") != "observed"]
    started: datetime | None = None
    slowest: dict[str, float] = {}
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            if event.get("event") == "run_started" and started is None:
                started = datetime.fromisoformat(event["ts"])
            if event.get("event") != "session_recovered" or started is None:
                continue
            t = (datetime.fromisoformat(event["ts"]) - started).total_seconds()
            sid = event.get("session_id")
            before = [f for f in faults if sid in f.get("sessions", ()) and f["t"] <= t + 1e-3]
            if not before or event.get("elapsed_ms") is None:
                continue
            action = before[-1]["action"]
            slowest[action] = max(slowest.get(action, 0.0), float(event["elapsed_ms"]) / 1000)
    return slowest


def _faults(run: Mapping[str, Any]) -> list[ReplayFault]:
    return [
        ReplayFault(
            t=round(float(f["t"]), 3),
            action=f["action"],
            target=f["target"],
            sessions=tuple(f.get("sessions", ())),
            params=dict(f.get("params") or {}),
        )
        for f in run.get("faults", [])
        if f.get("source") != "observed"
    ]


def freeze(path: Path) -> str:
    """The frozen profile's text for the run at ``path`` (a run directory or its snapshot)."""
    run = load_run(path)
    run_dir = path if path.is_dir() else path.parent
    content = dict(run.get("profile", {}).get("content") or {})
    content.pop("faults", None)
    content.pop("criteria", None)
    profile = toml_dump(content)
    head = [
        f"# Frozen from the run {run.get('run_dir', path)} by `stressdeck freeze`:",
        "# its profile, its faults at the times they happened, and criteria derived from what",
        "# it observed (each commented with the observation).",
    ]
    if REDACTED in profile or "***" in profile:
        head.append("# Secrets were redacted in the run's snapshot: fill them in before running.")
    faults: Sequence[ReplayFault] = _faults(run)
    parts = ["\n".join(head), "", profile.rstrip(), ""]
    if faults:
        parts += ["# ----- faults, as they happened", "", to_toml(list(faults)).rstrip(), ""]
    criteria = derived_criteria(run, run_dir)
    if criteria:
        parts += ["# ----- criteria from what the run observed", "", "\n".join(criteria).rstrip()]
    return "\n".join(parts).rstrip() + "\n"
