"""The pane of an SSH session: state, reconnects, remote CPU/memory sparklines, PTY output.

Counters come most important first, as the pane shows as many as fit: reconnect count and
last reconnect time (what a drop test is about), then the remote host's figures.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from console.snapshot import SessionSnapshot

if TYPE_CHECKING:
    from console.sessions.ssh.session import SshSession

__all__ = ["session_view"]


def _fmt_pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}%"


def _fmt_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def session_view(session: SshSession) -> SessionSnapshot:
    """An immutable snapshot of ``session`` for the console and exports."""
    reconnect = (
        "-" if session.last_reconnect_ms is None else f"{session.last_reconnect_ms / 1000:.2f}s"
    )
    counters = (
        ("reconnects", str(session.reconnects)),
        ("last reconnect", reconnect),
        ("cpu", _fmt_pct(session.cpu)),
        ("mem", _fmt_pct(session.mem)),
        ("disk", _fmt_pct(session.disk)),
        ("pty", _fmt_bytes(session.pty_bytes)),
    )
    details = (
        *counters,
        ("polls", str(session.polls)),
        ("poll failures", str(session.poll_failures)),
        ("pty cycles", str(session.pty_cycles)),
        ("pty errors", str(session.pty_errors)),
        ("reconnect attempts", str(session.reconnect_attempts)),
        ("connect time", "-" if session.connect_ms is None else f"{session.connect_ms:.0f}ms"),
        ("auth", session.cfg.auth),
        ("host key", "verified" if session.cfg.verify_host_key else "UNCHECKED"),
        ("last error", session.last_error or "-"),
    )
    faults = ["ssh.drop", "ssh.auth_fail", "ssh.reconnect"]
    if session.embedded is not None:
        faults.append("ssh.server_restart")
    pty = session.pty_channel
    return session.snapshot(
        series=session.series_views({"cpu": "%", "mem": "%"}),
        counters=counters,
        output_tail=tuple(pty.tail) if pty is not None else (),
        details=details,
        actions=tuple(faults),
    )
