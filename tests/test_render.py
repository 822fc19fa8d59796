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
