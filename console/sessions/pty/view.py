"""The console's view of a PTY session: counters most important first, output, sparklines."""

from __future__ import annotations

from typing import TYPE_CHECKING

from console.snapshot import SessionSnapshot
from console.units import format_bytes

if TYPE_CHECKING:
    from console.sessions.pty.session import PtySession

__all__ = ["PTY_ACTIONS", "session_view"]

TAIL_LINES = 20
PTY_ACTIONS = ("pty.kill", "pty.term", "pty.hang", "pty.resume", "pty.restart")


def session_view(session: PtySession) -> SessionSnapshot:
    """An immutable snapshot; the pane shows ``counters``, the detail screen ``details``."""
    output, v = session.output, session.verifier
    rate = session.series["output"].last or 0.0
    alive = session.pid is not None
    counters: list[tuple[str, str]] = [
        ("out", format_bytes(output.bytes)),
        ("rate", f"{format_bytes(rate)}/s"),
        ("lines", f"{output.lines:,}"),
        ("lost", f"{v.lines_lost:,}" if v.streams else "-"),
        ("restarts", str(session.restarts)),
        ("rss", format_bytes(session.rss) if alive else "-"),
        ("cpu", f"{session.cpu_pct:.0f}%" if alive else "-"),
        ("exit", session.last_exit.describe() if session.last_exit is not None else "-"),
    ]
    growth = session.growth.mb_per_hour
    details = [
        *counters,
        ("pid", str(session.pid or "-")),
        ("attempt", str(session.attempt)),
        ("crashes", str(session.crashes)),
        ("unsolicited crashes", str(session.unsolicited_crashes)),
        ("verified lines", f"{v.lines_ok:,}"),
        ("bytes lost", format_bytes(v.bytes_lost)),
        ("corrupt lines", str(v.lines_corrupt)),
        ("duplicate lines", str(v.lines_duplicate)),
        ("other lines", f"{v.other_lines:,}"),
        ("emit streams", f"{v.streams_complete}/{v.streams} complete"),
        ("loss rate", f"{v.loss_rate:.4%}"),
        ("memory growth", f"{growth:.1f} MB/h" if growth is not None else "-"),
        ("restart policy", session.config.restart),
        ("output file", str(output.path) if output.path else "-"),
        ("output not written", format_bytes(output.dropped_bytes)),
    ]
    return session.make_view(
        series=session.series_views({"output": "B/s", "rss": "MB"}),
        counters=tuple(counters),
        output_tail=output.tail(TAIL_LINES, 8192),
        details=tuple(details),
        actions=PTY_ACTIONS,
    )
