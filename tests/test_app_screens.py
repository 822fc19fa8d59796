"""Pilot tests for moving around the console: focus keys, detail, help, event log, keymaps."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from textual.widgets import Static

from console.bindings import check_keymap
from console.ui.app import StressdeckApp, closing_text, make_app
from tests.console_harness import (
    events_named,
    key_faults,
    pty_profile,
    quit_app,
    real_app,
    running,
    until,
)
from tests.synthetic_run import synthetic_snapshot
from widgets import EventLogPanel, HelpScreen, RunHeader, SessionDetailScreen, SessionGrid


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[StressdeckApp]:
    console = real_app(tmp_path)
    yield console
    assert console.controller is not None
    console.controller.stop()
    console.controller.result(timeout=15)


async def test_arrows_and_hjkl_move_the_focus_between_panes() -> None:
    app = make_app(snapshot=synthetic_snapshot(ssh=3, pty=5, http=2), show_log=False)
    async with app.run_test(size=(160, 40)) as pilot:  # three panes a row
        grid = app.query_one(SessionGrid)
        assert grid.focused_id == "ssh#0"  # SSH first, then PTY, then HTTP
        await pilot.press("right")
        assert grid.focused_id == "ssh#1"
        await pilot.press("l", "l")
        assert grid.focused_id == "emit#0"  # right wraps onto the next row
        await pilot.press("h")
        assert grid.focused_id == "ssh#2"
        await pilot.press("j")  # down: same column in the row below
        assert grid.focused_id == "emit#2"
        await pilot.press("down", "down")
        assert grid.focused_id == "upload#1"
        await pilot.press("k")
        assert grid.focused_id == "emit#4"
        await pilot.press("up")  # the column of the pane left, the shorter row's last
        assert grid.focused_id == "emit#1"
        await pilot.press("left")
        assert grid.focused_id == "emit#0"
        await pilot.press("end")
        assert grid.focused_id == "upload#1"
        await pilot.press("home")
        assert grid.focused_id == "ssh#0"


async def test_compact_panes_when_the_normal_ones_do_not_fit() -> None:
    app = make_app(snapshot=synthetic_snapshot(ssh=10, pty=20, http=10), show_log=False)
    async with app.run_test(size=(80, 24)) as pilot:
        grid = app.query_one(SessionGrid)
        assert grid.is_compact
        await pilot.press("end")
        assert grid.focused_id == "upload#9"
        assert grid.scroll_offset.y > 0  # scrolled to keep the focus visible
    app = make_app(snapshot=synthetic_snapshot(ssh=1, pty=2, http=1), show_log=False)
    async with app.run_test(size=(160, 48)):
        assert not app.query_one(SessionGrid).is_compact


@pytest.mark.slow  # a real run behind the console
async def test_detail_screen_shows_charts_counters_and_real_output(live: StressdeckApp) -> None:
    async with live.run_test(size=(120, 40)) as pilot:
        await running(pilot, live)
        await pilot.press("right")  # focus emit#1
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(live.screen, SessionDetailScreen), "detail")
        screen = live.screen
        assert isinstance(screen, SessionDetailScreen) and screen.session_id == "emit#1"

        def output() -> str:
            return str(screen.query_one("#detail-terminal", Static).render())

        await until(pilot, lambda: "SDE " in output(), "emit lines through pyte", timeout=5)
        charts = str(screen.query_one("#detail-chart-body", Static).render())
        assert "┤" in charts  # a plotext axis
        counters = screen.query_one("#detail-counters").plain  # type: ignore[attr-defined]
        assert "verified lines" in counters and "pid" in counters
        # fault keys act on the session shown
        await pilot.press("ctrl+k")
        await until(pilot, lambda: key_faults(live, "pty.kill"), "pty.kill from the detail")
        assert key_faults(live, "pty.kill")[0].data["sessions"] == ["emit#1"]
        await until(pilot, lambda: "crashed" in screen.query_one("#detail-events").plain, "event")  # type: ignore[attr-defined]
        await pilot.press("escape")
        assert not isinstance(live.screen, SessionDetailScreen)
        await quit_app(pilot, live)


@pytest.mark.slow  # a real run behind the console
async def test_event_log_toggles_and_filters_by_kind_and_session(live: StressdeckApp) -> None:
    async with live.run_test(size=(120, 40)) as pilot:
        await running(pilot, live)
        log = live.query_one(EventLogPanel)
        assert log.display
        await pilot.press("e")
        assert not log.display
        await pilot.press("e")
        assert log.display
        await until(pilot, lambda: any("run_started" in s.text for s in log.lines), "run event")

        await pilot.press("f")
        assert log.log_filter == ("kind", "pty")
        assert not any("run_started" in s.text for s in log.lines)
        await pilot.press("f")
        assert log.log_filter == ("session", "emit#0")
        await pilot.press("right", "ctrl+k")  # kill emit#1: the filtered log follows the focus
        await until(pilot, lambda: key_faults(live, "pty.kill"), "pty.kill")
        assert log.log_filter == ("session", "emit#1")
        await until(pilot, lambda: any("crashed" in s.text for s in log.lines), "crash shown")
        assert all("emit#1" in s.text for s in log.lines if s.text.strip())
        await pilot.press("f")
        assert log.log_filter == ("all", "")
        await quit_app(pilot, live)


@pytest.mark.slow  # a real run behind the console
async def test_help_lists_every_key_and_the_palette_offers_them(live: StressdeckApp) -> None:
    async with live.run_test(size=(120, 40)) as pilot:
        await running(pilot, live)
        await pilot.press("question_mark")
        assert isinstance(live.screen, HelpScreen)
        ids = {entry.binding_id for entry in live.screen.keys}
        assert {"kill", "kill_all", "hang", "restart", "pause", "export", "quit"} <= ids
        assert "drop" not in ids and "burst" not in ids  # PTY only: no SSH drop, no HTTP load
        assert {"grid.up", "grid.down", "log", "filter", "detail"} <= ids
        # fault keys are disabled under a modal: ctrl+k does nothing while help is open
        await pilot.press("ctrl+k")
        await pilot.press("escape")
        assert not isinstance(live.screen, HelpScreen)
        # a positive signal first: ctrl+k on the grid kills; had it killed under help, two would
        await pilot.press("ctrl+k")
        await until(pilot, lambda: key_faults(live, "pty.kill"), "kill on the grid")
        assert len(key_faults(live, "pty.kill")) == 1
        # the palette's side of it is tests/test_app_palette.py, driven by typing
        await quit_app(pilot, live)


@pytest.mark.slow  # a real run behind the console
async def test_profile_keys_remap_bindings(tmp_path: Path) -> None:
    keys = '[keys]\nkill = "ctrl+x"\n"grid.right" = "n"\nexport = "ctrl+e"\n'
    profile = pty_profile(keys=keys)
    assert check_keymap(profile.keys) == []
    app = make_app(profile, runs_dir=tmp_path, duration=60.0)
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await running(pilot, app)
            await pilot.press("ctrl+k")  # the old key no longer kills
            await pilot.press("n", "ctrl+x")
            await until(pilot, lambda: key_faults(app, "pty.kill"), "kill on ctrl+x")
            # keys are handled in order: a kill from ctrl+k would have come first, on emit#0
            assert [f.data["sessions"] for f in key_faults(app, "pty.kill")] == [["emit#1"]]
            await until(pilot, lambda: events_named(app, "crashed", "emit#1"), "emit#1 killed")
            await quit_app(pilot, app)
    finally:
        assert app.controller is not None
        app.controller.stop()
        app.controller.result(timeout=15)


@pytest.mark.slow  # a real run behind the console
async def test_a_run_that_ends_by_itself_waits_for_the_operator(tmp_path: Path) -> None:
    app = make_app(pty_profile(duration="1500ms"), runs_dir=tmp_path, show_log=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: app.snapshot and app.snapshot.state == "finished", "the end")
        header = app.query_one(RunHeader).plain
        assert "FINISHED" in header and "q to exit" in header
        assert app.is_running  # the console stays open on the final numbers
        await quit_app(pilot, app)
    result = app.run_result
    assert result is not None and result.exit_code == 0
    summary = closing_text(result)
    assert "Stressdeck run 'console-keys': finished" in summary
    assert f"run directory: {result.run_dir}" in summary


def test_every_fault_source_has_a_mark_in_the_faults_panel() -> None:
    from console.snapshot import FAULT_SOURCES
    from widgets.faults import SOURCE_MARKS

    assert set(SOURCE_MARKS) == set(FAULT_SOURCES)


async def test_the_terminal_box_is_for_sessions_with_a_terminal() -> None:
    """An HTTP session has no output to replay: its detail showed an empty terminal box."""
    app = make_app(snapshot=synthetic_snapshot(ssh=1, pty=1, http=1), show_log=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("end", "enter")
        await until(pilot, lambda: isinstance(app.screen, SessionDetailScreen), "the detail")
        assert app.screen.session_id == "upload#0"  # type: ignore[attr-defined]
        assert not app.screen.query_one("#detail-terminal").display
        charts = app.screen.query_one("#detail-charts")
        assert charts.region.bottom >= 38  # the charts take the room the box had
        await pilot.press("escape", "home", "enter")
        await until(pilot, lambda: isinstance(app.screen, SessionDetailScreen), "the detail")
        assert app.screen.session_id == "ssh#0"  # type: ignore[attr-defined]
        assert app.screen.query_one("#detail-terminal").display


async def test_few_sessions_get_fewer_wider_panes_and_whole_counters() -> None:
    """Four sessions at 200x60 sat in a corner, their counters cut mid-word (``c…``)."""
    from dataclasses import replace

    snapshot = synthetic_snapshot(ssh=1, pty=2, http=1)
    http = snapshot.sessions[-1]
    counters = (
        ("p95", "1.2ms"),
        ("probes", "etag✓ cb✓ bp✓ rec✓"),
        ("score", "100/100"),
        ("VUs busy", "0/5 allocated"),
        ("err", "timeout 3 reset 1"),
    )
    wide = replace(snapshot, sessions=(*snapshot.sessions[:-1], replace(http, counters=counters)))
    app = make_app(snapshot=wide, show_log=False)
    async with app.run_test(size=(200, 60)) as pilot:
        await pilot.pause()
        grid = app.query_one(SessionGrid)
        width = grid.scrollable_content_region.width
        boxes = grid._boxes
        assert boxes["emit#0"].left == 0 and boxes["emit#1"].left > width // 3  # two columns
        pane = boxes["emit#0"].width
        assert pane >= 60 and not grid.is_compact
        assert boxes["upload#0"].width == width  # alone in its row: the whole width
        lines = [strip.text for strip in grid._lines]
        http_lines = lines[boxes["upload#0"].top : boxes["upload#0"].top + 6]
        assert any("err timeout 3 reset 1" in line for line in http_lines), "\n".join(http_lines)
        assert not any("…" in line for line in http_lines), http_lines
    many = make_app(snapshot=synthetic_snapshot(ssh=10, pty=20, http=10), show_log=False)
    async with many.run_test(size=(200, 60)) as pilot:
        await pilot.pause()
        grid = many.query_one(SessionGrid)
        most = (grid.scrollable_content_region.width + 1) // 35  # PANE_MIN_WIDTH and a gutter
        assert grid._cols == most and grid.is_compact  # forty: as many as fit, as before


async def test_the_event_log_keeps_a_few_screens_of_rendered_lines_not_a_thousand() -> None:
    """On a soak the log only grows: every line it drew stayed cached (1,024 Strips)."""
    from console.events import Event
    from widgets.event_log import LINE_CACHE

    app = make_app(snapshot=synthetic_snapshot(ssh=1, pty=1, http=1), show_log=True)
    async with app.run_test(size=(120, 40)) as pilot:
        panel = app.query_one(EventLogPanel)
        for start in range(0, 3 * LINE_CACHE, 4):
            events = [Event(ts=f"2026-01-01T00:00:{i % 60:02d}", session_id="emit#0", host=None,
                            event="output", detail=f"line {i}") for i in range(start, start + 4)]  # fmt: skip
            panel.show(events)
            await pilot.pause(0.01)  # drawn, so cached
        assert f"line {3 * LINE_CACHE - 1}" in panel.lines[-1].text
        # RichLog's own cache, bounded here, and filled: the lines were drawn
        assert LINE_CACHE // 2 <= len(panel._line_cache) <= LINE_CACHE


async def test_a_group_name_with_brackets_is_drawn_as_written_in_the_detail() -> None:
    """The requests panel's border title is markup to Textual: a group named ``api[/x]``
    (a name the profile accepts) raised MarkupError and took the console down."""
    from dataclasses import replace

    base = synthetic_snapshot(ssh=0, pty=0, http=1)
    sessions = tuple(replace(s, group="api[/x]") for s in base.sessions)
    ended = replace(base, sessions=sessions, ended_at="2026-01-01T00:00:00+00:00")
    app = make_app(snapshot=ended, show_log=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, SessionDetailScreen), "the detail")
        panel = app.screen.query_one("#detail-requests")
        await until(pilot, lambda: panel.display, "the requests panel")
        await pilot.pause()
        assert panel.border_title == r"requests · api\[/x]"  # literal text, as markup


def test_a_long_criterion_name_wraps_under_itself_not_cut() -> None:
    from console.snapshot import CriterionSnapshot
    from widgets.criteria import criterion_lines

    criterion = CriterionSnapshot(
        name="dropped SSH sessions back within 15 s of every drop",
        expression="",
        metric="m",
        scope="recovery",
        state="pass",
        value=1.0,
        value_text="100%",
        target_text=">= 90% within 15s",
        abort_on_fail=False,
        flips=(),
        evidence="",
    )
    lines = [line.plain for line in criterion_lines(criterion, 40)]
    assert all(len(line) <= 40 for line in lines), lines
    assert " ".join(" ".join(lines).split()) == (
        "✓ PASS dropped SSH sessions back within 15 s of every drop 100% (target >= 90% within 15s)"
    )
    assert all(line.startswith("       ") for line in lines[1:])  # under the name


def test_a_word_longer_than_the_line_is_folded_not_split_into_words() -> None:
    """The lines after the first were the first wrap's lines joined with spaces and wrapped
    again: a folded word became two words, each folded again (4 lines of 14, 6, 14, 6 cells
    for a 40-character word at 20, and a space inside the word where the pieces met)."""
    from rich.text import Text

    from widgets.lines import wrapped

    word = "x" * 40
    lines = wrapped(Text(f"    back after 11.5 s {word}", style="dim"), 20, 6)
    assert all(line.cell_len <= 20 for line in lines)
    assert [line.plain.strip() for line in lines[2:]] == ["x" * 14, "x" * 14, "x" * 12]
    assert all(line.style == "dim" or line.spans for line in lines)  # styles kept
