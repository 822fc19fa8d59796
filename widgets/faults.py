"""The faults injected so far, newest first, with where they came from and what they reached."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.text import Text
from textual import events
from textual.binding import BindingType

from console.ledger import entry_verdict, impact_text
from console.snapshot import FaultRecord, LedgerEntry
from console.ui.keys import FAULT_BINDINGS
from widgets.header import clock_text
from widgets.lines import TextLines, wrapped

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


def impact_lines(entry: LedgerEntry, *, detail: bool = True, width: int = 1000) -> list[Text]:
    """Under a fault: its verdict, then (``detail``) what it did to each group's key metrics,
    wrapped at ``width`` (a recovery time cut to "back after 11.…" says nothing)."""
    state, text = entry_verdict(entry)
    lines = wrapped(Text(f"    {text}", style=VERDICT_STYLES.get(state, "dim")), width, 6)
    for impact in entry.impacts if detail else ():
        if impact.state != "no baseline":
            line = Text(f"    {impact.group} {impact_text(impact)}", style="dim")
            lines += wrapped(line, width, 6)
    return lines


class FaultsPanel(TextLines, can_focus=True):
    """Faults, newest first; under each its verdict from the ledger (console.ledger), and under
    the selected one (the newest, until the operator moves the selection with the panel
    focused) what it did to each metric of each group it reached."""

    BINDINGS: ClassVar[list[BindingType]] = list(FAULT_BINDINGS)

    def __init__(
        self, *, name: str | None = None, id: str | None = None, classes: str | None = None
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._shown: list[FaultRecord] = []  # newest first
        self._impacts: dict[int, LedgerEntry] = {}
        self._selected: int | None = None  # a fault id; None: the newest

    def show(
        self,
        faults: Sequence[FaultRecord],
        limit: int = 50,
        ledger: Sequence[LedgerEntry] = (),
    ) -> None:
        self._shown = list(reversed(faults[-limit:]))
        self._impacts = {entry.fault_id: entry for entry in ledger}
        self._draw()

    @property
    def selected(self) -> FaultRecord | None:
        ids = [f.id for f in self._shown]
        if self._selected in ids:
            return self._shown[ids.index(self._selected)]
        return self._shown[0] if self._shown else None

    def action_select(self, step: int) -> None:
        current = self.selected
        if current is None:
            return
        index = min(max(self._shown.index(current) + step, 0), len(self._shown) - 1)
        self._selected = self._shown[index].id
        self._draw()

    def on_focus(self) -> None:
        self._draw()

    def on_blur(self) -> None:
        self._draw()

    def on_resize(self, event: events.Resize) -> None:
        # Lines wrap at the width they were drawn at; after the run's end no snapshot redraws
        # them. (Textual then calls TextLines.on_resize too.)
        self._draw()

    def _draw(self) -> None:
        chosen = self.selected
        lines: list[Text] = []
        for fault in self._shown:
            line = fault_line(fault)
            if fault is chosen and self.has_focus:
                line.stylize("reverse")
            lines.append(line)
            if (entry := self._impacts.get(fault.id)) is not None:
                width = max(self.scrollable_content_region.width, 20)
                lines += impact_lines(entry, detail=fault is chosen, width=width)
        self.set_lines(lines or [Text("no faults yet", style="dim")])
