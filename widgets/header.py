"""The run header: profile name, run state and elapsed / total time on one line.

It draws from the snapshot only (never the wall clock), so an SVG snapshot of it is
deterministic.
"""

from __future__ import annotations

from rich.text import Text
from textual import events

from console.snapshot import RunSnapshot
from widgets.lines import TextLines

__all__ = ["RunHeader", "clock_text"]

STATE_STYLES = {
    "starting": "bold yellow",
    "running": "bold green",
    "paused": "bold magenta",
    "stopping": "bold yellow",
    "finished": "bold cyan",
    "aborted": "bold red",
}


def clock_text(seconds: float) -> str:
    """``3725`` -> ``1:02:05``; ``65`` -> ``01:05``."""
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


class RunHeader(TextLines):
    """One line: ``Stressdeck  profile  RUNNING  01:05 / 30:00 ▕████░░░▏ 3 faults``."""

    DEFAULT_CSS = """
    RunHeader { height: 1; background: $panel; }
    """

    _shown: tuple[RunSnapshot | None, str] = (None, "")

    def on_resize(self, event: events.Resize) -> None:
        self.show(*self._shown)  # the bar comes and goes with the width

    def show(self, snapshot: RunSnapshot | None, note: str = "") -> None:
        self._shown = (snapshot, note)
        line = Text(" Stressdeck ", style="bold reverse")
        if snapshot is None:
            line.append("  waiting for the engine…", style="dim")
            self.set_lines([line])
            return
        line.append(f" {snapshot.profile_name} ", style="bold")
        line.append(f" {snapshot.state.upper()} ", style=STATE_STYLES.get(snapshot.state, "bold"))
        if snapshot.state == "paused" and snapshot.paused:
            line.append(f" {snapshot.paused} ", style="magenta")
        total = snapshot.duration
        line.append(f" {clock_text(snapshot.elapsed)} / {clock_text(total)} ")
        if total > 0:
            done = max(0.0, min(1.0, snapshot.elapsed / total))
            cells = 10
            filled = int(done * cells + 0.5)
            if not 0 < self.size.width < 100:  # at 80 columns the counts matter more than a bar
                line.append("▕" + "█" * filled + "░" * (cells - filled) + "▏", style="cyan")
            line.append(f" {done * 100:3.0f}%")
        failing = sum(1 for c in snapshot.criteria if c.state == "fail")
        line.append(f"  {len(snapshot.sessions)} sessions  {snapshot.fault_count} faults")
        if failing:
            line.append(f"  {failing} failing", style="bold red")
        if snapshot.abort_reason:
            line.append(f"  aborted: {snapshot.abort_reason}", style="bold red")
        if note:
            line.append(f"  {note}", style="italic")
        self.set_lines([line])
