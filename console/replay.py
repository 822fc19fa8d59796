"""Turning an exploration into a repeatable run.

An operator pokes at a system with the console's keys; every fault lands in ``events.jsonl``
with its run time and the sessions it reached. From there:

* ``stressdeck run PROFILE --replay RUN`` injects the same faults at the same run times on the
  same session ids, with source ``replay``;
* ``stressdeck faults RUN`` prints them as ``[[faults]]`` tables to paste into the profile.

Only faults from keys, typed commands, the API and seeded chaos are taken: scheduled ones are
already in the profile, and observed ones (crashes nobody asked for) are outcomes, not inputs. A
fault that was ended (``pty.hang`` by ``pty.resume``, ``http.pause`` by ``http.resume``) is
replayed with its end at the same run time, so the replay has the same faults with the same
durations. A replay that carries chaos faults keeps the profile's ``[[chaos]]`` quiet, so they
happen once.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from console.errors import ReplayError

__all__ = ["ReplayError", "ReplayFault", "load_replay", "to_toml"]

REPLAYED_SOURCES = ("key", "command", "api", "chaos")
RUN_PAUSE = "run.pause"  # a pause of the whole run; ``params["duration"]``: how long, in seconds


@dataclass(frozen=True)
class ReplayFault:
    t: float  # run seconds
    action: str
    target: str
    sessions: tuple[str, ...]
    params: Mapping[str, Any] = field(default_factory=dict)
    ended: float | None = None  # run seconds when ``ended_by`` ended it
    ended_by: str = ""
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
    faults: dict[int, ReplayFault] = {}  # by fault id, in the order they happened
    for record in _records(path):
        event = record.get("event")
        # Run seconds start when the load does (logs before it: when the run started).
        if event in ("run_started", "load_started"):
            started = datetime.fromisoformat(record["ts"])
        data = record.get("data") or {}
        if event == "run_paused" and record.get("source") in REPLAYED_SOURCES:
            pause = ReplayFault(t=float(data.get("t", 0.0)), action=RUN_PAUSE, target="all",
                                sessions=())  # fmt: skip
            faults[-len(faults) - 1_000_000] = pause
        if event == "run_resumed" and pause_open(faults):
            key, pause = pause_open(faults)[-1]
            faults[key] = replace(pause, params={"duration": float(data.get("paused_s", 0.0))})
        if event == "fault_ended" and record.get("fault_id") in faults:
            fault = faults[record["fault_id"]]
            faults[record["fault_id"]] = replace(
                fault, ended=float(data.get("t", fault.t)), ended_by=str(data.get("ended_by", ""))
            )
        if event != "fault_injected" or record.get("source") not in REPLAYED_SOURCES:
            continue
        if started is None:
            raise ReplayError(f"{path}: no run_started event before the first fault")
        if "t" in data:  # the fault's own run seconds: pauses excluded
            t = float(data["t"])
        else:
            t = (datetime.fromisoformat(record["ts"]) - started).total_seconds()
        faults[int(record.get("fault_id") or -len(faults) - 1)] = ReplayFault(
            t=round(t, 3),
            action=str(data.get("action", "")),
            target=str(data.get("target", "all")),
            sessions=tuple(data.get("sessions", ())),
            params=dict(data.get("params") or {}),
            source=str(record.get("source")),
        )
    return list(faults.values())


def pause_open(faults: Mapping[int, ReplayFault]) -> list[tuple[int, ReplayFault]]:
    """Run pauses not yet given their length (a ``run_resumed`` comes next)."""
    return [(k, f) for k, f in faults.items() if f.action == RUN_PAUSE and not f.params]


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(str(value))


def to_toml(faults: list[ReplayFault]) -> str:
    """``[[faults]]`` tables reproducing ``faults``; one table per fault, on exact session ids,
    and one for the action that ended it, at its time."""
    out = []
    ends = [
        ReplayFault(f.ended, f.ended_by, f.target, f.sessions)
        for f in faults
        if f.ended is not None and f.ended_by
    ]
    for fault in sorted([*faults, *ends], key=lambda f: f.t):
        if fault.action == RUN_PAUSE:
            seconds = fault.params.get("duration", 0)
            out += [
                f"# the run was paused at {fault.t:g}s for {seconds:g}s (p; not a [[faults]] action)",
                "",
            ]
            continue
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
