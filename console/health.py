"""Generator health: was the load generator itself the bottleneck?

When the generator saturates, the latencies it measures include its own queueing, so they say
more about the generator than about the target. At every sample the engine asks
:class:`GeneratorHealth` to look at

* ``dropped_iterations``: iterations an arrival-rate scenario could not start (no free VU);
* ``worker_loop_lag``: a worker's event loop late by more than :data:`LAG_LIMIT_MS`;
* ``worker_cpu``: a worker's CPU over :data:`CPU_LIMIT` % of its core;
* ``console_cpu``: the console's own CPU over :data:`CPU_LIMIT` %.

Drops count at once; the CPU and lag conditions must hold for :data:`SUSTAIN` samples in a row
(one slow sample on a busy machine is not saturation). Each saturated sample adds one to the
``generator_saturated`` counter, so ``threshold = "count==0"`` on it is the criterion "the
generator never saturated", and the evidence (what, when, how much) goes to the summary and the
report, which then say the latency figures are not trustworthy.
"""

from __future__ import annotations

from collections.abc import Callable

from console.metrics import CounterValue, GaugeValue, MetricValue

__all__ = ["CPU_LIMIT", "LAG_LIMIT_MS", "GeneratorHealth"]

CPU_LIMIT = 90.0
LAG_LIMIT_MS = 250.0
SUSTAIN = 2
EVIDENCE_CAP = 20
UNTRUSTWORTHY = "latency figures are not trustworthy: the load generator was saturated"


class GeneratorHealth:
    def __init__(self, value: Callable[[str], MetricValue | None]) -> None:
        self._value = value  # the registry's run value of a metric
        self._dropped = 0.0
        self._streaks: dict[str, int] = {}
        self.saturated_samples = 0
        self.evidence: list[str] = []  # the first EVIDENCE_CAP findings, "12.0s: ..."
        self.reasons: dict[str, int] = {}  # reason -> saturated samples

    def _gauge(self, name: str) -> float | None:
        value = self._value(name)
        return value.value if isinstance(value, GaugeValue) else None

    def check(self, t: float) -> bool:
        """Look at the latest figures; True when this sample counts as saturated."""
        found: list[tuple[str, str]] = []
        dropped = self._value("dropped_iterations")
        if isinstance(dropped, CounterValue) and dropped.count > self._dropped:
            found.append(
                ("dropped iterations", f"{dropped.count - self._dropped:.0f} dropped iterations")
            )
            self._dropped = dropped.count
        sustained = {
            "worker loop lag": (self._gauge("worker_loop_lag"), LAG_LIMIT_MS, "ms"),
            "worker CPU": (self._gauge("worker_cpu"), CPU_LIMIT, "%"),
            "console CPU": (self._gauge("console_cpu"), CPU_LIMIT, "%"),
        }
        for reason, (value, limit, unit) in sustained.items():
            over = value is not None and value > limit
            self._streaks[reason] = self._streaks.get(reason, 0) + 1 if over else 0
            if over and self._streaks[reason] >= SUSTAIN:
                found.append((reason, f"{reason} {value:.0f}{unit} > {limit:g}{unit}"))
        if not found:
            return False
        self.saturated_samples += 1
        for reason, text in found:
            self.reasons[reason] = self.reasons.get(reason, 0) + 1
            if len(self.evidence) < EVIDENCE_CAP:
                self.evidence.append(f"{t:.1f}s: {text}")
        return True

    @property
    def saturated(self) -> bool:
        return self.saturated_samples > 0

    def lines(self) -> tuple[str, ...]:
        """The evidence for snapshots and the report: a verdict, counts, then the first findings."""
        if not self.saturated:
            return ()
        counts = ", ".join(f"{reason} in {n} sample(s)" for reason, n in self.reasons.items())
        return (f"generator_saturated: {UNTRUSTWORTHY} ({counts})", *self.evidence)
