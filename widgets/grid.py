"""The session grid: every session pane drawn by ONE widget through Textual's Line API.

Why one widget: feasibility work measured 40 panes built from ``Label`` and ``Sparkline``
widgets refreshed at 4 Hz at 93% of a core, with event-loop stalls of up to 260 ms, because
every update re-ran layout and styling for hundreds of widgets. Here a snapshot turns into a
list of :class:`~textual.strip.Strip` lines (panes side by side, grouped by kind) and
:meth:`SessionGrid.render_line` only indexes that list, so drawing cost is proportional to
the lines on screen and layout never runs.

Panes use the width there is: the grid takes the fewest columns (the widest panes, up to
``PANE_MAX_WIDTH``) whose five-line panes still fit the height, and never more columns than
the largest kind has panes, so four sessions fill a wide terminal instead of a corner of it;
a row with fewer panes (the last of a kind) shares the whole width among them.
When even the most columns (``PANE_MIN_WIDTH`` cells each) do not fit the height, the grid
switches to compact two-line panes, which is what keeps 40 sessions readable at 80x24. A
counter is shown whole or not at all: the line says what fits, never ``half-o…``.

Component classes (themeable in CSS): ``session-grid--group`` (kind headings),
``--focus`` (focus bar), ``--id``, ``--dim``, ``--spark``, ``--marker`` (fault markers on
sparklines), ``--empty`` (sparkline padding) and the badge categories ``--ok``, ``--warn``,
``--bad``, ``--hold``, ``--muted``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import BindingType
from textual.geometry import Region, Size
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from console.snapshot import SeriesView, SessionSnapshot
from console.ui.keys import GRID_BINDINGS
from console.ui.messages import SessionFocused, SessionOpened
from widgets.render import compact_number, sparkline_segments, state_category, truncate

__all__ = ["KIND_ORDER", "SessionGrid"]

KIND_ORDER = ("node", "ssh", "pty", "http", "net")  # cluster nodes above what they carry
KIND_TITLES = {"node": "NODES", "ssh": "SSH", "pty": "PTY", "http": "HTTP", "net": "LINKS"}
PANE_MIN_WIDTH = 34
PANE_MAX_WIDTH = 120  # wider says nothing more: the sparklines hold 120 samples
GUTTER = 1
NORMAL_LINES = 6  # five lines of content and a spacer
COMPACT_LINES = 2


@dataclass(frozen=True)
class _PaneBox:
    session_id: str
    row: int  # global row index, for moving up and down
    col: int
    top: int  # first virtual line
    left: int
    width: int


FAILING_STATES = frozenset({"failed", "crashed", "reconnecting", "hung", "exited", "restarting"})


def _matches(session: SessionSnapshot, word: str) -> bool:
    if word in ("fail", "failing") and session.state in FAILING_STATES:
        return True
    return any(word in field.lower() for field in (session.id, session.group, session.kind,
                                                   session.state))  # fmt: skip


class SessionGrid(ScrollView, can_focus=True):
    """All session panes, grouped by kind, with a movable focus."""

    BINDINGS: ClassVar[list[BindingType]] = list(GRID_BINDINGS)

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "session-grid--group",
        "session-grid--focus",
        "session-grid--id",
        "session-grid--dim",
        "session-grid--spark",
        "session-grid--marker",
        "session-grid--empty",
        "session-grid--ok",
        "session-grid--warn",
        "session-grid--bad",
        "session-grid--hold",
        "session-grid--muted",
    }

    DEFAULT_CSS = """
    SessionGrid { background: $surface; scrollbar-size-vertical: 1; overflow-x: hidden; }
    SessionGrid > .session-grid--group { color: $text-accent; text-style: bold; }
    SessionGrid > .session-grid--focus { color: $accent; text-style: bold; }
    SessionGrid > .session-grid--id { text-style: bold; }
    SessionGrid > .session-grid--dim { color: $text-muted; }
    SessionGrid > .session-grid--spark { color: $primary; }
    SessionGrid > .session-grid--marker { color: $error; text-style: bold; }
    SessionGrid > .session-grid--empty { color: $text-disabled; }
    SessionGrid > .session-grid--ok { color: $background; background: $success; }
    SessionGrid > .session-grid--warn { color: $background; background: $warning; }
    SessionGrid > .session-grid--bad { color: $text; background: $error; text-style: bold; }
    SessionGrid > .session-grid--hold { color: $background; background: $secondary; }
    SessionGrid > .session-grid--muted { color: $text; background: $panel; }
    """

    compact: reactive[bool | None] = reactive(None)
    """``None`` picks compact panes only when the normal ones do not fit the height."""

    def __init__(
        self,
        *,
        compact: bool | None = None,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.set_reactive(SessionGrid.compact, compact)
        self._sessions: tuple[SessionSnapshot, ...] = ()
        self._all: tuple[SessionSnapshot, ...] = ()  # before the filter
        self.filter_text = ""
        self._order: list[str] = []
        self._focused: str | None = None
        self._lines: list[Strip] = []
        self._boxes: dict[str, _PaneBox] = {}
        self._rows: list[list[str]] = []
        self._pane_cache: dict[
            str, tuple[SessionSnapshot, int, bool, bool, list[list[Segment]]]
        ] = {}
        self._styles: dict[str, Style] = {}
        self._pane_height = NORMAL_LINES
        self._cols = 1
        self._layout_key: tuple[int, int, bool | None] = (-1, -1, None)

    # -- data in ---------------------------------------------------------------------------

    @property
    def focused_id(self) -> str | None:
        return self._focused

    @property
    def is_compact(self) -> bool:
        return self._pane_height == COMPACT_LINES

    def set_filter(self, text: str) -> None:
        """Show only the sessions matching every word of ``text`` ("/" as in k9s): a word
        matches a session's id, group, kind or state; ``fail`` also every failing state."""
        self.filter_text = text.strip()
        self.update_sessions(self._all)

    def update_sessions(self, sessions: Sequence[SessionSnapshot]) -> None:
        """Take a new set of session snapshots and redraw (cheap: no layout pass)."""
        self._all = tuple(sessions)
        if self.filter_text:
            words = self.filter_text.lower().split()
            sessions = [s for s in sessions if all(_matches(s, w) for w in words)]
        ordered = sorted(
            sessions,
            key=lambda s: KIND_ORDER.index(s.kind) if s.kind in KIND_ORDER else len(KIND_ORDER),
        )
        self._sessions = tuple(ordered)
        order = [s.id for s in ordered]
        if order != self._order:
            self._order = order
            self._layout_key = (-1, -1, None)
            if self._focused not in order:
                self._set_focus(order[0] if order else None)
        self._rebuild()

    def focus_session(self, session_id: str) -> None:
        if session_id in self._boxes or session_id in self._order:
            self._set_focus(session_id)
            self._rebuild()
            self._scroll_to_focus()

    def _set_focus(self, session_id: str | None) -> None:
        if session_id != self._focused:
            self._focused = session_id
            self.post_message(SessionFocused(session_id))

    # -- moving the focus --------------------------------------------------------------------

    def action_move(self, dx: int, dy: int) -> None:
        if not self._order:
            return
        current = self._boxes.get(self._focused or "")
        if current is None:
            self.focus_session(self._order[0])
            return
        if dx:
            index = self._order.index(current.session_id) + dx
            self.focus_session(self._order[max(0, min(len(self._order) - 1, index))])
        elif dy:
            row = max(0, min(len(self._rows) - 1, current.row + dy))
            members = self._rows[row]
            self.focus_session(members[min(current.col, len(members) - 1)])

    def action_first(self) -> None:
        if self._order:
            self.focus_session(self._order[0])

    def action_last(self) -> None:
        if self._order:
            self.focus_session(self._order[-1])

    def on_click(self, event: events.Click) -> None:
        y = event.y + self.scroll_offset.y
        for box in self._boxes.values():
            if (
                box.top <= y < box.top + self._pane_height
                and box.left <= event.x < box.left + box.width
            ):
                self.focus_session(box.session_id)
                if event.chain == 2:  # a double click opens the detail, as Enter does
                    self.post_message(SessionOpened(box.session_id))
                return

    def _scroll_to_focus(self) -> None:
        box = self._boxes.get(self._focused or "")
        if box is not None:
            region = Region(0, box.top, 1, self._pane_height)
            self.scroll_to_region(region, animate=False, immediate=True)

    # -- layout and drawing ------------------------------------------------------------------

    def on_resize(self, event: events.Resize) -> None:
        self._rebuild()

    def watch_compact(self) -> None:
        self._layout_key = (-1, -1, None)
        self._rebuild()

    def _content_width(self) -> int:
        return max(self.scrollable_content_region.width, 1)

    @staticmethod
    def _pane_width(width: int, cols: int) -> int:
        return (width - GUTTER * (cols - 1)) // cols

    def _groups(self) -> list[tuple[str, list[SessionSnapshot]]]:
        groups: dict[str, list[SessionSnapshot]] = {}
        for session in self._sessions:
            groups.setdefault(session.kind, []).append(session)
        return list(groups.items())

    def _pick_layout(
        self, width: int, groups: list[tuple[str, list[SessionSnapshot]]]
    ) -> tuple[int, int]:
        """(columns, pane height): the widest normal panes that fit, else compact ones."""
        most = max(1, (width + GUTTER) // (PANE_MIN_WIDTH + GUTTER))
        fewest = max(1, -(-(width + GUTTER) // (PANE_MAX_WIDTH + GUTTER)))
        largest = max((len(members) for _, members in groups), default=1)
        most = max(1, min(most, largest))  # an empty column is width nobody uses
        fewest = min(fewest, most)
        if self.compact is not None:
            return most, COMPACT_LINES if self.compact else NORMAL_LINES
        height = max(self.size.height, 1)
        for cols in range(fewest, most + 1):
            rows = sum(-(-len(members) // cols) for _, members in groups)
            if len(groups) + rows * NORMAL_LINES <= height:
                return cols, NORMAL_LINES
        return most, COMPACT_LINES

    def _load_styles(self) -> None:
        """Component styles combined with the widget's own, so segments need nothing more."""
        base = self.rich_style
        self._styles = {
            name.removeprefix("session-grid--"): base
            + self.get_component_rich_style(name, partial=True)
            for name in self.COMPONENT_CLASSES
        }
        self._styles["text"] = base

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles = {}
        self._pane_cache.clear()

    def _rebuild(self) -> None:
        """Turn the current sessions into full-width strips, one per virtual line.

        Styles already carry the widget's base style and every line is padded to the width
        here, so each virtual line costs one ``Strip`` and no ``apply_style`` pass.
        """
        if not self.is_mounted:
            return
        if not self._styles:
            self._load_styles()
        width = self._content_width()
        groups = self._groups()
        key = (width, self.size.height, self.compact)
        if key != self._layout_key:
            self._layout_key = key
            self._cols, self._pane_height = self._pick_layout(width, groups)
        cols = self._cols
        compact = self._pane_height == COMPACT_LINES
        text_style = self._styles["text"]
        gutter = Segment(" " * GUTTER, text_style)
        lines: list[list[Segment]] = []
        boxes: dict[str, _PaneBox] = {}
        rows: list[list[str]] = []
        for kind, members in groups:
            lines.append(self._group_line(kind, members, width))
            for start in range(0, len(members), cols):
                chunk = members[start : start + cols]
                rows.append([s.id for s in chunk])
                pane_width = self._pane_width(width, len(chunk))  # a short row fills it too
                panes = []
                for col, session in enumerate(chunk):
                    boxes[session.id] = _PaneBox(
                        session.id,
                        len(rows) - 1,
                        col,
                        len(lines),
                        col * (pane_width + GUTTER),
                        pane_width,
                    )
                    panes.append(self._pane(session, pane_width, compact))
                used = len(panes) * pane_width + (len(panes) - 1) * GUTTER
                tail = [Segment(" " * (width - used), text_style)] if used < width else []
                for line_no in range(self._pane_height):
                    segments: list[Segment] = []
                    for col, pane in enumerate(panes):
                        if col:
                            segments.append(gutter)
                        segments.extend(pane[line_no])
                    segments.extend(tail)
                    lines.append(segments)
        self._boxes = boxes
        self._rows = rows
        self._swap_lines(lines, width)

    def _swap_lines(self, new_lines: list[list[Segment]], width: int) -> None:
        """Install new lines, repainting only the ones that differ from what is on screen.

        At 4 Hz most pane lines are unchanged between snapshots (a sparkline moves once a
        second); skipping them is most of what keeps 40 panes cheap.
        """
        old = self._lines
        same_shape = len(old) == len(new_lines) and self.virtual_size.width == width
        changed: list[int] = []
        lines: list[Strip] = []
        for y, segments in enumerate(new_lines):
            if y < len(old) and old[y]._segments == segments:
                lines.append(old[y])  # a Strip is not free to build: keep the one we have
            else:
                lines.append(Strip(segments, width))
                changed.append(y)
        self._lines = lines
        self.virtual_size = Size(width, len(lines))
        if not same_shape:
            self.refresh()
            return
        top = self.scroll_offset.y
        height = self.size.height
        regions = [Region(0, y - top, width, 1) for y in changed if top <= y < top + height]
        if regions:
            self.refresh(*regions)

    def render_line(self, y: int) -> Strip:
        index = y + self.scroll_offset.y
        if 0 <= index < len(self._lines):
            return self._lines[index]
        return Strip.blank(self.size.width, self.rich_style)

    def _group_line(self, kind: str, members: list[SessionSnapshot], width: int) -> list[Segment]:
        running = sum(1 for s in members if s.state in ("running", "idle"))
        title = f" {KIND_TITLES.get(kind, kind.upper())} · {len(members)} · {running} up "
        rule = "─" * max(0, width - len(title) - 2)
        segments = [Segment("──", self._styles["dim"]), Segment(title, self._styles["group"])]
        segments.append(Segment(rule, self._styles["dim"]))
        return self._fit(segments, width)

    def _fit(self, segments: list[Segment], width: int) -> list[Segment]:
        """Crop or pad a line to exactly ``width`` cells."""
        return Segment.adjust_line_length(segments, width, self._styles["text"])

    def _pane(self, session: SessionSnapshot, width: int, compact: bool) -> list[list[Segment]]:
        focused = session.id == self._focused
        cached = self._pane_cache.get(session.id)
        if cached is not None:
            snap, cached_width, cached_focus, cached_compact, strips = cached
            if (snap is session or snap == session) and (
                cached_width,
                cached_focus,
                cached_compact,
            ) == (width, focused, compact):
                return strips
        draw = self._compact_pane if compact else self._normal_pane
        lines = [self._fit(line, width) for line in draw(session, width, focused)]
        self._pane_cache[session.id] = (session, width, focused, compact, lines)
        if len(self._pane_cache) > 4 * max(len(self._order), 1):
            self._pane_cache.clear()
        return lines

    def _head(self, session: SessionSnapshot, focused: bool) -> list[Segment]:
        styles = self._styles
        text, category = state_category(session.state)
        bar = Segment("▌" if focused else " ", styles["focus"])
        badge = Segment(f" {text:<5} ", styles[category])
        ident = styles["focus"] + styles["id"] if focused else styles["id"]
        return [bar, badge, Segment(" ", styles["text"]), Segment(session.id, ident)]

    def _spark(self, session: SessionSnapshot, width: int) -> list[Segment]:
        """The main sparkline across ``width`` (compact panes show only this one)."""
        return self._one_spark(session.series[0] if session.series else None, width)

    def _labelled_sparks(self, session: SessionSnapshot, width: int) -> list[list[Segment]]:
        """The first two series, one line each, labelled: HTTP req/s and p95, SSH remote CPU
        and memory, PTY output and RSS. A session with one series gets a blank second line."""
        shown = session.series[:2]
        label = max((len(s.name) for s in shown), default=0)
        lines = [self._one_spark(s, width, label=label) for s in shown]
        return lines + [[] for _ in range(2 - len(lines))]

    def _one_spark(self, series: SeriesView | None, width: int, *, label: int = 0) -> list[Segment]:
        """One sparkline and its latest value; ``label`` > 0 prefixes the series name, padded."""
        styles = self._styles
        value = compact_number(series.values[-1], series.unit) if series and series.values else "-"
        value = value[:8]
        prefix = [Segment(f"{series.name:<{label}} ", styles["dim"])] if label and series else []
        width -= len(prefix[0].text) if prefix else 0
        spark_width = max(0, width - len(value) - 1)
        segments = sparkline_segments(
            series.values if series else (),
            series.markers if series else (),
            spark_width,
            styles["spark"],
            styles["marker"],
            styles["empty"],
        )
        return [
            *prefix,
            *segments,
            Segment(" " + value.rjust(width - spark_width - 1), styles["text"]),
        ]

    @staticmethod
    def _counters(session: SessionSnapshot, width: int, limit: int | None = None) -> str:
        """As many whole counters as fit ``width``, in the session's order of importance; the
        first one is cut only when nothing else fits (a pane narrower than one counter)."""
        text = ""
        for label, value in session.counters[:limit]:
            item = f"{label} {value}"
            longer = f"{text} · {item}" if text else item
            if len(longer) > width:
                return text or truncate(item, width)
            text = longer
        return text

    def _normal_pane(
        self, session: SessionSnapshot, width: int, focused: bool
    ) -> list[list[Segment]]:
        styles = self._styles
        inner = width - 1
        bar = Segment("▌" if focused else " ", styles["focus"])
        head = self._head(session, focused)
        used = 1 + 7 + 1 + len(session.id)
        if session.badges:
            warn = f" ⚠ {session.badges[0]}"
            head.append(Segment(truncate(warn, width - used), styles["warn"]))
            used += len(warn)
        if used < width - 8:  # room for a useful part of the target, else none of it
            head.append(Segment(" " + truncate(session.target, width - used - 1), styles["dim"]))
        counters = self._counters(session, inner)
        last = truncate(session.last_event, inner)
        first, second = self._labelled_sparks(session, inner)
        return [
            head,
            [bar, *first],
            [bar, *second],
            [bar, Segment(counters, styles["text"])],
            [bar, Segment(last, styles["dim"])],
            [],
        ]

    def _compact_pane(
        self, session: SessionSnapshot, width: int, focused: bool
    ) -> list[list[Segment]]:
        styles = self._styles
        head = self._head(session, focused)
        used = 1 + 7 + 1 + len(session.id) + 1
        head.append(Segment(" ", styles["text"]))
        head.extend(self._spark(session, max(0, width - used)))
        bar = Segment("▌" if focused else " ", styles["focus"])
        counters = self._counters(session, width - 1, 2)  # and room for the last event
        rest = width - 1 - len(counters)
        second = [bar, Segment(counters, styles["text"])]
        if rest > 4 and session.last_event:
            second.append(Segment(" " + truncate(session.last_event, rest - 1), styles["dim"]))
        return [head, second]
