"""Immutable views of a run, published by the engine and rendered by the console.

The engine builds a :class:`RunSnapshot` at a steady cadence; nothing in it is shared with the
engine's mutable state, so the UI thread may hold it as long as it likes. Exports
(``snapshot-N.json``, ``report.md``, ``junit.xml``) are written from the same objects, which
is why they carry display-ready text (``value_text``) next to raw numbers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from console.events import Event

__all__ = [
    "FAULT_SOURCES",
    "CheckRow",
    "ConsoleStats",
    "CriterionSnapshot",
    "FaultRecord",
    "LedgerEntry",
    "MetricImpact",
    "MetricSummary",
    "RequestFailure",
    "RequestRow",
    "RunSnapshot",
    "RunTables",
    "ScenarioRow",
    "SeriesView",
    "SessionSnapshot",
]


@dataclass(frozen=True)
class SeriesView:
    """One sparkline: the ring's values, oldest first, and fault markers as indexes into them."""

    name: str
    unit: str
    values: tuple[float, ...]
    markers: tuple[int, ...] = ()


@dataclass(frozen=True)
class SessionSnapshot:
    id: str
    kind: str  # "pty", "ssh", "http"
    group: str
    target: str  # what the session talks to: a command, host:port or URL
    state: str  # starting, connecting, running, idle, reconnecting, crashed, restarting,
    #              hung, paused, exited, failed, stopped
    badges: tuple[str, ...] = ()  # warnings such as "host key unchecked"
    series: tuple[SeriesView, ...] = ()  # the first one is the pane's main sparkline
    counters: tuple[tuple[str, str], ...] = ()  # (label, display text), most important first
    last_event: str = ""
    output_tail: tuple[str, ...] = ()  # recent output lines, escape codes stripped
    details: tuple[tuple[str, str], ...] = ()  # every counter, for the detail screen
    actions: tuple[str, ...] = ()  # fault actions this session accepts ("pty.kill", ...)


@dataclass(frozen=True)
class CriterionSnapshot:
    name: str
    expression: str  # as written: "p(95)<2000"
    metric: str  # metric name, or "recovery after ssh.drop"
    scope: str  # "run", "window" or "recovery"
    state: str  # "pending", "pass" or "fail"
    value: float | None
    value_text: str  # "1.83s", "0.4%", "-"
    target_text: str  # "< 2s"
    abort_on_fail: bool = False
    flips: tuple[tuple[float, str], ...] = ()  # (run seconds, new state) whenever it changed
    evidence: str = ""  # probes and recovery criteria explain their verdict


# Where a fault came from (``FaultRecord.source``, the event's ``source``): the profile's
# schedule, a key, a typed command, the API, a replay of an earlier run, observed (a crash
# or drop nobody injected), or drawn by seeded chaos (console.chaos).
FAULT_SOURCES = ("schedule", "key", "command", "api", "replay", "observed", "chaos")


@dataclass(frozen=True)
class FaultRecord:
    id: int
    t: float  # run seconds
    ts: str
    action: str  # "pty.kill", "ssh.drop", "http.pause", ...
    target: str  # as asked: "all", a group, a session id
    sessions: tuple[str, ...]  # the sessions it reached
    source: str  # one of FAULT_SOURCES
    params: Mapping[str, Any] = field(default_factory=dict)
    note: str = ""
    # When an action that ends it (``pty.resume`` ends ``pty.hang``: ``FaultSpec.until``)
    # reached its sessions, in run seconds, and which action that was. A resume is the end of
    # a fault, not a fault of its own.
    ended: float | None = None
    ended_by: str = ""

    @property
    def duration(self) -> float | None:
        return None if self.ended is None else round(self.ended - self.t, 3)


@dataclass(frozen=True)
class MetricImpact:
    """What one fault did to one key metric of one group (console.ledger)."""

    group: str
    metric: str  # "p95", "error rate", "req/s", "exec p95", "connected", "output B/s"
    unit: str
    baseline: float | None  # median of the window before the fault
    worst: float | None
    back_after: float | None  # seconds from the fault until back within tolerance
    state: str  # "watching", "back", "not back", "run ended", "no baseline"
    baseline_text: str = ""
    worst_text: str = ""


@dataclass(frozen=True)
class LedgerEntry:
    """One fault's impact on the groups it reached."""

    fault_id: int
    t: float
    action: str
    target: str
    source: str
    # When the fault's condition ended (its start for a one-off), on the timeline's clock
    # (run seconds, pauses included); ``t`` is on the faults list's (pauses excluded).
    end: float | None
    impacts: tuple[MetricImpact, ...] = ()
    # Seconds after the end a metric had to be back in: its ledger's (None: console.ledger's
    # default, GIVE_UP).
    give_up: float | None = None


@dataclass(frozen=True)
class MetricSummary:
    name: str
    type: str
    unit: str
    values: Mapping[str, float | None]  # "count", "rate", "avg", "p(95)", ... as applicable

    def get(self, key: str) -> float | None:
        return self.values.get(key)


@dataclass(frozen=True)
class ConsoleStats:
    cpu_pct: float  # of one core, averaged over the last sample interval
    rss_bytes: float
    loop_lag_ms: float  # the latest lag
    loop_lag_p99_ms: float  # over the whole run
    engine_cpu_pct: float = 0.0  # the engine's thread alone: cpu_pct less drawing


@dataclass(frozen=True)
class RequestRow:
    """One row of the per-request table (Locust's statistics, k6's ``name`` tag), merged over
    a group's worker processes. Durations in ms; ``None`` when there is no sample."""

    group: str
    method: str  # "GET"; "*" on the row that gathers names beyond the cap
    name: str  # the step's name, or the URL template without its query
    requests: int
    failures: int
    med: float | None
    p95: float | None
    p99: float | None
    max: float | None
    rate: float  # requests per second of run time, the denominator of http_reqs' rate


@dataclass(frozen=True)
class RequestFailure:
    """Failed requests of one name grouped by message (Locust's failures table)."""

    group: str
    method: str
    name: str
    message: str  # "HTTP 404 Not Found", "refused: Cannot connect to host ..."
    occurrences: int


@dataclass(frozen=True)
class CheckRow:
    group: str
    name: str
    passes: int
    fails: int


@dataclass(frozen=True)
class ScenarioRow:
    """What a group was asked to do, as k6 prints a scenario at the top of its summary."""

    group: str
    executor: str
    text: str  # "20.00 iterations/s for 3.0s (VUs: 4-20, 2 workers)"
    max_vus: int
    duration: float  # seconds from the scenario's start time to its planned end; 0 = the run's


@dataclass(frozen=True)
class RunTables:
    """The breakdown of traffic: in exports and the final snapshot, and live only on request
    (``RunController.tables``, once a second while a screen shows it), since merging every
    name's histogram 4 times a second would cost the engine. Text in it is sanitized and
    redacted like every outside string."""

    scenarios: tuple[ScenarioRow, ...] = ()
    requests: tuple[RequestRow, ...] = ()
    failures: tuple[RequestFailure, ...] = ()
    checks: tuple[CheckRow, ...] = ()
    aggregated: RequestRow | None = None  # every request of the run, Locust's last row


@dataclass(frozen=True)
class RunSnapshot:
    seq: int
    profile_name: str
    description: str
    state: str  # "starting", "running", "paused", "stopping", "finished", "aborted"
    elapsed: float  # run seconds
    duration: float  # planned run seconds
    run_dir: str
    sessions: tuple[SessionSnapshot, ...]
    criteria: tuple[CriterionSnapshot, ...]
    metrics: tuple[MetricSummary, ...]
    console: ConsoleStats
    faults: tuple[FaultRecord, ...]  # the newest console.faults.RECORD_CAP of them
    recent_events: tuple[Event, ...]
    events_logged: int = 0
    fault_count: int = 0  # every fault of the run, however many ``faults`` still holds
    exports: tuple[str, ...] = ()  # paths of snapshot files written so far
    abort_reason: str = ""
    data_loss: tuple[str, ...] = ()  # one line per file that could not be (fully) written
    paused: str = ""  # while paused, what is: "3 pty SIGSTOP, 2 ssh polling, 1 http load"
    ledger: tuple[LedgerEntry, ...] = ()  # each fault's impact (console.ledger)
    generator: tuple[str, ...] = ()  # evidence that the load generator saturated (console.health)
    started_at: str = ""  # ISO time the load started (run second 0)
    ended_at: str = ""  # ISO time the run ended, once it has
    exit_code: int | None = None  # the process exit status, once the run has ended
    tables: RunTables = field(default_factory=RunTables)  # at the end and in exports

    @property
    def verdict(self) -> str:
        """The run's verdict so far (:func:`console.verdicts.overall`)."""
        from console.verdicts import overall  # verdicts imports errors only; no cycle

        return overall(c.state for c in self.criteria)

    def session(self, session_id: str) -> SessionSnapshot | None:
        return next((s for s in self.sessions if s.id == session_id), None)

    def metric(self, name: str) -> MetricSummary | None:
        return next((m for m in self.metrics if m.name == name), None)
