"""The load-generating worker process: ``python -m console.sessions.http.worker``.

Protocol: the console's one child protocol (:mod:`console.children`). The worker announces
itself, then takes ``{"cmd": "start", "spec": {"config": {...}, "base_url", "index", "workers",
"run_probes", "base_dir", "run_duration", "report_interval"}}`` (secrets in the config never
touch argv), then controls ``{"cmd": "pause"|"resume"|"scale"|"burst"|"stop", "value": n}``.
Its own messages: metric deltas (``{"t": "m", ...}``, see :mod:`.stats`) every
``report_interval``, ``{"t": "event"}``, ``{"t": "probe"}`` and finally ``{"t": "done"}``.

The worker runs its own event loop, apart from the console's, so a saturated generator cannot
make the console lag, and vice versa.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
from collections.abc import Callable, Coroutine, Mapping
from pathlib import Path
from typing import Any

from console.children import announce, read_commands, serve_commands
from console.config import read_table
from console.sessions.http.client import make_client
from console.sessions.http.config import HttpGroupConfig
from console.sessions.http.executors import Executor
from console.sessions.http.flow import Flow, safe_url
from console.sessions.http.probes import run_probe
from console.sessions.http.stats import Stats

__all__ = ["main", "run_worker"]


def _resume_at(spec: Mapping[str, Any]) -> float:
    """Scenario seconds to go on from (a re-spread share), counting the time since the spec
    was made when it says when (its scenario was not paused)."""
    resume_at = float(spec.get("resume_at", 0.0))
    if "resume_wall" in spec:
        resume_at += max(0.0, time.time() - float(spec["resume_wall"]))
    return resume_at


class Worker:
    def __init__(self, spec: dict[str, Any], reader: asyncio.StreamReader | None = None) -> None:
        self.reader = reader
        config, issues = read_table(HttpGroupConfig, spec["config"], ("http",))
        if config is None:
            raise ValueError("; ".join(f"{i.dotted}: {i.message}" for i in issues))
        self.config = config
        self.spec = spec
        self.stats = Stats()
        self.last_error_event: dict[str, float] = {}
        self.flow = Flow(
            config,
            spec["base_url"],
            self.stats,
            Path(spec.get("base_dir", ".")),
            self.on_error,
            host_header=spec.get("host_header", ""),
        )
        self.flow.preload()
        self.executor = Executor(
            config,
            self.flow,
            lambda: make_client(
                config.client, insecure=config.insecure, max_body=int(config.max_body)
            ),
            index=int(spec.get("index", 0)),
            workers=int(spec.get("workers", 1)),
            run_duration=float(spec.get("run_duration", 0.0)),
            resume_at=_resume_at(spec),
        )
        self.out = sys.stdout
        self._health_mark = (time.monotonic(), time.process_time())
        self._lag_ms = 0.0
        self._checks_sent: dict[str, tuple[int, int]] = {}  # name -> (passes, total) reported

    def emit(self, message: dict[str, Any]) -> None:
        self.out.write(json.dumps(message, separators=(",", ":")) + "\n")
        self.out.flush()

    def event(self, name: str, detail: str, success: bool | None = None) -> None:
        self.emit({"t": "event", "name": name, "detail": detail, "success": success})

    def on_error(self, cls: str, detail: str) -> None:
        now = time.monotonic()
        if now - self.last_error_event.get(cls, -1e9) >= 5.0:  # at most one per class per 5s
            self.last_error_event[cls] = now
            self.event(f"http_error_{cls}", detail[:300], False)

    def health(self) -> dict[str, float]:
        """The worker's own CPU (% of one core) since the last report and its worst loop lag:
        a saturated generator makes every latency figure it reports suspect."""
        wall, cpu = time.monotonic(), time.process_time()
        last_wall, last_cpu = self._health_mark
        self._health_mark = (wall, cpu)
        lag, self._lag_ms = self._lag_ms, 0.0
        busy = 100.0 * (cpu - last_cpu) / (wall - last_wall) if wall > last_wall else 0.0
        return {"worker_cpu": round(busy, 1), "worker_loop_lag": round(lag, 1)}

    def check_deltas(self) -> dict[str, list[int]]:
        """Checks by name since the last report, as every other figure goes: deltas add up
        on the console whatever happens to the worker (a re-spread share starts from 0)."""
        deltas: dict[str, list[int]] = {}
        for name, (passes, total) in self.flow.check_counts.items():
            sent_passes, sent_total = self._checks_sent.get(name, (0, 0))
            if total != sent_total:
                deltas[name] = [passes - sent_passes, total - sent_total]
                self._checks_sent[name] = (passes, total)
        return deltas

    def flush(self) -> None:
        message = self.stats.flush({**self.executor.gauges(), **self.health()})
        message["checks"] = self.check_deltas()
        message["paused"] = self.executor.paused
        message["inflight"] = self.flow.inflight
        message["scale"] = self.executor.scale
        message["rate_set"] = self.executor.rate_set
        if self.executor.started:
            message["scenario_s"] = round(self.executor.scenario_seconds(), 3)
        self.emit(message)

    async def report(self) -> None:
        interval = float(self.spec.get("report_interval", 0.25))
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            await asyncio.sleep(interval)
            late = (loop.time() - started - interval) * 1000.0  # this loop's lag, in ms
            self._lag_ms = max(self._lag_ms, late)
            self.flush()

    async def probes(self) -> None:
        started = time.perf_counter()
        for probe in self.config.probes:
            wait = probe.at - (time.perf_counter() - started)
            if wait > 0:
                await asyncio.sleep(wait)
            self.event("probe_start", f"{probe.kind} on {probe.path}")
            result = await run_probe(
                self.spec["base_url"],
                probe,
                insecure=self.config.insecure,
                host_header=self.spec.get("host_header", ""),
            )
            self.emit(result.to_json())

    def command(self, command: Mapping[str, Any]) -> dict[str, Any]:
        op = str(command.get("cmd", ""))
        if op == "stop":
            self.executor.stop()
            return {}
        note = self.executor.control(op, float(command.get("value", 0) or 0))
        self.event("control", f"{op} {command.get('value', '')}".strip() + f": {note}")
        return {"note": note}

    async def controls(self) -> None:
        if self.reader is None:
            return
        await serve_commands(self.command, self.reader)
        self.executor.stop()  # stdin closed: the session went away

    async def run(self) -> None:
        reporter = asyncio.ensure_future(self.report())
        controls = asyncio.ensure_future(self.controls())
        probes = asyncio.ensure_future(self.probes()) if self.spec.get("run_probes") else None
        shape = self.config.executor
        self.event("scenario_start", f"{shape} on {safe_url(self.spec['base_url'])}")
        try:
            await self.executor.run()
            if probes is not None and not self.executor.stopping:
                await probes  # the scenario ended on its own: let the probes finish
        finally:
            for task in (reporter, controls, probes):
                if task is not None:
                    task.cancel()
            await asyncio.gather(
                reporter, controls, *(p for p in (probes,) if p), return_exceptions=True
            )
            self.flush()
            self.emit({"t": "done"})


async def run_worker() -> int:
    reader = await read_commands()
    if reader is None:
        return 2
    announce(pid=os.getpid())
    line = await reader.readline()
    if not line:
        return 2  # the session went away before it said what to run
    start = json.loads(line)
    await Worker(start["spec"], reader).run()
    return 0


def _runner() -> Callable[[Coroutine[Any, Any, int]], int]:
    """uvloop's loop when it is installed and not turned off, else asyncio's own.

    uvloop runs the loop, the transports and their socket writes in C; with the raw client
    that is most of what is left of a worker's time (see README, "HTTP"). It is a soft
    dependency: a platform without it (Windows) falls back to asyncio. ``STRESSDECK_UVLOOP=0``
    turns it off, which is how the benchmark measures what it buys.
    """
    if os.environ.get("STRESSDECK_UVLOOP", "1") != "0":
        try:
            import uvloop
        except ImportError:
            pass
        else:
            return uvloop.run
    return asyncio.run


def main(argv: list[str] | None = None) -> int:
    with contextlib.suppress(KeyboardInterrupt):
        return _runner()(run_worker())
    return 130


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
