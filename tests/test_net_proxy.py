"""The fault proxy's core over real loopback sockets: pass-through, each toxic, live changes."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator

import pytest

from console.net.proxy import Link, _Connection
from console.net.toxics import ToxicError, make_toxic, update_toxic


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            if data.startswith(b"BIG"):
                writer.write(b"x" * int(data[3:].strip()))
            else:
                writer.write(data)
            await writer.drain()
        writer.write_eof()
    except (ConnectionResetError, BrokenPipeError):
        pass
    finally:
        writer.close()


@contextlib.asynccontextmanager
async def _echo_link(**link_args: object) -> AsyncIterator[Link]:
    server = await asyncio.start_server(_echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    link = Link("test", f"127.0.0.1:{port}", **link_args)  # type: ignore[arg-type]
    await link.start()
    try:
        yield link
    finally:
        await link.stop()
        server.close()
        await server.wait_closed()


async def _connect(link: Link) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", link.listen_port)


async def _round_trip(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> float:
    start = time.monotonic()
    writer.write(b"ping")
    await writer.drain()
    assert await asyncio.wait_for(reader.readexactly(4), 10) == b"ping"
    return time.monotonic() - start


async def test_passes_bytes_both_ways_and_counts_them() -> None:
    async with _echo_link() as link:
        reader, writer = await _connect(link)
        writer.write(b"hello")
        assert await asyncio.wait_for(reader.readexactly(5), 5) == b"hello"
        writer.write_eof()  # a half-close travels through and the echo ends its side
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()
        stats = link.stats()
        assert stats.connections_total == 1
        assert (stats.bytes_up, stats.bytes_down) == (5, 5)


async def test_latency_applies_to_an_open_connection_and_lifts() -> None:
    async with _echo_link() as link:
        reader, writer = await _connect(link)
        await _round_trip(reader, writer)
        link.add_toxic(make_toxic({"type": "latency", "attributes": {"latency": 150}}))
        assert await _round_trip(reader, writer) >= 0.15
        link.remove_toxic("latency_downstream")
        assert await _round_trip(reader, writer) < 0.15
        writer.close()


async def test_latency_delays_each_chunk_from_its_arrival_not_in_series() -> None:
    async with _echo_link() as link:
        link.add_toxic(make_toxic({"type": "latency", "attributes": {"latency": 200}}))
        reader, writer = await _connect(link)
        start = time.monotonic()
        for _ in range(5):  # five chunks in a row: about 200 ms in all, not 1 s
            writer.write(b"ping")
            await writer.drain()
            await asyncio.sleep(0.02)
        assert await asyncio.wait_for(reader.readexactly(20), 10) == b"ping" * 5
        assert 0.2 <= time.monotonic() - start < 0.9
        writer.close()


async def test_reset_peer_resets_both_legs() -> None:
    server_saw: list[BaseException | None] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await reader.read(1024):
                writer.write(b"ok")
            server_saw.append(None)  # a plain end of file
        except ConnectionResetError as exc:
            server_saw.append(exc)
        writer.close()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    link = Link("r", f"127.0.0.1:{server.sockets[0].getsockname()[1]}")
    await link.start()
    try:
        reader, writer = await _connect(link)
        writer.write(b"a")
        assert await asyncio.wait_for(reader.readexactly(2), 5) == b"ok"
        link.add_toxic(make_toxic({"type": "reset_peer", "stream": "upstream"}))
        writer.write(b"b")
        with pytest.raises(ConnectionResetError):
            await asyncio.wait_for(reader.read(1024), 5)
        for _ in range(100):
            if server_saw:
                break
            await asyncio.sleep(0.02)
        assert server_saw and isinstance(server_saw[0], ConnectionResetError)
        writer.close()
    finally:
        await link.stop()
        server.close()


async def test_timeout_zero_holds_data_and_removal_closes() -> None:
    async with _echo_link() as link:
        reader, writer = await _connect(link)
        await _round_trip(reader, writer)
        link.add_toxic(make_toxic({"type": "timeout", "name": "hole"}))
        writer.write(b"lost")
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(reader.read(1024), 0.5)
        link.remove_toxic("hole")
        assert await asyncio.wait_for(reader.read(1024), 5) == b""
        writer.close()


async def test_timeout_closes_an_idle_connection_after_its_time() -> None:
    async with _echo_link() as link:
        reader, writer = await _connect(link)
        await _round_trip(reader, writer)
        link.add_toxic(make_toxic({"type": "timeout", "attributes": {"timeout": 200}}))
        assert await asyncio.wait_for(reader.read(1024), 5) == b""
        writer.close()


async def test_limit_data_cuts_a_large_response() -> None:
    async with _echo_link() as link:
        link.add_toxic(make_toxic({"type": "limit_data", "attributes": {"bytes": 1000}}))
        reader, writer = await _connect(link)
        writer.write(b"BIG 100000")
        got = await asyncio.wait_for(reader.read(), 5)
        assert len(got) == 1000
        writer.close()


async def test_slicer_delivers_every_byte_in_small_pieces() -> None:
    async with _echo_link() as link:
        link.add_toxic(
            make_toxic(
                {
                    "type": "slicer",
                    "attributes": {"average_size": 64, "size_variation": 32, "delay": 100},
                }
            )
        )
        reader, writer = await _connect(link)
        writer.write(b"BIG 50000")
        got = await asyncio.wait_for(reader.readexactly(50000), 10)
        assert got == b"x" * 50000
        writer.close()


async def test_bandwidth_caps_bytes_per_second() -> None:
    async with _echo_link() as link:
        link.add_toxic(make_toxic({"type": "bandwidth", "attributes": {"rate": 100}}))
        reader, writer = await _connect(link)
        start = time.monotonic()
        writer.write(b"BIG 50000")  # 50 KB at 100 KB/s: at least 0.5 s
        await asyncio.wait_for(reader.readexactly(50000), 10)
        assert time.monotonic() - start >= 0.45
        writer.close()


async def test_toxicity_zero_spares_every_connection() -> None:
    async with _echo_link() as link:
        link.add_toxic(make_toxic({"type": "timeout", "toxicity": 0.0}))
        reader, writer = await _connect(link)
        await _round_trip(reader, writer)
        writer.close()


async def test_down_refuses_and_drops_then_comes_back_on_the_same_port() -> None:
    async with _echo_link() as link:
        port = link.listen_port
        reader, writer = await _connect(link)
        await _round_trip(reader, writer)
        await link.set_enabled(False)
        assert await asyncio.wait_for(reader.read(1024), 5) == b""
        with pytest.raises(ConnectionRefusedError):
            await _connect(link)
        await link.set_enabled(True)
        assert link.listen_port == port
        reader2, writer2 = await _connect(link)
        await _round_trip(reader2, writer2)
        writer.close()
        writer2.close()


async def test_a_dead_upstream_resets_the_client() -> None:
    link = Link("dead", "127.0.0.1:1")
    await link.start()
    try:
        reader, writer = await _connect(link)
        with pytest.raises(ConnectionResetError):
            await asyncio.wait_for(reader.read(1024), 5)
        writer.close()
    finally:
        await link.stop()


def test_toxics_follow_toxiproxy_rules() -> None:
    toxic = make_toxic({"type": "latency", "attributes": {"latency": 5}})
    assert toxic.to_json() == {
        "name": "latency_downstream",
        "type": "latency",
        "stream": "downstream",
        "toxicity": 1.0,
        "attributes": {"latency": 5, "jitter": 0},
    }
    changed = update_toxic(toxic, {"attributes": {"jitter": 2}})
    assert changed.attributes == {"latency": 5, "jitter": 2} and changed.uid != toxic.uid
    with pytest.raises(ToxicError, match="invalid toxic type"):
        make_toxic({"type": "nope"})
    with pytest.raises(ToxicError, match="stream"):
        make_toxic({"type": "latency", "stream": "sideways"})
    link = Link("l", "127.0.0.1:9")
    link.add_toxic(toxic)
    with pytest.raises(ToxicError) as exc:
        link.add_toxic(toxic)
    assert exc.value.status == 409


async def test_a_connection_ended_while_its_upstream_connects_leaves_nothing_open() -> None:
    closed = asyncio.Event()

    async def upstream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # returns once the proxy's upstream leg is closed
        closed.set()
        writer.close()

    server = await asyncio.start_server(upstream, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    link = Link("gone", f"127.0.0.1:{port}")
    conn = _Connection(link, random.Random(0))
    conn.close()  # the client left, or the link went down, before the upstream answered
    try:
        await conn.open(("127.0.0.1", port))
        await asyncio.wait_for(closed.wait(), 5)
    finally:
        server.close()


async def test_slow_close_delays_the_close() -> None:
    async def hello_bye(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"bye")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(hello_bye, "127.0.0.1", 0)
    link = Link("slow", f"127.0.0.1:{server.sockets[0].getsockname()[1]}")
    link.add_toxic(make_toxic({"type": "slow_close", "attributes": {"delay": 300}}))
    await link.start()
    try:
        reader, writer = await _connect(link)
        assert await asyncio.wait_for(reader.readexactly(3), 5) == b"bye"  # data is not held
        start = time.monotonic()
        assert await asyncio.wait_for(reader.read(), 5) == b""
        assert time.monotonic() - start >= 0.25  # the close is
        writer.close()
    finally:
        await link.stop()
        server.close()
