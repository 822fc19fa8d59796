"""A pane per cluster node: a session of kind ``node`` that the engine adds to a cluster run.

A node does no work of its own; its pane sums what its workers (the run's
:class:`~console.sessions.http.remote.RayHttpSession` actors placed on it) report: how many,
req/s, the p95 of their merged last-interval histograms (exact, as the run's), and the CPU of
their actor processes. Its detail screen (Enter) lists those workers. It turns ``failed`` when
a worker sees it die (``node_lost``) or Ray reports it dead, whichever comes first.

Importing this module never imports Ray: the cluster object does that.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from console.metrics import Series, Trend
from console.sessions.base import Session, SessionContext
from console.sessions.http.remote import RayHttpSession
from console.sessions.http.view import ms_text
from console.snapshot import SessionSnapshot

if TYPE_CHECKING:
    from console.cluster.backend import NodeInfo, RayCluster

__all__ = ["NodeSession"]

_POLL = 2.0  # seconds between asking Ray whether the node is alive


class NodeSession(Session):
    kind = "node"

    def __init__(
        self,
        ctx: SessionContext,
        cluster: RayCluster,
        info: NodeInfo,
        workers: Callable[[], list[Session]],
    ) -> None:
        super().__init__(ctx, target=info.address)
        self.cluster = cluster
        self.info = info
        self._workers = workers
        self.series = {"req/s": Series(120), "p95": Series(120)}
        self.cpu = 0.0
        self.cause = ""
        self._stopping = asyncio.Event()

    @property
    def node_id(self) -> str:
        return self.info.node_id

    def mine(self) -> list[Session]:
        """The sessions placed on this node: HTTP workers and pooled sessions alike."""
        return [w for w in self._workers() if getattr(w, "node", "") == self.node_id]

    def _http(self) -> list[RayHttpSession]:
        return [w for w in self.mine() if isinstance(w, RayHttpSession)]

    async def run(self) -> None:
        self.state = "running"
        while not self._stopping.is_set():
            if self.state != "failed":
                cause = self.cluster.lost.get(self.node_id) or await asyncio.to_thread(
                    self.cluster.node_cause, self.node_id
                )
                if cause:
                    self.lost(cause)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), _POLL)
        if self.state != "failed":
            self.state = "stopped"

    async def stop(self) -> None:
        self._stopping.set()

    def lost(self, cause: str) -> None:
        if self.state == "failed":
            return
        self.cause = cause
        self.state = "failed"  # the pane turns red; the fault is the workers' node_lost

    def sample(self) -> None:
        if self.state != "failed" and self.node_id in self.cluster.lost:
            self.lost(self.cluster.lost[self.node_id])
        mine = self._http()
        merged = Trend()
        for worker in mine:
            merged.merge(worker.last_interval)
        self.series["req/s"].push(sum(w.series["req/s"].last or 0.0 for w in mine))
        self.series["p95"].push(merged.percentile(95) or 0.0)
        self.cpu = sum(w.cpu for w in mine)

    def view(self) -> SessionSnapshot:
        mine = self.mine()
        http = self._http()
        p95 = self.series["p95"].last
        counters = (
            ("workers", str(len(mine))),
            ("req/s", f"{self.series['req/s'].last or 0:.0f}"),
            ("p95", ms_text(p95 if p95 else None)),
            ("CPU", f"{self.cpu:.0f}%"),
        )
        details = [
            ("node", self.node_id),
            ("address", self.info.address),
            ("CPUs", f"{self.info.cpus:g}"),
            ("state", self.state),
        ]
        if self.cause:
            details.append(("cause", self.cause))
        for worker in http:
            last = worker.series["p95"].last
            details.append(
                (
                    f"worker {worker.id}",
                    f"{worker.state}, {worker.series['req/s'].last or 0:.0f} req/s, "
                    f"p95 {ms_text(last if last else None)}, CPU {worker.cpu:.0f}%",
                )
            )
        for other in mine:
            if not isinstance(other, RayHttpSession):
                details.append((f"{other.kind} {other.id}", other.state))
        return self.make_view(
            series=self.series_views({"req/s": "", "p95": "ms"}),
            counters=counters,
            details=tuple(details),
            badges=("lost",) if self.state == "failed" else (),
        )
