"""Pilot tests: every fault key against real PTY sessions (``stressdeck emit`` programs).

Each test presses a key in the console and checks two things the operator relies on: the
fault reached the engine as an event with source ``key`` (what ends up in events.jsonl), and
the session's state changed as the fault says it should.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path

import pytest

from console.ui.app import StressdeckApp
from tests.console_harness import (
    events_named,
    key_faults,
    pty_profile,
    quit_app,
    real_app,
    record_notifications,
    running,
    session,
    snap,
    until,
)
from widgets import ConfirmScreen, SessionGrid

pytestmark = pytest.mark.slow


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[StressdeckApp]:
    console = real_app(tmp_path)
    yield console
    assert console.controller is not None
    console.controller.stop()
    console.controller.result(timeout=15)  # every PTY child reaped before the next test


async def test_kill_hang_resume_restart_on_the_focused_pane(app: StressdeckApp) -> None:
    async with app.run_test(size=(120, 40)) as pilot:
        await running(pilot, app)
        assert app.query_one(SessionGrid).focused_id == "emit#0"

        # K is shift+k, and k is "up": a slip must not SIGKILL anything (it did once)
        await pilot.press("K")
        await pilot.pause(0.3)
        assert not key_faults(app, "pty.kill")
        await pilot.press("ctrl+k")  # k9s's kill
        await until(pilot, lambda: key_faults(app, "pty.kill"), "a pty.kill fault event")
        await until(pilot, lambda: events_named(app, "crashed", "emit#0"), "emit#0 crashed")
        await until(pilot, lambda: session(app, "emit#0").state == "running", "emit#0 back")
        pane = session(app, "emit#0")
        assert dict(pane.details)["crashes"] == "1"
        await until(pilot, lambda: pane_marked(app, "emit#0"), "a fault marker on the sparkline")

        await pilot.press("z")
        await until(pilot, lambda: session(app, "emit#0").state == "hung", "emit#0 hung")
        assert key_faults(app, "pty.hang")
        await pilot.press("z")
        await until(pilot, lambda: session(app, "emit#0").state == "running", "emit#0 resumed")
        # Resuming is not a fault: the second z ends the hang, recorded as the hang's end.
        assert not key_faults(app, "pty.resume")
        await until(pilot, lambda: events_named(app, "fault_ended", "emit#0"), "the hang ended")
        (hang,) = [f for f in snap(app).faults if f.action == "pty.hang"]
        assert hang.ended_by == "pty.resume" and hang.duration is not None

        before = dict(session(app, "emit#0").details)["pid"]
        await pilot.press("r")
        await until(pilot, lambda: key_faults(app, "pty.restart"), "a pty.restart fault event")
        await until(
            pilot,
            lambda: dict(session(app, "emit#0").details)["pid"] not in (before, "-"),
            "a new emit#0 process",
        )
        recorded = {f.action: f.source for f in snap(app).faults}
        assert {"pty.kill", "pty.hang", "pty.restart"} <= set(recorded)
        assert all(source == "key" for source in recorded.values())
        # the other pane was never touched
        assert dict(session(app, "emit#1").details)["crashes"] == "0"
        await quit_app(pilot, app)

    run_dir = Path(snap(app).run_dir)
    logged = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    keyed = {
        e["data"]["action"]
        for e in logged
        if e.get("source") == "key" and e["event"] == "fault_injected"
    }
    assert keyed == {"pty.kill", "pty.hang", "pty.restart"}
    (end,) = [e for e in logged if e["event"] == "fault_ended"]
    assert end["source"] == "key" and end["data"]["ended_by"] == "pty.resume"


def pane_marked(app: StressdeckApp, session_id: str) -> bool:
    series = session(app, session_id).series
    return bool(series and series[0].markers)


async def test_all_variants_reach_every_session(app: StressdeckApp) -> None:
    async with app.run_test(size=(120, 40)) as pilot:
        await running(pilot, app)
        await pilot.press("alt+k")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "asked first")
        await pilot.press("y")  # asked once: the next alt+k goes straight through
        await until(pilot, lambda: key_faults(app, "pty.kill"), "pty.kill on all")
        assert key_faults(app, "pty.kill")[0].data["sessions"] == ["emit#0", "emit#1"]
        for sid in ("emit#0", "emit#1"):
            await until(pilot, partial(events_named, app, "crashed", sid), f"{sid} crashed")
        await running(pilot, app)

        await pilot.press("Z")
        await until(
            pilot,
            lambda: all(s.state == "hung" for s in snap(app).sessions),
            "every session hung",
        )
        await pilot.press("Z")
        await until(
            pilot,
            lambda: all(s.state == "running" for s in snap(app).sessions),
            "every session resumed",
        )

        await pilot.press("R")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "asked first")
        await pilot.press("n")  # no: nothing happens
        await pilot.pause(0.3)
        assert not key_faults(app, "pty.restart")
        await pilot.press("R", "y")
        await until(pilot, lambda: key_faults(app, "pty.restart"), "pty.restart on all")

        def started_thrice(session_id: str) -> bool:
            return len(events_named(app, "started", session_id)) >= 3

        for sid in ("emit#0", "emit#1"):
            await until(pilot, partial(started_thrice, sid), f"{sid} started again")
        await quit_app(pilot, app)
    assert app.return_value == app.run_result.exit_code


async def test_keys_that_do_not_apply_say_so(app: StressdeckApp) -> None:
    async with app.run_test(size=(120, 40)) as pilot:
        told = record_notifications(app)
        await running(pilot, app)
        # A PTY-only run: drop and the HTTP rate keys apply to no session, N has no cluster.
        for key in ("d", "D", "plus", "minus", "b", "N"):
            await pilot.press(key)
        await until(pilot, lambda: len(told) >= 6, f"six notifications, got {told}")
        # Hidden from the footer (no SSH, no HTTP in this run), and still saying so.
        assert told.count("no session in this run accepts drop") == 2
        assert "no session in this run accepts rate_up" in told
        assert "no session in this run accepts rate_down" in told
        assert "no session in this run accepts burst" in told
        assert "this run has no cluster" in told  # N: only a cluster run has nodes to remove
        assert not [e for e in snap(app).recent_events if e.event == "fault_injected"]

        await quit_app(pilot, app)


async def test_pause_export_and_quit_writes_the_final_snapshot(app: StressdeckApp) -> None:
    async with app.run_test(size=(120, 40)) as pilot:
        told = record_notifications(app)
        await running(pilot, app)
        await pilot.press("p")
        await until(pilot, lambda: snap(app).state == "paused", "the run paused")
        paused_at = snap(app).elapsed
        await pilot.pause(0.6)
        assert snap(app).elapsed == pytest.approx(paused_at, abs=0.05)
        await pilot.press("p")
        await until(pilot, lambda: snap(app).state == "running", "the run resumed")

        await pilot.press("x")
        await until(pilot, lambda: any(t.startswith("exported") for t in told), "export")
        run_dir = Path(snap(app).run_dir)
        note = next(t for t in told if t.startswith("exported"))
        assert str(run_dir) in note
        assert (run_dir / "snapshot-1.json").exists()
        assert (run_dir / "report.md").exists()
        assert (run_dir / "junit.xml").exists()

        await pilot.press("q")
        await until(pilot, lambda: type(app.screen).__name__ == "QuitScreen", "quit dialog")
        await pilot.press("n")
        await until(pilot, lambda: type(app.screen).__name__ != "QuitScreen", "dialog closed")
        seq = snap(app).seq
        await until(pilot, lambda: snap(app).seq > seq, "a newer snapshot")
        assert app.run_result is None and snap(app).state == "running"
        await quit_app(pilot, app)
    assert app.run_result is not None
    assert app.run_result.snapshot.state in ("finished", "aborted")
    finals = list(Path(app.run_result.run_dir).glob("snapshot*.json"))
    assert len(finals) >= 2, finals  # the export and the final one


async def test_a_profile_can_make_bulk_keys_act_without_asking(tmp_path: Path) -> None:
    profile = pty_profile(keys="[console]\nconfirm_bulk = false\n")
    console = real_app(tmp_path, profile)
    try:
        async with console.run_test(size=(120, 40)) as pilot:
            await running(pilot, console)
            await pilot.press("alt+k")  # no dialog: straight to every session
            await until(pilot, lambda: key_faults(console, "pty.kill"), "pty.kill on all")
            assert not isinstance(console.screen, ConfirmScreen)
            assert key_faults(console, "pty.kill")[0].data["sessions"] == ["emit#0", "emit#1"]
            await quit_app(pilot, console)
    finally:
        assert console.controller is not None
        console.controller.stop()
        console.controller.result(timeout=15)
