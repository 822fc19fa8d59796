"""The run engine: clock, sessions, fault schedule, metrics, criteria and the event log.

A :class:`Run` owns everything about one run and knows nothing of Textual. It publishes an
immutable :class:`~console.snapshot.RunSnapshot` every ``run.snapshot_interval`` and accepts
commands through a small API, which the console (through :class:`console.controller.RunController`,
from another thread) and headless mode both use:

* :meth:`Run.inject` - a fault or control on ``all``, a group or a session, optionally a random
  ``pick`` of them; logged as a ``fault_injected`` event with its source;
* :meth:`Run.pause` / :meth:`Run.resume` - freeze the fault schedule and the run timer, and pause
  load where a kind supports it;
* :meth:`Run.export` - write ``snapshot-N.json``, ``report.md`` and ``junit.xml``;
* :meth:`Run.request_stop` - end gracefully (``interrupted=True`` for Ctrl-C: exit 130).

Setup is not load: run seconds start at 0 when every session is ready (or after
``SETUP_LIMIT``), as k6 starts after ``setup()``; events during setup have negative run seconds.

Sessions are supervised: an exception escaping ``Session.run`` becomes a ``session_error`` event
and a ``failed`` session; the run goes on. Every turn to ``failed`` counts in
``session_abnormal_ends`` when it happens (:meth:`Run.session_failed`). A session that never
reached ``running`` did none of its work: the run then exits 1 whatever the criteria say,
with a ``session_no_work`` event naming it.
"""

from __future__ import annotations

import asyncio
import random
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from console import export
from console.chaos import ChaosPlan, draws, picked
from console.criteria import Criterion, RecoveryTracker
from console.errors import ExitStatus, FaultNotApplicable, RunDirError
from console.events import (
    FLUSH_INTERVAL,
    RECENT_EVENTS,
    WRITE_FAILED,
    Event,
    EventLog,
    EventMaker,
    iso_at,
)
from console.faults import FaultInjector, after_end_text, faults_after_end, seconds_text
from console.files import new_private_dir
from console.health import UNTRUSTWORTHY, GeneratorHealth
from console.k6 import JsonOutput, write_summary_export
from console.ledger import FaultLedger
from console.metrics import MetricsRegistry, Trend, summarize
from console.profile import Profile
from console.replay import RUN_PAUSE, ReplayFault
from console.secrets import Secrets
from console.selfmon import LoopLagProbe, SelfMonitor
from console.sessions import get_kind
from console.sessions.base import (
    KindRuntime,
    RunEnv,
    Session,
    SessionContext,
    SessionKind,
)
from console.snapshot import (
    ConsoleStats,
    FaultRecord,
    MetricSummary,
    RunSnapshot,
    RunTables,
    SessionSnapshot,
)
from console.timeline import RunRecorder
from console.units import UnitError, parse_duration
from console.verdicts import NOT_JUDGED, PENDING, exit_status, overall

if TYPE_CHECKING:  # the client library loads only when a run serves /metrics
    from console.prom import Exposition, MetricsServer

__all__ = ["Run", "RunResult"]

RUN_SESSION = "run"  # the session id under which run-wide metrics (console_*) are recorded
# Setup is not load: the run's clock starts once every session is ready (k6 starts after
# setup()), or after this many seconds with the ones that are (the rest are named).
SETUP_LIMIT = 10.0
_SETTLED = ("failed", "exited", "stopped", "crashed")  # not ready, but nothing to wait for
_LIVE = ("starting", "connecting", "running", "idle", "reconnecting", "paused", "hung",
         "restarting")  # fmt: skip
_STOP_TIMEOUT = 10.0


@dataclass(frozen=True)
class RunResult:
    exit_code: int
    snapshot: RunSnapshot
    run_dir: Path
    exports: tuple[Path, ...] = ()


def _run_stamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


class Run(EventMaker):
    """One run of a profile. Create it, then ``await run.run()`` inside an event loop."""

    def __init__(
        self,
        profile: Profile,
        *,
        runs_dir: Path | str = "runs",
        duration: float | None = None,
        replay: Sequence[ReplayFault] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        # The run's clock: seconds, monotonic. Tests hand in the event loop's own (fake,
        # fast-forwarding) clock so runs of many seconds take milliseconds.
        self._clock = clock
        self.profile = profile.with_duration(duration) if duration is not None else profile
        self.replay = tuple(replay)
        self.config = self.profile.run
        base = Path(runs_dir) / f"{_run_stamp()}-{self.profile.name}"
        try:
            run_dir = new_private_dir(base)
        except OSError as exc:
            raise RunDirError(
                f"cannot write the run directory {base}: {exc.strerror or exc}"
            ) from exc
        self.run_dir = run_dir
        self.run_name = run_dir.name
        # Read once: what to redact from every file and to withhold from every child.
        self.secrets = Secrets.from_profile(self.profile)
        try:
            self.event_log = EventLog(run_dir / "events.jsonl", self.run_name, monotonic=clock)
        except OSError as exc:
            raise RunDirError(
                f"cannot write the run directory {run_dir}: {exc.strerror or exc}"
            ) from exc
        self.registry = MetricsRegistry(self.profile.metric_specs().values(), self.now)
        self.recoveries = RecoveryTracker()
        self.rng = random.Random(self.config.seed)
        self.state = "starting"
        self.exports: list[Path] = []
        # What could not be written, by file: shown live, in the summary and the final snapshot.
        self.data_loss: dict[str, str] = {}
        self._log_failing_since: float | None = None
        self.abort_reason = ""
        self.interrupted = False
        self.kinds: dict[str, SessionKind] = {}
        self.runtimes: dict[str, KindRuntime] = {}
        self.sessions: dict[str, Session] = {}
        self.criteria = [self._criterion(plan) for plan in self.profile.criteria]
        self.injector = FaultInjector(
            kinds=self.kinds,
            runtimes=self.runtimes,
            recoveries=self.recoveries,
            now=self.now,
            timestamp=self.timestamp,
            run_seconds=self.active_elapsed,
            log=self._log,
            on_fault=lambda: self.registry.add("faults_injected", 1, session=RUN_SESSION),
            rng=self.rng,
        )
        # The run's fault API is the injector's, one signature (see FaultInjector.inject).
        self.inject = self.injector.inject
        self.latest: RunSnapshot | None = None
        self.health = GeneratorHealth(self.registry.run_value)
        self._saturation_told = False
        self.chaos_on = True  # [[chaos]] draws are injected (a key switches it)
        self._subscribers: list[Callable[[RunSnapshot], None]] = []
        self._t0 = self._clock()
        self._wall_t0 = time.time()
        self._paused_at: float | None = None
        self._paused_total = 0.0
        # (active seconds when a pause began, its length): maps fault times (active seconds,
        # the header's and the schedule's clock) onto the timeline's (run seconds, pauses in).
        self._pauses: list[tuple[float, float]] = []
        self._load_started = False
        self.paused_what = ""  # what a pause stopped, for the header
        self._ended_at = ""
        self.exit_code: int | None = None
        # Run seconds when the stop began: stopping sessions is not load, and rates divide by
        # the time the load ran.
        self._load_ended: float | None = None
        self._resumed = asyncio.Event()
        self._stop = asyncio.Event()
        self._seq = 0
        self._export_n = 0
        self._selfmon = SelfMonitor()
        self._lag = LoopLagProbe()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._aux: list[asyncio.Task[None]] = []
        self._last_sample = -1e9
        # The run's history for report.html: fetched for exports only, never in a snapshot.
        self.recorder = RunRecorder(self.registry, self._session_states)
        self.ledger = FaultLedger(
            sessions=self._kind_and_group,
            spans=self.fault_spans,
            ends_another=self._ends_a_fault,
            sample_interval=self.config.sample_interval,
        )
        self.exposition: Exposition | None = None  # Prometheus, when run.metrics_listen is set
        self._metrics_server: MetricsServer | None = None
        self._k6_out: JsonOutput | None = None
        self.cluster: Any = None  # console.cluster.backend.RayCluster for a [run] cluster run
        self._cluster_nodes: list[Any] = []  # its NodeInfo list when it came up
        self._node_sessions: list[Session] = []  # a pane per node that can hold workers

    # ----- clock ---------------------------------------------------------------------------

    def timestamp(self) -> str:
        """Wall-clock ISO time of the run clock's now: event times and run seconds agree,
        whatever the clock (a test's fake one included)."""
        return iso_at(self._wall_t0 + self.now())

    def redact(self, value: Any) -> Any:
        return self.secrets.redact(value)

    def now(self) -> float:
        """Run seconds: since the load started (every session ready; negative during setup),
        wall time, pauses included."""
        return self._clock() - self._t0

    def active_elapsed(self) -> float:
        """Seconds of un-paused run time: what the duration and the fault schedule count."""
        if not self._load_started:
            return 0.0
        if self._load_ended is not None:
            return self._load_ended
        paused = self._paused_total
        if self._paused_at is not None:
            paused += self.now() - self._paused_at
        return self.now() - paused

    # ----- RunServices (what sessions call through their context) ----------------------------

    def log_event(self, event: Event) -> Event:
        if event.event == WRITE_FAILED and event.data.get("file"):
            self.data_loss[str(event.data["file"])] = event.detail
        return self.event_log.log(event)

    def _log(self, name: str, detail: str = "", **kw: Any) -> Event:
        kw.setdefault("session_id", None)
        kw.setdefault("host", None)
        kw.setdefault("kind", "run")
        return self.log_event(self.make_event(name, detail=detail, **kw))

    def metric_add(self, name: str, amount: float, session: str) -> None:
        self.registry.add(name, amount, session=session)

    def metric_rate(self, name: str, ok: bool, session: str, count: int = 1) -> None:
        self.registry.rate(name, ok, session=session, count=count)

    def metric_gauge(self, name: str, value: float, session: str) -> None:
        self.registry.gauge(name, value, session=session)

    def metric_observe(self, name: str, value: float, session: str) -> None:
        self.registry.observe(name, value, session=session)

    def metric_merge_trend(self, name: str, encoded: Mapping[str, Any], session: str) -> None:
        self.registry.merge_trend(name, Trend.decode(encoded), session=session)

    def session_disrupted(
        self, session_id: str, at: float, cause: str, kind: str | None = None
    ) -> None:
        session = self.sessions.get(session_id)
        self.injector.observed(kind or (session.kind if session else "run"), cause, session_id)

    def session_failed(self, session_id: str) -> None:
        self.registry.add("session_abnormal_ends", 1, session=session_id)

    def session_recovered(self, session_id: str, at: float) -> None:
        seconds = self.recoveries.recovered(session_id, at)
        if seconds is not None:
            session = self.sessions.get(session_id)
            self._log(
                "session_recovered",
                f"back {seconds * 1000:.0f}ms after the fault",
                session_id=session_id,
                host=session.ctx.host if session else None,
                kind=session.kind if session else "run",
                elapsed_ms=seconds * 1000,
                success=True,
            )

    # ----- building ------------------------------------------------------------------------

    def _criterion(self, plan: Any) -> Criterion:
        window = self.registry.watch_window(plan.metric, plan.window) if plan.window else None
        return Criterion(
            name=plan.name,
            threshold=plan.threshold,
            metric=plan.metric,
            scope=plan.scope,
            window=window,
            after=plan.after,
            within=plan.within,
            abort_on_fail=plan.abort_on_fail,
            abort_grace=plan.abort_grace,
            baseline=plan.baseline,
            faults=lambda: ((f.action, f.t) for f in self.injector.records),
        )

    def _context(self, session_id: str, kind: str, group: str, host: str) -> SessionContext:
        return SessionContext(
            self, session_id, kind, group, host, self.config.seed, secrets=self.secrets
        )

    def _build(self) -> None:
        env = RunEnv(
            run_dir=self.run_dir,
            profile_path=self.profile.path,
            services=self,
            seed=self.config.seed,
            context=self._context,
            secrets=self.secrets,
            duration=self.config.duration,
            cluster=self.cluster,
        )
        if self.cluster is not None:
            self._build_nodes()
        for kind_name in self.profile.kinds:
            kind = get_kind(kind_name)
            groups = [g.config for g in self.profile.groups if g.kind == kind_name]
            runtime = kind.create(groups, env)
            self.kinds[kind_name] = kind
            self.runtimes[kind_name] = runtime
            for session in runtime.sessions:
                self.sessions[session.id] = session
        for runtime in list(self.runtimes.values()):
            runtime.attach(dict(self.sessions))
        for runtime in self.runtimes.values():
            for session in runtime.sessions:
                self.sessions.setdefault(session.id, session)

    def _build_nodes(self) -> None:
        """Node panes first, so the grid shows them above the sessions they carry."""
        from console.cluster.nodes import NodeSession

        def workers() -> list[Session]:
            return [s for s in self.sessions.values() if s.kind != "node"]

        usable = [n for n in self._cluster_nodes if n.alive and (n.cpus > 0 or not n.head)]
        for index, info in enumerate(usable):
            ctx = self._context(f"node#{index}", "node", "cluster", info.address)
            node = NodeSession(ctx, self.cluster, info, workers)
            self.sessions[node.id] = node
            self._node_sessions.append(node)

    # ----- running -------------------------------------------------------------------------

    def start_warnings(self) -> list[str]:
        """What the operator must know before the run starts: faults scheduled after its end,
        whose criteria will not be judged. Shown by headless mode and the console."""
        late = faults_after_end(self.profile.faults, self.config.duration)
        return [after_end_text(late, self.config.duration)] if late else []

    def _unjudged_reasons(self) -> None:
        """Tell each criterion tied to a fault that never ran why it cannot be judged."""
        duration = self.config.duration
        late = faults_after_end(self.profile.faults, duration)
        elapsed = self.active_elapsed()
        cut = elapsed < duration - 1e-3  # stopped early (q, Ctrl-C, an abort)
        ended = f"the run ended at {seconds_text(round(elapsed, 1) if cut else duration)}"
        for criterion in self.criteria:
            if criterion.scope == "recovery":
                related = [(a, t) for a, t in late if a == criterion.after]
            else:  # a kind's metrics are named after it: pty_restart_success needs a pty.* fault
                kind = criterion.metric.split("_", 1)[0]
                related = [(a, t) for a, t in late if a.split(".", 1)[0] == kind]
            if related:
                scheduled = ", ".join(f"{a} is scheduled at {seconds_text(t)}" for a, t in related)
                reason = f"{scheduled}; {ended}"
                if criterion.scope != "recovery":
                    reason = f"no {criterion.metric} data: {reason}"
                criterion.unjudged_reason = reason
            elif cut:
                criterion.unjudged_reason += f" ({ended} of {seconds_text(duration)})"

    def _start_load(self) -> None:
        """Setup is over: run seconds restart at 0, so the duration, the fault schedule, the
        header, the faults list, the events and every rate count the time the load ran."""
        waiting = [s.id for s in self.sessions.values() if not s.worked and s.state not in _SETTLED]
        setup = self.now()
        self._t0 += setup
        self._wall_t0 += setup
        self._last_sample -= setup
        # Each session was last sampled then, on the old clock; or, with no sample in a setup
        # shorter than the interval, has counted since the setup began.
        sampled = max(self._last_sample, -setup)
        for session in self.sessions.values():
            session.sampling_from(sampled)
        self._paused_total = 0.0  # a cluster's start-up was setup, not a pause of the load
        self._load_started = True
        self.state = "running"
        self._resumed.set()
        detail = f"after {setup:.2f}s of setup"
        if waiting:
            detail += f"; not ready after {SETUP_LIMIT:g}s: {', '.join(waiting[:10])}"
        self._log("load_started", detail, data={"setup_s": round(setup, 3)}, success=not waiting)

    def _setup_done(self) -> bool:
        if self.now() >= SETUP_LIMIT:
            return True
        return all(s.worked or s.state in _SETTLED for s in self.sessions.values())

    async def run(self) -> RunResult:
        self._t0 = self._clock()
        self._wall_t0 = time.time()
        self._log(
            "run_started",
            f"{self.profile.name}: {len(self.profile.groups)} group(s), "
            f"duration {self.config.duration:.0f}s",
            data={"profile": str(self.profile.path), "duration_s": self.config.duration},
        )
        for warning in self.start_warnings():
            self._log("run_warning", warning, success=False)
        try:
            # A cluster run needs its cluster before any session is built: without it, no run.
            if not self.config.cluster or await self._open_cluster():
                await self._start_sessions()
                await self._stop.wait()
        finally:
            result = await self._finish()
        return result

    async def _start_sessions(self) -> None:
        """Build the sessions, start their kinds' runtimes, supervise them, start the clock's
        helpers: the tick, the fault schedule, replays and chaos."""
        self._build()
        self._open_outputs()
        for kind_name, runtime in self.runtimes.items():
            try:
                await runtime.start()
            except Exception as exc:  # one kind's shared resource must not end the run
                self._log(
                    "runtime_error", f"{type(exc).__name__}: {exc}", kind=kind_name, success=False
                )
                for session in runtime.sessions:
                    session.state = "failed"
                runtime.sessions = []
        running = [s for r in self.runtimes.values() for s in r.sessions]
        for session in [*self._node_sessions, *running]:
            self._tasks[session.id] = asyncio.create_task(
                self._supervise(session), name=f"session:{session.id}"
            )
        self._aux = [
            asyncio.create_task(self._lag.run(), name="loop-lag"),
            asyncio.create_task(self._tick(), name="tick"),
            *(
                asyncio.create_task(
                    self.injector.play(
                        FaultInjector.scheduled(plan, self.config.duration),
                        "schedule",
                        self._wait_until,
                    ),
                    name=f"fault:{plan.action}",
                )
                for plan in self.profile.faults
            ),
        ]
        faults = [f for f in self.replay if f.action != RUN_PAUSE]
        if faults:
            replay = self.injector.play(FaultInjector.replayed(faults), "replay", self._wait_until)
            self._aux.append(asyncio.create_task(replay, name="replay"))
        pauses = [f for f in self.replay if f.action == RUN_PAUSE]
        if pauses:
            self._aux.append(asyncio.create_task(self._replay_pauses(pauses), name="pauses"))
        if not self._replays_chaos():  # a replay of a chaos run carries its faults
            self._aux += [
                asyncio.create_task(self._chaos(plan), name="chaos") for plan in self.profile.chaos
            ]

    async def _open_cluster(self) -> bool:
        """Start or join ``[run] cluster`` (seconds, in a thread); False, logged, if it fails."""
        from console.cluster import open_cluster
        from console.errors import ClusterError

        self._log("cluster_starting", self.config.cluster, data={"cluster": self.config.cluster})
        began = self.now()
        try:
            self.cluster = await asyncio.to_thread(
                open_cluster, self.config.cluster, on_node_lost=self.config.on_node_lost
            )
        except ClusterError as exc:
            self.abort_reason = f"cluster: {exc}"
            self._log("cluster_error", str(exc), success=False)
            return False
        # Starting a cluster takes seconds: they count as paused, not as the run's duration.
        self._paused_total += self.now() - began
        nodes = await asyncio.to_thread(self.cluster.nodes)
        self._cluster_nodes = nodes
        shown = ", ".join(
            f"{n.node_id[:8]} {n.address}{' (head)' if n.head else ''}" for n in nodes if n.alive
        )
        self._log(
            "cluster_ready",
            f"{self.config.cluster}: {len(nodes)} node(s): {shown}",
            data={
                "nodes": [{"node": n.node_id, "address": n.address, "head": n.head} for n in nodes]
            },
        )
        return True

    async def remove_cluster_node(self, target: str = "") -> str:
        """Remove a worker node of the local cluster, to rehearse a node loss; its id.

        ``target`` is a node pane's id, a worker session's id (its node goes), a Ray node id,
        or empty for the last worker node.
        """
        from console.errors import ClusterError

        if self.cluster is None:
            raise ClusterError("this run has no cluster")
        session = self.sessions.get(target)
        node_id = target
        if session is not None:
            node_id = str(getattr(session, "node_id", "") or getattr(session, "node", ""))
            if not node_id:
                raise ClusterError(f"{target} runs on no cluster node")
        removed: str = await asyncio.to_thread(self.cluster.remove_node, node_id)
        self._log("node_removed", f"worker node {removed[:8]} removed", data={"node": removed})
        return removed

    async def _supervise(self, session: Session) -> None:
        try:
            await session.run()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            session.state = "failed"
            tail = traceback.format_exception(type(exc), exc, exc.__traceback__)[-3:]
            session.ctx.event(
                "session_error",
                f"{type(exc).__name__}: {exc}",
                success=False,
                data={"traceback": "".join(tail)[-2000:]},
            )

    async def _tick(self) -> None:
        """The run's heartbeat: samples, criteria, the deadline, log flushes, snapshots.

        It wakes at least every FLUSH_INTERVAL so the log's durability promise holds whatever
        ``snapshot_interval`` says, and an error in one beat is logged, never fatal: this loop
        is what ends the run on time.
        """
        interval = min(self.config.snapshot_interval, FLUSH_INTERVAL)
        last_publish = -1e9
        last_error = ""
        while True:
            try:
                now = self.now()
                if now - self._last_sample >= self.config.sample_interval:
                    self._last_sample = now
                    self._sample(now)
                if self.state == "starting" and self._setup_done():
                    self._start_load()
                    now = self.now()
                if self.state == "running" and self.active_elapsed() >= self.config.duration:
                    self._stop.set()
                self.event_log.flush()
                self._check_event_log(now)
                if now - last_publish >= self.config.snapshot_interval - 1e-3:
                    last_publish = now
                    self._evaluate(now, final=False)
                    self.publish()
            except Exception as exc:
                text = f"{type(exc).__name__}: {exc}"
                if text != last_error:  # once per distinct error, not four times a second
                    last_error = text
                    self._log("tick_error", text, success=False)
            # Setup ends when the last session is ready, and the run at its duration: notice
            # both within a few ms, not a beat later (a beat of load is 25 requests at 100/s).
            left = self.config.duration - self.active_elapsed()
            await asyncio.sleep(min(interval, max(left, 0.005)) if self._load_started else 0.01)

    def _check_event_log(self, now: float) -> None:
        """Note write failures of events.jsonl; once writes work again, log what was lost."""
        log = self.event_log
        if log.write_error:
            if self._log_failing_since is None:
                self._log_failing_since = now
            self.data_loss["events.jsonl"] = _log_loss_text(log)
        elif self._log_failing_since is not None:
            since, self._log_failing_since = self._log_failing_since, None
            self._log(
                WRITE_FAILED,
                f"events.jsonl: writes failed for {now - since:.1f}s; {log.dropped} event(s) lost",
                success=False,
                data={"file": "events.jsonl", "dropped": log.dropped, "since_s": round(since, 3)},
            )
            if not log.dropped:  # everything held back was written after all
                self.data_loss.pop("events.jsonl", None)

    def _sample(self, now: float) -> None:
        mon = self._selfmon
        mon.sample(now)
        self.registry.gauge("console_cpu", mon.cpu_pct, session=RUN_SESSION)
        self.registry.gauge("engine_cpu", mon.engine_cpu_pct, session=RUN_SESSION)
        self.registry.gauge("console_rss", mon.rss, session=RUN_SESSION)
        growth = mon.growth_mb_per_hour()
        if growth is not None:
            self.registry.gauge("console_memory_growth", growth, session=RUN_SESSION)
        for lag in self._lag.drain():
            self.registry.observe("console_loop_lag", lag, session=RUN_SESSION)
        for session in self.sessions.values():
            try:
                session.sample()
            except Exception as exc:  # a broken sampler must not stop the clock
                self._log(
                    "sample_error",
                    f"{type(exc).__name__}: {exc}",
                    session_id=session.id,
                    kind=session.kind,
                )
        if self.health.check(now):
            if not self._saturation_told:  # once: the evidence goes on in the snapshot
                self._saturation_told = True
                self._log("generator_saturated", self.health.lines()[-1], success=False)
            self.registry.add("generator_saturated", 1, session=RUN_SESSION)
        self.recorder.sample(now)
        self.ledger.follow(self.injector.records, self.injector.in_flight)
        self.ledger.sample(now, self.recorder.last_row)
        self._feed_outputs()

    # ----- outputs for other tools: Prometheus, k6 JSON ------------------------------------

    def _open_outputs(self) -> None:
        """Start what ``[run]`` asks for; a busy port or an unwritable file is logged, and the
        run goes on without that output rather than not at all."""
        if self.config.metrics_listen:
            from console.prom import Exposition, MetricsServer

            exposition = Exposition(self.registry, self._session_states)
            server = MetricsServer(exposition, self.config.metrics_listen)
            try:
                server.start()
            except OSError as exc:
                self._log("metrics_error", f"{self.config.metrics_listen}: {exc}", success=False)
            else:
                self.exposition, self._metrics_server = exposition, server
                self._log(
                    "metrics_listening",
                    f"Prometheus /metrics on http://{server.host}:{server.port}/metrics",
                    data={"host": server.host, "port": server.port},
                )
        if self.config.out_json:
            thresholds: dict[str, list[str]] = {}
            for c in self.criteria:
                snap = c.snapshot()
                if snap.scope in ("run", "window"):
                    thresholds.setdefault(snap.metric, []).append(snap.expression)
            try:
                self._k6_out = JsonOutput(
                    Path(self.config.out_json),
                    self.registry,
                    self._session_states,
                    thresholds,
                    redact=self.secrets.text,
                )
            except OSError as exc:
                self._log("output_error", f"{self.config.out_json}: {exc}", success=False)
        self._feed_outputs()

    def _feed_outputs(self) -> None:
        if self.exposition is not None:
            self.exposition.update(
                [c.snapshot() for c in self.criteria],
                self.injector.records,
                self.active_elapsed(),
            )
        if self._k6_out is not None:
            self._k6_out.sample()

    def _close_outputs(self, snapshot: RunSnapshot) -> None:
        self._feed_outputs()
        if self._k6_out is not None:
            self._k6_out.close()
            self._k6_out = None
        if self.config.summary_export:
            try:
                write_summary_export(
                    Path(self.config.summary_export), snapshot, redact=self.secrets.text
                )
            except OSError as exc:
                self._log("output_error", f"{self.config.summary_export}: {exc}", success=False)
        if self._metrics_server is not None:
            self._metrics_server.stop()
            self._metrics_server = None

    def _ends_a_fault(self, action: str) -> bool:
        kind_name, _, name = action.partition(".")
        kind = self.kinds.get(kind_name)
        return kind is not None and any(name in spec.until for spec in kind.faults.values())

    def _kind_and_group(self, session_id: str) -> tuple[str, str] | None:
        session = self.sessions.get(session_id)
        return None if session is None else (session.kind, session.ctx.group)

    def _session_states(self) -> Iterator[tuple[str, str, str, str]]:
        for session in self.sessions.values():
            yield session.id, session.ctx.group, session.kind, session.state

    def history(self) -> dict[str, Any]:
        """The run's timeline and each fault's span, for report.html (see console.timeline)."""
        data = self.recorder.export()
        data["sample_interval"] = self.config.sample_interval
        data["now"] = round(self.now(), 3)
        data["fault_spans"] = self.fault_spans()
        return data

    def run_seconds_at(self, active: float) -> float:
        """The run seconds (:meth:`now`'s clock, pauses included: the timeline's) of a moment
        given in active seconds (:meth:`active_elapsed`: faults', the header's). A moment
        during a pause, when active time stands still, maps to the pause's start."""
        return active + sum(length for began, length in self._pauses if active > began)

    def fault_spans(self) -> list[dict[str, Any]]:
        """When each fault began and ended, in run seconds (the timeline's clock: pauses
        included): its own ``duration`` (or ``down``) if it has one; else until an action that
        ends it reached the same sessions (``http.latency`` until ``http.clear``, see
        ``FaultSpec.until``); else until the last session it disrupted came back. A condition
        still holding runs to the present (``holding``); a one-off has no end. ``at`` is the
        fault's own time (active seconds, as the faults list shows it).

        Fault times and ``ended`` are active seconds and are mapped (:meth:`run_seconds_at`);
        a fault's own timer and a session's way back are measured in run seconds from its
        start, so they are added to the mapped start, never mapped again."""
        back = {r.fault_id: r for r in self.recoveries.faults}
        ended = self._load_ended
        present = self.now() if ended is None else self.run_seconds_at(ended)
        spans = []
        records = self.injector.records
        for i, fault in enumerate(records):
            start = self.run_seconds_at(fault.t)
            end = None if fault.ended is None else self.run_seconds_at(fault.ended)
            for key in ("duration", "down"):
                try:
                    seconds = parse_duration(fault.params.get(key))
                except UnitError:
                    continue
                if seconds > 0 and end is None:
                    end = start + seconds
            kind_name, _, name = fault.action.partition(".")
            kind = self.kinds.get(kind_name)
            spec = kind.faults.get(name) if kind is not None else None
            if end is None and spec is not None and spec.until:
                enders = {f"{kind_name}.{u}" for u in spec.until}
                later = records[i + 1 :]
                end = next(
                    (
                        self.run_seconds_at(f.t)
                        for f in later
                        if f.action in enders and set(f.sessions) & set(fault.sessions)
                    ),
                    present,
                )
            recovery = back.get(fault.id)
            if end is None and recovery is not None:
                if len(recovery.back) >= len(recovery.sessions):
                    end = start + max(recovery.back.values(), default=0.0)
                else:
                    end = present  # still waiting for a session: the band runs to the present
            spans.append(
                {
                    "id": fault.id,
                    "at": fault.t,
                    "start": round(start, 3),
                    "end": round(max(start, min(end, present)), 3) if end is not None else None,
                    "holding": end is not None and end >= present,  # runs to the present
                    "action": fault.action,
                    "source": fault.source,
                    "target": fault.target,
                    "sessions": len(fault.sessions),
                }
            )
        return spans

    def _evaluate(self, now: float, *, final: bool) -> None:
        run_values = dict(self.registry.items())
        elapsed = max(self.active_elapsed(), 1e-9)
        for criterion in self.criteria:
            before = criterion.state
            criterion.evaluate(now, elapsed, run_values, self.recoveries, final=final)
            if criterion.state != before and (criterion.state != PENDING or final):
                view = criterion.snapshot()
                detail = f"{criterion.name}: {view.value_text} (target {view.target_text})"
                if criterion.state == NOT_JUDGED:
                    detail = f"{criterion.name}: {view.evidence}"
                self._log(
                    "criterion_" + criterion.state,
                    detail,
                    success=criterion.state == "pass",
                )
            if (
                not final
                and criterion.should_abort
                and self.active_elapsed() >= criterion.abort_grace
                and not self.abort_reason
            ):
                self.abort_reason = f"criterion '{criterion.name}' failed"
                self._log("run_aborted", self.abort_reason, success=False)
                self._stop.set()

    async def _replay_pauses(self, pauses: Sequence[ReplayFault]) -> None:
        """Pause the run where the replayed one was paused, for as long (wall seconds)."""
        for pause in sorted(pauses, key=lambda p: p.t):
            await self._wait_until(pause.t)
            await self.pause("replay")
            await asyncio.sleep(float(pause.params.get("duration", 0.0)))
            await self.resume("replay")

    # ----- seeded chaos (console.chaos) -----------------------------------------------------

    def _replays_chaos(self) -> bool:
        return any(f.source == "chaos" for f in self.replay)

    async def _chaos(self, plan: ChaosPlan) -> None:
        for draw in draws(plan, self.config.duration):
            await self._wait_until(draw.t)
            if not self.chaos_on:
                continue  # skipped, not postponed: switching back on resumes the same sequence
            choice = draw.choice
            kind_name = choice.action.partition(".")[0]
            ids = [s.id for s in self.injector.resolve_targets(kind_name, choice.target)]
            try:
                await self.inject(
                    choice.action,
                    target=choice.target,
                    params=choice.params,
                    source="chaos",
                    sessions=picked(ids, choice.pick, draw.pick_seed) if choice.pick else (),
                )
            except FaultNotApplicable:
                pass  # logged as fault_not_applicable; chaos goes on

    def set_chaos(self, on: bool | None = None, source: str = "api") -> bool:
        """Switch chaos on or off (``None``: toggle); return the new state."""
        self.chaos_on = (not self.chaos_on) if on is None else on
        self._log("chaos_on" if self.chaos_on else "chaos_off", "", source=source)
        return self.chaos_on

    async def _wait_until(self, at: float) -> None:
        """Sleep until ``at`` seconds of un-paused run time."""
        while True:
            await self._resumed.wait()
            remaining = at - self.active_elapsed()
            if remaining <= 1e-6:  # a microsecond early is on time (and a clock's resolution)
                return
            await asyncio.sleep(min(remaining, 0.5))

    # ----- commands ------------------------------------------------------------------------

    def resolve_targets(self, kind: str, target: str) -> list[Session]:
        return self.injector.resolve_targets(kind, target)

    def session(self, session_id: str) -> Session | None:
        return self.sessions.get(session_id)

    def add_session(self, session: Session) -> None:
        """A session made during the run (a link created through the API) joins it."""
        self.sessions[session.id] = session
        session.sampling_from(self.now())
        if self.state in ("running", "paused"):
            self._tasks[session.id] = asyncio.create_task(
                self._supervise(session), name=f"session:{session.id}"
            )

    @property
    def faults(self) -> list[FaultRecord]:
        return self.injector.records

    async def pause(self, source: str = "api") -> None:
        """Pause everything the run drives (PTY programs SIGSTOPped, SSH polling and HTTP load
        stopped) and its clock. A control, not a fault: ``run_paused``/``run_resumed`` events,
        which a replay repeats with the pause's length."""
        if self._paused_at is not None or self.state != "running":
            return
        t = round(self.active_elapsed(), 3)
        self._paused_at = self.now()
        self._resumed.clear()
        self.state = "paused"
        what: dict[str, int] = {}
        for session in list(self.sessions.values()):
            try:
                paused = await session.pause()
            except Exception as exc:  # one session must not keep the others running
                self._log("pause_error", f"{type(exc).__name__}: {exc}", session_id=session.id)
                continue
            if paused:
                key = f"{session.kind} {paused}"
                what[key] = what.get(key, 0) + 1
        self.paused_what = ", ".join(f"{n} {key}" for key, n in what.items())
        self._log("run_paused", self.paused_what or "nothing to pause", source=source,
                  data={"t": t})  # fmt: skip

    async def resume(self, source: str = "api") -> None:
        if self._paused_at is None:
            return
        for session in list(self.sessions.values()):
            try:
                await session.resume()
            except Exception as exc:
                self._log("pause_error", f"{type(exc).__name__}: {exc}", session_id=session.id)
        length = self.now() - self._paused_at  # once, exact: the two clocks must agree
        paused_s = round(length, 3)
        self._paused_total += length
        self._paused_at = None
        self._pauses.append((self.active_elapsed(), length))
        self.paused_what = ""
        self.state = "running"
        self._resumed.set()
        self._log("run_resumed", f"after {paused_s:g}s", source=source,
                  data={"t": round(self.active_elapsed(), 3), "paused_s": paused_s})  # fmt: skip

    async def export(self) -> list[Path]:
        """Write ``snapshot-N.json``, ``report.md`` and ``junit.xml``; return their paths."""
        self._export_n += 1
        snapshot = self.make_snapshot(tables=True)
        try:
            paths = export.write_all(
                self.run_dir,
                self._export_n,
                snapshot,
                self.profile,
                self.kind_figures(snapshot),
                self.secrets,
                history=self.history(),
            )
        except export.ExportError as exc:
            paths = list(exc.written)
            self.exports.extend(paths)
            for path, error in exc.failures:
                self._log(
                    WRITE_FAILED,
                    f"{path.name}: not written: {error.strerror or error}",
                    success=False,
                    data={"file": path.name},
                )
            self.publish()
            raise
        self.exports.extend(paths)
        self._log("snapshot_exported", str(paths[0]), data={"files": [str(p) for p in paths]})
        self.publish()
        return paths

    async def screen(self, session_id: str) -> bytes:
        """The raw screen bytes of one session, for the detail view (b"" if it has none)."""
        session = self.sessions.get(session_id)
        return session.screen() if session is not None else b""

    async def tables(self) -> RunTables:
        """The breakdown as it is now, for a console screen that shows it live: asked for on
        request (at most once a second while such a screen is open), never per snapshot."""
        return self._tables()

    def request_stop(self, *, interrupted: bool = False) -> None:
        self.interrupted = self.interrupted or interrupted
        self._stop.set()

    def subscribe(self, callback: Callable[[RunSnapshot], None]) -> None:
        """Call ``callback`` with each published snapshot, in the engine's thread."""
        self._subscribers.append(callback)

    # ----- snapshots -----------------------------------------------------------------------

    def publish(self) -> RunSnapshot:
        snapshot = self.make_snapshot()
        self.latest = snapshot
        for callback in self._subscribers:
            try:
                callback(snapshot)
            except Exception as exc:  # a broken subscriber must not stop the engine
                self._log("subscriber_error", f"{type(exc).__name__}: {exc}")
        return snapshot

    @property
    def loop_lag(self) -> LoopLagProbe:
        return self._lag

    @property
    def selfmon(self) -> SelfMonitor:
        return self._selfmon

    def current_snapshot(self) -> RunSnapshot:
        """The latest published snapshot, or a new one before the first is published."""
        return self.latest or self.make_snapshot()

    def make_snapshot(self, *, tables: bool | None = None) -> RunSnapshot:
        """The run as it is now; ``tables`` (the per-request breakdown) by default only once
        the run has ended: exports ask for it, and a live screen asks :meth:`tables`."""
        self._seq += 1
        lag = self._lag
        want_tables = bool(self._ended_at) if tables is None else tables
        return RunSnapshot(
            seq=self._seq,
            profile_name=self.profile.name,
            description=self.config.description,
            state=self.state,
            elapsed=round(self.active_elapsed(), 3),
            duration=self.config.duration,
            run_dir=str(self.run_dir),
            sessions=tuple(self._session_view(s) for s in self.sessions.values()),
            criteria=tuple(c.snapshot() for c in self.criteria),
            metrics=tuple(self._metric_summaries()),
            console=ConsoleStats(
                cpu_pct=self._selfmon.cpu_pct,
                engine_cpu_pct=self._selfmon.engine_cpu_pct,
                rss_bytes=self._selfmon.rss,
                loop_lag_ms=lag.latest_ms,
                loop_lag_p99_ms=lag.trend.percentile(99) or 0.0,
            ),
            faults=tuple(self.injector.records),
            fault_count=self.injector.total,
            recent_events=self.event_log.tail(RECENT_EVENTS),
            events_logged=self.event_log.count,
            exports=tuple(str(p) for p in self.exports),
            abort_reason=self.abort_reason,
            data_loss=tuple(self.data_loss.values()),
            paused=self.paused_what,
            ledger=self.ledger.entries(),
            generator=self.health.lines(),
            started_at=iso_at(self._wall_t0) if self._load_started else "",
            ended_at=self._ended_at,
            exit_code=self.exit_code,
            tables=self._tables() if want_tables else RunTables(),
        )

    def _tables(self) -> RunTables:
        parts = []
        for kind_name, runtime in self.runtimes.items():
            try:
                part = runtime.tables(max(self.active_elapsed(), 1e-9))
            except Exception as exc:  # a broken table must not cost the run its report
                self._log("runtime_error", f"tables: {type(exc).__name__}: {exc}", kind=kind_name)
                continue
            if part is not None:
                parts.append(part)
        return RunTables(
            scenarios=tuple(row for p in parts for row in p.scenarios),
            requests=tuple(row for p in parts for row in p.requests),
            failures=tuple(row for p in parts for row in p.failures),
            checks=tuple(row for p in parts for row in p.checks),
            aggregated=next((p.aggregated for p in parts if p.aggregated is not None), None),
        )

    def _session_view(self, session: Session) -> SessionSnapshot:
        try:
            return session.view()
        except Exception as exc:
            return SessionSnapshot(
                id=session.id,
                kind=session.kind,
                group=session.ctx.group,
                target=session.target,
                state=session.state,
                last_event=f"view failed: {type(exc).__name__}: {exc}",
            )

    def _metric_summaries(self) -> Iterator[MetricSummary]:
        elapsed = max(self.active_elapsed(), 1e-9)
        for name, value in sorted(self.registry.items()):
            spec = self.registry.specs[name]
            yield MetricSummary(
                name, spec.type.value, spec.unit, summarize(value, spec.type, elapsed)
            )

    def _without_work(self) -> list[str]:
        return [s.id for s in self.sessions.values() if not s.worked]

    def kind_figures(self, snapshot: RunSnapshot) -> dict[str, Any]:
        figures: dict[str, Any] = {}
        if idle := self._without_work():
            figures["sessions without work"] = ", ".join(idle)
        if self.health.saturated:
            figures["generator_saturated"] = UNTRUSTWORTHY
        for kind in self.kinds.values():
            if kind.figures is not None:
                try:
                    figures.update(kind.figures(snapshot))
                except Exception as exc:
                    figures[f"{kind.name}_summary_error"] = f"{type(exc).__name__}: {exc}"
        return figures

    # ----- ending --------------------------------------------------------------------------

    async def _finish(self) -> RunResult:
        self._load_ended = self.active_elapsed() if self._load_started else None
        self.state = "stopping"
        for task in self._aux:
            task.cancel()
        await asyncio.gather(*self._aux, return_exceptions=True)
        stops = [asyncio.create_task(s.stop()) for s in self.sessions.values()]
        if stops:
            done, pending = await asyncio.wait(stops, timeout=_STOP_TIMEOUT)
            for task in pending:
                task.cancel()
            for task in done:
                if not task.cancelled() and task.exception() is not None:
                    exc = task.exception()
                    self._log("stop_error", f"{type(exc).__name__}: {exc}")
        for task in self._tasks.values():
            task.cancel()
        if self._tasks:
            # Bounded: a session that swallows its cancellation must not hold the run's end.
            _, stuck = await asyncio.wait(self._tasks.values(), timeout=_STOP_TIMEOUT)
            for task in stuck:
                self._log("stop_error", f"{task.get_name()} did not stop", success=False)
        for session in self.sessions.values():
            # The run is over: a session whose task was cancelled before it could say so is
            # stopped, not "running" in the final snapshot and the report.
            if session.state in _LIVE:
                session.state = "stopped"
        for kind_name, runtime in self.runtimes.items():
            try:
                await runtime.stop()
            except Exception as exc:
                self._log("runtime_error", f"stop: {type(exc).__name__}: {exc}", kind=kind_name)
        if self.cluster is not None:  # every actor killed; a local cluster stopped
            cluster, self.cluster = self.cluster, None
            try:
                await asyncio.to_thread(cluster.shutdown)
                self._log("cluster_stopped", self.config.cluster)
            except Exception as exc:
                self._log("cluster_error", f"stop: {type(exc).__name__}: {exc}", success=False)
        # Only the loop-lag backlog: a CPU sample taken now would measure shutdown, not the run.
        for lag in self._lag.drain():
            self.registry.observe("console_loop_lag", lag, session=RUN_SESSION)
        self._unjudged_reasons()
        self._evaluate(self.now(), final=True)
        self.ledger.finish()
        idle = self._without_work()
        for session_id in idle:
            session = self.sessions[session_id]
            self._log(
                "session_no_work",
                f"never started its work (last state: {session.state})",
                session_id=session_id,
                kind=session.kind,
                success=False,
            )
        if self.interrupted:
            self.state, code = "interrupted", ExitStatus.INTERRUPTED
        elif self.abort_reason:
            self.state, code = "aborted", ExitStatus.FAILED
        else:
            verdict = overall(c.state for c in self.criteria)
            self.state, code = "finished", ExitStatus.FAILED if idle else exit_status(verdict)
        self._ended_at = self.timestamp()
        self.exit_code = int(code)
        snapshot = self.make_snapshot()
        self._close_outputs(snapshot)
        summary = {
            "exit_code": code,
            "state": self.state,
            "criteria": {
                c.name: {"state": c.state, "value": c.value_text} for c in snapshot.criteria
            },
            **self.kind_figures(snapshot),
        }
        self._log(
            "summary", f"{self.state}: exit {code}", data=summary, success=code == ExitStatus.OK
        )
        try:
            paths = await self.export()
        except export.ExportError as exc:  # already logged; the exit status stays the criteria's
            paths = list(exc.written)
        self.event_log.close()
        if self.event_log.dropped or self.event_log.write_error:
            self.data_loss["events.jsonl"] = _log_loss_text(self.event_log)
        final = self.publish()
        return RunResult(code, final, self.run_dir, tuple(paths))


def _log_loss_text(log: EventLog) -> str:
    text = f"events.jsonl: {log.dropped} event(s) not written"
    if log.pending_lines:
        text += f", {log.pending_lines} held back to retry"
    return text + (f" ({log.write_error})" if log.write_error else "")
