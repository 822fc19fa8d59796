"""The key footer: Textual's, showing only the keys that fit whole.

Textual's footer clips its row at the edge, which leaves a key without its label (``b`` at 120
columns) or a label cut in two (``p Pau``): both read as broken. This one leaves out the keys
past the edge; every key is still in help (``?``) and the command palette, which keeps its
place on the right.
"""

from __future__ import annotations

from rich.cells import cell_len
from textual.app import ComposeResult
from textual.events import Resize
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

__all__ = ["KeyFooter"]


class KeyFooter(Footer):
    def compose(self) -> ComposeResult:
        children = list(super().compose())
        keys = [c for c in children if isinstance(c, FooterKey)]
        palette = [k for k in keys if k.has_class("-command-palette")]
        # The palette's key is docked right (its border takes its key's left padding).
        room = self.size.width - sum(_cells(k) for k in palette)
        for child in children:
            if self.size.width and child in keys and child not in palette:
                need = _cells(child)
                if need > room:
                    room = -1  # past the edge: this key and every one after it
                    continue
                room -= need
            yield child

    def on_resize(self, event: Resize) -> None:
        self.call_after_refresh(self.recompose)


def _cells(key: FooterKey) -> int:
    """Cells a key takes: " k label " (the key's padding is 0 1, the label's 0 1 0 0)."""
    label = cell_len(key.description) + 1 if key.description else 0
    return cell_len(key.key_display) + 2 + label
