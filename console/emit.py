"""``stressdeck emit``: a program whose every output line can be accounted for, and its verifier.

The node-pty spike's buffering test (seed 002) prints 50,000 lines (10 MB, so 200 bytes a line)
and counts how many arrive. Counting alone cannot tell a lost line from a merged or torn one,
so every line carries its sequence number and a CRC-32 of itself::

    SDE-BEGIN count=50000 size=200 rate=0 pid=4242
    SDE 000000000 klmnop...xyzABC 9f3a61c2
    SDE 000000001 lmnopq...yzABCD 0c51e7aa
    ...
    SDE-END lines=50000

Why this format:

* A terminal's line discipline turns ``\\n`` into ``\\r\\n`` (ONLCR), so the verifier splits on
  ``\\n`` and drops a trailing ``\\r``; the checksum covers only the text before the CRC field,
  never the line ending.
* Every line has the same width (``--size`` bytes including the ``\\n``), so a gap of ``k``
  sequence numbers is exactly ``k * size`` bytes lost.
* The header resets the verifier: a restarted program starts a new stream at sequence 0, and
  the trailer says how many lines the stream should have had, so a lost tail is counted too.
  A stream cut short by a crash has no trailer; what the program never wrote is not "lost".
* Lines that do not start with ``SDE`` (a shell prompt, echoed input) are ignored, so the same
  verifier runs on any session's output at almost no cost.

Lines are generated in batches and written with one ``write`` per batch, paced against the
clock (not with a sleep per line), so ``--rate 10000`` really is 10,000 lines a second.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
import zlib
from dataclasses import dataclass

__all__ = ["LineVerifier", "VerifierDelta", "format_line", "main"]

PREFIX = b"SDE "
BEGIN = b"SDE-BEGIN"
END = b"SDE-END"
MIN_SIZE = 32  # "SDE " + 9-digit seq + " " + payload + " " + 8 hex + "\n"
_FIXED = len(PREFIX) + 9 + 1 + 1 + 8 + 1  # everything but the payload
_ALPHABET = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def _payload_source(size: int) -> bytes:
    width = max(size - _FIXED, 1)
    return _ALPHABET * (width // len(_ALPHABET) + 2)


def format_line(seq: int, size: int, source: bytes | None = None) -> bytes:
    """One emit line of exactly ``size`` bytes including the trailing newline."""
    width = max(size - _FIXED, 1)
    source = source if source is not None else _payload_source(size)
    offset = seq % len(_ALPHABET)
    body = b"SDE %09d %s" % (seq, source[offset : offset + width])
    return b"%s %08x\n" % (body, zlib.crc32(body))


@dataclass(frozen=True)
class VerifierDelta:
    """What a verifier learned since the last :meth:`LineVerifier.take_delta`."""

    ok: int
    lost: int
    bytes_lost: int


class LineVerifier:
    """Checks a byte stream of emit lines for continuity: lost, corrupt and duplicated lines.

    Feed it raw bytes as they arrive (any chunking); call :meth:`end_stream` when the program
    behind the stream is gone, so a torn last line is dropped rather than glued to the next
    program's first line. Counters are cumulative over the session's whole life.
    """

    def __init__(self) -> None:
        self._partial = b""
        self.expected = 0  # next sequence number of the current stream
        self.size = 0  # line width of the current stream, from its header or its lines
        self.in_stream = False
        self.streams = 0
        self.streams_complete = 0
        self.lines_ok = 0
        self.lines_lost = 0
        self.bytes_lost = 0
        self.lines_corrupt = 0
        self.lines_duplicate = 0
        self.other_lines = 0
        self._reported = (0, 0, 0)

    @property
    def lines_expected(self) -> int:
        return self.lines_ok + self.lines_lost

    @property
    def loss_rate(self) -> float:
        expected = self.lines_expected
        return self.lines_lost / expected if expected else 0.0

    def feed(self, data: bytes) -> None:
        if not data:
            return
        if self._partial:
            data = self._partial + data
        cut = data.rfind(b"\n")
        if cut < 0:
            self._partial = data[-65536:]
            return
        self._partial = data[cut + 1 :][-65536:]
        if PREFIX not in data and b"SDE-" not in data:
            self.other_lines += data.count(b"\n", 0, cut + 1)
            return
        # The hot loop (a million lines in the PTY benchmark): data lines are checked inline,
        # which halves the cost per line against a method call or two each; the bookkeeping
        # that is not the common "next line, in order" case stays in ``_accept``.
        crc32 = zlib.crc32
        for line in data[:cut].split(b"\n"):
            if not line.startswith(PREFIX):
                self._line(line)
                continue
            if line.endswith(b"\r"):
                line = line[:-1]
            body, _, crc = line.rpartition(b" ")
            try:
                seq = int(body[4:13]) if len(crc) == 8 and int(crc, 16) == crc32(body) else -1
            except ValueError:
                seq = -1
            if seq == self.expected and self.in_stream and self.size:
                self.lines_ok += 1
                self.expected = seq + 1
            else:
                self._accept(seq, len(line))

    def _line(self, line: bytes) -> None:
        if line.endswith(b"\r"):
            line = line[:-1]
        if line.startswith(PREFIX):
            self._data_line(line)
        elif line.startswith(BEGIN):
            self._begin(line)
        elif line.startswith(END):
            self._end(line)
        else:
            self.other_lines += 1

    def _data_line(self, line: bytes) -> None:
        body, _, crc = line.rpartition(b" ")
        try:
            seq = int(body[4:13]) if len(crc) == 8 and int(crc, 16) == zlib.crc32(body) else -1
        except ValueError:
            seq = -1
        self._accept(seq, len(line))

    def _accept(self, seq: int, length: int) -> None:
        """A data line of ``length`` bytes (without its line ending) with sequence ``seq``,
        -1 when its checksum failed."""
        if seq < 0:
            # A torn or merged line: its sequence number cannot be trusted. The next good line
            # shows the gap, which is where it is counted as lost.
            self.lines_corrupt += 1
            return
        if not self.in_stream:
            self.in_stream = True
            self.streams += 1
        if not self.size:
            self.size = length + 1
        if seq < self.expected:
            self.lines_duplicate += 1
            return
        if seq > self.expected:
            self._lose(seq - self.expected)
        self.lines_ok += 1
        self.expected = seq + 1

    def _fields(self, line: bytes) -> dict[bytes, int]:
        fields: dict[bytes, int] = {}
        for part in line.split()[1:]:
            key, _, value = part.partition(b"=")
            try:
                fields[key] = int(value)
            except ValueError:
                continue
        return fields

    def _begin(self, line: bytes) -> None:
        fields = self._fields(line)
        self.in_stream = True
        self.streams += 1
        self.expected = 0
        self.size = fields.get(b"size", 0)

    def _end(self, line: bytes) -> None:
        total = self._fields(line).get(b"lines")
        if total is not None and total > self.expected:
            self._lose(total - self.expected)
            self.expected = total
        self.in_stream = False
        self.streams_complete += 1

    def _lose(self, count: int) -> None:
        self.lines_lost += count
        self.bytes_lost += count * (self.size or 0)

    def end_stream(self) -> None:
        """The writer is gone (exited, killed): drop its torn last line, expect a new header."""
        self._partial = b""
        self.in_stream = False
        self.expected = 0

    def take_delta(self) -> VerifierDelta:
        """Counts since the previous call, for recording metrics in batches."""
        now = (self.lines_ok, self.lines_lost, self.bytes_lost)
        before = self._reported
        self._reported = now
        return VerifierDelta(now[0] - before[0], now[1] - before[1], now[2] - before[2])


def _parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="stressdeck emit",
        description="Print sequence-numbered, checksummed lines for output-loss tests.",
    )
    parser.add_argument(
        "--count", type=int, default=50_000, help="lines to print; 0 = forever (default 50000)"
    )
    parser.add_argument(
        "--rate", type=float, default=0.0, help="lines per second; 0 = as fast as possible"
    )
    parser.add_argument(
        "--size",
        type=int,
        default=200,
        help=f"bytes per line including the newline (>= {MIN_SIZE}; default 200)",
    )
    parser.add_argument(
        "--exit-code", type=int, default=0, help="exit status after the last line (default 0)"
    )
    parser.add_argument(
        "--linger",
        type=float,
        default=0.0,
        help="seconds to stay alive after the last line; -1 = until killed",
    )
    args = parser.parse_args(argv)
    if args.size < MIN_SIZE:
        parser.error(f"--size must be at least {MIN_SIZE}")
    if args.count < 0 or args.rate < 0:
        parser.error("--count and --rate cannot be negative")
    return args


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def emit(
    fd: int,
    *,
    count: int,
    rate: float,
    size: int,
) -> int:
    """Write the header, ``count`` lines (forever when 0) paced at ``rate``, and the trailer."""
    _write_all(
        fd, b"SDE-BEGIN count=%d size=%d rate=%g pid=%d\n" % (count, size, rate, os.getpid())
    )
    source = _payload_source(size)
    batch_max = max(1, 65536 // size)
    start = time.monotonic()
    seq = 0
    while count == 0 or seq < count:
        if rate > 0:
            due = int((time.monotonic() - start) * rate) + 1
            n = min(due - seq, batch_max)
            if n <= 0:
                time.sleep(min(max((seq + 1) / rate - (time.monotonic() - start), 0.0005), 0.05))
                continue
        else:
            n = batch_max
        if count:
            n = min(n, count - seq)
        _write_all(fd, b"".join(format_line(s, size, source) for s in range(seq, seq + n)))
        seq += n
    _write_all(fd, b"SDE-END lines=%d\n" % seq)
    return seq


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(sys.argv[1:] if argv is None else argv)
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    try:
        emit(
            sys.stdout.fileno(),
            count=args.count,
            rate=args.rate,
            size=args.size,
        )
    except (BrokenPipeError, KeyboardInterrupt):
        return 1
    if args.linger < 0:
        while True:
            time.sleep(3600)
    if args.linger > 0:
        time.sleep(args.linger)
    return int(args.exit_code)


if __name__ == "__main__":
    raise SystemExit(main())
