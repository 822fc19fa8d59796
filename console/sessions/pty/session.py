"""One PTY session: a program kept running on a terminal, its output counted and verified.

The session is driven by callbacks from :class:`~console.sessions.pty.process.PtyProcess`
(output, exit) and by loop timers (restart backoff, input script, hang duration); ``run`` only
starts the first program and waits for the end of the run. That keeps exit handling to one
loop iteration: a crash is seen, logged and its restart scheduled in the same callback.

See :mod:`console.sessions.pty` for states, events and metrics.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import signal
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from console.events import WRITE_FAILED
from console.metrics import Series
from console.secrets import ENV_REF
from console.sessions.base import FaultNotApplicable, Session, SessionContext
from console.sessions.pty.output import SessionOutput
from console.sessions.pty.policy import Decision, RestartPolicy
from console.sessions.pty.process import ExitStatus, PtyProcess
from console.sessions.pty.stats import MemoryGrowth, TreeStats
from console.sessions.pty.view import session_view
from console.snapshot import FaultRecord, SessionSnapshot
from console.units import format_bytes, format_duration, parse_duration

if TYPE_CHECKING:
    from console.sessions.pty.config import PtyConfig

__all__ = ["PtySession"]


@dataclass(frozen=True)
class _Ending:
    """How a program ended, as far as what comes next is concerned."""

    status: ExitStatus
    seen: float  # loop time the exit was seen
    at: float  # loop time it was handled
    lifetime: float
    data: dict[str, Any]  # the exited/crashed event's data
    signal_sent: tuple[str, float] | None  # (signal, when) of the fault that ended it, if any
    operator_restart: bool  # pty.restart: not a crash, start again now

    @property
    def solicited(self) -> bool:
        return self.signal_sent is not None or self.operator_restart

    @property
    def crashed(self) -> bool:
        return not self.status.clean and not self.operator_restart


class PtySession(Session):
    kind = "pty"

    def __init__(
        self,
        ctx: SessionContext,
        config: PtyConfig,
        *,
        index: int,
        run_dir: Path,
        profile_dir: Path,
    ) -> None:
        self.config = config
        if isinstance(config.command, str):
            self.argv: list[str] = [config.shell, "-c", config.command]
            target = config.command
        else:
            self.argv = list(config.command)
            target = shlex.join(self.argv)
        super().__init__(ctx, target=target)
        self.index = index
        self.cwd = str(profile_dir / config.cwd) if config.cwd else None
        output_path = run_dir / "output" / f"{ctx.session_id}.log" if config.keep_output else None
        self.policy = RestartPolicy(
            config.restart,
            max_restarts=config.max_restarts,
            backoff=config.backoff,
            backoff_max=config.backoff_max,
            crash_loop_count=config.crash_loop_count,
            crash_loop_window=config.crash_loop_window,
        )
        self.output = SessionOutput(int(config.display_bytes), output_path)
        self.verifier = self.output.verifier
        self.growth = MemoryGrowth(config.memory_warmup, config.memory_min_span)
        self.series = {"output": Series(), "rss": Series()}
        self.proc: PtyProcess | None = None
        self.pid: int | None = None
        self.attempt = 0
        self.crashes = 0
        self.unsolicited_crashes = 0
        self.restarts = 0
        self.last_exit: ExitStatus | None = None
        self.rss = 0.0
        self.cpu_pct = 0.0
        self.outcome: bool | None = None
        self._started_at = 0.0  # loop time of the current program's start
        self._last_output = 0.0
        self._bytes_at_sample = 0
        self._signal_sent: tuple[str, float] | None = None  # (signal name, loop time) of a fault
        self._operator_restart = False
        self._recovery_from: float | None = None  # loop time the outage began
        self._recovery_is_restart = False  # a new program (not a resumed one) must speak
        self._awaiting_output = False  # the new or resumed program has not printed yet
        self._timers: list[asyncio.TimerHandle] = []
        self._input_task: asyncio.Task[None] | None = None
        self._stopping = False
        self._done = asyncio.Event()
        self._cpu_prev: tuple[float, float] | None = None
        self._loss_counted = False
        self._output_dropped_reported = 0

    # ---- lifecycle -------------------------------------------------------------------------
    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    async def run(self) -> None:
        try:
            self.output.open()
            self._spawn()
            await self._done.wait()
        finally:
            if not self._done.is_set():  # cancelled without stop(): release everything now
                self._release()

    async def stop(self) -> None:
        if self._stopping:
            await self._done.wait()
            return
        self._stopping = True
        self._cancel_timers()
        proc = self.proc
        if proc is not None and proc.running:
            await proc.terminate(self.config.stop_grace)
        if self.state in ("running", "idle", "hung", "paused", "starting", "restarting"):
            self.state = "stopped"
        self._settle(self.unsolicited_crashes == 0 and self.state != "failed", "run ended")
        self._release()

    def _release(self) -> None:
        self._cancel_timers()
        if self.proc is not None:
            self.proc.close()
        self.pid = None
        self.output.close()
        self._report_output_loss()
        self._done.set()

    def _cancel_timers(self) -> None:
        for handle in self._timers:
            handle.cancel()
        self._timers.clear()
        if self._input_task is not None:
            self._input_task.cancel()
            self._input_task = None

    def _later(self, delay: float, callback: Callable[[], None]) -> None:
        loop = asyncio.get_running_loop()
        self._timers = [h for h in self._timers if not h.cancelled() and h.when() > loop.time()]
        self._timers.append(loop.call_later(delay, callback))

    def _environment(self) -> dict[str, str]:
        """The console's environment minus the run's secrets, then the profile's ``env``.

        A secret reaches the program only when the profile passes it by name
        (``TOKEN = "${env.TOKEN}"``).
        """
        env = self.ctx.secrets.child_env() if self.config.inherit_env else {}
        env.setdefault("PATH", os.environ.get("PATH", "/usr/bin:/bin"))
        env["TERM"] = self.config.term
        env["COLUMNS"], env["LINES"] = str(self.config.cols), str(self.config.rows)
        for key, value in self.config.env.items():
            value = ENV_REF.sub(lambda m: os.environ.get(m.group(1), ""), value)
            env[key] = value.replace("{index}", str(self.index)).replace("{name}", self.ctx.group)
        return env

    def _spawn(self) -> bool:
        """Start the program; on failure log it and mark the session failed."""
        if self._stopping:
            return False
        self.attempt += 1
        self.state = "starting"
        try:
            self.proc = PtyProcess(
                self.argv,
                env=self._environment(),
                cwd=self.cwd,
                cols=self.config.cols,
                rows=self.config.rows,
                on_output=self._on_output,
                on_exit=self._on_exit,
            )
        except OSError as exc:
            self.proc = None
            self.pid = None
            self.state = "failed"
            reason = f"{exc.strerror or exc}: {exc.filename or self.argv[0]}"
            if self.attempt == 1:
                self.ctx.event("spawn_failed", reason, attempt=self.attempt, success=False)
            else:
                self.ctx.event("restart_failed", reason, attempt=self.attempt, success=False)
                self.ctx.rate("pty_restart_success", False)
            self._recovery_from = None
            self._recovery_is_restart = False
            self._settle(False, reason)
            return False
        self.pid = self.proc.pid
        if self.attempt == 1:
            self.ctx.add("pty_crashes", 0)
            self.ctx.add("pty_restarts", 0)
        self._started_at = self._last_output = self._now()
        self.growth.reset(self.ctx.now())
        self._cpu_prev = None
        self.state = "running"
        self._awaiting_output = self._recovery_from is not None
        self.ctx.event(
            "started",
            f"pid {self.pid}: {self.target}"[:200],
            attempt=self.attempt,
            data={"pid": self.pid, "argv": self.argv, "attempt": self.attempt},
        )
        if self.config.input:
            self._input_task = asyncio.get_running_loop().create_task(self._type_input(self.proc))
        return True

    async def _type_input(self, proc: PtyProcess) -> None:
        await asyncio.sleep(self.config.input_delay)
        while proc.running:
            for line in self.config.input:
                if not proc.running:
                    return
                proc.write(line.encode() + b"\r")
                self.ctx.event("input_sent", line[:120])
                await asyncio.sleep(self.config.input_interval)
            if not self.config.input_repeat:
                return

    # ---- output ----------------------------------------------------------------------------
    def _on_output(self, data: bytes) -> None:
        newlines = self.output.feed(data)
        self.ctx.add("pty_bytes", len(data))
        if newlines:
            self.ctx.add("pty_lines", newlines)
        self._record_verification()
        self._last_output = self._now()
        if self.state == "idle":
            self.state = "running"
            self.ctx.event("output_resumed")
        if self._awaiting_output:
            self._recovered()

    def _record_verification(self) -> None:
        delta = self.verifier.take_delta()
        if delta.ok and not self._loss_counted:
            # Zero is a value: a "count==0" criterion on lost bytes must see it, not "no data".
            self._loss_counted = True
            self.ctx.add("pty_lines_lost", 0)
            self.ctx.add("pty_bytes_lost", 0)
        if delta.ok:
            self.ctx.rate("pty_output_loss", False, delta.ok)
        if delta.lost:
            self.ctx.rate("pty_output_loss", True, delta.lost)
            self.ctx.add("pty_lines_lost", delta.lost)
            self.ctx.add("pty_bytes_lost", delta.bytes_lost)

    def _recovered(self) -> None:
        self._awaiting_output = False
        elapsed_ms = (self._now() - (self._recovery_from or self._now())) * 1000
        self._recovery_from = None
        if self.state == "hung":
            self.state = "running"
        if self._recovery_is_restart:
            self._recovery_is_restart = False
            self.ctx.observe("pty_recovery_time", elapsed_ms)
            self.ctx.rate("pty_restart_success", True)
            self.ctx.event(
                "restarted",
                f"output flows again {elapsed_ms:.0f}ms after the outage",
                elapsed_ms=round(elapsed_ms, 1),
                attempt=self.attempt,
                success=True,
            )
        self.ctx.recovered()

    # ---- exit and restart ------------------------------------------------------------------
    #
    # When the program ends: close the books on it, classify the end (_Ending), report it, then
    # follow one transition:
    #   the run is stopping        -> (stays stopped; "stopped" event only)
    #   the operator restarted it  -> starting, now
    #   the policy restarts it     -> restarting, after the backoff
    #   a crash loop               -> failed   (outcome not ok)
    #   the restart limit          -> failed   (not ok unless the crash was a fault's)
    #   a crash, policy stops      -> crashed  (not ok unless the crash was a fault's)
    #   a clean exit, policy stops -> exited   (ok unless it crashed unasked before)
    def _on_exit(self, status: ExitStatus) -> None:
        ending = self._close_program(status)
        if self._stopping:
            self.ctx.event("stopped", status.describe(), data=ending.data)
            return
        self._report_exit(ending)
        if self._recovery_from is None:
            self._recovery_from = ending.signal_sent[1] if ending.signal_sent else ending.seen
        if ending.operator_restart:
            self._restart_now()
            return
        decision = self.policy.decide(
            now=ending.at,
            crashed=ending.crashed,
            solicited=ending.solicited,
            lifetime=ending.lifetime,
        )
        self._follow(decision, ending)

    def _close_program(self, status: ExitStatus) -> _Ending:
        """Bookkeeping for the program that ended: gauges, verifier, output, input script."""
        proc = self.proc
        now = self._now()
        seen = proc.exit_seen_at if proc is not None and proc.exit_seen_at else now
        self.last_exit = status
        if self.pid is not None and self.rss:
            self.ctx.gauge("pty_rss", 0.0)  # nothing runs: the run's sum must not keep it
            self.ctx.gauge("pty_cpu", 0.0)
        self.pid = None
        self._awaiting_output = False
        self.verifier.end_stream()
        self._record_verification()
        self.output.flush()
        if self._input_task is not None:
            self._input_task.cancel()
            self._input_task = None
        lifetime = now - self._started_at
        data: dict[str, Any] = {
            "exit_code": status.code,
            "signal": status.signal_name or None,
            "lifetime_s": round(lifetime, 3),
            "last_lines": list(self.output.tail(self.config.crash_lines)),
            "pid": proc.pid if proc is not None else None,
        }
        sent, self._signal_sent = self._signal_sent, None
        operator_restart, self._operator_restart = self._operator_restart, False
        return _Ending(status, seen, now, lifetime, data, sent, operator_restart)

    def _report_exit(self, ending: _Ending) -> None:
        """Events and metrics for the end: a failed restart, detection time, crash or exit."""
        status, data, sent = ending.status, ending.data, ending.signal_sent
        if self._recovery_from is not None and self._recovery_is_restart:
            # The restarted program died before printing anything: that restart failed.
            self.ctx.rate("pty_restart_success", False)
            self.ctx.event(
                "restart_failed",
                f"died before any output: {status.describe()}",
                attempt=self.attempt,
                success=False,
                data=data,
            )
        detect_ms: float | None = None
        if sent is not None:
            detect_ms = max(ending.seen - sent[1], 0.0) * 1000
            self.ctx.observe("pty_crash_detect_time", detect_ms)
        if not ending.crashed:
            self.ctx.event("exited", status.describe(), success=True, data=data)
            return
        self.crashes += 1
        self.ctx.add("pty_crashes")
        if not ending.solicited:
            self.unsolicited_crashes += 1
            self.ctx.disrupted("crash")
        self.ctx.event(
            "crashed",
            status.describe() + (f" ({sent[0]} from a fault)" if sent else ""),
            elapsed_ms=round(detect_ms, 2) if detect_ms is not None else None,
            success=False,
            data=data,
        )

    def _follow(self, decision: Decision, ending: _Ending) -> None:
        """Move to the state the policy's decision leads to (the table above)."""
        if decision.next == "restart":
            self.state = "restarting"
            self.ctx.event(
                "restarting",
                f"in {format_duration(decision.delay)}",
                attempt=self.attempt + 1,
                data={"delay_ms": round(decision.delay * 1000, 1)},
            )
            self._later(decision.delay, self._restart_now)
            return
        self._recovery_from = None
        self._recovery_is_restart = False
        if decision.next == "crash_loop":
            self.state = "failed"
            self.ctx.event("crash_loop", decision.reason, success=False)
            self._settle(False, decision.reason)
        elif ending.crashed:
            self.state = "failed" if decision.next == "max_restarts" else "crashed"
            if not ending.solicited:
                self._settle(False, decision.reason)
        else:
            self.state = "exited"
            self._settle(self.unsolicited_crashes == 0, "exited")

    def _restart_now(self) -> None:
        if self._stopping:
            return
        self._recovery_is_restart = True
        if self._recovery_from is None:
            self._recovery_from = self._now()
        if self._spawn():
            self.restarts += 1
            self.ctx.add("pty_restarts")

    def _settle(self, ok: bool, reason: str) -> None:
        """Record the session's outcome for ``pty_session_ok``, once."""
        if self.outcome is None:
            self.outcome = ok
            self.ctx.rate("pty_session_ok", ok)

    # ---- faults ----------------------------------------------------------------------------
    async def inject(self, action: str, params: Mapping[str, Any], fault: FaultRecord) -> None:
        if self._stopping:
            raise FaultNotApplicable(f"{self.id} is stopping")
        proc = self.proc
        alive = proc is not None and proc.running and self.state not in ("restarting",)
        if action == "restart":
            self._operator_restart = True
            self._cancel_timers()
            if self._recovery_from is None:
                self._recovery_from = self._now()
            if alive and proc is not None:
                await proc.terminate(self.config.stop_grace)
            else:
                self._operator_restart = False
                self._restart_now()
            return
        if not alive or proc is None:
            raise FaultNotApplicable(f"{self.id} is not running ({self.state})")
        if action in ("kill", "term"):
            sig = signal.SIGKILL if action == "kill" else signal.SIGTERM
            self._signal_sent = (sig.name, self._now())
            self._recovery_from = self._signal_sent[1]
            proc.signal(sig)
            if action == "term" and self.state == "hung":
                proc.signal(signal.SIGCONT, group=True)
        elif action == "hang":
            if self.state == "hung":
                raise FaultNotApplicable(f"{self.id} is already hung")
            proc.signal(signal.SIGSTOP, group=True)
            self.state = "hung"
            raw = params.get("duration", 0)
            duration = parse_duration(raw) if isinstance(raw, str) else float(raw or 0)
            self.ctx.event(
                "hung",
                "SIGSTOP"
                + (f" for {format_duration(duration)}" if duration else " until pty.resume"),
            )
            if duration > 0:
                self._later(duration, self._resume)
        elif action == "resume":
            if self.state != "hung":
                raise FaultNotApplicable(f"{self.id} is not hung ({self.state})")
            self._resume()
        else:
            raise FaultNotApplicable(f"{self.id} does not accept pty.{action}")

    async def pause(self) -> str:
        """SIGSTOP the program's group: a paused run produces no output (a hang stays a hang)."""
        proc = self.proc
        if self.state not in ("running", "idle") or proc is None or not proc.running:
            return ""
        proc.signal(signal.SIGSTOP, group=True)
        self.state = "paused"
        return "SIGSTOP"

    async def resume(self) -> None:
        proc = self.proc
        if self.state != "paused":
            return
        if proc is not None and proc.running:
            proc.signal(signal.SIGCONT, group=True)
        self._last_output = self._now()  # the pause was not silence
        self.state = "running"

    def _resume(self) -> None:
        proc = self.proc
        if self.state != "hung" or proc is None or not proc.running:
            return
        proc.signal(signal.SIGCONT, group=True)
        self.ctx.event("resumed", "SIGCONT")
        self._recovery_from = self._now()
        self._awaiting_output = True
        self._last_output = self._now()
        self.state = "running"

    # ---- sampling and views ----------------------------------------------------------------
    def take_stats(self, pid: int, stats: TreeStats, at: float) -> None:
        """Figures from the runtime's process-table scan of ``pid``'s tree (loop time ``at``)."""
        if self.pid != pid or self.proc is None:  # it ended or was replaced during the scan
            return
        self.proc.adopt(stats.descendants)
        self.rss = stats.rss
        if self._cpu_prev is not None and at > self._cpu_prev[1]:
            used = max(stats.cpu_seconds - self._cpu_prev[0], 0.0)
            self.cpu_pct = used / (at - self._cpu_prev[1]) * 100
        self._cpu_prev = (stats.cpu_seconds, at)
        self.growth.add(self.ctx.now(), stats.rss)

    def sample(self) -> None:
        now = asyncio.get_running_loop().time()
        seconds = self.seconds_since_sample()
        self.series["output"].push((self.output.bytes - self._bytes_at_sample) / seconds)
        self._bytes_at_sample = self.output.bytes
        self.output.flush()
        self._report_output_loss()
        if self.pid is None or self._stopping:
            self.series["rss"].push(0.0)
            return
        self.series["rss"].push(self.rss / 1e6)
        if self.rss:
            self.ctx.gauge("pty_rss", self.rss)
            self.ctx.gauge("pty_cpu", round(self.cpu_pct, 2))
        growth = self.growth.mb_per_hour
        if growth is not None:
            self.ctx.gauge("pty_memory_growth", round(growth, 3))
        if self.state == "running" and now - self._last_output >= self.config.idle_after:
            self.state = "idle"
            self.ctx.event(
                "output_idle", f"no output for {format_duration(self.config.idle_after)}"
            )

    def _report_output_loss(self) -> None:
        """Kept output that the disk refused: one event each time the count grows."""
        output = self.output
        if output.dropped_bytes > self._output_dropped_reported and output.path is not None:
            self._output_dropped_reported = output.dropped_bytes
            name = f"{output.path.parent.name}/{output.path.name}"
            self.ctx.event(
                WRITE_FAILED,
                f"{name}: {format_bytes(output.dropped_bytes)} of output not written "
                f"({output.write_error})",
                success=False,
                data={"file": name, "dropped_bytes": output.dropped_bytes},
            )

    def screen(self) -> bytes:
        return self.output.screen()

    def view(self) -> SessionSnapshot:
        return session_view(self)
