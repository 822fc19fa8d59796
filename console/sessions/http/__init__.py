"""The ``http`` session kind: k6-style scenarios in worker processes, probes, an embedded target.

Modules: :mod:`.config` (the ``[[http]]`` schema), :mod:`.executors` and :mod:`.flow` (what a
worker runs), :mod:`.client` (one connection per VU), :mod:`.worker` (the worker process),
:mod:`.session` (the engine side, one pane per worker), :mod:`.view` (its pane), :mod:`.probes` (resilience verdicts)
and :mod:`.catalog` (metrics with k6's names).

Faults and controls: ``http.pause`` / ``http.resume`` / ``http.rate_up`` / ``http.rate_down`` /
``http.burst`` reach the workers; ``http.error_rate`` / ``http.latency`` / ``http.stall`` /
``http.dependency_down`` / ``http.dependency_up`` / ``http.clear`` flip the embedded target's
switches (once, whatever the target count), and apply only to groups using it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from console.secrets import NO_SECRETS, Secrets
from console.sessions.base import (
    FaultNotApplicable,
    FaultSpec,
    KindRuntime,
    RunEnv,
    Session,
    SessionKind,
)
from console.sessions.http.catalog import METRICS, TARGET_ACTIONS
from console.sessions.http.config import MAX_BURST, MAX_RATE, HttpGroupConfig
from console.sessions.http.executors import MAX_SCALE
from console.sessions.http.session import HttpSession, RequestTally
from console.sessions.http.tables import build as build_tables
from console.snapshot import FaultRecord, RunSnapshot, RunTables

__all__ = ["KIND", "HttpRuntime"]


class HttpRuntime(KindRuntime):
    """The HTTP sessions of a run and the embedded target they may share."""

    def __init__(
        self,
        sessions: Sequence[HttpSession],
        embedded_config: HttpGroupConfig | None,
        secrets: Secrets = NO_SECRETS,
    ) -> None:
        self.secrets = secrets
        super().__init__(sessions)
        self.http_sessions = list(sessions)
        shared: dict[str, tuple[dict[str, RequestTally], RequestTally]] = {}
        for session in self.http_sessions:
            requests, total = shared.setdefault(session.ctx.group, ({}, RequestTally()))
            session.requests, session.request_total = requests, total
        self.embedded_config = embedded_config
        self.target: Any = None  # EmbeddedTarget, imported lazily

    async def start(self) -> None:
        config = self.embedded_config
        if config is None:
            return
        from console.targets.http_control import EmbeddedTarget

        self.target = EmbeddedTarget(
            breaker_timeout=config.breaker_timeout,
            capacity=config.capacity,
            queue=config.queue,
            env=self.secrets.child_env(),
        )
        url = await self.target.start()
        for session in self.http_sessions:
            if session.embedded:
                session.base_url = url
                session.target = url

    def tables(self, elapsed: float) -> RunTables:
        return build_tables(self.http_sessions, elapsed, self.secrets)

    async def stop(self) -> None:
        if self.target is not None:
            await self.target.stop()
            self.target = None

    async def inject(
        self,
        action: str,
        targets: Sequence[Session],
        params: Mapping[str, Any],
        fault: FaultRecord,
    ) -> dict[str, str]:
        """Flip the shared target's switches once; refuse the sessions it does not count for.

        A stall is a disruption only for sessions with traffic to recover: probe-only ones
        are refused (the target is still stalled) so recovery criteria do not count them.
        """
        if action not in TARGET_ACTIONS:
            return await super().inject(action, targets, params, fault)
        reached = [s for s in targets if isinstance(s, HttpSession) and s.embedded]
        refused = {s.id: "does not use the embedded target" for s in targets if s not in reached}
        if self.target is None or not reached:
            return refused or {s.id: "no embedded HTTP target in this run" for s in targets}
        switches: dict[str, Any]
        if action == "error_rate":
            switches = {"error_rate": float(params.get("rate", 0.2))}
        elif action == "latency":
            switches = {"latency": float(params.get("delay", 0.2))}
        elif action == "stall":
            switches = {"stall": True, "stall_for": float(params.get("duration", 0.0))}
        elif action == "dependency_down":
            switches = {"dependency_down": True}
        elif action == "dependency_up":
            switches = {"dependency_down": False}
        else:
            switches = {"clear": True}
        try:
            await self.target.set_faults(**switches)
        except (OSError, TimeoutError, ValueError) as exc:  # URLError is an OSError
            raise FaultNotApplicable(f"embedded target did not accept {action}: {exc}") from exc
        for session in reached:
            if action == "stall" and not session.has_flow:
                refused[session.id] = "sends no traffic: no stall recovery to measure"
                continue
            session.target_fault(action)
            session.mark_fault()
        return refused


def create(groups: Sequence[HttpGroupConfig], env: RunEnv) -> HttpRuntime:
    sessions: list[HttpSession] = []
    embedded: HttpGroupConfig | None = None
    base_dir = env.profile_path.parent if env.profile_path else None
    for group in groups:
        is_embedded = group.target_url == "embedded"
        if is_embedded and (embedded is None or (group.probes and not embedded.probes)):
            embedded = group  # the target's settings come from the first group with probes
        for index in range(group.count):
            sid = f"{group.name}#{index}"
            host = "embedded" if is_embedded else group.target_url
            ctx = env.context(sid, "http", group.name, host)
            common: dict[str, Any] = {
                "index": index,
                "workers": group.count,
                "run_probes": index == 0,
                "base_dir": base_dir or env.run_dir,
                # The scenario's clock starts when its worker is ready, before the run's
                # (which waits for every session): it ends on time, not cut by the stop.
                "run_duration": env.duration,
                "embedded": is_embedded,
            }
            if env.cluster is not None:  # the worker is an actor on a cluster node
                from console.sessions.http.remote import RayHttpSession

                sessions.append(RayHttpSession(ctx, group, cluster=env.cluster, **common))
            else:
                sessions.append(HttpSession(ctx, group, **common))
    return HttpRuntime(sessions, embedded, env.secrets)


def figures(snapshot: Any) -> Mapping[str, Any]:
    """Headless summary figures: throughput, p95, failures, drops, and each probe's verdict."""
    if not isinstance(snapshot, RunSnapshot):
        return {}
    figures: dict[str, Any] = {}
    for name, key in (
        ("http_reqs", "rate"),
        ("http_req_duration", "p(95)"),
        ("http_req_failed", "rate"),
        ("dropped_iterations", "count"),
        ("resilience_score", "value"),
    ):
        metric = snapshot.metric(name)
        value = metric.get(key) if metric is not None else None
        if value is not None:
            figures[f"{name} {key}"] = round(value, 4)
    for session in snapshot.sessions:
        for label, text in session.details:
            if label.startswith("probe "):
                figures[f"{session.id} {label}"] = text
    return figures


_CONTROL = "control: logged like a fault, nothing to recover from"
_MAX_BY = MAX_SCALE - 1.0  # rate_up by 9900% is the most a scale can go in one step
KIND = SessionKind(
    name="http",
    config_type=HttpGroupConfig,
    metrics=METRICS,
    faults={
        "pause": FaultSpec(
            "Pause the load: VUs finish their iteration, arrivals stop (" + _CONTROL + ").",
            recovers=False,
            until=("resume",),
        ),
        "resume": FaultSpec("Resume the load.", recovers=False),
        "rate_up": FaultSpec(
            "Raise the arrival rate or VUs by `by` (default 25%); at most 100x the "
            "profile's, and never above 1000000/s or 10000 VUs per worker process.",
            {"by": "percent"},
            recovers=False,
            limits={"by": {"ge": 0.0, "le": _MAX_BY}},
        ),
        "rate_down": FaultSpec(
            "Lower the arrival rate or VUs by `by` (default 25%); at least 1/100 of the profile's.",
            {"by": "percent"},
            recovers=False,
            limits={"by": {"ge": 0.0, "le": _MAX_BY}},
        ),
        "set_rate": FaultSpec(
            "Arrival-rate executors: hold the group's rate at `rate` iterations per second to "
            "the end of the scenario (each worker takes its share; a ramp stops ramping).",
            {"rate": "rate"},
            recovers=False,
            limits={"rate": {"gt": 0.0, "le": MAX_RATE}},  # as the session checks it
            required=("rate",),
        ),
        "burst": FaultSpec(
            f"Start `count` extra iterations at once (default 50, at most {MAX_BURST}, as a "
            "group's VUs), each on its own connection.",
            {"count": "int"},
            recovers=False,
            limits={"count": {"le": MAX_BURST}},  # as the session checks it
        ),
        # Conditions that last until cleared: nothing to recover from while they hold.
        "error_rate": FaultSpec(
            "Embedded target: answer `rate` of requests with 500 (default 20%) until cleared.",
            {"rate": "percent"},
            recovers=False,
            until=("clear",),
        ),
        "latency": FaultSpec(
            "Embedded target: add `delay` to every response (default 200ms) until cleared.",
            {"delay": "duration"},
            recovers=False,
            until=("clear",),
        ),
        # Recovered = requests succeed again for a sustained window after the stall ends;
        # sessions without traffic (probe-only) refuse it.
        "stall": FaultSpec(
            "Embedded target: hold every response until cleared (or for `duration`); "
            "recovered once requests succeed for 1s with no failure.",
            {"duration": "duration"},
            until=("clear",),
        ),
        "dependency_down": FaultSpec(
            "Embedded target: fail the schema store behind the circuit breaker until "
            "dependency_up.",
            recovers=False,
            until=("dependency_up", "clear"),
        ),
        "dependency_up": FaultSpec("Embedded target: bring the schema store back.", recovers=False),
        "clear": FaultSpec("Embedded target: clear every fault switch.", recovers=False),
    },
    create=create,
    figures=figures,
)
