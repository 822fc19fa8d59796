"""Pane drawing helpers: a steady sparkline is a level line, not a solid block."""

from __future__ import annotations

from rich.style import Style

from widgets.render import sparkline_segments


def _spark(values: list[float]) -> str:
    plain = Style()
    return "".join(s.text for s in sparkline_segments(values, [], len(values), plain, plain, plain))


def test_a_steady_series_is_a_level_line_at_mid_height() -> None:
    assert _spark([200.0] * 8) == "▄" * 8
    assert _spark([200.0, 201.0, 199.0, 200.0]) == "▄" * 4  # within 2%: steady
    assert "█" in _spark([0.0, 50.0, 100.0])  # a real change still spans the scale
    assert _spark([0.0] * 4) == "▁" * 4


def test_counts_never_plot_below_zero() -> None:
    """A flat 0 errors/s drew an axis from -1.0 to 1.0: counts cannot be negative."""
    from console.snapshot import SeriesView
    from widgets.detail import chart_text

    for values in ([0.0] * 30, [0.0, 0.0, 3.0, 0.0] * 5):
        chart = chart_text(SeriesView("errors/s", "", tuple(values), ()), 60, 10, 30.0).plain
        ticks = [line.split("┤")[0].strip() for line in chart.splitlines() if "┤" in line]
        assert ticks and not any(t.startswith("-") for t in ticks), chart
        assert float(ticks[-1]) == 0.0  # the lowest tick is the floor
