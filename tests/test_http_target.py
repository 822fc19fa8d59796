"""The embedded HTTP target, driven over real sockets in its own process."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest

from console.targets.http_control import EmbeddedTarget
from console.targets.http_server import CircuitBreaker

# Real processes and servers: the full suite, not the fast tier (-m "not slow").
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def target() -> Iterator[EmbeddedTarget]:
    with EmbeddedTarget(breaker_timeout=0.5, capacity=5, queue=5) as t:
        yield t


@pytest.fixture
async def client(target: EmbeddedTarget) -> AsyncIterator[aiohttp.ClientSession]:
    target.set_faults_sync(clear=True)
    async with aiohttp.ClientSession(
        base_url=target.url, cookie_jar=aiohttp.CookieJar(unsafe=True)
    ) as session:
        yield session
    target.set_faults_sync(clear=True)


def test_cli_prints_one_json_line_then_serves() -> None:
    """`stressdeck target http`: one JSON line, then it serves until SIGTERM (exit 0)."""
    with subprocess.Popen(
        [sys.executable, "-m", "console", "target", "http", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    ) as proc:  # the context closes the pipe: no leaked file behind the test
        try:
            assert proc.stdout is not None
            info = json.loads(proc.stdout.readline())
            assert info["host"] == "127.0.0.1" and info["port"] > 0
            assert info["url"] == f"http://127.0.0.1:{info['port']}"
        finally:
            proc.terminate()
            assert proc.wait(5) == 0


async def test_health_and_device_upload(client: aiohttp.ClientSession) -> None:
    async with client.get("/health") as r:
        assert r.status == 200 and (await r.json())["status"] == "ok"
    async with client.post("/api/esp32/audio/upload", data=b"\x00" * 1000) as r:
        assert r.status == 400  # headers required
    headers = {"X-Device-ID": "dev-1", "X-Sample-Rate": "16000"}
    async with client.post("/api/esp32/audio/upload", data=b"\x01" * 1000, headers=headers) as r:
        assert r.status == 200
        assert await r.json() == {"status": "received", "device": "dev-1", "bytes": 1000}


async def test_analyze_needs_the_audio_field(client: aiohttp.ClientSession) -> None:
    form = aiohttp.FormData()
    form.add_field("other", b"x" * 10, filename="a.wav")
    async with client.post("/api/lightweight-analyze", data=form) as r:
        assert r.status == 400
    form = aiohttp.FormData()
    form.add_field("audio", b"y" * 200_000, filename="test.wav", content_type="audio/wav")
    async with client.post("/api/lightweight-analyze", data=form) as r:
        body = await r.json()
        assert r.status == 200 and body["bytes"] == 200_000


async def test_login_sets_a_cookie_that_verify_accepts(client: aiohttp.ClientSession) -> None:
    async with client.get("/api/auth/verify") as r:
        assert r.status == 401
    async with client.post("/api/auth/login", json={"username": "u", "password": ""}) as r:
        assert r.status == 401
    async with client.post("/api/auth/login", json={"username": "u", "password": "p"}) as r:
        assert r.status == 200
    async with client.get("/api/auth/verify") as r:
        assert r.status == 200 and (await r.json())["user"] == "u"


async def test_schema_etag_is_stable_and_304s(client: aiohttp.ClientSession) -> None:
    path = "/api/v1/schemas/main/object-types"
    async with client.get(path) as r:
        etag = r.headers["ETag"]
        assert r.status == 200 and etag.startswith('"')
    async with client.get(path) as r:
        assert r.headers["ETag"] == etag
    async with client.get(path, headers={"If-None-Match": etag}) as r:
        assert r.status == 304
    async with client.get(path, headers={"If-None-Match": '"other"'}) as r:
        assert r.status == 200


async def test_circuit_breaker_opens_half_opens_and_closes(
    client: aiohttp.ClientSession, target: EmbeddedTarget
) -> None:
    good, bad = "/api/v1/schemas/main/object-types/Person", "/api/v1/schemas/main/object-types/X"
    for _ in range(5):
        async with client.get(bad) as r:
            assert r.status == 404
    async with client.get(good) as r:
        assert r.status == 503 and r.headers["X-Circuit-State"] == "open"
    await asyncio.sleep(0.6)
    async with client.get(good) as r:
        assert r.status == 200 and r.headers["X-Circuit-State"] == "half-open"
    async with client.get(good) as r:
        assert r.status == 200 and r.headers["X-Circuit-State"] == "closed"
    # a failed dependency trips it the same way
    target.set_faults_sync(dependency_down=True)
    statuses = []
    for _ in range(6):
        async with client.get(good) as r:
            statuses.append(r.status)
    assert statuses == [503] * 6
    assert target.set_faults_sync()["breaker"] == "open"


def test_breaker_unit_half_open_failure_reopens() -> None:
    breaker = CircuitBreaker(threshold=2, timeout=0.05)
    breaker.record(False)
    assert breaker.allow()
    breaker.record(False)
    assert breaker.state == "open" and not breaker.allow()
    time.sleep(0.06)
    assert breaker.allow() and breaker.state == "half-open"
    assert not breaker.allow()  # one trial at a time
    breaker.record(False)
    assert breaker.state == "open"


async def test_bounded_route_rejects_with_429_or_503(client: aiohttp.ClientSession) -> None:
    async def one() -> int:
        async with client.get("/api/v1/test/load?ms=300") as r:
            return r.status

    statuses = await asyncio.gather(*(one() for _ in range(30)))
    assert statuses.count(200) == 10  # capacity 5 + queue 5
    assert sum(1 for s in statuses if s in (429, 503)) == 20


async def test_fault_switches(client: aiohttp.ClientSession, target: EmbeddedTarget) -> None:
    target.set_faults_sync(error_rate=1.0)
    async with client.get("/health") as r:
        assert r.status == 500
    target.set_faults_sync(error_rate=0.0, latency=0.2)
    start = time.perf_counter()
    async with client.get("/health") as r:
        assert r.status == 200
    assert time.perf_counter() - start >= 0.2
    target.set_faults_sync(latency=0.0, stall=True, stall_for=0.5)
    start = time.perf_counter()
    async with client.get("/health") as r:
        assert r.status == 200
    assert 0.4 <= time.perf_counter() - start < 3.0


async def test_fault_switches_are_not_on_the_network(client: aiohttp.ClientSession) -> None:
    """Only the process that started the target can flip its switches (on the child's stdin):
    the old admin route is gone, so no other local process can stall it."""
    async with client.post("/__stressdeck/faults", json={"stall": True}) as r:
        assert r.status == 404
    async with client.get("/health") as r:
        assert r.status == 200
