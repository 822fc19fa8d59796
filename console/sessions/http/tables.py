"""The HTTP sessions' part of the end-of-run breakdown (:class:`console.snapshot.RunTables`).

Each session holds, per request name, a failure count and a :class:`~console.metrics.Trend`
fed from its worker's deltas (:mod:`.stats`); here the sessions of a group are merged, so a
group with ``count = 4`` has one row per name, and the percentiles come from the same
histograms as ``http_req_duration``. Names, messages and check names pass through
:func:`console.sanitize.clean` and the run's redactor: URLs and error texts come from outside.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from console.metrics import Trend
from console.sanitize import clean
from console.secrets import Secrets
from console.sessions.http.executors import describe, peak_vus, scenario_length
from console.sessions.http.flow import request_name
from console.sessions.http.session import HttpSession
from console.sessions.http.stats import MAX_MESSAGES, OTHER_MESSAGES
from console.snapshot import CheckRow, RequestFailure, RequestRow, RunTables, ScenarioRow

__all__ = ["build"]

_LIMIT = 200  # characters of a name or message kept in a table cell
_SEVERAL = "* (several requests)"  # the request of a failures row folded from several


def _text(secrets: Secrets, text: str) -> str:
    # Masked before it is cut: a cut through a secret leaves a head no redactor recognises.
    return clean(secrets.text(text), limit=_LIMIT)


def _capped(by_message: dict[tuple[str, str], int]) -> dict[tuple[str, str], int]:
    """A group's failures as one worker bounds its own: the :data:`MAX_MESSAGES` most frequent,
    the rest (other workers' own "other messages" too) summed in one :data:`OTHER_MESSAGES` row,
    under their request's name when they share one. Merged over workers unbounded, a group of
    4 had ~200 rows, mostly of one occurrence."""
    ranked = sorted(
        (item for item in by_message.items() if item[0][1] != OTHER_MESSAGES),
        key=lambda item: -item[1],
    )
    kept = dict(ranked[:MAX_MESSAGES])
    rest = [(key, n) for (key, message), n in by_message.items() if (key, message) not in kept]
    if rest:
        keys = {key for key, _ in rest}
        key = keys.pop() if len(keys) == 1 else _SEVERAL
        kept[key, OTHER_MESSAGES] = sum(n for _, n in rest)
    return kept


def _split(key: str) -> tuple[str, str]:
    method, _, name = key.partition(" ")
    return method, name


def _row(group: str, key: str, failures: int, trend: Trend, elapsed: float) -> RequestRow:
    method, name = _split(key)
    med, p95, p99 = trend.percentiles((50, 95, 99))
    return RequestRow(
        group=group,
        method=method,
        name=name,
        requests=trend.count,
        failures=failures,
        med=med,
        p95=p95,
        p99=p99,
        max=trend.max if trend.count else None,
        rate=trend.count / elapsed if elapsed > 0 else 0.0,
    )


def _planned(scenario_end: float, run_duration: float) -> float:
    """How long the scenario runs in this run: its own end, cut by the run's (``--duration``);
    0 when nothing ends it."""
    ends = [end for end in (scenario_end, run_duration) if 0 < end < math.inf]
    return min(ends) if ends else 0.0


def build(sessions: Sequence[HttpSession], elapsed: float, secrets: Secrets) -> RunTables:
    """Every group's scenario, requests by name, failures by message and checks by name."""
    groups: dict[str, list[HttpSession]] = {}
    for session in sessions:
        groups.setdefault(session.ctx.group, []).append(session)
    scenarios, requests, failures, checks = [], [], [], []
    everything = Trend()
    total_failures = 0
    for group, members in groups.items():
        config = members[0].config
        length = scenario_length(config, members[0].run_duration)
        scenarios.append(
            ScenarioRow(
                group=group,
                executor=config.executor,
                text=describe(config, members[0].run_duration),
                max_vus=peak_vus(config) if config.steps else 0,
                duration=_planned(config.start_time + length, members[0].run_duration),
            )
        )
        tallies: dict[str, tuple[int, Trend]] = {}
        group_total: Trend | None = None
        if all(session.requests is members[0].requests for session in members):
            # The runtime's shared tallies: read as they are, nothing merged on the engine loop.
            tallies = {k: (t.failures, t.trend) for k, t in members[0].requests.items()}
            group_total = members[0].request_total.trend
        else:
            for session in members:
                for key, tally in session.requests.items():
                    count, trend = tallies.get(key, (0, Trend()))
                    trend.merge(tally.trend)
                    tallies[key] = (count + tally.failures, trend)
        # In the flow's order, as the profile reads; a name no step has (the cap's row) last.
        order = {
            request_name(step, step.request): i
            for i, step in enumerate(config.steps)
            if step.request is not None
        }
        for key in sorted(tallies, key=lambda k: order.get(k, len(order))):
            count, trend = tallies[key]
            requests.append(_row(group, _text(secrets, key), count, trend, elapsed))
            if group_total is None:
                everything.merge(trend)
            total_failures += count
        if group_total is not None:
            everything.merge(group_total)
        by_message: dict[tuple[str, str], int] = {}
        for session in members:
            for where, n in session.failures.items():
                by_message[where] = by_message.get(where, 0) + n
        for (key, message), n in _capped(by_message).items():
            method, name = _split(_text(secrets, key))
            failures.append(RequestFailure(group, method, name, _text(secrets, message), n))
        by_check: dict[str, list[int]] = {}
        for session in members:
            for name, (passes, total) in session.checks_by_name.items():
                counts = by_check.setdefault(name, [0, 0])
                counts[0] += passes
                counts[1] += total
        for name, (passes, total) in by_check.items():
            checks.append(CheckRow(group, _text(secrets, name), passes, total - passes))
    # Locust's order, the most frequent first; what was folded last, whatever it sums to.
    failures.sort(key=lambda f: (f.message == OTHER_MESSAGES, -f.occurrences))
    aggregated = _row("", " Aggregated", total_failures, everything, elapsed) if requests else None
    return RunTables(
        scenarios=tuple(scenarios),
        requests=tuple(requests),
        failures=tuple(failures),
        checks=tuple(checks),
        aggregated=aggregated,
    )
