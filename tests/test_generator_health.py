"""Generator health: a rate the worker cannot reach marks the run generator_saturated, with
evidence in the summary and the report; a modest rate does not."""

from __future__ import annotations

from pathlib import Path

import pytest

from console.engine import Run
from console.health import GeneratorHealth
from console.metrics import CounterValue, GaugeValue, MetricValue
from console.profile import load_profile_text

PROFILE = """
[run]
name = "health"
duration = "6s"
[[http]]
name = "api"
count = 1
executor = "constant-arrival-rate"
rate = {rate}
pre_allocated_vus = {vus}
max_vus = {vus}
  [[http.steps]]
  request = {{ url = "/health" }}
[[criteria]]
metric = "generator_saturated"
threshold = "count==0"
"""


@pytest.mark.slow
async def test_an_unreachable_rate_saturates_the_generator_and_a_modest_one_does_not(
    tmp_path: Path,
) -> None:
    modest = await Run(
        load_profile_text(PROFILE.format(rate=20, vus=5), name="m"), runs_dir=tmp_path
    ).run()
    assert modest.exit_code == 0, modest.snapshot.generator
    assert modest.snapshot.generator == ()
    worker = modest.snapshot.metric("worker_cpu")
    assert worker is not None and worker.get("value") is not None  # the worker reports it
    flood = await Run(
        load_profile_text(PROFILE.format(rate=20000, vus=2), name="f"), runs_dir=tmp_path
    ).run()
    assert flood.exit_code == 1
    verdict, *evidence = flood.snapshot.generator
    assert "not trustworthy" in verdict and "dropped iterations" in verdict
    assert evidence and "dropped iterations" in evidence[0]
    report = (flood.run_dir / "report.md").read_text()
    assert "## Load generator" in report and "not trustworthy" in report


def test_cpu_and_lag_must_be_sustained() -> None:
    values: dict[str, MetricValue] = {}
    health = GeneratorHealth(values.get)

    def gauge(name: str, value: float) -> None:
        g = GaugeValue()
        g.set(value)
        values[name] = g

    gauge("worker_cpu", 99.0)
    assert not health.check(1.0)  # one busy sample is not saturation
    gauge("worker_cpu", 20.0)
    assert not health.check(2.0)
    gauge("worker_cpu", 99.0)
    assert not health.check(3.0)
    assert health.check(4.0) and "worker CPU 99%" in health.evidence[0]
    drops = CounterValue()
    drops.add(3)
    values["dropped_iterations"] = drops
    gauge("worker_cpu", 10.0)
    assert health.check(5.0) and not health.check(6.0)  # drops count once, when they happen
    assert health.saturated_samples == 2
