"""Asks once before a bulk destructive key (alt+k, D, R) hits every session of the run."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

from console.ui.keys import CONFIRM_BINDINGS

__all__ = ["ConfirmScreen"]


class ConfirmScreen(ModalScreen[bool]):
    """Answers True to go ahead (and not ask again for this key in this run), False not to."""

    BINDINGS: ClassVar[list[BindingType]] = list(CONFIRM_BINDINGS)

    DEFAULT_CSS = """
    ConfirmScreen { align: center middle; }
    ConfirmScreen > Vertical { width: 56; height: auto; border: thick $error;
        background: $surface; padding: 1 2; }
    """

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(f"[b]{self.question}[/b]", markup=True)
            yield Static("Asked once per key in a run.")
            yield Static("[b]y[/b] yes   [b]n[/b] / Esc no")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)
