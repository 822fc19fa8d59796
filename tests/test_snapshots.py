"""SVG snapshots of the console on a fixed synthetic run, at 80x24 and 160x48.

Determinism: the snapshot is built from fixed data (``tests/synthetic_run.py``), the app gets
a frozen clock (it only reads time for its own loop-lag probe and the detail screen's redraw
throttle) and nothing on screen shows wall-clock time. Review a changed SVG before running
``pytest --snapshot-update``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from console.ui.app import StressdeckApp, make_app
from tests.synthetic_run import synthetic_snapshot

SnapCompare = Callable[..., bool]


def frozen() -> float:
    return 1_000.0


def console(show_log: bool, **counts: int) -> StressdeckApp:
    return make_app(snapshot=synthetic_snapshot(**counts), show_log=show_log, clock=frozen)


def test_console_80x24_compact(snap_compare: SnapCompare) -> None:
    assert snap_compare(console(False, ssh=4, pty=8, http=4), terminal_size=(80, 24))


def test_console_160x48(snap_compare: SnapCompare) -> None:
    assert snap_compare(console(True), terminal_size=(160, 48), press=["right", "j"])


def test_detail_160x48(snap_compare: SnapCompare) -> None:
    assert snap_compare(console(False), terminal_size=(160, 48), press=["enter"])


def test_help_80x24(snap_compare: SnapCompare) -> None:
    assert snap_compare(console(False), terminal_size=(80, 24), press=["question_mark"])


def test_event_log_filtered_160x48(snap_compare: SnapCompare) -> None:
    async def filter_by_session(pilot: Any) -> None:
        await pilot.press("l", "l", "l", "f", "f")

    assert snap_compare(console(True), terminal_size=(160, 48), run_before=filter_by_session)
