"""Textual's Linux driver, made to survive its terminal going away.

Why: when the terminal hangs up (tmux session killed, SSH link lost), a write to it fails with
EIO. Textual's writer thread has no handler for that, so it dies on the first failed write; its
queue holds 30 writes, and the next 30 writes (the UI thread disabling mouse reporting at
shutdown, a frame, the alt-screen reset) fill it. The UI thread then blocks in ``Queue.put``
for ever, after the final snapshot was written but before the process can exit. The hangup's
SIGCONT also makes the driver restart application mode with a fresh writer thread, which
drains a new queue while the UI thread stays parked on the old one.

Here output to a terminal that is gone is dropped instead, so shutdown runs to its end, and a
read error on the terminal (EIO after the hangup) is reported to the app as "the terminal is
gone" instead of a panic with a traceback nobody can see.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from typing import IO, Any

from textual.drivers.linux_driver import LinuxDriver

__all__ = ["HangupSafeDriver", "detach_from_terminal"]


class _DroppingFile:
    """A text file whose writes are dropped once the terminal behind it is gone."""

    def __init__(self, file: IO[str], on_gone: Callable[[], None]) -> None:
        self._file = file
        self._on_gone = on_gone
        self.gone = False

    def write(self, text: str) -> int:
        if not self.gone:
            try:
                return self._file.write(text)
            except OSError:
                self._gone()
        return len(text)

    def flush(self) -> None:
        if not self.gone:
            try:
                self._file.flush()
            except OSError:
                self._gone()

    def _gone(self) -> None:
        self.gone = True
        self._on_gone()

    def fileno(self) -> int:
        return self._file.fileno()

    def isatty(self) -> bool:
        return self._file.isatty()


class HangupSafeDriver(LinuxDriver):
    """Calls ``app.terminal_gone()`` (if the app has it) once the terminal stops working."""

    def __init__(self, app: Any, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self._app_loop = asyncio.get_running_loop()  # drivers are made inside App.run
        self._gone_reported = False
        if self._file is not None:
            self._file = _DroppingFile(self._file, self._report_gone)  # type: ignore[assignment]

    def _report_gone(self) -> None:  # any thread
        if self._gone_reported:
            return
        self._gone_reported = True
        hook = getattr(self._app, "terminal_gone", None)
        if hook is not None:
            with contextlib.suppress(RuntimeError):  # the app's loop has already closed
                self._app_loop.call_soon_threadsafe(hook)

    def _run_input_thread(self) -> None:
        try:
            self.run_input_thread()
        except OSError:  # EIO: the terminal hung up
            self._report_gone()
        except BaseException:  # as Textual does: a bug in input handling is a panic
            import rich.traceback

            self._app.call_later(self._app.panic, rich.traceback.Traceback())


def detach_from_terminal() -> None:
    """Point stdout and stderr at /dev/null once the terminal is gone, so that whatever is
    still buffered for it (a summary, a warning) cannot fail the exit with EIO."""
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        for fd in (1, 2):
            os.dup2(null, fd)
    finally:
        os.close(null)
