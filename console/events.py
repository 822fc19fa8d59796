"""Events and the JSONL event log.

One JSON object per line, with the SPIKE-2 runbook's fields first, so the runbook's ``grep`` and
``python3 -c`` extraction commands work unchanged on Stressdeck's log::

    {"ts": "2026-02-07T12:00:00.123456+00:00", "session_id": "ssh#3", "host": "127.0.0.1:2222",
     "event": "reconnected", "detail": "...", "elapsed_ms": 1069.2, "attempt": 1,
     "success": true, "kind": "ssh", "run": "20260207T120000Z-spike2-ssh-pool"}

Fault events also carry ``source`` (``schedule``, ``key``, ``api`` or ``replay``) and
``fault_id``. Extra structured values go under ``data``.

Durability: lines are buffered in memory and written with one ``os.write`` per flush, at least
every :data:`FLUSH_INTERVAL` seconds. ``os.write`` hands the bytes to the kernel, so a console
killed with SIGKILL loses at most the last flush interval of events and never leaves a torn line
(a flush only ever writes whole lines). On a full disk or EIO a short write can land part of a
line: the file is then truncated back to its last whole line (see :meth:`EventLog.flush`). An ``fsync`` is not needed for that guarantee: it guards
against a machine crash, which is not what a soak test's operator usually fears, and it would
put disk latency on the event loop.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from console.files import json_text, open_private, private_dir
from console.sanitize import clean, clean_data

__all__ = ["FLUSH_INTERVAL", "WRITE_FAILED", "Event", "EventLog"]

FLUSH_INTERVAL = 0.25
_FLUSH_BYTES = 256 * 1024
_MAX_PENDING = 16 * 1024 * 1024  # what a failing disk may hold back in memory
# The event that says a run file lost data; ``data.file`` names it, ``detail`` says how much.
WRITE_FAILED = "log_write_failed"


@dataclass(frozen=True)
class Event:
    """One thing that happened. Immutable, so the UI can keep references to it safely."""

    ts: str
    session_id: str | None
    host: str | None
    event: str
    detail: str = ""
    elapsed_ms: float | None = None
    attempt: int | None = None
    success: bool | None = None
    kind: str = "run"
    run: str = ""
    source: str | None = None
    fault_id: int | None = None
    data: dict[str, Any] = field(default_factory=dict)
    t: float = 0.0  # seconds since the run started; not written to the log (ts says it)

    def line(self) -> str:
        """One line for a pane: ``reconnected after drop 1069ms (attempt 1)``."""
        text = self.event + (f" {self.detail}" if self.detail else "")
        if self.elapsed_ms is not None:
            text += f" {self.elapsed_ms:.0f}ms"
        if self.attempt is not None:
            text += f" (attempt {self.attempt})"
        return text

    def to_json(self) -> str:
        record = asdict(self)
        record.pop("t")
        for optional in ("source", "fault_id"):
            if record[optional] is None:
                record.pop(optional)
        if not record["data"]:
            record.pop("data")
        return json_text(record, ensure_ascii=False, separators=(", ", ": "), default=str)


def iso_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def iso_at(unix: float) -> str:
    """An event timestamp for a Unix time (runs stamp events on their own clock)."""
    return datetime.fromtimestamp(unix, timezone.utc).isoformat(timespec="microseconds")


class EventMaker:
    """Makes events stamped with the maker's clock: the run, and a cluster pool's recorder
    (whose events the console makes again on its own clock)."""

    run_name: str

    def now(self) -> float:
        raise NotImplementedError

    def timestamp(self) -> str:
        raise NotImplementedError

    def redact(self, value: Any) -> Any:
        """A text or JSON-like value with the run's secrets masked (a run:
        :meth:`console.secrets.Secrets.redact`; nothing to mask here)."""
        return value

    def make_event(
        self,
        name: str,
        *,
        session_id: str | None,
        host: str | None,
        kind: str,
        detail: str = "",
        elapsed_ms: float | None = None,
        attempt: int | None = None,
        success: bool | None = None,
        data: Mapping[str, Any] | None = None,
        source: str | None = None,
        fault_id: int | None = None,
    ) -> Event:
        # Every event passes here: details and data carry remote text (SSH reasons, stderr,
        # HTTP errors, program output), so this is where it loses its control characters.
        # The run's secrets are masked here, once for the log, the panes and the snapshots, and
        # before the text is cut: a cut through a secret leaves a head no redactor recognises.
        return Event(
            ts=self.timestamp(),
            session_id=session_id,
            host=self.redact(host) if host else host,
            event=name,
            detail=clean(self.redact(detail)),
            elapsed_ms=None if elapsed_ms is None else round(elapsed_ms, 3),
            attempt=attempt,
            success=success,
            kind=kind,
            run=self.run_name,
            source=source,
            fault_id=fault_id,
            data=clean_data(self.redact(data)) if data else {},
            t=self.now(),
        )


# Events kept in memory: what the snapshot carries to the event log panel and the detail view,
# as many as the panel keeps lines. The whole log is on disk (events.jsonl). A longer ring and
# panel only made the console's memory climb for the first hour of a soak: each line the panel
# keeps is a Strip with its caches, about 5 kB; 500 of them took 10 minutes of the demo to fill.
RECENT_EVENTS = 200


class EventLog:
    """Appends events to ``events.jsonl`` and keeps the most recent ones in memory for the UI.

    The file is 0600 in a 0700 directory from its creation. Events come redacted from
    :meth:`EventMaker.make_event` (the run's :meth:`console.secrets.Secrets.redact`), so no
    secret value reaches the log or the screen.
    """

    def __init__(
        self,
        path: Path | None,
        run_name: str,
        *,
        keep: int = RECENT_EVENTS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = path
        self.run_name = run_name
        self.recent: deque[Event] = deque(maxlen=keep)
        self.count = 0
        self.dropped = 0  # lines lost to write errors
        self.write_error = ""  # the latest write error, "" once writes succeed again
        self.failed_writes = 0  # flushes that failed (and were retried)
        self.written = 0  # lines that reached the file
        self._pending: list[str] = []
        self._pending_bytes = 0
        self._fd: int | None = None
        self._good = 0
        self._torn = False  # a failed write may have left part of a line after _good
        self._monotonic = monotonic
        self._last_flush = monotonic()
        if path is not None:
            self._fd = open_private(private_dir(path.parent) / path.name)
            self._good = os.fstat(self._fd).st_size  # end of the last whole line written

    def log(self, event: Event) -> Event:
        self.recent.append(event)
        self.count += 1
        if self._fd is not None:
            line = event.to_json() + "\n"
            self._pending.append(line)
            self._pending_bytes += len(line)
            if (
                self._pending_bytes >= _FLUSH_BYTES
                or self._monotonic() - self._last_flush >= FLUSH_INTERVAL
            ):
                self.flush()
        return event

    @property
    def pending_lines(self) -> int:
        return len(self._pending)

    def flush(self) -> None:
        """Write every pending line with one system call; whole lines only.

        Never raises: the run must not die of its own log. On a write error (a full disk, EIO)
        a short write may have landed part of a line, so the file is cut back to the end of
        the last whole line before anything else is written, and the lines stay pending to be
        tried again at the next flush, up to :data:`_MAX_PENDING` bytes; beyond that the
        oldest are dropped and counted in ``dropped``.
        """
        self._last_flush = self._monotonic()
        if self._fd is None or not self._pending:
            return
        data = "".join(self._pending).encode()
        try:
            self._cut_torn_tail()
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError as exc:
            self.write_error = f"{type(exc).__name__}: {exc}"
            self.failed_writes += 1
            self._torn = True
            with contextlib.suppress(OSError):
                self._cut_torn_tail()
            self._bound_pending()
            return
        self._good += len(data)
        self.written += len(self._pending)
        self.write_error = ""
        self._pending.clear()
        self._pending_bytes = 0

    def _cut_torn_tail(self) -> None:
        """After a failed write, truncate back to the last whole line (raises if it cannot:
        then nothing more is appended, so no line is ever glued to a torn one)."""
        if self._torn and self._fd is not None:
            os.ftruncate(self._fd, self._good)
            self._torn = False

    def _bound_pending(self) -> None:
        while self._pending_bytes > _MAX_PENDING and self._pending:
            self._pending_bytes -= len(self._pending.pop(0))
            self.dropped += 1

    def close(self) -> None:
        """Flush and close; lines that still cannot be written are counted as dropped."""
        self.flush()
        self.dropped += len(self._pending)
        self._pending.clear()
        self._pending_bytes = 0
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def tail(self, n: int) -> tuple[Event, ...]:
        skip = len(self.recent) - n
        return tuple(itertools.islice(self.recent, skip, None) if skip > 0 else self.recent)
