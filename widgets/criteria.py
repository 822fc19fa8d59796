"""The live criteria panel: each criterion's verdict with its current value against its target."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual import events

from console import verdicts
from console.snapshot import CriterionSnapshot
from widgets.lines import TextLines, wrapped

__all__ = ["CriteriaPanel", "criterion_lines"]


def criterion_lines(criterion: CriterionSnapshot, width: int) -> list[Text]:
    """One line when it fits the panel, else the name and then value vs target below it."""
    look = verdicts.look(criterion.state)
    head = Text(f"{verdicts.label(criterion.state)} ", style=look.style)
    head.append(criterion.name, style="bold")
    if criterion.state == verdicts.NOT_JUDGED:  # the reason says more than a bare "-"
        value = Text(criterion.evidence, style="magenta")
    else:
        value = Text(f"{criterion.value_text} ")
        value.append(f"(target {criterion.target_text})", style="dim")
    if criterion.abort_on_fail:
        value.append(" abort", style="red")
    if head.cell_len + 2 + value.cell_len <= width:
        return [Text.assemble(head, "  ", value)]
    indent = 7  # under the name, past "✗ FAIL "
    return [
        *wrapped(head, width, indent),
        *wrapped(Text.assemble(" " * indent, value), width, indent),
    ]


class CriteriaPanel(TextLines):
    """Every criterion, failing ones first so they are never scrolled away. Focusable (Tab)
    to scroll; the title says "+N more" while some are out of view."""

    can_focus = True
    _criteria: Sequence[CriterionSnapshot] = ()

    def show(self, criteria: Sequence[CriterionSnapshot]) -> None:
        self._criteria = criteria
        ordered = sorted(criteria, key=lambda c: verdicts.rank(c.state))
        width = max(self.size.width - 1, 20)
        starts: list[int] = []  # the line each criterion starts on
        lines: list[Text] = []
        for criterion in ordered:
            starts.append(len(lines))
            lines += criterion_lines(criterion, width)
        self.set_lines(lines or [Text("no criteria", style="dim")])
        self._title(starts)

    def _title(self, starts: Sequence[int]) -> None:
        shown = self.scrollable_content_region.height
        end = self.scroll_offset.y + shown
        hidden = sum(1 for start in starts if start >= end) if shown else 0
        self.border_title = "criteria" + (f" · +{hidden} more" if hidden else "")

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        self.show(self._criteria)

    def on_resize(self, event: events.Resize) -> None:
        self.show(self._criteria)  # Textual then calls TextLines.on_resize too
