"""profiles/pty-stability.toml: the node-pty spike's numbers, and a scaled-down run that passes."""

from __future__ import annotations

import asyncio
import os
import stat
import sys
from pathlib import Path

import pytest

from console.engine import Run
from console.profile import load_profile, load_profile_text
from console.sessions.pty import PtyConfig

REPO = Path(__file__).resolve().parents[1]
PROFILE = REPO / "profiles" / "pty-stability.toml"


# Real processes and servers: the full suite, not the fast tier (-m "not slow").
pytestmark = pytest.mark.slow


def test_the_profile_carries_the_spikes_numbers() -> None:
    profile = load_profile(PROFILE)
    assert profile.run.duration == 30 * 60
    groups = {g.config.name: g.config for g in profile.groups}
    long, burst = groups["long"], groups["burst"]
    assert isinstance(long, PtyConfig) and isinstance(burst, PtyConfig)
    assert long.count == 30 and long.restart == "on-crash"
    assert list(burst.command[-6:]) == ["--count", "50000", "--size", "200", "--linger", "60"]
    (kill,) = profile.faults
    assert (kill.action, kill.target, kill.pick) == ("pty.kill", "long", 1)
    thresholds = {c.name: c.threshold.text for c in profile.criteria}
    assert thresholds["30-minute work success rate > 95%"] == "rate>95%"
    assert thresholds["memory growth < 100 MB/hour"] == "value<100"
    assert thresholds["30-session stability > 90%"] == "rate>90%"
    assert thresholds["output loss < 1%"] == "rate<1%"
    assert thresholds["restart after crash 100%"] == "rate==100%"


@pytest.fixture
def stressdeck_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The profile runs `stressdeck emit`; point that name at this checkout."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    shim = bindir / "stressdeck"
    shim.write_text(f'#!/bin/sh\nPYTHONPATH="{REPO}" exec "{sys.executable}" -m console "$@"\n')
    shim.chmod(shim.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")


@pytest.mark.usefixtures("stressdeck_on_path")
async def test_a_scaled_down_run_meets_the_go_criteria(tmp_path: Path) -> None:
    text = PROFILE.read_text()
    scaled = (
        text.replace("count = 30 ", "count = 4 ")
        .replace('"50000"', '"5000"')
        .replace('"--linger", "60"', '"--linger", "1"')
        .replace('at = "60s"', 'at = "2s"')
        .replace('every = "2m"', 'every = "2s"')
    )
    assert scaled.count("count = 4 ") == 1 and '"5000"' in scaled
    profile = load_profile_text(scaled, path=PROFILE, name="pty-stability")
    run = Run(profile, runs_dir=tmp_path, duration=7.0)
    result = await asyncio.wait_for(run.run(), 60)
    states = {c.name: (c.state, c.value_text) for c in result.snapshot.criteria}
    # Memory growth needs 30-60 s of samples; everything else must already pass.
    needs_time = {"memory growth < 100 MB/hour", "console memory growth < 100 MB/hour"}
    for name, (state, value) in states.items():
        if name not in needs_time:
            assert state == "pass", (name, value)
    kills = [e for e in run.event_log.recent if e.event == "crashed"]
    assert len(kills) >= 2 and all(e.data["signal"] == "SIGKILL" for e in kills)
    burst = result.snapshot.session("burst#0")
    assert burst is not None and dict(burst.counters)["lost"] == "0"
    assert (result.run_dir / "output" / "burst#0.log").stat().st_size >= 5000 * 200
