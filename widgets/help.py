"""The ``?`` help screen: every key, as currently bound (after the profile's ``[keys]``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from console.ui.keys import HELP_BINDINGS

__all__ = ["HelpScreen", "KeyHelp"]


@dataclass(frozen=True)
class KeyHelp:
    keys: str  # as displayed: "d", "ctrl+k", "↑ k"
    description: str
    binding_id: str
    tooltip: str = ""


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = list(HELP_BINDINGS)

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 90%; max-width: 100; height: 90%;
        border: thick $primary; background: $surface; padding: 0 1; }
    """

    def __init__(self, keys: Sequence[KeyHelp]) -> None:
        super().__init__()
        self.keys = list(keys)

    def compose(self) -> ComposeResult:
        table = Table(box=None, show_header=True, header_style="bold", pad_edge=False)
        table.add_column("key", style="bold cyan", no_wrap=True)
        table.add_column("does")
        table.add_column("id", style="dim", no_wrap=True)
        for entry in self.keys:
            does = entry.description + (f" — {entry.tooltip}" if entry.tooltip else "")
            table.add_row(entry.keys, does, entry.binding_id)
        scroll = VerticalScroll()
        scroll.border_title = "Stressdeck keys (remap in the profile's \\[keys] by id) · Esc closes"
        with scroll:
            yield Static(table, id="help-table")
