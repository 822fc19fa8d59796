"""The faults injected so far, newest first, with where they came from and what they reached."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text

from console.snapshot import FaultRecord
from widgets.header import clock_text
from widgets.lines import TextLines

__all__ = ["FaultsPanel", "fault_line"]

# One mark per console.snapshot.FAULT_SOURCES (tests/test_app_screens.py checks it).
SOURCE_MARKS = {
    "schedule": "⏱",
    "key": "⌨",
    "command": ":",
    "api": "⚙",
    "replay": "↺",
    "observed": "!",
}


def fault_line(fault: FaultRecord) -> Text:
    line = Text(f"{clock_text(fault.t)} ", style="dim")
    line.append(SOURCE_MARKS.get(fault.source, "·") + " ")
    line.append(fault.action, style="bold")
    reached = len(fault.sessions)
    where = (
        fault.sessions[0]
        if reached == 1
        else f"{fault.target} ({reached})"
        if reached
        else fault.target
    )
    line.append(f" → {where}")
    if fault.note:
        line.append(f"  {fault.note}", style="yellow")
    return line


class FaultsPanel(TextLines):
    def show(self, faults: Sequence[FaultRecord], limit: int = 50) -> None:
        lines = [fault_line(f) for f in reversed(faults[-limit:])]
        self.set_lines(lines or [Text("no faults yet", style="dim")])
