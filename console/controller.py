"""Runs the engine in its own thread and event loop, for the console.

Why a thread: drawing must never distort what is measured. With the engine on its own loop, a
slow frame in the UI cannot delay a scheduled fault, a reconnect timer or a latency sample.
Every method here is safe to call from the UI thread; commands cross over with
``asyncio.run_coroutine_threadsafe`` and return ``concurrent.futures.Future`` objects.
Snapshots are immutable, so handing them across threads needs no lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

from console.engine import Run, RunResult
from console.profile import Profile
from console.replay import ReplayFault
from console.snapshot import FaultRecord, RunSnapshot, RunTables

__all__ = ["ENGINE_STATS_ENV", "RunController"]

ENGINE_STATS_ENV = "STRESSDECK_ENGINE_STATS"  # path: the engine's loop-lag samples, at exit

T = TypeVar("T")


class RunController:
    def __init__(
        self,
        profile: Profile,
        *,
        runs_dir: Path | str = "runs",
        duration: float | None = None,
        replay: Sequence[ReplayFault] = (),
    ) -> None:
        self.run = Run(profile, runs_dir=runs_dir, duration=duration, replay=replay)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._result: Future[RunResult] = Future()
        self._pending: set[Future[Any]] = set()  # commands not yet answered (both threads)
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._main, name="stressdeck-engine", daemon=True)

    @property
    def run_dir(self) -> Path:
        return self.run.run_dir

    def start(self) -> None:
        self._thread.start()
        self._ready.wait(10)

    def _main(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        self._ready.set()
        try:
            result = loop.run_until_complete(self.run.run())
            self._result.set_result(result)
        except BaseException as exc:  # surface engine crashes to the UI thread
            self._result.set_exception(exc)
        finally:
            # As asyncio.run does: what the run left (a cancelled poll loop still unwinding)
            # finishes before the loop closes, instead of being destroyed pending.
            left = asyncio.all_tasks(loop)
            for task in left:
                task.cancel()
            if left:
                loop.run_until_complete(asyncio.gather(*left, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
            self._write_stats()
            with self._lock:
                leftover = list(self._pending)
            for future in leftover:
                if not future.done():
                    future.set_exception(RuntimeError("the run ended before the command ran"))

    def _write_stats(self) -> None:
        """For benchmarks (bench/tui_bench.py): the engine loop's recent lag samples and its
        thread's CPU seconds over time."""
        path = os.environ.get(ENGINE_STATS_ENV)
        if path:
            samples = [[round(t, 3), round(ms, 2)] for t, ms in self.run.loop_lag.recent]
            cpu = [[round(t, 3), round(s, 4)] for t, s in self.run.selfmon.engine_cpu_seconds]
            with contextlib.suppress(OSError):
                Path(path).write_text(json.dumps({"samples": samples, "engine_cpu": cpu}) + "\n")

    def _submit(self, coro: Any) -> Future[Any]:
        """Run ``coro`` on the engine's loop; a run that has ended answers with an error.

        The loop can close between the check and the call (the run ending on its own), so the
        call itself is guarded too; commands still queued when the loop stops are failed in
        ``_main`` rather than left unresolved.
        """
        loop = self._loop
        if loop is not None and not loop.is_closed() and not self._result.done():
            try:
                future = asyncio.run_coroutine_threadsafe(coro, loop)
            except RuntimeError:
                pass
            else:
                with self._lock:
                    self._pending.add(future)
                future.add_done_callback(self._forget)
                return future
        coro.close()
        ended: Future[Any] = Future()
        ended.set_exception(RuntimeError("the run has ended"))
        return ended

    def _forget(self, future: Future[Any]) -> None:
        with self._lock:
            self._pending.discard(future)

    def start_warnings(self) -> list[str]:
        """Faults scheduled after the end (:meth:`Run.start_warnings`), to show at start."""
        return self.run.start_warnings()

    def latest(self) -> RunSnapshot | None:
        return self.run.latest

    def subscribe(self, callback: Callable[[RunSnapshot], None]) -> None:
        """``callback`` runs in the engine thread; hand over with ``call_from_thread``."""
        self.run.subscribe(callback)

    def inject(
        self,
        action: str,
        target: str = "all",
        params: Mapping[str, Any] | None = None,
        pick: int | None = None,
        source: str = "key",
    ) -> Future[FaultRecord]:
        return self._submit(
            self.run.inject(action, target=target, params=params, pick=pick, source=source)
        )

    def pause(self, source: str = "key") -> Future[None]:
        return self._submit(self.run.pause(source))

    def resume(self, source: str = "key") -> Future[None]:
        return self._submit(self.run.resume(source))

    def export(self) -> Future[list[Path]]:
        return self._submit(self.run.export())

    def toggle_chaos(self, source: str = "key") -> Future[bool]:
        async def toggle() -> bool:
            return self.run.set_chaos(None, source)

        return self._submit(toggle())

    def remove_node(self, target: str = "") -> Future[str]:
        """Remove the cluster node of ``target`` (a local cluster's), to rehearse a node loss."""
        return self._submit(self.run.remove_cluster_node(target))

    def screen(self, session_id: str) -> Future[bytes]:
        """One session's raw screen, asked for by the detail view while it is open."""
        return self._submit(self.run.screen(session_id))

    def tables(self) -> Future[RunTables]:
        """Requests by name, failures by message and checks by name as they are now, built on
        the engine's loop; asked for only while a screen shows them."""
        return self._submit(self.run.tables())

    def stop(self, *, interrupted: bool = False) -> Future[RunResult]:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # closed in between: the run has ended
                loop.call_soon_threadsafe(lambda: self.run.request_stop(interrupted=interrupted))
        return self._result

    def result(self, timeout: float | None = None) -> RunResult:
        return self._result.result(timeout)
