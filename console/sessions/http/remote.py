"""An HTTP session whose worker is a Ray actor on a cluster node instead of a local process.

Everything but the transport is :class:`~console.sessions.http.session.HttpSession`'s: the
actor runs the same worker code and produces the same messages, pulled at the snapshot
cadence and merged with the same ``ctx.add`` / ``ctx.rate`` / ``ctx.merge_trend`` calls, so
the run's histograms are the exact merge of every node's (no percentile of percentiles).

A node that dies under the actor is an observed fault (``node.lost``, with Ray's cause). The
profile's ``[run] on_node_lost`` says what then: ``respread`` starts the share again on a
surviving node (same index, same share, going on from the scenario time the lost actor last
reported, so a ramp and the scenario's end are where they were), ``degraded`` leaves the
session failed and the run goes on with less load.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from console.errors import NodeLost, TargetError, WorkerError
from console.metrics import Trend
from console.sessions.base import FaultNotApplicable, SessionContext
from console.sessions.http.config import HttpGroupConfig
from console.sessions.http.flow import safe_url
from console.sessions.http.session import HttpSession
from console.snapshot import SessionSnapshot

if TYPE_CHECKING:
    from console.cluster.backend import RayCluster

__all__ = ["RayHttpSession"]

_PULL = 0.25  # seconds between pulls: the worker's report interval
_FIRST_PULL = 60.0  # an actor's first answer waits for its worker process to start
_PULL_TIMEOUT = 4.0  # then silence this long is a lost node (Ray reports a dead one in ~2 s)
_CONTROL_TIMEOUT = 1.0
_STOP_WAIT = 5.0


class RayHttpSession(HttpSession):
    """One share of an ``[[http]]`` group, run by an actor on whichever node Ray picks."""

    def __init__(
        self, ctx: SessionContext, config: HttpGroupConfig, *, cluster: RayCluster, **kw: Any
    ) -> None:
        super().__init__(ctx, config, **kw)
        self.cluster = cluster
        self.actor: Any = None
        self.run_ref: Any = None
        self.node = ""  # Ray node id of the current actor
        self.node_ip = ""
        self.nodes_lost: list[str] = []
        self.snapshot_age = Trend()  # seconds from an actor's flush to its merge here
        self.control_rtt = Trend()  # seconds from a control sent to its answer
        self.control_applied: dict[str, float] = {}  # last control op -> wall time applied
        self._drained = asyncio.Event()  # run() pulled the worker's last delta (or gave up)
        self.last_interval = Trend()  # the last sample interval's latencies, for the node pane
        self.cpu = 0.0  # the actor process's CPU %, as it last reported

    async def run(self) -> None:
        if not self.base_url:
            raise TargetError("embedded HTTP target is not running")
        self.target = safe_url(self.base_url)
        try:
            while True:
                try:
                    await self._drive()
                    break
                except NodeLost as exc:
                    if not self.node:  # never answered: it did not start (no code, no CPU)
                        raise WorkerError(f"the worker actor did not start: {exc.cause}") from exc
                    await self._lost(exc)  # even while stopping: the node died before the stop
                    if self._stopping:
                        break
                    if self.cluster.on_node_lost != "respread":
                        self.state = "failed"
                        return
                    self.state = "starting"
        finally:
            self._drained.set()
            actor, self.actor = self.actor, None
            if actor is not None:
                self.cluster.release(actor)
        self.state = "stopped" if self._stopping else "exited"
        if not self._stopping:
            self.ctx.event("scenario_end", self._summary_text(), success=True)

    async def _drive(self) -> None:
        """Start an actor with this share and pull its messages until its worker is done."""
        self.node = self.node_ip = ""  # until the new actor answers from its node
        # What the operator set on the lost actor, for its successor (which starts afresh).
        held = (self.rate_set, self.scale, self.paused) if self.nodes_lost else None
        actor = self.cluster.http_actor()
        self.actor = actor
        # The same wire shape as a worker process's stdin line: JSON lists, not tuples.
        spec = self.spec()
        if held is not None and self.scenario_at is not None:
            ran, heard = self.scenario_at
            # Where the lost actor's scenario was: its last report, plus the time since
            # (unless it was paused, when scenario time stood still). The worker adds the
            # time its own start takes, by the wall clock, as the actors' ``ts`` is read.
            spec["resume_at"] = ran + (0.0 if self.paused else self.ctx.now() - heard)
            if not self.paused:
                spec["resume_wall"] = time.time()
        self.run_ref = actor.run.remote(json.loads(json.dumps(spec)))
        timeout = _FIRST_PULL
        while True:
            reply = await self.cluster.call(actor.pull, timeout=timeout)
            timeout = _PULL_TIMEOUT
            self.cpu = float(reply.get("cpu", 0.0))
            if reply.get("error"):
                raise WorkerError(f"HTTP worker actor failed: {reply['error']}")
            if reply["node"] != self.node:
                self.node, self.node_ip = str(reply["node"]), str(reply.get("ip", ""))
                self.ctx.event(
                    "node_assigned",
                    f"on node {self.node[:8]} ({self.node_ip})",
                    data={"node": self.node, "address": self.node_ip},
                )
                if held is not None:
                    await self._hold(*held)
                    held = None
            done = False
            for message in reply["messages"]:
                if message.get("t") == "done":
                    done = True
                elif message.get("t") == "m" and "ts" in message:
                    self.snapshot_age.record(max(0.0, time.time() - float(message["ts"])))
                self.handle(message)
            if done:
                await self.cluster.wait(self.run_ref, 2.0)
                return
            await asyncio.sleep(_PULL)

    async def _hold(self, rate_set: float | None, scale: float, paused: bool) -> None:
        """Apply to a re-spread share what its lost actor held: a typed rate, a scale, a
        pause. A control that does not arrive is told, not fatal: the share runs on."""
        controls = [("rate", rate_set)] if rate_set is not None else []
        controls += [("scale", scale)] if scale != 1.0 else []
        controls += [("pause", 0.0)] if paused else []
        for op, value in controls:
            try:
                await self._send(op, value=value)
            except FaultNotApplicable as exc:
                self.ctx.event("control_lost", f"{op} not re-applied: {exc}", success=False)

    async def _lost(self, exc: NodeLost) -> None:
        cause = ""
        if self.node:  # Ray's word on the node, if it has one yet (bounded: the GCS may be gone)
            with contextlib.suppress(asyncio.TimeoutError):
                cause = await asyncio.wait_for(
                    asyncio.to_thread(self.cluster.node_cause, self.node), 2.0
                )
        text = f"{cause} ({exc.cause})" if cause else exc.cause
        if self.node:
            self.cluster.lost.setdefault(self.node, text)
        policy = self.cluster.on_node_lost
        then = "re-spreading its share" if policy == "respread" else "continuing degraded"
        if self._stopping:
            then = "the run is ending"
        self.nodes_lost.append(self.node)
        self.ctx.event(
            "node_lost",
            f"node {self.node[:8] or '?'} ({self.node_ip or '?'}) lost: {text}; {then}",
            success=False,
            data={"node": self.node, "address": self.node_ip, "cause": text, "policy": policy},
        )
        if self.actor is not None:
            self.cluster.release(self.actor)
            self.actor = None
        # The share is gone until a new actor answers: recovered once requests succeed again.
        self.healthy = False
        self.good_since, self.good_count = None, 0.0
        self.ctx.disrupted("lost", kind="node")

    def handle(self, message: Mapping[str, Any]) -> None:
        if message.get("t") == "event":  # name the node of every event the worker logs
            name = str(message.get("name", ""))
            if name == "scenario_start":
                self.state = "running"
            self.ctx.event(
                name,
                str(message.get("detail", "")),
                success=message.get("success"),
                data={"node": self.node},
            )
            return
        super().handle(message)

    async def _send(self, cmd: str, **fields: Any) -> None:
        actor = self.actor
        if actor is None:
            raise FaultNotApplicable(f"{self.id} has no running actor")
        op = cmd
        started = time.monotonic()
        try:
            answer = await self.cluster.call(
                actor.control, op, float(fields.get("value", 0) or 0), timeout=_CONTROL_TIMEOUT
            )
        except NodeLost as exc:
            raise FaultNotApplicable(f"{self.id}: actor unreachable ({exc.cause})") from exc
        self.control_rtt.record(time.monotonic() - started)
        self.control_applied[op] = float(answer.get("applied", 0.0))

    async def stop(self) -> None:
        self._stopping = True
        if self.actor is None:
            return
        with contextlib.suppress(FaultNotApplicable):
            await self._send("stop")
        if self.run_ref is not None:
            await self.cluster.wait(self.run_ref, _STOP_WAIT)
        # The worker's final delta is in the actor until the next pull: wait for it, or the
        # engine's cancellation of run() loses the last quarter second of counts.
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._drained.wait(), 2 * _PULL + 1.0)

    def sample(self) -> None:
        self.last_interval = self.interval_trend  # before the base class starts a new one
        super().sample()

    def view(self) -> SessionSnapshot:
        snap = super().view()
        node = f"{self.node[:8]} {self.node_ip}".strip() or "placing"
        age = self.snapshot_age.percentile(95)
        details = (
            ("node", node),
            ("nodes lost", str(len(self.nodes_lost))),
            ("snapshot age p95", f"{age * 1000:.0f}ms" if age is not None else "-"),
            *snap.details,
        )
        return dataclasses.replace(
            snap, counters=(("node", node[:8]), *snap.counters), details=details
        )
