"""Quit confirmation: stopping ends the run, so one stray ``q`` must not do it."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

from console.ui.keys import QUIT_BINDINGS

__all__ = ["QuitScreen"]


class QuitScreen(ModalScreen[bool]):
    """Answers True to stop the run and exit, False to go back."""

    BINDINGS: ClassVar[list[BindingType]] = list(QUIT_BINDINGS)

    DEFAULT_CSS = """
    QuitScreen { align: center middle; }
    QuitScreen > Vertical { width: 52; height: auto; border: thick $warning;
        background: $surface; padding: 1 2; }
    """

    def __init__(self, running: bool) -> None:
        super().__init__()
        self.running = running

    def compose(self) -> ComposeResult:
        with Vertical():
            if self.running:
                yield Static("[b]Stop the run and quit?[/b]")
                yield Static("The run stops gracefully; the final snapshot and report are written.")
            else:
                yield Static("[b]Quit?[/b]")
            yield Static("[b]y[/b] yes   [b]n[/b] / Esc no")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)
