"""A metric between two moments of the run, for criteria relative to a baseline.

``p(95)<1.5x baseline`` after a fault compares the metric in the ``within`` seconds after the
fault with the same metric in the window before it. The registry keeps cumulative values (and
sliding windows that only look back from *now*), so :class:`Checkpoints` keeps copies of one
metric's cumulative run value every :data:`STEP` seconds, for as far back as a criterion needs,
and reads the metric between two moments as the difference of two copies: a counter's count,
a rate's passes and total, a trend's samples (:meth:`console.metrics.Trend.since`). A gauge has
no cumulative form, so its checkpoints keep the value it had and the interval gets those.
Memory is bounded by ``keep / STEP`` copies.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import deque

from console.metrics import (
    CounterValue,
    GaugeValue,
    MetricType,
    MetricValue,
    RateValue,
    Trend,
    new_value,
)

__all__ = ["STEP", "Checkpoints"]

STEP = 0.5  # seconds between checkpoints: the resolution of a baseline's edges


def _copy(value: MetricValue) -> MetricValue:
    if isinstance(value, Trend):
        return value.copy()
    clone = type(value)()
    clone.merge(value)  # type: ignore[arg-type]
    return clone


class Checkpoints:
    """Copies of one metric's cumulative value over the last ``keep`` seconds."""

    def __init__(self, keep: float) -> None:
        self._points: deque[tuple[float, MetricValue | None]] = deque(maxlen=int(keep / STEP) + 4)

    def take(self, t: float, value: MetricValue | None) -> None:
        """Keep a copy of ``value`` (the run's cumulative value at ``t``) if one is due."""
        if self._points and t - self._points[-1][0] < STEP:
            return
        self._points.append((t, None if value is None else _copy(value)))

    def _at(self, t: float) -> tuple[float, MetricValue | None] | None:
        """The newest checkpoint at or before ``t`` (None if ``t`` is before the first)."""
        times = [p[0] for p in self._points]
        index = bisect_right(times, t + 1e-9) - 1
        return self._points[index] if index >= 0 else None

    def between(self, start: float, end: float) -> tuple[MetricValue | None, float]:
        """The metric between ``start`` and ``end`` and the seconds that covers; (None, 0) when
        the checkpoints do not reach back to ``start`` or there is nothing recorded."""
        if not self._points:
            return None, 0.0
        first_t = self._points[0][0]
        a = self._at(max(start, first_t))
        b = self._at(end)
        if a is None or b is None or b[0] <= a[0]:
            return None, 0.0
        span = b[0] - a[0]
        before, after = a[1], b[1]
        if after is None:
            return None, span
        if isinstance(after, GaugeValue):
            gauge = GaugeValue()
            for t, value in self._points:
                if a[0] < t <= b[0] and isinstance(value, GaugeValue) and value.value is not None:
                    gauge.set(value.value)
            return gauge, span
        if before is None:
            return _copy(after), span
        if isinstance(after, Trend):
            assert isinstance(before, Trend)
            return after.since(before), span
        if isinstance(after, CounterValue):
            assert isinstance(before, CounterValue)
            counter = CounterValue()
            counter.count = after.count - before.count
            return counter, span
        assert isinstance(after, RateValue) and isinstance(before, RateValue)
        rate = new_value(MetricType.RATE)
        assert isinstance(rate, RateValue)
        rate.passes = after.passes - before.passes
        rate.total = after.total - before.total
        return rate, span
