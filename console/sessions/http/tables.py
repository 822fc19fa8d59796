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
from console.snapshot import CheckRow, RequestFailure, RequestRow, RunTables, ScenarioRow

__all__ = ["build"]

_LIMIT = 200  # characters of a name or message kept in a table cell


def _text(secrets: Secrets, text: str) -> str:
    # Redacted before the cut: a secret cut in half would no longer be known to the redactor.
    return clean(secrets.text(text), limit=_LIMIT)


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
        for (key, message), n in by_message.items():
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
    failures.sort(key=lambda f: -f.occurrences)  # Locust's order: the most frequent first
    aggregated = _row("", " Aggregated", total_failures, everything, elapsed) if requests else None
    return RunTables(
        scenarios=tuple(scenarios),
        requests=tuple(requests),
        failures=tuple(failures),
        checks=tuple(checks),
        aggregated=aggregated,
    )
