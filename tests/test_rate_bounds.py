"""Typed and injected rate changes stay bounded: no value makes a worker spin or crash.

An unbounded ``:rate api +99999999999999999999%`` scaled the arrival rate so far that the
next arrival's step vanished in the float (``next_t + 1e-20 == next_t``): the worker's loop
dispatched forever without waiting and could not be stopped. ``inf`` did the same.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
from pathlib import Path
from typing import Any, cast

import pytest

from console.command_line import parse
from console.config import read_table
from console.errors import FaultNotApplicable, ProfileError, UsageError
from console.profile import load_profile_text
from console.sessions.http.client import make_client
from console.sessions.http.config import MAX_BURST, MAX_RATE, HttpGroupConfig
from console.sessions.http.executors import MAX_SCALE, Executor
from console.sessions.http.flow import Flow
from console.sessions.http.stats import Stats
from console.snapshot import SessionSnapshot
from tests.synthetic_run import synthetic_snapshot
from tests.test_request_table import _session


def _api() -> SessionSnapshot:
    actions = ("http.rate_up", "http.rate_down", "http.set_rate", "http.pause")
    first = synthetic_snapshot().sessions[0]
    return dataclasses.replace(first, id="api#0", group="api", kind="http", actions=actions)


def _executor(**raw: object) -> Executor:
    config, issues = read_table(HttpGroupConfig, {"name": "api", **raw}, ("http",))
    assert config is not None, issues
    flow = Flow(config, "http://127.0.0.1:9", Stats(), Path("."))
    return Executor(config, flow, lambda: make_client(config.client))


@pytest.mark.parametrize(
    ("typed", "said"),
    [
        ("+99999999999999999999%", "http.rate_up by: must be at most 9900%, got 1e+20%"),
        ("+" + "9" * 400 + "%", "http.rate_up by: must be a finite number, got inf"),
        ("-9901%", "http.rate_down by: must be at most 9900%, got 9901%"),
    ],
)
def test_a_typed_change_beyond_the_bounds_is_refused_in_words(typed: str, said: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse(f"rate api {typed}", [_api()])
    assert str(caught.value) == said


def test_a_pasted_huge_value_is_quoted_short() -> None:
    with pytest.raises(UsageError) as caught:
        parse("rate api " + "9" * 100_000, [_api()])
    assert len(str(caught.value)) < 200 and "at most 1000000/s" in str(caught.value)


@pytest.mark.parametrize("factor", [math.inf, 1e20, math.nan, -1.0, 0.0])
def test_no_scale_makes_the_next_arrival_never_come_later(factor: float) -> None:
    executor = _executor(executor="constant-arrival-rate", rate=50, duration="10s")
    executor.control("scale", factor)
    assert 0 < executor.scale <= MAX_SCALE
    # The schedule moves on: an arrival at 1 s is followed by a later one.
    assert executor.shape.next_arrival(1.0, executor.scale) > 1.0


def test_a_scaled_arrival_rate_stays_within_the_profiles_bound() -> None:
    executor = _executor(executor="constant-arrival-rate", rate=MAX_RATE / 2, duration="10s")
    executor.control("scale", 1000.0)
    assert executor.shape.rate_at(1.0) * executor.scale <= MAX_RATE
    closed = _executor(executor="constant-vus", vus=10, duration="10s")
    closed.control("scale", 1000.0)
    assert closed.scale == MAX_SCALE


BURST_PROFILE = """
[run]
name = "b"
[[http]]
name = "api"
  [[http.steps]]
  request = { url = "/" }
[[faults]]
at = "1s"
action = "http.burst"
target = "api"
params = { count = 100000 }
"""


def test_a_huge_burst_is_refused_typed_in_a_profile_and_through_the_api() -> None:
    """``:burst api 100000000`` started that many iterations at once (only 0..1000000 was
    checked, and only for [[faults]]). A burst is at most MAX_BURST, as a group's VUs are."""
    api = dataclasses.replace(_api(), actions=("http.burst",))
    with pytest.raises(UsageError) as caught:
        parse("burst api 100000000", [api])
    assert str(caught.value) == f"http.burst count: must be at most {MAX_BURST}, got 1e+08"
    assert parse(f"burst api {MAX_BURST}", [api]).params == {"count": MAX_BURST}
    with pytest.raises(ProfileError) as refused:
        load_profile_text(BURST_PROFILE, path="b.toml")
    assert f"count: must be at most {MAX_BURST}, got 100000" in str(refused.value)
    session = _session(0)
    with pytest.raises(FaultNotApplicable, match=f"at most {MAX_BURST}"):
        asyncio.run(session.inject("burst", {"count": 10**8}, cast(Any, None)))


async def test_a_pause_before_the_scenario_begins_counts_only_from_its_start() -> None:
    """Paused and resumed during ``start_time``, the scenario clock was moved off 0 ("not
    begun"), so a worker reported its machine's uptime as scenario seconds; a pause spanning
    the start moved the scenario by the whole pause, not just the part after it began."""
    import asyncio

    executor = _executor(
        executor="constant-vus", vus=1, duration="10s", start_time="0.2s", steps=[]
    )
    executor.control("pause", 0)
    executor.control("resume", 0)
    assert executor.started == 0.0  # still not begun
    executor.control("pause", 0)
    task = asyncio.ensure_future(executor.run())
    await asyncio.sleep(0.5)  # 0.2 s before the start, 0.3 s after it
    assert 0.0 <= executor.scenario_seconds() < 0.05  # paused since it began
    executor.control("resume", 0)
    assert abs(executor.scenario_seconds()) < 0.05  # the 0.2 s before the start not taken off
    executor.stop()
    await asyncio.wait_for(task, 10)
