"""The console's ``:`` command line: every fault a key sends, typed with its parameters.

::

    :drop ssh#3            :kill emit            :hang emit#0 5s       :resume emit#0
    :burst api 200         :rate api +50%        :rate api 500         :latency LINK 250ms 30s
    :export                :pause                :resume

``VERB [TARGET] [VALUE ...]``: the verb is a fault's name (``kill`` is ``pty.kill``; the kind
comes from the sessions the target names), the target a session id, a group or ``all``
(the default), and values fill the fault's parameters in the order it declares them (or
``name=value``). A typed fault is recorded like a key's, with source ``command``. No Textual
here: the console's modal (:mod:`widgets.command_line`) calls :func:`parse` and
:func:`complete`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from console.config import UNIT_PARSERS, check_value
from console.errors import UsageError
from console.sessions import get_kind
from console.snapshot import SessionSnapshot

__all__ = ["RUN_VERBS", "Typed", "complete", "parse"]

RUN_VERBS = ("export", "pause", "resume")  # the run's own commands, without a target
_ALIASES = {"restart": ("restart", "reconnect")}  # as the keys: restarting SSH is reconnect


@dataclass(frozen=True)
class Typed:
    """A parsed command: a run command (``action`` = "export", "pause", "resume") or a fault
    (``action`` = "kind.name") on ``target`` with ``params``."""

    action: str
    target: str = "all"
    params: dict[str, Any] = field(default_factory=dict)


def _verbs(sessions: Sequence[SessionSnapshot]) -> list[str]:
    names = {a.rsplit(".", 1)[-1] for s in sessions for a in s.actions}
    if "rate_up" in names:
        names.add("rate")
    return sorted(names | set(RUN_VERBS))


def _groups(sessions: Sequence[SessionSnapshot]) -> list[str]:
    return list(dict.fromkeys(s.group for s in sessions))


def _reached(target: str, sessions: Sequence[SessionSnapshot]) -> list[SessionSnapshot]:
    if target == "all":
        return list(sessions)
    return [s for s in sessions if target in (s.id, s.group)]


def _actions(verb: str, sessions: Sequence[SessionSnapshot]) -> list[str]:
    names = _ALIASES.get(verb, (verb,))
    return list(
        dict.fromkeys(a for s in sessions for a in s.actions if a.rsplit(".", 1)[-1] in names)
    )


def parse(text: str, sessions: Sequence[SessionSnapshot]) -> Typed:
    """``text`` (without the ``:``) as a command; raise UsageError saying what is wrong."""
    words = text.split()
    if not words:
        raise UsageError("type a command: drop, kill, hang, burst, export, ...")
    verb, rest = words[0].lower(), words[1:]
    if verb in RUN_VERBS and not rest:
        return Typed(verb)
    if not rest:
        raise UsageError(f"{verb}: which sessions? a session id, a group or all")
    target, values = rest[0], rest[1:]
    reached = _reached(target, sessions)
    if not reached:
        known = ", ".join(_groups(sessions)[:8])
        raise UsageError(f"no session or group {target!r} (groups: {known})")
    if verb == "rate":
        return _rate(target, values, reached)
    actions = _actions(verb, reached)
    if not actions:
        raise UsageError(f"{verb} does not apply to {target}")
    if len(actions) > 1:
        raise UsageError(f"{verb} on {target} means {' or '.join(actions)}: name a group")
    action = actions[0]
    kind, _, name = action.partition(".")
    declared = dict(get_kind(kind).faults[name].params)
    params: dict[str, Any] = {}
    for value in values:
        key, eq, given = value.partition("=")
        if not eq:
            free = [p for p in declared if p not in params]
            if not free:
                raise UsageError(f"{action}: too many values ({', '.join(declared) or 'none'})")
            key, given = free[0], value
        elif key not in declared:
            raise UsageError(f"{action} has no parameter {key!r} ({', '.join(declared)})")
        params[key] = _value(action, key, declared[key], given)
    return Typed(action, target, params)


def _value(action: str, key: str, unit: str, text: str) -> Any:
    """A typed value in its parameter's unit, within the fault's declared bounds
    (``FaultSpec.limits``), as the profile loader reads it."""
    try:
        if unit in UNIT_PARSERS:
            value: Any = UNIT_PARSERS[unit](text)
        elif unit == "int":
            value = int(text)
        elif unit == "float":
            value = float(text)
        else:
            return text
    except ValueError as exc:  # UnitError is a ValueError too
        raise UsageError(f"{action} {key}: {_short(exc)}") from None
    kind, _, name = action.partition(".")
    limits = get_kind(kind).faults[name].limits.get(key, {})
    meta = {"unit": unit if unit in UNIT_PARSERS else None, **limits}
    if (broken := check_value(meta, value)) is not None:
        raise UsageError(f"{action} {key}: {_short(broken)}")
    return value


def _short(problem: object, limit: int = 120) -> str:
    """A problem's text cut to one line's length: it quotes what was typed, which may be a
    pasted megabyte."""
    text = str(problem)
    return text if len(text) <= limit else text[: limit - 1] + "…"


_RATE_USAGE = "rate TARGET +N% | -N% | N (rate api +50%, rate api 500: iterations/s)"


def _rate(target: str, values: Sequence[str], reached: Sequence[SessionSnapshot]) -> Typed:
    """``rate api +50%`` / ``-25%``: rate_up or rate_down by that much; ``rate api 500`` (or
    ``500/s``, ``30000/m``): set_rate, the group's arrival rate in iterations per second."""
    change = values[0] if values else ""
    if len(values) != 1:
        raise UsageError(_RATE_USAGE)
    if not change.endswith("%"):
        actions = _actions("set_rate", reached)
        if not actions:
            raise UsageError(f"an absolute rate does not apply to {target}")
        bare = _number(change, None)  # a bare number is per second, as in a profile
        rate = bare if bare is not None else _value(actions[0], "rate", "rate", change)
        # Here, not at the top: the HTTP kind's package brings aiohttp and httpx (~14 MB),
        # which a console without HTTP sessions never loads.
        from console.sessions.http.config import MAX_RATE

        if not 0 < rate <= MAX_RATE:
            raise UsageError(
                f"rate {_short(change, 40)}: must be above 0 and at most {MAX_RATE:.0f}/s"
            )
        return Typed(actions[0], target, {"rate": rate})
    if change[:1] not in "+-":
        raise UsageError(_RATE_USAGE)
    verb = "rate_up" if change.startswith("+") else "rate_down"
    actions = _actions(verb, reached)
    if not actions:
        raise UsageError(f"rate does not apply to {target}")
    return Typed(actions[0], target, {"by": _value(actions[0], "by", "percent", change[1:])})


def _number(text: str, default: float | None = 0.0) -> float | None:
    try:
        return float(text)
    except ValueError:
        return default


def complete(text: str, sessions: Sequence[SessionSnapshot]) -> list[str]:
    """Whole-line completions of ``text``: verbs, then targets that take the verb, then the
    names of the fault's parameters (``delay=``) to fill in."""
    words = text.split(" ")
    if len(words) == 1:
        return [v for v in _verbs(sessions) if v.startswith(words[0].lower())]
    verb, head = words[0].lower(), " ".join(words[:-1])
    last = words[-1]
    if len(words) == 2:
        if verb in RUN_VERBS and not _actions(verb, sessions):
            return []
        targets = ["all", *_groups(sessions), *(s.id for s in sessions)]
        takes = "rate_up" if verb == "rate" else verb
        fits = [t for t in targets if t.startswith(last) and _actions(takes, _reached(t, sessions))]
        return [f"{head} {t}" for t in fits]
    reached = _reached(words[1], sessions)
    if verb == "rate":  # a change, or the rate it runs at now as a start to edit
        if len(words) != 3:
            return []
        # iterations/s, which is what a rate sets (a flow of two requests does 2 req/s each)
        now = sum(_number(dict(s.details).get("iterations/s", "")) or 0.0 for s in reached)
        offers = ["+25%", "-25%", *([f"{now:.0f}/s"] if _actions("set_rate", reached) else [])]
        return [f"{head} {o}" for o in offers if o.startswith(last)]
    actions = _actions(verb, reached)
    if len(actions) != 1 or "=" in last:
        return []
    kind, _, name = actions[0].partition(".")
    taken = {w.partition("=")[0] for w in words[2:-1] if "=" in w}
    free = [p for p in get_kind(kind).faults[name].params if p not in taken]
    return [f"{head} {p}=" for p in free if p.startswith(last)]
