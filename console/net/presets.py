"""The network-fault menu's presets, as plain data: what ``w`` offers on a session or a link.

Each toxic preset uses a fixed toxic name (``key_latency`` ...) on both streams, so choosing it
again finds it and removes it ("second press removes"), and choosing another latency replaces
the one in place. Pure data and snapshot reading: the console imports it without the engine.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from console.snapshot import SessionSnapshot

__all__ = ["PRESETS", "NetPreset", "is_active", "link_of", "removal"]


@dataclass(frozen=True)
class NetPreset:
    id: str
    label: str
    action: str  # net.*
    params: Mapping[str, Any] = field(default_factory=dict)
    shows_as: str = ""  # how the toxic reads in a link's details when this preset is on


PRESETS: tuple[NetPreset, ...] = (
    NetPreset("latency100", "Latency 100 ms", "net.latency",
              {"latency": 0.1, "name": "key_latency", "stream": "both"}, "latency 100ms"),
    NetPreset("latency200", "Latency 200 ms", "net.latency",
              {"latency": 0.2, "name": "key_latency", "stream": "both"}, "latency 200ms"),
    NetPreset("latency500", "Latency 500 ms", "net.latency",
              {"latency": 0.5, "name": "key_latency", "stream": "both"}, "latency 500ms"),
    NetPreset("bandwidth56k", "Bandwidth 56 kbit/s", "net.bandwidth",
              {"rate": 7, "name": "key_bandwidth", "stream": "both"}, "bandwidth 7KB/s"),
    NetPreset("blackhole", "Blackhole (timeout 0)", "net.timeout",
              {"timeout": 0, "name": "key_blackhole", "stream": "both"}, "blackhole"),
    NetPreset("reset", "Reset peer (TCP RST)", "net.reset_peer",
              {"name": "key_reset", "stream": "both"}, "reset_peer"),
    NetPreset("down", "Link down", "net.down"),
)  # fmt: skip


def link_of(
    session: SessionSnapshot, sessions: Sequence[SessionSnapshot]
) -> SessionSnapshot | None:
    """The link pane for ``session``: itself when it is a link, else the link it goes through."""
    if session.kind == "net":
        return session
    for link in sessions:
        if link.kind == "net":
            behind = dict(link.details).get("behind", "")
            if session.id in [s.strip() for s in behind.split(",")]:
                return link
    return None


def is_active(preset: NetPreset, link: SessionSnapshot) -> bool:
    if preset.action == "net.down":
        return link.state == "down"
    name = str(preset.params.get("name", ""))
    return any(
        key.startswith(name) and text.startswith(preset.shows_as) for key, text in link.details
    )


def removal(preset: NetPreset) -> tuple[str, Mapping[str, Any]]:
    """The fault that undoes ``preset``."""
    if preset.action == "net.down":
        return "net.up", {}
    return "net.remove", {"name": preset.params["name"]}
