"""Requests by name, failures by message and checks by name while the run goes on: the table
Locust shows live and k6 prints at the end.

Building it walks every request name's histogram for its percentiles
(:mod:`console.sessions.http.tables`: about 13 ms at the 100-name cap), so the engine does not
put it in its 4 Hz snapshots. A screen that shows it asks for it instead
(:meth:`console.controller.RunController.tables`) through a :class:`TablesFeed`: at most once
a second, one request in flight, and only while that screen is the one on top. Nothing is
built while no screen shows the tables. Once the run has ended the final snapshot carries
them, and they are drawn from there.

Cells come from :mod:`console.breakdown` and are laid out by its ``text_table``, so the
columns read as in the headless summary and report.md; their text was sanitized and redacted
by the builder.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import replace
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.screen import Screen

from console import breakdown
from console.snapshot import RunSnapshot, RunTables
from console.ui.keys import REQUESTS_BINDINGS
from widgets.footer import KeyFooter
from widgets.header import clock_text
from widgets.lines import TextLines

__all__ = ["TABLES_INTERVAL", "TABLE_KINDS", "RequestsScreen", "TablesFeed", "tables_lines"]

TABLES_INTERVAL = 1.0  # seconds between two requests for the tables
TABLE_KINDS = ("http",)  # session kinds whose detail screen shows its group's tables
_CELL = 48  # characters of a name or message drawn, so the figures stay on screen
_WIDE_COLUMNS = ("Name", "Message", "Check")


def _only(tables: RunTables, group: str) -> RunTables:
    """One group's rows. The Aggregated row stays only when it is that group's alone: it
    merges histograms the rows no longer carry."""
    mine = [row for row in tables.requests if row.group == group]
    alone = all(row.group == group for row in tables.requests)
    return replace(
        tables,
        scenarios=tuple(r for r in tables.scenarios if r.group == group),
        requests=tuple(mine),
        failures=tuple(f for f in tables.failures if f.group == group),
        checks=tuple(c for c in tables.checks if c.group == group),
        aggregated=tables.aggregated if alone and mine else None,
    )


def _fit(cells: breakdown.Cells) -> breakdown.Cells:
    headers, rows = cells
    wide = [i for i, h in enumerate(headers) if h in _WIDE_COLUMNS]
    fitted = []
    for row in rows:
        row = list(row)
        for i in wide:
            if len(row[i]) > _CELL:
                row[i] = row[i][: _CELL - 1] + "…"
        fitted.append(row)
    return headers, fitted


def _table(title: str, cells: breakdown.Cells, *, total_last: bool = False) -> list[Text]:
    headers, rows = _fit(cells)
    if not rows:
        return []
    head, *body = breakdown.text_table(headers, rows)
    lines = [Text(title, style="bold"), Text(head, style="bold dim")]
    lines += [Text(line) for line in body]
    if total_last:
        lines[-1].stylize("bold")
    return [*lines, Text("")]


def tables_lines(tables: RunTables, group: str | None = None) -> list[Text]:
    """The tables as lines: requests by name (with Locust's Aggregated row), failures by
    message, checks ✓/✗; ``group`` keeps one group's rows."""
    if group is not None:
        tables = _only(tables, group)
    total = tables.aggregated is not None
    lines = _table("requests", breakdown.request_cells(tables), total_last=total)
    lines += _table("failures", breakdown.failure_cells(tables))
    if checks := breakdown.check_lines(tables):
        lines.append(Text("checks", style="bold"))
        lines += [Text(line, style="red" if line.startswith("✗") else "green") for line in checks]
    if not lines:
        lines = [Text("no requests yet", style="dim")]
    return lines


class TablesFeed:
    """Asks the engine for the tables at most every ``interval`` seconds, one request in
    flight; ``show`` gets them on the UI loop. ``poll`` is called at each snapshot."""

    def __init__(
        self,
        fetch: Callable[[], Future[RunTables]] | None,
        show: Callable[[RunTables], None],
        *,
        clock: Callable[[], float] = time.monotonic,
        interval: float = TABLES_INTERVAL,
    ) -> None:
        self._fetch = fetch
        self._show = show
        self._clock = clock
        self._interval = interval
        self._last = -interval
        self._pending: asyncio.Future[RunTables] | None = None
        self.requests = 0  # how many times it asked (tests, and the bench's claim)
        self.closed = False

    def poll(self) -> None:
        now = self._clock()
        if (
            self.closed
            or self._fetch is None
            or self._pending is not None
            or now - self._last < self._interval
        ):
            return
        self._last = now
        try:
            future = self._fetch()
        except Exception:  # the controller refused: the snapshot's tables still show
            return
        self.requests += 1
        # Awaited on the UI loop: the engine thread never waits for a frame.
        self._pending = asyncio.wrap_future(future)
        self._pending.add_done_callback(self._done)

    def _done(self, future: asyncio.Future[RunTables]) -> None:
        self._pending = None
        if self.closed or future.cancelled() or future.exception() is not None:
            return  # the run ended: the final snapshot carries the tables
        self._show(future.result())

    def close(self) -> None:
        self.closed = True


class RequestsScreen(Screen[None]):
    """The run's tables, every group's, refreshed once a second; Escape goes back."""

    BINDINGS: ClassVar[list[BindingType]] = list(REQUESTS_BINDINGS)

    DEFAULT_CSS = """
    RequestsScreen #requests-title { height: 1; background: $panel; }
    RequestsScreen #requests-body { height: 1fr; padding: 0 1; }
    """

    def __init__(
        self,
        *,
        fetch: Callable[[], Future[RunTables]] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.feed = TablesFeed(fetch, self._show_tables, clock=clock)
        self._snapshot: RunSnapshot | None = None
        self._tables: RunTables | None = None

    def compose(self) -> ComposeResult:
        yield TextLines(id="requests-title")
        yield TextLines(id="requests-body")
        yield KeyFooter()

    def on_mount(self) -> None:
        if self._snapshot is not None:
            self.show(self._snapshot)

    def on_unmount(self) -> None:
        self.feed.close()

    @property
    def body(self) -> TextLines:
        return self.query_one("#requests-body", TextLines)

    def show(self, snapshot: RunSnapshot) -> None:
        self._snapshot = snapshot
        if not self.is_mounted:
            return
        ended = bool(snapshot.ended_at)
        how = "final" if ended else f"live, every {TABLES_INTERVAL:g}s"
        title = Text(" Requests ", style="bold reverse")
        title.append(f" {snapshot.profile_name} · {clock_text(snapshot.elapsed)} · {how}")
        self.query_one("#requests-title", TextLines).set_lines([title])
        if ended:
            self._show_tables(snapshot.tables)
        elif self.app.screen is self:  # covered by help or a dialog: nothing to draw
            self.feed.poll()
        if self._tables is None:
            self.body.set_lines([Text("asking the engine…", style="dim")])

    def _show_tables(self, tables: RunTables) -> None:
        self._tables = tables
        if self.is_mounted:
            lines = breakdown.scenario_lines(tables)
            head = [Text(line, style="dim") for line in lines]
            self.body.set_lines([*head, *([Text("")] if head else []), *tables_lines(tables)])
