"""SSH sessions (``[[ssh]]`` groups): SPIKE-2's connection-pool stress test, and the gaps it left.

Each session holds one SSH connection (asyncssh) carrying exec polling of the remote host's
CPU, memory and disk, and an interactive PTY driven in cycles; it reconnects after every drop
with capped, jittered attempts. Events use the spike's names (``connected``, ``connect_failed``,
``disconnect_injected``, ``reconnected``, ``reconnect_failed``, ``exec_poll``,
``exec_poll_error``, ``pty_cycle``, ``pty_error``) so the runbook's extraction commands work on
Stressdeck's ``events.jsonl``; ``connection_lost`` marks a drop the console did not cause, and
``ssh_config_error`` (once per config, before sessions start) an OpenSSH config that cannot be read.

Modules: :mod:`~console.sessions.ssh.config` (the group's keys and targets),
:mod:`~console.sessions.ssh.connect` (keys, agent, host keys), :mod:`~console.sessions.ssh.session`
(the reconnect loop, polling), :mod:`~console.sessions.ssh.channel` (the PTY channel),
:mod:`~console.sessions.ssh.parse` (/proc and df parsers).

When a group's target is ``embedded`` the runtime starts the embedded SSH server
(:mod:`console.targets.ssh_server`) in its own process under the run directory, and sessions pin
its generated host key. Kind-wide faults live in :class:`SshRuntime.inject`: ``server_restart``
restarts that server; ``auth_fail`` arms authentication failures on it through its control
channel (on a real host, the session offers a throwaway key instead).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Mapping, Sequence
from typing import Any

from console.events import Event
from console.metrics import MetricSpec, MetricType
from console.sessions.base import (
    FaultNotApplicable,
    FaultSpec,
    KindRuntime,
    RunEnv,
    Session,
    SessionKind,
)
from console.sessions.ssh.config import SshGroupConfig, expand_targets
from console.sessions.ssh.connect import KeyStore, SshConfigError, config_paths, read_ssh_config
from console.sessions.ssh.session import SshSession
from console.snapshot import FaultRecord
from console.targets.ssh_control import EmbeddedSshTarget, TargetUnavailable
from console.units import parse_duration

__all__ = ["KIND", "SshGroupConfig", "SshRuntime", "SshSession", "summary"]

METRICS = (
    MetricSpec(
        "ssh_connect_time",
        MetricType.TREND,
        "ms",
        "Time to connect, authenticate and open the PTY channel.",
    ),
    MetricSpec(
        "ssh_reconnect_time",
        MetricType.TREND,
        "ms",
        "From a drop to usable again (backoff included).",
    ),
    MetricSpec(
        "ssh_reconnect_success",
        MetricType.RATE,
        "",
        "Share of drops after which the session came back.",
    ),
    MetricSpec("ssh_reconnect_attempts", MetricType.COUNTER, "count", "Reconnect attempts made."),
    MetricSpec(
        "ssh_abnormal_ends",
        MetricType.COUNTER,
        "count",
        "Sessions that ended failed (SPIKE-2: must be 0).",
    ),
    MetricSpec(
        "ssh_exec_latency",
        MetricType.TREND,
        "ms",
        "Round trip of one poll command over an exec channel.",
    ),
    MetricSpec("ssh_poll_failures", MetricType.COUNTER, "count", "Polls that failed or timed out."),
    MetricSpec(
        "ssh_remote_cpu", MetricType.GAUGE, "%", "Remote CPU busy, from /proc/stat deltas.", "max"
    ),
    MetricSpec(
        "ssh_remote_mem", MetricType.GAUGE, "%", "Remote memory in use, from /proc/meminfo.", "max"
    ),
    MetricSpec("ssh_remote_disk", MetricType.GAUGE, "%", "Remote disk use of /, from df.", "max"),
    # A monitor's (monitor = true) figures of the host under test.
    MetricSpec("ssh_remote_load", MetricType.GAUGE, "", "Remote one-minute load average.", "max"),
    MetricSpec(
        "ssh_remote_disk_busy",
        MetricType.GAUGE,
        "%",
        "Remote disks' time busy with I/O, from /proc/diskstats.",
        "max",
    ),
    MetricSpec(
        "ssh_remote_disk_read", MetricType.GAUGE, "bytes", "Remote disk reads per second.", "max"
    ),
    MetricSpec(
        "ssh_remote_disk_write", MetricType.GAUGE, "bytes", "Remote disk writes per second.", "max"
    ),
    MetricSpec(
        "ssh_remote_net_rx", MetricType.GAUGE, "bytes", "Remote bytes received per second.", "max"
    ),
    MetricSpec(
        "ssh_remote_net_tx", MetricType.GAUGE, "bytes", "Remote bytes sent per second.", "max"
    ),
    MetricSpec("ssh_pty_bytes", MetricType.COUNTER, "bytes", "Bytes read from PTY channels."),
)

FAULTS: Mapping[str, FaultSpec] = {
    "drop": FaultSpec("Drop the SSH connection now; the session reconnects."),
    "auth_fail": FaultSpec(
        "Make the next `count` connection attempts fail authentication, and drop the "
        "connection so a reconnect happens now.",
        {"count": "int"},
    ),
    "server_restart": FaultSpec(
        "Embedded target only: stop listening, drop every connection, come back after `down`.",
        {"down": "duration"},
    ),
    "reconnect": FaultSpec("Retry a failed session now (a manual reconnect)."),
}


class SshRuntime(KindRuntime):
    """The SSH sessions of a run, the key store and (when asked for) the embedded server."""

    def __init__(self, sessions: Sequence[SshSession], env: RunEnv) -> None:
        super().__init__(sessions)
        self.ssh_sessions = list(sessions)
        self.env = env
        self.target: EmbeddedSshTarget | None = None

    async def start(self) -> None:
        await self._check_configs()
        if any(s.endpoint.embedded for s in self.ssh_sessions):
            embedded = [s for s in self.ssh_sessions if s.endpoint.embedded]
            self.target = EmbeddedSshTarget(
                self.env.run_dir / "ssh-target",
                keep_keys=any(s.cfg.keep_target_keys for s in embedded),
                env=self.env.secrets.child_env(),
            )
            info = await self.target.start()
            for session in self.ssh_sessions:
                if session.endpoint.embedded:
                    session.attach_embedded(info)

    async def _check_configs(self) -> None:
        """Read each group's OpenSSH config once before any session starts.

        One that cannot be read is one ``ssh_config_error`` event naming the file and line;
        the sessions it governs start ``failed`` with that message in their pane, instead of
        each failing every connection attempt with a message of asyncssh's.
        """
        checked: dict[str, tuple[str, Event] | None] = {}
        services = self.env.services
        for session in self.ssh_sessions:
            host = "127.0.0.1" if session.endpoint.embedded else session.endpoint.host
            key = "\0".join((*config_paths(session.cfg), host, str(session.endpoint.port)))
            if key not in checked:
                checked[key] = None
                try:
                    await asyncio.to_thread(
                        read_ssh_config, session.cfg, host, session.endpoint.port
                    )
                except SshConfigError as exc:
                    event = services.make_event(
                        "ssh_config_error",
                        session_id=None,
                        host=None,
                        kind="ssh",
                        detail=str(exc),
                        success=False,
                    )
                    checked[key] = (str(exc), services.log_event(event))
            if (error := checked[key]) is not None:
                session.refuse(*error)

    async def stop(self) -> None:
        if self.target is not None:
            await self.target.stop()

    async def inject(
        self,
        action: str,
        targets: Sequence[Session],
        params: Mapping[str, Any],
        fault: FaultRecord,
    ) -> dict[str, str]:
        """Kind-wide faults go to the embedded target; the rest to each session.

        Returns the sessions the action did not reach, with why. Raises FaultNotApplicable when
        the embedded target cannot carry out the command at all (it died, or went silent).
        """
        if action not in ("server_restart", "auth_fail") or self.target is None:
            if action == "server_restart":
                return {s.id: "ssh.server_restart needs the embedded target" for s in targets}
            return await super().inject(action, targets, params, fault)
        target = self.target
        skipped: dict[str, str] = {}
        reached: list[SshSession] = []
        others: list[Session] = []
        for session in targets:
            if not isinstance(session, SshSession) or session.embedded is None:
                others.append(session)
            elif (why := session.unreachable_by(action)) is not None:
                skipped[session.id] = why
            else:
                reached.append(session)
        if action == "server_restart":
            skipped.update({s.id: "ssh.server_restart needs the embedded target" for s in others})
            if reached:
                await self._restart(target, reached, _seconds(params.get("down", 5.0)), fault)
            return skipped
        if reached:
            count = int(params.get("count", 1))
            await self._command(target.auth_fail(count * len(reached)), action)
            for session in reached:
                session.request_drop(f"ssh.auth_fail (fault {fault.id})")
                session.mark_fault()
        if others:
            skipped.update(await super().inject(action, others, params, fault))
        return skipped

    async def _restart(
        self,
        target: EmbeddedSshTarget,
        sessions: Sequence[SshSession],
        down: float,
        fault: FaultRecord,
    ) -> None:
        for session in sessions:
            session.expect_drop(f"ssh.server_restart (fault {fault.id})")
        try:
            await self._command(target.restart(down), "server_restart")
        except FaultNotApplicable:
            for session in sessions:
                session.expect_drop("")  # nothing the console asked for happened
            raise
        for session in sessions:
            session.mark_fault()

    @staticmethod
    async def _command(call: Awaitable[dict[str, Any]], action: str) -> None:
        """Await a control command; any way it can fail becomes FaultNotApplicable."""
        try:
            reply = await call
        except (TargetUnavailable, OSError, EOFError, asyncio.TimeoutError) as exc:
            raise FaultNotApplicable(f"embedded SSH target: {exc}") from None
        if not reply.get("ok"):
            why = reply.get("error", "refused")
            raise FaultNotApplicable(f"embedded SSH target: ssh.{action} {why}")


def _seconds(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) else parse_duration(value)


def create(groups: Sequence[SshGroupConfig], env: RunEnv) -> KindRuntime:
    if env.cluster is not None:  # a pool actor per node holds its share of the connections
        from console.cluster.pool import pool_runtime

        return pool_runtime("ssh", groups, env, _create)
    return _create(groups, env)


def _create(groups: Sequence[SshGroupConfig], env: RunEnv) -> SshRuntime:
    keys = KeyStore()
    sessions: list[SshSession] = []
    for group in groups:
        for index, endpoint in enumerate(expand_targets(group.target_list(), group.count)):
            session_id = f"{group.name}#{index}"
            ctx = env.context(session_id, "ssh", group.name, str(endpoint))
            sessions.append(SshSession(ctx, group, endpoint, keys))
    return SshRuntime(sessions, env)


def figures(snapshot: Any) -> dict[str, Any]:
    """SPIKE-2's summary figures, from the final RunSnapshot."""

    def figure(metric: str, key: str) -> float | None:
        found = snapshot.metric(metric)
        return None if found is None else found.get(key)

    abnormal = figure("ssh_abnormal_ends", "count") or 0.0
    rate = figure("ssh_reconnect_success", "rate")
    p95 = figure("ssh_reconnect_time", "p(95)")
    longest = figure("ssh_reconnect_time", "max")
    return {
        "abnormal_ends": int(abnormal),
        "global_reconnect_rate_pct": None if rate is None else round(rate * 100.0, 1),
        "global_reconnect_p95_ms": None if p95 is None else round(p95, 1),
        "reconnects": int(figure("ssh_reconnect_time", "count") or 0),
        "reconnect_max_ms": None if longest is None else round(longest, 1),
    }


KIND = SessionKind(
    name="ssh",
    config_type=SshGroupConfig,
    metrics=METRICS,
    faults=FAULTS,
    create=create,
    figures=figures,
)
