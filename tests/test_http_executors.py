"""k6 executors and flows, run in-process against the embedded target (a real server process)."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from console.config import read_table
from console.sessions.http.client import make_client
from console.sessions.http.config import HttpGroupConfig
from console.sessions.http.executors import Executor, RateShape, share
from console.sessions.http.flow import VU, Flow, render
from console.sessions.http.stats import Stats
from console.targets.http_control import EmbeddedTarget

# Real processes and servers: the full suite, not the fast tier (-m "not slow").
pytestmark = pytest.mark.slow


def group(**raw: Any) -> HttpGroupConfig:
    config, issues = read_table(HttpGroupConfig, {"name": "t", **raw}, ("http",))
    assert config is not None, issues
    return config


@pytest.fixture(scope="module")
def target() -> Iterator[EmbeddedTarget]:
    with EmbeddedTarget() as t:
        yield t


@pytest.fixture(autouse=True)
def clear(target: EmbeddedTarget) -> Iterator[None]:
    target.set_faults_sync(clear=True)
    yield
    target.set_faults_sync(clear=True)


async def drive(config: HttpGroupConfig, url: str, **kw: Any) -> tuple[Executor, Stats]:
    stats = Stats()
    flow = Flow(config, url, stats, Path("."))
    executor = Executor(config, flow, lambda: make_client(config.client), **kw)
    return executor, stats


HEALTH = [{"request": {"url": "/health"}, "checks": [{"status": 200}]}]


def test_rate_shape_integrates_ramps() -> None:
    flat = RateShape(100.0, (), 10.0)
    assert flat.next_arrival(0.0) == pytest.approx(0.01)
    assert flat.next_arrival(10.0) == math.inf
    ramp = RateShape(0.0, ((10.0, 100.0),), math.inf)  # 0 -> 100/s over 10 s: 500 arrivals
    t, n = 0.0, 0
    while (t := ramp.next_arrival(t)) < math.inf:
        n += 1
    assert n == 500
    open_ended = RateShape(5.0, (), math.inf)
    assert open_ended.next_arrival(3.0, scale=2.0) == pytest.approx(3.1)


def test_share_splits_whole_numbers() -> None:
    assert [share(10, i, 3) for i in range(3)] == [4.0, 3.0, 3.0]
    assert share(1.5, 0, 3) == pytest.approx(0.5)


def test_render_templates() -> None:
    env = {"TOKEN": "abc"}
    assert render(
        "d-${vu}-${iter}-${env.TOKEN}-${x}-${nope}", {"vu": "3", "iter": "0", "x": "y"}, env
    ) == ("d-3-0-abc-y-${nope}")


async def test_constant_arrival_rate_is_accurate(target: EmbeddedTarget) -> None:
    config = group(executor="constant-arrival-rate", rate=300, duration="2s", pre_allocated_vus=5,
                   max_vus=50, steps=HEALTH)  # fmt: skip
    executor, stats = await drive(config, target.url)
    await executor.run()
    assert stats.counters["iterations"] == 600
    assert stats.counters.get("dropped_iterations", 0) == 0
    assert stats.rates["checks"] == [600, 600]
    assert stats.codes == {"200": 600}


async def test_dropped_iterations_and_coordinated_omission(target: EmbeddedTarget) -> None:
    """A stalled server: max_vus fill up, the rest drop, and waiting time shows in latency."""
    config = group(executor="constant-arrival-rate", rate=100, duration="2s", pre_allocated_vus=2,
                   max_vus=10, steps=HEALTH)  # fmt: skip
    executor, stats = await drive(config, target.url)
    target.set_faults_sync(stall=True, stall_for=1.0)
    await executor.run()
    assert stats.counters["dropped_iterations"] > 50  # ~90 scheduled during the stall, 10 VUs
    assert stats.counters["iterations"] + stats.counters["dropped_iterations"] == 200
    trend = stats.trends["http_req_duration"]
    assert trend.max >= 800  # the first stalled requests waited ~1 s


async def test_latency_counts_from_the_scheduled_start() -> None:
    """Coordinated omission: a busy generator's lateness is charged to the request."""
    from aiohttp import web

    app = web.Application()

    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app.router.add_get("/", ok)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        config = group(executor="constant-arrival-rate", rate=50, duration="1s",
                       pre_allocated_vus=50, steps=[{"request": {"url": "/"}}])  # fmt: skip
        executor, stats = await drive(config, f"http://127.0.0.1:{port}")
        task = asyncio.ensure_future(executor.run())
        await asyncio.sleep(0.3)
        import time

        time.sleep(0.4)  # block the generator's loop: ~20 arrivals are due meanwhile
        await task
        assert stats.counters["iterations"] == 50
        p99 = stats.trends["http_req_duration"].percentile(99)
        assert p99 is not None and p99 >= 300  # lateness was charged
    finally:
        await runner.cleanup()


async def test_an_arrival_woken_early_has_no_negative_duration(target: EmbeddedTarget) -> None:
    import time

    config = group(steps=HEALTH)
    stats = Stats()
    flow = Flow(config, target.url, stats, Path("."))
    vu = VU(id=1, client=make_client("raw"))
    try:
        await flow.iterate(vu, intended=time.perf_counter() + 0.5)  # "due" after it ran
    finally:
        await vu.client.close()
    assert stats.trends["iteration_duration"].min >= 0
    assert stats.trends["http_req_duration"].min >= 0


async def test_ramping_vus_follows_stages_and_controls(target: EmbeddedTarget) -> None:
    config = group(executor="ramping-vus", start_vus=0,
                   stages=[{"duration": "0.5s", "target": 4}, {"duration": "1.5s", "target": 4}],
                   steps=[{"request": {"url": "/health"}, "sleep": "50ms"}])  # fmt: skip
    executor, stats = await drive(config, target.url)
    task = asyncio.ensure_future(executor.run())
    await asyncio.sleep(0.8)
    assert executor.gauges()["vus"] == 4
    executor.control("scale", 2.0)
    await asyncio.sleep(0.2)
    assert executor.gauges()["vus"] == 8
    executor.control("pause")
    await asyncio.sleep(0.2)
    before = stats.counters["iterations"]
    await asyncio.sleep(0.3)
    assert stats.counters["iterations"] == before  # paused: nothing new
    executor.control("resume")
    executor.control("burst", 20)
    await task
    assert stats.counters["iterations"] > before + 20


@pytest.mark.parametrize("client", ["raw", "aiohttp", "httpx", "httpx-aiohttp"])
async def test_vu_keeps_cookies_and_captures(target: EmbeddedTarget, client: str) -> None:
    config = group(steps=[
        {"once": True, "request": {"method": "POST", "url": "/api/auth/login",
                                    "json": {"username": "user-${vu}", "password": "${env.PW}"}},
         "capture": [{"name": "who", "json_path": "user"}]},
        {"request": {"url": "/api/auth/verify", "headers": {"X-Who": "${who}"}},
         "checks": [{"status": 200}, {"json_path": "user", "equals": "user-7"},
                    {"header": "Content-Type", "equals": "nope"}]},
    ], env={"PW": "pw"})  # fmt: skip
    stats = Stats()
    flow = Flow(config, target.url, stats, Path("."))
    vu = VU(id=7, client=make_client(client))
    other = VU(id=8, client=make_client(client))
    try:
        await flow.iterate(vu)
        await flow.iterate(vu)  # login skipped; the cookie still works
        assert vu.captured == {"who": "user-7"}
        other.iteration = 1  # never logged in: no cookie of its own
        await flow.iterate(other)
    finally:
        await vu.client.close()
        await other.client.close()
    assert flow.check_counts["status is 200"] == [2, 3]
    assert flow.check_counts["json user = user-7"] == [2, 3]
    assert flow.check_counts["header Content-Type = nope"] == [0, 3]
    assert stats.codes == {"200": 3, "401": 1}
    assert stats.rates["http_req_failed"] == [1, 4]


async def test_multipart_and_raw_bodies(target: EmbeddedTarget) -> None:
    config = group(steps=[
        {"request": {"method": "POST", "url": "/api/lightweight-analyze",
                     "files": [{"field": "audio", "size": "100KB", "filename": "t.wav"}]},
         "checks": [{"json_path": "bytes", "equals": "100000"}]},
        {"request": {"method": "POST", "url": "/api/esp32/audio/upload", "body_size": "2KB",
                     "headers": {"X-Device-ID": "d-${vu}", "X-Sample-Rate": "16000"}},
         "checks": [{"json_path": "device", "equals": "d-1"}, {"body_contains": "received"}]},
    ])  # fmt: skip
    stats = Stats()
    flow = Flow(config, target.url, stats, Path("."))
    vu = VU(id=1, client=make_client("aiohttp"))
    try:
        await flow.iterate(vu)
    finally:
        await vu.client.close()
    assert stats.rates["checks"] == [3, 3]
    assert stats.counters["data_sent"] > 102_000


@pytest.mark.parametrize("client", ["raw", "aiohttp", "httpx", "httpx-aiohttp"])
async def test_error_classes(client: str, target: EmbeddedTarget) -> None:
    """refused, reset, tls and timeout, each provoked for real on loopback."""
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    closed_port = sock.getsockname()[1]
    sock.close()  # nothing listens there now

    async def slam(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(10)
        writer.transport.abort()  # RST mid-request

    server = await asyncio.start_server(slam, "127.0.0.1", 0)
    reset_port = server.sockets[0].getsockname()[1]
    host_port = target.url.removeprefix("http://")
    urls = [
        f"http://127.0.0.1:{closed_port}/",
        f"http://127.0.0.1:{reset_port}/",
        f"https://{host_port}/health",  # TLS spoken to a plain-HTTP server
        f"{target.url}/api/v1/test/load?ms=2000",
    ]
    config = group(
        client=client, steps=[{"request": {"url": url, "timeout": "0.5s"}} for url in urls]
    )
    stats = Stats()
    flow = Flow(config, target.url, stats, Path("."))
    vu = VU(id=1, client=make_client(client))
    try:
        await flow.iterate(vu)
    finally:
        await vu.client.close()
        server.close()
        await server.wait_closed()
    assert stats.errors == {"refused": 1, "reset": 1, "tls": 1, "timeout": 1}
    for cls in ("refused", "reset", "tls", "timeout"):
        assert stats.counters[f"http_errors_{cls}"] == 1
    assert stats.rates["http_req_failed"] == [4, 4]


async def test_ramping_arrival_rate_integrates_stages(target: EmbeddedTarget) -> None:
    config = group(executor="ramping-arrival-rate", start_rate=0, pre_allocated_vus=10,
                   stages=[{"duration": "1s", "target": 200}, {"duration": "1s", "target": 200}],
                   steps=HEALTH)  # fmt: skip
    executor, stats = await drive(config, target.url)
    await executor.run()
    # the ramp's area is 100 arrivals, the plateau's 200
    assert 298 <= stats.counters["iterations"] <= 300
    assert stats.counters.get("dropped_iterations", 0) == 0


async def test_a_pause_is_not_scenario_time(target: EmbeddedTarget) -> None:
    """Paused for a while mid-scenario, the scenario still runs its full schedule after it."""
    config = group(executor="constant-arrival-rate", rate=100, duration="1s", pre_allocated_vus=5,
                   max_vus=20, steps=HEALTH)  # fmt: skip
    executor, stats = await drive(config, target.url)
    task = asyncio.ensure_future(executor.run())
    await asyncio.sleep(0.3)
    executor.control("pause")
    await asyncio.sleep(0.6)
    executor.control("resume")
    await task
    assert stats.counters["iterations"] == 100  # not 100 less the paused 60
    assert stats.counters.get("dropped_iterations", 0) == 0


async def test_an_absolute_rate_holds_from_the_moment_it_is_set(target: EmbeddedTarget) -> None:
    """``http.set_rate``: one iteration a minute, then 200/s for the rest of the 2 s. The next
    arrival was due in a minute; the new rate must not wait for it."""
    config = group(executor="constant-arrival-rate", rate=1, time_unit="1m", duration="2s",
                   pre_allocated_vus=5, max_vus=50, steps=HEALTH)  # fmt: skip
    executor, stats = await drive(config, target.url)
    task = asyncio.ensure_future(executor.run())
    await asyncio.sleep(0.5)
    assert stats.counters.get("iterations", 0) <= 1
    assert "rate 200/s" in executor.control("rate", 200)
    await task
    # about 1.5 s at 200/s (where in the 2 s the set landed depends on this machine's load)
    assert 150 <= stats.counters["iterations"] <= 1 + 2 * 200
    assert executor.rate_set == 200 and executor.scale == 1.0
    closed = group(executor="constant-vus", vus=1, duration="1s", steps=HEALTH)
    vus, _ = await drive(closed, target.url)
    vus.control("rate", 200)  # VUs, not a rate: nothing to hold
    assert vus.rate_set is None
