"""The console's own cost: process CPU and memory, engine loop lag and UI loop lag.

Shown because a stress console that distorts the timing it measures is worse than none:
if these numbers climb, the fault and reconnect timings on screen are suspect.
"""

from __future__ import annotations

from rich.text import Text

from console.snapshot import ConsoleStats
from widgets.lines import TextLines
from widgets.render import compact_number

__all__ = ["ConsoleStatsPanel"]


def _lag_style(ms: float) -> str:
    return "green" if ms < 20 else "yellow" if ms < 100 else "bold red"


class ConsoleStatsPanel(TextLines):
    DEFAULT_CSS = """
    ConsoleStatsPanel { height: 3; }
    """

    def show(self, stats: ConsoleStats | None, ui_lag_p99_ms: float | None) -> None:
        if stats is None:
            self.set_lines([Text("console stats pending", style="dim")])
            return
        first = Text("cpu ", style="dim")
        first.append(f"{stats.cpu_pct:.1f}%")
        first.append(" engine ", style="dim")
        first.append(f"{stats.engine_cpu_pct:.1f}%")
        first.append("  rss ", style="dim")
        first.append(compact_number(stats.rss_bytes, "bytes"))
        second = Text("engine lag ", style="dim")
        second.append(f"{stats.loop_lag_ms:.1f}ms", style=_lag_style(stats.loop_lag_ms))
        second.append(" p99 ", style="dim")
        second.append(f"{stats.loop_lag_p99_ms:.1f}ms", style=_lag_style(stats.loop_lag_p99_ms))
        third = Text("ui lag p99 ", style="dim")
        if ui_lag_p99_ms is None:
            third.append("-")
        else:
            third.append(f"{ui_lag_p99_ms:.1f}ms", style=_lag_style(ui_lag_p99_ms))
        self.set_lines([first, second, third])
