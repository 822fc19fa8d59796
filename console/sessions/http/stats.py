"""Worker-side metric accumulation, flushed as deltas several times a second.

A delta is a small JSON object: counters, rate (passes, total) pairs, encoded Trend histograms,
gauges, and exact counts per status code and error class. The engine merges deltas with
``ctx.add`` / ``ctx.rate`` / ``ctx.merge_trend``, so nothing is lost between flushes and memory
stays bounded on both sides.
"""

from __future__ import annotations

from typing import Any

from console.metrics import Trend

__all__ = ["Stats"]


class Stats:
    """One worker's metrics since the last flush.

    Trend samples are batched: :meth:`observe` appends to a list and the histogram takes the
    list at :meth:`flush` (or when :attr:`trends` is read), so the per-request path is one
    append. The list holds one flush interval of samples (0.25 s), so memory stays bounded.
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.counters: dict[str, float] = {}
        self.rates: dict[str, list[int]] = {}
        self._trends: dict[str, Trend] = {}
        self._pending: dict[str, list[float]] = {}
        self.codes: dict[str, int] = {}
        self.errors: dict[str, int] = {}

    def add(self, name: str, amount: float = 1.0) -> None:
        self.counters[name] = self.counters.get(name, 0.0) + amount

    def rate(self, name: str, ok: bool) -> None:
        pair = self.rates.get(name)
        if pair is None:
            pair = self.rates[name] = [0, 0]
        pair[1] += 1
        if ok:
            pair[0] += 1

    def observe(self, name: str, value: float) -> None:
        pending = self._pending.get(name)
        if pending is None:
            pending = self._pending[name] = []
        pending.append(value)

    @property
    def trends(self) -> dict[str, Trend]:
        """Every trend, with the samples observed so far recorded."""
        for name, values in self._pending.items():
            if values:
                trend = self._trends.get(name)
                if trend is None:
                    trend = self._trends[name] = Trend()
                trend.record_many(values)
                values.clear()
        return self._trends

    def status(self, code: int) -> None:
        key = str(code)
        self.codes[key] = self.codes.get(key, 0) + 1

    def error(self, cls: str) -> None:
        self.errors[cls] = self.errors.get(cls, 0) + 1

    def flush(self, gauges: dict[str, float]) -> dict[str, Any]:
        delta = {
            "t": "m",
            "c": self.counters,
            "r": self.rates,
            "tr": {name: trend.encode() for name, trend in self.trends.items()},
            "g": gauges,
            "codes": self.codes,
            "errs": self.errors,
        }
        self.reset()
        return delta
