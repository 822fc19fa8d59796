"""HTTP through links: nginx and the embedded target behind a link, each toxic seen by a client,
and an HTTP group with ``via`` whose Host header still names the real target."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from aiohttp import web

from bench.nginx_loopback import Nginx, nginx_path
from console.engine import Run
from console.net.proxy import Link
from console.net.toxics import make_toxic
from console.profile import load_profile_text
from console.targets.http_control import EmbeddedTarget

BIG = 300_000


# Real processes and servers: the full suite, not the fast tier (-m "not slow").
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def nginx() -> Iterator[Nginx]:
    if nginx_path() is None:
        pytest.skip("nginx is not installed: apt-get install nginx (CI installs it)")
    with Nginx() as server:
        (server.tmp / "www" / "big.bin").write_bytes(os.urandom(BIG))
        yield server


@pytest.fixture
async def nginx_link(nginx: Nginx) -> AsyncIterator[Link]:
    link = Link("web", f"127.0.0.1:{nginx.port}")
    await link.start()
    yield link
    await link.stop()


async def _p50(url: str, n: int = 15) -> float:
    async with httpx.AsyncClient() as client:  # one keep-alive connection
        times = []
        for _ in range(n):
            start = time.monotonic()
            reply = await client.get(url)
            times.append(time.monotonic() - start)
            assert reply.status_code == 200
        return statistics.median(times)


def _via(link: Link, path: str) -> str:
    return f"http://127.0.0.1:{link.listen_port}{path}"


async def test_latency_shifts_p50_by_the_amount_nginx(nginx: Nginx, nginx_link: Link) -> None:
    direct = await _p50(nginx.url + "/index.html")
    plain = await _p50(_via(nginx_link, "/index.html"))
    nginx_link.add_toxic(make_toxic({"type": "latency", "attributes": {"latency": 60}}))
    slowed = await _p50(_via(nginx_link, "/index.html"))
    assert 0.06 <= slowed - direct < 0.06 + 0.1
    assert plain < 0.06  # no toxic, no visible cost


async def test_latency_shifts_p50_by_the_amount_embedded_target() -> None:
    target = EmbeddedTarget()
    url = await target.start()
    link = Link("api", url.removeprefix("http://"))
    await link.start()
    try:
        direct = await _p50(url + "/health")
        link.add_toxic(
            make_toxic({"type": "latency", "stream": "upstream", "attributes": {"latency": 80}})
        )
        slowed = await _p50(_via(link, "/health"))
        assert 0.08 <= slowed - direct < 0.08 + 0.1
    finally:
        await link.stop()
        await target.stop()


async def test_bandwidth_caps_bytes_per_second(nginx_link: Link) -> None:
    nginx_link.add_toxic(make_toxic({"type": "bandwidth", "attributes": {"rate": 200}}))
    async with httpx.AsyncClient() as client:
        start = time.monotonic()
        reply = await client.get(_via(nginx_link, "/big.bin"))
        elapsed = time.monotonic() - start
    assert len(reply.content) == BIG
    assert BIG / elapsed <= 200_000 * 1.05  # never faster than the cap


async def test_limit_data_cuts_a_large_response(nginx_link: Link) -> None:
    nginx_link.add_toxic(make_toxic({"type": "limit_data", "attributes": {"bytes": 10_000}}))
    async with httpx.AsyncClient() as client:
        with pytest.raises(httpx.RemoteProtocolError):
            await client.get(_via(nginx_link, "/big.bin"))
    assert nginx_link.stats().bytes_down == 10_000


async def test_slicer_delivers_every_byte(nginx: Nginx, nginx_link: Link) -> None:
    nginx_link.add_toxic(
        make_toxic(
            {
                "type": "slicer",
                "attributes": {"average_size": 500, "size_variation": 200, "delay": 50},
            }
        )
    )
    expected = (nginx.tmp / "www" / "big.bin").read_bytes()
    async with httpx.AsyncClient() as client:
        reply = await client.get(_via(nginx_link, "/big.bin"))
    assert reply.content == expected


@pytest.mark.slow
async def test_http_group_via_a_link_keeps_the_real_host_header(tmp_path: Path) -> None:
    hosts: list[str] = []

    async def hello(request: web.Request) -> web.Response:
        hosts.append(request.headers.get("Host", ""))
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/hello", hello)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = int(runner.addresses[0][1])
    text = f"""
[[links]]
name = "edge"

[[http]]
name = "web"
base_url = "http://localhost:{port}"
via = "edge"
count = 1
executor = "constant-arrival-rate"
rate = 20
pre_allocated_vus = 2
probes = [{{ kind = "etag", path = "/hello", repeat = 2 }}]
  [[http.steps]]
  request = {{ url = "/hello" }}
  checks = [{{ status = 200 }}]

[[faults]]
at = "1s"
action = "net.latency"
target = "web"
params = {{ latency = "50ms" }}
"""
    try:
        # long enough for a worker that starts late on a loaded machine to run its probe
        run = Run(load_profile_text(text, name="t"), runs_dir=tmp_path, duration=6.0)
        result = await run.run()
    finally:
        await runner.cleanup()
    assert hosts and set(hosts) == {f"localhost:{port}"}  # load and probe requests alike
    assert any(e.event == "probe_etag" for e in run.event_log.tail(500))
    link = next(s for s in result.snapshot.sessions if s.id == "edge")
    assert dict(link.counters)["conns"] != "0/0"
    assert any(
        f.action == "net.latency" and f.sessions == ("web#0",) for f in result.snapshot.faults
    )
