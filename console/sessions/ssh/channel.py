"""The PTY channel of an SSH session: an interactive shell driven in cycles, as SPIKE-2 did.

Each cycle types one command line into the remote shell and reads until an end marker comes
back. The marker is printed with ``printf '%s_%s\\n' __sdend N``, so the terminal's echo of the
typed line (``... __sdend N``) can never be mistaken for it. Everything read counts as PTY
bytes, echo and prompts included: that is the traffic the channel really carried.

Intensities are SPIKE-2's: low 5 echo lines, medium 20, high 200 lines from ``yes``.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import deque
from collections.abc import Callable

import asyncssh

from console.errors import ChannelError
from console.sanitize import clean

__all__ = ["INTENSITY_COMMANDS", "ChannelError", "PtyChannel", "strip_escapes"]

INTENSITY_COMMANDS = {
    "low": 'i=0; while [ $i -lt 5 ]; do i=$((i+1)); echo "stressdeck pty line $i of 5"; done',
    "medium": 'i=0; while [ $i -lt 20 ]; do i=$((i+1)); echo "stressdeck pty line $i of 20"; done',
    "high": 'yes "stressdeck pty burst line" | head -n 200',
}
_SCREEN_BYTES = 8192
_LINE_LIMIT = 512


def strip_escapes(data: bytes) -> str:
    """One line of remote PTY output, safe to draw: colours removed, other escapes shown."""
    text = data.replace(b"\r", b"").decode("utf-8", "replace")
    return clean(text, drop_style=True, limit=_LINE_LIMIT)


# The line the remote shell prints after each cycle: ``__sdend_<seq>``. One pattern for every
# cycle (compiling one per cycle filled re's cache with a pattern each, ~200 on a soak).
_CYCLE_END = re.compile(rb"__sdend_(\d+)\r?\n")


class PtyChannel:
    """One interactive shell on a PTY channel of a connection."""

    def __init__(self, intensity: str, on_bytes: Callable[[int], None]) -> None:
        # Run through sh so the cycle works whatever the login shell (bash, zsh, fish, csh).
        self.command = f"sh -c '{INTENSITY_COMMANDS[intensity]}'"
        self.on_bytes = on_bytes
        self.process: asyncssh.SSHClientProcess[bytes] | None = None
        self.seq = 0
        self.tail: deque[str] = deque(maxlen=12)
        self.screen = bytearray()
        self._partial = b""

    async def open(self, conn: asyncssh.SSHClientConnection) -> None:
        self.process = await conn.create_process(
            term_type="xterm", term_size=(100, 30), encoding=None
        )

    def close(self) -> None:
        if self.process is not None:
            self.process.close()
            self.process = None

    async def cycle(self, timeout: float) -> tuple[int, float]:
        """Run one cycle; return (bytes read, elapsed ms) or raise :class:`ChannelError`."""
        process = self.process
        if process is None:
            raise ChannelError("no PTY channel")
        self.seq += 1
        marker = b"%d" % self.seq
        started = time.perf_counter()
        try:
            process.stdin.write(f"{self.command}; printf '%s_%s\\n' __sdend {self.seq}\n".encode())
            total = await asyncio.wait_for(self._read_until(process, marker), timeout)
        except asyncio.TimeoutError:
            raise ChannelError(f"no end of cycle {self.seq} after {timeout:g}s") from None
        except (asyncssh.Error, OSError) as exc:
            raise ChannelError(f"PTY channel failed: {exc}") from None
        return total, (time.perf_counter() - started) * 1000.0

    async def _read_until(self, process: asyncssh.SSHClientProcess[bytes], marker: bytes) -> int:
        total = 0
        window = b""
        while True:
            data = await process.stdout.read(65536)
            if not data:
                raise ChannelError("the remote shell closed the PTY")
            total += len(data)
            self.on_bytes(len(data))
            self._keep(data)
            window = window[-64:] + data
            if any(end.group(1) == marker for end in _CYCLE_END.finditer(window)):
                return total

    def _keep(self, data: bytes) -> None:
        self.screen += data
        if len(self.screen) > _SCREEN_BYTES:
            del self.screen[: len(self.screen) - _SCREEN_BYTES]
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()[-1024:]
        for line in lines[-12:]:
            text = strip_escapes(line).rstrip()
            if text:
                self.tail.append(text)
