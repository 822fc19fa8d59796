"""Worker-side metric accumulation, flushed as deltas several times a second.

A delta is a small JSON object: counters, rate (passes, total) pairs, encoded Trend histograms,
gauges, and exact counts per status code and error class. The engine merges deltas with
``ctx.add`` / ``ctx.rate`` / ``ctx.merge_trend``, so nothing is lost between flushes and memory
stays bounded on both sides.

Per request name (the per-request table) a delta also carries ``"req"``: ``{key: {"f":
failures, "tr": encoded Trend}}``, the key being ``"METHOD name"`` computed once per request
template by :class:`~console.sessions.http.flow.Flow`; and ``"fails"``: ``[[key, message,
count], ...]``. Distinct failure messages are bounded per worker (:data:`MAX_MESSAGES`, then
:data:`OTHER_MESSAGES`), so a message that varies cannot grow the tables.
"""

from __future__ import annotations

from typing import Any

from console.metrics import Trend

__all__ = ["MAX_MESSAGES", "OTHER_MESSAGES", "Stats"]

MAX_MESSAGES = 50  # distinct (name, failure message) pairs one worker reports
OTHER_MESSAGES = f"(other messages: beyond {MAX_MESSAGES} distinct ones)"  # a worker's, a group's


class Stats:
    """One worker's metrics since the last flush.

    Trend samples are batched: :meth:`observe` appends to a list and the histogram takes the
    list at :meth:`flush` (or when :attr:`trends` is read), so the per-request path is one
    append. The list holds one flush interval of samples (0.25 s), so memory stays bounded.

    A request's duration goes in once, under its name (:meth:`request`): each sample is put
    in a histogram once, its name's, and ``http_req_duration`` is the merge of the names'
    histograms (a merge costs per bucket, not per sample), so the per-request table costs the
    hot path nothing beyond what ``http_req_duration`` cost alone.
    """

    def __init__(self) -> None:
        self._messages: set[tuple[str, str]] = set()  # for the whole worker's life
        self.reset()

    def reset(self) -> None:
        self.counters: dict[str, float] = {}
        self.rates: dict[str, list[int]] = {}
        self._trends: dict[str, Trend] = {}
        self._pending: dict[str, list[float]] = {}
        self.codes: dict[str, int] = {}
        self.errors: dict[str, int] = {}
        self._named: dict[str, list[float]] = {}  # request name -> durations not yet recorded
        self.named_trends: dict[str, Trend] = {}
        self.named_failures: dict[str, int] = {}
        self.failures: dict[tuple[str, str], int] = {}  # (request name, message) -> count

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

    def request(self, key: str, value: float) -> None:
        """A request's duration (ms): a sample of ``http_req_duration`` and of its name's row,
        for the cost of :meth:`observe` (one dict lookup, one append)."""
        pending = self._named.get(key)
        if pending is None:
            pending = self._named[key] = []
        pending.append(value)

    def failure(self, key: str, message: str) -> None:
        """A failed request of name ``key``; the path of failures only."""
        self.named_failures[key] = self.named_failures.get(key, 0) + 1
        pair = (key, message)
        if pair not in self._messages:
            if len(self._messages) >= MAX_MESSAGES:
                pair = (key, OTHER_MESSAGES)
            else:
                self._messages.add(pair)
        self.failures[pair] = self.failures.get(pair, 0) + 1

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
        for key, values in self._named.items():
            if values:
                batch = Trend()
                batch.record_many(values)
                values.clear()
                total = self._trends.get("http_req_duration")
                if total is None:
                    total = self._trends["http_req_duration"] = Trend()
                total.merge(batch)
                named = self.named_trends.get(key)
                if named is None:
                    self.named_trends[key] = batch
                else:
                    named.merge(batch)
        return self._trends

    def status(self, code: int) -> None:
        key = str(code)
        self.codes[key] = self.codes.get(key, 0) + 1

    def error(self, cls: str) -> None:
        self.errors[cls] = self.errors.get(cls, 0) + 1

    def flush(self, gauges: dict[str, float]) -> dict[str, Any]:
        delta: dict[str, Any] = {
            "t": "m",
            "c": self.counters,
            "r": self.rates,
            "tr": {name: trend.encode() for name, trend in self.trends.items()},
            "g": gauges,
            "codes": self.codes,
            "errs": self.errors,
        }
        if self.named_trends:
            delta["req"] = {
                key: {"f": self.named_failures.get(key, 0), "tr": trend.encode()}
                for key, trend in self.named_trends.items()
            }
        if self.failures:
            delta["fails"] = [[k, message, n] for (k, message), n in self.failures.items()]
        self.reset()
        return delta
