from typing import Any

import pytest

from console.criteria import (
    Criterion,
    CriterionError,
    RecoveryTracker,
    parse_recovery_threshold,
    parse_threshold,
)
from console.metrics import (
    CounterValue,
    GaugeValue,
    MetricSpec,
    MetricType,
    RateValue,
    Trend,
    Windowed,
)

TREND_MS = MetricSpec("http_req_duration", MetricType.TREND, "ms")


@pytest.mark.parametrize(
    ("text", "target"),
    [
        ("p(95)<2000", 2000),
        ("p(99.9)<5000", 5000),
        ("p(95)<2s", 2000),
        ("avg<=150ms", 150),
        ("med>=1", 1),
        ("max<1m", 60000),
        ("min>0", 0),
        ("count==10", 10),
    ],
)
def test_trend_thresholds(text: str, target: float) -> None:
    assert parse_threshold(text, TREND_MS).target == pytest.approx(target)


def test_every_operator_compares() -> None:
    for op, expect in (("<", False), ("<=", True), (">", False), (">=", True), ("==", True)):
        assert parse_threshold(f"avg{op}5", TREND_MS).holds(5) is expect


def test_units_follow_the_metric() -> None:
    assert parse_threshold("rate>=90%", MetricSpec("r", MetricType.RATE)).target == pytest.approx(
        0.9
    )
    assert (
        parse_threshold("value<200MB", MetricSpec("rss", MetricType.GAUGE, "bytes")).target == 200e6
    )
    assert parse_threshold("avg<5%", MetricSpec("cpu", MetricType.GAUGE, "%")).target == 5
    assert parse_threshold("value<100", MetricSpec("g", MetricType.GAUGE, "MB/h")).target == 100
    assert parse_threshold("rate>10/s", MetricSpec("c", MetricType.COUNTER, "count")).target == 10


@pytest.mark.parametrize(
    ("text", "spec", "message"),
    [
        ("p(95)<2000", MetricSpec("c", MetricType.COUNTER), "does not apply"),
        ("p95<2000", TREND_MS, "does not apply"),
        ("p(95)<2 parsecs", TREND_MS, "unknown unit"),
        ("p(95) 2000", TREND_MS, "bad threshold"),
        ("avg<200MB", TREND_MS, "size does not fit"),
        ("p(120)<1", TREND_MS, "not a percentile"),
    ],
)
def test_bad_thresholds(text: str, spec: MetricSpec, message: str) -> None:
    with pytest.raises(CriterionError, match=message):
        parse_threshold(text, spec)


def window_criterion(threshold: str, ring: Windowed) -> Criterion:
    return Criterion(
        name="w",
        threshold=parse_threshold(threshold, TREND_MS),
        metric="x",
        scope="window",
        window=ring,
    )


def recovery(threshold: str, after: str, within: float) -> Criterion:
    return Criterion(
        name="r",
        threshold=parse_recovery_threshold(threshold),
        metric="",
        scope="recovery",
        after=after,
        within=within,
    )


def run_criterion(text: str, spec: MetricSpec, value: object, **kw: Any) -> Criterion:
    c = Criterion(
        name="c", threshold=parse_threshold(text, spec), metric=spec.name, scope="run", **kw
    )
    c.evaluate(10.0, 10.0, {spec.name: value}, RecoveryTracker())  # type: ignore[dict-item]
    return c


def test_seed_criteria_are_expressible() -> None:
    ends = CounterValue()
    assert (
        run_criterion(
            "count==0", MetricSpec("session_abnormal_ends", MetricType.COUNTER), ends
        ).state
        == "pass"
    )
    ends.add()
    assert (
        run_criterion(
            "count==0", MetricSpec("session_abnormal_ends", MetricType.COUNTER), ends
        ).state
        == "fail"
    )
    ok = RateValue()
    for i in range(10):
        ok.add(i != 0)
    assert (
        run_criterion("rate>=90%", MetricSpec("ssh_reconnect_success", MetricType.RATE), ok).state
        == "pass"
    )
    times = Trend()
    for ms in (1069, 1078, 5568, 5583):
        times.record(ms)
    assert (
        run_criterion(
            "p(95)<=15s", MetricSpec("ssh_reconnect_time", MetricType.TREND, "ms"), times
        ).state
        == "pass"
    )
    rss = GaugeValue()
    rss.set(250e6)
    assert (
        run_criterion(
            "value<200MB", MetricSpec("console_rss", MetricType.GAUGE, "bytes"), rss
        ).state
        == "fail"
    )
    loss = RateValue()
    loss.add(True, 3)
    loss.add(False, 997)
    assert (
        run_criterion("rate<1%", MetricSpec("pty_output_loss", MetricType.RATE), loss).state
        == "pass"
    )


def test_no_data_is_pending_then_not_judged_at_the_end() -> None:
    c = Criterion(name="c", threshold=parse_threshold("p(95)<1", TREND_MS), metric="x", scope="run")
    c.evaluate(1.0, 1.0, {}, RecoveryTracker())
    assert c.state == "pending"
    c.evaluate(2.0, 2.0, {}, RecoveryTracker(), final=True)
    # Neither a pass (a threshold never passes silently) nor a failure (nothing went wrong).
    assert c.state == "not_judged" and c.evidence == "no data: x was never recorded"


def test_the_run_verdict_orders_fail_then_not_judged() -> None:
    from console.errors import ExitStatus
    from console.verdicts import exit_status, overall

    assert overall(["pass", "not_judged", "fail"]) == "fail"
    assert overall(["pass", "not_judged"]) == "not_judged"
    assert overall(["pass"]) == "pass"
    assert exit_status("not_judged") == ExitStatus.NOT_JUDGED == 3
    assert exit_status("fail") == ExitStatus.FAILED and exit_status("pass") == ExitStatus.OK


def test_window_criterion_flips_and_remembers_failure() -> None:
    ring = Windowed(MetricType.TREND, 5.0)
    c = window_criterion("p(95)<100", ring)
    states = []
    for t in range(20):
        one = Trend()
        one.record(500.0 if 8 <= t < 10 else 10.0)
        ring.add_trend(float(t), one)
        c.evaluate(float(t), float(t), {}, RecoveryTracker())
        states.append(c.state)
    assert "fail" in states and states[-1] == "pass"  # it recovered once the slow slots left
    assert [s for _, s in c.flips] == ["pass", "fail", "pass"]
    c.evaluate(20.0, 20.0, {}, RecoveryTracker(), final=True)
    assert c.state == "fail" and "failed over the window" in c.evidence


def test_recovery_criterion_counts_sessions_back_in_time() -> None:
    tracker = RecoveryTracker()
    c = recovery("rate>=90%", "ssh.drop", 15.0)
    tracker.opened(1, "ssh.drop", 100.0, [f"s{i}" for i in range(10)])
    for i in range(9):
        tracker.recovered(f"s{i}", 101.0 + i)
    c.evaluate(105.0, 105.0, {}, tracker)
    assert c.state == "pending"  # the window is still open and one session is not back
    tracker.recovered("s9", 130.0)  # too late
    c.evaluate(131.0, 131.0, {}, tracker)
    assert c.state == "pass" and c.value == pytest.approx(0.9)
    tracker.opened(2, "ssh.drop", 200.0, ["s0", "s1"])
    tracker.recovered("s0", 201.0)
    c.evaluate(216.0, 216.0, {}, tracker)
    assert c.state == "fail" and c.value == pytest.approx(0.5)


def test_recovery_time_percentiles() -> None:
    tracker = RecoveryTracker()
    tracker.opened(1, "pty.kill", 0.0, ["a", "b"])
    tracker.recovered("a", 1.0)
    tracker.recovered("b", 2.0)
    c = recovery("max<=15s", "pty.kill", 15.0)
    c.evaluate(3.0, 3.0, {}, tracker)
    assert c.state == "pass" and c.value == pytest.approx(2000, rel=0.01)


def test_recovery_times_count_sessions_that_never_came_back() -> None:
    tracker = RecoveryTracker()
    tracker.opened(1, "ssh.drop", 0.0, ["a", "b", "c", "d"])
    tracker.recovered("a", 1.0)
    c = recovery("max<15s", "ssh.drop", 15.0)
    c.evaluate(16.0, 16.0, {}, tracker)
    assert c.state == "fail" and c.value == pytest.approx(16000, rel=0.01)


def test_an_early_recovery_failure_is_not_forgotten_after_trimming() -> None:
    tracker = RecoveryTracker()
    c = recovery("rate>=90%", "ssh.drop", 1.0)
    tracker.opened(0, "ssh.drop", 0.0, ["a"])  # never back
    c.evaluate(2.0, 2.0, {}, tracker)
    assert c.state == "fail"
    for i in range(1, 601):  # 600 good faults push the bad one out of the tracker's 500
        tracker.opened(i, "ssh.drop", 10.0 * i, ["a"])
        tracker.recovered("a", 10.0 * i + 0.1)
        c.evaluate(10.0 * i + 2, 10.0 * i + 2, {}, tracker)
    assert all(r.fault_id != 0 for r in tracker.faults)
    c.evaluate(7000.0, 7000.0, {}, tracker, final=True)
    assert c.state == "fail" and c.value == 0.0


def test_a_window_that_empties_keeps_its_verdict() -> None:
    ring = Windowed(MetricType.TREND, 2.0)
    c = window_criterion("p(95)<100", ring)
    one = Trend()
    one.record(10.0)
    ring.add_trend(0.5, one)
    c.evaluate(1.0, 1.0, {}, RecoveryTracker())
    c.evaluate(10.0, 10.0, {}, RecoveryTracker(), final=True)  # the load ended at 1 s
    assert c.state == "pass" and c.value == pytest.approx(10, rel=0.01)


def test_withdrawing_a_refused_fault_restores_the_one_still_awaited() -> None:
    tracker = RecoveryTracker()
    tracker.opened(1, "pty.hang", 0.0, ["a"])
    tracker.opened(2, "pty.hang", 1.0, ["a"])  # refused by the session: "already hung"
    tracker.withdraw(2, ["a"])
    assert tracker.is_open("a")
    assert tracker.recovered("a", 3.0) == pytest.approx(3.0)  # closes fault 1, the real one
    assert [r.fault_id for r in tracker.faults] == [1]
