"""One SSH session: connect, poll, drive a PTY, and come back after every drop.

States: ``connecting`` -> ``running`` -> (drop) ``reconnecting`` -> ``running`` ... and
``failed`` when the attempts run out or the host key is rejected; ``stopped`` at the end.

Reconnect time is measured from the drop (the injection, or the moment the loss was noticed)
to *usable again*: connected, authenticated and the PTY channel open. It therefore includes
the backoff wait, as SPIKE-2's figures did. The wait before attempt ``n`` is
``min(backoff_max, backoff * 2**(n-1))`` stretched by a random share of up to ``jitter``.

A drop nobody asked for (keepalive timeout, server gone) is reported to the engine with
``ctx.disrupted`` so recovery criteria count it like an injected one. A session that ends
``failed`` adds one to ``ssh_abnormal_ends``; the ``ssh.reconnect`` control retries it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import asyncssh

from console.errors import TargetError
from console.events import Event
from console.metrics import Series
from console.sessions.base import FaultNotApplicable, Session, SessionContext
from console.sessions.ssh.channel import ChannelError, PtyChannel
from console.sessions.ssh.config import Endpoint, SshGroupConfig
from console.sessions.ssh.connect import (
    ConnectError,
    HostKeyRejected,
    KeyStore,
    Opened,
    describe,
    open_connection,
)
from console.sessions.ssh.parse import (
    MONITOR_COMMANDS,
    CpuMeter,
    RateMeter,
    parse_df_percent,
    parse_diskstats,
    parse_loadavg,
    parse_meminfo_percent,
    parse_net_dev,
    parse_proc_stat,
    parse_top,
)
from console.sessions.ssh.view import session_view
from console.snapshot import FaultRecord, SessionSnapshot

if TYPE_CHECKING:
    from console.targets.ssh_control import SshTargetInfo

__all__ = ["SshSession"]


class SshSession(Session):
    kind = "ssh"

    def __init__(
        self, ctx: SessionContext, cfg: SshGroupConfig, endpoint: Endpoint, keys: KeyStore
    ) -> None:
        super().__init__(ctx, target=str(endpoint))
        self.cfg = cfg
        self.endpoint = endpoint
        self.keys = keys
        self.embedded: SshTargetInfo | None = None
        self.via = cfg.via
        self._route: Callable[[], tuple[str, int]] | None = None
        self.series = {"cpu": Series(), "mem": Series()}
        self.badges = () if cfg.verify_host_key else ("host key unchecked",)
        self.cpu: float | None = None
        self.mem: float | None = None
        self.disk: float | None = None
        self.polls = 0
        self.poll_failures = 0
        self.pty_cycles = 0
        self.pty_errors = 0
        self.pty_bytes = 0
        self.reconnects = 0
        self.reconnect_attempts = 0
        self.last_reconnect_ms: float | None = None
        self.connect_ms: float | None = None
        self.last_error = ""
        self._cpu_meter = CpuMeter()
        # A monitor of the host (cfg.monitor): disk I/O, network, load and top processes too.
        self.poll_commands = cfg.poll_commands + (MONITOR_COMMANDS if cfg.monitor else ())
        self._disk_meter = RateMeter()
        self._net_meter = RateMeter()
        self.load: float | None = None
        self.top: list[tuple[str, float, float]] = []  # (command, CPU %, RSS bytes)
        self._opened: Opened | None = None
        self._pty: PtyChannel | None = None
        if cfg.intensity != "off":
            self._pty = PtyChannel(cfg.intensity, self._count_pty_bytes)
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()  # a drop request, a manual reconnect or stop
        self._run_gate = asyncio.Event()  # clear while the run is paused
        self._run_gate.set()
        self._drop_cause = ""
        self._drop_at = 0.0
        self._expected_drop = ""  # a server-side drop the console caused (server_restart)
        self._bogus_auth = 0
        self._leftovers: set[asyncio.Task[object]] = set()
        self._refused = False

    # -- wiring --------------------------------------------------------------------------------

    def attach_embedded(self, info: SshTargetInfo) -> None:
        """Point this session at the embedded server once it listens."""
        self.embedded = info
        self.target = info.address
        self.ctx.host = info.address

    def refuse(self, reason: str, event: Event) -> None:
        """Fail before starting: the runtime found a problem no connection attempt can fix
        (an unreadable SSH config). ``event`` is the one that reported it, shown in the pane."""
        self._refused = True
        self.state = "failed"
        self.last_error = reason
        self.badges = (*self.badges, "ssh config error")
        self.ctx.last_event = event

    def real_address(self) -> tuple[str, int]:
        """The real target's address, for a link that forwards to it."""
        if self.embedded is not None:
            return self.embedded.host, self.embedded.port
        if self.endpoint.embedded:
            raise TargetError("the embedded SSH target is not running")
        return self.endpoint.host, self.endpoint.port or 22

    def route(self, address: Callable[[], tuple[str, int]] | None) -> None:
        """Connect through a link: TCP to ``address()``, SSH (and host keys) to the target."""
        self._route = address  # the link's pane lists the sessions behind it

    @property
    def connected(self) -> bool:
        return self.state == "running" and self._opened is not None

    # -- the session's life --------------------------------------------------------------------

    async def run(self) -> None:
        # Zero-valued counters exist from the start, so "count==0" criteria have data.
        self.ctx.add("ssh_abnormal_ends", 0)
        self.ctx.add("ssh_poll_failures", 0)
        if self._refused:
            self.ctx.add("ssh_abnormal_ends")
            return
        try:
            await self._main()
        except Exception:
            self.ctx.add("ssh_abnormal_ends")
            self.state = "failed"
            raise
        finally:
            self._close_connection()
            if self.state != "failed":
                self.state = "stopped"

    async def _main(self) -> None:
        opened = await self._establish(reconnect=False, since=time.monotonic())
        while not self._stop.is_set():
            if opened is None:
                self.state = "failed"
                self.ctx.add("ssh_abnormal_ends")
                self._wake.clear()
                await self._wake.wait()  # ssh.reconnect or stop
                if self._stop.is_set():
                    return
                opened = await self._establish(reconnect=True, since=time.monotonic())
                continue
            since = await self._serve(opened)
            if since is None:
                return
            opened = await self._establish(reconnect=True, since=since)

    async def _establish(self, *, reconnect: bool, since: float) -> Opened | None:
        """Connect with up to ``reconnect_attempts`` attempts; None when they all fail."""
        cfg = self.cfg
        attempts = max(1, cfg.reconnect_attempts)
        timeout = cfg.reconnect_timeout if reconnect else cfg.connect_timeout
        self._cpu_meter.reset()
        self._disk_meter.reset()
        self._net_meter.reset()
        detail = ""
        for attempt in range(1, attempts + 1):
            self.state = "reconnecting" if reconnect else "connecting"
            if (reconnect or attempt > 1) and await self._sleep(self._backoff(attempt)):
                return None
            if reconnect:
                self.reconnect_attempts += 1
                self.ctx.add("ssh_reconnect_attempts")
            started = time.monotonic()
            try:
                opened = await self._open_unless_stopped(timeout)
                if opened is None:
                    return None
            except ConnectError as exc:
                detail = str(exc)
                self.last_error = detail
                self.ctx.event("connect_failed", detail, attempt=attempt, success=False)
                if not exc.final:
                    continue
                if isinstance(exc, HostKeyRejected) and "host key rejected" not in self.badges:
                    self.badges = (*self.badges, "host key rejected")
                if reconnect:
                    self._reconnect_failed(attempt, detail)
                return None
            self._drop_cause = self._expected_drop = ""
            now = time.monotonic()
            self.connect_ms = (now - started) * 1000.0
            self.ctx.observe("ssh_connect_time", self.connect_ms)
            if reconnect:
                elapsed = (now - since) * 1000.0
                self.reconnects += 1
                self.last_reconnect_ms = elapsed
                self.ctx.observe("ssh_reconnect_time", elapsed)
                self.ctx.rate("ssh_reconnect_success", True)
                self.ctx.event("reconnected", "", elapsed_ms=elapsed, attempt=attempt, success=True)
                self.ctx.recovered()
            else:
                self.ctx.event(
                    "connected", "", elapsed_ms=self.connect_ms, attempt=attempt, success=True
                )
                self.ctx.recovered()  # closes a fault that reached it while it first connected
            return opened
        if reconnect:
            self._reconnect_failed(attempts, detail)
        return None

    def _reconnect_failed(self, attempt: int, detail: str) -> None:
        self.ctx.rate("ssh_reconnect_success", False)
        self.ctx.event("reconnect_failed", detail, attempt=attempt, success=False)

    async def _open_unless_stopped(self, timeout: float) -> Opened | None:
        """:meth:`_open`, abandoned as soon as the session is stopped."""
        opening = asyncio.create_task(self._open(timeout))
        stopping = asyncio.create_task(self._stop.wait())
        try:
            await asyncio.wait({opening, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:  # also when this task is cancelled: _open aborts what it half opened
            stopping.cancel()
            if not opening.done():
                opening.cancel()
                with contextlib.suppress(asyncio.CancelledError, ConnectError):
                    await opening
        if self._stop.is_set():
            if opening.done() and not opening.cancelled() and opening.exception() is None:
                opening.result().conn.abort()
            return None
        return opening.result()

    async def _open(self, timeout: float) -> Opened:
        """A connection that is usable: authenticated, with its PTY channel open."""
        bogus = self._bogus_auth > 0
        if bogus:
            self._bogus_auth -= 1
        opened = await open_connection(
            self.cfg,
            self.endpoint,
            timeout=timeout,
            keys=self.keys,
            embedded=self.embedded,
            bogus_key=bogus,
            via=self._route() if self._route is not None else None,
        )
        try:
            if self._pty is not None:
                await asyncio.wait_for(self._pty.open(opened.conn), timeout)
        except (asyncssh.Error, OSError, asyncio.TimeoutError) as exc:
            opened.conn.abort()
            raise ConnectError(f"PTY channel refused: {describe(exc)}") from None
        except BaseException:  # cancelled (stop) while the channel opened: nobody owns it
            opened.conn.abort()
            raise
        self._opened = opened
        return opened

    async def _serve(self, opened: Opened) -> float | None:
        """Run polling and the PTY until the connection ends; return the drop's time."""
        self.state = "running"
        self._wake.clear()
        workers = [asyncio.create_task(self._poll_loop(opened.conn))]
        if self._pty is not None:
            workers.append(asyncio.create_task(self._pty_loop(self._pty)))
        closed = asyncio.create_task(opened.conn.wait_closed())
        woken = asyncio.create_task(self._wake.wait())
        noticed = time.monotonic()
        try:
            await asyncio.wait({closed, woken}, return_when=asyncio.FIRST_COMPLETED)
            noticed = time.monotonic()
        finally:
            tasks = (*workers, closed, woken)
            for task in tasks:
                task.cancel()
            # Python < 3.12's wait_for can swallow a cancellation that races a result; such a
            # worker ends by itself once it sees the closed connection, so do not wait for it.
            _, late = await asyncio.wait(tasks, timeout=0.25)
            self._leftovers.update(late)
            for task in late:
                task.add_done_callback(self._leftovers.discard)
        if self._stop.is_set():
            return None
        if self._drop_cause:
            since = self._drop_at
        elif self._expected_drop:
            self.ctx.event("disconnect_injected", self._expected_drop)
            since = noticed
        else:
            since = noticed
            lost = opened.client.lost
            cause = f"connection lost: {describe(lost)}" if lost else "connection closed"
            self.ctx.event("connection_lost", cause, success=False)
            self.ctx.disrupted("connection_lost")
        self._drop_cause = self._expected_drop = ""
        self._close_connection()
        return since

    def _close_connection(self) -> None:
        if self._pty is not None:
            self._pty.close()
        if self._opened is not None:
            self._opened.conn.abort()
            self._opened = None

    def _backoff(self, attempt: int) -> float:
        base = min(self.cfg.backoff_max, self.cfg.backoff * 2 ** (attempt - 1))
        return base * (1.0 + self.cfg.jitter * self.ctx.rng.random())

    async def _sleep(self, seconds: float) -> bool:
        """Sleep unless stopped first; True when stopped."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)
        return self._stop.is_set()

    # -- work on a live connection ---------------------------------------------------------------

    async def _poll_loop(self, conn: asyncssh.SSHClientConnection) -> None:
        loop = asyncio.get_running_loop()
        # Sessions connected together would poll in lockstep (SPIKE-2's did); a random phase
        # spreads the exec load on the host the way independent pollers would.
        next_at = loop.time() + self.ctx.rng.uniform(0.0, min(self.cfg.poll_interval, 5.0))
        await asyncio.sleep(next_at - loop.time())
        while not conn.is_closed():
            await self._run_gate.wait()  # the run is paused: no polls
            await self._poll_once(conn)
            next_at += self.cfg.poll_interval
            next_at = max(next_at, loop.time())  # a slow poll skips, never bunches up
            await asyncio.sleep(next_at - loop.time())

    async def _poll_once(self, conn: asyncssh.SSHClientConnection) -> None:
        figures: dict[str, float] = {}
        total_ms = 0.0
        for command in self.poll_commands:
            started = time.perf_counter()
            try:
                result = await asyncio.wait_for(
                    conn.run(command, check=False, encoding="utf-8", errors="replace"),
                    self.cfg.exec_timeout,
                )
            except asyncio.TimeoutError:
                return self._poll_error(f"{command!r} timed out after {self.cfg.exec_timeout:g}s")
            except (asyncssh.Error, OSError) as exc:
                if self._going_down(conn):
                    return None  # the drop handler reports it
                return self._poll_error(f"{command!r} failed: {describe(exc)}")
            latency = (time.perf_counter() - started) * 1000.0
            total_ms += latency
            self.ctx.observe("ssh_exec_latency", latency)
            if result.exit_status is None and self._going_down(conn):
                return None  # the channel died with the connection
            if result.exit_status != 0:
                stderr = str(result.stderr or "").strip().splitlines()
                why = stderr[0][:120] if stderr else f"exit status {result.exit_status}"
                return self._poll_error(f"{command!r}: {why}")
            self._read_figures(str(result.stdout or ""), figures)
        for name, value in figures.items():
            self.ctx.gauge(f"ssh_remote_{name}", value)
        self.polls += 1
        detail = " ".join(f"{name}={value:.1f}" for name, value in figures.items())
        data = {"top": [list(p) for p in self.top]} if self.cfg.monitor else None
        self.ctx.event("exec_poll", detail, elapsed_ms=total_ms, success=True, data=data)

    def _read_figures(self, text: str, figures: dict[str, float]) -> None:
        if (stat := parse_proc_stat(text)) is not None:
            cpu = self._cpu_meter.update(stat)
            if cpu is not None:
                figures["cpu"] = self.cpu = cpu
        elif (mem := parse_meminfo_percent(text)) is not None:
            figures["mem"] = self.mem = mem
        elif (disk := parse_df_percent(text)) is not None:
            figures["disk"] = self.disk = disk
        elif (load := parse_loadavg(text)) is not None:
            figures["load"] = self.load = load
        elif (io := parse_diskstats(text)) is not None:
            rates = self._disk_meter.update(self.ctx.now(), io)
            if rates is not None:  # sectors are 512 bytes; busy ms per s as a share
                figures["disk_read"] = rates[0] * 512
                figures["disk_write"] = rates[1] * 512
                figures["disk_busy"] = min(rates[2] / 10.0, 100.0)
        elif (net := parse_net_dev(text)) is not None:
            rates = self._net_meter.update(self.ctx.now(), net)
            if rates is not None:
                figures["net_rx"], figures["net_tx"] = rates
        elif (top := parse_top(text)) is not None:
            self.top = top

    def _going_down(self, conn: asyncssh.SSHClientConnection) -> bool:
        """Whether an error is just the connection ending (reported once, by _serve)."""
        return (
            conn.is_closed() or self._stop.is_set() or bool(self._drop_cause or self._expected_drop)
        )

    def _poll_error(self, detail: str) -> None:
        self.poll_failures += 1
        self.last_error = detail
        self.ctx.add("ssh_poll_failures")
        self.ctx.event("exec_poll_error", detail, success=False)

    async def _pty_loop(self, channel: PtyChannel) -> None:
        while self._opened is not None and not self._going_down(self._opened.conn):
            await self._run_gate.wait()  # the run is paused: no PTY load
            try:
                nbytes, elapsed = await channel.cycle(self.cfg.pty_timeout)
            except ChannelError as exc:
                if self._opened is None or self._going_down(self._opened.conn):
                    return  # the drop handler reports it
                self.pty_errors += 1
                self.last_error = str(exc)
                self.ctx.event("pty_error", str(exc), success=False)
                channel.close()
                with contextlib.suppress(asyncssh.Error, OSError):
                    await channel.open(self._opened.conn)  # a fresh shell for the next cycle
            else:
                self.pty_cycles += 1
                self.ctx.event("pty_cycle", f"{nbytes} bytes", elapsed_ms=elapsed, success=True)
            await asyncio.sleep(self.cfg.pty_interval)

    def _count_pty_bytes(self, n: int) -> None:
        self.pty_bytes += n
        self.ctx.add("ssh_pty_bytes", n)

    # -- controls -----------------------------------------------------------------------------

    async def pause(self) -> str:
        self._run_gate.clear()
        return "polling"

    async def resume(self) -> None:
        self._run_gate.set()

    async def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._run_gate.set()  # a paused loop must see the stop
        self._close_connection()

    def request_drop(self, cause: str) -> None:
        """Drop now, client side; the reconnect clock starts at this moment."""
        self._drop_cause = cause
        self._drop_at = time.monotonic()
        self.state = "reconnecting"  # unusable from now on
        self.ctx.event("disconnect_injected", cause)
        if self._opened is not None:
            self._opened.conn.abort()
        self._wake.set()

    def expect_drop(self, cause: str) -> None:
        """The server is about to drop us because the console asked it to ("" takes it back)."""
        if self.connected or not cause:
            self._expected_drop = cause

    def unreachable_by(self, action: str) -> str | None:
        """Why a kind-wide fault (``server_restart``, ``auth_fail``) would not reach this session.

        None when it would. A session it does not reach must not be waited for: it would never
        report a recovery for it.
        """
        if action == "auth_fail":
            return None if self.connected else f"{self.id} is not connected ({self.state})"
        if self.state in ("failed", "stopped"):
            return f"{self.id} is {self.state}; ssh.reconnect retries a failed session"
        return None

    async def inject(self, action: str, params: Mapping[str, Any], fault: FaultRecord) -> None:
        if action == "drop":
            if not self.connected:
                raise FaultNotApplicable(f"{self.id} is not connected ({self.state})")
            self.request_drop(f"ssh.drop (fault {fault.id})")
        elif action == "auth_fail":
            # Like ssh.drop it needs a live connection: that is what makes a reconnect happen.
            if not self.connected:
                raise FaultNotApplicable(f"{self.id} is not connected ({self.state})")
            self._bogus_auth += int(params.get("count", 1))
            self.request_drop(f"ssh.auth_fail (fault {fault.id})")
        elif action == "reconnect":
            if self._refused:
                raise FaultNotApplicable(f"{self.id}: {self.last_error}")
            if self.state != "failed":
                raise FaultNotApplicable(f"{self.id} is {self.state}, not failed")
            self._wake.set()
        else:
            raise FaultNotApplicable(f"{self.id} does not accept ssh.{action}")

    # -- views --------------------------------------------------------------------------------

    def sample(self) -> None:
        self.series["cpu"].push(self.cpu if self.cpu is not None else 0.0)
        self.series["mem"].push(self.mem if self.mem is not None else 0.0)

    @property
    def pty_channel(self) -> PtyChannel | None:
        return self._pty

    def view(self) -> SessionSnapshot:
        return session_view(self)

    def screen(self) -> bytes:
        """The PTY channel's recent raw output, for the detail view (fetched on request)."""
        pty = self.pty_channel
        return bytes(pty.screen) if pty is not None else b""
