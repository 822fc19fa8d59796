"""The live criteria panel: each criterion's verdict with its current value against its target."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual import events

from console.snapshot import CriterionSnapshot
from widgets.lines import TextLines

__all__ = ["CriteriaPanel", "criterion_lines"]

VERDICTS = {
    "pass": ("✔ PASS", "bold green"),
    "fail": ("✘ FAIL", "bold red"),
    "pending": ("… WAIT", "yellow"),
}


def criterion_lines(criterion: CriterionSnapshot, width: int) -> list[Text]:
    """One line when it fits the panel, else the name and then value vs target below it."""
    mark, style = VERDICTS.get(criterion.state, (criterion.state.upper(), "bold"))
    head = Text(f"{mark} ", style=style)
    head.append(criterion.name, style="bold")
    value = Text(f"{criterion.value_text} ")
    value.append(f"(target {criterion.target_text})", style="dim")
    if criterion.abort_on_fail:
        value.append(" abort", style="red")
    if head.cell_len + 2 + value.cell_len <= width:
        return [Text.assemble(head, "  ", value)]
    return [head, Text.assemble("       ", value)]


class CriteriaPanel(TextLines):
    """Every criterion, failing ones first so they are never scrolled away."""

    _criteria: Sequence[CriterionSnapshot] = ()

    def show(self, criteria: Sequence[CriterionSnapshot]) -> None:
        self._criteria = criteria
        rank = {"fail": 0, "pending": 1, "pass": 2}
        ordered = sorted(criteria, key=lambda c: rank.get(c.state, 1))
        width = max(self.size.width - 1, 20)
        lines = [line for c in ordered for line in criterion_lines(c, width)]
        self.set_lines(lines or [Text("no criteria", style="dim")])

    def on_resize(self, event: events.Resize) -> None:
        self.show(self._criteria)  # Textual then calls TextLines.on_resize too
