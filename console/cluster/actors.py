"""What runs on a cluster node: an HTTP worker as a Ray actor.

The actor runs the very :class:`~console.sessions.http.worker.Worker` a worker process runs,
on the actor's own asyncio loop (Ray runs ``async def`` actor methods on one). Instead of
writing JSON lines to stdout it keeps its messages until the engine pulls them (at the
snapshot cadence), and controls arrive as method calls instead of stdin lines. Each metric
delta carries the wall time it was flushed (``ts``), so the engine can measure how old merged
data is when it lands.

The class is plain Python: :mod:`.backend` wraps it with ``ray.remote`` at run time, so
importing this module never imports Ray.
"""

from __future__ import annotations

import os
import time
from collections import deque
from typing import Any

import psutil

from console.sessions.http.worker import Worker

__all__ = ["HttpActor"]

_BACKLOG = 20_000  # messages kept for a pull that does not come (the engine went away)


class _ActorWorker(Worker):
    def __init__(self, spec: dict[str, Any], sink: deque[dict[str, Any]]) -> None:
        super().__init__(spec, None)
        self.sink = sink

    def emit(self, message: dict[str, Any]) -> None:
        if message.get("t") == "m":
            message["ts"] = time.time()
        self.sink.append(message)


class HttpActor:
    """One share of an ``[[http]]`` group, on whichever node Ray placed it."""

    def __init__(self) -> None:
        import ray  # inside the actor's process: Ray is there by definition

        context = ray.get_runtime_context()
        self.node_id = context.get_node_id()
        self.node_ip = ray.util.get_node_ip_address()
        self.sink: deque[dict[str, Any]] = deque(maxlen=_BACKLOG)
        self.worker: _ActorWorker | None = None
        self.done = False
        self.error = ""
        self.process = psutil.Process()
        self.process.cpu_percent(None)  # the first reading starts the measurement

    def where(self) -> dict[str, Any]:
        return {"node": self.node_id, "ip": self.node_ip, "pid": os.getpid()}

    async def run(self, spec: dict[str, Any]) -> None:
        try:
            self.worker = _ActorWorker(spec, self.sink)
            await self.worker.run()
        except Exception as exc:  # told on the next pull: the engine never awaits this call
            self.error = f"{type(exc).__name__}: {str(exc)[:500]}"
            raise
        finally:
            self.done = True

    async def pull(self) -> dict[str, Any]:
        messages = list(self.sink)
        self.sink.clear()
        return {
            "messages": messages,
            "node": self.node_id,
            "ip": self.node_ip,
            "error": self.error,
            "cpu": self.process.cpu_percent(None),
        }

    async def control(self, op: str, value: float = 0.0) -> dict[str, Any]:
        """Apply a control now; answer with when it was applied (wall time) and the result."""
        worker = self.worker
        if worker is None:
            return {"applied": time.time(), "note": "not started"}
        if op == "stop":
            worker.executor.stop()
            note = "stopping"
        else:
            note = worker.executor.control(op, value)
            worker.event("control", f"{op} {value:g}: {note}")
        return {"applied": time.time(), "note": note, "scale": worker.executor.scale}
