"""The faults injected so far, newest first, with where they came from and what they reached."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text

from console.ledger import entry_verdict, impact_text
from console.snapshot import FaultRecord, LedgerEntry
from widgets.header import clock_text
from widgets.lines import TextLines

__all__ = ["FaultsPanel", "fault_line", "impact_lines"]

# One mark per console.snapshot.FAULT_SOURCES (tests/test_app_screens.py checks it).
SOURCE_MARKS = {
    "schedule": "⏱",
    "key": "⌨",
    "command": ":",
    "api": "⚙",
    "replay": "↺",
    "observed": "!",
    "chaos": "~",
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


VERDICT_STYLES = {"pass": "green", "fail": "red", "skip": "yellow", "none": "dim"}


def impact_lines(entry: LedgerEntry, *, detail: bool = True) -> list[Text]:
    """Under a fault: its verdict, then (``detail``) what it did to each group's key metrics."""
    state, text = entry_verdict(entry)
    lines = [Text(f"    {text}", style=VERDICT_STYLES.get(state, "dim"))]
    for impact in entry.impacts if detail else ():
        if impact.state != "no baseline":
            lines.append(Text(f"    {impact.group} {impact_text(impact)}", style="dim"))
    return lines


class FaultsPanel(TextLines):
    """Faults, newest first; under each its verdict from the ledger (console.ledger), and under
    the newest what it did to each metric (the detail screen's place for older ones)."""

    def show(
        self,
        faults: Sequence[FaultRecord],
        limit: int = 50,
        ledger: Sequence[LedgerEntry] = (),
    ) -> None:
        impacts = {entry.fault_id: entry for entry in ledger}
        lines: list[Text] = []
        for fault in reversed(faults[-limit:]):
            lines.append(fault_line(fault))
            if (entry := impacts.get(fault.id)) is not None:
                lines += impact_lines(entry, detail=len(lines) == 1)
        self.set_lines(lines or [Text("no faults yet", style="dim")])
