"""Profiles: strict TOML files describing a run, found by path or by bundled name.

A profile has a ``[run]`` table, session groups (``[[pty]]``, ``[[ssh]]``, ``[[http]]``), a
fault schedule (``[[faults]]``), ``[[criteria]]`` and optional console ``[keys]``. Every key is
documented in ``profiles/README.md``.

Errors are collected and raised together as :class:`ProfileError`, each naming the file, the
line and the key::

    profiles/broken.toml:12: pty[0].comand: unknown key 'comand' (did you mean 'command'?)

Line numbers come from :class:`_LineIndex`, a small scan of the TOML text for table headers and
keys, because ``tomllib`` does not report positions.
"""

from __future__ import annotations

import codecs
import errno
import os
import re
import stat
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from console import units
from console.bindings import check_keymap
from console.chaos import ChaosChoice, ChaosPlan
from console.cluster import check_cluster, check_node_lost
from console.config import (
    ConfigIssue,
    GroupConfig,
    KeyPath,
    check_value,
    format_path,
    name_problem,
    opt,
    read_table,
    read_value,
    suggest,
)
from console.criteria import (
    CriterionError,
    Threshold,
    parse_recovery_threshold,
    parse_threshold,
)
from console.errors import ProfileError
from console.metrics import MetricSpec, MetricType
from console.sanitize import clean
from console.sessions import get_kind, kind_tables
from console.sessions.base import FaultSpec, SessionKind

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

__all__ = [
    "CONSOLE_METRICS",
    "ConsoleConfig",
    "CriterionConfig",
    "FaultConfig",
    "GroupSpec",
    "Profile",
    "ProfileError",
    "ProfileIssue",
    "RunConfig",
    "bundled_profiles",
    "load_profile",
    "load_profile_text",
]

DAY = 86400.0

CONSOLE_METRICS: tuple[MetricSpec, ...] = (
    MetricSpec(
        "console_cpu", MetricType.GAUGE, "%", "The console's own CPU use, % of one core.", "max"
    ),
    MetricSpec(
        "engine_cpu",
        MetricType.GAUGE,
        "%",
        "The engine's CPU use (its thread: sessions, metrics, criteria, the log; not drawing, nor work it hands to helper threads such as /proc scans), % of one core.",
        "max",
    ),
    MetricSpec("console_rss", MetricType.GAUGE, "bytes", "The console's resident memory.", "max"),
    MetricSpec(
        "console_memory_growth",
        MetricType.GAUGE,
        "MB/h",
        "Growth of the console's RSS, least-squares slope after a warm-up.",
        "max",
    ),
    MetricSpec("console_loop_lag", MetricType.TREND, "ms", "Event-loop lag of the engine's loop."),
    MetricSpec("session_abnormal_ends", MetricType.COUNTER, "count", "Sessions that ended failed."),
    MetricSpec("faults_injected", MetricType.COUNTER, "count", "Faults and controls applied."),
    MetricSpec(
        "generator_saturated",
        MetricType.COUNTER,
        "count",
        "Samples in which the load generator itself was saturated (`count==0`: never).",
    ),
)


@dataclass(frozen=True)
class ProfileIssue:
    file: str
    line: int | None
    key: str
    message: str

    def __str__(self) -> str:
        # A file's name is text from outside too: one named with an escape would act on the
        # terminal the error is printed to.
        file = clean(self.file, limit=4096)
        where = f"{file}:{self.line}" if self.line else file
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


@dataclass(frozen=True, kw_only=True)
class RunConfig:
    name: str = opt(
        "",
        doc="Run name, used in the run directory and reports; defaults to the file name.",
        check=lambda name: name_problem(name, path=True),
    )
    description: str = opt("", doc="One line shown in the header and the report.")
    duration: float = opt(
        60.0,
        unit="duration",
        gt=0,
        le=30 * DAY,
        doc="How long the run lasts (`--duration` overrides).",
    )
    seed: int = opt(0, doc="Seed for random fault targets and jitter, so a run can be replayed.")
    snapshot_interval: float = opt(
        0.25,
        unit="duration",
        ge=0.05,
        le=60.0,
        doc="How often the engine publishes a snapshot (the console's refresh).",
    )
    sample_interval: float = opt(
        1.0, unit="duration", ge=0.1, le=3600.0, doc="How often sparklines take a sample."
    )
    progress_interval: float = opt(
        5.0, unit="duration", ge=0.5, le=DAY, doc="How often a headless run prints a progress line."
    )
    metrics_listen: str = opt(
        "",
        doc="Serve Prometheus `/metrics` on this `host:port` while the run lasts "
        "(`--metrics-listen`); empty: off. A bare `:9464` listens on 127.0.0.1 only.",
    )
    out_json: str = opt(
        "",
        doc="Write k6's JSON output (`Metric` and `Point` lines) to this file (`--out json=FILE`); "
        "a `.gz` name is gzipped.",
    )
    summary_export: str = opt(
        "", doc="Write k6's end-of-test summary JSON to this file (`--summary-export`)."
    )
    cluster: str = opt(
        "",
        check=check_cluster,
        doc="Run the HTTP workers as Ray actors on this cluster (`--cluster`): a Ray address "
        "(`auto`, `host:6379`) or `local:N` to start one here with N worker nodes; needs "
        "`pip install 'stressdeck[cluster]'`. Empty: local worker processes.",
    )
    on_node_lost: str = opt(
        "respread",
        check=check_node_lost,
        doc="When a cluster node dies (an observed `node.lost` fault): `respread` starts its "
        "workers' shares again on the surviving nodes, `degraded` runs on without them.",
    )


@dataclass(frozen=True, kw_only=True)
class ConsoleConfig:
    """How the console behaves for the operator; headless runs ignore it."""

    confirm_bulk: bool = opt(
        True,
        doc="Ask once before a bulk destructive key (alt+k kill all, D drop all, R restart "
        "all) first hits every session; false: they act at once (a rehearsed fault drill).",
    )


@dataclass(frozen=True, kw_only=True)
class FaultConfig:
    at: str | tuple[str, ...] = opt(
        "0s", doc='When: a duration from the start, or a list of them (`["5m", "10m", "15m"]`).'
    )
    every: float | None = opt(
        None,
        unit="duration",
        ge=0.1,  # faster than this is a flood, not a fault schedule
        doc="Repeat at this interval after the first `at` until the run ends.",
    )
    action: str = opt(
        doc="`kind.action`, such as `pty.kill`, `ssh.drop` or `http.pause`; see the fault tables below."
    )
    target: str = opt("all", doc="`all`, a group name, or a session id such as `emit#2`.")
    pick: int | None = opt(
        None,
        ge=1,
        le=1000,
        doc="Apply to this many targets, picked at random (seeded by `run.seed`).",
    )
    params: dict[str, Any] = opt({}, doc='Parameters of the action, such as `{ duration = "5s" }`.')


@dataclass(frozen=True, kw_only=True)
class ChaosChoiceConfig:
    """One entry of a chaos menu: an action, where, and how often relative to the others."""

    action: str = opt(doc="`kind.action`, as in `[[faults]]`.")
    target: str = opt("all", doc="`all`, a group name, or a session id.")
    weight: float = opt(1.0, ge=0.0, doc="How often it is drawn relative to the other entries.")
    pick: int | None = opt(None, ge=1, le=1000, doc="Reach this many of the target's sessions.")
    params: dict[str, Any] = opt({}, doc="Parameters of the action.")


@dataclass(frozen=True, kw_only=True)
class ChaosConfig:
    rate: float = opt(
        unit="rate",
        gt=0,
        doc='Faults per unit time on average, drawn as a Poisson process: `"6/m"`.',
    )
    seed: int | None = opt(
        None, doc="Seed of the draws (default: `run.seed`); same seed, same faults."
    )
    start: float = opt(0.0, unit="duration", doc="No chaos before this much run time.")
    stop: float | None = opt(None, unit="duration", doc="No chaos after this much run time.")
    menu: tuple[ChaosChoiceConfig, ...] = opt(
        nonempty=True, doc="The weighted actions to draw from (`[[chaos.menu]]`)."
    )


@dataclass(frozen=True, kw_only=True)
class CriterionConfig:
    name: str = opt("", doc="Shown in the side panel and the report; defaults to the expression.")
    metric: str = opt("", doc="The metric the threshold reads (run and window scope).")
    threshold: str = opt(
        nonempty=True,
        doc="A k6 expression: `p(95)<2000`, `rate<0.01`, `count==0`; units allowed (`p(95)<2s`, `value<200MB`, `rate>=90%`).",
    )
    window: float | None = opt(
        None,
        unit="duration",
        ge=1.0,
        le=DAY,
        doc="Evaluate over this sliding window instead of the whole run.",
    )
    after: str = opt(
        "",
        doc="The fault action (`ssh.drop`) after which sessions must come back (recovery "
        "scope), or, with `metric`, after which the metric is judged (after scope).",
    )
    within: float | None = opt(
        None,
        unit="duration",
        gt=0,
        le=DAY,
        doc="Recovery scope: how long they have; after scope: how long after the fault the "
        "metric is read.",
    )
    baseline: float = opt(
        30.0,
        unit="duration",
        gt=0,
        le=DAY,
        doc="For `x baseline` thresholds: the run's first this much (run and window scopes), "
        "or this much before each fault (after scope).",
    )
    abort_on_fail: bool = opt(False, doc="Stop the run (exit 1) when this fails.")
    abort_grace: float = opt(
        0.0, unit="duration", doc="Do not abort before this much run time has passed."
    )


@dataclass(frozen=True)
class GroupSpec:
    kind: str
    config: GroupConfig
    line: int | None = None
    index: int = 0  # position among its table's entries, for error paths


@dataclass(frozen=True)
class FaultPlan:
    times: tuple[float, ...]
    every: float | None
    kind: str
    action: str  # full "kind.name"
    target: str
    pick: int | None
    params: Mapping[str, Any]


@dataclass(frozen=True)
class CriterionPlan:
    name: str
    scope: str  # "run", "window", "recovery"
    metric: str
    threshold: Threshold
    window: float | None
    after: str
    within: float
    abort_on_fail: bool
    abort_grace: float
    baseline: float = 30.0  # seconds, for relative thresholds ("<1.5x baseline")


@dataclass(frozen=True)
class Profile:
    path: Path
    run: RunConfig
    groups: tuple[GroupSpec, ...]
    faults: tuple[FaultPlan, ...]
    criteria: tuple[CriterionPlan, ...]
    keys: Mapping[str, str]
    data: Mapping[str, Any] = field(repr=False, default_factory=dict)
    chaos: tuple[ChaosPlan, ...] = ()
    console: ConsoleConfig = field(default_factory=ConsoleConfig)

    @property
    def name(self) -> str:
        return self.run.name

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(g.kind for g in self.groups))

    def metric_specs(self) -> dict[str, MetricSpec]:
        specs = {m.name: m for m in CONSOLE_METRICS}
        for kind in self.kinds:
            for spec in get_kind(kind).metrics:
                specs.setdefault(spec.name, spec)
        return specs

    def with_duration(self, seconds: float) -> Profile:
        return replace(self, run=replace(self.run, duration=seconds))

    def with_run(self, **changes: Any) -> Profile:
        """The same profile with ``[run]`` keys overridden (command-line options)."""
        return replace(self, run=replace(self.run, **changes))


def _table(kind: str) -> str:
    return next(t for t, k in kind_tables().items() if k == kind)


def _top_level() -> tuple[str, ...]:
    return ("run", "faults", "chaos", "criteria", "console", "keys", *kind_tables())


class _LineIndex:
    """Maps key paths (``("pty", 0, "command")``) to line numbers in a TOML text."""

    _HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
    _KEY = re.compile(r"^\s*([A-Za-z0-9_\-\"'.]+)\s*=")
    _INLINE_KEY = re.compile(r"([A-Za-z0-9_\-]+)\s*=")

    def __init__(self, text: str) -> None:
        self.lines: dict[KeyPath, int] = {}
        counters: dict[tuple[str | int, ...], int] = {}
        prefix: tuple[str | int, ...] = ()
        depth = 0  # inside a multi-line array or inline table
        for number, line in enumerate(text.splitlines(), start=1):
            stripped = line.split("#", 1)[0] if '"' not in line else line
            if depth == 0 and (header := self._HEADER.match(line)):
                parts = self._split(header.group(2))
                path: tuple[str | int, ...] = ()
                for part in parts[:-1]:
                    path = self._resolve((*path, part), counters)
                path = (*path, parts[-1])
                if header.group(1) == "[[":
                    index = counters.get(path, -1) + 1
                    counters[path] = index
                    self.lines.setdefault(path, number)
                    path = (*path, index)
                prefix = path
                self.lines.setdefault(prefix, number)
                continue
            if depth == 0 and (key := self._KEY.match(line)):
                keypath = prefix + tuple(self._split(key.group(1)))
                self.lines.setdefault(keypath, number)
                rest = line[key.end() :]
                if "{" in rest:
                    for inner in self._INLINE_KEY.findall(rest):
                        self.lines.setdefault((*keypath, inner), number)
            depth += (
                stripped.count("[")
                + stripped.count("{")
                - stripped.count("]")
                - stripped.count("}")
            )
            depth = max(depth, 0)

    _PART = re.compile(r'"([^"]*)"|\'([^\']*)\'|([^.\s]+)')

    @classmethod
    def _split(cls, dotted: str) -> list[str]:
        """A dotted TOML key's parts; a quoted part keeps its dots (``"detail.back"``)."""
        return ["".join(groups) for groups in cls._PART.findall(dotted)]

    @staticmethod
    def _resolve(
        path: tuple[str | int, ...], counters: Mapping[tuple[str | int, ...], int]
    ) -> tuple[str | int, ...]:
        return (*path, counters[path]) if path in counters else path

    def line(self, path: Iterable[str | int]) -> int | None:
        parts = tuple(path)
        while parts:
            if parts in self.lines:
                return self.lines[parts]
            parts = parts[:-1]
        return None


def bundled_dir() -> Path:
    """Where the bundled profiles are: in the wheel, or in the source tree when editable."""
    installed = Path(__file__).parent / "_profiles"
    if installed.is_dir():
        return installed
    return Path(__file__).resolve().parent.parent / "profiles"


def bundled_profiles() -> list[Path]:
    return sorted(bundled_dir().glob("*.toml"))


MAX_PROFILE_BYTES = 1024**2  # a profile is a page of TOML; more is a wrong file


def _not_a_profile_file(path: Path) -> str | None:
    """What ``path`` is when it exists but cannot be a profile; None for a regular file or
    nothing there at all (then the name may be a bundled profile's)."""
    try:
        info = path.stat()
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "a symlink loop, not a profile file"
        if exc.errno == errno.ENOENT:
            return f"a dangling symlink (to {os.readlink(path)!r})" if path.is_symlink() else None
        return f"cannot read: {exc.strerror}"
    if stat.S_ISDIR(info.st_mode):
        return "a directory, not a profile file"
    if not stat.S_ISREG(info.st_mode):
        return "not a regular file (a FIFO, socket or device); a profile is a TOML file"
    if info.st_size > MAX_PROFILE_BYTES:
        return f"{units.format_bytes(info.st_size)} is too large for a profile (at most 1MiB)"
    return None


def _decode(path: Path, data: bytes) -> str:
    """The text of a profile file, or ProfileError saying what the bytes are instead."""
    for bom, name in (
        (codecs.BOM_UTF8, "a UTF-8 byte-order mark (BOM)"),
        (codecs.BOM_UTF16_LE, "a UTF-16 byte-order mark"),
        (codecs.BOM_UTF16_BE, "a UTF-16 byte-order mark"),
    ):
        if data.startswith(bom):
            raise ProfileError(
                [
                    ProfileIssue(
                        str(path), 1, "", f"starts with {name}: save it as UTF-8 without one"
                    )
                ]
            )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ProfileError(
            [
                ProfileIssue(
                    str(path),
                    line,
                    "",
                    f"not UTF-8 text: byte 0x{data[exc.start]:02x} at offset {exc.start}",
                )
            ]
        ) from None


def resolve_profile(spec: str | Path) -> Path:
    path = Path(spec).expanduser()
    if (problem := _not_a_profile_file(path)) is not None:
        raise ProfileError([ProfileIssue(str(spec), None, "", problem)])
    if path.is_file():
        return path
    name = str(spec).removesuffix(".toml")
    candidate = bundled_dir() / f"{name}.toml"
    if "/" not in name and candidate.is_file():
        return candidate
    names = [p.stem for p in bundled_profiles()]
    hint = suggest(name, names)
    extra = f" Did you mean {hint!r}?" if hint else ""
    raise ProfileError(
        [
            ProfileIssue(
                str(spec),
                None,
                "",
                f"no such file, nor a bundled profile of that name.{extra} Bundled: {', '.join(names)}",
            )
        ]
    )


def load_profile(spec: str | Path) -> Profile:
    """Read a profile by path or bundled name; raise ProfileError listing every problem."""
    path = resolve_profile(spec)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ProfileError([ProfileIssue(str(path), None, "", f"cannot read: {exc}")]) from None
    return load_profile_text(_decode(path, data), path=path)


def load_profile_text(
    text: str, *, path: Path | str = "<profile>", name: str | None = None
) -> Profile:
    path = Path(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"line (\d+)", str(exc))
        raise ProfileError(
            [
                ProfileIssue(
                    str(path), int(match.group(1)) if match else None, "", f"not valid TOML: {exc}"
                )
            ]
        ) from None
    return _Builder(path, text, data, name).build()


class _Builder:
    def __init__(self, path: Path, text: str, data: dict[str, Any], name: str | None) -> None:
        self.path = path
        self.data = data
        self.index = _LineIndex(text)
        self.issues: list[ProfileIssue] = []
        self.default_name = name or path.stem

    def issue(self, path: KeyPath, message: str) -> None:
        self.issues.append(
            ProfileIssue(str(self.path), self.index.line(path), format_path(path), message)
        )

    def take(self, found: Iterable[ConfigIssue]) -> None:
        for item in found:
            self.issue(item.path, item.message)

    def build(self) -> Profile:
        top_level = _top_level()
        for key in self.data:
            if key not in top_level:
                hint = suggest(key, top_level)
                extra = f" (did you mean {hint!r}?)" if hint else ""
                self.issue(
                    (key,), f"unknown table {key!r}{extra}; expected one of {', '.join(top_level)}"
                )
        run_raw = self.data.get("run", {})
        run, found = read_table(RunConfig, run_raw if isinstance(run_raw, dict) else {}, ("run",))
        self.take(found)
        run = run or RunConfig()
        if run.metrics_listen:
            try:
                units.parse_address(run.metrics_listen)
            except units.UnitError as exc:
                self.issue(("run", "metrics_listen"), str(exc))
        if not run.name:
            if (problem := name_problem(self.default_name, path=True)) is not None:
                self.issue(("run", "name"), f"the run is named after its file, which {problem}")
            run = replace(run, name=self.default_name)
        groups = self._groups()
        kinds: dict[str, SessionKind] = {g.kind: get_kind(g.kind) for g in groups}
        faults = self._faults(groups, kinds)
        chaos = self._chaos(groups, kinds, run.seed)
        criteria = self._criteria(groups, kinds)
        keys = self._keys()
        console_raw = self.data.get("console", {})
        console, found = read_table(
            ConsoleConfig, console_raw if isinstance(console_raw, dict) else {}, ("console",)
        )
        self.take(found)
        if not isinstance(console_raw, dict):
            self.issue(("console",), "expected a table: [console]")
        if not any(g.kind != "net" for g in groups) and not self.issues:
            self.issue((), "no session groups: add at least one [[pty]], [[ssh]] or [[http]] table")
        if self.issues:
            raise ProfileError(self.issues)
        return Profile(
            self.path,
            run,
            tuple(groups),
            tuple(faults),
            tuple(criteria),
            keys,
            self.data,
            chaos,
            console or ConsoleConfig(),
        )

    def _groups(self) -> list[GroupSpec]:
        groups: list[GroupSpec] = []
        for table_name, kind_name in kind_tables().items():
            raw = self.data.get(table_name)
            if raw is None:
                continue
            if isinstance(raw, dict):
                raw = [raw]
                self.issue(
                    (table_name,),
                    f"write [[{table_name}]] (an array of tables), not [{table_name}]",
                )
                continue
            kind = get_kind(kind_name)
            tables = [t for t in raw if isinstance(t, dict)]
            for i, table in enumerate(tables):
                config, found = read_table(kind.config_type, table, (table_name, i))
                self.take(found)
                if config is None:
                    continue
                name = config.name or (table_name if len(tables) == 1 else f"{table_name}{i + 1}")
                config = replace(config, name=name)
                groups.append(GroupSpec(kind_name, config, self.index.line((table_name, i)), i))
        groups = self._check_links(groups)
        seen: set[str] = set()
        for group in groups:
            if group.config.name in seen:
                self.issue(
                    (group.kind,),
                    f"two groups are named {group.config.name!r}; names must be unique",
                )
            seen.add(group.config.name)
        return groups

    def _faults(
        self, groups: Sequence[GroupSpec], kinds: Mapping[str, SessionKind]
    ) -> list[FaultPlan]:
        plans: list[FaultPlan] = []
        raw = self.data.get("faults", [])
        if not isinstance(raw, list):
            self.issue(("faults",), "write [[faults]] (an array of tables)")
            return plans
        for i, table in enumerate(raw):
            config, found = read_table(FaultConfig, table, ("faults", i))
            self.take(found)
            if config is None:
                continue
            times: list[float] = []
            for j, when in enumerate((config.at,) if isinstance(config.at, str) else config.at):
                try:
                    times.append(units.parse_duration(when))
                except units.UnitError as exc:
                    self.issue(
                        ("faults", i, "at", j)
                        if not isinstance(config.at, str)
                        else ("faults", i, "at"),
                        str(exc),
                    )
            kind_name, _, action = config.action.partition(".")
            kind = kinds.get(kind_name)
            if kind is None:
                present = ", ".join(kinds) or "none"
                self.issue(
                    ("faults", i, "action"),
                    f"{config.action!r}: the profile has no {kind_name!r} sessions (kinds present: {present})",
                )
                continue
            spec = kind.faults.get(action)
            if spec is None:
                hint = suggest(action, kind.faults)
                extra = f" (did you mean '{kind_name}.{hint}'?)" if hint else ""
                self.issue(
                    ("faults", i, "action"),
                    f"unknown action {config.action!r}{extra}; {kind_name} accepts {', '.join(kind_name + '.' + a for a in kind.faults)}",
                )
                continue
            params = self._fault_params(spec, config.params, ("faults", i, "params"))
            if kind_name == "net":
                targetable = [
                    g for g in groups if g.kind == "net" or bool(getattr(g.config, "via", ""))
                ]
            else:
                targetable = [g for g in groups if g.kind == kind_name]
            creates = config.action == "net.create"  # names the link it makes
            if not creates and not self._target_exists(config.target, targetable):
                self.issue(
                    ("faults", i, "target"),
                    f"{config.target!r} is not 'all', a {kind_name} group name or one of its session ids",
                )
            plans.append(
                FaultPlan(
                    tuple(times),
                    config.every,
                    kind_name,
                    config.action,
                    config.target,
                    config.pick,
                    params,
                )
            )
        return plans

    def _chaos(
        self, groups: Sequence[GroupSpec], kinds: Mapping[str, SessionKind], seed: int
    ) -> tuple[ChaosPlan, ...]:
        raw = self.data.get("chaos", [])
        if not isinstance(raw, list):
            self.issue(("chaos",), "write [[chaos]] (an array of tables)")
            return ()
        plans = []
        for i, table in enumerate(raw):
            config, found = read_table(ChaosConfig, table, ("chaos", i))
            self.take(found)
            if config is None:
                continue
            menu = []
            for j, entry in enumerate(config.menu):
                path: KeyPath = ("chaos", i, "menu", j)
                kind_name, _, action = entry.action.partition(".")
                kind = kinds.get(kind_name)
                spec = kind.faults.get(action) if kind is not None else None
                if kind is None or spec is None:
                    known = sorted(f"{k}.{a}" for k, kd in kinds.items() for a in kd.faults)
                    hint = suggest(entry.action, known)
                    extra = f" (did you mean {hint!r}?)" if hint else ""
                    self.issue((*path, "action"), f"unknown action {entry.action!r}{extra}")
                    continue
                targetable = [g for g in groups if g.kind == kind_name]
                if not self._target_exists(entry.target, targetable):
                    self.issue(
                        (*path, "target"),
                        f"{entry.target!r} is not 'all', a {kind_name} group name or one of its session ids",
                    )
                params = self._fault_params(spec, entry.params, (*path, "params"))
                menu.append(
                    ChaosChoice(entry.action, entry.target, entry.weight, entry.pick, params)
                )
            plans.append(
                ChaosPlan(
                    config.rate,
                    seed if config.seed is None else config.seed,
                    config.start,
                    config.stop,
                    tuple(menu),
                )
            )
        return tuple(plans)

    def _fault_params(
        self, spec: FaultSpec, raw: Mapping[str, Any], path: KeyPath
    ) -> dict[str, Any]:
        params: dict[str, Any] = {}
        for key, value in raw.items():
            unit = spec.params.get(key)
            if unit is None:
                hint = suggest(key, spec.params)
                extra = f" (did you mean {hint!r}?)" if hint else ""
                accepted = ", ".join(spec.params) or "none"
                self.issue((*path, key), f"unknown parameter {key!r}{extra}; accepted: {accepted}")
                continue
            # one value reader: the same rules and messages as config fields
            tp = {"int": int, "float": float, "str": str}.get(unit, float)
            value, problems = read_value(
                tp, value, (*path, key), None if tp is not float or unit == "float" else unit
            )
            for problem in problems:
                self.issue(problem.path, problem.message)
            if problems:
                continue
            if unit == "int" and not 0 <= value <= 1_000_000:
                self.issue((*path, key), f"must be 0..1000000, got {value!r}")
                continue
            # its declared bounds (FaultSpec.limits), in the words of a config field's
            meta = {"unit": None if unit in ("int", "float", "str") else unit}
            if (broken := check_value({**meta, **spec.limits.get(key, {})}, value)) is not None:
                self.issue((*path, key), broken)
                continue
            params[key] = value
        for key in spec.required:
            if key not in raw:
                self.issue((*path, key), f"missing required parameter {key!r}")
        return params

    def _check_links(self, groups: list[GroupSpec]) -> list[GroupSpec]:
        """``via`` names a link; a link listens on loopback and says where it forwards."""
        from console.net.proxy import parse_address

        links = {g.config.name: g for g in groups if g.kind == "net"}
        users: dict[str, int] = {}
        for group in groups:
            via = getattr(group.config, "via", "")
            if not via:
                continue
            path = (_table(group.kind), group.index, "via")
            if via not in links:
                hint = suggest(via, links)
                extra = f" (did you mean {hint!r}?)" if hint else ""
                self.issue(path, f"no [[links]] table is named {via!r}{extra}")
            else:
                users[via] = users.get(via, 0) + group.config.count
            target_url = str(getattr(group.config, "target_url", ""))
            if target_url.startswith("https://"):
                self.issue(path, "a link carries plain http:// only (TLS would name the proxy)")
        for name, group in links.items():
            config: Any = group.config
            link_path: KeyPath = ("links", group.index)
            raw_links = self.data.get("links")
            if isinstance(raw_links, list) and "count" in raw_links[group.index]:
                self.issue((*link_path, "count"), "a link has no count; use per_session = true")
            for key in ("listen", "upstream", "api"):
                value = getattr(config, key)
                if not value:
                    continue
                try:
                    host, _ = parse_address(value)
                except ValueError as exc:
                    self.issue((*link_path, key), str(exc))
                    continue
                if key != "upstream" and host not in ("127.0.0.1", "::1", "localhost"):
                    self.issue(
                        (*link_path, key), f"{host} is not loopback; links stay on this machine"
                    )
            if not config.upstream and not users.get(name):
                self.issue(
                    (*link_path, "upstream"), "no group goes through this link: give it an upstream"
                )
        # A per-session link has one instance per session behind it: `wan#0` ... are targets.
        return [
            replace(g, config=replace(g.config, count=max(users.get(g.config.name, 1), 1)))
            if g.kind == "net" and getattr(g.config, "per_session", False)
            else g
            for g in groups
        ]

    @staticmethod
    def _target_exists(target: str, groups: Sequence[GroupSpec]) -> bool:
        if target == "all":
            return True
        for group in groups:
            if target == group.config.name:
                return True
            base, _, index = target.partition("#")
            if base == group.config.name and index.isdigit() and int(index) < group.config.count:
                return True
        return False

    def _criteria(
        self, groups: Sequence[GroupSpec], kinds: Mapping[str, SessionKind]
    ) -> list[CriterionPlan]:
        plans: list[CriterionPlan] = []
        raw = self.data.get("criteria", [])
        if not isinstance(raw, list):
            self.issue(("criteria",), "write [[criteria]] (an array of tables)")
            return plans
        specs = {m.name: m for m in CONSOLE_METRICS}
        for kind in kinds.values():
            for declared in kind.metrics:
                specs.setdefault(declared.name, declared)
        actions = {f"{k}.{a}" for k, kind in kinds.items() for a in kind.faults}
        actions |= {f"{k}.{cause}" for k in kinds if k != "net" for cause in ("crash", "drop")}
        if "http" in kinds:  # observed when a cluster node dies under a worker
            actions.add("node.lost")
        for i, table in enumerate(raw):
            config, found = read_table(CriterionConfig, table, ("criteria", i))
            self.take(found)
            if config is None:
                continue
            path: KeyPath = ("criteria", i)
            name = config.name or (
                f"{config.metric} {config.threshold}" if config.metric else config.threshold
            )
            if config.after and config.metric:
                plan = self._after_criterion(name, config, path, specs, actions)
                if plan is not None:
                    plans.append(plan)
                continue
            if config.after:
                if config.window:
                    self.issue(
                        (*path, "after"),
                        "a recovery criterion ('after') takes no 'window'",
                    )
                if config.within is None:
                    self.issue(
                        (*path, "within"), "a recovery criterion needs 'within', such as \"15s\""
                    )
                if config.after not in actions:
                    hint = suggest(config.after, actions)
                    extra = f" (did you mean {hint!r}?)" if hint else ""
                    self.issue(
                        (*path, "after"),
                        f"{config.after!r} is not a fault action of this profile's sessions{extra}",
                    )
                try:
                    threshold = parse_recovery_threshold(config.threshold)
                except CriterionError as exc:
                    self.issue((*path, "threshold"), str(exc))
                    continue
                if threshold.factor is not None:
                    self.issue(
                        (*path, "threshold"),
                        "recovery times have no baseline: give a 'metric' to compare it "
                        "after the fault with before it",
                    )
                    continue
                plans.append(
                    CriterionPlan(
                        name,
                        "recovery",
                        "",
                        threshold,
                        None,
                        config.after,
                        config.within or 0.0,
                        config.abort_on_fail,
                        config.abort_grace,
                    )
                )
                continue
            if not config.metric:
                self.issue(
                    (*path, "metric"), "missing 'metric' (or 'after' for a recovery criterion)"
                )
                continue
            if config.metric not in specs and f"ssh_{config.metric}" in specs:
                config = replace(config, metric=f"ssh_{config.metric}")  # remote_cpu and kin
            spec = specs.get(config.metric)
            if spec is None:
                hint = suggest(config.metric, specs)
                extra = f" Did you mean {hint!r}?" if hint else ""
                self.issue(
                    (*path, "metric"),
                    f"no session in this profile produces {config.metric!r}, so this criterion could never be checked.{extra}",
                )
                continue
            try:
                threshold = parse_threshold(config.threshold, spec)
            except CriterionError as exc:
                self.issue((*path, "threshold"), str(exc))
                continue
            scope = "window" if config.window else "run"
            plans.append(
                CriterionPlan(
                    name,
                    scope,
                    config.metric,
                    threshold,
                    config.window,
                    "",
                    0.0,
                    config.abort_on_fail,
                    config.abort_grace,
                    config.baseline,
                )
            )
        return plans

    def _after_criterion(
        self,
        name: str,
        config: CriterionConfig,
        path: KeyPath,
        specs: Mapping[str, MetricSpec],
        actions: set[str],
    ) -> CriterionPlan | None:
        """A metric judged in the ``within`` after each fault of ``after`` (after scope)."""
        ok = True
        if config.window:
            self.issue((*path, "window"), "a criterion with 'after' takes no 'window'")
            ok = False
        if config.within is None:
            self.issue(
                (*path, "within"), "a criterion with 'after' needs 'within', such as \"10s\""
            )
            ok = False
        if config.after not in actions:
            hint = suggest(config.after, actions)
            extra = f" (did you mean {hint!r}?)" if hint else ""
            self.issue(
                (*path, "after"),
                f"{config.after!r} is not a fault action of this profile's sessions{extra}",
            )
            ok = False
        spec = specs.get(config.metric)
        if spec is None:
            hint = suggest(config.metric, specs)
            extra = f" Did you mean {hint!r}?" if hint else ""
            self.issue(
                (*path, "metric"), f"no session in this profile produces {config.metric!r}.{extra}"
            )
            return None
        try:
            threshold = parse_threshold(config.threshold, spec)
        except CriterionError as exc:
            self.issue((*path, "threshold"), str(exc))
            return None
        if not ok:
            return None
        return CriterionPlan(
            name,
            "after",
            config.metric,
            threshold,
            None,
            config.after,
            config.within or 0.0,
            config.abort_on_fail,
            config.abort_grace,
            config.baseline,
        )

    def _keys(self) -> dict[str, str]:
        raw = self.data.get("keys", {})
        if not isinstance(raw, dict):
            self.issue(("keys",), 'expected a table of binding id = "key"')
            return {}
        problems = check_keymap(raw)
        for binding_id, message in problems:
            self.issue(("keys", binding_id), message)
        bad = {binding_id for binding_id, _ in problems}
        return {k: v for k, v in raw.items() if k not in bad and isinstance(v, str)}
