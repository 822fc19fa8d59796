"""The fault impact ledger: what each fault did to the sessions it reached, and how long until
they were back.

For every fault, and for every session group it reached, the ledger keeps a handful of key
metrics (:data:`KEY_METRICS`: HTTP p95, error rate and req/s; SSH exec latency and the share of
sessions connected; PTY output rate). For each it records

* the **baseline**: the median of the interval figures in the :data:`BASELINE_WINDOW` before the
  fault (the median, so one odd interval does not move it);
* the **worst** value from the fault until the metric is back (the highest latency, the lowest
  throughput);
* **back after**: seconds from the fault until the metric was within tolerance of its baseline
  again, at or after the fault's end, for :data:`SETTLE` samples in a row; or *not back* once
  :data:`GIVE_UP` seconds have passed since the end.

The tolerance is the larger of a share of the baseline (:data:`TOLERANCE`), the baseline window's
own spread (the farthest a figure strayed from the median before the fault, so a noisy metric
is not declared "not back" for its noise) and a small floor per unit. Only the bad direction counts: more throughput than before is back.

The figures are the interval figures :class:`console.timeline.RunRecorder` computes at each
sample (one home for what "p95 in this interval" means); the ledger keeps only a short ring of
them for baselines, and entries for the newest :data:`ENTRY_CAP` faults, so memory is bounded
however long the run.
"""

from __future__ import annotations

import statistics
from collections import deque
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from console.metrics import format_value
from console.snapshot import FaultRecord, LedgerEntry, MetricImpact
from console.timeline import column

__all__ = [
    "BASELINE_WINDOW",
    "GIVE_UP",
    "KEY_METRICS",
    "FaultLedger",
    "KeyMetric",
    "impact_cells",
    "junit_case",
]

BASELINE_WINDOW = 10.0  # seconds before a fault whose figures make its baseline
GIVE_UP = 30.0  # seconds after a fault's end after which a metric not back is "not back"
SETTLE = 2  # samples in a row within tolerance that count as back
TOLERANCE = 0.2  # share of the baseline a metric may differ from it and count as back
ENTRY_CAP = 500


@dataclass(frozen=True)
class KeyMetric:
    """One figure the ledger watches: a timeline column's metric and statistic."""

    kind: str
    metric: str  # the registry's metric name (or ``<kind>_sessions_up``)
    stat: str  # the timeline statistic: "p95", "rate", "share"
    label: str  # what the report calls it
    unit: str  # of the figure: "ms", "fraction", "/s"
    higher_is_worse: bool
    floor: float  # the smallest tolerance, in the figure's unit


KEY_METRICS: tuple[KeyMetric, ...] = (
    # Floors: a loaded machine's loopback jitter is a few ms; within 10 ms of its baseline a
    # p95 is back.
    KeyMetric("http", "http_req_duration", "p95", "p95", "ms", True, 10.0),
    KeyMetric("http", "http_req_failed", "rate", "error rate", "fraction", True, 0.01),
    KeyMetric("http", "http_reqs", "rate", "req/s", "/s", False, 1.0),
    KeyMetric("ssh", "ssh_exec_latency", "p95", "exec p95", "ms", True, 10.0),
    KeyMetric("ssh", "ssh_sessions_up", "share", "connected", "fraction", False, 0.0),
    KeyMetric("pty", "pty_bytes", "rate", "output B/s", "bytes/s", False, 1.0),
)


class _Watch:
    """One metric of one group after one fault, while it is being watched."""

    def __init__(self, key: KeyMetric, group: str, baseline: float | None, spread: float) -> None:
        self.key = key
        self.group = group
        self.baseline = baseline
        self.tolerance = (
            0.0 if baseline is None else max(abs(baseline) * TOLERANCE, spread, key.floor)
        )
        self.worst: float | None = None
        self.back_after: float | None = None
        self.streak_start: float | None = None
        self.streak = 0
        self.state = "watching" if baseline is not None else "no baseline"

    def bad(self, value: float) -> bool:
        assert self.baseline is not None
        if self.key.higher_is_worse:
            return value > self.baseline + self.tolerance
        return value < self.baseline - self.tolerance

    def worse(self, value: float) -> bool:
        if self.worst is None:
            return True
        return value > self.worst if self.key.higher_is_worse else value < self.worst

    def observe(self, t: float, fault_t: float, end: float | None, value: float | None) -> None:
        if self.state != "watching" or value is None:
            return
        if self.worse(value):
            self.worst = value
        ended = end is not None and t >= end
        if ended and not self.bad(value):
            if self.streak == 0:
                self.streak_start = t
            self.streak += 1
            if self.streak >= SETTLE:
                assert self.streak_start is not None
                self.back_after = round(max(self.streak_start - fault_t, 0.0), 3)
                self.state = "back"
        else:
            self.streak = 0
            self.streak_start = None

    def view(self) -> MetricImpact:
        key = self.key
        return MetricImpact(
            group=self.group,
            metric=key.label,
            unit=key.unit,
            baseline=self.baseline,
            worst=self.worst,
            back_after=self.back_after,
            state=self.state,
            baseline_text=format_value(self.baseline, key.unit),
            worst_text=format_value(self.worst, key.unit),
        )


class _Entry:
    def __init__(self, fault: FaultRecord, watches: list[_Watch]) -> None:
        self.fault = fault
        self.watches = watches
        self.end: float | None = None
        self.ended = False

    @property
    def open(self) -> bool:
        return any(w.state == "watching" for w in self.watches)

    def view(self, give_up: float) -> LedgerEntry:
        return LedgerEntry(
            fault_id=self.fault.id,
            t=self.fault.t,
            action=self.fault.action,
            target=self.fault.target,
            source=self.fault.source,
            end=self.end,
            impacts=tuple(w.view() for w in self.watches),
            give_up=give_up,
        )


Spans = Callable[[], Iterable[Mapping[str, Any]]]  # Run.fault_spans: id, start, end


class FaultLedger:
    """Fed at each sample with the recorder's interval row; see the module docstring."""

    def __init__(
        self,
        *,
        sessions: Callable[[str], tuple[str, str] | None],
        spans: Spans,
        ends_another: Callable[[str], bool] = lambda action: False,
        sample_interval: float = 1.0,
        baseline_window: float = BASELINE_WINDOW,
        give_up: float = GIVE_UP,
    ) -> None:
        self._session = sessions  # session id -> (kind, group), None if unknown
        self._spans = spans
        self._ends_another = ends_another  # http.clear, pty.resume: the end of a fault, not one
        self.baseline_window = baseline_window
        self.give_up = give_up
        ring = int(baseline_window / max(sample_interval, 0.05)) + 2
        self._rows: deque[tuple[float, dict[str, float | None]]] = deque(maxlen=max(ring, 4))
        self._entries: dict[int, _Entry] = {}
        self._view: tuple[LedgerEntry, ...] | None = None  # entries(), until the next change
        self._seen = 0  # the newest fault id follow() has looked at
        self._waiting: set[int] = set()  # ids it passed while in flight, to add once done

    def follow(self, records: Sequence[FaultRecord], in_flight: Collection[int] = ()) -> None:
        """Add the faults recorded since the last call. One ``in_flight`` (its sessions still
        being told, :attr:`console.faults.FaultInjector.in_flight`) waits: a refusal may yet
        take sessions, or the whole fault, out of the record."""
        waiting = set()
        for record in records:
            new = record.id > self._seen or record.id in self._waiting
            if new and record.id in in_flight:
                waiting.add(record.id)
            elif new and not self._ends_another(record.action):
                self.add(record)
            self._seen = max(self._seen, record.id)
        # A fault withdrawn while it waited is no longer in the record: forgotten with it.
        self._waiting = waiting

    def baseline(self, name: str, before: float) -> tuple[float | None, float]:
        """The median and spread of a column in the window before ``before``: the spread is
        the farthest any value strayed from the median (or twice the standard deviation), so
        what the metric did on its own before the fault counts as back; (None, 0) without data."""
        values = [
            v
            for t, row in self._rows
            if before - self.baseline_window <= t < before and (v := row.get(name)) is not None
        ]
        if not values:
            return None, 0.0
        median = statistics.median(values)
        spread = max(2 * statistics.pstdev(values), max(abs(v - median) for v in values))
        return median, spread

    def add(self, fault: FaultRecord) -> None:
        """Start watching a fault: its baseline is taken now, from the samples before it."""
        groups: dict[tuple[str, str], None] = {}
        for sid in fault.sessions:
            where = self._session(sid)
            if where is not None:
                groups[where] = None
        # The timeline's clock (pauses included), which the samples are in; fault.t is not.
        start = next((s["start"] for s in self._spans() if s["id"] == fault.id), fault.t)
        watches = []
        for kind, group in groups:
            for key in KEY_METRICS:
                if key.kind != kind:
                    continue
                base, spread = self.baseline(column(group, key.metric, key.stat), start)
                watches.append(_Watch(key, group, base, spread))
        if not watches:
            return  # a fault on nothing the ledger measures (a link without sessions)
        self._entries[fault.id] = _Entry(fault, watches)
        self._view = None
        while len(self._entries) > ENTRY_CAP:
            del self._entries[next(iter(self._entries))]

    def sample(self, t: float, row: Mapping[str, float | None]) -> None:
        """One interval row from the recorder (the interval ending at ``t``)."""
        self._rows.append((t, dict(row)))
        open_entries = [e for e in self._entries.values() if e.open]
        if not open_entries:
            return
        self._view = None
        spans = {span["id"]: span for span in self._spans()}
        for entry in open_entries:
            span = spans.get(entry.fault.id, {})
            start = span.get("start", entry.fault.t)
            end = span.get("end", start)
            # A condition still holding runs to the present (fault_spans says so: its rounded
            # end is no clue); a span without the flag is judged by its end.
            holding = span.get("holding")
            if holding is None:
                holding = end is not None and end >= t - 1e-6
            entry.ended = not holding
            entry.end = start if end is None else end
            done = entry.end if entry.ended else None
            for watch in entry.watches:
                if t <= start:
                    continue  # this interval ended before the fault
                value = row.get(column(watch.group, watch.key.metric, watch.key.stat))
                watch.observe(t, start, done, value)
                if watch.state == "watching" and done is not None and t - done >= self.give_up:
                    watch.state = "not back"

    def finish(self) -> None:
        """The run ended: what is still watched was not back by the end (not judged)."""
        self._view = None
        for entry in self._entries.values():
            for watch in entry.watches:
                if watch.state == "watching":
                    watch.state = "run ended"

    def entries(self) -> tuple[LedgerEntry, ...]:
        """Every entry's view; built again only after a change (snapshots ask 4 times a second)."""
        if self._view is None:
            self._view = tuple(e.view(self.give_up) for e in self._entries.values())
        return self._view


def entry_verdict(entry: LedgerEntry) -> tuple[str, str]:
    """("pass" | "fail" | "skip" | "none", text) for one fault, as junit and the panel say it."""
    judged = [i for i in entry.impacts if i.state in ("back", "not back")]
    missing = [i for i in entry.impacts if i.state == "not back"]
    if missing:
        worst = missing[0]
        give_up = GIVE_UP if entry.give_up is None else entry.give_up
        return "fail", f"{worst.group} {worst.metric} not back to baseline after {give_up:.0f} s"
    if any(i.state in ("watching", "run ended") for i in entry.impacts):
        return "skip", "the run ended before every metric was back"
    if not judged:
        return "none", "no baseline before the fault"
    slowest = max(i.back_after or 0.0 for i in judged)
    return "pass", f"recovered in {slowest:.1f} s"


def impact_text(impact: MetricImpact) -> str:
    back = f"back after {impact.back_after:.1f} s" if impact.state == "back" else impact.state
    return f"{impact.metric} {impact.baseline_text} → {impact.worst_text}, {back}"


def impact_cells(entries: Sequence[LedgerEntry]) -> tuple[list[str], list[list[object]]]:
    """report.md's "Fault impact" table as (headers, rows); report.md's one table writer
    escapes them."""
    headers = ["#", "Fault", "At", "Group", "Metric", "Baseline", "Worst", "Back after"]
    rows: list[list[object]] = []
    for entry in entries:
        for impact in entry.impacts:
            back = f"{impact.back_after:.1f}s" if impact.state == "back" else impact.state
            rows.append(
                [entry.fault_id, entry.action, f"{entry.t:.1f}s", impact.group, impact.metric,
                 impact.baseline_text, impact.worst_text, back]
            )  # fmt: skip
    return headers, rows


def junit_case(entry: LedgerEntry) -> tuple[str, str, str]:
    """(test name, state, message) of one fault's test case."""
    state, text = entry_verdict(entry)
    return f"fault {entry.fault_id}: {entry.action} at {entry.t:.1f}s", state, text
