"""One program on its own pseudo-terminal, read by the event loop and watched for its exit.

Why not :mod:`ptyprocess`: it forks with ``pty.fork()``, which Python 3.12+ warns about (and
which can deadlock) once the process has threads, and an engine has threads (the executor,
psutil sampling). Here the terminal is opened with :func:`os.openpty` and the program started by
:class:`subprocess.Popen`, made a session leader with the terminal as its controlling terminal,
so job control, ``/dev/tty`` and SIGHUP on close behave as in a real terminal. The only Python
that runs between fork and exec is one ``ioctl(TIOCSCTTY)`` and the parent-death signal
(:mod:`console.lifetime`) in ``preexec_fn``: CPython resets its
own locks in the child, so that narrow window is far smaller than ``pty.fork()`` followed by a
Python-level exec. A missing command raises :class:`FileNotFoundError` from the start call itself.

Reading: the master side is non-blocking and drained by ``loop.add_reader`` in chunks, a bounded
number per callback so thirty busy terminals share the loop fairly. A terminal that is not read
stalls its program (the kernel buffer is a few KB), so nothing here ever pauses reading.

Exit detection: a pidfd (Linux >= 5.3) becomes readable the moment the child dies, so an exit
is seen within a loop iteration, not a polling period. The output that was already written is
still drained after that: the process counts as ended once it is reaped *and* the master has
reported EOF/EIO, or after a short grace if some descendant keeps the terminal open (that
descendant is then killed with the process group). Without pidfd, EOF on the master plus a
fast ``waitpid`` poll stands in.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import os
import signal
import struct
import subprocess
import termios
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import psutil

from console.lifetime import die_with_parent

__all__ = ["ExitStatus", "PtyProcess"]

READ_CHUNK = 65536
READS_PER_CALLBACK = 8  # at most 512 KB per wakeup, then let other terminals have the loop
EOF_GRACE = 0.5  # seconds to wait for EOF after the child is reaped (descendants may hold it)


@dataclass(frozen=True)
class ExitStatus:
    """How a program ended: exactly one of ``code`` and ``signal`` is set."""

    code: int | None
    signal: int | None

    @classmethod
    def from_returncode(cls, returncode: int) -> ExitStatus:
        if returncode < 0:
            return cls(None, -returncode)
        return cls(returncode, None)

    @property
    def clean(self) -> bool:
        return self.code == 0

    @property
    def signal_name(self) -> str:
        if self.signal is None:
            return ""
        try:
            return signal.Signals(self.signal).name
        except ValueError:
            return f"signal {self.signal}"

    def describe(self) -> str:
        return (
            f"killed by {self.signal_name}" if self.signal is not None else f"exit code {self.code}"
        )


def _set_controlling_tty() -> None:  # runs in the child between fork and exec
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class PtyProcess:
    """A running program on a fresh pseudo-terminal.

    ``on_output(bytes)`` is called from the loop for every chunk read; ``on_exit(status)`` once,
    after the program is reaped and its output drained. :meth:`close` releases every fd and
    kills what is left of the process group.
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        cwd: str | None,
        cols: int,
        rows: int,
        on_output: Callable[[bytes], None],
        on_exit: Callable[[ExitStatus], None],
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._on_output = on_output
        self._on_exit = on_exit
        self.status: ExitStatus | None = None
        self.exit_seen_at: float | None = None  # loop time the exit was noticed
        self._reaped = False
        self._eof = False
        self._pidfd: int | None = None
        self._poll_handle: asyncio.TimerHandle | None = None
        self._grace_handle: asyncio.TimerHandle | None = None
        self._pending_input = bytearray()
        self._writer_on = False
        self._descendants: dict[int, psutil.Process] = {}
        self._released = False
        self._returncode = 0
        master, slave = os.openpty()
        try:
            fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
            self.popen = subprocess.Popen(
                list(argv),
                stdin=slave,
                stdout=slave,
                stderr=slave,
                env=dict(env),
                cwd=cwd,
                start_new_session=True,
                preexec_fn=die_with_parent(then=_set_controlling_tty),
                close_fds=True,
            )
        except BaseException:
            os.close(master)
            os.close(slave)
            raise
        os.close(slave)
        os.set_blocking(master, False)
        self.master: int | None = master
        self.pid = self.popen.pid
        self._loop.add_reader(master, self._readable)
        try:
            self._pidfd = os.pidfd_open(self.pid)
            self._loop.add_reader(self._pidfd, self._child_exited)
        except (AttributeError, OSError):
            self._pidfd = None
            self._schedule_poll(0.05)

    @property
    def running(self) -> bool:
        return self.status is None

    # ---- reading -------------------------------------------------------------------------
    def _readable(self) -> None:
        fd = self.master
        if fd is None:
            return
        # A terminal hands out at most about 4 KB per read, and a busy one has several reads
        # waiting: they go to the session as one chunk, so counting, verifying and metrics
        # are paid once per wakeup, not once per 4 KB (4-8 reads per wakeup in the benchmark).
        chunks: list[bytes] = []
        eof = False
        try:
            for _ in range(READS_PER_CALLBACK):
                try:
                    data = os.read(fd, READ_CHUNK)
                except BlockingIOError:
                    break
                except OSError as exc:
                    if exc.errno in (errno.EIO, errno.EBADF):
                        data = b""
                    else:
                        raise
                if not data:
                    eof = True
                    break
                chunks.append(data)
        finally:
            if chunks:  # what was read is delivered, whatever ended the reading
                self._on_output(chunks[0] if len(chunks) == 1 else b"".join(chunks))
        if eof:
            self._got_eof()

    def _got_eof(self) -> None:
        if self._eof:
            return
        self._eof = True
        if self.master is not None:
            self._loop.remove_reader(self.master)
        if self._reaped:
            self._finish()
        elif self._pidfd is None:
            self._schedule_poll(0.002)

    # ---- exit ------------------------------------------------------------------------------
    def _child_exited(self) -> None:
        if self._pidfd is not None:
            self._loop.remove_reader(self._pidfd)
        self._reap()

    def _schedule_poll(self, delay: float) -> None:
        self._poll_handle = self._loop.call_later(delay, self._poll)

    def _poll(self) -> None:
        self._poll_handle = None
        if not self._reap():
            self._schedule_poll(0.005 if self._eof else 0.05)

    def _reap(self) -> bool:
        if self._reaped:
            return True
        returncode = self.popen.poll()
        if returncode is None:
            return False
        self._reaped = True
        self.exit_seen_at = self._loop.time()
        self._returncode = returncode
        if self._eof:
            self._finish()
        else:
            self._readable()  # most of the remaining output is usually there already
            if not self._eof:
                self._grace_handle = self._loop.call_later(EOF_GRACE, self._finish)
        return True

    def _finish(self) -> None:
        if self.status is not None:
            return
        if self._grace_handle is not None:
            self._grace_handle.cancel()
            self._grace_handle = None
        if not self._eof and self.master is not None:
            self._readable()
        self.status = ExitStatus.from_returncode(self._returncode)
        self._release()
        self._on_exit(self.status)

    # ---- control -------------------------------------------------------------------------
    def signal(self, sig: int, *, group: bool = False) -> bool:
        """Send ``sig`` to the program (or its whole process group); False if already gone."""
        if self._reaped:
            return False
        try:
            if group:
                os.killpg(self.pid, sig)
            else:
                os.kill(self.pid, sig)
        except ProcessLookupError:
            return False
        return True

    def adopt(self, descendants: Iterable[psutil.Process]) -> None:
        """Remember processes seen below the program (by the stats scan), to kill at the end.

        Killing the process group catches most of them; these are the ones that left it
        (``setsid``, a shell's job control) but still descend from the program.
        """
        if self._reaped:
            return
        for proc in descendants:
            self._descendants.setdefault(proc.pid, proc)

    def write(self, data: bytes) -> None:
        """Queue keyboard input; written as the terminal accepts it, never blocking."""
        if self.master is None or self._eof:
            return
        self._pending_input += data
        self._flush_input()

    def _flush_input(self) -> None:
        fd = self.master
        if fd is None:
            return
        while self._pending_input:
            try:
                written = os.write(fd, self._pending_input)
            except BlockingIOError:
                break
            except OSError:
                self._pending_input.clear()
                break
            del self._pending_input[:written]
        want = bool(self._pending_input)
        if want != self._writer_on:
            if want:
                self._loop.add_writer(fd, self._flush_input)
            else:
                self._loop.remove_writer(fd)
            self._writer_on = want

    def resize(self, cols: int, rows: int) -> None:
        if self.master is not None:
            fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    async def terminate(self, grace: float) -> None:
        """SIGTERM the process group, SIGKILL it after ``grace`` seconds, wait for the end."""
        if self.status is not None:
            return
        done = asyncio.Event()
        previous = self._on_exit

        def _exited(status: ExitStatus) -> None:
            done.set()
            previous(status)

        self._on_exit = _exited
        self.signal(signal.SIGCONT, group=True)  # a stopped program cannot act on SIGTERM
        self.signal(signal.SIGTERM, group=True)
        try:
            await asyncio.wait_for(done.wait(), grace)
        except asyncio.TimeoutError:
            self.signal(signal.SIGKILL, group=True)
            try:
                await asyncio.wait_for(done.wait(), 2.0)
            except asyncio.TimeoutError:
                self.close()

    def _kill_leftovers(self) -> None:
        """Kill what survived the program: its process group and descendants seen earlier."""
        with contextlib.suppress(OSError):
            os.killpg(self.pid, signal.SIGKILL)
        for proc in self._descendants.values():
            with contextlib.suppress(psutil.Error):
                proc.kill()  # psutil refuses if the pid now belongs to another process
        self._descendants.clear()

    def _release(self) -> None:
        if self._released:
            return
        self._released = True
        for handle in (self._poll_handle, self._grace_handle):
            if handle is not None:
                handle.cancel()
        self._poll_handle = self._grace_handle = None
        if self._pidfd is not None:
            self._loop.remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = None
        if self.master is not None:
            self._loop.remove_reader(self.master)
            if self._writer_on:
                self._loop.remove_writer(self.master)
                self._writer_on = False
            os.close(self.master)
            self.master = None
        self._kill_leftovers()

    def close(self) -> None:
        """Kill everything and release every fd now, without waiting (last resort)."""
        if not self._reaped:
            with contextlib.suppress(OSError):
                os.killpg(self.pid, signal.SIGKILL)
            with contextlib.suppress(OSError):
                os.kill(self.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(1.0)
            self._reaped = True
            self._returncode = self.popen.returncode if self.popen.returncode is not None else -9
        if self.status is None:
            self.status = ExitStatus.from_returncode(self._returncode)
        self._release()
