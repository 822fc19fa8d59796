"""The Toxiproxy API inside a run: a real client's changes are faults with source ``api``, on the
timeline, and ``--replay`` reproduces them at the same run times."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import pytest

from console.engine import Run
from console.profile import load_profile_text
from console.replay import load_replay, to_toml
from tests.ssh_support import named, read_events

toxiproxy = pytest.importorskip("toxiproxy", reason="toxiproxy-python is in the test extra")

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _profile(api_port: int, upstream: int) -> str:
    return f"""
[run]
name = "api"
duration = "6s"

[[pty]]
name = "idle"
command = ["sleep", "30"]

[[links]]
name = "db"
upstream = "127.0.0.1:{upstream}"
api = "127.0.0.1:{api_port}"
"""


def _experiment(api_port: int, upstream: int, ready: float) -> dict[str, Any]:
    """What a chaos experiment does with the real client (blocking; run in a thread)."""
    import time

    server = toxiproxy.Toxiproxy()
    server.update_api_consumer("127.0.0.1", api_port)
    time.sleep(ready)
    db = server.get_proxy("db")
    db.add_toxic(type="latency", attributes={"latency": 150, "jitter": 20})
    time.sleep(0.5)
    db.disable()
    db.enable()
    cache = server.create(upstream=f"127.0.0.1:{upstream}", name="cache")
    cache.add_toxic(type="bandwidth", stream="upstream", attributes={"rate": 7})
    db.destroy_toxic("latency_downstream")
    return {name: p.listen for name, p in server.proxies().items()}


async def _echo_server() -> asyncio.Server:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(1024):
            writer.write(data)
        writer.close()

    return await asyncio.start_server(echo, "127.0.0.1", 0)


async def test_api_changes_are_faults_and_replay_reproduces_them(tmp_path: Path) -> None:
    echo = await _echo_server()
    upstream = echo.sockets[0].getsockname()[1]
    api_port = _free_port()
    profile = load_profile_text(_profile(api_port, upstream), name="api")
    run = Run(profile, runs_dir=tmp_path / "first")
    task = asyncio.create_task(run.run())
    seen = await asyncio.to_thread(_experiment, api_port, upstream, 1.0)
    first = await task
    assert set(seen) == {"db", "cache"}

    events = read_events(first.run_dir)
    api_faults = [e for e in named(events, "fault_injected") if e["source"] == "api"]
    actions = [e["data"]["action"] for e in api_faults]
    assert actions == [
        "net.latency",
        "net.down",
        "net.up",
        "net.create",
        "net.bandwidth",
        "net.remove",
    ]
    latency = api_faults[0]["data"]["params"]
    assert latency == {
        "name": "latency_downstream",
        "stream": "downstream",
        "toxicity": 1.0,
        "latency": 0.15,
        "jitter": 0.02,
    }
    assert "net.latency" in to_toml(load_replay(first.run_dir))
    assert any(s.id == "cache" for s in first.snapshot.sessions)  # an API-made link has a pane

    # The replay: the same faults, on the same links, at the same run times (same API port is
    # not needed: the replay injects directly).
    replayed_profile = load_profile_text(_profile(_free_port(), upstream), name="api")
    second = await Run(
        replayed_profile, runs_dir=tmp_path / "second", replay=load_replay(first.run_dir)
    ).run()
    echo.close()
    again = [e for e in named(read_events(second.run_dir), "fault_injected")]
    assert [e["source"] for e in again] == ["replay"] * len(api_faults)
    assert [e["data"]["action"] for e in again] == actions
    assert [e["data"]["params"] for e in again] == [e["data"]["params"] for e in api_faults]
    assert [e["data"]["sessions"] for e in again] == [e["data"]["sessions"] for e in api_faults]
    t_first = [f.t for f in first.snapshot.faults if f.source == "api"]
    t_again = [f.t for f in second.snapshot.faults if f.source == "replay"]
    assert all(abs(a - b) < 0.6 for a, b in zip(t_first, t_again, strict=True))
