"""The one control protocol every Python child of the console speaks (console.children)."""

from __future__ import annotations

import asyncio
import time

import psutil
import pytest

from console.children import ChildProcess
from console.errors import TargetUnavailable

# Real processes and servers: the full suite, not the fast tier (-m "not slow").
pytestmark = pytest.mark.slow


async def test_a_child_announces_answers_refuses_and_leaves_when_stdin_closes() -> None:
    child = ChildProcess(
        "console.targets.http_server", ["--port", "0", "--exit-on-stdin-eof"], name="target"
    )
    info = await child.start()
    assert info["event"] == "ready" and info["url"].startswith("http://127.0.0.1:")
    faults = await child.command("faults", latency=0.25)
    assert faults["ok"] is True and faults["latency"] == 0.25
    refused = await child.command("nonsense")
    assert refused["ok"] is False and "nonsense" in refused["error"]
    pid = child.pid
    assert pid is not None
    proc = child.proc
    assert proc is not None and proc.stdin is not None
    proc.stdin.close()  # the parent went away: the child must go too
    started = time.monotonic()
    assert await asyncio.wait_for(child.wait(), 10) == 0
    assert time.monotonic() - started < 10
    with pytest.raises(TargetUnavailable):
        await child.command("faults")
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


async def test_a_child_that_never_announces_is_an_error_not_a_hang() -> None:
    child = ChildProcess("console.targets.http_server", ["--port", "not-a-port"], name="target")
    with pytest.raises(TargetUnavailable, match="target"):
        await child.start(timeout=10)
