"""The console's key bindings: one declarative table, remappable from a profile's ``[keys]``.

Every key is a :class:`textual.binding.Binding` with an ``id``, so it shows in the footer, the
help screen (``?``) and the command palette, and a profile can move it::

    [keys]
    kill = "ctrl+x"        # binding id = key (Textual key names; "a,b" binds two keys)
    "grid.up" = "w"

Ids are stable names, not keys, because keys are what people remap. ``K`` (shift+k) kills
rather than ``k`` because ``k`` is already "up" in the hjkl set. "All" variants are the shifted
or ctrl form of the focused-pane key.

This module imports Textual, so only the console (``console.app`` and ``widgets``) may use it;
the engine never does.
"""

from __future__ import annotations

from collections.abc import Mapping

from textual.binding import Binding

__all__ = ["APP_BINDINGS", "GRID_BINDINGS", "binding_ids", "check_keymap"]

# Faults and controls on the run. Actions are App methods (action_<name>).
APP_BINDINGS: list[Binding] = [
    Binding("enter", "detail", "Detail", id="detail", tooltip="Open the focused session"),
    Binding("K", "fault('kill')", "Kill", id="kill", tooltip="SIGKILL the focused PTY"),
    Binding("ctrl+k", "fault_all('kill')", "Kill all", id="kill_all", show=False),
    Binding("d", "fault('drop')", "Drop", id="drop", tooltip="Drop the focused SSH connection"),
    Binding("D", "fault_all('drop')", "Drop all", id="drop_all", show=False),
    Binding("z", "hang", "Hang/resume", id="hang", tooltip="Hang or resume the focused PTY"),
    Binding("Z", "hang_all", "Hang/resume all", id="hang_all", show=False),
    Binding("r", "fault('restart')", "Restart", id="restart", tooltip="Restart the session"),
    Binding("R", "fault_all('restart')", "Restart all", id="restart_all", show=False),
    Binding("p", "pause", "Pause", id="pause", tooltip="Pause or resume the run's load"),
    Binding("plus,=", "rate('rate_up')", "Rate +", id="rate_up", show=False),
    Binding("minus", "rate('rate_down')", "Rate -", id="rate_down", show=False),
    Binding("b", "rate('burst')", "Burst", id="burst", show=False),
    Binding("x", "export", "Export", id="export", tooltip="Write snapshot, report, junit"),
    Binding("e", "toggle_log", "Log", id="log", tooltip="Show or hide the event log"),
    Binding("f", "cycle_filter", "Filter log", id="filter", show=False),
    Binding("question_mark", "help", "Help", id="help", key_display="?"),
    Binding("q", "quit", "Quit", id="quit", tooltip="Stop the run gracefully and exit"),
]

# Moving the focus between panes; bound on the grid widget.
GRID_BINDINGS: list[Binding] = [
    Binding("up,k", "move(0, -1)", "Up", id="grid.up", show=False),
    Binding("down,j", "move(0, 1)", "Down", id="grid.down", show=False),
    Binding("left,h", "move(-1, 0)", "Left", id="grid.left", show=False),
    Binding("right,l", "move(1, 0)", "Right", id="grid.right", show=False),
    Binding("home", "first", "First pane", id="grid.first", show=False),
    Binding("end", "last", "Last pane", id="grid.last", show=False),
]


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
