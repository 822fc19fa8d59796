"""The console's key table as plain data, so the profile loader can check ``[keys]`` without
importing Textual. :mod:`console.ui.keys` turns it into Textual ``Binding`` objects.

Ids are stable names, not keys, because keys are what people remap. SIGKILL is ``ctrl+k``, as
in k9s, and killing every PTY ``alt+k``: never ``K``, one shift away from ``k`` ("up" in the hjkl
set), where a slip would kill a program (a test keeps every destructive key so). Other
"all" variants are the shifted form of the focused-pane key, and the bulk ones ask first
(``[console] confirm_bulk``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "APP_KEYS",
    "CONFIRM_KEYS",
    "DETAIL_KEYS",
    "FAULT_KEYS",
    "GRID_KEYS",
    "HELP_KEYS",
    "KEY_SCOPES",
    "NET_MENU_KEYS",
    "QUIT_KEYS",
    "REQUESTS_KEYS",
    "KeySpec",
    "binding_ids",
    "check_keymap",
]


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
    # First, so the footer never cuts them off at 80 columns.
    KeySpec("help", "question_mark", "help", "Help", key_display="?"),
    KeySpec("quit", "q", "quit", "Quit", tooltip="Stop the run gracefully and exit"),
    KeySpec("detail", "enter", "detail", "Detail", tooltip="Open the focused session"),
    KeySpec("kill", "ctrl+k", "fault('kill')", "Kill", tooltip="SIGKILL the focused PTY"),
    KeySpec("kill_all", "alt+k", "fault_all('kill')", "Kill all", show=False),
    KeySpec("drop", "d", "fault('drop')", "Drop", tooltip="Drop the focused SSH connection"),
    KeySpec("drop_all", "D", "fault_all('drop')", "Drop all", show=False),
    KeySpec("hang", "z", "hang", "Hang", tooltip="Hang or resume the focused PTY"),
    KeySpec("hang_all", "Z", "hang_all", "Hang/resume all", show=False),
    KeySpec("restart", "r", "fault('restart')", "Restart", tooltip="Restart the session"),
    KeySpec("restart_all", "R", "fault_all('restart')", "Restart all", show=False),
    KeySpec("pause", "p", "pause", "Pause", tooltip="Pause or resume all the run drives"),
    KeySpec("net", "w", "net_menu", "Net", tooltip="Network faults on the focused pane"),
    KeySpec("rate_up", "plus,=", "rate('rate_up')", "Rate +"),
    KeySpec("rate_down", "minus", "rate('rate_down')", "Rate -"),
    KeySpec("burst", "b", "rate('burst')", "Burst"),
    KeySpec("chaos", "c", "toggle_chaos", "Chaos", show=False, tooltip="Seeded chaos on/off"),
    KeySpec(
        "remove_node",
        "N",
        "remove_node",
        "Lose node",
        show=False,
        tooltip="Remove the focused pane's cluster node (a local cluster's) to rehearse its loss",
    ),
    KeySpec("export", "x", "export", "Export", tooltip="Write snapshot, report, junit"),
    KeySpec(
        "requests",
        "t",
        "requests",
        "Requests",
        tooltip="Requests by name, failures by message and checks, live (Locust's table)",
    ),
    KeySpec(
        "command",
        "colon",
        "command_line",
        "Command",
        key_display=":",
        tooltip="Type a fault: :drop ssh#3, :burst api 200, :export",
    ),
    KeySpec(
        "search",
        "slash",
        "search",
        "Search",
        key_display="/",
        tooltip="Filter the panes and the event log: /fail, /ssh, /emit#2",
    ),
    KeySpec("log", "e", "toggle_log", "Log", tooltip="Show or hide the event log"),
    KeySpec("filter", "f", "cycle_filter", "Filter log", show=False),
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


# Moving the selection in the faults panel (when it has the focus): the selected fault shows
# its impact from the fault impact ledger.
FAULT_KEYS: tuple[KeySpec, ...] = (
    KeySpec("faults.newer", "up,k", "select(-1)", "Newer fault", show=False),
    KeySpec("faults.older", "down,j", "select(1)", "Older fault", show=False),
)


# Modal screens: each screen has its own scope, so its keys may repeat the main screen's.
DETAIL_KEYS: tuple[KeySpec, ...] = (KeySpec("detail.back", "escape", "app.pop_screen", "Back"),)
REQUESTS_KEYS: tuple[KeySpec, ...] = (KeySpec("requests.back", "escape", "app.pop_screen", "Back"),)
HELP_KEYS: tuple[KeySpec, ...] = (
    KeySpec("help.close", "escape,question_mark,q", "app.pop_screen", "Close"),
)
QUIT_KEYS: tuple[KeySpec, ...] = (
    KeySpec("quit.yes", "y,enter", "answer(True)", "Stop and quit"),
    KeySpec("quit.no", "n,escape,q", "answer(False)", "Keep running"),
)

CONFIRM_KEYS: tuple[KeySpec, ...] = (
    KeySpec("confirm.yes", "y", "answer(True)", "Yes"),
    KeySpec("confirm.no", "n,escape", "answer(False)", "No"),
)

NET_MENU_KEYS: tuple[KeySpec, ...] = (
    *(KeySpec(f"netmenu.{i}", str(i), f"choose({i - 1})", f"Preset {i}", show=False)
      for i in range(1, 8)),
    KeySpec("netmenu.close", "escape,w,q", "choose(-1)", "Close"),
)  # fmt: skip

# Keys active at the same time: the app's and the grid's on the main screen, one per modal.
KEY_SCOPES: dict[str, tuple[KeySpec, ...]] = {
    "main": (*APP_KEYS, *GRID_KEYS),
    # The focused faults panel takes the grid's place; the app's keys stay live beside it.
    "faults": (*APP_KEYS, *FAULT_KEYS),
    "detail": DETAIL_KEYS,
    "requests": REQUESTS_KEYS,
    "help": HELP_KEYS,
    "quit": QUIT_KEYS,
    "confirm": CONFIRM_KEYS,
    "netmenu": NET_MENU_KEYS,
}
# Keys Textual itself binds on every screen; a remap onto one would silently lose.
RESERVED_KEYS = frozenset({"ctrl+p", "ctrl+q", "ctrl+c"})


def binding_ids() -> tuple[str, ...]:
    return tuple(dict.fromkeys(k.id for scope in KEY_SCOPES.values() for k in scope))


def _keys_of(value: str) -> list[str]:
    return [k.strip() for k in value.split(",") if k.strip()]


def check_keymap(keymap: Mapping[str, object]) -> list[tuple[str, str]]:
    """Problems with a profile's ``[keys]`` table as ``(binding id, message)``; empty when fine.

    The one place ``[keys]`` is validated (the profile loader reports these with file and
    line): unknown ids, empty keys, and a key that two bindings of one scope would share
    after the remap (``kill = "q"`` must not silently replace Quit).
    """
    known = binding_ids()
    problems: list[tuple[str, str]] = []
    for binding_id, value in keymap.items():
        if binding_id not in known:
            near = sorted(k for k in known if k.split(".")[-1] in binding_id or binding_id in k)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            problems.append((binding_id, f"{binding_id!r} is not a console binding id{hint}"))
        elif not isinstance(value, str) or not _keys_of(value):
            problems.append((binding_id, f'expected a key name such as "ctrl+k", got {value!r}'))
    told: set[tuple[str, str]] = set()
    for scope in KEY_SCOPES.values():
        owner: dict[str, str] = {}
        for spec in scope:
            value = keymap.get(spec.id, spec.key)
            keys = _keys_of(value) if isinstance(value, str) else []
            for key in keys:
                if key in RESERVED_KEYS and spec.id in keymap:
                    problems.append(
                        (spec.id, f"{key!r} is Textual's own key (command palette/quit)")
                    )
                elif key in owner:
                    other = owner[key]
                    remapped, kept = (spec.id, other) if spec.id in keymap else (other, spec.id)
                    if (remapped, key) in told:  # the same clash in another scope
                        continue
                    told.add((remapped, key))
                    problems.append(
                        (
                            remapped,
                            f"{key!r} is already the key of {kept!r}; remap that binding too "
                            "or pick a free key",
                        )
                    )
                else:
                    owner.setdefault(key, spec.id)
    return problems
