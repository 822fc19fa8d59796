"""``/metrics`` for Prometheus (and Grafana), with the official client library.

Off unless ``[run] metrics_listen`` or ``--metrics-listen`` names an address; a bare port
(``":9464"`` or ``"9464"``) listens on 127.0.0.1 only, so nothing is exposed beyond the machine
unless the user writes another host.

Names follow k6's Prometheus output, prefixed ``stressdeck_``: counters end in ``_total``
(``stressdeck_http_reqs_total``); trends are histograms in base units (milliseconds become
``_seconds``: ``stressdeck_http_req_duration_seconds``), their buckets folded from the HDR-style
trend onto a fixed 1-2.5-5 ladder so they aggregate across sessions and scrapes; rates are a
``_rate`` gauge plus ``_true_total`` and ``_samples_total`` counters (so PromQL can rate them over
any window); gauges keep their name (``_bytes`` added for byte gauges). Every series is
labelled ``kind``, ``group`` and ``session`` (run-wide figures: ``kind="run"``,
``session="run"``). Criteria are ``stressdeck_criterion_state{criterion,state}`` (1 for the
current state) and faults ``stressdeck_faults_total{action,source}``.

Threading: the engine rebuilds the families at its sample interval (:meth:`Exposition.update`,
in the engine's loop) and the client library's HTTP thread only reads the latest immutable list,
so a scrape never walks the engine's dictionaries while they change.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from console import verdicts
from console.metrics import CounterValue, GaugeValue, MetricsRegistry, RateValue, Trend
from console.snapshot import CriterionSnapshot, FaultRecord
from console.units import parse_address

__all__ = [
    "PREFIX",
    "Exposition",
    "MetricsServer",
]

PREFIX = "stressdeck_"
LABELS = ("kind", "group", "session")
# 1-2.5-5 per decade; in seconds for time trends (1 ms to 60 s), in the metric's unit otherwise.
_LADDER = [m * 10.0**e for e in range(-3, 2) for m in (1.0, 2.5, 5.0)] + [60.0]
_GENERIC = [m * 10.0**e for e in range(-3, 7) for m in (1.0, 2.5, 5.0)]


def _histogram(trend: Trend, scale: float, bounds: Sequence[float]) -> list[tuple[str, float]]:
    """Cumulative ``(le, count)`` pairs: each fine bucket goes to the first bound its midpoint
    does not exceed (exact to the trend's 1% resolution)."""
    counts = [0] * (len(bounds) + 1)
    for low, high, count in trend.buckets():
        value = (low + high) / 2 * scale
        index = next((i for i, b in enumerate(bounds) if value <= b), len(bounds))
        counts[index] += count
    out, total = [], 0
    for bound, count in zip(bounds, counts[:-1], strict=True):
        total += count
        out.append((_le(bound), float(total)))
    out.append(("+Inf", float(trend.count)))
    return out


def _le(bound: float) -> str:
    return f"{bound:.6g}"


SessionInfo = Callable[[], Iterable[tuple[str, str, str, str]]]  # (id, group, kind, state)


class Exposition(Collector):
    """The families of the latest update; a registered Collector for the client library."""

    def __init__(self, registry: MetricsRegistry, sessions: SessionInfo) -> None:
        self.registry = registry
        self.sessions = sessions
        self._families: tuple[Metric, ...] = ()
        self._faults: Counter[tuple[str, str]] = Counter()
        self._last_fault = 0

    def collect(self) -> Iterator[Metric]:
        yield from self._families

    def update(
        self,
        criteria: Sequence[CriterionSnapshot],
        faults: Sequence[FaultRecord],
        elapsed: float,
    ) -> None:
        where = {sid: (kind, group) for sid, group, kind, _ in self.sessions()}
        families: dict[str, _Family] = {}
        for session, name, value in self.registry.session_items():
            kind, group = where.get(session, ("run", ""))
            labels = [kind, group, session]
            family = families.get(name)
            if family is None:
                spec = self.registry.specs[name]
                family = families[name] = _Family.make(name, spec.unit, spec.description, value)
            family.add(labels, value)
        # A run-wide counter nobody incremented yet still answers 0 (alerts on `== 0` work).
        for name, value in self.registry.items():
            if isinstance(value, CounterValue) and name not in families:
                spec = self.registry.specs[name]
                family = families[name] = _Family.make(name, spec.unit, spec.description, value)
                family.add(["run", "", "run"], value)
        for fault in faults:
            if fault.id > self._last_fault:
                self._faults[(fault.action, fault.source)] += 1
                self._last_fault = fault.id
        out: list[Metric] = [m for f in families.values() for m in f.metrics]
        state = GaugeMetricFamily(
            PREFIX + "criterion_state",
            "1 for each criterion's current state (pending, pass, fail, not_judged).",
            labels=["criterion", "metric", "state"],
        )
        for c in criteria:
            for s in verdicts.STATES:
                state.add_metric([c.name, c.metric, s], 1.0 if c.state == s else 0.0)
        out.append(state)
        fault_family = CounterMetricFamily(
            PREFIX + "faults",
            "Faults and controls applied or observed, by action and source.",
            labels=["action", "source"],
        )
        for (action, source), n in sorted(self._faults.items()):
            fault_family.add_metric([action, source], float(n))
        out.append(fault_family)
        out.append(
            GaugeMetricFamily(
                PREFIX + "run_elapsed_seconds", "Un-paused run time so far.", value=elapsed
            )
        )
        self._families = tuple(out)


class _Family:
    """One Stressdeck metric as its Prometheus family (or families, for rates)."""

    def __init__(self, add: Callable[[list[str], Any], None], *metrics: Metric) -> None:
        self.add = add
        self.metrics = metrics

    @classmethod
    def make(cls, name: str, unit: str, doc: str, value: Any) -> _Family:
        base = PREFIX + name
        if isinstance(value, CounterValue):
            counter = CounterMetricFamily(base, doc, labels=LABELS)
            return cls(lambda labels, v: counter.add_metric(labels, v.count), counter)
        if isinstance(value, GaugeValue):
            scale, suffix = (0.001, "_seconds") if unit == "ms" else (1.0, "")
            if unit == "bytes":
                suffix = "_bytes"
            gauge = GaugeMetricFamily(base + suffix, doc, labels=LABELS)

            def add_gauge(labels: list[str], v: GaugeValue) -> None:
                if v.value is not None:
                    gauge.add_metric(labels, v.value * scale)

            return cls(add_gauge, gauge)
        if isinstance(value, RateValue):
            return cls._rate(base, doc)
        assert isinstance(value, Trend)
        scale, suffix, bounds = (
            (0.001, "_seconds", _LADDER) if unit == "ms" else (1.0, "", _GENERIC)
        )
        hist = HistogramMetricFamily(base + suffix, doc, labels=LABELS)

        def add_trend(labels: list[str], v: Trend) -> None:
            hist.add_metric(labels, _histogram(v, scale, bounds), v.sum * scale)

        return cls(add_trend, hist)

    @classmethod
    def _rate(cls, base: str, doc: str) -> _Family:
        """A rate: the fraction as a gauge, and its two counts as counters."""
        gauge = GaugeMetricFamily(base + "_rate", doc, labels=LABELS)
        trues = CounterMetricFamily(base + "_true", doc + " (true samples)", labels=LABELS)
        total = CounterMetricFamily(base + "_samples", doc + " (all samples)", labels=LABELS)

        def add(labels: list[str], v: RateValue) -> None:
            if v.rate is not None:
                gauge.add_metric(labels, v.rate)
            trues.add_metric(labels, float(v.passes))
            total.add_metric(labels, float(v.total))

        return cls(add, gauge, trues, total)


class MetricsServer:
    """The HTTP endpoint: started by the engine when the run starts, stopped when it ends."""

    def __init__(self, exposition: Exposition, listen: str) -> None:
        self.host, self.port = parse_address(listen)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(exposition)
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._server, self._thread = start_http_server(
            self.port, addr=self.host, registry=self.registry
        )
        self.port = self._server.server_port  # port 0 asks for a free one

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
