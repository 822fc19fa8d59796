"""The raw client against real sockets: small servers on 127.0.0.1 that answer byte for byte.

Each server writes its responses in deliberately awkward pieces (a head split from its body,
chunk sizes split mid-line, a body that ends with the connection), so the parser is tested on
what TCP really delivers, not on whole messages.
"""

from __future__ import annotations

import asyncio
import gzip
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from console.sessions.http.client import RequestError
from console.sessions.http.raw import RawClient

ROOT = Path(__file__).resolve().parent.parent
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, int], Awaitable[None]]


@asynccontextmanager
async def serve(handler: Handler) -> AsyncIterator[tuple[str, list[int]]]:
    """A server calling ``handler(reader, writer, n)`` per request; yields (url, connections)."""
    connections: list[int] = []

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(0)
        conn = len(connections) - 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lower = head.lower()
                if b"content-length:" in lower:
                    size = int(lower.split(b"content-length:")[1].split(b"\r\n")[0])
                    await reader.readexactly(size)
                connections[conn] += 1
                await handler(reader, writer, sum(connections))
                if writer.is_closing():
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", connections
    finally:
        server.close()
        await server.wait_closed()


async def pieces(writer: asyncio.StreamWriter, *parts: bytes) -> None:
    for i, part in enumerate(parts):
        if i:
            await asyncio.sleep(0.01)  # separate segments, so the client sees separate reads
        writer.write(part)
        await writer.drain()


async def test_bodies_by_length_chunks_gzip_and_close() -> None:
    zipped = gzip.compress(b"squeezed " * 50)
    wire: list[int] = []

    async def handler(_r: asyncio.StreamReader, w: asyncio.StreamWriter, n: int) -> None:
        if n == 1:
            parts = [b"HTTP/1.1 200 OK\r\nContent-Len", b"gth: 10\r\nX-A: 1\r\n\r\n01234", b"56789"]
        elif n == 2:
            parts = [
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nab",
                b"cd\r\n1",
                b"0;ext=1\r\n" + b"x" * 16 + b"\r\n0\r\nTrailer: t\r\n",
                b"\r\n",
            ]
        elif n == 3:
            head = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n"
            parts = [head % len(zipped) + zipped]
        else:  # no length: the body ends when the server closes
            parts = [b"HTTP/1.0 200 OK\r\nX-B: 2\r\n\r\nuntil ", b"the end"]
        wire.append(sum(len(p) for p in parts))
        await pieces(w, *parts)
        if n >= 4:
            w.close()

    client = RawClient()
    async with serve(handler) as (url, connections):
        try:
            replies = [await client.request("GET", url + "/x", {}, None, 5.0) for _ in range(4)]
            again = await client.request("GET", url + "/again", {}, None, 5.0)
        finally:
            await client.close()
    assert [r.body for r in replies] == [
        b"0123456789",
        b"abcd" + b"x" * 16,
        b"squeezed " * 50,
        b"until the end",
    ]
    assert replies[0].headers["x-a"] == "1" and replies[0].headers.get("X-A") == "1"
    assert replies[3].headers.get("x-b") == "2"
    assert [r.received for r in replies] == wire[:4]  # the bytes on the wire, exactly
    # keep-alive: the first three shared a connection; the close-delimited one ended it
    assert connections[0] == 4 and len(connections) == 2
    assert again.status == 200


async def test_bodies_beyond_max_body_are_counted_not_kept() -> None:
    """The same three framings, each longer than the cap: the start kept, every byte counted,
    and the connection still good for the next request."""
    big = bytes(range(256)) * 40  # 10,240 bytes

    async def handler(_r: asyncio.StreamReader, w: asyncio.StreamWriter, n: int) -> None:
        if n == 1:
            parts = [
                b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(big),
                big[:3000],
                big[3000:],
            ]
        elif n == 2:
            chunks = b"".join(
                b"%x\r\n" % 1024 + big[i : i + 1024] + b"\r\n" for i in range(0, len(big), 1024)
            )
            parts = [
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                chunks[:2500],
                chunks[2500:] + b"0\r\n\r\n",
            ]
        elif n == 3:
            parts = [b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"]
        else:
            parts = [b"HTTP/1.0 200 OK\r\n\r\n", big[:5000], big[5000:]]
        await pieces(w, *parts)
        if n >= 4:
            w.close()

    client = RawClient(max_body=100)
    async with serve(handler) as (url, connections):
        try:
            replies = [await client.request("GET", url, {}, None, 5.0) for _ in range(4)]
        finally:
            await client.close()
    assert [r.body for r in replies] == [big[:100], big[:100], b"ok", big[:100]]
    assert [r.truncated for r in replies] == [True, True, False, True]
    assert all(r.received > len(big) for r in (replies[0], replies[1], replies[3]))
    assert connections[0] == 4  # cut bodies were still read to their end: keep-alive holds


async def test_head_and_bodyless_statuses_do_not_wait_for_a_body() -> None:
    async def handler(_r: asyncio.StreamReader, w: asyncio.StreamWriter, n: int) -> None:
        status = {1: b"200 OK", 2: b"204 No Content", 3: b"304 Not Modified"}.get(n, b"200 OK")
        await pieces(w, b"HTTP/1.1 " + status + b"\r\nContent-Length: 5\r\n\r\n")
        if n >= 4:
            await pieces(w, b"hello")

    client = RawClient()
    async with serve(handler) as (url, connections):
        try:
            head = await client.request("HEAD", url, {}, None, 2.0)
            empty = await client.request("GET", url, {}, None, 2.0)
            cached = await client.request("GET", url, {}, None, 2.0)
            full = await client.request("GET", url, {}, None, 2.0)
        finally:
            await client.close()
    assert (head.status, empty.status, cached.status) == (200, 204, 304)
    assert head.body == empty.body == cached.body == b""
    assert full.body == b"hello" and len(connections) == 1


async def test_timeout_reset_and_refused_are_classified() -> None:
    async def silent(r: asyncio.StreamReader, _w: asyncio.StreamWriter, _n: int) -> None:
        await r.read()  # never answers

    client = RawClient()
    async with serve(silent) as (url, _):
        with pytest.raises(RequestError) as timeout:
            await client.request("GET", url, {}, None, 0.2)
    assert timeout.value.cls == "timeout"

    async def slam(_r: asyncio.StreamReader, w: asyncio.StreamWriter, _n: int) -> None:
        w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
        await w.drain()
        w.transport.abort()

    async with serve(slam) as (url, _):
        with pytest.raises(RequestError) as reset:
            await client.request("GET", url, {}, None, 2.0)
    assert reset.value.cls == "reset"
    with pytest.raises(RequestError) as refused:
        await client.request("GET", url, {}, None, 2.0)  # the server is gone
    assert refused.value.cls == "refused"
    await client.close()


async def test_a_keepalive_connection_the_server_closed_is_replaced() -> None:
    async def once(_r: asyncio.StreamReader, w: asyncio.StreamWriter, _n: int) -> None:
        await pieces(w, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        w.close()  # keep-alive was implied, the server closes anyway (an idle timeout)

    client = RawClient()
    async with serve(once) as (url, connections):
        try:
            for _ in range(3):
                reply = await client.request("GET", url, {}, None, 2.0)
                assert reply.body == b"ok"
        finally:
            await client.close()
    assert len(connections) == 3


async def test_requests_carry_headers_and_bodies_and_redirects_are_followed() -> None:
    seen: list[bytes] = []

    async def handler(r: asyncio.StreamReader, w: asyncio.StreamWriter, n: int) -> None:
        if n == 1:
            await pieces(
                w, b"HTTP/1.1 303 See Other\r\nLocation: /final\r\nContent-Length: 0\r\n\r\n"
            )
        else:
            await pieces(w, b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ndone")

    # the server above reads the request itself; record what arrives with a second one
    async def record(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        body = await reader.readexactly(
            int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
        )
        seen.append(head + body)
        writer.write(b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    client = RawClient()
    recorder = await asyncio.start_server(record, "127.0.0.1", 0)
    port = recorder.sockets[0].getsockname()[1]
    try:
        posted = await client.request(
            "POST", f"http://127.0.0.1:{port}/up?x=1", {"X-Device": "d-1"}, b"payload", 2.0
        )
        async with serve(handler) as (url, _):
            followed = await client.request("POST", url + "/start", {}, b"abc", 2.0)
    finally:
        await client.close()
        recorder.close()
        await recorder.wait_closed()
    assert posted.status == 201
    request = seen[0].decode()
    assert request.startswith("POST /up?x=1 HTTP/1.1\r\n")
    assert f"Host: 127.0.0.1:{port}\r\n" in request and "X-Device: d-1\r\n" in request
    assert "Content-Length: 7\r\n" in request and request.endswith("\r\n\r\npayload")
    assert (followed.status, followed.body) == (200, b"done")


async def test_request_targets_are_encoded_and_header_injection_refused() -> None:
    heads: list[bytes] = []

    async def record(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        heads.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(record, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    client = RawClient()
    try:
        await client.request("GET", url + "/a b/é?q=x y&k=%2F", {}, None, 2.0)
        with pytest.raises(ValueError):  # a captured value carrying CRLF
            await client.request("GET", url + "/", {"X-Who": "me\r\nX-Admin: 1"}, None, 2.0)
    finally:
        await client.close()
        server.close()
        await server.wait_closed()
    assert heads[0].startswith(b"GET /a%20b/%C3%A9?q=x%20y&k=%2F HTTP/1.1\r\n")
    assert len(heads) == 1


@pytest.mark.parametrize(("setting", "loop"), [("1", "uvloop"), ("0", "asyncio")])
def test_workers_run_on_uvloop_unless_told_not_to(setting: str, loop: str) -> None:
    pytest.importorskip("uvloop")
    code = (
        "import asyncio; from console.sessions.http.worker import _runner\n"
        "async def main() -> int:\n"
        "    print(type(asyncio.get_running_loop()).__module__.split('.')[0]); return 0\n"
        "_runner()(main())"
    )
    env = dict(os.environ, STRESSDECK_UVLOOP=setting, PYTHONPATH=str(ROOT))
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )
    assert out.stdout.strip() == loop, out.stderr
