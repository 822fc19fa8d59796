"""The network-fault menu (``w``): presets for the focused session's link, numbered.

A preset already in effect on the link is marked ``on``; choosing it again removes it. The
screen only answers which preset was chosen; the app turns that into faults.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

from console.net.presets import PRESETS, is_active
from console.snapshot import SessionSnapshot
from console.ui.keys import NET_MENU_BINDINGS

__all__ = ["NetMenuScreen"]


class NetMenuScreen(ModalScreen[int]):
    """Answers the index of the chosen preset in ``PRESETS``, or -1 for none."""

    BINDINGS: ClassVar[list[BindingType]] = list(NET_MENU_BINDINGS)

    DEFAULT_CSS = """
    NetMenuScreen { align: center middle; }
    NetMenuScreen > Vertical { width: 46; height: auto; border: thick $accent;
        background: $surface; padding: 1 2; }
    """

    def __init__(self, session_id: str, link: SessionSnapshot) -> None:
        super().__init__()
        self.session_id = session_id
        self.link = link

    def compose(self) -> ComposeResult:
        with Vertical():
            # Ids hold group names, which may hold brackets: text, never markup.
            title = Text.assemble(("Network faults", "bold"), f" · {self.session_id} via ")
            title.append(self.link.id)
            yield Static(title)
            for number, preset in enumerate(PRESETS, start=1):
                mark = "[b green]on[/]  " if is_active(preset, self.link) else "    "
                yield Static(f"{mark}[b]{number}[/b] {preset.label}")
            yield Static("a number applies it (again: removes) · Esc closes")

    def action_choose(self, index: int) -> None:
        self.dismiss(index)
