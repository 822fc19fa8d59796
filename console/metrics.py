"""Metrics: counters, gauges, rates, latency trends and sparkline series, all in bounded memory.

The four metric types follow k6, so criteria read the way k6 users expect:

* ``counter``  - a running total; aggregations ``count`` and ``rate`` (per second of run time).
* ``gauge``    - the latest value; ``value``, ``min``, ``max``, ``avg`` (mean of the samples).
* ``rate``     - the fraction of true samples; ``rate``, ``passes``, ``fails``, ``count``.
* ``trend``    - a distribution; ``avg``, ``min``, ``max``, ``med``, ``p(N)``, ``count``.

Trends are log-linear histograms in the spirit of HdrHistogram: each power of two is split into
128 linear sub-buckets, so any percentile is within 1% of the true value, and a histogram holds
at most a few thousand integers whatever the run's length. They merge exactly, which is how the
HTTP worker processes ship latency to the engine (:meth:`Trend.encode`).

While a trend holds few samples (up to :data:`EXACT_SAMPLES`) it also keeps them exactly, and
percentiles follow k6's definition: linear interpolation between the closest ranks,
``p(q) = v[floor(i)] + (v[ceil(i)] - v[floor(i)]) * (i - floor(i))`` with ``i = q/100 * (n-1)``
over the sorted samples ``v``. Ten reconnect times give a p95 between the two largest, not the
largest. Beyond that bound, the histogram answers (within 1%).

Every sample is recorded twice: under its session and for the run as a whole. A metric that a
criterion reads over a sliding window also keeps a ring of per-slot aggregates
(:class:`Windowed`), so a window costs memory in proportion to its number of slots, not to
traffic.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Protocol, Union

from console import units

__all__ = [
    "CounterValue",
    "GaugeValue",
    "MetricSpec",
    "MetricType",
    "MetricsRegistry",
    "RateValue",
    "Series",
    "Trend",
    "Windowed",
]


class MetricType(str, Enum):
    COUNTER = "counter"
    GAUGE = "gauge"
    RATE = "rate"
    TREND = "trend"


@dataclass(frozen=True)
class MetricSpec:
    """What a session kind promises to produce; profiles are checked against these at load time.

    ``unit`` is the unit of recorded values: ``ms``, ``s``, ``bytes``, ``MB``, ``MB/h``, ``%``,
    ``count`` or ``""``. ``combine`` says how per-session gauges make the run's value.
    """

    name: str
    type: MetricType
    unit: str = ""
    description: str = ""
    combine: str = "max"  # gauges only: "max", "sum" or "avg" across sessions


_SUB_BUCKETS = 128
_frexp = math.frexp
_MIN_TRACKED = 1e-3  # values below this (in the metric's unit) share bucket 0
EXACT_SAMPLES = 256  # a trend keeps its samples exactly up to this many (k6's percentiles)


class Trend:
    """A mergeable log-linear histogram with exact count, sum, min and max."""

    __slots__ = ("_buckets", "_exact", "count", "max", "min", "sum")

    def __init__(self) -> None:
        self._buckets: dict[int, int] = {}
        self._exact: list[float] | None = []  # None once there were more than EXACT_SAMPLES
        self.count = 0
        self.sum = 0.0
        self.min = math.inf
        self.max = -math.inf

    @staticmethod
    def _index(value: float) -> int:
        if value < _MIN_TRACKED:
            return 0
        # scaled = m * 2**e with 0.5 <= m < 1: power-of-two bucket e - 1, and the linear
        # sub-bucket int((2m - 1) * 128) = int(256m) - 128. frexp is exact and, in the HTTP
        # worker's hot path, cheaper than log2, floor and a power.
        m, e = _frexp(value / _MIN_TRACKED)
        return (e - 1) * _SUB_BUCKETS + int(m * (2 * _SUB_BUCKETS)) - (_SUB_BUCKETS - 1)

    @staticmethod
    def _midpoint(index: int) -> float:
        if index == 0:
            return 0.0
        exponent, sub = divmod(index - 1, _SUB_BUCKETS)
        base = 2.0**exponent
        return (base + (sub + 0.5) * base / _SUB_BUCKETS) * _MIN_TRACKED

    def record(self, value: float, count: int = 1) -> None:
        if value != value or count <= 0:  # NaN never enters a histogram
            return
        index = self._index(value)
        self._buckets[index] = self._buckets.get(index, 0) + count
        if self._exact is not None:
            if self.count + count <= EXACT_SAMPLES:
                self._exact.extend([value] * count)
            else:
                self._exact = None
        self.count += count
        self.sum += value * count
        self.min = min(self.min, value)
        self.max = max(self.max, value)

    def record_many(self, values: list[float]) -> None:
        """Record a batch of samples; the same histogram as one :meth:`record` per value.

        Count, sum, min and max are taken once per batch, in C, rather than per sample.
        """
        if not values:
            return
        if any(v != v for v in values):  # NaN never enters a histogram
            values = [v for v in values if v == v]
            if not values:
                return
        buckets = self._buckets
        get = buckets.get
        index = self._index
        for value in values:
            i = index(value)
            buckets[i] = get(i, 0) + 1
        if self._exact is not None:  # the same exact-sample rule as record()
            if self.count + len(values) <= EXACT_SAMPLES:
                self._exact.extend(values)
            else:
                self._exact = None
        self.count += len(values)
        self.sum += sum(values)
        self.min = min(self.min, min(values))
        self.max = max(self.max, max(values))

    def merge(self, other: Trend) -> None:
        if self._exact is not None:
            both = self.count + other.count <= EXACT_SAMPLES and other._exact is not None
            self._exact = self._exact + other._exact if both else None  # type: ignore[operator]
        for index, count in other._buckets.items():
            self._buckets[index] = self._buckets.get(index, 0) + count
        self.count += other.count
        self.sum += other.sum
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)

    def copy(self) -> Trend:
        clone = Trend()
        clone.merge(self)
        return clone

    def since(self, before: Trend | None) -> Trend:
        """The samples recorded here since ``before``, an earlier copy of this histogram.

        The interval's exact extremes are unknown, so its extreme buckets bound them.
        """
        if before is None:
            return self.copy()
        diff = Trend()
        for index, count in self._buckets.items():
            delta = count - before._buckets.get(index, 0)
            if delta > 0:
                diff._buckets[index] = delta
        diff.count = self.count - before.count
        diff.sum = self.sum - before.sum
        # Exact samples are appended in order, so the interval's are the ones after before's.
        exact, earlier = self._exact, before._exact
        diff._exact = exact[len(earlier) :] if exact is not None and earlier is not None else None
        if diff._buckets:
            diff.min = self._midpoint(min(diff._buckets))
            diff.max = self._midpoint(max(diff._buckets))
        return diff

    def buckets(self) -> list[tuple[float, float, int]]:
        """``(low, high, count)`` of every non-empty bucket, in value order."""
        out = []
        for index in sorted(self._buckets):
            if index == 0:
                low, high = 0.0, _MIN_TRACKED
            else:
                exponent, sub = divmod(index - 1, _SUB_BUCKETS)
                base = 2.0**exponent * _MIN_TRACKED
                low = base + sub * base / _SUB_BUCKETS
                high = low + base / _SUB_BUCKETS
            out.append((low, high, self._buckets[index]))
        return out

    def percentile(self, pct: float) -> float | None:
        """The value at percentile ``pct`` (0..100): k6's while the samples are kept exactly,
        within 1% after that; ``None`` when empty."""
        if self.count == 0:
            return None
        if self._exact is not None:
            values = sorted(self._exact)
            rank = min(max(pct, 0.0), 100.0) / 100.0 * (len(values) - 1)
            low, high = values[math.floor(rank)], values[math.ceil(rank)]
            return low + (high - low) * (rank - math.floor(rank))
        if pct <= 0:
            return self.min
        if pct >= 100:
            return self.max
        rank = math.ceil(pct / 100.0 * self.count)
        seen = 0
        for index in sorted(self._buckets):
            seen += self._buckets[index]
            if seen >= rank:
                return min(max(self._midpoint(index), self.min), self.max)
        return self.max

    def percentiles(self, pcts: Sequence[float]) -> list[float | None]:
        """:meth:`percentile` of each of ``pcts`` (ascending), over one walk of the buckets:
        a table row's median, p95 and p99 cost one sort, not three."""
        if self._exact is not None or self.count == 0:
            return [self.percentile(p) for p in pcts]
        out: list[float | None] = []
        ranks = [(p, math.ceil(p / 100.0 * self.count)) for p in pcts]
        ordered = iter(sorted(self._buckets))
        seen, index = 0, None
        for pct, rank in ranks:
            if pct <= 0 or pct >= 100:
                out.append(self.min if pct <= 0 else self.max)
                continue
            while index is None or seen < rank:  # at least the first bucket (rank 0)
                step = next(ordered, None)
                if step is None:
                    break
                index = step
                seen += self._buckets[index]
            if index is None or seen < rank:
                out.append(self.max)
            else:
                out.append(min(max(self._midpoint(index), self.min), self.max))
        return out

    @property
    def avg(self) -> float | None:
        return self.sum / self.count if self.count else None

    def encode(self) -> dict[str, object]:
        """A JSON-able form for shipping between processes; :meth:`decode` reverses it."""
        return {
            "b": [[k, v] for k, v in self._buckets.items()],
            "n": self.count,
            "s": self.sum,
            "lo": self.min if self.count else None,
            "hi": self.max if self.count else None,
            "x": self._exact,
        }

    @classmethod
    def decode(cls, data: Mapping[str, object]) -> Trend:
        trend = cls()
        buckets = data.get("b", [])
        assert isinstance(buckets, list)
        for index, count in buckets:
            trend._buckets[int(index)] = int(count)
        trend.count = int(data.get("n", 0))  # type: ignore[call-overload]
        trend.sum = float(data.get("s", 0.0))  # type: ignore[arg-type]
        lo, hi = data.get("lo"), data.get("hi")
        trend.min = float(lo) if lo is not None else math.inf  # type: ignore[arg-type]
        trend.max = float(hi) if hi is not None else -math.inf  # type: ignore[arg-type]
        exact = data.get("x")
        trend._exact = [float(v) for v in exact] if isinstance(exact, list) else None
        return trend

    def __len__(self) -> int:
        return len(self._buckets)


class CounterValue:
    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0.0

    def add(self, amount: float = 1.0) -> None:
        self.count += amount

    def merge(self, other: CounterValue) -> None:
        self.count += other.count


class RateValue:
    __slots__ = ("passes", "total")

    def __init__(self) -> None:
        self.passes = 0
        self.total = 0

    def add(self, ok: bool, count: int = 1) -> None:
        self.total += count
        if ok:
            self.passes += count

    def merge(self, other: RateValue) -> None:
        self.passes += other.passes
        self.total += other.total

    @property
    def rate(self) -> float | None:
        return self.passes / self.total if self.total else None


class GaugeValue:
    __slots__ = ("max", "min", "n", "sum", "value")

    def __init__(self) -> None:
        self.value: float | None = None
        self.min = math.inf
        self.max = -math.inf
        self.sum = 0.0
        self.n = 0

    def set(self, value: float) -> None:
        self.value = value
        self.min = min(self.min, value)
        self.max = max(self.max, value)
        self.sum += value
        self.n += 1

    def merge(self, other: GaugeValue) -> None:
        if other.value is not None:
            self.value = other.value
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)
        self.sum += other.sum
        self.n += other.n

    @property
    def avg(self) -> float | None:
        return self.sum / self.n if self.n else None


MetricValue = Union[CounterValue, GaugeValue, RateValue, Trend]  # noqa: UP007 (a runtime alias on 3.10)

_FACTORIES: dict[MetricType, type] = {
    MetricType.COUNTER: CounterValue,
    MetricType.GAUGE: GaugeValue,
    MetricType.RATE: RateValue,
    MetricType.TREND: Trend,
}


def new_value(kind: MetricType) -> MetricValue:
    value: MetricValue = _FACTORIES[kind]()
    return value


class Windowed:
    """Per-slot aggregates of one metric, so a criterion can read the last ``window`` seconds."""

    def __init__(self, kind: MetricType, window: float, slots: int = 60) -> None:
        self.kind = kind
        self.window = window
        self.slot = max(window / slots, 0.25)
        self._slots: deque[tuple[int, MetricValue]] = deque(maxlen=int(window / self.slot) + 1)

    def _current(self, now: float) -> MetricValue:
        key = int(now // self.slot)
        if not self._slots or self._slots[-1][0] != key:
            self._slots.append((key, new_value(self.kind)))
        return self._slots[-1][1]

    def add_counter(self, now: float, amount: float) -> None:
        value = self._current(now)
        assert isinstance(value, CounterValue)
        value.add(amount)

    def add_rate(self, now: float, ok: bool, count: int) -> None:
        value = self._current(now)
        assert isinstance(value, RateValue)
        value.add(ok, count)

    def add_gauge(self, now: float, sample: float) -> None:
        value = self._current(now)
        assert isinstance(value, GaugeValue)
        value.set(sample)

    def add_trend(self, now: float, trend: Trend) -> None:
        value = self._current(now)
        assert isinstance(value, Trend)
        value.merge(trend)

    def view(self, now: float) -> MetricValue:
        """The merged aggregate of the slots that fall inside the window ending at ``now``."""
        oldest = int((now - self.window) // self.slot) + 1
        merged = new_value(self.kind)
        for key, value in self._slots:
            if key >= oldest:
                merged.merge(value)  # type: ignore[arg-type]
        return merged


class Clock(Protocol):
    def __call__(self) -> float: ...


class MetricsRegistry:
    """All metric values of one run, per session and for the run as a whole.

    ``clock`` returns seconds since the run started; it timestamps windowed slots.
    Sessions do not use the registry directly: :class:`console.sessions.base.SessionContext`
    binds their session id.
    """

    def __init__(self, specs: Iterable[MetricSpec], clock: Clock) -> None:
        self.specs: dict[str, MetricSpec] = {spec.name: spec for spec in specs}
        self._clock = clock
        self._run: dict[str, MetricValue] = {}
        self._sessions: dict[str, dict[str, MetricValue]] = {}
        self._windows: dict[str, list[Windowed]] = {}
        # A counter nobody incremented is zero, not "no data": `count==0` must be able to pass.
        for spec in self.specs.values():
            if spec.type is MetricType.COUNTER:
                self._run[spec.name] = CounterValue()

    def watch_window(self, name: str, window: float) -> Windowed:
        """Keep a sliding window of ``name`` for a criterion; one ring per distinct window."""
        for existing in self._windows.get(name, []):
            if existing.window == window:
                return existing
        ring = Windowed(self._spec(name).type, window)
        self._windows.setdefault(name, []).append(ring)
        return ring

    def _spec(self, name: str) -> MetricSpec:
        try:
            return self.specs[name]
        except KeyError:
            raise KeyError(f"metric {name!r} was never declared") from None

    def _values(self, name: str, session: str) -> Iterator[MetricValue]:
        kind = self._spec(name).type
        run = self._run.get(name)
        if run is None:
            run = self._run[name] = new_value(kind)
        yield run
        per = self._sessions.setdefault(session, {})
        mine = per.get(name)
        if mine is None:
            mine = per[name] = new_value(kind)
        yield mine

    def add(self, name: str, amount: float = 1.0, *, session: str) -> None:
        for value in self._values(name, session):
            assert isinstance(value, CounterValue), name
            value.add(amount)
        for ring in self._windows.get(name, ()):
            ring.add_counter(self._clock(), amount)

    def rate(self, name: str, ok: bool, *, session: str, count: int = 1) -> None:
        for value in self._values(name, session):
            assert isinstance(value, RateValue), name
            value.add(ok, count)
        for ring in self._windows.get(name, ()):
            ring.add_rate(self._clock(), ok, count)

    def gauge(self, name: str, sample: float, *, session: str) -> None:
        values = list(self._values(name, session))
        mine = values[1]
        assert isinstance(mine, GaugeValue), name
        mine.set(sample)
        run = values[0]
        assert isinstance(run, GaugeValue)
        combined = self._combine(name)
        if combined is not None:
            run.set(combined)
            for ring in self._windows.get(name, ()):
                ring.add_gauge(self._clock(), combined)

    def _combine(self, name: str) -> float | None:
        samples = [
            v.value
            for per in self._sessions.values()
            if isinstance(v := per.get(name), GaugeValue) and v.value is not None
        ]
        if not samples:
            return None
        how = self._spec(name).combine
        if how == "sum":
            return sum(samples)
        if how == "avg":
            return sum(samples) / len(samples)
        return max(samples)

    def observe(self, name: str, sample: float, *, session: str) -> None:
        for value in self._values(name, session):
            assert isinstance(value, Trend), name
            value.record(sample)
        if rings := self._windows.get(name):
            one = Trend()
            one.record(sample)
            for ring in rings:
                ring.add_trend(self._clock(), one)

    def merge_trend(self, name: str, trend: Trend, *, session: str) -> None:
        """Fold a histogram recorded elsewhere (a worker process) into this run."""
        for value in self._values(name, session):
            assert isinstance(value, Trend), name
            value.merge(trend)
        for ring in self._windows.get(name, ()):
            ring.add_trend(self._clock(), trend)

    def run_value(self, name: str) -> MetricValue | None:
        return self._run.get(name)

    def items(self) -> Iterator[tuple[str, MetricValue]]:
        yield from self._run.items()

    def session_items(self) -> Iterator[tuple[str, str, MetricValue]]:
        """``(session, metric, value)`` for every per-session value (run-wide ones under "run")."""
        for session, values in list(self._sessions.items()):
            for name, value in list(values.items()):
                yield session, name, value


class Series:
    """A fixed-length ring of samples for a sparkline; memory never grows with run length.

    ``total`` counts every sample ever pushed, so a fault marker stored as an absolute sample
    number can be placed on the visible part of the ring (:meth:`marker_positions`).
    """

    __slots__ = ("_ring", "total")

    def __init__(self, maxlen: int = 120) -> None:
        self._ring: deque[float] = deque(maxlen=maxlen)
        self.total = 0

    def push(self, value: float) -> None:
        self._ring.append(value)
        self.total += 1

    def values(self) -> tuple[float, ...]:
        return tuple(self._ring)

    @property
    def last(self) -> float | None:
        return self._ring[-1] if self._ring else None

    def marker_positions(self, markers: Iterable[int]) -> tuple[int, ...]:
        start = self.total - len(self._ring)
        return tuple(m - start for m in markers if start <= m < self.total)


# ----- what a metric means: its aggregations, their units, summaries and text ---------------

# What a threshold may read of each type (k6's names); ``p(N)`` stands for any percentile.
AGGREGATIONS: dict[MetricType, tuple[str, ...]] = {
    MetricType.COUNTER: ("count", "rate"),
    MetricType.GAUGE: ("value", "min", "max", "avg"),
    MetricType.RATE: ("rate", "passes", "fails", "count"),
    MetricType.TREND: ("avg", "min", "max", "med", "count", "p(N)"),
}

# What a summary shows of each type, in k6's end-of-test order.
SUMMARY_AGGREGATIONS: dict[MetricType, tuple[str, ...]] = {
    MetricType.COUNTER: ("count", "rate"),
    MetricType.GAUGE: ("value", "min", "max", "avg"),
    MetricType.RATE: ("rate", "passes", "fails", "count"),
    MetricType.TREND: ("count", "avg", "min", "med", "max", "p(90)", "p(95)", "p(99)"),
}


def aggregation_unit(kind: MetricType, unit: str, aggregation: str) -> str:
    """The unit of an aggregation of a metric: a rate's ``rate`` is a fraction, a counter's
    ``rate`` is per second, counts are counts; everything else keeps the metric's unit."""
    if kind is MetricType.RATE and aggregation == "rate":
        return "fraction"
    if aggregation in ("count", "passes", "fails"):
        return "count"
    if kind is MetricType.COUNTER and aggregation == "rate":
        return "/s"
    return unit


def aggregate(value: MetricValue | None, aggregation: str, elapsed: float) -> float | None:
    """The number an aggregation reads from a metric value; None when there is no data."""
    if value is None:
        return None
    if isinstance(value, CounterValue):
        if aggregation == "count":
            return value.count
        return value.count / elapsed if elapsed > 0 else None
    if isinstance(value, RateValue):
        if aggregation == "rate":
            return value.rate
        if aggregation == "passes":
            return float(value.passes)
        if aggregation == "fails":
            return float(value.total - value.passes)
        return float(value.total)
    if isinstance(value, GaugeValue):
        if value.n == 0:
            return None
        return {"value": value.value, "min": value.min, "max": value.max, "avg": value.avg}[
            aggregation
        ]
    assert isinstance(value, Trend)
    if aggregation == "count":
        return float(value.count)
    if value.count == 0:
        return None
    if aggregation == "avg":
        return value.avg
    if aggregation == "min":
        return value.min
    if aggregation == "max":
        return value.max
    if aggregation == "med":
        return value.percentile(50)
    return value.percentile(float(aggregation[2:-1]))


def format_value(
    value: float | None, unit: str, aggregation: str = "", *, exact: bool = False
) -> str:
    """A metric value or a threshold target as text, the one formatter for both.

    ``exact`` is for targets: the number the profile wrote, never rounded (``p(95)<0.1`` reads
    ``< 0.1ms``, not ``< 0ms``); measured values are rounded for reading.
    """
    if value is None:
        return "-"
    if exact:
        return _exact(value, unit)
    if unit == "fraction":
        return f"{value * 100:.2f}%".replace(".00%", "%")
    if unit == "ms":
        return units.format_duration(value / 1000)
    if unit == "s":
        return units.format_duration(value)
    if unit == "bytes":
        return units.format_bytes(value)
    if unit == "%":
        return f"{value:.1f}%"
    if unit == "/s":
        return f"{value:.1f}/s"
    if unit == "bytes/s":
        return units.format_bytes(value) + "/s"
    if unit == "count":
        return f"{value:.0f}"
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return f"{text}{unit and ' ' + unit}"


def _exact(value: float, unit: str) -> str:
    def g(number: float) -> str:
        return f"{number:.12g}"

    if not math.isfinite(value):
        return str(value)  # "inf": k6 reads "Infinity" as a number too

    if unit == "fraction":
        return f"{g(value * 100)}%"
    if unit in ("ms", "s"):
        seconds = value / 1000 if unit == "ms" else value
        return f"{g(seconds)}s" if abs(seconds) >= 1 else f"{g(seconds * 1000)}ms"
    if unit == "bytes":
        for suffix, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
            if abs(value) >= scale:
                return f"{g(value / scale)}{suffix}"
        return f"{g(value)}B"
    if unit in ("%", "/s"):
        return f"{g(value)}{unit}"
    if unit == "count":
        return g(value)
    return f"{g(value)}{unit and ' ' + unit}"


def summarize(value: MetricValue, kind: MetricType, elapsed: float) -> dict[str, float | None]:
    """The figures a summary shows for one metric value (:data:`SUMMARY_AGGREGATIONS`)."""
    return {name: aggregate(value, name, elapsed) for name in SUMMARY_AGGREGATIONS[kind]}


def describe(kind: MetricType, unit: str, figures: Mapping[str, float | None]) -> str:
    """``avg=12ms min=3ms ...`` for the headless summary and the report; a byte counter reads
    ``131.5KB 26.3KB/s`` as k6 prints data_received."""
    if kind is MetricType.COUNTER and unit == "bytes":
        count, rate = figures.get("count"), figures.get("rate")
        text = format_value(count, "bytes")
        return text + (f" {format_value(rate, 'bytes')}/s" if rate is not None else "")
    return " ".join(
        f"{name}={format_value(value, aggregation_unit(kind, unit, name))}"
        for name, value in figures.items()
    )
