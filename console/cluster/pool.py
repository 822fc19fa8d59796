"""Session pools on cluster nodes: a pool actor per node holds its share of a kind's sessions.

Used for ``[[ssh]]`` groups in a cluster run, so a run can hold more connections than one
machine's file descriptors and CPU allow. The pool builds the sessions with the kind's own
``create`` and runtime (the same code as in the console), against a stand-in for the engine
(:class:`_Recorder`) that keeps every event, metric and recovery call; the console pulls those
at the snapshot cadence and replays them on the real run through a :class:`PooledSession` per
remote session, so criteria, recoveries, the event log and reports see them as if local, with
the node named in each event's data. Faults go the other way, as actor calls.

A pool whose node dies takes its sessions with it: each becomes an observed ``node.lost``
fault and a failed session (connections are not re-spread; the run goes on degraded).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from console.config import read_table
from console.errors import FaultNotApplicable, NodeLost
from console.events import Event, EventMaker
from console.files import private_dir
from console.sessions.base import KindRuntime, RunEnv, Session, SessionContext
from console.snapshot import FaultRecord, SessionSnapshot

if TYPE_CHECKING:
    from console.cluster.backend import RayCluster

__all__ = ["PoolRuntime", "PooledSession", "SessionPoolActor", "pool_runtime"]

_PULL = 0.25
_START_TIMEOUT = 60.0
_PULL_TIMEOUT = 4.0


def _to_json(value: Any) -> Any:
    """A config dataclass as the plain data ``read_table`` reads back (lists, not tuples)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [_to_json(v) for v in value]
    if isinstance(value, dict):
        return {k: _to_json(v) for k, v in value.items()}
    return value


# --- inside the pool actor ----------------------------------------------------------------------


class _Recorder(EventMaker):
    """The engine's side of a SessionContext, inside a pool: keeps every call for the console."""

    run_name = "pool"

    def __init__(self, started: float) -> None:
        self._origin = time.monotonic() - started  # the run's clock, roughly
        self.out: list[tuple[str, str, tuple[Any, ...]]] = []

    def now(self) -> float:
        return time.monotonic() - self._origin

    def timestamp(self) -> str:
        return ""  # the console stamps the event again when it logs it

    def log_event(self, event: Event) -> Event:
        args = (event.event, event.detail, event.elapsed_ms, event.attempt, event.success)
        self.out.append(("event", event.session_id or "", (*args, event.data)))
        return event

    def metric_add(self, name: str, amount: float, session: str) -> None:
        self.out.append(("add", session, (name, amount)))

    def metric_rate(self, name: str, ok: bool, session: str, count: int = 1) -> None:
        self.out.append(("rate", session, (name, ok, count)))

    def metric_gauge(self, name: str, value: float, session: str) -> None:
        self.out.append(("gauge", session, (name, value)))

    def metric_observe(self, name: str, value: float, session: str) -> None:
        self.out.append(("observe", session, (name, value)))

    def metric_merge_trend(self, name: str, encoded: Mapping[str, Any], session: str) -> None:
        self.out.append(("trend", session, (name, dict(encoded))))

    def session_recovered(self, session_id: str, at: float) -> None:
        self.out.append(("recovered", session_id, ()))

    def session_disrupted(
        self, session_id: str, at: float, cause: str, kind: str | None = None
    ) -> None:
        self.out.append(("disrupted", session_id, (cause, kind)))

    def session_failed(self, session_id: str) -> None:
        """Counted on the console when its mirror of the session turns failed."""

    def session(self, session_id: str) -> Session | None:
        return None

    def add_session(self, session: Session) -> None:
        """Pools hold only the sessions they were given."""

    async def inject(self, action: str, **_: Any) -> FaultRecord:
        raise FaultNotApplicable("faults come from the console, not from inside a pool")


class SessionPoolActor:
    """This node's share of one kind's sessions, run by the kind's own runtime."""

    def __init__(self) -> None:
        import ray

        self.node_id = ray.get_runtime_context().get_node_id()
        self.node_ip = ray.util.get_node_ip_address()
        self.recorder: _Recorder | None = None
        self.runtime: KindRuntime | None = None
        self.sessions: dict[str, Session] = {}
        self.tasks: list[asyncio.Task[None]] = []
        self.kind = ""

    async def start(self, spec: dict[str, Any]) -> dict[str, str]:
        from console.sessions import get_kind

        kind = get_kind(spec["kind"])
        self.kind = kind.name
        configs: list[Any] = []
        for group in spec["groups"]:
            config, issues = read_table(kind.config_type, group, (kind.name,))
            if config is None:
                raise ValueError("; ".join(f"{i.dotted}: {i.message}" for i in issues))
            configs.append(config)
        recorder = _Recorder(float(spec["started"]))
        self.recorder = recorder
        seed = int(spec["seed"])
        # Each pool its own directory: embedded targets' keys must not collide between nodes.
        run_dir = Path(spec["run_dir"]) / f"node-{self.node_id[:8]}"
        private_dir(run_dir)  # parents too: mkdir(mode=) made only the last one 0700

        def context(session_id: str, kind_name: str, group: str, host: str) -> SessionContext:
            return SessionContext(recorder, session_id, kind_name, group, host, seed)

        env = RunEnv(
            run_dir=run_dir,
            profile_path=Path(spec["profile_path"]),
            services=recorder,
            seed=seed,
            context=context,
        )
        runtime = kind.create(configs, env)
        wanted = set(spec["ids"])
        runtime.sessions = [s for s in runtime.sessions if s.id in wanted]
        for name in ("ssh_sessions", "http_sessions"):  # the kinds' own typed lists
            if hasattr(runtime, name):
                setattr(runtime, name, [s for s in getattr(runtime, name) if s.id in wanted])
        self.runtime = runtime
        self.sessions = {s.id: s for s in runtime.sessions}
        for session in runtime.sessions:  # a re-spread share starts mid-run
            session.sampling_from(recorder.now())
        await runtime.start()
        self.tasks = [asyncio.ensure_future(self._run(s)) for s in runtime.sessions]
        self.tasks.append(asyncio.ensure_future(self._sample()))
        return {"node": self.node_id, "ip": self.node_ip}

    async def _run(self, session: Session) -> None:
        try:
            await session.run()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # as the engine's supervisor does
            session.state = "failed"
            session.ctx.event("session_error", f"{type(exc).__name__}: {exc}", success=False)

    async def _sample(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            for session in self.sessions.values():
                with contextlib.suppress(Exception):
                    session.sample()

    async def pull(self) -> dict[str, Any]:
        recorder = self.recorder
        records = recorder.out if recorder is not None else []
        if recorder is not None:
            recorder.out = []
        return {
            "records": records,
            "views": {sid: s.view() for sid, s in self.sessions.items()},
            "node": self.node_id,
            "ip": self.node_ip,
        }

    async def inject(
        self, action: str, ids: list[str], params: dict[str, Any], fault_id: int
    ) -> dict[str, str]:
        runtime = self.runtime
        if runtime is None:
            return dict.fromkeys(ids, "the pool has not started")
        targets = [self.sessions[i] for i in ids if i in self.sessions]
        recorder = self.recorder
        record = FaultRecord(
            id=fault_id,
            t=recorder.now() if recorder is not None else 0.0,
            ts="",
            action=f"{self.kind}.{action}",
            target="",
            sessions=tuple(ids),
            source="console",
            params=params,
        )
        try:
            return await runtime.inject(action, targets, params, record)
        except FaultNotApplicable as exc:
            return dict.fromkeys(ids, str(exc))

    async def stop(self) -> None:
        stops = [asyncio.ensure_future(s.stop()) for s in self.sessions.values()]
        if stops:
            await asyncio.wait(stops, timeout=10.0)
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.runtime is not None:
            with contextlib.suppress(Exception):
                await self.runtime.stop()


# --- on the console ------------------------------------------------------------------------------


class PooledSession(Session):
    """The console's mirror of a session that runs in a pool on a cluster node."""

    def __init__(self, ctx: SessionContext, kind: str) -> None:
        super().__init__(ctx, target=ctx.host)
        self.kind = kind
        self.node = ""
        self.node_ip = ""
        self._view: SessionSnapshot | None = None
        self._done = asyncio.Event()

    async def run(self) -> None:
        await self._done.wait()

    async def stop(self) -> None:
        self._done.set()

    def replay(self, op: str, args: tuple[Any, ...]) -> None:
        ctx = self.ctx
        if op == "event":
            name, detail, elapsed_ms, attempt, success, data = args
            ctx.event(
                name,
                detail,
                elapsed_ms=elapsed_ms,
                attempt=attempt,
                success=success,
                data={**data, "node": self.node},
            )
        elif op == "add":
            ctx.add(*args)
        elif op == "rate":
            ctx.rate(args[0], args[1], args[2])
        elif op == "gauge":
            ctx.gauge(*args)
        elif op == "observe":
            ctx.observe(*args)
        elif op == "trend":
            ctx.merge_trend(*args)
        elif op == "recovered":
            ctx.recovered()
        elif op == "disrupted":
            ctx.disrupted(args[0], kind=args[1])

    def show(self, view: SessionSnapshot) -> None:
        self._view = view
        if view.state != self.state:
            self.state = view.state  # a failure counts as an abnormal end here, once

    def view(self) -> SessionSnapshot:
        base = self._view or SessionSnapshot(  # before the pool's first answer
            id=self.id, kind=self.kind, group=self.ctx.group, target=self.target, state=self.state
        )
        node = f"{self.node[:8]} {self.node_ip}".strip() or "placing"
        return dataclasses.replace(base, state=self.state, details=(("node", node), *base.details))


class PoolRuntime(KindRuntime):
    """A kind's sessions in pool actors, one per node, spread round-robin by session."""

    def __init__(
        self,
        kind: str,
        groups: Sequence[Any],
        env: RunEnv,
        sessions: Sequence[PooledSession],
        cluster: RayCluster,
    ) -> None:
        super().__init__(sessions)
        self.kind = kind
        self.groups = [_to_json(g) for g in groups]
        self.env = env
        self.cluster = cluster
        self.pooled = list(sessions)
        self.pools: list[tuple[Any, list[PooledSession]]] = []
        self._pump: asyncio.Task[None] | None = None

    async def start(self) -> None:
        nodes = await asyncio.to_thread(self.cluster.worker_nodes)
        if not nodes:
            raise NodeLost("no worker node to place the sessions on")
        shares: list[list[PooledSession]] = [[] for _ in nodes]
        for index, session in enumerate(self.pooled):
            shares[index % len(nodes)].append(session)
        started = self.env.services.now()
        for node, share in zip(nodes, shares, strict=True):
            if not share:
                continue
            actor = self.cluster.pool_actor(node.node_id)
            spec = {
                "kind": self.kind,
                "groups": self.groups,
                "ids": [s.id for s in share],
                "run_dir": str(self.env.run_dir),
                "profile_path": str(self.env.profile_path),
                "seed": self.env.seed,
                "started": started,
            }
            where = await self.cluster.call(actor.start, spec, timeout=_START_TIMEOUT)
            for session in share:
                session.node, session.node_ip = str(where["node"]), str(where["ip"])
            self.pools.append((actor, share))
        self._pump = asyncio.ensure_future(self._pull_all())

    async def _pull_all(self) -> None:
        live = list(self.pools)
        while live:
            for pool in list(live):
                actor, share = pool
                try:
                    reply = await self.cluster.call(actor.pull, timeout=_PULL_TIMEOUT)
                    self._apply(share, reply)
                except NodeLost as exc:
                    live.remove(pool)
                    await self._lost(share, exc)
                except Exception as exc:  # the other pools' panes go on
                    # An error in the actor's pull (Ray's RayTaskError) or in a record it sent
                    # ended the loop for every pool without a word: now its sessions say why.
                    live.remove(pool)
                    self._broken(pool, f"{type(exc).__name__}: {exc}")
            await asyncio.sleep(_PULL)

    @staticmethod
    def _apply(share: Sequence[PooledSession], reply: Mapping[str, Any]) -> None:
        by_id = {s.id: s for s in share}
        for op, session_id, args in reply["records"]:
            if session_id in by_id:
                by_id[session_id].replay(op, tuple(args))
        for session_id, view in reply["views"].items():
            if session_id in by_id:
                by_id[session_id].show(view)

    def _broken(self, pool: tuple[Any, list[PooledSession]], why: str) -> None:
        # Its actor is killed: a pool nobody hears from must not go on loading the target.
        actor, share = pool
        self.pools = [p for p in self.pools if p is not pool]  # rebound: inject may be iterating
        self.cluster.release(actor)
        for session in share:
            session.ctx.event("pool_error", f"its pool stopped answering: {why}", success=False)
            session.state = "failed"

    async def _lost(self, share: Sequence[PooledSession], exc: NodeLost) -> None:
        node = share[0].node if share else ""
        cause = ""
        if node:
            with contextlib.suppress(asyncio.TimeoutError):
                cause = await asyncio.wait_for(
                    asyncio.to_thread(self.cluster.node_cause, node), 2.0
                )
        text = f"{cause} ({exc.cause})" if cause else exc.cause
        if node:
            self.cluster.lost.setdefault(node, text)
        for session in share:
            session.ctx.event(
                "node_lost",
                f"node {node[:8] or '?'} lost: {text}; its {self.kind} sessions go with it",
                success=False,
                data={"node": node, "cause": text, "policy": "degraded"},
            )
            session.ctx.disrupted("lost", kind="node")
            session.state = "failed"

    async def inject(
        self,
        action: str,
        targets: Sequence[Session],
        params: Mapping[str, Any],
        fault: FaultRecord,
    ) -> dict[str, str]:
        refused: dict[str, str] = {}
        wanted = {s.id for s in targets}
        for actor, share in self.pools:
            ids = [s.id for s in share if s.id in wanted]
            if not ids:
                continue
            try:
                answer = await self.cluster.call(
                    actor.inject, action, ids, dict(params), fault.id, timeout=15.0
                )
            except NodeLost as exc:
                answer = dict.fromkeys(ids, f"its node is gone ({exc.cause})")
            refused.update(answer)
            for session in share:
                if session.id in ids and session.id not in answer:
                    session.mark_fault()
        placed = {s.id for _, share in self.pools for s in share}
        refused.update({i: "not placed on any node" for i in wanted - placed})
        return refused

    async def stop(self) -> None:
        if self._pump is not None:
            self._pump.cancel()
            await asyncio.gather(self._pump, return_exceptions=True)
        for actor, _share in self.pools:
            with contextlib.suppress(NodeLost):
                await self.cluster.call(actor.stop, timeout=20.0)
            self.cluster.release(actor)
        self.pools = []


def pool_runtime(
    kind: str,
    groups: Sequence[Any],
    env: RunEnv,
    local: Callable[[Sequence[Any], RunEnv], KindRuntime],
) -> PoolRuntime:
    """The cluster form of a kind's runtime: the same session ids, each mirrored here."""
    plain = local(groups, env)  # cheap: sessions connect only when they run
    mirrors = [PooledSession(s.ctx, kind) for s in plain.sessions]
    return PoolRuntime(kind, groups, env, mirrors, env.cluster)
