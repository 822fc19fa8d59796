"""The console's key table as plain data, so the profile loader can check ``[keys]`` without
importing Textual. :mod:`console.ui.keys` turns it into Textual ``Binding`` objects.

Ids are stable names, not keys, because keys are what people remap. ``K`` (shift+k) kills
rather than ``k`` because ``k`` is already "up" in the hjkl set. "All" variants are the shifted
or ctrl form of the focused-pane key.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["APP_KEYS", "GRID_KEYS", "KeySpec", "binding_ids"]


@dataclass(frozen=True)
class KeySpec:
    id: str
    key: str  # Textual key names; "a,b" binds two keys
    action: str
    description: str
    show: bool = True
    tooltip: str = ""
    key_display: str | None = None


# Faults and controls on the run. Actions are App methods (action_<name>).
APP_KEYS: tuple[KeySpec, ...] = (
    KeySpec("detail", "enter", "detail", "Detail", tooltip="Open the focused session"),
    KeySpec("kill", "K", "fault('kill')", "Kill", tooltip="SIGKILL the focused PTY"),
    KeySpec("kill_all", "ctrl+k", "fault_all('kill')", "Kill all", show=False),
    KeySpec("drop", "d", "fault('drop')", "Drop", tooltip="Drop the focused SSH connection"),
    KeySpec("drop_all", "D", "fault_all('drop')", "Drop all", show=False),
    KeySpec("hang", "z", "hang", "Hang/resume", tooltip="Hang or resume the focused PTY"),
    KeySpec("hang_all", "Z", "hang_all", "Hang/resume all", show=False),
    KeySpec("restart", "r", "fault('restart')", "Restart", tooltip="Restart the session"),
    KeySpec("restart_all", "R", "fault_all('restart')", "Restart all", show=False),
    KeySpec("pause", "p", "pause", "Pause", tooltip="Pause or resume the run's load"),
    KeySpec("rate_up", "plus,=", "rate('rate_up')", "Rate +", show=False),
    KeySpec("rate_down", "minus", "rate('rate_down')", "Rate -", show=False),
    KeySpec("burst", "b", "rate('burst')", "Burst", show=False),
    KeySpec("export", "x", "export", "Export", tooltip="Write snapshot, report, junit"),
    KeySpec("log", "e", "toggle_log", "Log", tooltip="Show or hide the event log"),
    KeySpec("filter", "f", "cycle_filter", "Filter log", show=False),
    KeySpec("help", "question_mark", "help", "Help", key_display="?"),
    KeySpec("quit", "q", "quit", "Quit", tooltip="Stop the run gracefully and exit"),
)

# Moving the focus between panes; bound on the grid widget.
GRID_KEYS: tuple[KeySpec, ...] = (
    KeySpec("grid.up", "up,k", "move(0, -1)", "Up", show=False),
    KeySpec("grid.down", "down,j", "move(0, 1)", "Down", show=False),
    KeySpec("grid.left", "left,h", "move(-1, 0)", "Left", show=False),
    KeySpec("grid.right", "right,l", "move(1, 0)", "Right", show=False),
    KeySpec("grid.first", "home", "first", "First pane", show=False),
    KeySpec("grid.last", "end", "last", "Last pane", show=False),
)


def binding_ids() -> tuple[str, ...]:
    return tuple(k.id for k in (*APP_KEYS, *GRID_KEYS))
