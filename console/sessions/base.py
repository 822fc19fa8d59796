"""What every session kind provides, and what the engine gives every session.

A *session kind* (``pty``, ``ssh``, ``http``) lives in one module of this package and exports a
module-level ``KIND: SessionKind``. The engine never imports a kind's module unless the profile
uses it (see :mod:`console.sessions`), so a PTY-only run never loads asyncssh or httpx.

Lifecycle, driven by :class:`console.engine.Run`::

    runtime = KIND.create(groups, env)     # build sessions from the profile's [[kind]] groups
    await runtime.start()                  # e.g. start an embedded target server
    run each session.run() as a supervised task  (exception -> "session_error" event, "failed")
    every sample interval: session.sample()        (push sparkline samples, gauges)
    every snapshot:        session.view()          (an immutable SessionSnapshot)
    once all kinds exist:  runtime.attach(sessions)   (links route the sessions behind them)
    faults:                runtime.inject(action, sessions, params, fault)
    at the end:            session.stop() for each, then runtime.stop()

Sessions report through their :class:`SessionContext` only: events, metrics, recovery. They
must never block the event loop; anything blocking goes to a thread or a process.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from console.errors import FaultNotApplicable
from console.events import Event
from console.metrics import MetricSpec, Series
from console.sanitize import all_unchanged, clean
from console.secrets import NO_SECRETS, Secrets
from console.snapshot import FaultRecord, RunTables, SeriesView, SessionSnapshot

__all__ = [
    "FaultNotApplicable",
    "FaultSpec",
    "KindRuntime",
    "RunEnv",
    "RunServices",
    "Session",
    "SessionContext",
    "SessionKind",
]


@dataclass(frozen=True)
class FaultSpec:
    """A fault or control action a kind accepts, such as ``kill`` for ``pty.kill``.

    ``params`` maps each accepted parameter to its unit: ``"duration"``, ``"size"``, ``"rate"``,
    ``"percent"``, ``"int"``, ``"float"`` or ``"str"``. The profile loader checks
    ``[[faults]]`` entries against it. ``recovers`` says whether sessions hit by it are
    expected to come back, which is what recovery-scoped criteria measure. ``until`` names the
    actions of the same kind that end a condition this one starts (``latency`` lasts until
    ``clear``), which is how long its band is in report.html. ``limits`` bound a parameter as
    a config field's are bounded (``{"rate": {"gt": 0, "le": 1e6}}``, in its base unit), and
    ``required`` names parameters without a default: the loader refuses a ``[[faults]]`` or
    ``[[chaos]]`` entry that breaks them with file, line and key, before the run starts,
    rather than the fault being refused when it comes.
    """

    description: str
    params: Mapping[str, str] = field(default_factory=dict)
    recovers: bool = True
    until: tuple[str, ...] = ()
    limits: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    required: tuple[str, ...] = ()


class RunServices(Protocol):
    """The engine's side of a SessionContext (implemented by :class:`console.engine.Run`)."""

    run_name: str

    def now(self) -> float: ...

    def log_event(self, event: Event) -> Event: ...

    def make_event(
        self,
        name: str,
        *,
        session_id: str | None,
        host: str | None,
        kind: str,
        detail: str = "",
        elapsed_ms: float | None = None,
        attempt: int | None = None,
        success: bool | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> Event: ...

    def metric_add(self, name: str, amount: float, session: str) -> None: ...

    def metric_rate(self, name: str, ok: bool, session: str, count: int = 1) -> None: ...

    def metric_gauge(self, name: str, value: float, session: str) -> None: ...

    def metric_observe(self, name: str, value: float, session: str) -> None: ...

    def metric_merge_trend(self, name: str, encoded: Mapping[str, Any], session: str) -> None: ...

    def session_recovered(self, session_id: str, at: float) -> None: ...

    def session_disrupted(
        self, session_id: str, at: float, cause: str, kind: str | None = None
    ) -> None: ...

    def session_failed(self, session_id: str) -> None: ...

    def session(self, session_id: str) -> Session | None: ...

    def add_session(self, session: Session) -> None: ...

    async def inject(
        self,
        action: str,
        *,
        target: str = "all",
        params: Mapping[str, Any] | None = None,
        source: str = "api",
    ) -> FaultRecord: ...


@dataclass(frozen=True)
class RunEnv:
    """What a kind needs to build its sessions."""

    run_dir: Path
    profile_path: Path
    services: RunServices
    seed: int
    context: Callable[[str, str, str, str], SessionContext]  # (session_id, kind, group, host)
    secrets: Secrets = NO_SECRETS  # children start from secrets.child_env()
    # Seconds of load the run asks for (pauses excluded): a kind whose load has its own clock
    # (an HTTP scenario) runs exactly this long from when it is ready; 0 = until stopped.
    duration: float = 0.0
    cluster: Any = None  # console.cluster.backend.RayCluster when the run has [run] cluster


class SessionContext:
    """A session's handle on the run: events, metrics and recovery, bound to its id."""

    def __init__(
        self,
        services: RunServices,
        session_id: str,
        kind: str,
        group: str,
        host: str,
        seed: int,
        *,
        secrets: Secrets = NO_SECRETS,
    ) -> None:
        self.services = services
        self.secrets = secrets  # the run's: a child's environment is secrets.child_env()
        self.session_id = session_id
        self.kind = kind
        self.group = group
        self.host = host
        self.rng = random.Random(f"{seed}:{session_id}")
        self.last_event: Event | None = None

    def now(self) -> float:
        """Seconds since the run started (monotonic)."""
        return self.services.now()

    def event(
        self,
        name: str,
        detail: str = "",
        *,
        elapsed_ms: float | None = None,
        attempt: int | None = None,
        success: bool | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> Event:
        event = self.services.make_event(
            name,
            session_id=self.session_id,
            host=self.host,
            kind=self.kind,
            detail=detail,
            elapsed_ms=elapsed_ms,
            attempt=attempt,
            success=success,
            data=data,
        )
        self.last_event = event
        return self.services.log_event(event)

    def add(self, metric: str, amount: float = 1.0) -> None:
        self.services.metric_add(metric, amount, self.session_id)

    def rate(self, metric: str, ok: bool, count: int = 1) -> None:
        self.services.metric_rate(metric, ok, self.session_id, count)

    def gauge(self, metric: str, value: float) -> None:
        self.services.metric_gauge(metric, value, self.session_id)

    def observe(self, metric: str, value: float) -> None:
        self.services.metric_observe(metric, value, self.session_id)

    def merge_trend(self, metric: str, encoded: Mapping[str, Any]) -> None:
        self.services.metric_merge_trend(metric, encoded, self.session_id)

    def disrupted(self, cause: str, *, kind: str | None = None) -> None:
        """This session stopped being usable (crash, drop) without a fault asking for it.

        The observed fault is ``<kind>.<cause>``: the session's kind unless ``kind`` names
        another, as ``node.lost`` does for a cluster node that died under the session.
        """
        self.services.session_disrupted(self.session_id, self.now(), cause, kind)

    def recovered(self) -> None:
        """This session is usable again: output flows, the connection answers."""
        self.services.session_recovered(self.session_id, self.now())


class Session(ABC):
    """One live thing under test: a PTY program, an SSH connection, an HTTP scenario worker."""

    kind: str = ""

    def __init__(self, ctx: SessionContext, *, target: str) -> None:
        self.ctx = ctx
        self.target = target
        self.worked = False  # ever "running": a session that never was did none of its work
        self.state = "starting"
        self.badges: tuple[str, ...] = ()
        self.series: dict[str, Series] = {}
        self.markers: list[int] = []  # absolute sample numbers of faults, for sparklines
        self._sampled_at = 0.0  # run seconds at the previous sample (see sampling_from)

    @property
    def id(self) -> str:
        return self.ctx.session_id

    @property
    def state(self) -> str:
        return self._state

    @state.setter
    def state(self, value: str) -> None:
        """Every state change passes here, so a session that fails (to start, or later, while
        its ``run`` goes on waiting for a manual reconnect) is an abnormal end at that moment:
        ``session_abnormal_ends == 0`` turns red live and ``abort_on_fail`` can fire."""
        previous = getattr(self, "_state", "")
        self._state = value
        if value == "running":
            self.worked = True
        if value == "failed" and previous != "failed":
            self.ctx.services.session_failed(self.id)

    @abstractmethod
    async def run(self) -> None:
        """Do the session's work until :meth:`stop` is called or the work ends.

        Return normally for an orderly end. An exception is caught by the engine's supervisor
        and turns the session ``failed`` with a ``session_error`` event; the run goes on.
        """

    @abstractmethod
    async def stop(self) -> None:
        """End the session promptly and release every resource (processes, fds, sockets)."""

    async def pause(self) -> str:
        """The run is paused: stop what this session drives (a program, polling, load) until
        :meth:`resume`. Return what was paused ("SIGSTOP", "polling", "load"), or "" if nothing.
        Not a fault: nothing is recorded, nothing recovers."""
        return ""

    async def resume(self) -> None:  # noqa: B027 - optional: most kinds have nothing to undo
        """The run goes on: undo :meth:`pause`."""

    async def inject(self, action: str, params: Mapping[str, Any], fault: FaultRecord) -> None:
        """Apply a fault or control action (the part after ``kind.``).

        Raise :class:`FaultNotApplicable` with a short reason when it cannot apply.
        """
        raise FaultNotApplicable(f"{self.id} does not accept {action}")

    def sample(self) -> None:
        """Called once per sample interval: push sparkline samples and gauges."""
        return None

    def seconds_since_sample(self) -> float:
        """Seconds since this session's previous sample: what a per-second sparkline value
        (req/s, B/s) divides its count by, whatever ``sample_interval`` is. Once per sample."""
        now = self.ctx.now()
        elapsed, self._sampled_at = now - self._sampled_at, now
        return max(elapsed, 1e-3)

    def sampling_from(self, run_seconds: float) -> None:
        """Count the next sample's seconds from ``run_seconds``: when the session joins a run
        already going (else its first rate divides by the whole run so far), and when the load
        starts and run seconds restart at 0 (else the next one divides by 1 ms: a spike)."""
        self._sampled_at = run_seconds

    def mark_fault(self) -> None:
        """Remember the moment of a fault so sparklines can show a marker there."""
        main = next(iter(self.series.values()), None)
        if main is not None:
            self.markers.append(main.total)
            del self.markers[:-32]

    def series_views(self, units: Mapping[str, str] | None = None) -> tuple[SeriesView, ...]:
        units = units or {}
        return tuple(
            SeriesView(name, units.get(name, ""), s.values(), s.marker_positions(self.markers))
            for name, s in self.series.items()
        )

    @abstractmethod
    def view(self) -> SessionSnapshot:
        """An immutable snapshot of this session for the console and exports."""

    def screen(self) -> bytes:
        """Recent raw output for the detail view's terminal emulator, fetched on request (only
        for the one session the operator opened, never in every 4 Hz snapshot); raw bytes,
        so the emulator cleans what it draws."""
        return b""

    def make_view(
        self,
        *,
        series: tuple[SeriesView, ...] = (),
        counters: tuple[tuple[str, str], ...] = (),
        output_tail: tuple[str, ...] = (),
        details: tuple[tuple[str, str], ...] = (),
        actions: tuple[str, ...] = (),
        badges: tuple[str, ...] | None = None,
        target: str | None = None,
        state: str | None = None,
    ) -> SessionSnapshot:
        """A SessionSnapshot of this session: what every kind shares filled in, the rest given
        (``badges``, ``target`` and ``state`` default to the session's own).

        Every text in it is made safe to draw here (:func:`console.sanitize.clean`): output
        tails, errors and evidence come from remote hosts and programs.
        """
        last = self.ctx.last_event
        view = SessionSnapshot(
            id=self.id,
            kind=self.kind,
            group=self.ctx.group,
            target=self.target if target is None else target,
            state=self.state if state is None else state,
            badges=self.badges if badges is None else badges,
            series=series,
            counters=counters,
            last_event=last.line() if last is not None else "",
            output_tail=output_tail,
            details=details,
            actions=actions,
        )
        if all_unchanged(_texts(view)):
            return view  # the common case: one scan of every text at once
        mask = self.ctx.secrets.text

        def safe(text: str) -> str:
            # Masked before it is cut: a cut through a secret leaves a head no redactor
            # (the exports') recognises.
            return clean(mask(text))

        return replace(
            view,
            target=safe(view.target),
            last_event=safe(view.last_event),
            badges=tuple(safe(text) for text in view.badges),
            output_tail=tuple(safe(text) for text in view.output_tail),
            actions=tuple(safe(text) for text in view.actions),
            counters=tuple((safe(k), safe(v)) for k, v in view.counters),
            details=tuple((safe(k), safe(v)) for k, v in view.details),
        )


def _texts(view: SessionSnapshot) -> list[str]:
    """Every text of a view, for :func:`~console.sanitize.all_unchanged`."""
    texts = [view.target, view.last_event, *view.badges, *view.output_tail, *view.actions]
    for pair in (*view.counters, *view.details):
        texts.extend(pair)
    return texts


class KindRuntime:
    """The sessions of one kind in one run, plus anything they share (an embedded server)."""

    def __init__(self, sessions: Sequence[Session]) -> None:
        self.sessions: list[Session] = list(sessions)

    async def start(self) -> None:
        """Prepare shared resources before the sessions start."""

    async def stop(self) -> None:
        """Release shared resources after every session has stopped."""

    def attach(self, sessions: Mapping[str, Session]) -> None:
        """Called once every kind's sessions exist (links route the sessions behind them)."""

    def resolve(self, target: str) -> list[Session]:
        """The sessions ``target`` names: ``all``, a group name or a session id."""
        if target == "all":
            return list(self.sessions)
        return [s for s in self.sessions if s.ctx.group == target or s.id == target]

    def reach(self, targets: Sequence[Session]) -> tuple[str, ...]:
        """The session ids a fault on ``targets`` reaches: recorded, and awaited for recovery."""
        return tuple(s.id for s in targets)

    def tables(self, elapsed: float) -> RunTables | None:
        """This kind's part of the end-of-run breakdown (requests by name, failures by message,
        checks, scenarios); ``elapsed`` is the run's active seconds, the denominator of rates."""
        return None

    async def prepare(self, action: str, target: str, params: Mapping[str, Any]) -> None:
        """Before targets are resolved: make what an action names (``net.create``)."""

    async def inject(
        self,
        action: str,
        targets: Sequence[Session],
        params: Mapping[str, Any],
        fault: FaultRecord,
    ) -> dict[str, str]:
        """Apply ``action`` to ``targets``; return ``{session id: reason}`` for each target it
        could not apply to. The engine expects recovery only from the sessions it reached.

        Kinds with shared resources override this for kind-wide faults (``ssh.server_restart``)
        and raise :class:`FaultNotApplicable` when the shared resource itself refuses.
        """
        refused: dict[str, str] = {}
        for session in targets:
            try:
                await session.inject(action, params, fault)
            except FaultNotApplicable as exc:
                refused.update(dict.fromkeys(self.reach([session]), str(exc)))
                continue
            self.reached(action, session)
        return refused

    def reached(self, action: str, session: Session) -> None:
        """``action`` took on ``session``: mark it faulted, and whatever else the fault disrupts."""
        session.mark_fault()


@dataclass(frozen=True)
class SessionKind:
    """A session kind's declaration: config schema, metrics, faults and a factory."""

    name: str
    config_type: type  # a dataclass; see console.config for field conventions
    metrics: tuple[MetricSpec, ...]
    faults: Mapping[str, FaultSpec]
    create: Callable[[Sequence[Any], RunEnv], KindRuntime]
    figures: Callable[[Any], Mapping[str, Any]] | None = None  # extra headless summary figures
