"""What a PTY session keeps of its program's output: counts, a bounded screen, a lossless file.

Every byte read is counted, fed to the :class:`~console.emit.LineVerifier`, appended to a
display buffer that never holds more than twice ``display_bytes`` (trimmed in one slice, not per
chunk), and, when the profile asks, to ``<run_dir>/output/<session>.log``.

The file is written from a memory buffer, flushed once a second by the session's sampler or when
it reaches 1 MB, with plain ``os.write``: writes to a regular file land in the page cache and do
not wait for the disk, so they cost the loop a memory copy. Nothing is dropped if the disk is
slow; the buffer only grows until the next write returns. If a write *fails* (a full disk, EIO)
the buffered bytes are dropped and counted in ``dropped_bytes``; the session reports them. The file is
0600 from its creation (:mod:`console.files`): a program's output is the operator's business only.
"""

from __future__ import annotations

import os
from pathlib import Path

from console.emit import LineVerifier
from console.files import open_private, private_dir
from console.sanitize import all_unchanged, clean

__all__ = ["SessionOutput", "text_lines"]

FLUSH_BYTES = 1 << 20
LINE_LIMIT = 512  # characters of one output line worth showing in a pane or a crash event


def text_lines(raw: bytes, keep: int) -> tuple[str, ...]:
    """The last ``keep`` lines of raw terminal output, safe to draw.

    Colours are removed and every other escape sequence shown as text (see
    :mod:`console.sanitize`); a bare CR redraws the line, so only its last part is kept.
    """
    text = raw.decode("utf-8", "replace")
    # Plain output (the common case): lines ending in CRLF and nothing to neutralise, which
    # one scan of them all can tell; anything else is done line by line below.
    split = text.rsplit("\n", keep + 1)[-keep - 1 :]
    plain = [line[:-1] if line.endswith("\r") else line for line in split]
    if plain and not plain[-1]:
        plain.pop()
    if all_unchanged(plain, LINE_LIMIT):
        return tuple(plain[-keep:])
    lines = []
    for line in split:
        line = line.rstrip("\r").rsplit("\r", 1)[-1]
        lines.append(clean(line, drop_style=True, limit=LINE_LIMIT))
    if lines and not lines[-1]:
        lines.pop()
    return tuple(lines[-keep:])


class SessionOutput:
    def __init__(self, display_bytes: int, path: Path | None) -> None:
        self.path = path
        self.bytes = 0
        self.lines = 0
        self.verifier = LineVerifier()
        self.display_cap = display_bytes
        self._display = bytearray()
        self._pending = bytearray()
        self._fd: int | None = None
        self.dropped_bytes = 0  # output that could not be written to the file
        self.write_error = ""  # the latest write error, "" once a write succeeds
        self._tail: tuple[int, int, int, tuple[str, ...]] = (-1, 0, 0, ())  # bytes, keep, window

    def open(self) -> None:
        if self.path is not None and self._fd is None:
            self._fd = open_private(private_dir(self.path.parent) / self.path.name)

    def feed(self, data: bytes) -> int:
        """Account for one chunk; return the number of newlines in it."""
        self.bytes += len(data)
        newlines = data.count(b"\n")
        self.lines += newlines
        self._display += data
        if len(self._display) > 2 * self.display_cap:
            del self._display[: -self.display_cap]
        if self._fd is not None:
            self._pending += data
            if len(self._pending) >= FLUSH_BYTES:
                self.flush()
        self.verifier.feed(data)
        return newlines

    def flush(self) -> None:
        """Write what is buffered; on a write error (full disk, EIO) drop it and count it.

        Never raises: the program's output keeps being read and counted either way.
        """
        if self._fd is None or not self._pending:
            return
        view = memoryview(self._pending)
        try:
            while view:
                view = view[os.write(self._fd, view) :]
            self.write_error = ""
        except OSError as exc:
            self.dropped_bytes += len(view)
            self.write_error = exc.strerror or str(exc)
        finally:
            view.release()
            self._pending.clear()

    def close(self) -> None:
        self.flush()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def screen(self) -> bytes:
        return bytes(self._display[-self.display_cap :])

    def tail(self, keep: int, window: int = 16384) -> tuple[str, ...]:
        """The last ``keep`` lines; computed again only once more output has arrived (a quiet
        session's view, four times a second, costs nothing here)."""
        seen, kept, width, lines = self._tail
        if (seen, kept, width) != (self.bytes, keep, window):
            lines = text_lines(bytes(self._display[-window:]), keep)
            self._tail = (self.bytes, keep, window, lines)
        return lines
