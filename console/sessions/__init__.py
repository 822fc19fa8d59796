"""Session kinds, found by the name of their profile table (``[[pty]]``, ``[[ssh]]``, ``[[http]]``,
and ``[[links]]`` for the ``net`` kind, whose sessions are fault-proxy links).

Modules are imported lazily so that a run loads only the kinds its profile uses.
"""

from __future__ import annotations

import importlib

from console.sessions.base import SessionKind

KIND_MODULES: dict[str, str] = {
    "pty": "console.sessions.pty",
    "ssh": "console.sessions.ssh",
    "http": "console.sessions.http",
    "net": "console.net.kind",
}

_TABLE_NAMES = {"net": "links"}  # a link is a ``net`` session, but its table reads [[links]]


def kind_tables() -> dict[str, str]:
    """Profile table name -> kind name, for every registered kind."""
    return {_TABLE_NAMES.get(kind, kind): kind for kind in KIND_MODULES}


def get_kind(name: str) -> SessionKind:
    module = importlib.import_module(KIND_MODULES[name])
    kind: SessionKind = module.KIND
    return kind
