"""A TCP fault proxy per link, in asyncio, following Toxiproxy's model.

One :class:`Link` listens on loopback and opens one upstream connection per client connection.
Each connection has two :class:`_Pipe` objects, ``upstream`` (client to server) and
``downstream`` (server to client). A pipe consults the link's toxic chain for its direction at
every chunk, so toxics added, changed or removed take effect on open connections at once.

Why protocols and not streams: with no toxic, a chunk goes from ``data_received`` straight to the
other transport's ``write`` - no task switch, no queue - which is what keeps the added latency
near zero. Only when a toxic applies (or data is still queued behind one) does a chunk go through
the pipe's queue and its writer task, stamped with its arrival time as Toxiproxy's chunks are, so
``latency`` delays each chunk from when it arrived rather than from when the previous one left.

Flow control both ways: a full queue or a peer transport above its write high-water mark pauses
reading from the source, so a ``bandwidth`` toxic pushes back on the sender like a slow link.

``reset_peer`` sets SO_LINGER 0 on both sockets and aborts them, so the client and the server
each see a TCP reset, not an end of file. ``down`` (Toxiproxy's ``enabled = false``) closes the
listening socket, so new connections are refused, and closes the open ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from console.net.toxics import Toxic, ToxicError

__all__ = ["Link", "LinkStats", "parse_address"]

_QUEUE_CHUNKS = 256  # queued chunks per pipe before the source is paused (Toxiproxy: 1024)
_LINGER_ZERO = struct.pack("ii", 1, 0)

Upstream = Callable[[], tuple[str, int]]
Emit = Callable[[float, bytes | None], Awaitable[None]]


def parse_address(text: str, *, default_host: str = "127.0.0.1") -> tuple[str, int]:
    """``host:port``, ``[::1]:port`` or ``:port`` into ``(host, port)``; ValueError when not."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"{text!r} is not host:port")
    host = host.strip("[]") or default_host
    return host, int(port)


@dataclass(frozen=True)
class LinkStats:
    """Counters of one link, for panes and the API."""

    connections_total: int
    connections_open: int
    refused: int
    bytes_up: int  # client to upstream, delivered
    bytes_down: int  # upstream to client, delivered


class _Side(asyncio.Protocol):
    """One leg of a connection (the client's or the upstream's socket)."""

    def __init__(self, conn: _Connection, name: str) -> None:
        self.conn = conn
        self.name = name  # "client" or "server"
        self.transport: asyncio.Transport | None = None
        self.out: _Pipe | None = None  # the pipe this side's reads feed
        self.into: _Pipe | None = None  # the pipe that writes to this side
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        if self.conn.done:  # ended while this leg was being made: nobody else will close it
            transport.close()
        elif self.name == "client":
            transport.pause_reading()  # nothing to write to until the upstream answers

    def data_received(self, data: bytes) -> None:
        pipe = self.out
        if pipe is None:
            return
        if pipe.fast:  # the cheap path, inlined: no toxic, nothing queued - write straight on
            transport = pipe.dst.transport
            if transport is not None and not transport.is_closing():
                transport.write(data)
                pipe.delivered += len(data)
                pipe.counts[pipe.slot] += len(data)
            return
        pipe.feed(data)

    def eof_received(self) -> bool:
        if self.out is not None:
            self.out.feed_eof()
        return True  # keep the write half open: a half-close is passed on, not turned into a close

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.conn.side_lost(self, exc)

    def pause_writing(self) -> None:
        if self.into is not None:
            self.into.pause_source("write")

    def resume_writing(self) -> None:
        if self.into is not None:
            self.into.resume_source("write")


class _Pipe:
    """One direction of one connection, with its queue and (when toxics apply) writer task."""

    def __init__(self, conn: _Connection, direction: str, src: _Side, dst: _Side) -> None:
        self.conn = conn
        self.link = conn.link
        self.direction = direction
        self.src = src
        self.dst = dst
        self.queue: deque[tuple[float, bytes | None]] = deque()
        self.wake = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.busy = False  # the writer holds a chunk
        self.fast = not self.link.chains[direction]  # no toxic, nothing queued, writer idle
        self.counts = self.link.counts  # [bytes up, bytes down] of the link
        self.slot = 0 if direction == "upstream" else 1
        self.paused: set[str] = set()
        self.eof = False
        self.delivered = 0  # bytes delivered through this pipe (limit_data counts these)
        self.bandwidth_next: dict[int, float] = {}  # toxic uid -> when the link is free again

    # ----- input ---------------------------------------------------------------------------

    def refresh(self) -> None:
        self.fast = not self.link.chains[self.direction] and not self.queue and not self.busy

    def feed(self, data: bytes) -> None:
        if self.fast:
            self._write(data)
            return
        self._enqueue(data)

    def feed_eof(self) -> None:
        if self.eof:
            return
        self.eof = True
        if self.fast:
            self._write_eof()
            return
        self._enqueue(None)

    def _enqueue(self, data: bytes | None) -> None:
        self.fast = False
        self.queue.append((time.monotonic(), data))
        if len(self.queue) >= _QUEUE_CHUNKS:
            self.pause_source("queue")
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(self._writer())
        self.wake.set()

    def pause_source(self, why: str) -> None:
        if not self.paused and self.src.transport is not None and not self.src.closed:
            with contextlib.suppress(RuntimeError):
                self.src.transport.pause_reading()
        self.paused.add(why)

    def resume_source(self, why: str) -> None:
        self.paused.discard(why)
        if not self.paused and self.src.transport is not None and not self.src.closed:
            with contextlib.suppress(RuntimeError):
                self.src.transport.resume_reading()

    # ----- output --------------------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        transport = self.dst.transport
        if transport is None or self.dst.closed or transport.is_closing():
            return
        transport.write(data)
        self.delivered += len(data)
        self.counts[self.slot] += len(data)

    def _write_eof(self) -> None:
        transport = self.dst.transport
        if transport is not None and not self.dst.closed and not transport.is_closing():
            with contextlib.suppress(OSError, RuntimeError):
                transport.write_eof()
        self.conn.direction_ended(self.direction)

    async def _writer(self) -> None:
        try:
            while True:
                while not self.queue:
                    self.wake.clear()
                    await self.wake.wait()
                ts, data = self.queue.popleft()
                if len(self.queue) < _QUEUE_CHUNKS // 2:
                    self.resume_source("queue")
                self.busy = True
                try:
                    chain = [t for t in self.link.chains[self.direction] if self.conn.affected(t)]
                    await self._through(chain, 0, ts, data)
                finally:
                    self.busy = False
                    self.refresh()
                if data is None:
                    return
        except asyncio.CancelledError:
            raise
        except (OSError, RuntimeError):
            self.conn.close()

    async def _through(self, chain: list[Toxic], i: int, ts: float, data: bytes | None) -> None:
        """Pass one chunk (``None`` = end of stream) through toxics ``chain[i:]``, then out."""
        if i == len(chain):
            if data is None:
                self._write_eof()
            else:
                self._write(data)
            return

        async def emit(ts2: float, piece: bytes | None) -> None:
            await self._through(chain, i + 1, ts2, piece)

        await _APPLY[chain[i].type](self, chain[i], ts, data, emit)


# ----- what each toxic does to a chunk (Toxiproxy's toxics/*.go) --------------------------------


async def _latency(pipe: _Pipe, toxic: Toxic, ts: float, data: bytes | None, emit: Emit) -> None:
    if data is None:
        await emit(ts, None)
        return
    delay = toxic.attr("latency")
    jitter = toxic.attr("jitter")
    if jitter > 0:
        delay += pipe.conn.rng.randrange(jitter * 2) - jitter
    sleep = delay / 1000.0 - (time.monotonic() - ts)
    if sleep > 0:
        await asyncio.sleep(sleep)
        ts += sleep
    await emit(ts, data)


async def _bandwidth(pipe: _Pipe, toxic: Toxic, ts: float, data: bytes | None, emit: Emit) -> None:
    rate = toxic.attr("rate") * 1000  # bytes per second
    if data is None or rate <= 0:
        await emit(ts, data)
        return
    step = max(rate // 10, 1)  # at most 100 ms worth at a time, as Toxiproxy sends it
    for start in range(0, len(data), step):
        piece = data[start : start + step]
        now = time.monotonic()
        free = max(pipe.bandwidth_next.get(toxic.uid, now), now) + len(piece) / rate
        pipe.bandwidth_next[toxic.uid] = free
        if free > now:
            await asyncio.sleep(free - now)
        await emit(ts, piece)


async def _slow_close(pipe: _Pipe, toxic: Toxic, ts: float, data: bytes | None, emit: Emit) -> None:
    if data is None:
        await asyncio.sleep(toxic.attr("delay") / 1000.0)
    await emit(ts, data)


async def _timeout(pipe: _Pipe, toxic: Toxic, ts: float, data: bytes | None, emit: Emit) -> None:
    # Data is dropped; the close after `timeout` ms is armed by the connection (see _arm), so it
    # happens on an idle connection too.
    if data is None:
        pipe.conn.close()


async def _reset_peer(pipe: _Pipe, toxic: Toxic, ts: float, data: bytes | None, emit: Emit) -> None:
    await asyncio.sleep(toxic.attr("timeout") / 1000.0)
    pipe.conn.reset()


async def _slicer(pipe: _Pipe, toxic: Toxic, ts: float, data: bytes | None, emit: Emit) -> None:
    if data is None:
        await emit(ts, None)
        return
    average = max(toxic.attr("average_size"), 1)
    variation = toxic.attr("size_variation")
    bounds = _slices(0, len(data), average, variation, pipe.conn.rng)
    delay = toxic.attr("delay") / 1_000_000.0  # microseconds, as in Toxiproxy
    for start, end in zip(bounds[::2], bounds[1::2], strict=True):
        await emit(ts, data[start:end])
        if delay > 0 and end < len(data):
            await asyncio.sleep(delay)


def _slices(start: int, end: int, average: int, variation: int, rng: random.Random) -> list[int]:
    if (end - start) - average <= variation:
        return [start, end]
    mid = start + (end - start) // 2
    if variation > 0:
        mid += rng.randrange(variation * 2) - variation
    return _slices(start, mid, average, variation, rng) + _slices(mid, end, average, variation, rng)


async def _limit_data(pipe: _Pipe, toxic: Toxic, ts: float, data: bytes | None, emit: Emit) -> None:
    if data is None:
        await emit(ts, None)
        return
    remaining = toxic.attr("bytes") - pipe.delivered
    if remaining > 0:
        await emit(ts, data[:remaining])
    if toxic.attr("bytes") - pipe.delivered <= 0:
        pipe.conn.close()


_APPLY: dict[str, Callable[[_Pipe, Toxic, float, bytes | None, Emit], Awaitable[None]]] = {
    "latency": _latency,
    "bandwidth": _bandwidth,
    "slow_close": _slow_close,
    "timeout": _timeout,
    "reset_peer": _reset_peer,
    "slicer": _slicer,
    "limit_data": _limit_data,
}


class _Connection:
    """A client connection and its upstream connection, joined by two pipes."""

    def __init__(self, link: Link, rng: random.Random) -> None:
        self.link = link
        self.rng = rng
        self.client = _Side(self, "client")
        self.server = _Side(self, "server")
        self.up = _Pipe(self, "upstream", self.client, self.server)
        self.down = _Pipe(self, "downstream", self.server, self.client)
        self.client.out, self.server.into = self.up, self.up
        self.server.out, self.client.into = self.down, self.down
        self.draws: dict[int, bool] = {}  # toxic uid -> does it apply to this connection
        self.timers: dict[int, asyncio.TimerHandle] = {}  # timeout toxics' close timers
        self.ended: set[str] = set()
        self.done = False
        self.task: asyncio.Task[None] | None = None

    def affected(self, toxic: Toxic) -> bool:
        hit = self.draws.get(toxic.uid)
        if hit is None:
            hit = self.draws[toxic.uid] = (
                toxic.toxicity >= 1.0 or self.rng.random() < toxic.toxicity
            )
        return hit

    def toxics_changed(self) -> None:
        """Arm close timers for timeout toxics; a removed timeout closes what it held
        (Toxiproxy's Cleanup: the data it swallowed is gone, so the stream is not whole)."""
        live = {t.uid: t for d in self.link.chains.values() for t in d if t.type == "timeout"}
        for uid in list(self.timers):
            if uid not in live:
                self.timers.pop(uid).cancel()
        names = {t.name for t in live.values()}
        seen = self.link.timeouts_seen
        if any(hit and uid in seen and seen[uid] not in names for uid, hit in self.draws.items()):
            self.close()
            return
        loop = asyncio.get_running_loop()
        for uid, toxic in live.items():
            if uid not in self.timers and self.affected(toxic) and toxic.attr("timeout") > 0:
                self.timers[uid] = loop.call_later(toxic.attr("timeout") / 1000.0, self.close)

    async def open(self, upstream: tuple[str, int]) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.create_connection(lambda: self.server, *upstream)
        except OSError:
            self.reset()  # as a real dead server would look to the client
            return
        if self.done:  # ended meanwhile; connection_made closed the new leg
            return
        assert self.client.transport is not None
        self.client.transport.resume_reading()
        self.toxics_changed()

    def side_lost(self, side: _Side, exc: Exception | None) -> None:
        if self.done:
            return
        if isinstance(exc, ConnectionResetError):
            self.reset()
        elif exc is not None:
            self.close()
        elif side.out is not None:
            side.out.feed_eof()  # what was read still goes through, then the other leg closes
            if side.into is not None and not side.into.eof:
                side.into.eof = True
                self.direction_ended(side.into.direction)

    def direction_ended(self, direction: str) -> None:
        self.ended.add(direction)
        if len(self.ended) == 2:
            self.close()

    def close(self) -> None:
        self._end(reset=False)

    def reset(self) -> None:
        self._end(reset=True)

    def _end(self, *, reset: bool) -> None:
        if self.done:
            return
        self.done = True
        for timer in self.timers.values():
            timer.cancel()
        for task in (self.up.task, self.down.task, self.task):
            if task is not None and not task.done() and task is not asyncio.current_task():
                task.cancel()
                self.link.ending.add(task)  # awaited by Link.stop, so none outlives the link
                task.add_done_callback(self.link.ending.discard)
        for side in (self.client, self.server):
            transport = side.transport
            if transport is None or side.closed:
                continue
            if reset:
                sock = transport.get_extra_info("socket")
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_ZERO)
                transport.abort()
            else:
                transport.close()
        self.link.connection_ended(self)


class Link:
    """One proxy: a listener on loopback, an upstream, toxics, and counters.

    ``upstream`` is ``host:port`` text or a callable giving ``(host, port)`` at connect time, so
    a link can point at an embedded target whose port is known only once it runs.
    """

    def __init__(
        self,
        name: str,
        upstream: str | Upstream,
        listen: str = "127.0.0.1:0",
        *,
        enabled: bool = True,
        seed: int | str = 0,
    ) -> None:
        self.name = name
        self._upstream = upstream
        self.listen_host, self.listen_port = parse_address(listen)
        self.enabled = enabled
        self.toxics: dict[str, Toxic] = {}
        self.chains: dict[str, tuple[Toxic, ...]] = {"upstream": (), "downstream": ()}
        self.timeouts_seen: dict[int, str] = {}  # uid -> name of every timeout toxic it had
        self.connections: set[_Connection] = set()
        self.ending: set[asyncio.Task[None]] = set()  # cancelled tasks of ended connections
        self.rng = random.Random(f"{seed}:{name}")
        self._server: asyncio.Server | None = None
        self.connections_total = 0
        self.refused = 0
        self.counts = [0, 0]  # bytes delivered upstream, downstream (pipes add to it)

    # ----- addresses -----------------------------------------------------------------------

    @property
    def upstream(self) -> str:
        if isinstance(self._upstream, str):
            return self._upstream
        try:
            host, port = self._upstream()
        except Exception:
            return "(not started)"
        return f"{host}:{port}"

    def set_upstream(self, upstream: str | Upstream) -> None:
        if isinstance(upstream, str):
            parse_address(upstream)
        self._upstream = upstream

    def upstream_address(self) -> tuple[str, int]:
        if isinstance(self._upstream, str):
            return parse_address(self._upstream)
        return self._upstream()

    @property
    def listen(self) -> str:
        host = f"[{self.listen_host}]" if ":" in self.listen_host else self.listen_host
        return f"{host}:{self.listen_port}"

    def to_json(self) -> dict[str, Any]:
        """Toxiproxy's proxy shape (``GET /proxies/NAME``)."""
        return {
            "name": self.name,
            "listen": self.listen,
            "upstream": self.upstream,
            "enabled": self.enabled,
            "toxics": [t.to_json() for t in self.toxics.values()],
        }

    def stats(self) -> LinkStats:
        return LinkStats(
            self.connections_total,
            len(self.connections),
            self.refused,
            self.counts[0],
            self.counts[1],
        )

    # ----- running -------------------------------------------------------------------------

    async def start(self) -> None:
        if self.enabled:
            await self._listen()

    async def _listen(self) -> None:
        if self._server is not None:
            return
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._accept, self.listen_host, self.listen_port, reuse_address=True, backlog=512
        )
        self.listen_port = self._server.sockets[0].getsockname()[1]

    def _accept(self) -> asyncio.Protocol:
        conn = _Connection(self, random.Random(self.rng.random()))
        self.connections.add(conn)
        self.connections_total += 1
        conn.task = asyncio.get_running_loop().create_task(self._open(conn))
        return conn.client

    async def _open(self, conn: _Connection) -> None:
        try:
            upstream = self.upstream_address()
        except Exception:
            conn.reset()
            return
        await conn.open(upstream)

    async def stop(self) -> None:
        await self._unlisten()
        for conn in list(self.connections):
            conn.close()
        if self.ending:
            await asyncio.wait(list(self.ending), timeout=1.0)

    async def _unlisten(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(server.wait_closed(), 1.0)

    async def set_enabled(self, enabled: bool) -> None:
        """``False`` is Toxiproxy's disabled proxy (our ``down``): refuse and drop everything."""
        self.enabled = enabled
        if enabled:
            await self._listen()
        else:
            await self.stop()

    # ----- toxics --------------------------------------------------------------------------

    def add_toxic(self, toxic: Toxic) -> Toxic:
        if toxic.name in self.toxics:
            raise ToxicError("toxic already exists", 409)
        self.toxics[toxic.name] = toxic
        self._rechain()
        return toxic

    def replace_toxic(self, toxic: Toxic) -> Toxic:
        if toxic.name not in self.toxics:
            raise ToxicError("toxic not found", 404)
        self.toxics[toxic.name] = toxic
        self._rechain()
        return toxic

    def remove_toxic(self, name: str) -> Toxic:
        toxic = self.toxics.pop(name, None)
        if toxic is None:
            raise ToxicError("toxic not found", 404)
        self._rechain()
        return toxic

    def clear_toxics(self) -> list[Toxic]:
        removed = list(self.toxics.values())
        self.toxics.clear()
        self._rechain()
        return removed

    def _rechain(self) -> None:
        toxics: Iterable[Toxic] = self.toxics.values()
        self.chains = {
            d: tuple(t for t in toxics if t.stream == d) for d in ("upstream", "downstream")
        }
        self.timeouts_seen.update(
            (t.uid, t.name) for t in self.toxics.values() if t.type == "timeout"
        )
        for conn in list(self.connections):
            conn.up.refresh()
            conn.down.refresh()
            if conn.server.transport is not None:
                conn.toxics_changed()
            # a toxic that now applies wakes nothing: the next chunk sees it; a removed one lets
            # queued chunks flow on through what remains

    # ----- bookkeeping ---------------------------------------------------------------------

    def connection_ended(self, conn: _Connection) -> None:
        self.connections.discard(conn)
