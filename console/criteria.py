"""Success criteria: k6 threshold expressions, evaluated live, over the run, a window, or recoveries.

Three scopes, one expression language (k6's: ``p(95)<2000``, ``rate<0.01``, ``count==0``):

``run``
    The metric over the whole run so far (what k6 does).
``window``
    The metric over the last ``window`` seconds only (grafana/k6#2379). Its verdict is *fail* if
    it was ever failing during the run; every flip is kept for the report.
``recovery``
    After every fault of a given action (``after = "ssh.drop"``), the sessions it reached must come
    back within ``within`` seconds. ``rate`` is the fraction of them back in time (the worst fault
    counts); ``p(N)``/``avg``/``max`` read their recovery times in ms.

Threshold values may carry units, converted to the metric's unit: ``p(95)<2s`` on a metric in
ms means 2000; ``value<200MB`` on bytes means 200e6; ``rate>=90%`` means 0.9.

A criterion with no data is *pending*; at the end of a run, pending becomes *not judged* with
its reason (:mod:`console.verdicts`), so a threshold can never pass silently (grafana/k6#1526)
and a fault cut off by ``--duration`` is not mistaken for a failure.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from console import units
from console.baseline import Checkpoints
from console.errors import CriterionError
from console.metrics import (
    AGGREGATIONS,
    MetricSpec,
    MetricType,
    MetricValue,
    Trend,
    Windowed,
    aggregate,
    aggregation_unit,
    format_value,
)
from console.snapshot import CriterionSnapshot
from console.verdicts import FAIL, NOT_JUDGED, PASS, PENDING

__all__ = [
    "Criterion",
    "CriterionError",
    "RecoveryTracker",
    "Threshold",
    "parse_threshold",
]


OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    "===": operator.eq,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    ">": operator.gt,
}

# k6 scans for the operators in this order and splits at the first one found (its
# thresholds_parser.go), so "count===1" is "count", "===", "1".
_SCAN_ORDER = ("<=", "<", ">=", ">", "===", "==", "!=")
# A number as Go's strconv.ParseFloat reads it: sign, "5.", ".5", exponent or a hexadecimal
# float (inf, infinity and nan are _SPECIAL); then Stressdeck's optional unit.
_DECIMAL = r"[0-9]+\.?[0-9]*(?:[eE][+-]?[0-9]+)?|\.[0-9]+(?:[eE][+-]?[0-9]+)?"
_HEX = r"0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)[pP][+-]?[0-9]+"
_NUMBER = re.compile(rf"(?P<num>[+-]?(?:{_HEX}|{_DECIMAL}))[ \t]*(?P<unit>[a-zA-Zµ%/]*)")
_SPECIAL = re.compile(r"[+-]?(?:inf|infinity|nan)", re.IGNORECASE)
_PERCENTILE = re.compile(r"p\((?P<pct>.*)\)", re.DOTALL)


def _number(text: str) -> float | None:
    """A number matched by _NUMBER or _SPECIAL; None when out of range (as ParseFloat says)."""
    if _SPECIAL.fullmatch(text):
        return float(text.lower().replace("infinity", "inf"))
    try:
        value = float.fromhex(text) if "x" in text.lower() else float(text)
    except (ValueError, OverflowError):
        return None
    return value if math.isfinite(value) else None


def _go_float(text: str) -> float | None:
    """``text`` as strconv.ParseFloat reads it, no unit allowed; None where it fails."""
    text = text.strip()
    match = _NUMBER.fullmatch(text)
    if _SPECIAL.fullmatch(text) or (match is not None and not match.group("unit")):
        return _number(text)
    return None


def _scan(text: str) -> tuple[str, str, str]:
    for op in _SCAN_ORDER:
        left, found, right = text.partition(op)
        if found:
            return left.strip(), op, right.strip()
    raise CriterionError(
        f"bad threshold {text!r}: expected an aggregation, a comparison and a value, "
        "such as 'p(95)<2000' or 'rate<0.01'"
    )


def _aggregation(text: str, method: str) -> str:
    """The aggregation in canonical form (``p(99.9)``), or CriterionError."""
    match = _PERCENTILE.fullmatch(method)
    if match is None:
        if re.fullmatch(r"p[0-9.]+", method):
            raise CriterionError(f"{method!r} does not apply: write percentiles as p({method[1:]})")
        return method
    pct = _go_float(match.group("pct"))
    if pct is None or not 0 <= pct <= 100:
        raise CriterionError(
            f"bad threshold {text!r}: {method!r} is not a percentile: "
            "expected p(N) with N a number 0..100"
        )
    return f"p({pct:.15g})"


@dataclass(frozen=True)
class Threshold:
    """A parsed expression: aggregation, comparison and a target in the metric's unit."""

    text: str
    aggregation: str  # "p(95)", "rate", "count", ...
    op: str
    target: float
    unit: str  # the metric's unit, for display
    factor: float | None = None  # "<1.5x baseline": target is factor times the baseline

    def against(self, baseline: float) -> Threshold:
        """This threshold with its target set from a baseline value (a relative threshold)."""
        assert self.factor is not None
        return replace(self, target=self.factor * baseline)

    @property
    def percentile(self) -> float | None:
        return float(self.aggregation[2:-1]) if self.aggregation.startswith("p(") else None

    def holds(self, value: float) -> bool:
        return OPERATORS[self.op](value, self.target)

    def target_text(self) -> str:
        return f"{self.op} {format_value(self.target, self.unit, exact=True)}"


# "1.5x baseline", "0.9 × baseline": relative to a baseline (see Criterion, console.baseline).
_RELATIVE = re.compile(rf"(?P<num>{_DECIMAL})[ \t]*[x×][ \t]*baseline", re.IGNORECASE)
BASELINE_DEFAULT = 30.0  # seconds: the start of the run, or the window before a fault
_COUNTS = ("count", "passes", "fails")  # aggregations that grow with the span they cover


def _convert(
    number: float, unit: str, metric_unit: str, aggregation: str, kind: MetricType
) -> float:
    """Bring ``number unit`` into the metric's unit, or raise CriterionError."""
    fraction = kind is MetricType.RATE and aggregation == "rate"
    if unit == "":
        return number
    if unit == "%":
        if fraction:
            return number / 100
        if metric_unit == "%":
            return number
        raise CriterionError(f"'%' does not fit this metric (its unit is {metric_unit or 'none'})")
    if unit.startswith("/"):
        if kind is MetricType.COUNTER and aggregation == "rate":
            per_second = _scale(units.parse_rate, unit)
            if per_second is None:
                raise CriterionError(f"unknown rate unit {unit!r}")
            return number * per_second
        raise CriterionError(f"a rate unit {unit!r} only fits a counter's 'rate'")
    seconds = _scale(units.parse_duration, unit)
    if seconds is not None:
        if metric_unit == "ms":
            return number * seconds * 1000
        if metric_unit == "s":
            return number * seconds
        raise CriterionError(
            f"a duration does not fit this metric (its unit is {metric_unit or 'none'})"
        )
    size = _scale(units.parse_size, unit)
    if size is None:
        raise CriterionError(f"unknown unit {unit!r}")
    if metric_unit == "bytes":
        return number * size
    if metric_unit in ("MB", "MB/h"):
        return number * size / 1e6
    raise CriterionError(f"a size does not fit this metric (its unit is {metric_unit or 'none'})")


def _scale(parse: Callable[[object], float], unit: str) -> float | None:
    """What one ``unit`` is in the base unit (``ms`` -> 0.001), or None if ``parse`` refuses it."""
    try:
        return parse(f"1{unit}")
    except units.UnitError:
        return None


def parse_threshold(text: str, spec: MetricSpec) -> Threshold:
    """Parse ``text`` for a metric; raise CriterionError naming what is wrong, and nothing else.

    The grammar is k6's (``aggregation operator value``; operators ``<``, ``<=``, ``>``, ``>=``,
    ``==``, ``===``, ``!=``; numbers as Go reads them: ``1e3``, ``+0.5``, ``5.``, ``Infinity``),
    with an optional unit after the number. NaN is refused: nothing compares true to it.
    """
    method, op, raw_value = _scan(text)
    aggregation = _aggregation(text, re.sub(r"\s+", "", method))
    allowed = AGGREGATIONS[spec.type]
    is_percentile = _PERCENTILE.fullmatch(aggregation) is not None
    if not (aggregation in allowed or (is_percentile and "p(N)" in allowed)):
        raise CriterionError(
            f"{aggregation!r} does not apply to {spec.name} (a {spec.type.value}); "
            f"use one of: {', '.join(allowed)}"
        )
    unit = aggregation_unit(spec.type, spec.unit, aggregation)
    relative = _RELATIVE.fullmatch(raw_value)
    if relative is not None:
        factor = float(relative.group("num"))
        return Threshold(text.strip(), aggregation, op, math.nan, unit, factor=factor)
    value = None if _SPECIAL.fullmatch(raw_value) else _NUMBER.fullmatch(raw_value)
    if value is not None:
        number = _number(value.group("num"))
    else:
        number = _number(raw_value) if _SPECIAL.fullmatch(raw_value) else None
    if number is None:
        raise CriterionError(f"bad value {raw_value!r} in threshold {text!r}")
    if math.isnan(number):
        raise CriterionError(f"bad value {raw_value!r} in threshold {text!r}: nothing equals NaN")
    target = _convert(
        number, value.group("unit") if value else "", spec.unit, aggregation, spec.type
    )
    return Threshold(text.strip(), aggregation, op, target, unit)


@dataclass
class _Recovery:
    fault_id: int
    action: str
    t: float
    sessions: tuple[str, ...]
    back: dict[str, float] = field(default_factory=dict)  # session -> seconds to recover
    # The record each session was still awaiting when this one opened, restored on withdrawal.
    displaced: dict[str, _Recovery] = field(default_factory=dict)


class RecoveryTracker:
    """Which sessions each fault disrupted, and when each came back."""

    def __init__(self) -> None:
        self.faults: list[_Recovery] = []
        self._open: dict[str, _Recovery] = {}  # session -> the latest fault still awaiting it

    def opened(self, fault_id: int, action: str, t: float, sessions: Sequence[str]) -> None:
        record = _Recovery(fault_id, action, t, tuple(sessions))
        self.faults.append(record)
        del self.faults[:-500]  # bounded: a week-long soak keeps the last 500 faults
        for session in sessions:
            if (previous := self._open.get(session)) is not None:
                # One level is enough (a refusal is withdrawn at once); cutting the chain keeps a
                # session that never recovers from holding every fault it ever had.
                previous.displaced.pop(session, None)
                record.displaced[session] = previous
            self._open[session] = record

    def withdraw(self, fault_id: int, sessions: Sequence[str]) -> None:
        """The fault did not reach ``sessions`` after all: expect nothing of them."""
        for record in self.faults:
            if record.fault_id == fault_id:
                record.sessions = tuple(s for s in record.sessions if s not in sessions)
                if not record.sessions:
                    self.faults.remove(record)
                break
        for session in sessions:
            current = self._open.get(session)
            if current is not None and current.fault_id == fault_id:
                previous = current.displaced.pop(session, None)
                if previous is not None:
                    self._open[session] = previous  # still awaiting the earlier fault
                else:
                    del self._open[session]

    def recovered(self, session: str, t: float) -> float | None:
        """Close the session's open disruption; return the recovery time in seconds."""
        record = self._open.pop(session, None)
        if record is None:
            return None
        record.displaced.pop(session, None)  # nothing to restore once it is back
        record.back[session] = t - record.t
        return record.back[session]

    def is_open(self, session: str) -> bool:
        return session in self._open


class Criterion:
    """One criterion's live state. The engine calls :meth:`evaluate` a few times a second."""

    def __init__(
        self,
        *,
        name: str,
        threshold: Threshold,
        metric: str,
        scope: str,
        window: Windowed | None = None,
        after: str = "",
        within: float = 0.0,
        abort_on_fail: bool = False,
        abort_grace: float = 0.0,
        baseline: float = BASELINE_DEFAULT,
        faults: Callable[[], Iterable[tuple[str, float]]] | None = None,
    ) -> None:
        self.name = name
        self.threshold = threshold
        self.metric = metric
        self.scope = scope
        self.window = window
        self.after = after
        self.within = within
        self.abort_on_fail = abort_on_fail
        self.abort_grace = abort_grace
        self.state = PENDING
        # Why a criterion still without data at the end is not judged; the engine may set a
        # better reason ("ssh.drop is scheduled at 30s; the run ended at 20s").
        self.unjudged_reason = (
            f"no {after} fault ran"
            if scope == "recovery"
            else f"no data: {metric} was never recorded"
        )
        self.value: float | None = None
        self.ever_failed = False
        self.flips: list[tuple[float, str]] = []
        self.evidence = ""
        self._worst: float | None = None  # recovery scope: worst fraction seen, ever
        # Relative thresholds ("<1.5x baseline") and the "after" scope (a metric after a fault).
        self.baseline = baseline  # seconds: the run's start, or the window before a fault
        self.baseline_value: float | None = None  # run and window scopes, once measured
        self._relative: Threshold | None = None
        self._baseline_span = 1.0  # seconds the run-start baseline covered
        self._faults = faults or (lambda: ())
        self._points: Checkpoints | None = (
            Checkpoints(baseline + within + 5.0) if scope == "after" else None
        )
        self._judged: dict[tuple[str, float], tuple[float | None, float | None, bool]] = {}

    def _set(self, now: float, state: str, value: float | None) -> None:
        self.value = value
        if state != self.state:
            self.state = state
            self.flips.append((round(now, 3), state))
            del self.flips[:-200]
        if state == FAIL:
            self.ever_failed = True

    def evaluate(
        self,
        now: float,
        elapsed: float,
        run_values: Mapping[str, MetricValue],
        recoveries: RecoveryTracker,
        *,
        final: bool = False,
    ) -> None:
        if self.scope == "recovery":
            self._evaluate_recovery(now, recoveries, final=final)
            return
        if self.scope == "after":
            self._evaluate_after(now, run_values.get(self.metric), final=final)
            return
        if self.threshold.factor is not None and not self._measure_baseline(elapsed, run_values):
            if final:
                self.evidence = f"the run ended before its {self.baseline:g}s baseline"
            self._set(now, "pending", None)
            if final:
                self._finalise()
            return
        threshold = self._relative or self.threshold
        if self.scope == "window":
            assert self.window is not None
            view: MetricValue | None = self.window.view(now)
            span = min(self.window.window, elapsed)
        else:
            view = run_values.get(self.metric)
            span = elapsed
        if self._relative is not None and self.threshold.aggregation in _COUNTS:
            threshold = self._relative.against(self._relative.target * span / self._baseline_span)
        # Until a window has filled, it reads what there is: a run shorter than its window
        # still gets a verdict.
        value = aggregate(view, self.threshold.aggregation, span)
        if value is None and self.scope == "window" and self.state != PENDING:
            # The window emptied (the load ended before the run): keep the last verdict.
            value, state = self.value, self.state
        else:
            state = PENDING if value is None else (PASS if threshold.holds(value) else FAIL)
        self._set(now, state, value)
        if final:
            self._finalise()

    def _measure_baseline(self, elapsed: float, run_values: Mapping[str, MetricValue]) -> bool:
        """Run and window scopes: the baseline is the metric over the run's first ``baseline``
        seconds, read once that much of the run has passed. True once it is known.

        A count is per span: ``count>0.9x baseline`` over a 10 s window compares with the
        baseline's count scaled to 10 s (as many per second as at the start)."""
        if self._relative is None and elapsed >= self.baseline:
            value = aggregate(run_values.get(self.metric), self.threshold.aggregation, elapsed)
            if value is not None:
                self.baseline_value = value
                self._baseline_span = elapsed
                self._relative = self.threshold.against(value)
        return self._relative is not None

    def _evaluate_after(self, now: float, value: MetricValue | None, *, final: bool) -> None:
        """After every fault of ``after``: the metric over the ``within`` seconds that follow it,
        against the threshold (relative: against the same metric in the ``baseline`` seconds
        before the fault). The worst fault counts; a fault whose ``within`` has not passed
        when the run ends is not judged."""
        assert self._points is not None
        self._points.take(now, value)
        agg = self.threshold.aggregation
        unjudged = 0
        for action, t in list(self._faults()):
            if action != self.after or (action, t) in self._judged:
                continue
            if now < t + self.within - 1e-6:
                unjudged += 1
                continue
            during, span = self._points.between(t, t + self.within)
            result = aggregate(during, agg, span)
            base: float | None = None
            threshold = self.threshold
            if threshold.factor is not None:
                before, before_span = self._points.between(t - self.baseline, t)
                base = aggregate(before, agg, before_span)
                if base is not None and agg in _COUNTS and before_span > 0:
                    base *= span / before_span  # as many per second as before the fault
                if base is None:
                    self._judged[(action, t)] = (result, None, True)  # nothing to compare with
                    continue
                threshold = threshold.against(base)
            ok = result is None or threshold.holds(result)
            self._judged[(action, t)] = (result, base, ok)
            while len(self._judged) > 500:
                del self._judged[next(iter(self._judged))]
        judged = [(t, r) for (_, t), r in self._judged.items() if r[0] is not None]
        if not judged:
            if final and unjudged:
                self.evidence = f"{unjudged} {self.after} fault(s) too close to the end to judge"
            self._set(now, "pending" if self.value is None else self.state, self.value)
            if final:
                self._finalise()
            return
        failing = [(t, r) for t, r in judged if not r[2]]
        t, (result, base, _) = (failing or judged)[-1]
        self.baseline_value = base
        if base is not None:
            self._relative = self.threshold.against(base)
        unit = self.threshold.unit
        self.evidence = (
            f"{len(judged)} {self.after} fault(s); "
            + (f"{len(failing)} over target; " if failing else "")
            + f"at {t:.1f}s: {format_value(result, unit, agg)}"
            + (f" vs baseline {format_value(base, unit, agg)}" if base is not None else "")
            + (f"; {unjudged} too close to the end to judge" if final and unjudged else "")
        )
        self._set(now, "fail" if failing else "pass", result)
        if final:
            self._finalise()

    def _finalise(self) -> None:
        if self.state == PENDING:
            # Not a flip to record: the run ended, the criterion did not change its mind.
            self.state = NOT_JUDGED
            self.evidence = self.evidence or self.unjudged_reason
        elif self.scope in ("window", "recovery") and self.ever_failed:
            # A failure earlier in the run is not undone by passing later.
            failing = [t for t, s in self.flips if s == FAIL]
            self.state = FAIL
            where = "over the window" if self.scope == "window" else "after a fault"
            self.evidence = f"failed {where} at {', '.join(f'{t:.0f}s' for t in failing[:10])}" + (
                f"; {self.evidence}" if self.scope == "recovery" and self.evidence else ""
            )

    def _evaluate_recovery(self, now: float, tracker: RecoveryTracker, *, final: bool) -> None:
        """Judge every fault of ``after`` whose sessions are all back or whose time is up.

        A session that is not back counts with the time it has been gone, so ``max<15s`` fails
        when one never returns. At the end of a run, a fault still inside its ``within`` and
        not fully back is not judged: the run stopped, not the session.
        """
        settled: list[tuple[_Recovery, float]] = []
        too_late = 0
        for record in tracker.faults:
            if record.action != self.after or not record.sessions:
                continue
            all_back = len(record.back) == len(record.sessions)
            if not all_back and now - record.t < self.within:
                too_late += final
                continue
            in_time = [s for s, dt in record.back.items() if dt <= self.within]
            settled.append((record, len(in_time) / len(record.sessions)))
        if not settled:
            if final and too_late and self.value is None:
                self.evidence = f"{too_late} {self.after} fault(s) too close to the end to judge"
            self._set(now, PENDING if self.value is None else self.state, self.value)
            if final:
                self._finalise()
            return
        agg = self.threshold.aggregation
        value: float | None
        if agg == "rate":
            value = min(fraction for _, fraction in settled)
            if self._worst is not None:
                value = min(value, self._worst)  # older faults may have been trimmed away
            self._worst = value
        else:
            times = Trend()
            for record, _ in settled:
                for session in record.sessions:
                    gone = record.back.get(session, now - record.t)
                    times.record(gone * 1000)
            value = aggregate(times, agg, 0.0)
        failing = [
            r for r, fraction in settled if agg == "rate" and not self.threshold.holds(fraction)
        ]
        state = PENDING if value is None else (PASS if self.threshold.holds(value) else FAIL)
        last = settled[-1][0]
        self.evidence = (
            f"{len(settled)} {self.after} fault(s); last at {last.t:.1f}s: "
            f"{len(last.back)}/{len(last.sessions)} back"
            + (f", {len(failing)} fault(s) under target" if failing else "")
            + (f", {too_late} too close to the end to judge" if too_late else "")
        )
        self._set(now, state, value)
        if final:
            self._finalise()

    @property
    def should_abort(self) -> bool:
        return self.abort_on_fail and self.state == FAIL

    def snapshot(self) -> CriterionSnapshot:
        metric = f"recovery after {self.after}" if self.scope == "recovery" else self.metric
        expression = self.threshold.text
        if self.scope == "window" and self.window is not None:
            expression += f" over {units.format_duration(self.window.window)}"
        if self.scope == "recovery":
            expression += f" within {units.format_duration(self.within)}"
        if self.scope == "after":
            expression += f" for {units.format_duration(self.within)} after {self.after}"
        unit = (
            "fraction"
            if self.scope == "recovery" and self.threshold.aggregation == "rate"
            else self.threshold.unit
        )
        return CriterionSnapshot(
            name=self.name,
            expression=expression,
            metric=metric,
            scope=self.scope,
            state=self.state,
            value=self.value,
            value_text=format_value(self.value, unit, self.threshold.aggregation),
            target_text=self._target_text(unit),
            abort_on_fail=self.abort_on_fail,
            flips=tuple(self.flips),
            evidence=self.evidence,
        )

    def _target_text(self, unit: str) -> str:
        threshold = self.threshold
        if threshold.factor is None:
            return f"{threshold.op} {format_value(threshold.target, unit, exact=True)}"
        text = f"{threshold.op} {threshold.factor:g}x baseline"
        if self.baseline_value is not None:
            text += f" ({format_value(threshold.factor * self.baseline_value, unit, exact=True)})"
        return text


RECOVERY_SPEC = MetricSpec(
    "recovery", MetricType.TREND, "ms", "time for disrupted sessions to recover"
)
"""Recovery thresholds read fractions (``rate``) or times in ms (``p(95)``, ``max``, ...)."""


def parse_recovery_threshold(text: str) -> Threshold:
    """Recovery criteria accept ``rate`` (fraction back in time) and trend aggregations in ms."""
    method, _, _ = _scan(text)
    if re.sub(r"\s+", "", method) == "rate":
        return parse_threshold(text, MetricSpec("recovery", MetricType.RATE))
    return parse_threshold(text, RECOVERY_SPEC)
