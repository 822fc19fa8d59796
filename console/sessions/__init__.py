"""Session kinds, found by the name of their profile table (``[[pty]]``, ``[[ssh]]``, ``[[http]]``).

Modules are imported lazily so that a run loads only the kinds its profile uses.
"""

from __future__ import annotations

import importlib

from console.sessions.base import SessionKind

KIND_MODULES: dict[str, str] = {
    "pty": "console.sessions.pty",
    "ssh": "console.sessions.ssh",
    "http": "console.sessions.http",
}


def get_kind(name: str) -> SessionKind:
    module = importlib.import_module(KIND_MODULES[name])
    kind: SessionKind = module.KIND
    return kind
