"""Toxiproxy's REST API, driven by a client nobody here wrote (toxiproxy-python) and by raw
requests for the status codes that client hides."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from console.net.api import ApiServer, LinkSet

toxiproxy = pytest.importorskip("toxiproxy", reason="toxiproxy-python is in the test extra")


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionResetError:
        pass
    writer.close()


@pytest.fixture
async def api() -> AsyncIterator[tuple[ApiServer, int]]:
    echo = await asyncio.start_server(_echo, "127.0.0.1", 0)
    links = LinkSet()
    server = ApiServer(links, "127.0.0.1:0")
    await server.start()
    try:
        yield server, echo.sockets[0].getsockname()[1]
    finally:
        await server.stop()
        await links.close()
        echo.close()
        await echo.wait_closed()


def _round_trip(port: int) -> float:
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        start = time.monotonic()
        sock.sendall(b"ping")
        got = b""
        while len(got) < 4:
            got += sock.recv(16)
        return time.monotonic() - start


def _client_session(api_port: int, echo_port: int) -> dict[str, object]:
    """What an experiment does with the real client, run in a thread (it uses requests)."""
    server = toxiproxy.Toxiproxy()
    server.update_api_consumer("127.0.0.1", api_port)
    seen: dict[str, object] = {"running": server.running(), "version": server.version()}
    proxy = server.create(upstream=f"127.0.0.1:{echo_port}", name="db", listen="127.0.0.1:0")
    port = int(proxy.listen.rpartition(":")[2])
    seen["plain"] = _round_trip(port)
    with pytest.raises(toxiproxy.api.ProxyExists):
        server.create(upstream=f"127.0.0.1:{echo_port}", name="db")
    proxy.add_toxic(type="latency", attributes={"latency": 120, "jitter": 0})
    seen["toxics"] = {name: t.attributes for name, t in proxy.toxics().items()}
    seen["slow"] = _round_trip(port)
    proxy.destroy_toxic("latency_downstream")
    seen["after_remove"] = proxy.toxics()
    with proxy.down():
        try:
            _round_trip(port)
            seen["down"] = "connected"
        except OSError:
            seen["down"] = "refused"
    seen["back"] = _round_trip(port)
    with pytest.raises(toxiproxy.api.NotFound):
        toxiproxy.api.APIConsumer.get("/proxies/nope")
    seen["populated"] = [
        p.name for p in server.populate([{"name": "cache", "upstream": f"127.0.0.1:{echo_port}"}])
    ]
    seen["names"] = sorted(server.proxies())
    seen["reset"] = server.reset()
    server.destroy_all()
    seen["empty"] = server.proxies()
    return seen


async def test_toxiproxy_python_drives_links(api: tuple[ApiServer, int]) -> None:
    server, echo_port = api
    seen = await asyncio.to_thread(_client_session, server.port, echo_port)
    assert seen["running"] is True
    assert b"version" in seen["version"]  # type: ignore[operator]
    assert seen["toxics"] == {"latency_downstream": {"latency": 120, "jitter": 0}}
    assert seen["slow"] >= 0.12  # type: ignore[operator]
    assert seen["after_remove"] == {}
    assert seen["down"] == "refused"
    assert seen["populated"] == ["cache"]
    assert seen["names"] == ["cache", "db"]
    assert seen["reset"] is True
    assert seen["empty"] == {}


async def test_status_codes_and_shapes(api: tuple[ApiServer, int]) -> None:
    server, echo_port = api
    base = f"http://127.0.0.1:{server.port}"
    async with httpx.AsyncClient(base_url=base) as client:
        created = await client.post(
            "/proxies", json={"name": "a", "upstream": f"127.0.0.1:{echo_port}"}
        )
        assert created.status_code == 201
        body = created.json()
        assert set(body) == {"name", "listen", "upstream", "enabled", "toxics"}
        assert body["enabled"] is True and body["toxics"] == []
        dup = await client.post(
            "/proxies", json={"name": "a", "upstream": f"127.0.0.1:{echo_port}"}
        )
        assert dup.status_code == 409
        assert dup.json() == {"error": "proxy already exists", "status": 409}
        assert (await client.post("/proxies", json={"name": "b"})).status_code == 400
        assert (await client.get("/proxies/zzz")).status_code == 404
        toxic = {"type": "slicer", "attributes": {"average_size": 10}}
        added = await client.post("/proxies/a/toxics", json=toxic)
        assert added.status_code == 200
        assert added.json()["attributes"] == {"average_size": 10, "size_variation": 0, "delay": 0}
        assert (await client.post("/proxies/a/toxics", json=toxic)).status_code == 409
        bad = await client.post("/proxies/a/toxics", json={"type": "gremlin"})
        assert bad.status_code == 400 and bad.json()["error"] == "invalid toxic type"
        patched = await client.patch("/proxies/a/toxics/slicer_downstream", json={"toxicity": 0.5})
        assert patched.json()["toxicity"] == 0.5
        assert (await client.get("/proxies/a/toxics/nope")).status_code == 404
        assert (await client.delete("/proxies/a/toxics/slicer_downstream")).status_code == 204
        browser = await client.get("/proxies", headers={"User-Agent": "Mozilla/5.0"})
        assert browser.status_code == 403
        assert (await client.delete("/proxies/a")).status_code == 204
        assert (await client.get("/version")).json()["version"]
