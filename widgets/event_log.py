"""The event log panel: the run's events as they happen, filterable by kind or session.

Snapshots carry only the most recent events, so the panel appends what is new since the
last one it saw (found by identity from the end) instead of redrawing everything; a filter
change redraws from the snapshot's recent events. Memory is bounded by ``max_lines``.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.cache import LRUCache
from textual.widgets import RichLog

from console.events import RECENT_EVENTS, Event

__all__ = ["EventLogPanel", "LogFilter", "event_line"]

LogFilter = tuple[str, str]  # ("all", ""), ("kind", "pty") or ("session", "emit#0")

EVENT_STYLES = {
    "fault_injected": "bold magenta",
    "fault_not_applicable": "yellow",
    "crashed": "bold red",
    "exited": "red",
    "session_error": "bold red",
    "dropped": "red",
    "disconnected": "red",
    "reconnected": "green",
    "recovered": "green",
    "restarted": "green",
    "criterion": "cyan",
}


def event_line(event: Event) -> Text:
    line = Text(event.ts[11:23] + " ", style="dim")
    line.append(f"{(event.session_id or event.kind):<10} ", style="bold")
    line.append(event.event, style=EVENT_STYLES.get(event.event, ""))
    if event.source:
        line.append(f" [{event.source}]", style="magenta")
    if event.elapsed_ms is not None:
        line.append(f" {event.elapsed_ms:.0f}ms")
    if event.detail:
        line.append(f" {event.detail}", style="dim")
    return line


LINE_CACHE = 64  # rendered lines kept by the panel (RichLog's default is 1,024)


class EventLogPanel(RichLog):
    """Recent events, newest at the bottom."""

    DEFAULT_CSS = """
    EventLogPanel { height: 8; border-top: solid $primary; background: $surface;
        overflow-x: hidden; }
    """

    def __init__(
        self,
        *,
        max_lines: int = RECENT_EVENTS,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(
            max_lines=max_lines,
            wrap=False,
            highlight=False,
            markup=False,
            auto_scroll=True,
            name=name,
            id=id,
            classes=classes,
        )
        self.log_filter: LogFilter = ("all", "")
        self._last: Event | None = None
        self.border_title = "events · all"
        # RichLog caches a rendered copy of every line it draws, keyed by the line's number, in
        # a 1,024-entry LRU: on a log that only grows, that is 1,024 Strips (~5 kB each) filling
        # over the first hour of a soak. The panel shows a few rows; a few screens are plenty.
        cache = getattr(self, "_line_cache", None)
        if isinstance(cache, LRUCache):
            cache.maxsize = LINE_CACHE

    def matches(self, event: Event) -> bool:
        what, value = self.log_filter
        if what == "kind":
            return event.kind == value
        if what == "session":
            return event.session_id == value
        if what == "text":  # "/" search, as in less: the line as shown, any case
            return value.lower() in event_line(event).plain.lower()
        return True

    def show(self, events: Sequence[Event]) -> None:
        """Append the events not shown yet."""
        start = 0
        if self._last is not None:
            for index in range(len(events) - 1, -1, -1):
                if events[index] is self._last or events[index] == self._last:
                    start = index + 1
                    break
        fresh = events[start:]
        if not fresh:
            return
        self._last = fresh[-1]
        for event in fresh:
            if self.matches(event):
                self.write(event_line(event))

    def set_filter(self, log_filter: LogFilter, events: Sequence[Event]) -> None:
        self.log_filter = log_filter
        what, value = log_filter
        self.border_title = "events · all" if what == "all" else f"events · {what} {value}"
        self.clear()
        self._last = None
        self.show(events)
