"""The console's key bindings: one declarative table, remappable from a profile's ``[keys]``.

Every key is a :class:`textual.binding.Binding` with an ``id``, so it shows in the footer, the
help screen (``?``) and the command palette, and a profile can move it::

    [keys]
    kill = "ctrl+x"        # binding id = key (Textual key names; "a,b" binds two keys)
    "grid.up" = "w"

The table itself is plain data in :mod:`console.bindings`, so the profile loader checks
``[keys]`` at load time without importing Textual.

This module imports Textual, so only the console (``console.ui.app`` and ``widgets``) may use it;
the engine never does.
"""

from __future__ import annotations

from collections.abc import Mapping

from textual.binding import Binding

from console.bindings import APP_KEYS, GRID_KEYS, KeySpec

__all__ = ["APP_BINDINGS", "GRID_BINDINGS", "binding_ids", "check_keymap"]


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


def binding_ids() -> dict[str, Binding]:
    """Every remappable binding by id."""
    return {b.id: b for b in [*APP_BINDINGS, *GRID_BINDINGS] if b.id is not None}


def check_keymap(keymap: Mapping[str, str]) -> list[str]:
    """Problems with a profile's ``[keys]`` table, as short messages (empty when fine)."""
    known = binding_ids()
    problems: list[str] = []
    for binding_id, keys in keymap.items():
        if binding_id not in known:
            near = sorted(k for k in known if k.split(".")[-1] in binding_id or binding_id in k)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            problems.append(f"[keys] {binding_id!r} is not a binding id{hint}")
        elif not isinstance(keys, str) or not keys.strip():
            problems.append(f'[keys] {binding_id!r} needs a key such as "ctrl+x"')
    return problems
