"""The ``:`` command line: one input at the bottom, completing verbs, targets and parameters.

It dismisses with the typed text (without ``:``) or None; the app parses and runs it and
hands in the completion (:mod:`console.command_line`, which widgets do not import: it reads
the session kinds). Tab or → accepts the grey completion.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import ModalScreen
from textual.suggester import Suggester
from textual.widgets import Input

__all__ = ["CommandLineScreen"]


class _Completer(Suggester):
    def __init__(self, complete: Callable[[str], list[str]]) -> None:
        super().__init__(use_cache=False, case_sensitive=True)
        self._complete = complete

    async def get_suggestion(self, value: str) -> str | None:
        found = self._complete(value)
        return found[0] if found else None


class CommandLineScreen(ModalScreen[str | None]):
    """``:drop ssh#3``, ``:burst api 200``, ``:export``: Enter runs it, Esc closes."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close", id="command.close"),
        Binding("tab", "accept", "Complete", id="command.complete", show=False, priority=True),
    ]
    DEFAULT_CSS = """
    CommandLineScreen { align: left bottom; background: transparent; }
    CommandLineScreen > Input { dock: bottom; width: 100%; border: none; height: 1;
        padding: 0 1; background: $panel; }
    """

    def __init__(
        self,
        complete: Callable[[str], list[str]],
        *,
        placeholder: str = ":drop ssh#3   :kill emit   :burst api 200   :export",
        value: str = "",
    ) -> None:
        super().__init__()
        self._complete = complete
        self._placeholder = placeholder
        self._value = value

    def compose(self) -> ComposeResult:
        yield Input(
            value=self._value,
            placeholder=self._placeholder,
            suggester=_Completer(self._complete),
            id="command",
        )

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip().lstrip(":"))

    def action_accept(self) -> None:
        box = self.query_one(Input)
        if box._suggestion:  # Textual's own → accepts it too; Tab as in a shell
            box.value = box._suggestion
            box.cursor_position = len(box.value)

    def action_close(self) -> None:
        self.dismiss(None)
