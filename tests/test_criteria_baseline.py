"""Thresholds relative to a baseline: the run's start, or the window before each fault."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from console.criteria import parse_threshold
from console.engine import Run
from console.errors import ProfileError
from console.metrics import MetricSpec, MetricType
from console.profile import load_profile_text
from tests.fast_clock import loop_clock, on_loop_time

pytestmark = pytest.mark.usefixtures("fake_kind")


def profile(body: str, duration: str = "6s") -> Any:
    return load_profile_text(
        f'[run]\nname = "t"\nduration = "{duration}"\n[[fake]]\ncount = 2\ninterval = "50ms"\n'
        + body,
        path="t.toml",
    )


async def verdict(body: str, duration: str = "6s", tmp_path: Path | None = None) -> Any:
    assert tmp_path is not None
    result = await Run(profile(body, duration), runs_dir=tmp_path, clock=loop_clock()).run()
    (criterion,) = result.snapshot.criteria
    return criterion


def test_relative_thresholds_parse() -> None:
    trend = MetricSpec("x", MetricType.TREND, "ms")
    rate = MetricSpec("y", MetricType.RATE)
    counter = MetricSpec("z", MetricType.COUNTER, "count")
    assert parse_threshold("p(95)<1.5x baseline", trend).factor == 1.5
    assert parse_threshold("rate<2x baseline", rate).factor == 2.0
    low = parse_threshold("count>0.9 × baseline", counter)
    assert low.factor == 0.9 and low.against(100.0).holds(95.0)
    assert parse_threshold("p(95)<1500", trend).factor is None  # absolute stays absolute


def test_a_recovery_criterion_has_no_baseline() -> None:
    with pytest.raises(ProfileError, match="no baseline"):
        profile('[[criteria]]\nafter = "fake.drop"\nwithin = "1s"\nthreshold = "max<2x baseline"\n')


SLOW = '[[faults]]\nat = "3s"\naction = "fake.slow"\nparams = {{ latency = {latency} }}\n'
RUN_P95 = (
    '[[criteria]]\nmetric = "fake_latency"\nthreshold = "p(95)<1.5x baseline"\nbaseline = "2s"\n'
)


@on_loop_time
async def test_run_scope_baseline_is_the_start_of_the_run(tmp_path: Path) -> None:
    clean = await verdict(RUN_P95, tmp_path=tmp_path)
    assert clean.state == "pass" and clean.target_text == "< 1.5x baseline (15ms)"
    slow = await verdict(RUN_P95 + SLOW.format(latency=50.0), tmp_path=tmp_path)
    assert slow.state == "fail" and slow.value == pytest.approx(50.0, rel=0.02)


@on_loop_time
async def test_window_count_against_the_start_of_the_run(tmp_path: Path) -> None:
    body = (
        '[[criteria]]\nmetric = "fake_samples"\nthreshold = "count>0.9x baseline"\n'
        'window = "2s"\nbaseline = "2s"\n'
    )
    assert (await verdict(body, tmp_path=tmp_path)).state == "pass"
    drop = '[[faults]]\nat = "3s"\naction = "fake.drop"\nparams = { down = 1.0 }\n'
    dropped = await verdict(body + drop, tmp_path=tmp_path)
    assert dropped.state == "fail" and "failed over the window" in dropped.evidence


@on_loop_time
async def test_a_run_shorter_than_its_baseline_is_not_judged_with_the_reason(
    tmp_path: Path,
) -> None:
    """No baseline, no verdict: not judged (exit 3), never a silent pass nor a system failure."""
    short = await verdict(RUN_P95.replace('"2s"', '"10s"'), tmp_path=tmp_path)
    assert short.state == "not_judged", (short.state, short.evidence)
    assert "10s baseline" in short.evidence


AFTER = (
    '[[criteria]]\nmetric = "fake_latency"\nafter = "fake.slow"\nwithin = "1s"\n'
    'threshold = "p(95)<1.5x baseline"\nbaseline = "2s"\n'
)


@on_loop_time
async def test_after_a_fault_the_baseline_is_the_window_before_it(tmp_path: Path) -> None:
    mild = await verdict(AFTER + SLOW.format(latency=12.0), tmp_path=tmp_path)
    assert mild.state == "pass", mild
    assert "vs baseline 10.0ms" in mild.evidence and mild.target_text == "< 1.5x baseline (15ms)"
    harsh = await verdict(AFTER + SLOW.format(latency=50.0), tmp_path=tmp_path)
    assert harsh.state == "fail" and "1 over target" in harsh.evidence, harsh
    # Without a fault of that action there is nothing to judge: not judged, with the reason.
    none = await verdict(AFTER, tmp_path=tmp_path)
    assert none.state == "not_judged" and none.evidence
