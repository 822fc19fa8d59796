"""Seeded chaos: same seed, same faults at the same times; recorded as chaos; replayable."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest

from console.chaos import ChaosChoice, ChaosPlan, draws
from console.engine import Run
from console.errors import ProfileError
from console.profile import load_profile_text
from console.replay import load_replay
from tests.fast_clock import loop_clock, on_loop_time

pytestmark = pytest.mark.usefixtures("fake_kind")

CHAOS = """
[run]
name = "chaos"
duration = "60s"
[[fake]]
name = "t"
count = 4
[[chaos]]
rate = "12/m"
seed = {seed}
[[chaos.menu]]
action = "fake.drop"
target = "t"
pick = 1
weight = 3
params = {{ down = 0.5 }}
[[chaos.menu]]
action = "fake.slow"
weight = 1
"""


def fault_list(run: Run) -> list[tuple[float, str, str, tuple[str, ...], str]]:
    return [(f.t, f.action, f.target, f.sessions, f.source) for f in run.faults]


async def chaos_run(seed: int, tmp_path: Path, **kw: Any) -> Run:
    run = Run(
        load_profile_text(CHAOS.format(seed=seed), path="c.toml"),
        runs_dir=tmp_path,
        clock=loop_clock(),
        **kw,
    )
    await run.run()
    return run


@on_loop_time
async def test_the_same_seed_gives_the_same_faults_at_the_same_times(tmp_path: Path) -> None:
    first, second = await chaos_run(7, tmp_path), await chaos_run(7, tmp_path)
    faults = fault_list(first)
    assert len(faults) >= 5 and faults == fault_list(second)
    assert {f[4] for f in faults} == {"chaos"}
    assert {f[1] for f in faults} == {"fake.drop", "fake.slow"}
    assert all(len(f[3]) == 1 for f in faults if f[1] == "fake.drop")  # pick = 1
    other = await chaos_run(8, tmp_path)
    assert fault_list(other) != faults


@on_loop_time
async def test_a_replay_reproduces_the_chaos_once(tmp_path: Path) -> None:
    first = await chaos_run(7, tmp_path)
    replay = load_replay(first.run_dir)
    assert [f.source for f in replay] == ["chaos"] * len(first.faults)
    again = await chaos_run(7, tmp_path, replay=replay)
    assert [(f.t, f.action, f.sessions) for f in again.faults] == [
        (f.t, f.action, f.sessions) for f in first.faults
    ]
    assert {f.source for f in again.faults} == {"replay"}


@on_loop_time
async def test_chaos_switched_off_skips_its_draws(tmp_path: Path) -> None:
    run = Run(
        load_profile_text(CHAOS.format(seed=7), path="c.toml"),
        runs_dir=tmp_path,
        clock=loop_clock(),
    )
    assert run.set_chaos(False) is False
    await run.run()
    assert run.faults == []
    assert any(e.event == "chaos_off" for e in run.event_log.recent)


def test_draws_follow_the_rate_and_the_weights() -> None:
    menu = (ChaosChoice("a.x", weight=3.0), ChaosChoice("a.y", weight=1.0))
    made = list(draws(ChaosPlan(rate=1.0, seed=1, start=0.0, stop=None, menu=menu), 4000.0))
    assert 3600 < len(made) < 4400  # Poisson: 4000 expected, sd 63
    share = sum(d.choice.action == "a.x" for d in made) / len(made)
    assert 0.7 < share < 0.8
    assert all(b.t > a.t for a, b in itertools.pairwise(made))


def test_a_chaos_menu_is_checked_like_faults() -> None:
    bad = CHAOS.format(seed=1).replace('action = "fake.slow"', 'action = "fake.slwo"')
    with pytest.raises(ProfileError, match=r"did you mean 'fake\.slow'"):
        load_profile_text(bad, path="c.toml")


@pytest.mark.slow
async def test_the_chaos_key_switches_it_off_and_on(tmp_path: Path) -> None:
    from tests.console_harness import (
        pty_profile,
        quit_app,
        real_app,
        record_notifications,
        running,
        until,
    )

    chaos = (
        '[[chaos]]\nrate = "1/m"\nseed = 3\n[[chaos.menu]]\naction = "pty.kill"\ntarget = "emit"\n'
    )
    app = real_app(tmp_path, pty_profile(keys=chaos))
    told = record_notifications(app)
    async with app.run_test(size=(120, 40)) as pilot:
        await running(pilot, app)
        await pilot.press("c")
        await until(pilot, lambda: "chaos off" in told, "chaos switched off")
        await pilot.press("c")
        await until(pilot, lambda: "chaos on" in told, "chaos switched on")
        await until(
            pilot,
            lambda: any(e.event == "chaos_on" for e in app.snapshot.recent_events),  # type: ignore[union-attr]
            "a chaos_on event",
        )
        await quit_app(pilot, app)
