"""Toxics: Toxiproxy's names, attributes and JSON shape, so people who know Toxiproxy know these.

A toxic is a frozen value: changing one makes a new value with a new ``uid``, which is what lets
every open connection notice the change at its next chunk (and draw ``toxicity`` again, as
Toxiproxy restarts a toxic's stubs on update). Units are Toxiproxy's: milliseconds, except the
slicer's ``delay`` in microseconds; ``bandwidth.rate`` in KB/s (1 KB = 1000 bytes).

What each does is implemented in :mod:`console.net.proxy`; this module only says what a valid
toxic is. ``ToxicError`` carries the HTTP status Toxiproxy's API answers with.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

__all__ = ["STREAMS", "TOXIC_TYPES", "Toxic", "ToxicError", "make_toxic", "update_toxic"]

STREAMS = ("upstream", "downstream")  # upstream: client to server; downstream: server to client

# type -> attribute names (all whole numbers, 0 when left out, as in Toxiproxy's Go structs)
TOXIC_TYPES: Mapping[str, tuple[str, ...]] = {
    "latency": ("latency", "jitter"),
    "bandwidth": ("rate",),
    "slow_close": ("delay",),
    "timeout": ("timeout",),
    "reset_peer": ("timeout",),
    "slicer": ("average_size", "size_variation", "delay"),
    "limit_data": ("bytes",),
}

_uids = itertools.count(1)


class ToxicError(ValueError):
    """A toxic Toxiproxy would refuse; ``status`` is the HTTP status its API answers with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Toxic:
    name: str
    type: str
    stream: str = "downstream"
    toxicity: float = 1.0
    attributes: Mapping[str, int] = field(default_factory=dict)
    uid: int = field(default_factory=lambda: next(_uids), compare=False)

    def attr(self, key: str) -> int:
        return int(self.attributes.get(key, 0))

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "stream": self.stream,
            "toxicity": self.toxicity,
            "attributes": {k: self.attr(k) for k in TOXIC_TYPES[self.type]},
        }

    def describe(self) -> str:
        """Short text for panes: ``latency 200ms±50 down``."""
        a = self.attr
        text = {
            "latency": f"latency {a('latency')}ms" + (f"±{a('jitter')}" if a("jitter") else ""),
            "bandwidth": f"bandwidth {a('rate')}KB/s",
            "slow_close": f"slow_close {a('delay')}ms",
            "timeout": f"timeout {a('timeout')}ms" if a("timeout") else "blackhole",
            "reset_peer": "reset_peer" + (f" {a('timeout')}ms" if a("timeout") else ""),
            "slicer": f"slicer {a('average_size')}B",
            "limit_data": f"limit_data {a('bytes')}B",
        }[self.type]
        share = f" {self.toxicity:.0%}" if self.toxicity < 1.0 else ""
        return f"{text} {'up' if self.stream == 'upstream' else 'down'}{share}"


def _attributes(kind: str, raw: Any, base: Mapping[str, int]) -> dict[str, int]:
    if raw is None:
        return dict(base)
    if not isinstance(raw, Mapping):
        raise ToxicError("bad request body: attributes must be an object")
    values = dict(base)
    for key, value in raw.items():
        if key not in TOXIC_TYPES[kind]:
            continue  # Toxiproxy's JSON decoder ignores unknown attributes too
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ToxicError(f"bad request body: attribute {key} must be a number")
        if value < 0:
            raise ToxicError(f"bad request body: attribute {key} must not be negative")
        values[key] = int(value)
    return values


def _toxicity(raw: Any, default: float) -> float:
    if raw is None:
        return default
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not 0.0 <= raw <= 1.0:
        raise ToxicError("bad request body: toxicity must be a number from 0 to 1")
    return float(raw)


def make_toxic(data: Mapping[str, Any]) -> Toxic:
    """A toxic from Toxiproxy's JSON (``type`` required; ``stream`` defaults to downstream,
    ``name`` to ``TYPE_STREAM``, ``toxicity`` to 1)."""
    kind = data.get("type")
    if not isinstance(kind, str) or kind not in TOXIC_TYPES:
        raise ToxicError("invalid toxic type")
    stream = data.get("stream") or "downstream"
    if stream not in STREAMS:
        raise ToxicError("stream was invalid, can be either upstream or downstream")
    name = data.get("name") or f"{kind}_{stream}"
    if not isinstance(name, str):
        raise ToxicError("bad request body: name must be a string")
    attributes = _attributes(kind, data.get("attributes"), dict.fromkeys(TOXIC_TYPES[kind], 0))
    return Toxic(name, kind, stream, _toxicity(data.get("toxicity"), 1.0), attributes)


def update_toxic(toxic: Toxic, data: Mapping[str, Any]) -> Toxic:
    """Toxiproxy's update: given fields replace the old ones; type, stream and name stay."""
    return replace(
        toxic,
        toxicity=_toxicity(data.get("toxicity"), toxic.toxicity),
        attributes=_attributes(toxic.type, data.get("attributes"), toxic.attributes),
        uid=next(_uids),
    )
