"""The live per-request table (Locust's statistics) in the real console, against a real HTTP
session and the embedded target: in an HTTP session's detail screen for its group, and on the
run's Requests screen (``t``). Built only while such a screen is open."""

from __future__ import annotations

from concurrent.futures import Future
from pathlib import Path

import pytest

from console.profile import load_profile_text
from console.snapshot import RunTables
from console.ui.app import make_app
from tests.console_harness import quit_app, until
from widgets import RequestsScreen, SessionDetailScreen, TextLines

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent

PROFILE = """
[run]
name = "console-requests"
duration = "60s"

[[http]]
name = "api"
executor = "constant-arrival-rate"
rate = 40
pre_allocated_vus = 2
max_vus = 10
  [[http.steps]]
  name = "health"
  request = { url = "/health" }
  checks = [{ name = "status is 200", status = 200 }]
"""


def requests_of(panel: TextLines, name: str) -> int:
    """The Requests cell of the row named ``name`` (Type, Name, Requests, ...); 0 if absent."""
    for line in panel.plain.splitlines():
        cells = line.split()
        if name in cells[:3]:
            return int(cells[cells.index(name) + 1])
    return 0


async def test_the_request_table_is_live_in_the_detail_and_requests_screens(
    tmp_path: Path,
) -> None:
    profile = load_profile_text(PROFILE, path=ROOT / "tests" / "console-requests.toml")
    app = make_app(profile, runs_dir=tmp_path, duration=60.0, show_log=False)
    assert app.controller is not None
    asked: list[Future[RunTables]] = []
    real = app.controller.tables

    def tables() -> Future[RunTables]:
        asked.append(real())
        return asked[-1]

    app.controller.tables = tables  # type: ignore[method-assign]
    try:
        async with app.run_test(size=(120, 40)) as pilot:

            def http_running() -> bool:
                found = app.snapshot.session("api#0") if app.snapshot else None
                return found is not None and found.state == "running"

            await until(pilot, http_running, "the HTTP session running", timeout=15)
            await pilot.pause(1.2)
            assert not asked  # no screen shows the tables: the engine builds none

            await pilot.press("enter")
            await until(pilot, lambda: isinstance(app.screen, SessionDetailScreen), "detail")
            panel = app.screen.query_one("#detail-requests", TextLines)
            await until(pilot, lambda: requests_of(panel, "health") > 0, "a row for health")
            first = requests_of(panel, "health")
            await until(pilot, lambda: requests_of(panel, "health") > first, "the count grows")
            assert "✓ status is 200" in panel.plain
            await pilot.press("escape")
            await until(pilot, lambda: not isinstance(app.screen, SessionDetailScreen), "back")

            await pilot.press("t")
            await until(pilot, lambda: isinstance(app.screen, RequestsScreen), "Requests")
            body = app.screen.query_one("#requests-body", TextLines)
            await until(pilot, lambda: requests_of(body, "health") > 0, "a row for health")
            first = requests_of(body, "health")
            await until(pilot, lambda: requests_of(body, "health") > first, "the count grows")
            assert "Aggregated" in body.plain
            assert "scenarios: 1 scenario" in body.plain
            await pilot.press("t")
            await until(pilot, lambda: not isinstance(app.screen, RequestsScreen), "closed")

            # Closed: no more requests, whatever the snapshots do.
            await pilot.pause(0.3)
            count = len(asked)
            await pilot.pause(1.5)
            assert len(asked) == count
            await quit_app(pilot, app)
    finally:
        app.controller.stop()
        app.controller.result(timeout=20)
