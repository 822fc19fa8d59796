"""Turning an exploration into a repeatable run.

An operator pokes at a system with the console's keys; every fault lands in ``events.jsonl``
with its run time and the sessions it reached. From there:

* ``stressdeck run PROFILE --replay RUN`` injects the same faults at the same run times on the
  same session ids, with source ``replay``;
* ``stressdeck faults RUN`` prints them as ``[[faults]]`` tables to paste into the profile.

Only faults from keys, the API and seeded chaos are taken: scheduled ones are already in the
profile, and observed ones (crashes nobody asked for) are outcomes, not inputs. A replay that
carries chaos faults keeps the profile's ``[[chaos]]`` quiet, so they happen once.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from console.errors import ReplayError

__all__ = ["ReplayError", "ReplayFault", "load_replay", "to_toml"]

REPLAYED_SOURCES = ("key", "api", "chaos")


@dataclass(frozen=True)
class ReplayFault:
    t: float  # run seconds
    action: str
    target: str
    sessions: tuple[str, ...]
    params: Mapping[str, Any] = field(default_factory=dict)
    source: str = "key"  # where the original came from


def _log_path(source: Path) -> Path:
    path = source / "events.jsonl" if source.is_dir() else source
    if not path.is_file():
        raise ReplayError(f"{source}: no events.jsonl there")
    return path


def _records(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.endswith("\n"):
                return  # a torn last line from a killed console: ignore it
            try:
                yield json.loads(line)
            except json.JSONDecodeError as exc:
                raise ReplayError(f"{path}:{number}: not JSON: {exc}") from None


def load_replay(source: Path) -> list[ReplayFault]:
    """The key and API faults of a previous run, at their run times."""
    path = _log_path(source)
    started: datetime | None = None
    faults: list[ReplayFault] = []
    for record in _records(path):
        if record.get("event") == "run_started" and started is None:
            started = datetime.fromisoformat(record["ts"])
        if record.get("event") != "fault_injected" or record.get("source") not in REPLAYED_SOURCES:
            continue
        if started is None:
            raise ReplayError(f"{path}: no run_started event before the first fault")
        data = record.get("data") or {}
        t = (datetime.fromisoformat(record["ts"]) - started).total_seconds()
        faults.append(
            ReplayFault(
                t=round(t, 3),
                action=str(data.get("action", "")),
                target=str(data.get("target", "all")),
                sessions=tuple(data.get("sessions", ())),
                params=dict(data.get("params") or {}),
                source=str(record.get("source")),
            )
        )
    return faults


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(str(value))


def to_toml(faults: list[ReplayFault]) -> str:
    """``[[faults]]`` tables reproducing ``faults``; one table per fault, on exact session ids."""
    out = []
    for fault in faults:
        out.append("[[faults]]")
        out.append(f'at = "{fault.t:g}s"')
        out.append(f"action = {json.dumps(fault.action)}")
        if len(fault.sessions) == 1:
            out.append(f"target = {json.dumps(fault.sessions[0])}")
        else:
            out.append(f"target = {json.dumps(fault.target)}")
            if fault.target == "all" or len(fault.sessions) > 1:
                out.append(f"# reached: {', '.join(fault.sessions)}")
        if fault.params:
            inner = ", ".join(f"{k} = {_toml_value(v)}" for k, v in fault.params.items())
            out.append(f"params = {{ {inner} }}")
        out.append("")
    return "\n".join(out)
