"""The console's key bindings: one declarative table, remappable from a profile's ``[keys]``.

Every key is a :class:`textual.binding.Binding` with an ``id``, so it shows in the footer, the
help screen (``?``) and the command palette, and a profile can move it::

    [keys]
    kill = "ctrl+x"        # binding id = key (Textual key names; "a,b" binds two keys)
    "grid.up" = "w"

The table itself, modal screens included, is plain data in :mod:`console.bindings`, which
also validates ``[keys]`` (once, at profile load, without importing Textual).

This module imports Textual, so only the console (``console.ui.app`` and ``widgets``) may use it;
the engine never does.
"""

from __future__ import annotations

from textual.binding import Binding

from console.bindings import (
    APP_KEYS,
    CONFIRM_KEYS,
    DETAIL_KEYS,
    FAULT_KEYS,
    GRID_KEYS,
    HELP_KEYS,
    NET_MENU_KEYS,
    QUIT_KEYS,
    REQUESTS_KEYS,
    KeySpec,
)

__all__ = [
    "APP_BINDINGS",
    "CONFIRM_BINDINGS",
    "DETAIL_BINDINGS",
    "FAULT_BINDINGS",
    "GRID_BINDINGS",
    "HELP_BINDINGS",
    "NET_MENU_BINDINGS",
    "QUIT_BINDINGS",
    "REQUESTS_BINDINGS",
]


def _binding(spec: KeySpec) -> Binding:
    return Binding(
        spec.key,
        spec.action,
        spec.description,
        show=spec.show,
        key_display=spec.key_display,
        id=spec.id,
        tooltip=spec.tooltip,
    )


APP_BINDINGS: list[Binding] = [_binding(spec) for spec in APP_KEYS]
GRID_BINDINGS: list[Binding] = [_binding(spec) for spec in GRID_KEYS]
FAULT_BINDINGS: list[Binding] = [_binding(spec) for spec in FAULT_KEYS]
DETAIL_BINDINGS: list[Binding] = [_binding(spec) for spec in DETAIL_KEYS]
HELP_BINDINGS: list[Binding] = [_binding(spec) for spec in HELP_KEYS]
QUIT_BINDINGS: list[Binding] = [_binding(spec) for spec in QUIT_KEYS]
CONFIRM_BINDINGS: list[Binding] = [_binding(spec) for spec in CONFIRM_KEYS]
NET_MENU_BINDINGS: list[Binding] = [_binding(spec) for spec in NET_MENU_KEYS]
REQUESTS_BINDINGS: list[Binding] = [_binding(spec) for spec in REQUESTS_KEYS]
