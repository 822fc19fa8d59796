"""Strict, typed reading of TOML tables into frozen dataclasses.

A config class is a frozen dataclass whose fields use :func:`opt` for defaults, units and
documentation. :func:`read_table` checks every key of a TOML table against it:

* an unknown key is an error, with the closest known key suggested ("did you mean 'count'?");
* a value of the wrong type is an error naming the expected type;
* a field with ``unit=`` accepts natural units (``"5s"``, ``"200MB"``, ``"100/s"``, ``"90%"``)
  and is stored in the base unit (seconds, bytes, per second, fraction);
* nested dataclasses and lists of them are read the same way;
* a field's bounds (``ge``, ``gt``, ``le``), ``nonempty`` and ``check`` are declared with it in
  :func:`opt`, so every limit has one home and the generated profile docs list them. A number
  that is not finite (``nan``, ``inf``) is never accepted.

Errors are collected, not raised one by one, so a broken profile shows all its mistakes at once.
Each carries its key path (``pty[2].idle_after``); :mod:`console.profile` turns paths into line
numbers.

Supported field types: ``str``, ``int``, ``float``, ``bool``, ``list[X]``, ``dict[str, X]``,
``Literal[...]``, ``X | None``, ``str | list[str]``, and nested config dataclasses.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

from console import units

__all__ = [
    "ConfigIssue",
    "GroupConfig",
    "KeyPath",
    "check_value",
    "doc_rows",
    "field_problem",
    "group_name_problem",
    "name_problem",
    "opt",
    "read_table",
    "read_value",
    "suggest",
]

T = TypeVar("T")
KeyPath = tuple[str | int, ...]

UNIT_PARSERS: dict[str, Callable[[object], float]] = {
    "duration": units.parse_duration,
    "size": units.parse_size,
    "rate": units.parse_rate,
    "percent": units.parse_percent,
}


@dataclass(frozen=True)
class ConfigIssue:
    path: KeyPath
    message: str

    @property
    def dotted(self) -> str:
        return format_path(self.path)


def format_path(path: KeyPath) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def name_problem(name: str, *, path: bool = False) -> str | None:
    """Why ``name`` cannot name a run or a group, or None.

    A name is drawn as it is in the console, the headless summary and the reports, and only
    text from outside is sanitized on its way there: a control character (an escape sequence
    that retitles or clears the terminal) or a bidi override must be refused here. A run's
    name is also part of its directory's name (``path``), so a ``/`` could leave the runs
    directory.
    """
    if not name.isprintable():
        return f"must be printable text, got {name!r}"
    if path and "/" in name:
        return f"must not contain '/' (it names the run directory), got {name!r}"
    return None


def group_name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a session group, or None.

    A group's name is typed as one word on the command line (``:rate api 500``) and is the part
    of a session id before ``#`` (``api#0``): a space or a ``#`` would make it untargetable.
    """
    if (problem := name_problem(name)) is not None:
        return problem
    if any(c.isspace() or c == "#" for c in name):
        return f"must be one word without '#' (it is typed as a fault target), got {name!r}"
    if name == "all":
        return "must not be 'all': as a fault target it means every session of the kind"
    return None


def opt(
    default: Any = MISSING,
    *,
    unit: str | None = None,
    doc: str = "",
    secret: bool = False,
    factory: Callable[[], Any] | None = None,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    nonempty: bool = False,
    check: Callable[[Any], str | None] | None = None,
) -> Any:
    """A config field: default (or required when omitted), unit, one-line doc, secrecy, limits.

    ``ge``/``gt``/``le`` bound a number (in the base unit for a field with ``unit=``; a list of
    numbers is bounded item by item); ``nonempty`` refuses ``""`` and ``[]``; ``check`` returns a
    message for a value it refuses, or None.
    """
    metadata = {
        "unit": unit,
        "doc": doc,
        "secret": secret,
        "ge": ge,
        "gt": gt,
        "le": le,
        "nonempty": nonempty,
        "check": check,
    }
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=metadata)
    if isinstance(default, (list, dict)):
        value = default
        return dataclasses.field(default_factory=lambda: type(value)(value), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def _human(unit: str | None, value: float) -> str:
    if unit is None and not isinstance(value, bool):
        return f"{value:g}"
    return human_default(unit, value).strip('"')


def check_value(meta: Mapping[str, Any], value: Any) -> str | None:
    """Why ``value`` breaks the limits declared in a field's metadata, or None."""
    if value is None:
        return None
    if meta.get("nonempty") and (
        (isinstance(value, str) and not value.strip()) or (isinstance(value, tuple) and not value)
    ):
        return "must not be empty"
    numbers = value if isinstance(value, tuple) else (value,)
    unit = meta.get("unit")
    for number in numbers:
        if isinstance(number, bool) or not isinstance(number, (int, float)):
            continue
        if not math.isfinite(number):
            return f"must be a finite number, got {number!r}"
        if (low := meta.get("ge")) is not None and number < low:
            return f"must be at least {_human(unit, low)}, got {_human(unit, number)}"
        if (low := meta.get("gt")) is not None and number <= low:
            return f"must be more than {_human(unit, low)}, got {_human(unit, number)}"
        if (high := meta.get("le")) is not None and number > high:
            return f"must be at most {_human(unit, high)}, got {_human(unit, number)}"
    if (check := meta.get("check")) is not None:
        return typing.cast("str | None", check(value))
    return None


def field_problem(cls: type, name: str, value: Any) -> str | None:
    """Why ``value`` breaks the limits of field ``name`` of ``cls`` (for command-line overrides)."""
    field = {f.name: f for f in dataclasses.fields(cls)}[name]
    return check_value(field.metadata, value)


def limits_text(meta: Mapping[str, Any]) -> str:
    """The declared limits in words, for the generated docs: ``1..1000``, ``> 0s``."""
    unit = meta.get("unit")
    low = meta.get("ge")
    high = meta.get("le")
    parts = []
    if meta.get("gt") is not None:
        parts.append(f"> {_human(unit, meta['gt'])}")
    if low is not None and high is not None:
        parts.append(f"{_human(unit, low)}..{_human(unit, high)}")
    elif low is not None:
        parts.append(f">= {_human(unit, low)}")
    elif high is not None:
        parts.append(f"<= {_human(unit, high)}")
    if meta.get("nonempty"):
        parts.append("not empty")
    return ", ".join(parts)


def suggest(word: str, choices: typing.Iterable[str]) -> str | None:
    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return match[0] if match else None


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if tp is str:
        return "a string"
    if tp is bool:
        return "true or false"
    if tp is int:
        return "a whole number"
    if tp is float:
        return "a number"
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if origin in (list, tuple):
        return "a list"
    if origin is dict:
        return "a table"
    if dataclasses.is_dataclass(tp):
        return "a table"
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in get_args(tp) if a is not type(None))
    return str(tp)


class _Reader:
    def __init__(self) -> None:
        self.issues: list[ConfigIssue] = []

    def fail(self, path: KeyPath, message: str) -> Any:
        self.issues.append(ConfigIssue(path, message))
        return MISSING

    def value(self, tp: Any, raw: Any, path: KeyPath, unit: str | None) -> Any:
        origin = get_origin(tp)
        if unit is not None:
            if raw is None:
                return None
            try:
                return UNIT_PARSERS[unit](raw)
            except units.UnitError as exc:
                return self.fail(path, str(exc))
        if origin in (Union, types.UnionType):
            options = [a for a in get_args(tp) if a is not type(None)]
            for option in options:
                probe = _Reader()
                result = probe.value(option, raw, path, None)
                if not probe.issues:
                    return result
            if len(options) == 1:
                return self.value(options[0], raw, path, None)
            return self.fail(path, f"expected {_type_name(tp)}, got {type(raw).__name__}")
        if origin is Literal:
            allowed = get_args(tp)
            if raw in allowed:
                return raw
            hint = suggest(str(raw), [str(a) for a in allowed])
            extra = f" (did you mean {hint!r}?)" if hint else ""
            return self.fail(path, f"expected {_type_name(tp)}, got {raw!r}{extra}")
        if tp is bool:
            return (
                raw
                if isinstance(raw, bool)
                else self.fail(path, f"expected true or false, got {raw!r}")
            )
        if tp is int:
            if isinstance(raw, int) and not isinstance(raw, bool):
                return raw
            return self.fail(path, f"expected a whole number, got {raw!r}")
        if tp is float:
            if isinstance(raw, (int, float)) and not isinstance(raw, bool):
                if not math.isfinite(raw):
                    return self.fail(path, f"expected a finite number, got {raw!r}")
                return float(raw)
            return self.fail(path, f"expected a number, got {raw!r}")
        if tp is str:
            return (
                raw if isinstance(raw, str) else self.fail(path, f"expected a string, got {raw!r}")
            )
        if tp is Any:
            return raw
        if origin in (list, tuple):
            item_tp = (get_args(tp) or (Any,))[0]
            if not isinstance(raw, list):
                return self.fail(path, f"expected a list, got {raw!r}")
            return tuple(self.value(item_tp, item, (*path, i), None) for i, item in enumerate(raw))
        if origin is dict:
            _, value_tp = get_args(tp) or (str, Any)
            if not isinstance(raw, dict):
                return self.fail(path, f"expected a table, got {raw!r}")
            return {k: self.value(value_tp, v, (*path, k), None) for k, v in raw.items()}
        if dataclasses.is_dataclass(tp) and isinstance(tp, type):
            if not isinstance(raw, dict):
                return self.fail(path, f"expected a table, got {raw!r}")
            return self.table(tp, raw, path)
        raise TypeError(f"unsupported config type {tp!r} at {format_path(path)}")

    def _has_issue_under(self, path: KeyPath) -> bool:
        return any(i.path[: len(path)] == path for i in self.issues)

    def table(self, cls: type[T], raw: Mapping[str, Any], path: KeyPath) -> T:
        hints = typing.get_type_hints(cls, include_extras=True)
        fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        known = list(fields)
        values: dict[str, Any] = {}
        for key, raw_value in raw.items():
            name = key.replace("-", "_")
            if name not in fields:
                hint = suggest(name, known)
                extra = f" (did you mean {hint!r}?)" if hint else ""
                self.fail((*path, key), f"unknown key {key!r}{extra}")
                continue
            meta = fields[name].metadata
            value = self.value(hints[name], raw_value, (*path, key), meta.get("unit"))
            fine = value is not MISSING and not self._has_issue_under((*path, key))
            if fine and (problem := check_value(meta, value)) is not None:
                value = self.fail((*path, key), problem)
            values[name] = value
        for name, f in fields.items():
            if name not in values and f.default is MISSING and f.default_factory is MISSING:
                self.fail((*path, name), f"missing required key {name!r}")
        if any(v is MISSING for v in values.values()) or len(self.issues):
            # Keep reading other tables, but do not build a half-valid object.
            return typing.cast(T, None)
        return cls(**values)


def read_table(
    cls: type[T], raw: Mapping[str, Any], path: KeyPath
) -> tuple[T | None, list[ConfigIssue]]:
    """Read ``raw`` into ``cls``; return the object (or None) and every issue found."""
    reader = _Reader()
    result = reader.table(cls, raw, path)
    return (None if reader.issues else result), reader.issues


def read_value(
    tp: Any, raw: Any, path: KeyPath, unit: str | None = None
) -> tuple[Any, list[ConfigIssue]]:
    """Read one value as a config field of type ``tp`` (and ``unit``) would be read: the one
    value reader, also for values outside config classes (fault parameters)."""
    reader = _Reader()
    result = reader.value(tp, raw, path, unit)
    return (None if reader.issues else result), reader.issues


def human_default(unit: str | None, value: Any) -> str:
    """A default as a profile would write it: ``"250ms"`` rather than ``0.25``."""
    if unit is None or not isinstance(value, (int, float)) or isinstance(value, bool):
        return repr(value)
    if unit == "duration":
        durations = ((86400, "d"), (3600, "h"), (60, "m"), (1, "s"), (1e-3, "ms"), (1e-6, "us"))
        for scale, suffix in durations:
            if value >= scale and float(value / scale).is_integer():
                return f'"{int(value / scale)}{suffix}"'
        return f'"{value}s"' if value else '"0s"'
    if unit == "size":
        scales = (
            (1024**3, "GiB"),
            (1e9, "GB"),
            (1024**2, "MiB"),
            (1e6, "MB"),
            (1024, "KiB"),
            (1e3, "KB"),
        )
        for scale, suffix in scales:
            if value >= scale and float(value / scale).is_integer():
                return f'"{int(value / scale)}{suffix}"'
        return f'"{int(value)}B"'
    if unit == "percent":
        return f'"{value * 100:g}%"'
    if unit == "rate":
        return f'"{value:.15g}/s"'  # 1000000/s, never 1e+06/s
    return repr(value)


def nested_tables(cls: type) -> list[tuple[str, type]]:
    """(key, config class) for each field holding a table or a list of tables."""
    hints = typing.get_type_hints(cls)
    found = []
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        candidates = [tp, *get_args(tp)]
        for candidate in candidates:
            inner = [candidate, *get_args(candidate)]
            table = next(
                (c for c in inner if dataclasses.is_dataclass(c) and isinstance(c, type)), None
            )
            if table is not None:
                found.append((f.name, table))
                break
    return found


def doc_rows(cls: type) -> list[tuple[str, str, str, str]]:
    """(key, type, default, doc) rows for documenting a config class; limits end the doc."""
    hints = typing.get_type_hints(cls)
    rows = []
    for f in dataclasses.fields(cls):
        unit = f.metadata.get("unit")
        kind = unit if unit else _type_name(hints[f.name])
        if f.default is not MISSING:
            default = human_default(unit, f.default)
        elif f.default_factory is not MISSING:
            default = repr(f.default_factory())
        else:
            default = "required"
        doc = f.metadata.get("doc", "")
        if limits := limits_text(f.metadata):
            doc = f"{doc} Allowed: {limits}." if doc else f"Allowed: {limits}."
        rows.append((f.name, kind, default, doc))
    return rows


@dataclass(frozen=True, kw_only=True)
class GroupConfig:
    """Keys every session group has. Kinds subclass it with ``@dataclass(frozen=True, kw_only=True)``.

    Lists are read as tuples, so declare list fields as ``tuple[X, ...]``.
    """

    name: str = opt(
        "",
        doc="Group name, used in session ids (`name#0`) and fault targets; defaults to the kind, numbered when repeated.",
        check=group_name_problem,
    )
    count: int = opt(1, ge=1, le=1000, doc="How many sessions of this group run at once.")
