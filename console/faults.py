"""Faults in a run: the schedule, replays, injection, withdrawal and the record.

:class:`FaultInjector` is the one home for everything a fault goes through. A fault comes from
a **source** (:data:`FAULT_SOURCES`): the profile's ``[[faults]]`` schedule, a key, a typed
command, the API, a replay of an earlier run, or it is **observed** (a crash or drop nobody
injected). It names an action (``pty.kill``), a target (``all``, a group or a session) and
optionally a random ``pick``; the kind's runtime applies it and may refuse it for some sessions
(:class:`~console.errors.FaultNotApplicable`), which are then withdrawn from the record and from
recovery tracking. A fault that reached no session did not happen and leaves no record.

The record keeps the newest :data:`RECORD_CAP` faults (a week-long soak must not grow without
bound) and :attr:`FaultInjector.total` counts every one, so headers and summaries show the true
number and the report can say how many it leaves out.
"""

from __future__ import annotations

import random
import traceback
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any, NoReturn, Protocol

from console.criteria import RecoveryTracker
from console.errors import FaultNotApplicable
from console.events import Event
from console.profile import FaultPlan
from console.replay import ReplayFault
from console.sessions.base import KindRuntime, Session, SessionKind
from console.snapshot import FAULT_SOURCES, FaultRecord
from console.units import UnitError, format_duration, parse_duration

__all__ = [
    "FAULT_SOURCES",
    "RECORD_CAP",
    "FaultInjector",
    "after_end_text",
    "fault_times",
    "faults_after_end",
    "seconds_text",
]

RECORD_CAP = 500


class _Log(Protocol):
    def __call__(self, name: str, detail: str = "", **kw: Any) -> Event: ...


def fault_times(plan: FaultPlan, duration: float) -> Iterator[float]:
    """When a scheduled fault fires: its ``at`` times, then every ``every`` until the end.

    A time at or after the end is not a fault of this run: it could only land on sessions
    already stopping, and no criterion could judge it (:func:`faults_after_end` warns).
    """
    times = sorted(plan.times)
    yield from (t for t in times if t < duration)
    if plan.every:
        t = (times[-1] if times else 0.0) + plan.every
        while t < duration:
            yield t
            t += plan.every


def _own_duration(params: Mapping[str, Any]) -> float | None:
    """How long a fault lasts by itself (its ``duration`` or ``down``), if it says."""
    for key in ("duration", "down"):
        try:
            seconds = parse_duration(params.get(key))
        except UnitError:
            continue
        if seconds > 0:
            return seconds
    return None


def _names_of(ids: Sequence[str]) -> str:
    return ", ".join(ids[:6]) + (f" and {len(ids) - 6} more" if len(ids) > 6 else "")


def _names(sessions: Sequence[Session]) -> str:
    return _names_of([s.id for s in sessions])


def faults_after_end(plans: Iterable[FaultPlan], duration: float) -> list[tuple[str, float]]:
    """``(action, first time)`` of each scheduled fault that never fires before ``duration``."""
    late = []
    for plan in plans:
        if next(fault_times(plan, duration), None) is None:
            first = min(plan.times) if plan.times else (plan.every or 0.0)
            late.append((plan.action, first))
    return sorted(late, key=lambda fault: fault[1])


def after_end_text(late: Sequence[tuple[str, float]], duration: float) -> str:
    """``"ssh.drop is scheduled at 30s; the run ends at 20s"``: the start-of-run warning."""
    faults = ", ".join(f"{action} at {seconds_text(at)}" for action, at in late)
    verb = "is" if len(late) == 1 else "are"
    return (
        f"{faults} {verb} scheduled at or after the end: the run ends at {seconds_text(duration)}"
    )


def seconds_text(t: float) -> str:
    """Run seconds as a profile writes them: ``30s``, ``1.5s``, ``1m30s``."""
    return f"{t:g}s" if t < 60 else format_duration(t)


class FaultInjector:
    """Schedules, injects, withdraws and records the faults of one run."""

    def __init__(
        self,
        *,
        kinds: Mapping[str, SessionKind],
        runtimes: Mapping[str, KindRuntime],
        recoveries: RecoveryTracker,
        now: Callable[[], float],
        timestamp: Callable[[], str],
        run_seconds: Callable[[], float] | None = None,
        log: _Log,
        on_fault: Callable[[], None],
        rng: random.Random,
    ) -> None:
        self._kinds = kinds
        self._runtimes = runtimes
        self._recoveries = recoveries
        self._now = now  # the recovery clock: pauses included, as sessions live through them
        # A fault's time: the run seconds the header, the schedule and a replay count (pauses
        # excluded), so a replay lands where the original did.
        self._run_seconds = run_seconds or now
        self._timestamp = timestamp
        self._log = log
        self._on_fault = on_fault  # counts faults_injected
        self._rng = rng
        self.records: list[FaultRecord] = []
        # Ids of faults recorded whose sessions are still being told: a refusal may yet take
        # sessions out of the record, or the record away (readers of records wait for them).
        self.in_flight: set[int] = set()
        self.total = 0
        self._next_id = 0

    # ----- scheduled and replayed faults ---------------------------------------------------

    async def play(
        self,
        timed: Iterable[tuple[float, dict[str, Any]]],
        source: str,
        wait_until: Callable[[float], Awaitable[None]],
    ) -> None:
        """Inject each ``(run seconds, inject arguments)`` at its time; times come in order."""
        for at, arguments in timed:
            await wait_until(at)
            try:
                await self.inject(**arguments, source=source)
            except FaultNotApplicable:
                pass  # already logged as fault_not_applicable; the schedule goes on

    @staticmethod
    def scheduled(plan: FaultPlan, duration: float) -> Iterator[tuple[float, dict[str, Any]]]:
        arguments = {"target": plan.target, "pick": plan.pick, "params": plan.params}
        for at in fault_times(plan, duration):
            yield at, {"action": plan.action, **arguments}

    @staticmethod
    def replayed(replay: Sequence[ReplayFault]) -> Iterator[tuple[float, dict[str, Any]]]:
        """Each fault at its time, and the action that ended it at the time it did."""
        timed = []
        for fault in replay:
            arguments = {"target": fault.target, "sessions": fault.sessions}
            timed.append((fault.t, {"action": fault.action, "params": fault.params, **arguments}))
            if fault.ended is not None and fault.ended_by:
                timed.append((fault.ended, {"action": fault.ended_by, **arguments}))
        # Stable: a fault and its end at the same time stay in that order.
        yield from sorted(timed, key=lambda item: item[0])

    # ----- injection -----------------------------------------------------------------------

    def resolve_targets(self, kind: str, target: str) -> list[Session]:
        runtime = self._runtimes.get(kind)
        return [] if runtime is None else runtime.resolve(target)

    async def inject(
        self,
        action: str,
        *,
        target: str = "all",
        params: Mapping[str, Any] | None = None,
        pick: int | None = None,
        source: str = "api",
        sessions: Sequence[str] = (),
    ) -> FaultRecord:
        """Apply a fault or control; raise FaultNotApplicable with a reason when it cannot.

        ``sessions`` names exact session ids (a replay); otherwise ``target`` and ``pick`` choose.
        """
        kind_name, _, name = action.partition(".")
        kind = self._kinds.get(kind_name)
        if kind is None or name not in kind.faults:
            reason = (
                f"{action}: no {kind_name} sessions in this run"
                if kind is None
                else f"unknown action {action}"
            )
            self._refuse(reason, kind=kind_name or "run", source=source)
        runtime = self._runtimes[kind_name]
        try:  # a kind may need to make its target first (a link created through the API)
            await runtime.prepare(name, target, dict(params or {}))
        except FaultNotApplicable as exc:
            self._refuse(str(exc), kind=kind_name, source=source)
        targets = self.resolve_targets(kind_name, target)
        if sessions:
            wanted = set(sessions)
            targets = [s for s in targets if s.id in wanted or set(runtime.reach([s])) & wanted]
        elif pick is not None and pick < len(targets):
            targets = self._rng.sample(targets, pick)
        if not targets:
            self._refuse(f"{action}: no session matches {target!r}", kind=kind_name, source=source)
        if any(name in other.until for other in kind.faults.values()):
            return await self._end(kind_name, name, targets, dict(params or {}), source)
        spec = kind.faults[name]
        ids = runtime.reach(targets)  # a link's fault reaches the sessions behind it
        record = self.record(action, target, ids, source, dict(params or {}), spec.recovers)
        self.in_flight.add(record.id)
        try:
            refused = await runtime.inject(name, targets, record.params, record)
        except FaultNotApplicable as exc:  # the kind refused as a whole (a shared target)
            refused = dict.fromkeys(ids, str(exc))
        except Exception as exc:  # a kind's bug or a dead target must not end the schedule
            refused = dict.fromkeys(ids, f"{action} failed: {type(exc).__name__}: {exc}")
            self._log(
                "fault_error",
                refused[ids[0]],
                kind=kind_name,
                source=source,
                fault_id=record.id,
                success=False,
                data={"traceback": "".join(traceback.format_exception(exc))[-2000:]},
            )
        finally:  # the withdrawal below is synchronous: no reader sees the gap
            self.in_flight.discard(record.id)
        if refused:
            record = self._withdraw(record, refused, source)
            if not record.sessions:
                raise FaultNotApplicable(next(iter(refused.values())))
        self._on_fault()
        return record

    def open_faults(self, kind_name: str, ender: str) -> list[FaultRecord]:
        """The faults of a kind still in force that ``ender`` (``resume``) would end."""
        kind = self._kinds.get(kind_name)
        if kind is None:
            return []
        now = self._run_seconds()
        found = []
        for record in self.records:
            kind_of, _, name = record.action.partition(".")
            spec = kind.faults.get(name) if kind_of == kind_name else None
            if spec is None or ender not in spec.until or record.ended is not None:
                continue
            lasts = _own_duration(record.params)
            if lasts is not None and record.t + lasts <= now:
                continue  # it ended by itself (a hang with a duration)
            found.append(record)
        return found

    async def _end(
        self,
        kind_name: str,
        name: str,
        targets: Sequence[Session],
        params: dict[str, Any],
        source: str,
    ) -> FaultRecord:
        """End the faults ``name`` ends on ``targets``: applied only to the sessions they
        reached, recorded as their end (``ended``, ``fault_ended`` event), never as a fault."""
        action = f"{kind_name}.{name}"
        runtime = self._runtimes[kind_name]
        wanted = set(runtime.reach(targets)) | {s.id for s in targets}
        ending = [r for r in self.open_faults(kind_name, name) if set(r.sessions) & wanted]
        if not ending:
            kind = self._kinds[kind_name]
            ends = [f"{kind_name}.{n}" for n, spec in kind.faults.items() if name in spec.until]
            self._refuse(
                f"{action}: no {' or '.join(ends)} in progress on {_names(targets)}",
                kind=kind_name,
                source=source,
            )
        reached = {s for r in ending for s in r.sessions}
        hit = [s for s in targets if s.id in reached or set(runtime.reach([s])) & reached]
        try:
            await runtime.inject(name, hit, params, ending[0])
        except FaultNotApplicable:
            pass  # e.g. a hang that ended by itself a moment ago: the fault is over either way
        t = round(self._run_seconds(), 3)
        ended = []
        for record in ending:
            done = replace(record, ended=t, ended_by=action)
            ended.append(done)
            index = next((i for i, f in enumerate(self.records) if f.id == record.id), None)
            if index is not None:
                self.records[index] = done
            self._log(
                "fault_ended",
                f"{record.action} on {_names_of(record.sessions)} after {done.duration:g}s",
                session_id=record.sessions[0] if len(record.sessions) == 1 else None,
                kind=kind_name,
                source=source,
                fault_id=record.id,
                data={"action": record.action, "ended_by": action, "t": t,
                      "duration_s": done.duration, "sessions": list(record.sessions)},
            )  # fmt: skip
        return ended[0]

    def observed(self, kind: str, cause: str, session_id: str) -> None:
        """An unsolicited crash or drop counts as a fault too, with source ``observed``."""
        if self._recoveries.is_open(session_id):
            return
        self.record(f"{kind}.{cause}", session_id, (session_id,), "observed", {}, True)
        self._on_fault()

    def _refuse(self, reason: str, *, kind: str, source: str) -> NoReturn:
        self._log("fault_not_applicable", reason, kind=kind, source=source, success=False)
        raise FaultNotApplicable(reason)

    def _withdraw(
        self, record: FaultRecord, refused: Mapping[str, str], source: str
    ) -> FaultRecord:
        """Take the sessions a fault did not reach out of its record and its recovery; a fault
        that reached none is dropped from the record altogether (it did not happen)."""
        self._recoveries.withdraw(record.id, tuple(refused))
        note = "; ".join(dict.fromkeys(refused.values()))
        reached = tuple(s for s in record.sessions if s not in refused)
        updated = replace(record, sessions=reached, note=note)
        index = next((i for i, f in enumerate(self.records) if f.id == record.id), None)
        if index is not None:
            if reached:
                self.records[index] = updated
            else:
                del self.records[index]
        if not reached:
            self.total -= 1
        self._log(
            "fault_not_applicable",
            note,
            kind=record.action.partition(".")[0],
            source=source,
            fault_id=record.id,
            success=False,
            data={"refused": dict(refused)},
        )
        return updated

    def record(
        self,
        action: str,
        target: str,
        sessions: tuple[str, ...],
        source: str,
        params: dict[str, Any],
        recovers: bool,
    ) -> FaultRecord:
        """Enter a fault in the record and the log, and open its recovery when it has one."""
        self._next_id += 1
        record = FaultRecord(
            id=self._next_id,
            t=round(self._run_seconds(), 3),
            ts=self._timestamp(),
            action=action,
            target=target,
            sessions=sessions,
            source=source,
            params=params,
        )
        self.records.append(record)
        del self.records[:-RECORD_CAP]
        self.total += 1
        shown = ", ".join(sessions[:6]) + (
            f" and {len(sessions) - 6} more" if len(sessions) > 6 else ""
        )
        self._log(
            "fault_observed" if source == "observed" else "fault_injected",
            f"{action} on {shown}",
            session_id=sessions[0] if len(sessions) == 1 else None,
            kind=action.partition(".")[0],
            source=source,
            fault_id=record.id,
            data={
                "action": action,
                "target": target,
                "sessions": list(sessions),
                "params": params,
                "t": record.t,
            },
        )
        if recovers:
            self._recoveries.opened(record.id, action, round(self._now(), 3), sessions)
        return record
