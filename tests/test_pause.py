"""Pause means pause: a paused run stops its PTY programs' output and its SSH polling."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from console.engine import Run
from tests.ssh_support import named, read_events, run_profile, wait_all_running

PROFILE = """
[run]
name = "t"
duration = "60s"

[[ssh]]
name = "pool"
target = "embedded"
poll_interval = "200ms"
pty_interval = "100ms"
intensity = "low"

[[pty]]
name = "emit"
command = ["stressdeck", "emit", "--count", "0", "--rate", "200", "--size", "40"]
"""


def _count(run: Run, metric: str) -> float:
    summary = run.make_snapshot().metric(metric)
    return (summary.get("count") or 0.0) if summary is not None else 0.0


@pytest.mark.slow
async def test_pause_stops_pty_output_and_ssh_polling(tmp_path: Path) -> None:
    seen: dict[str, float] = {}

    async def during(run: Run) -> None:
        await wait_all_running(run)
        await asyncio.sleep(1.0)
        await run.pause(source="key")
        await asyncio.sleep(0.5)  # what was in flight lands
        lines, polls = _count(run, "pty_lines"), _count(run, "ssh_exec_latency")
        header = run.make_snapshot().paused
        await asyncio.sleep(1.5)
        seen["lines_paused"] = _count(run, "pty_lines") - lines
        seen["polls_paused"] = _count(run, "ssh_exec_latency") - polls
        states = {s.id: s.state for s in run.make_snapshot().sessions}
        await run.resume(source="key")
        lines = _count(run, "pty_lines")
        await asyncio.sleep(1.5)
        seen["lines_after"] = _count(run, "pty_lines") - lines
        run.request_stop()
        assert states["emit#0"] == "paused", states
        assert header == "1 pty SIGSTOP, 1 ssh polling", header  # the header says what

    result, _, events = await run_profile(PROFILE, tmp_path, 60, during)
    assert seen["lines_paused"] == 0 and seen["polls_paused"] == 0, seen
    assert seen["lines_after"] > 100, seen  # 200 lines/s again
    assert not result.snapshot.faults  # a pause is not a fault
    assert named(events, "run_paused") and named(events, "run_resumed")
    assert not named(events, "fault_not_applicable")
    assert read_events(result.run_dir)
