"""The parent's side of the embedded HTTP target: start it, learn its URL, flip its switches.

The server (:mod:`console.targets.http_server`) runs in its own process, started and spoken to
the one way every Python child of the console is (:mod:`console.children`): it announces its URL
with one JSON line and takes the ``faults`` command on stdin. Its switches are not on the
network at all, so no other local process can stall or fail it.

Both an async API (the HTTP kind, inside a run) and a sync one (tests and benchmarks, with no
event loop of their own: the child then lives on a private loop in a thread, which also keeps
the kernel's parent-death signal tied to a thread that lasts as long as the target).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Mapping
from typing import Any, TypeVar

from console.children import ChildProcess
from console.errors import TargetError, TargetUnavailable

__all__ = ["EmbeddedTarget"]

T = TypeVar("T")


class EmbeddedTarget:
    """Starts the embedded HTTP target in its own process and hands back its base URL."""

    def __init__(
        self,
        *,
        breaker_timeout: float = 2.0,
        capacity: int = 20,
        queue: int = 40,
        latency: float = 0.0,
        host: str = "127.0.0.1",
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.env = env  # the child's environment; default the console's (a run passes it scrubbed)
        self.args = [
            "--host", host, "--port", "0",
            "--breaker-timeout", f"{breaker_timeout}s",
            "--capacity", str(capacity), "--queue", str(queue),
            "--latency", f"{latency}s", "--exit-on-stdin-eof",
        ]  # fmt: skip
        self.url = ""
        self._child: ChildProcess | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # the sync API's private loop
        self._thread: threading.Thread | None = None

    @property
    def pid(self) -> int | None:
        return self._child.pid if self._child is not None else None

    async def start(self, timeout: float = 15.0) -> str:
        child = ChildProcess(
            "console.targets.http_server", self.args, env=self.env, name="embedded HTTP target"
        )
        self._child = child
        try:
            info = await child.start(timeout)
        except TargetUnavailable as exc:
            raise TargetError(str(exc)) from None
        self.url = str(info["url"])
        return self.url

    async def set_faults(self, **switches: Any) -> dict[str, Any]:
        """Set fault switches (``clear``, ``error_rate``, ``latency``, ``stall``, ...); the
        target's switches afterwards."""
        if self._child is None:
            raise TargetUnavailable("the embedded HTTP target is not running")
        reply = await self._child.command("faults", **switches)
        if not reply.get("ok"):
            raise TargetError(str(reply.get("error", "the target refused")))
        return {k: v for k, v in reply.items() if k not in ("ok", "cmd")}

    async def stop(self) -> None:
        child, self._child = self._child, None
        if child is not None:
            await child.stop()

    # -- the sync API: a private loop in a thread ------------------------------------------

    def _run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def start_sync(self, timeout: float = 15.0) -> str:
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(
            target=loop.run_forever, name="embedded-http-target", daemon=True
        )
        self._thread.start()
        try:
            return self._run(self.start(timeout), timeout + 5)
        except BaseException:
            self.stop_sync()
            raise

    def set_faults_sync(self, **switches: Any) -> dict[str, Any]:
        return self._run(self.set_faults(**switches), 15)

    def stop_sync(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            self._run(self.stop(), 15)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(5)
            loop.close()
            self._loop = self._thread = None

    def __enter__(self) -> EmbeddedTarget:
        self.start_sync()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_sync()
