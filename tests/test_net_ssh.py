"""SSH sessions through links: the embedded server and OpenSSH's sshd, with network faults."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from console.engine import Run
from tests.ssh_support import named, run_profile, wait_all_running
from tests.test_ssh_openssh import Sshd, profile, sshd  # noqa: F401 - the fixture

pytestmark = pytest.mark.slow

EMBEDDED = """
[run]
name = "wan"
duration = "60s"

[[links]]
name = "wan"
per_session = true

[[ssh]]
name = "pool"
count = 3
target = "embedded"
via = "wan"
poll_interval = "1s"
pty_interval = "300ms"
intensity = "low"
backoff = "1s"
jitter = "10%"
reconnect_attempts = 5
reconnect_timeout = "5s"
keepalive_interval = "1s"
keepalive_count_max = 2

[[criteria]]
after = "net.down"
within = "15s"
threshold = "rate>=100%"
"""


async def _until(run: Run, name: str, session: str, after: float, timeout: float = 20.0) -> None:
    """Wait until ``name`` was logged for ``session`` after run second ``after``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        for event in run.event_log.tail(200):
            if event.event == name and event.session_id == session and event.t >= after:
                return
        await asyncio.sleep(0.05)
    raise AssertionError(f"no {name} for {session} after {after:.1f}s")


def _polls(events: list[dict[str, Any]], session: str, start: float, end: float) -> list[float]:
    """Exec poll round trips of ``session`` that ended between run seconds start and end."""
    run_start = datetime.fromisoformat(events[0]["ts"])
    return [
        e["elapsed_ms"]
        for e in named(events, "exec_poll", session)
        if start <= (datetime.fromisoformat(e["ts"]) - run_start).total_seconds() < end
    ]


async def test_embedded_ssh_through_links_latency_reset_down_and_blackhole(tmp_path: Path) -> None:
    marks: dict[str, float] = {}

    async def during(run: Run) -> None:
        await wait_all_running(run)
        await asyncio.sleep(2.5)
        marks["latency"] = run.now()
        await run.inject(
            "net.latency",
            target="pool#0",
            params={"latency": 0.1, "stream": "both"},
            source="api",
        )
        await asyncio.sleep(3.5)
        marks["latency_end"] = run.now()
        await run.inject("net.remove", target="pool#0", source="api")

        at = run.now()
        await run.inject("net.reset_peer", target="pool#1", params={"stream": "upstream"})
        await _until(run, "connection_lost", "pool#1", at)
        await run.inject("net.remove", target="pool#1", params={"name": "reset_peer_upstream"})
        await _until(run, "reconnected", "pool#1", at)

        at = run.now()
        await run.inject("net.down", target="pool#2", params={"duration": 1.0})
        await _until(run, "connection_lost", "pool#2", at)
        await _until(run, "session_recovered", "pool#2", at)

        at = run.now()
        await run.inject("net.timeout", target="pool#0", params={"timeout": 0, "duration": 4.0})
        await _until(run, "connection_lost", "pool#0", at)
        marks["noticed"] = run.now() - at
        await _until(run, "reconnected", "pool#0", at)
        run.request_stop()

    result, _run, events = await run_profile(EMBEDDED, tmp_path, 60, during)
    before = _polls(events, "pool#0", 0, marks["latency"])
    during_latency = _polls(events, "pool#0", marks["latency"] + 0.5, marks["latency_end"])
    assert before and during_latency
    # 100 ms each way: every exec round trip through the link takes at least 200 ms
    assert min(during_latency) >= 200 > max(before)

    (lost,) = [e for e in named(events, "connection_lost", "pool#1")]
    assert "reset" in lost["detail"].lower(), lost["detail"]  # a TCP reset, not an end of file

    (down,) = [e for e in named(events, "fault_injected") if e["data"]["action"] == "net.down"]
    assert down["data"]["sessions"] == ["pool#2"]  # recorded on the session behind the link
    assert result.snapshot.criteria[0].state == "pass"

    lost0 = named(events, "connection_lost", "pool#0")
    assert lost0, "the blackhole went unnoticed"
    assert marks["noticed"] < 4.0  # keepalive noticed it before the blackhole lifted
    assert not named(events, "fault_observed")  # link faults are not mistaken for crashes
    panes = {s.id: s for s in result.snapshot.sessions if s.kind == "net"}
    assert set(panes) == {"wan#0", "wan#1", "wan#2"}
    assert all(dict(p.counters)["conns"] for p in panes.values())


async def test_openssh_through_a_link_checks_the_real_host_key_and_reconnects(
    sshd: Sshd,  # noqa: F811
    tmp_path: Path,
) -> None:
    text = profile(
        sshd,
        count=2,
        extra='via = "lan"\nkeepalive_interval = "1s"\nkeepalive_count_max = 2',
    )
    text += '\n[[links]]\nname = "lan"\n'

    async def during(run: Run) -> None:
        await wait_all_running(run)
        await asyncio.sleep(1.5)
        await run.inject("net.latency", target="lan", params={"latency": 0.08, "stream": "both"})
        await asyncio.sleep(3.0)
        await run.inject("net.reset", target="lan")
        at = run.now()
        await run.inject("net.down", target="real", params={"duration": 1.0})
        await _until(run, "connection_lost", "real#0", at)
        await _until(run, "reconnected", "real#0", at)
        await _until(run, "reconnected", "real#1", at)
        run.request_stop()

    result, _run, events = await run_profile(text, tmp_path, 40, during)
    connected = named(events, "connected")
    assert len(connected) >= 2  # the host key matched the real 127.0.0.1:PORT entry
    slow = [e["elapsed_ms"] for e in named(events, "exec_poll") if e["elapsed_ms"] >= 160]
    assert slow, "latency never showed in exec polls"
    assert result.snapshot.metric("net_connections")
    link = next(s for s in result.snapshot.sessions if s.id == "lan")
    assert link.target.endswith(f"127.0.0.1:{sshd.port}")
