"""Pure drawing helpers shared by the widgets: state badges, sparklines, compact numbers.

They build Rich :class:`~rich.segment.Segment` lists directly rather than ``Text`` objects,
because the session grid redraws up to a few hundred pane lines four times a second and
segment lists are the cheapest thing Textual's Line API can take.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.segment import Segment
from rich.style import Style

__all__ = [
    "BADGES",
    "SPARK_LEVELS",
    "compact_number",
    "sparkline_segments",
    "state_category",
    "truncate",
]

SPARK_LEVELS = "▁▂▃▄▅▆▇█"
MARKER = "┃"

# state -> (badge text, category); the category picks a themed colour in each widget.
BADGES: dict[str, tuple[str, str]] = {
    "starting": ("START", "muted"),
    "connecting": ("CONN", "warn"),
    "running": ("RUN", "ok"),
    "idle": ("IDLE", "ok"),
    "reconnecting": ("RECON", "warn"),
    "crashed": ("CRASH", "bad"),
    "restarting": ("RSTRT", "warn"),
    "hung": ("HUNG", "hold"),
    "paused": ("PAUSE", "hold"),
    "exited": ("EXIT", "muted"),
    "failed": ("FAIL", "bad"),
    "stopped": ("STOP", "muted"),
}


def state_category(state: str) -> tuple[str, str]:
    """Badge text (5 cells at most) and colour category for a session state."""
    return BADGES.get(state, (state[:5].upper() or "?", "muted"))


def truncate(text: str, width: int) -> str:
    """Cut ``text`` to ``width`` cells with an ellipsis (panes hold ASCII-ish text)."""
    if width <= 0:
        return ""
    if len(text) <= width:
        return text
    return text[: width - 1] + "…"


def compact_number(value: float | None, unit: str = "") -> str:
    """``1234567`` -> ``1.2M``; units kept short so a pane line stays readable at 80 columns."""
    if value is None:
        return "-"
    if unit == "bytes":
        for suffix, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
            if abs(value) >= size:
                return f"{value / size:.1f}{suffix}"
        return f"{value:.0f}B"
    if unit == "%":
        return f"{value:.1f}%"
    if unit == "ms":
        return f"{value / 1000:.2f}s" if abs(value) >= 10_000 else f"{value:.0f}ms"
    for suffix, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= size:
            return f"{value / size:.1f}{suffix}{unit}"
    text = f"{value:.0f}" if float(value).is_integer() or abs(value) >= 100 else f"{value:.2g}"
    return text + unit


def sparkline_segments(
    values: Sequence[float],
    markers: Sequence[int],
    width: int,
    style: Style,
    marker_style: Style,
    empty_style: Style,
) -> list[Segment]:
    """The newest ``width`` samples as block characters; fault samples drawn as a marker.

    The scale starts at zero for non-negative series, so a flat line of small values does
    not look like a wildly varying one.
    """
    if width <= 0:
        return []
    shown = list(values[-width:])
    offset = len(values) - len(shown)
    pad = width - len(shown)
    segments: list[Segment] = []
    if pad:
        segments.append(Segment("·" * pad, empty_style))
    if not shown:
        return segments
    low = min(0.0, min(shown))
    high = max(shown)
    span = high - low
    top = len(SPARK_LEVELS) - 1
    if high > 0 and (high - min(shown)) <= 0.02 * high:
        # Steady (within 2%): a level line at mid height, not a solid block of full bars
        # that reads as "maxed out".
        span = 0.0
    marked = {m - offset for m in markers if m >= offset}
    run: list[str] = []
    for index, value in enumerate(shown):
        if index in marked:
            if run:
                segments.append(Segment("".join(run), style))
                run = []
            segments.append(Segment(MARKER, marker_style))
            continue
        level = int((value - low) / span * top + 0.5) if span > 0 else (top // 2 if high else 0)
        run.append(SPARK_LEVELS[max(0, min(top, level))])
    if run:
        segments.append(Segment("".join(run), style))
    return segments
