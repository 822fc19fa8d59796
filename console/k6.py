"""k6's own file formats, so tools that read k6 results read Stressdeck's.

``--out json=FILE`` (:class:`JsonOutput`) writes k6's JSON output: one JSON object per line,
``{"type": "Metric", "data": {...}, "metric": NAME}`` once per metric before its first point,
then ``{"type": "Point", "data": {"time", "value", "tags"}, "metric": NAME}``. The field names,
metric types (counter, gauge, rate, trend), ``contains`` (``time``, ``data``, ``default``) and
the millisecond time values are k6's.

One difference, by design: Stressdeck keeps histograms, not every sample (bounded memory on
long soaks), so a Point stands for one sample interval (``run.sample_interval``) of one session
rather than one request: a counter's increment, a gauge's value, a rate's share of true samples
and a trend's mean in that interval. Its tag ``samples`` says how many samples a rate or trend
point summarises, so weighted means stay exact. Tags: ``scenario`` (the session group, as k6
names its scenarios), ``session`` and ``kind``.

``--summary-export FILE`` (:func:`summary_export`) writes k6's end-of-test summary JSON as
``k6 run --summary-export`` does: ``root_group`` (with the checks HTTP flows ran) and
``metrics``, each metric's aggregates flat (``count``/``rate``, ``avg``/``min``/``med``/``max``/
``p(90)``/``p(95)``, ``value``/``passes``/``fails``), criteria as k6 ``thresholds`` where
``true`` means the threshold *failed*, as in k6.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

from console import verdicts
from console.files import json_text, open_private, private_dir, write_private
from console.metrics import CounterValue, GaugeValue, MetricsRegistry, RateValue, Trend
from console.snapshot import RunSnapshot

__all__ = ["JsonOutput", "summary_export"]

SessionInfo = Callable[[], Iterable[tuple[str, str, str, str]]]  # (id, group, kind, state)
TREND_STATS = ("avg", "min", "med", "max", "p(90)", "p(95)")


def contains(unit: str) -> str:
    """k6's ``contains``: ``time`` for durations, ``data`` for bytes, else ``default``."""
    return {"ms": "time", "s": "time", "bytes": "data"}.get(unit, "default")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


class JsonOutput:
    """k6 JSON lines, appended at each sample; flushed each time so ``tail -f`` works."""

    def __init__(
        self,
        path: Path,
        registry: MetricsRegistry,
        sessions: SessionInfo,
        thresholds: Mapping[str, list[str]],
        redact: Callable[[str], str] = str,
    ) -> None:
        self.path = path
        self.registry = registry
        self.sessions = sessions
        self.thresholds = thresholds
        self.redact = redact
        private_dir(path.parent)  # what it makes 0700, like a run directory
        # 0600 like the run's own files; open for the whole run, closed by close().
        raw = os.fdopen(open_private(path, os.O_WRONLY | os.O_TRUNC), "wb")
        self._raw = raw  # a GzipFile does not close the file it was given
        self._file: IO[str] = (
            gzip.open(raw, "wt", encoding="utf-8")  # noqa: SIM115 (closed by close())
            if path.suffix == ".gz"
            else io.TextIOWrapper(raw, encoding="utf-8")
        )
        self._declared: set[str] = set()
        self._before: dict[tuple[str, str], Any] = {}

    def _write(self, kind: str, metric: str, data: Mapping[str, Any]) -> None:
        line = {"type": kind, "data": data, "metric": metric}
        self._file.write(self.redact(json_text(line, separators=(",", ":"))) + "\n")

    def _declare(self, name: str) -> None:
        spec = self.registry.specs[name]
        self._write(
            "Metric",
            name,
            {
                "name": name,
                "type": spec.type.value,
                "contains": contains(spec.unit),
                "tainted": None,
                "thresholds": list(self.thresholds.get(name, [])),
                "submetrics": None,
            },
        )
        self._declared.add(name)

    def sample(self) -> None:
        time = _now()
        where = {sid: (group, kind) for sid, group, kind, _ in self.sessions()}
        for session, name, value in self.registry.session_items():
            point = self._point(session, name, value)
            if point is None:
                continue
            number, samples = point
            group, kind = where.get(session, ("", "run"))
            tags = {"scenario": group or "default", "session": session, "kind": kind}
            if samples is not None:
                tags["samples"] = str(samples)
            if name not in self._declared:
                self._declare(name)
            self._write("Point", name, {"time": time, "value": number, "tags": tags})
        self._file.flush()

    def _point(self, session: str, name: str, value: Any) -> tuple[float, int | None] | None:
        key = (session, name)
        before = self._before.get(key)
        if isinstance(value, CounterValue):
            self._before[key] = value.count
            delta = value.count - (before or 0.0)
            return (delta, None) if delta else None
        if isinstance(value, GaugeValue):
            return None if value.value is None else (value.value, None)
        if isinstance(value, RateValue):
            self._before[key] = (value.passes, value.total)
            passes, total = before or (0, 0)
            n = value.total - total
            return ((value.passes - passes) / n, n) if n > 0 else None
        assert isinstance(value, Trend)
        count, total_sum = before or (0, 0.0)
        self._before[key] = (value.count, value.sum)
        n = value.count - count
        return ((value.sum - total_sum) / n, n) if n > 0 else None

    def close(self) -> None:
        self._file.close()
        self._raw.close()


def _group_id(path: str) -> str:
    # k6 names groups and checks by the MD5 of their path; the root group's path is "".
    return hashlib.md5(path.encode(), usedforsecurity=False).hexdigest()


def summary_export(snapshot: RunSnapshot) -> dict[str, Any]:
    """k6's ``--summary-export`` document for a finished run."""
    thresholds: dict[str, dict[str, bool]] = {}
    for c in snapshot.criteria:
        if c.scope in ("run", "window"):
            thresholds.setdefault(c.metric, {})[c.expression] = c.state != verdicts.PASS
    metrics: dict[str, dict[str, Any]] = {}
    for m in snapshot.metrics:
        values = dict(m.values)
        out: dict[str, Any]
        if m.type == "trend":
            out = {k: values.get(k) for k in (*TREND_STATS, "p(99)")}
            if not values.get("count"):
                continue
        elif m.type == "counter":
            out = {"count": values.get("count"), "rate": values.get("rate")}
        elif m.type == "rate":
            if not values.get("count"):
                continue
            out = {
                "passes": int(values.get("passes") or 0),
                "fails": int(values.get("fails") or 0),
                "value": values.get("rate"),
            }
        else:
            if values.get("value") is None:
                continue
            out = {"value": values["value"], "min": values.get("min"), "max": values.get("max")}
        if m.name in thresholds:
            out["thresholds"] = thresholds[m.name]
        metrics[m.name] = out
    checks: dict[str, dict[str, Any]] = {}
    for session in snapshot.sessions:
        for label, text in session.details:
            if not label.startswith("check "):
                continue
            name = label.removeprefix("check ")
            passes, _, total = text.partition("/")
            try:
                p, t = int(passes), int(total)
            except ValueError:
                continue
            check = checks.setdefault(
                name,
                {"name": name, "path": "::" + name, "id": _group_id("::" + name)}
                | {"passes": 0, "fails": 0},
            )
            check["passes"] += p
            check["fails"] += t - p
    return {
        "root_group": {
            "name": "",
            "path": "",
            "id": _group_id(""),
            "groups": {},
            "checks": checks,
        },
        "metrics": metrics,
    }


def write_summary_export(
    path: Path, snapshot: RunSnapshot, redact: Callable[[str], str] = str
) -> None:
    """Write the summary 0600, through the run's redactor like every other export."""
    private_dir(path.parent)
    write_private(path, redact(json_text(summary_export(snapshot), indent=4)) + "\n")
