"""Stressdeck's embedded HTTP target: the SignalCraft and resilience-report routes on aiohttp.web.

Run as ``stressdeck target http [--host 127.0.0.1] [--port 0]``: it prints one JSON line
(``{"event": "ready", "url": ..., "port": ...}``) and serves until stopped. The routes mirror
the seeds so their profiles run unchanged against it:

* ``POST /api/lightweight-analyze`` - multipart field ``audio``; CPU work in proportion to its size.
* ``POST /api/esp32/audio/upload`` - raw body; ``X-Device-ID`` and ``X-Sample-Rate`` required.
* ``POST /api/auth/login`` / ``GET /api/auth/verify`` - a cookie session, as in scenario 3.
* ``GET /api/v1/schemas/{branch}/object-types[/{type_name}]`` - a stable strong ETag and 304.
  The per-type route sits behind a real circuit breaker (threshold 5, statuses 404/500/502/503/504
  count as failures, as in the report) over a dependency that can be failed.
* ``GET /api/v1/test/load`` - bounded concurrency: ``capacity`` run, ``queue`` wait, the rest get
  429 at once; a queued request that waits longer than ``queue_timeout`` gets 503.
* ``GET /health``.

Fault switches (the ``faults`` command on stdin, in the console's one child protocol,
:mod:`console.children`; used by the console's ``http.error_rate``, ``http.latency``,
``http.stall``, ``http.dependency_down`` and ``http.clear``) apply to every route, so a stalled
target really stalls. They are not on the network at all: only the process that started the
target can flip them. :class:`console.targets.http_control.EmbeddedTarget` is the parent's side.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import random
import secrets
import signal
import sys
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import BodyPartReader, web

from console.children import announce, serve_commands

__all__ = ["CircuitBreaker", "TargetState", "build_app", "main", "set_faults"]

BREAKER_ERROR_CODES = frozenset({404, 500, 502, 503, 504})  # the report's list

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class CircuitBreaker:
    """Closed -> open after ``threshold`` consecutive failures -> half-open after ``timeout``.

    In half-open one trial call goes through: success closes the breaker, failure reopens it.
    Transitions are timestamped (monotonic) so probes and tests can check them.
    """

    def __init__(self, threshold: int = 5, timeout: float = 30.0) -> None:
        self.threshold = threshold
        self.timeout = timeout
        self.state = "closed"
        self.failures = 0
        self.opened_at = 0.0
        self.trial_running = False
        self.transitions: list[tuple[float, str]] = []

    def _to(self, state: str) -> None:
        self.state = state
        self.transitions.append((time.monotonic(), state))
        del self.transitions[:-50]

    def allow(self) -> bool:
        """May a call go through now? Moves open -> half-open when the timeout has passed."""
        if self.state == "open" and time.monotonic() - self.opened_at >= self.timeout:
            self._to("half-open")
        if self.state == "closed":
            return True
        if self.state == "half-open" and not self.trial_running:
            self.trial_running = True
            return True
        return False

    def record(self, ok: bool) -> None:
        if self.state == "half-open":
            self.trial_running = False
            if ok:
                self.failures = 0
                self._to("closed")
            else:
                self.opened_at = time.monotonic()
                self._to("open")
            return
        if ok:
            self.failures = 0
            return
        self.failures += 1
        if self.state == "closed" and self.failures >= self.threshold:
            self.opened_at = time.monotonic()
            self._to("open")


@dataclass
class TargetState:
    """Fault switches and shared state of one embedded target."""

    breaker: CircuitBreaker
    capacity: int = 20
    queue: int = 40
    queue_timeout: float = 1.0
    error_rate: float = 0.0
    latency: float = 0.0
    dependency_down: bool = False
    stalled: bool = False
    running: int = 0
    waiting: int = 0
    sessions: OrderedDict[str, str] = field(default_factory=OrderedDict)
    unstall: asyncio.Event = field(default_factory=asyncio.Event)
    stall_timer: asyncio.TimerHandle | None = None
    rng: random.Random = field(default_factory=random.Random)

    def faults(self) -> dict[str, Any]:
        return {
            "error_rate": self.error_rate,
            "latency": self.latency,
            "stalled": self.stalled,
            "dependency_down": self.dependency_down,
            "breaker": self.breaker.state,
            "running": self.running,
            "waiting": self.waiting,
        }

    def set_stall(self, on: bool, duration: float = 0.0) -> None:
        if self.stall_timer is not None:
            self.stall_timer.cancel()
            self.stall_timer = None
        self.stalled = on
        if on:
            self.unstall.clear()
            if duration > 0:
                loop = asyncio.get_running_loop()
                self.stall_timer = loop.call_later(duration, self.set_stall, False)
        else:
            self.unstall.set()


SCHEMAS: dict[str, dict[str, Any]] = {
    "Person": {"name": "Person", "properties": {"name": "string", "age": "integer"}},
    "Sensor": {"name": "Sensor", "properties": {"device_id": "string", "rate": "integer"}},
    "AudioClip": {"name": "AudioClip", "properties": {"bytes": "integer", "label": "string"}},
}


def _state(request: web.Request) -> TargetState:
    state: TargetState = request.app["state"]
    return state


def _etag_response(request: web.Request, payload: Any) -> web.Response:
    """A JSON response with a strong ETag derived from the content, and 304 on a match."""
    body = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    inm = request.headers.get("If-None-Match", "")
    if etag in [t.strip() for t in inm.split(",")] or inm.strip() == "*":
        return web.Response(status=304, headers=headers)
    return web.Response(body=body, content_type="application/json", headers=headers)


@web.middleware
async def fault_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    state = _state(request)
    if state.stalled:
        await state.unstall.wait()
    if state.latency > 0:
        await asyncio.sleep(state.latency)
    if state.error_rate > 0 and state.rng.random() < state.error_rate:
        return web.json_response({"error": "injected fault"}, status=500)
    return await handler(request)


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def lightweight_analyze(request: web.Request) -> web.Response:
    """Scenario 1: the CPU-heavy analysis route; work grows with the upload's size."""
    if not request.content_type.startswith("multipart/"):
        return web.json_response({"error": "multipart/form-data required"}, status=400)
    reader = await request.multipart()
    audio = b""
    while (part := await reader.next()) is not None:
        if isinstance(part, BodyPartReader) and part.name == "audio":
            audio = await part.read()
    if not audio:
        return web.json_response({"error": "missing file field 'audio'"}, status=400)

    def analyze(data: bytes) -> str:
        digest = b""
        for _ in range(4):  # a few passes: time in proportion to size, off the event loop
            digest = hashlib.sha256(data + digest).digest()
        return digest.hex()[:16]

    fingerprint = await asyncio.to_thread(analyze, audio)
    return web.json_response({"status": "success", "bytes": len(audio), "fingerprint": fingerprint})


async def esp32_upload(request: web.Request) -> web.Response:
    """Scenario 2: raw binary from a device, identified by headers."""
    device = request.headers.get("X-Device-ID", "")
    rate = request.headers.get("X-Sample-Rate", "")
    if not device or not rate.isdigit():
        return web.json_response({"error": "X-Device-ID and X-Sample-Rate required"}, status=400)
    data = await request.read()
    return web.json_response({"status": "received", "device": device, "bytes": len(data)})


async def auth_login(request: web.Request) -> web.Response:
    """Scenario 3: any user with a non-empty password gets a session cookie."""
    try:
        if request.content_type == "application/json":
            creds = await request.json()
        else:
            creds = dict(await request.post())
    except ValueError:
        return web.json_response({"error": "bad body"}, status=400)
    user = str(creds.get("username", ""))
    if not user or not str(creds.get("password", "")):
        return web.json_response({"error": "invalid credentials"}, status=401)
    state = _state(request)
    token = secrets.token_hex(12)
    state.sessions[token] = user
    while len(state.sessions) > 100_000:
        state.sessions.popitem(last=False)
    response = web.json_response({"status": "ok", "user": user})
    response.set_cookie("session", token, httponly=True, path="/")
    return response


async def auth_verify(request: web.Request) -> web.Response:
    user = _state(request).sessions.get(request.cookies.get("session", ""))
    if user is None:
        return web.json_response({"valid": False}, status=401)
    return web.json_response({"valid": True, "user": user})


async def schema_list(request: web.Request) -> web.Response:
    branch = request.match_info["branch"]
    return _etag_response(request, {"branch": branch, "object_types": sorted(SCHEMAS)})


async def _schema_dependency(state: TargetState, type_name: str) -> tuple[int, dict[str, Any]]:
    """The schema store behind the breaker (TerminusDB in the report)."""
    await asyncio.sleep(0.001)
    if state.dependency_down:
        return 503, {"error": "schema store unavailable"}
    schema = SCHEMAS.get(type_name)
    if schema is None:
        return 404, {"error": f"unknown object type {type_name!r}"}
    return 200, schema


async def schema_get(request: web.Request) -> web.Response:
    state = _state(request)
    breaker = state.breaker
    if not breaker.allow():
        return web.json_response(
            {"error": "circuit open"}, status=503, headers={"X-Circuit-State": breaker.state}
        )
    was = breaker.state
    status, payload = await _schema_dependency(state, request.match_info["type_name"])
    breaker.record(status not in BREAKER_ERROR_CODES)
    headers = {"X-Circuit-State": was if was == "half-open" else breaker.state}
    if status != 200:
        return web.json_response(payload, status=status, headers=headers)
    response = _etag_response(request, {"branch": request.match_info["branch"], **payload})
    response.headers.update(headers)
    return response


async def test_load(request: web.Request) -> web.Response:
    """Backpressure: bounded running and waiting requests; explicit 429/503 beyond them."""
    state = _state(request)
    work = min(float(request.query.get("ms", "50")), 5000.0) / 1000.0
    if state.running >= state.capacity:
        if state.waiting >= state.queue:
            return web.json_response(
                {"error": "queue full"}, status=429, headers={"Retry-After": "1"}
            )
        state.waiting += 1
        deadline = time.monotonic() + state.queue_timeout
        try:
            while state.running >= state.capacity:
                if time.monotonic() >= deadline:
                    return web.json_response(
                        {"error": "overloaded"}, status=503, headers={"Retry-After": "1"}
                    )
                await asyncio.sleep(0.005)
        finally:
            state.waiting -= 1
    state.running += 1
    try:
        await asyncio.sleep(work)
    finally:
        state.running -= 1
    return web.json_response({"status": "ok"})


def set_faults(state: TargetState, switches: Mapping[str, Any]) -> dict[str, Any]:
    """The ``faults`` command: set the switches given (``clear`` first), return them all."""
    if switches.get("clear"):
        state.error_rate, state.latency, state.dependency_down = 0.0, 0.0, False
        state.set_stall(False)
    if "error_rate" in switches:
        state.error_rate = max(0.0, min(1.0, float(switches["error_rate"])))
    if "latency" in switches:
        state.latency = max(0.0, float(switches["latency"]))
    if "dependency_down" in switches:
        state.dependency_down = bool(switches["dependency_down"])
    if "breaker_timeout" in switches:
        state.breaker.timeout = float(switches["breaker_timeout"])
    if "stall" in switches:
        state.set_stall(bool(switches["stall"]), float(switches.get("stall_for", 0.0)))
    return state.faults()


def _command(state: TargetState, command: Mapping[str, Any], stop: asyncio.Event) -> dict[str, Any]:
    cmd = command.get("cmd")
    if cmd == "faults":
        return set_faults(state, {k: v for k, v in command.items() if k not in ("cmd", "id")})
    if cmd == "quit":
        stop.set()
        return {}
    raise ValueError(f"unknown command {cmd!r}")


def build_app(state: TargetState) -> web.Application:
    app = web.Application(middlewares=[fault_middleware], client_max_size=64 * 1024 * 1024)
    app["state"] = state
    app.router.add_get("/health", health)
    app.router.add_post("/api/lightweight-analyze", lightweight_analyze)
    app.router.add_post("/api/esp32/audio/upload", esp32_upload)
    app.router.add_post("/api/auth/login", auth_login)
    app.router.add_get("/api/auth/verify", auth_verify)
    app.router.add_get("/api/v1/schemas/{branch}/object-types", schema_list)
    app.router.add_get("/api/v1/schemas/{branch}/object-types/{type_name}", schema_get)
    app.router.add_get("/api/v1/test/load", test_load)
    return app


async def serve(args: argparse.Namespace) -> int:
    state = TargetState(
        breaker=CircuitBreaker(threshold=args.breaker_threshold, timeout=args.breaker_timeout),
        capacity=args.capacity,
        queue=args.queue,
        queue_timeout=args.queue_timeout,
        latency=args.latency,
    )
    state.unstall.set()
    runner = web.AppRunner(
        build_app(state), access_log=None, handle_signals=False, shutdown_timeout=1.0
    )
    await runner.setup()
    site = web.TCPSite(runner, args.host, args.port, backlog=4096)
    await site.start()
    server = site._server
    assert server is not None
    port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
    host = f"[{args.host}]" if ":" in args.host else args.host
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):  # before the line: a reader may stop us at once
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    announce(url=f"http://{host}:{port}", host=args.host, port=port)

    async def control() -> None:
        await serve_commands(lambda command: _command(state, command, stop))
        if args.exit_on_stdin_eof:
            stop.set()  # the parent holds our stdin: EOF means it is gone

    control_task = asyncio.create_task(control())
    await stop.wait()
    control_task.cancel()
    await runner.cleanup()
    return 0


def _seconds(text: str) -> float:
    from console.units import parse_duration

    return parse_duration(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="stressdeck target http", description=__doc__.splitlines()[0] if __doc__ else ""
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--breaker-threshold", type=int, default=5)
    parser.add_argument(
        "--breaker-timeout", type=_seconds, default=30.0, help="open timeout, e.g. 30s"
    )
    parser.add_argument(
        "--capacity", type=int, default=20, help="concurrent /api/v1/test/load requests"
    )
    parser.add_argument("--queue", type=int, default=40, help="queued /api/v1/test/load requests")
    parser.add_argument("--queue-timeout", type=_seconds, default=1.0)
    parser.add_argument("--latency", type=_seconds, default=0.0, help="delay added to every route")
    parser.add_argument("--exit-on-stdin-eof", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
