"""Pilot test for the network-fault menu (w) on an SSH session behind a link, and link panes."""

from __future__ import annotations

from pathlib import Path

import pytest

from console.profile import load_profile_text
from console.ui.app import make_app
from tests.console_harness import key_faults, quit_app, snap
from tests.console_harness import until as wait_until

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent

PROFILE = """
[run]
name = "console-net"
duration = "60s"

[[links]]
name = "wan"

[[ssh]]
name = "pool[/x]"  # drawn as written: the menu's title once read it as markup and crashed
count = 1
target = "embedded"
via = "wan"
poll_interval = "1s"
intensity = "low"
backoff = "200ms"
"""


async def test_n_menu_adds_latency_and_a_second_press_removes_it(tmp_path: Path) -> None:
    profile = load_profile_text(PROFILE, path=ROOT / "tests" / "console-net.toml")
    app = make_app(profile, runs_dir=tmp_path, duration=60.0, show_log=True)
    try:
        async with app.run_test(size=(120, 40)) as pilot:

            def link_badges() -> tuple[str, ...]:
                link = snap(app).session("wan")
                return link.badges if link is not None else ()

            def ready() -> bool:
                s = app.snapshot
                return s is not None and all(x.state == "running" for x in s.sessions)

            await wait_until(pilot, ready, "the SSH session and its link up", timeout=20)
            assert snap(app).session("wan") is not None  # the link has its own pane
            await pilot.press("w")
            await pilot.press("2")  # latency 200 ms
            await wait_until(pilot, lambda: key_faults(app, "net.latency"), "net.latency")
            fault = key_faults(app, "net.latency")[0]
            assert fault.data["sessions"] == ["pool[/x]#0"] and fault.source == "key"
            await wait_until(pilot, lambda: "latency 200ms up" in link_badges(), "toxic shown")
            await pilot.press("w")
            await pilot.press("2")  # the same preset again: removed
            await wait_until(pilot, lambda: key_faults(app, "net.remove"), "net.remove")
            await wait_until(pilot, lambda: not link_badges(), "toxics gone")
            await quit_app(pilot, app)
    finally:
        assert app.controller is not None
        app.controller.stop()
        app.controller.result(timeout=20)
