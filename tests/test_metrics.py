import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from console.metrics import MetricSpec, MetricsRegistry, MetricType, Series, Trend


def test_trend_percentiles_within_one_percent() -> None:
    rng = random.Random(1)
    values = [rng.lognormvariate(3, 1) for _ in range(50_000)]
    trend = Trend()
    for v in values:
        trend.record(v)
    values.sort()
    for pct in (50, 90, 95, 99, 99.9):
        exact = values[int(len(values) * pct / 100) - 1]
        assert trend.percentile(pct) == pytest.approx(exact, rel=0.01)
    assert trend.min == values[0] and trend.max == values[-1]
    assert len(trend) < 3000  # bounded: buckets, not samples


def test_trend_memory_is_bounded_whatever_the_count() -> None:
    trend = Trend()
    for i in range(200_000):
        trend.record(1 + (i % 1000))
    assert len(trend) < 1200


def test_trend_encode_decode_merge_is_exact() -> None:
    a, b = Trend(), Trend()
    for i in range(1, 1000):
        (a if i % 2 else b).record(i)
    merged = Trend.decode(a.encode())
    merged.merge(Trend.decode(b.encode()))
    whole = Trend()
    for i in range(1, 1000):
        whole.record(i)
    assert merged.count == whole.count
    assert merged.percentile(95) == whole.percentile(95)
    assert merged.sum == pytest.approx(whole.sum)


def test_empty_trend_has_no_percentile() -> None:
    assert Trend().percentile(95) is None


def test_series_is_a_ring_and_places_markers() -> None:
    s = Series(maxlen=5)
    for i in range(12):
        s.push(i)
    assert s.values() == (7, 8, 9, 10, 11)
    assert s.marker_positions([3, 8, 11]) == (1, 4)


def test_registry_windows_forget_old_samples() -> None:
    now = [0.0]
    reg = MetricsRegistry([MetricSpec("lat", MetricType.TREND, "ms")], lambda: now[0])
    ring = reg.watch_window("lat", 10.0)
    for t in range(30):
        now[0] = float(t)
        reg.observe("lat", 1000.0 if t < 15 else 10.0, session="a")
    view = ring.view(now[0])
    assert isinstance(view, Trend)
    assert view.max == 10.0  # the slow samples fell out of the window
    total = reg.run_value("lat")
    assert isinstance(total, Trend) and total.max == 1000.0


def test_gauges_combine_across_sessions() -> None:
    reg = MetricsRegistry(
        [MetricSpec("rss", MetricType.GAUGE, "bytes", combine="sum")], lambda: 0.0
    )
    reg.gauge("rss", 10, session="a")
    reg.gauge("rss", 5, session="b")
    reg.gauge("rss", 7, session="a")
    run = reg.run_value("rss")
    assert run is not None and run.value == 12  # type: ignore[union-attr]


# Ten reconnect times (ms), sorted: 100 110 120 130 140 150 160 170 180 900.
# k6 (TrendSink.P): i = q * (n - 1); v[floor i] + (v[ceil i] - v[floor i]) * (i - floor i).
#   p(95): i = 0.95 * 9 = 8.55 -> 180 + (900 - 180) * 0.55 = 576
#   p(90): i = 8.1            -> 180 + 720 * 0.1         = 252
#   p(50): i = 4.5            -> 140 + 10 * 0.5          = 145
#   p(0) = 100, p(100) = 900, p(99.9): i = 8.991 -> 180 + 720 * 0.991 = 893.52
@pytest.mark.parametrize(
    ("pct", "expected"),
    [(95, 576.0), (90, 252.0), (50, 145.0), (0, 100.0), (100, 900.0), (99.9, 893.52)],
)
def test_few_samples_give_k6_percentiles(pct: float, expected: float) -> None:
    trend = Trend()
    for value in (170, 100, 900, 120, 110, 150, 140, 130, 180, 160):
        trend.record(float(value))
    assert trend.percentile(pct) == pytest.approx(expected)


def test_exact_percentiles_survive_merge_and_encoding() -> None:
    a, b = Trend(), Trend()
    for value in (100, 110, 120, 130, 140):
        a.record(float(value))
    for value in (150, 160, 170, 180, 900):
        b.record(float(value))
    shipped = Trend.decode(b.encode())
    a.merge(shipped)
    assert a.percentile(95) == pytest.approx(576.0)


def test_many_samples_fall_back_to_the_histogram() -> None:
    trend = Trend()
    for i in range(1, 10_001):
        trend.record(float(i))
    assert trend._exact is None  # bounded memory on long runs
    assert trend.percentile(95) == pytest.approx(9500, rel=0.01)


def test_a_batch_is_the_same_trend_as_one_sample_at_a_time() -> None:
    """record_many (the HTTP worker's batches) and record agree on every percentile, whether
    the trend still holds its samples exactly or has moved on to the histogram."""
    from console.metrics import EXACT_SAMPLES

    for n in (3, EXACT_SAMPLES, EXACT_SAMPLES + 50):
        values = [float((i * 37) % 101) + 0.5 for i in range(n)]
        one, batched = Trend(), Trend()
        for v in values:
            one.record(v)
        batched.record(values[0])
        batched.record_many(values[1:])
        for pct in (0, 50, 90, 95, 99, 100):
            assert batched.percentile(pct) == one.percentile(pct), (n, pct)


def test_an_interval_of_a_trend_holds_exactly_the_samples_since() -> None:
    from console.metrics import EXACT_SAMPLES

    trend = Trend()
    trend.record_many([1.0, 2.0, 3.0])
    before = trend.copy()
    trend.record_many([100.0, 200.0])
    interval = trend.since(before)
    assert interval.count == 2 and interval.percentile(50) == 150.0
    trend.record_many([5.0] * EXACT_SAMPLES)  # past the exact samples: the histogram answers
    later = trend.since(before)
    assert later.count == 2 + EXACT_SAMPLES and later.percentile(50) is not None


@given(
    st.lists(st.floats(min_value=0.0, max_value=1e7, allow_nan=False), min_size=257, max_size=600),
    st.lists(st.floats(min_value=0.0, max_value=100.0), min_size=1, max_size=5),
)
def test_percentiles_in_one_walk_agree_with_percentile(
    values: list[float], pcts: list[float]
) -> None:
    trend = Trend()
    trend.record_many(values)
    wanted = sorted(pcts)
    assert trend.percentiles(wanted) == [trend.percentile(p) for p in wanted]
