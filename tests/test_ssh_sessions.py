"""SSH sessions through the engine against the embedded server: polling, PTY, every fault."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from datetime import datetime, timezone
from pathlib import Path

import pytest

from console.engine import Run
from console.sessions.base import FaultNotApplicable
from console.sessions.ssh import SshRuntime
from tests.ssh_support import named, run_profile, wait_all_running, wait_for_state

FAST = """
[run]
name = "t"
duration = "60s"

[[ssh]]
name = "pool"
count = {count}
target = "embedded"
poll_interval = "1s"
pty_interval = "300ms"
intensity = "{intensity}"
backoff = "{backoff}"
jitter = "50%"
reconnect_attempts = {attempts}
reconnect_timeout = "{timeout}"
keepalive_interval = "{keepalive}"
keepalive_count_max = 2
"""


def fast(
    count: int = 3,
    *,
    intensity: str = "medium",
    backoff: str = "200ms",
    attempts: int = 3,
    timeout: str = "15s",
    keepalive: str = "2s",
    extra: str = "",
) -> str:
    return (
        FAST.format(
            count=count,
            intensity=intensity,
            backoff=backoff,
            attempts=attempts,
            timeout=timeout,
            keepalive=keepalive,
        )
        + extra
    )


async def test_poll_pty_and_drops_follow_the_spike_runbook(tmp_path: Path) -> None:
    seen_views: dict[str, object] = {}

    async def during(run: Run) -> None:
        await wait_all_running(run)
        await asyncio.sleep(2.5)  # two polls, so there is a CPU delta, and PTY cycles
        snap = run.current_snapshot()
        seen_views.update({s.id: s for s in snap.sessions})
        one = await run.inject("ssh.drop", target="all", pick=1, source="api")
        await asyncio.sleep(0.3)
        await wait_all_running(run)
        await run.inject("ssh.drop", target="all", source="api")
        await asyncio.sleep(0.3)
        await wait_all_running(run)
        await asyncio.sleep(0.5)
        assert len(one.sessions) == 1
        run.request_stop()

    result, run, events = await run_profile(fast(3), tmp_path, 60, during)
    assert result.exit_code == 0
    assert len(named(events, "connected")) == 3
    assert len(named(events, "disconnect_injected")) == 4  # one, then all three
    reconnected = named(events, "reconnected")
    assert len(reconnected) == 4
    for event in reconnected:
        assert event["attempt"] == 1 and event["success"] is True
        assert 200 <= event["elapsed_ms"] < 5000  # the backoff wait is part of it
        assert event["host"].startswith("127.0.0.1:")
    # The runbook's extraction command works on the log unchanged.
    lines = (result.run_dir / "events.jsonl").read_text().splitlines()
    times = sorted(json.loads(line)["elapsed_ms"] for line in lines if '"reconnected"' in line)
    assert len(times) == 4 and times[-1] < 5000

    polls = named(events, "exec_poll")
    assert polls and all(e["success"] for e in polls)
    assert any("cpu=" in e["detail"] and "mem=" in e["detail"] for e in polls)
    assert any("disk=" in e["detail"] for e in polls)
    assert named(events, "pty_cycle") and not named(events, "pty_error")
    assert not named(events, "exec_poll_error")

    snap = result.snapshot
    mem = snap.metric("ssh_remote_mem")
    assert mem is not None and 0 < (mem.get("value") or 0) < 100
    assert (snap.metric("ssh_pty_bytes").get("count") or 0) > 3 * 500  # type: ignore[union-attr]
    assert snap.metric("ssh_reconnect_success").get("rate") == 1.0  # type: ignore[union-attr]
    figures = run.kind_figures(snap)
    assert figures["abnormal_ends"] == 0
    assert figures["global_reconnect_rate_pct"] == 100.0
    assert 200 <= figures["global_reconnect_p95_ms"] < 5000

    view = seen_views["pool#0"]
    counters = dict(view.counters)  # type: ignore[attr-defined]
    assert counters["reconnects"] == "0" and counters["cpu"].endswith("%")
    assert view.series[0].name == "cpu" and view.series[0].unit == "%"  # type: ignore[attr-defined]
    assert any("stressdeck pty line" in line for line in view.output_tail)  # type: ignore[attr-defined]
    assert b"stressdeck pty line" in run.sessions["pool#0"].screen()
    assert view.badges == ()  # type: ignore[attr-defined]
    assert "ssh.server_restart" in view.actions  # type: ignore[attr-defined]
    final = {s.id: dict(s.counters) for s in snap.sessions}
    assert sum(int(c["reconnects"]) for c in final.values()) == 4


async def test_auth_failure_and_server_restart(tmp_path: Path) -> None:
    async def during(run: Run) -> None:
        await wait_all_running(run)
        await run.inject("ssh.auth_fail", target="pool#1", params={"count": 1}, source="api")
        await asyncio.sleep(0.3)
        await wait_all_running(run)
        await run.inject("ssh.server_restart", target="all", params={"down": 1.2}, source="api")
        await asyncio.sleep(0.3)
        await wait_all_running(run, timeout=20)
        run.request_stop()

    result, _run, events = await run_profile(
        fast(2, intensity="low", backoff="300ms", attempts=5), tmp_path, 60, during
    )
    assert result.exit_code == 0
    auth = [e for e in named(events, "connect_failed") if "authentication" in e["detail"]]
    assert [e["session_id"] for e in auth] == ["pool#1"] and auth[0]["attempt"] == 1
    reconnected = named(events, "reconnected")
    assert reconnected[0]["session_id"] == "pool#1" and reconnected[0]["attempt"] == 2
    # The restart dropped both; the first attempts found nobody listening.
    restart = [e for e in named(events, "disconnect_injected") if "server_restart" in e["detail"]]
    assert {e["session_id"] for e in restart} == {"pool#0", "pool#1"}
    refused = [e for e in named(events, "connect_failed") if "refused" in e["detail"]]
    assert refused
    after = reconnected[1:]
    assert len(after) == 2 and all(e["elapsed_ms"] >= 1200 for e in after)
    assert result.snapshot.metric("ssh_reconnect_success").get("rate") == 1.0  # type: ignore[union-attr]


async def test_unsolicited_drop_and_frozen_server_are_faults_too(tmp_path: Path) -> None:
    """A drop the console did not ask for is observed; keepalive notices a silent server."""
    frozen_at: list[datetime] = []

    async def during(run: Run) -> None:
        await wait_all_running(run)
        runtime = run.runtimes["ssh"]
        assert isinstance(runtime, SshRuntime) and runtime.target is not None
        await runtime.target.command("drop")  # the server drops everyone on its own
        await asyncio.sleep(0.3)
        await wait_all_running(run)
        info = runtime.target.info
        assert info is not None
        os.kill(info.pid, signal.SIGSTOP)  # alive but silent: only keepalive can tell
        frozen_at.append(datetime.now(timezone.utc))
        try:
            await asyncio.sleep(4.0)
        finally:
            os.kill(info.pid, signal.SIGCONT)
        await wait_all_running(run, timeout=20)
        run.request_stop()

    result, _run, events = await run_profile(
        fast(2, intensity="low", backoff="300ms", attempts=6, timeout="1s", keepalive="500ms"),
        tmp_path,
        60,
        during,
    )
    lost = named(events, "connection_lost")
    assert len(lost) == 4, [e["detail"] for e in lost]  # 2 dropped + 2 frozen
    observed = named(events, "fault_observed")
    assert len(observed) == 4 and all(
        e["data"]["action"] == "ssh.connection_lost" for e in observed
    )
    # The frozen server was noticed by keepalive (0.5 s x 2), well before it thawed at 4 s.
    late = lost[2:]
    assert all("not responding to keepalive" in e["detail"] for e in late), late
    noticed = [(datetime.fromisoformat(e["ts"]) - frozen_at[0]).total_seconds() for e in late]
    assert all(0 < t < 3.8 for t in noticed), noticed
    assert len(named(events, "reconnected")) == 4
    assert result.snapshot.metric("ssh_abnormal_ends").get("count") == 0  # type: ignore[union-attr]


async def test_faults_that_cannot_apply_are_refused_not_left_waiting(tmp_path: Path) -> None:
    """A dead embedded target refuses kind-wide faults; the run goes on."""
    refusals: dict[str, str] = {}

    async def during(run: Run) -> None:
        await wait_all_running(run)
        with pytest.raises(FaultNotApplicable, match="is running, not failed"):
            await run.inject("ssh.reconnect", target="all", source="api")  # nobody failed
        runtime = run.runtimes["ssh"]
        assert isinstance(runtime, SshRuntime) and runtime.target is not None
        info = runtime.target.info
        assert info is not None
        os.kill(info.pid, signal.SIGKILL)
        with pytest.raises(FaultNotApplicable) as restart:
            await run.inject("ssh.server_restart", target="all", source="api")
        refusals["server_restart"] = str(restart.value)
        await wait_for_state(run, "pool#0", "failed")
        with pytest.raises(FaultNotApplicable) as auth:
            await run.inject("ssh.auth_fail", target="all", source="api")
        refusals["auth_fail"] = str(auth.value)
        await asyncio.sleep(0.3)
        run.request_stop()

    result, run, _events = await run_profile(
        fast(2, intensity="low", backoff="100ms", attempts=1, timeout="1s"), tmp_path, 30, during
    )
    assert "embedded SSH target" in refusals["server_restart"]
    assert (
        "not connected" in refusals["auth_fail"] or "embedded SSH target" in refusals["auth_fail"]
    )
    assert run.state != "running" and result.run_dir.exists()
    assert all(s.state in ("failed", "stopped") for s in run.sessions.values())
