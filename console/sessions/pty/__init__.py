"""PTY sessions (``[[pty]]``): long-running programs on pseudo-terminals, every byte accounted for.

This reproduces the node-pty stability spike (seed 002) for any program: many concurrent
terminal sessions, output drained without loss, process-tree memory and CPU, crash injection
(SIGKILL, SIGTERM, SIGSTOP hangs) and automatic restart with a measured recovery time.

Modules: :mod:`.process` (one program on a terminal: spawn, drain, exit detection),
:mod:`.session` (states, faults, restarts, metrics), :mod:`.policy` (restart decisions),
:mod:`.output` (counts, bounded screen, lossless file), :mod:`.stats` (process-tree
sampling, memory growth), :mod:`.view` (the console's snapshot); :mod:`console.emit` writes
and verifies the sequence-numbered lines used for output-loss accounting.

States: ``starting`` -> ``running`` <-> ``idle`` (no output for ``idle_after``); ``hung`` (a
``pty.hang`` stopped it); on an exit: ``exited`` (code 0, no restart), ``crashed`` (a signal or
non-zero code, no restart), ``restarting`` (waiting out the backoff), ``failed`` (could not
start, crash loop, restart limit) and ``stopped`` (the run ended while it ran).

Events (``event`` field of the log), all with ``kind = "pty"``:

* ``started`` - a program started; data: pid, argv, attempt.
* ``spawn_failed`` - it could not start (a command that does not exist, a bad cwd): the session
  becomes ``failed`` and the run goes on.
* ``output_idle`` / ``output_resumed`` - output stopped for ``idle_after`` / came back.
* ``input_sent`` - a line of the input script was typed.
* ``exited`` - a clean exit (code 0); ``crashed`` - a signal or a non-zero exit code. Both carry
  ``data.exit_code``, ``data.signal``, ``data.last_lines`` (the output just before the end) and
  ``data.lifetime_s``; for a fault-caused crash ``elapsed_ms`` is the detection time.
* ``restarting`` - a restart is scheduled (data: delay_ms, attempt);
  ``restarted`` - the new program's output flows (``elapsed_ms`` = recovery time since the crash);
  ``restart_failed`` - the new program could not start or died before printing anything.
* ``crash_loop`` - too many unsolicited crashes too fast: no more restarts (``failed``).
* ``hung`` / ``resumed`` - SIGSTOP / SIGCONT of the program's process group.
* ``stopped`` - the run ended and the program was terminated.

Recovery ("output flows again"): after a crash or ``pty.kill`` the session counts as recovered
at the first byte the *new* program prints (output still draining from the dead one does not
count); after ``pty.hang``, at the first byte after SIGCONT. That moment is ``ctx.recovered()``,
the ``restarted`` event and a ``pty_recovery_time`` sample, measured from the fault's signal (or,
for an unsolicited crash, from the moment the exit was seen). A program that never prints, such
as a silent REPL, therefore never counts as recovered: give it an input script that makes it
answer. Crash detection time is measured for crashes a fault caused, from its ``kill()`` to the
exit being seen; an unsolicited crash has no known start.

Metrics are declared in :data:`KIND`; ``pty_session_ok`` is recorded once per session, when its
outcome is known: false for a failed start, a crash loop, a restart limit or an unsolicited
crash; true otherwise (a crash a fault caused and that was recovered from is not a failure).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from console.metrics import MetricSpec, MetricType
from console.sessions.base import FaultSpec, KindRuntime, RunEnv, SessionKind
from console.sessions.pty.config import PtyConfig
from console.sessions.pty.session import PtySession
from console.sessions.pty.stats import scan_trees
from console.snapshot import RunSnapshot

__all__ = ["KIND", "PtyConfig", "PtyRuntime"]


def _metrics() -> tuple[MetricSpec, ...]:
    c, g, r, t = MetricType.COUNTER, MetricType.GAUGE, MetricType.RATE, MetricType.TREND
    return (
        MetricSpec("pty_bytes", c, "bytes", "Output bytes read from all terminals."),
        MetricSpec("pty_lines", c, "count", "Output lines (newlines) read."),
        MetricSpec("pty_output_loss", r, "", "Fraction of expected `stressdeck emit` lines lost."),
        MetricSpec(
            "pty_lines_lost", c, "count", "Emit lines missing (gaps, torn lines, lost tails)."
        ),
        MetricSpec("pty_bytes_lost", c, "bytes", "Bytes of the emit lines lost."),
        MetricSpec(
            "pty_crashes", c, "count", "Programs ended by a signal or a non-zero exit code."
        ),
        MetricSpec("pty_restarts", c, "count", "Programs started again (policy or pty.restart)."),
        MetricSpec("pty_restart_success", r, "", "Restarts whose program printed output again."),
        MetricSpec(
            "pty_crash_detect_time", t, "ms", "From a fault's signal to the exit being seen."
        ),
        MetricSpec(
            "pty_recovery_time", t, "ms", "From a crash to the restarted program's first output."
        ),
        MetricSpec("pty_rss", g, "bytes", "RSS of each session's process tree.", combine="sum"),
        MetricSpec(
            "pty_cpu", g, "%", "CPU of each session's process tree (100 = one core).", combine="sum"
        ),
        MetricSpec(
            "pty_memory_growth",
            g,
            "MB/h",
            "RSS growth of a program's tree per hour.",
            combine="max",
        ),
        MetricSpec(
            "pty_session_ok", r, "", "Sessions that did their work without an abnormal end."
        ),
    )


_FAULTS: dict[str, FaultSpec] = {
    "kill": FaultSpec("SIGKILL the program (the spike's crash test); restarts per policy."),
    "term": FaultSpec("SIGTERM the program; restarts per policy."),
    "hang": FaultSpec(
        "SIGSTOP the program's process group; SIGCONT after `duration` (0: on pty.resume).",
        params={"duration": "duration"},
        until=("resume",),
    ),
    "resume": FaultSpec("SIGCONT a hung program.", recovers=False),
    "restart": FaultSpec("Terminate the program and start it again now."),
}


class PtyRuntime(KindRuntime):
    """The run's PTY sessions plus one shared process-table sampler (a worker thread)."""

    def __init__(self, sessions: Sequence[PtySession], interval: float = 1.0) -> None:
        super().__init__(sessions)
        self.pty_sessions = list(sessions)
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._sample_trees(), name="pty-stats")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _sample_trees(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            roots = {s.pid: s for s in self.pty_sessions if s.pid is not None}
            if roots:
                started = loop.time()
                stats = await asyncio.to_thread(scan_trees, list(roots))
                for pid, session in roots.items():
                    if pid in stats:
                        session.take_stats(pid, stats[pid], started)
            await asyncio.sleep(self.interval)


def _create(groups: Sequence[Any], env: RunEnv) -> KindRuntime:
    sessions: list[PtySession] = []
    for group in groups:
        assert isinstance(group, PtyConfig)
        for index in range(group.count):
            session_id = f"{group.name}#{index}"
            ctx = env.context(session_id, "pty", group.name, "localhost")
            sessions.append(
                PtySession(
                    ctx,
                    group,
                    index=index,
                    run_dir=env.run_dir,
                    profile_dir=env.profile_path.parent,
                )
            )
    return PtyRuntime(sessions)


def figures(snapshot: Any) -> Mapping[str, Any]:
    """Headless summary figures: the spike's loss and crash-recovery numbers at a glance."""
    if not isinstance(snapshot, RunSnapshot):
        return {}
    figures: dict[str, Any] = {}
    for name, key in (
        ("pty_lines_lost", "count"),
        ("pty_bytes_lost", "count"),
        ("pty_output_loss", "rate"),
        ("pty_crashes", "count"),
        ("pty_restarts", "count"),
        ("pty_restart_success", "rate"),
        ("pty_session_ok", "rate"),
    ):
        metric = snapshot.metric(name)
        if metric is not None:
            figures[name] = metric.get(key)
    return figures


KIND = SessionKind(
    name="pty",
    config_type=PtyConfig,
    metrics=_metrics(),
    faults=_FAULTS,
    create=_create,
    figures=figures,
)
