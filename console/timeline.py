"""The run's history for reports: every metric over time, in bounded memory however long the run.

Sparklines (:class:`console.metrics.Series`) keep the last couple of minutes; a report needs the
whole run. :class:`Timeline` keeps one row of values per point on a shared time axis (the shape
a charting library wants) and, when it is full, merges neighbouring points pairwise and doubles
the number of samples each new point covers. So a 10-minute run keeps one point per second and
a week-long soak the same number of points, each covering longer: memory and report size are
bounded by ``capacity`` times the number of columns, never by run length.

:class:`RunRecorder` turns the metrics registry into one row per sample, as *interval* figures
(what happened since the previous sample), which is what a timeline should show: counters as a
rate per second, rates as the share of true samples, trends as p95/p99 of the samples in the
interval (from the difference of two cumulative histograms), gauges as their value. Each figure
exists for the run as a whole and for each session group. When points are merged, values are
averaged; for percentiles that is an approximation, said so in the report.

The engine records at its sample interval and hands the timeline out only for exports: it is
never part of the 4 Hz snapshot the console renders.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from console.metrics import (
    CounterValue,
    GaugeValue,
    MetricsRegistry,
    MetricValue,
    RateValue,
    Trend,
    new_value,
)

__all__ = ["UP_STATES", "RunRecorder", "Timeline", "column", "interval_spread"]

# Session states that count as "up" (connected, producing) in the sessions-up share.
UP_STATES = frozenset({"running", "idle"})
RUN_SCOPE = "run"


def column(scope: str, metric: str, stat: str) -> str:
    """The name of one timeline column: ``run|http_reqs|rate``, ``api|http_req_duration|p95``."""
    return f"{scope}|{metric}|{stat}"


class Timeline:
    """Rows of values on a shared time axis, halving resolution when ``capacity`` is reached."""

    def __init__(self, capacity: int = 600) -> None:
        if capacity < 4:
            raise ValueError("capacity must be at least 4")
        self.capacity = capacity - capacity % 2  # even, so every point has a partner
        self.stride = 1  # samples per committed point
        self.t: list[float] = []
        # One array of doubles per column, NaN for "no value": 8 bytes a value where a list of
        # floats costs 32, and the timeline fills for tens of minutes between two halvings, so
        # on a soak its size is most of what the console's memory still does.
        self.columns: dict[str, array[float]] = {}
        self._pending_t: float | None = None
        self._pending: dict[str, tuple[float, int]] = {}
        self._pending_n = 0

    def __len__(self) -> int:
        return len(self.t)

    def record(self, t: float, values: Mapping[str, float | None]) -> None:
        """Add one sample; it joins the pending point until that covers ``stride`` samples."""
        if self._pending_t is None:
            self._pending_t = t
        for name, value in values.items():
            if value is None or value != value:
                continue
            total, n = self._pending.get(name, (0.0, 0))
            self._pending[name] = (total + value, n + 1)
        self._pending_n += 1
        if self._pending_n >= self.stride:
            self._commit()

    def _commit(self) -> None:
        assert self._pending_t is not None
        row = len(self.t)
        self.t.append(self._pending_t)
        for name, (total, n) in self._pending.items():
            if name not in self.columns:
                self.columns[name] = array("d", [math.nan]) * row
            self.columns[name].append(total / n)
        for values in self.columns.values():
            if len(values) <= row:
                values.append(math.nan)
        self._pending.clear()
        self._pending_t = None
        self._pending_n = 0
        if len(self.t) >= self.capacity:
            # Halve now, while every point covers `stride` samples, so merged pairs weigh alike.
            self._halve()

    def _halve(self) -> None:
        """Merge neighbouring points: the time of the first, the mean of the values present."""
        self.t = self.t[::2]
        for name, values in self.columns.items():
            merged = array("d")
            for i in range(0, len(values), 2):
                pair = [v for v in values[i : i + 2] if v == v]  # NaN is no value
                merged.append(sum(pair) / len(pair) if pair else math.nan)
            self.columns[name] = merged
        self.stride *= 2

    def export(self, digits: int = 4) -> dict[str, Any]:
        """A JSON-able copy, values rounded to ``digits`` significant digits (report size)."""
        return {
            "stride": self.stride,
            "t": [round(t, 2) for t in self.t],
            "columns": {
                name: [_round(v, digits) for v in values] for name, values in self.columns.items()
            },
        }


def _round(value: float | None, digits: int) -> float | None:
    if value is None or value != value:  # NaN: no value in this point
        return None
    return float(f"{value:.{digits}g}")


SessionInfo = Callable[[], Iterable[tuple[str, str, str, str]]]  # (id, group, kind, state)


class RunRecorder:
    """Samples the registry into a :class:`Timeline`: the run and each group, interval figures."""

    def __init__(
        self,
        registry: MetricsRegistry,
        sessions: SessionInfo,
        *,
        capacity: int = 600,
    ) -> None:
        self.registry = registry
        self.sessions = sessions
        self.timeline = Timeline(capacity)
        self._before: dict[tuple[str, str], Any] = {}
        self._last_t: float | None = None
        self.last_row: dict[str, float | None] = {}  # the newest interval figures (the ledger's)

    def sample(self, t: float) -> None:
        dt = None if self._last_t is None else t - self._last_t
        self._last_t = t
        row: dict[str, float | None] = {}
        for name, value in self.registry.items():
            self._figures(row, RUN_SCOPE, name, value, dt)
        infos = list(self.sessions())
        group_of = {sid: group for sid, group, _, _ in infos}
        grouped: dict[str, dict[str, MetricValue]] = {}
        gauges: dict[tuple[str, str], list[float]] = {}
        for sid, name, value in self.registry.session_items():
            group = group_of.get(sid)
            if group is None:
                continue
            if isinstance(value, GaugeValue):
                if value.value is not None:
                    gauges.setdefault((group, name), []).append(value.value)
                continue
            merged = grouped.setdefault(group, {}).get(name)
            if merged is None:
                merged = grouped[group][name] = new_value(self.registry.specs[name].type)
            merged.merge(value)  # type: ignore[arg-type]
        for group, values in grouped.items():
            for name, value in values.items():
                self._figures(row, group, name, value, dt, owned=True)
        for (group, name), samples in gauges.items():
            how = self.registry.specs[name].combine
            combined = (
                sum(samples)
                if how == "sum"
                else sum(samples) / len(samples)
                if how == "avg"
                else max(samples)
            )
            row[column(group, name, "value")] = combined
        self._sessions_up(row, infos)
        self.last_row = row
        self.timeline.record(t, row)

    def _sessions_up(
        self, row: dict[str, float | None], infos: list[tuple[str, str, str, str]]
    ) -> None:
        by: dict[tuple[str, str], list[bool]] = {}
        for _, group, kind, state in infos:
            up = state in UP_STATES
            by.setdefault((RUN_SCOPE, kind), []).append(up)
            by.setdefault((group, kind), []).append(up)
        for (scope, kind), ups in by.items():
            row[column(scope, f"{kind}_sessions_up", "share")] = sum(ups) / len(ups)

    def _figures(
        self,
        row: dict[str, float | None],
        scope: str,
        name: str,
        value: MetricValue,
        dt: float | None,
        *,
        owned: bool = False,
    ) -> None:
        key = (scope, name)
        before = self._before.get(key)
        if isinstance(value, CounterValue):
            self._before[key] = value.count
            if dt and dt > 0:
                row[column(scope, name, "rate")] = (value.count - (before or 0.0)) / dt
        elif isinstance(value, RateValue):
            self._before[key] = (value.passes, value.total)
            passes, total = before or (0, 0)
            if value.total > total:
                row[column(scope, name, "rate")] = (value.passes - passes) / (value.total - total)
        elif isinstance(value, GaugeValue):
            row[column(scope, name, "value")] = value.value
        else:
            assert isinstance(value, Trend)
            interval = value.since(before)
            self._before[key] = value if owned else value.copy()
            if interval.count > 0:
                row[column(scope, name, "p95")] = interval.percentile(95)
                row[column(scope, name, "p99")] = interval.percentile(99)

    def histograms(self, bins: int = 40) -> dict[str, dict[str, dict[str, list[float]]]]:
        """Each trend's whole-run distribution, for the run and each group, in at most ``bins``
        log-spaced bins (the HDR-style buckets are far finer than a chart can show)."""
        group_of = {sid: group for sid, group, _, _ in self.sessions()}
        scopes: dict[str, dict[str, Trend]] = {RUN_SCOPE: {}}
        for name, value in self.registry.items():
            if isinstance(value, Trend) and value.count:
                scopes[RUN_SCOPE][name] = value
        for sid, name, value in self.registry.session_items():
            group = group_of.get(sid)
            if group is None or not isinstance(value, Trend) or not value.count:
                continue
            merged = scopes.setdefault(group, {}).setdefault(name, Trend())
            merged.merge(value)
        return {
            scope: {name: coarse_histogram(trend, bins) for name, trend in trends.items()}
            for scope, trends in scopes.items()
        }

    def export(self) -> dict[str, Any]:
        data = self.timeline.export()
        data["histograms"] = self.histograms()
        data["units"] = {name: spec.unit for name, spec in self.registry.specs.items()}
        data["types"] = {name: spec.type.value for name, spec in self.registry.specs.items()}
        return data


def interval_spread(history: Mapping[str, Any], settle: float = 5.0) -> dict[str, Any]:
    """How much each run-wide figure varies from interval to interval when no fault acts:
    ``{column: {"median", "sd", "n", "max"}}`` (``max`` over every point, faults included). ``sd`` is the plain standard deviation, not a robust
    one: a hiccup in a few intervals is exactly what moves a whole-run p99, so it must widen
    the noise too. Points inside a fault's span, or within ``settle`` seconds after its end, are
    left out (unless that leaves almost none: a condition that held all run long is the run's
    steady state): this is the run's own noise, what ``stressdeck diff`` tells regressions
    from."""
    times = history.get("t", [])
    spans = [
        (span["start"], (span["end"] if span.get("end") is not None else span["start"]) + settle)
        for span in history.get("fault_spans", [])
    ]
    quiet = [i for i, t in enumerate(times) if not any(a <= t <= b for a, b in spans)]
    if len(quiet) < 3:  # a condition held the whole run: that was the run's steady state
        quiet = list(range(len(times)))
    out: dict[str, Any] = {}
    for name, values in history.get("columns", {}).items():
        if not name.startswith(RUN_SCOPE + "|"):
            continue
        picked = sorted(v for i in quiet if i < len(values) and (v := values[i]) is not None)
        if len(picked) < 3:
            continue
        mean = sum(picked) / len(picked)
        sd = math.sqrt(sum((v - mean) ** 2 for v in picked) / (len(picked) - 1))
        worst = max(v for v in values if v is not None)  # faults included: the run's worst
        out[name] = {"median": _median(picked), "sd": sd, "n": len(picked), "max": worst}
    return out


def _median(ordered: list[float]) -> float:
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def coarse_histogram(trend: Trend, bins: int) -> dict[str, list[float]]:
    """``edges`` (bins + 1 of them) and ``counts``: the trend re-binned on a log scale."""
    fine = trend.buckets()
    low = max(fine[0][0], 1e-3)
    high = max(fine[-1][1], low * 1.0001)
    ratio = (high / low) ** (1 / bins)
    edges = [low * ratio**i for i in range(bins + 1)]
    counts = [0.0] * bins
    for lo, hi, count in fine:
        mid = max((lo + hi) / 2, low)
        index = 0 if ratio <= 1 else int(math.log(mid / low) / math.log(ratio))
        counts[min(max(index, 0), bins - 1)] += count
    return {"edges": [float(f"{e:.4g}") for e in edges], "counts": counts}
