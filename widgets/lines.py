"""A panel that shows a handful of Rich ``Text`` lines through the Line API.

The header and the side panels change at every snapshot (criteria values, elapsed time).
``Static.update`` would run a layout pass each time; this widget only redraws, and only when
the lines actually changed, which is what keeps a 4 Hz refresh cheap.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

from rich.console import Console
from rich.text import Text
from textual import events
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

__all__ = ["TextLines", "wrapped"]

_MEASURE = Console(file=io.StringIO(), width=200)  # Text.wrap measures with a console


def wrapped(text: Text, width: int, indent: int = 0) -> list[Text]:
    """``text`` over as many lines as it takes at ``width`` cells, at word boundaries, the lines
    after the first indented by ``indent``: for a panel's few lines whose end matters (a
    criterion's name, a recovery time), which cropping would cut to "back after 11.…"."""
    if text.cell_len <= width:
        return [text]
    first = text.wrap(_MEASURE, max(width, 8), overflow="fold")[0]
    # The rest of the text itself, not its lines joined again: joined with spaces, a word
    # folded across two lines was two words, re-folded at the narrower width into pieces.
    rest = text[len(first.plain) :]
    rest = rest[len(rest.plain) - len(rest.plain.lstrip()) :]
    first.rstrip()
    lines = [first]
    if rest.plain:
        for line in rest.wrap(_MEASURE, max(width - indent, 8), overflow="fold"):
            line.rstrip()
            lines.append(Text.assemble(" " * indent, line))
    return lines


class TextLines(ScrollView):
    """Lines of ``Text``, cropped to the width (never wrapped), scrollable when taller."""

    DEFAULT_CSS = """
    TextLines { height: auto; scrollbar-size-vertical: 1; }
    """

    def __init__(
        self,
        *,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._texts: list[Text] = []
        self._strips: list[Strip] = []

    @property
    def texts(self) -> list[Text]:
        return list(self._texts)

    @property
    def plain(self) -> str:
        """The panel's text, one line per entry (for tests and the tmux end-to-end check)."""
        return "\n".join(text.plain for text in self._texts)

    def set_lines(self, texts: Sequence[Text]) -> None:
        texts = list(texts)
        if texts == self._texts:
            return
        grew = len(texts) != len(self._texts)
        self._texts = texts
        self._render_strips()
        if grew and self.styles.height is not None and self.styles.height.is_auto:
            self.refresh(layout=True)

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return max(len(self._texts), 1)

    def on_resize(self, event: events.Resize) -> None:
        self._render_strips()

    def _render_strips(self) -> None:
        if not self.is_mounted:
            return
        width = max(self.scrollable_content_region.width, 1)
        console = self.app.console
        base = self.rich_style
        strips = []
        for text in self._texts:
            line = text.copy()
            line.no_wrap = True
            line.end = ""
            line.truncate(width, overflow="ellipsis")
            strip = Strip(list(line.render(console))).adjust_cell_length(width)
            strips.append(strip.apply_style(base))
        self._strips = strips
        self.virtual_size = Size(width, len(strips))
        self.refresh()

    def on_mount(self) -> None:
        self._render_strips()

    def render_line(self, y: int) -> Strip:
        index = y + self.scroll_offset.y
        if 0 <= index < len(self._strips):
            return self._strips[index]
        return Strip.blank(self.size.width, self.rich_style)
