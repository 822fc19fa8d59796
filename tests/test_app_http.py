"""Pilot tests for the load keys (+, -, b) against a real HTTP session and embedded target."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from console.profile import load_profile_text
from console.ui.app import StressdeckApp, make_app
from tests.console_harness import key_faults, quit_app, session, until
from widgets import SessionGrid

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent

PROFILE = f"""
[run]
name = "console-http"
duration = "60s"

[[pty]]
name = "emit"
count = 1
command = ["{sys.executable}", "-m", "console", "emit", "--count", "0", "--rate", "20"]
cwd = "{ROOT}"

[[http]]
name = "api"
executor = "constant-arrival-rate"
rate = 20
pre_allocated_vus = 2
max_vus = 10
  [[http.steps]]
  request = {{ url = "/health" }}
"""


def scale(app: object, session_id: str) -> str:
    return dict(session(app, session_id).details)["scale"]  # type: ignore[arg-type]


async def test_rate_and_burst_keys_drive_the_http_load(tmp_path: Path) -> None:
    profile = load_profile_text(PROFILE, path=ROOT / "tests" / "console-http.toml")
    app = make_app(profile, runs_dir=tmp_path, duration=60.0, show_log=True)
    try:
        async with app.run_test(size=(120, 40)) as pilot:

            def http_running() -> bool:
                found = app.snapshot.session("api#0") if app.snapshot else None
                return found is not None and found.state == "running"

            await until(pilot, http_running, "the HTTP session running", timeout=15)
            assert app.query_one(SessionGrid).focused_id == "emit#0"
            before = scale(app, "api#0")

            await pilot.press("plus")  # a PTY pane is focused: the key applies to all HTTP
            await until(pilot, lambda: key_faults(app, "http.rate_up"), "http.rate_up")
            assert key_faults(app, "http.rate_up")[0].data["target"] == "all"
            await until(pilot, lambda: scale(app, "api#0") != before, "the rate raised")
            raised = scale(app, "api#0")

            await pilot.press("down")
            assert app.query_one(SessionGrid).focused_id == "api#0"
            await pilot.press("minus")
            await until(pilot, lambda: key_faults(app, "http.rate_down"), "http.rate_down")
            assert key_faults(app, "http.rate_down")[0].data["target"] == "api#0"
            await until(pilot, lambda: scale(app, "api#0") != raised, "the rate lowered")

            ran = iterations(app)
            await pilot.press("b")
            await until(pilot, lambda: key_faults(app, "http.burst"), "http.burst")
            await until(
                pilot, lambda: iterations(app) >= ran + 50, "the burst's extra iterations", 10
            )
            await quit_app(pilot, app)
    finally:
        assert app.controller is not None
        app.controller.stop()
        app.controller.result(timeout=20)


def iterations(app: StressdeckApp) -> int:
    """Iterations api#0 has run, as its detail view says."""
    return int(dict(session(app, "api#0").details)["iterations"])


def rate_set(app: object) -> float:
    """The group's held rate: the sum of its workers' shares (one worker per core here)."""
    total = 0.0
    for found in app.snapshot.sessions:  # type: ignore[attr-defined]
        if found.group == "api":
            text = dict(found.details).get("rate set", "")
            total += float(text.split("/")[0]) if text else 0.0
    return total


async def test_typed_absolute_rate_sets_the_groups_rate(tmp_path: Path) -> None:
    from textual.widgets import Input

    from tests.console_harness import record_notifications, snap
    from widgets import CommandLineScreen

    profile = load_profile_text(PROFILE, path=ROOT / "tests" / "console-http.toml")
    app = make_app(profile, runs_dir=tmp_path, duration=60.0, show_log=True)
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            told = record_notifications(app)

            def http_running() -> bool:
                found = app.snapshot.session("api#0") if app.snapshot else None
                return found is not None and found.state == "running"

            await until(pilot, http_running, "the HTTP session running", timeout=15)
            # out of bounds: refused with a reason, nothing recorded
            await pilot.press("colon", *"rate api 0", "enter")
            await until(pilot, lambda: any("above 0" in t for t in told), "refused 0")
            await pilot.press("colon", *"rate api 2000000", "enter")
            await until(pilot, lambda: sum("above 0" in t for t in told) == 2, "refused 2e6")
            await pilot.press("colon", *"rate emit 500", "enter")
            await until(pilot, lambda: any("does not apply to emit" in t for t in told), "emit")
            assert not snap(app).faults

            await pilot.press("colon", *"rate api ")
            box = app.screen.query_one(Input)
            await until(pilot, lambda: box._suggestion == "rate api +25%", "a change offered")
            await pilot.press("ctrl+u", *"rate api 500", "enter")
            await until(pilot, lambda: not isinstance(app.screen, CommandLineScreen), "closed")
            await until(pilot, lambda: bool(snap(app).faults), "the typed rate")
            (fault,) = snap(app).faults
            assert (fault.action, fault.target, fault.source) == ("http.set_rate", "api", "command")
            assert fault.params == {"rate": 500.0}
            await until(pilot, lambda: abs(rate_set(app) - 500.0) < 0.01, "every share held")
            before = iterations(app)
            await until(
                pilot,
                lambda: iterations(app) >= before + 300,
                "iterations at the new rate (20/s would take 15 s or more)",
                timeout=10,
            )
            await quit_app(pilot, app)
    finally:
        assert app.controller is not None
        app.controller.stop()
        app.controller.result(timeout=20)
