"""The detail screen for one session: charts over the run, every counter, its events, its output.

Heavier than a grid pane on purpose, and affordable because only one session is shown:
plotext draws each series as a chart with fault markers (▼), and pyte interprets the raw
output (fetched on request from the engine while the screen is open) as a terminal would, so a program that redraws its screen
with cursor movements reads as it does in a real terminal. An HTTP session shows its group's
requests by name, failures and checks instead (:mod:`widgets.requests`, asked for once a
second while the screen is open). Charts, terminal and tables are redrawn at most once a
second; counters and events at every snapshot.
"""

from __future__ import annotations

import contextlib
import io
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import ClassVar

import plotext
import pyte
from rich.style import Style
from rich.text import Span, Text
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Static

from console.events import Event
from console.sanitize import clean
from console.snapshot import RunSnapshot, RunTables, SeriesView, SessionSnapshot
from console.ui.keys import DETAIL_BINDINGS
from widgets.event_log import event_line
from widgets.footer import KeyFooter
from widgets.lines import TextLines
from widgets.render import state_category
from widgets.requests import TABLE_KINDS, TablesFeed, tables_lines

__all__ = ["SessionDetailScreen", "chart_text", "terminal_lines"]

HEAVY_INTERVAL = 1.0
TERMINAL_KINDS = ("pty", "ssh")  # sessions with a terminal to show; HTTP and links have none


def _drop_backgrounds(text: Text) -> Text:
    """plotext paints a background; the console's theme should show through instead."""
    spans = []
    for span in text.spans:
        style = span.style if isinstance(span.style, Style) else Style.parse(str(span.style))
        spans.append(Span(span.start, span.end, Style(color=style.color, bold=style.bold)))
    text.spans = spans
    return text


def chart_text(series: SeriesView, width: int, height: int, end: float = 0.0) -> Text:
    """One series as a plotext line chart, fault markers drawn as ▼ along the top.

    Samples are one a second, the newest taken at run second ``end``, so the x axis reads
    in run seconds and lines up with the event log and the faults panel.
    """
    figure = plotext.figure
    figure.clear()
    figure.plot_size(max(width, 20), max(height, 5))
    figure.theme("clear")
    figure.title(f"{series.name} ({series.unit})" if series.unit else series.name)
    values = list(series.values)
    if not values:
        return Text(f"{series.name}: no samples yet", style="dim")
    first = max(0.0, end - len(values) + 1)
    xs = [round(first + i, 1) for i in range(len(values))]
    if len(values) == 1:
        xs, values = [first, first + 1], values * 2
    line = figure.signal(xs, values)
    line.lines()
    figure.draw(line)
    top = max(values)
    if min(values) >= 0:  # counts and rates: the axis starts at 0, never a -1.0 below a flat 0
        figure.ruler("y", "left").lim(0, top if top > 0 else 1)
    marks = [xs[m] for m in series.markers if 0 <= m < len(values)]
    if marks:
        figure.draw(figure.signal(marks, [top] * len(marks), marker="▼"))
    with contextlib.redirect_stdout(io.StringIO()):  # plotext prints layout warnings
        built = str(figure.build())
    return _drop_backgrounds(Text.from_ansi(built))


def terminal_lines(raw: bytes, columns: int, rows: int) -> list[str]:
    """Replay raw output through a pyte screen; return its visible lines, right-stripped.

    pyte acts on the escape sequences, but draws what it does not know (C1 controls in UTF-8,
    bidi overrides) into its cells, so each line is cleaned before it is drawn.
    """
    screen = pyte.Screen(max(columns, 10), max(rows, 2))
    stream = pyte.ByteStream(screen)
    with contextlib.suppress(Exception):  # a bounded tail may start mid-sequence
        stream.feed(raw)
    lines = [clean(line.rstrip()) for line in screen.display]
    while lines and not lines[-1]:
        lines.pop()
    return lines


class SessionDetailScreen(Screen[None]):
    """Everything about the focused session; Escape goes back to the grid."""

    BINDINGS: ClassVar[list[BindingType]] = list(DETAIL_BINDINGS)

    DEFAULT_CSS = """
    SessionDetailScreen #detail-title { height: 1; background: $panel; }
    SessionDetailScreen #detail-body { height: 1fr; }
    SessionDetailScreen #detail-charts { width: 2fr; }
    SessionDetailScreen #detail-side { width: 1fr; min-width: 30; }
    SessionDetailScreen #detail-counters { height: auto; max-height: 50%;
        border-top: solid $primary; }
    SessionDetailScreen #detail-events { height: 1fr; border-top: solid $primary; }
    SessionDetailScreen #detail-terminal { height: 12; border: round $primary;
        background: $surface; }
    SessionDetailScreen #detail-requests { height: auto; max-height: 45%;
        border-top: solid $primary; padding: 0 1; }
    """

    def __init__(
        self,
        session_id: str,
        *,
        clock: Callable[[], float] = time.monotonic,
        fetch_screen: Callable[[str], Future[bytes]] | None = None,
        fetch_tables: Callable[[], Future[RunTables]] | None = None,
    ) -> None:
        super().__init__()
        self.session_id = session_id
        self._clock = clock
        self._last_heavy = -HEAVY_INTERVAL
        self._snapshot: RunSnapshot | None = None
        # Raw screen bytes come only on request, for this one session (not in every snapshot).
        self._fetch_screen = fetch_screen
        self._screen = b""
        self._fetching: Future[bytes] | None = None
        # The run's tables, likewise on request, for an HTTP session's group.
        self.tables_feed = TablesFeed(fetch_tables, self._show_tables, clock=clock)
        self._group = ""

    def compose(self) -> ComposeResult:
        yield TextLines(id="detail-title")
        with Horizontal(id="detail-body"):
            with VerticalScroll(id="detail-charts"):
                yield Static(id="detail-chart-body")
            with Vertical(id="detail-side"):
                yield TextLines(id="detail-counters")
                yield TextLines(id="detail-events")
        terminal = Static(id="detail-terminal")
        terminal.border_title = "output (pyte)"
        yield terminal
        requests = TextLines(id="detail-requests")
        requests.display = False
        yield requests
        yield KeyFooter()

    def on_mount(self) -> None:
        self.query_one("#detail-counters").border_title = "counters"
        self.query_one("#detail-events").border_title = "events"
        if self._snapshot is not None:
            self.show(self._snapshot, force=True)

    def on_unmount(self) -> None:
        self.tables_feed.close()

    def on_resize(self) -> None:
        if self._snapshot is not None:
            self.show(self._snapshot, force=True)

    def show(self, snapshot: RunSnapshot, *, force: bool = False) -> None:
        self._snapshot = snapshot
        if not self.is_mounted:
            return
        session = snapshot.session(self.session_id)
        title = self.query_one("#detail-title", TextLines)
        if session is None:
            title.set_lines([Text(f" {self.session_id}: no longer in the run", style="bold")])
            return
        badge, _ = state_category(session.state)
        line = Text(f" {session.id} ", style="bold reverse")
        line.append(f" {session.kind.upper()} · {badge} · {session.target}")
        if session.badges:
            line.append("  ⚠ " + ", ".join(session.badges), style="yellow")
        title.set_lines([line])
        terminal = self.query_one("#detail-terminal")
        terminal.display = session.kind in TERMINAL_KINDS
        if session.kind in TABLE_KINDS:  # shown from the first answer on, never empty
            self._group = session.group
            if snapshot.ended_at:  # the final snapshot carries them; the engine is gone
                self._show_tables(snapshot.tables)
            elif self.app.screen is self:
                self.tables_feed.poll()
        self._show_counters(session)
        self._show_events(snapshot.recent_events)
        now = self._clock()
        if force or now - self._last_heavy >= HEAVY_INTERVAL:
            self._last_heavy = now
            self._show_charts(session, snapshot.elapsed)
            if terminal.display:
                self._request_screen()
                self._show_terminal(session)

    def _show_counters(self, session: SessionSnapshot) -> None:
        rows = session.details or session.counters
        pad = max((len(label) for label, _ in rows), default=0) + 2
        lines = []
        for label, value in rows:
            text = Text(label.ljust(pad), style="dim")
            text.append(value)
            lines.append(text)
        if session.actions:
            lines.append(Text("accepts " + " ".join(session.actions), style="dim italic"))
        self.query_one("#detail-counters", TextLines).set_lines(lines)

    def _show_events(self, events: Sequence[Event]) -> None:
        mine = [e for e in events if e.session_id == self.session_id][-200:]
        lines = [event_line(e) for e in reversed(mine)] or [Text("no events yet", style="dim")]
        self.query_one("#detail-events", TextLines).set_lines(lines)

    def _show_charts(self, session: SessionSnapshot, end: float) -> None:
        box = self.query_one("#detail-charts")
        width = max(box.size.width - 2, 40)
        # the charts share the height there is (an HTTP session has no terminal box below)
        height = max(8, min(24, box.size.height // max(len(session.series), 1) - 1))
        charts = Text("\n").join(chart_text(s, width, height, end) for s in session.series)
        self.query_one("#detail-chart-body", Static).update(
            charts if session.series else Text("no series", style="dim")
        )

    def _show_tables(self, tables: RunTables) -> None:
        if self.is_mounted:
            panel = self.query_one("#detail-requests", TextLines)
            # Text, not a str: a str is markup to Textual, and a group may be named api[/x]
            panel.border_title = Text(f"requests · {self._group}")
            panel.set_lines(tables_lines(tables, self._group))
            panel.display = True

    def _request_screen(self) -> None:
        """Ask the engine for the raw screen; one request in flight at most."""
        if self._fetch_screen is None or self._fetching is not None:
            return
        try:
            future = self._fetch_screen(self.session_id)
        except Exception:
            return
        if future.done():
            self._take_screen(future)
            return
        self._fetching = future
        future.add_done_callback(lambda f: self.app.call_from_thread(self._take_screen, f))

    def _take_screen(self, future: Future[bytes]) -> None:
        self._fetching = None
        if future.cancelled() or future.exception() is not None:
            return  # the run ended: the tail in the snapshot still shows
        self._screen = future.result()
        session = self._snapshot.session(self.session_id) if self._snapshot else None
        if session is not None and self.is_mounted:
            self._show_terminal(session)

    def _show_terminal(self, session: SessionSnapshot) -> None:
        terminal = self.query_one("#detail-terminal", Static)
        columns = max(terminal.size.width - 2, 20)
        rows = max(terminal.size.height - 2, 4)
        if self._screen:
            lines = terminal_lines(self._screen, columns, rows)
        else:
            lines = list(session.output_tail[-rows:])
        terminal.update(Text("\n".join(lines)) if lines else Text("no output", style="dim"))
