"""The end-of-run breakdown as cells: one home for the headless summary, report.md and
report.html, so the three say the same thing in the same words.

What Locust and k6 users look for at the end of a run: the scenarios (k6's header), a row per
request name with requests, failures, median, p95, p99, max and req/s (Locust's statistics
table, with its "Aggregated" row), failures grouped by message (Locust's failures table) and
checks by name with ✓/✗ (k6); and the summary figures with their units. Durations use the metrics' one formatter
(:func:`console.metrics.format_value`), so a loopback median reads ``1.23ms``, never a bare
``0.0`` or ``None``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from console.metrics import MetricType, aggregation_unit, format_value
from console.snapshot import (
    CheckRow,
    RequestFailure,
    RequestRow,
    RunSnapshot,
    RunTables,
    ScenarioRow,
)
from console.units import format_duration

__all__ = [
    "check_cells",
    "check_lines",
    "failure_cells",
    "figure_text",
    "from_json",
    "request_cells",
    "scenario_lines",
    "text_table",
]

Cells = tuple[list[str], list[list[str]]]

_DEFAULT_AGGREGATION = {"rate": "rate", "counter": "count", "gauge": "value", "trend": "p(95)"}


def figure_text(snap: RunSnapshot, key: str, value: object) -> str:
    """A summary figure with its unit: ``0%``, ``99.7/s``, ``1.23ms``; ``-`` when no data,
    never a raw ``None`` or ``0.0``. Keys name a metric, optionally with its aggregation."""
    name, _, aggregation = key.partition(" ")
    metric = snap.metric(name)
    if metric is not None and isinstance(value, (int, float)) and not isinstance(value, bool):
        aggregation = aggregation or _DEFAULT_AGGREGATION.get(metric.type, "value")
        unit = aggregation_unit(MetricType(metric.type), metric.unit, aggregation)
        return format_value(float(value), unit, aggregation)
    if value is None:
        return "- (no data)"
    if isinstance(value, float):
        return f"{value:.4g}" + (
            "%" if key.endswith("_pct") else "ms" if key.endswith("_ms") else ""
        )
    return str(value)


def _groups(rows: Sequence[Any]) -> bool:
    """Whether rows come from more than one group: then a Scenario column says which."""
    return len({row.group for row in rows}) > 1


def scenario_lines(tables: RunTables) -> list[str]:
    """k6's header: ``scenarios: 1 scenario, 50 max VUs, 20.0s max duration`` and a
    ``* name: ...`` line per scenario."""
    rows = tables.scenarios
    if not rows:
        return []
    longest = max(row.duration for row in rows)
    head = f"scenarios: {len(rows)} scenario{'s' if len(rows) > 1 else ''}"
    head += f", {sum(row.max_vus for row in rows)} max VUs"
    head += f", {format_duration(longest)} max duration" if longest > 0 else ", until stopped"
    return [head, *(f"* {row.group}: {row.text}" for row in rows)]


def _request_row(row: RequestRow, with_group: bool) -> list[str]:
    cells = [row.group] if with_group else []
    return [
        *cells,
        row.method,
        row.name,
        str(row.requests),
        str(row.failures),
        *(format_value(v, "ms") for v in (row.med, row.p95, row.p99, row.max)),
        format_value(row.rate, "/s"),
    ]


def request_cells(tables: RunTables) -> Cells:
    """Locust's statistics table: a row per name, then ``Aggregated``."""
    with_group = _groups(tables.requests)
    headers = ["Scenario"] if with_group else []
    headers += ["Type", "Name", "Requests", "Fails", "Median", "p95", "p99", "Max", "req/s"]
    rows = [_request_row(row, with_group) for row in tables.requests]
    if tables.aggregated is not None and tables.requests:
        rows.append(_request_row(tables.aggregated, with_group))
    return headers, rows


def failure_cells(tables: RunTables) -> Cells:
    """Locust's failures table: occurrences of each (method, name, message)."""
    with_group = _groups(tables.failures)
    headers = ["Scenario"] if with_group else []
    headers += ["Occurrences", "Type", "Name", "Message"]
    rows = [
        ([f.group] if with_group else []) + [str(f.occurrences), f.method, f.name, f.message]
        for f in tables.failures
    ]
    return headers, rows


def _check_rate(row: CheckRow) -> str:
    total = row.passes + row.fails
    return format_value(row.passes / total, "fraction") if total else "-"


def check_cells(tables: RunTables) -> Cells:
    with_group = _groups(tables.checks)
    headers = ["Scenario"] if with_group else []
    headers += ["", "Check", "Passed", "Failed", "Rate"]
    rows = [
        ([c.group] if with_group else [])
        + ["✓" if not c.fails else "✗", c.name, str(c.passes), str(c.fails), _check_rate(c)]
        for c in tables.checks
    ]
    return headers, rows


def check_lines(tables: RunTables) -> list[str]:
    """k6's checks: ``✓ name`` when every one passed, else ``✗ name ... 50% — ✓ 5 / ✗ 5``."""
    with_group = _groups(tables.checks)
    lines = []
    width = max((len(c.name) + (len(c.group) + 2) * with_group for c in tables.checks), default=0)
    for c in tables.checks:
        name = f"{c.group}: {c.name}" if with_group else c.name
        mark = "✓" if not c.fails else "✗"
        lines.append(
            f"{mark} {name + ' ':.<{width + 3}} {_check_rate(c)} — ✓ {c.passes} / ✗ {c.fails}"
        )
    return lines


def text_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Fixed-width columns for a terminal: numbers right-aligned, text left-aligned."""
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    numeric = [
        bool(rows) and all(r[i][:1].isdigit() or r[i] == "-" for r in rows)
        for i in range(len(headers))
    ]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.rjust(w) if num else c.ljust(w)
            for c, w, num in zip(cells, widths, numeric, strict=True)
        ).rstrip()

    return [line(headers), *(line(r) for r in rows)]


def from_json(data: Mapping[str, Any] | None) -> RunTables:
    """The tables back from a snapshot's JSON (report.html renders from that form)."""
    if not data:
        return RunTables()
    aggregated = data.get("aggregated")
    return RunTables(
        scenarios=tuple(ScenarioRow(**row) for row in data.get("scenarios", ())),
        requests=tuple(RequestRow(**row) for row in data.get("requests", ())),
        failures=tuple(RequestFailure(**row) for row in data.get("failures", ())),
        checks=tuple(CheckRow(**row) for row in data.get("checks", ())),
        aggregated=RequestRow(**aggregated) if aggregated else None,
    )
