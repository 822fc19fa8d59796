"""Pilot tests for the SSH keys (d, D, r) against real sessions on the embedded SSH server."""

from __future__ import annotations

from pathlib import Path

import pytest

from console.profile import load_profile_text
from console.ui.app import make_app
from tests.console_harness import events_named, key_faults, quit_app, record_notifications, snap
from tests.console_harness import until as wait_until

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent

PROFILE = """
[run]
name = "console-ssh"
duration = "60s"

[[ssh]]
name = "pool"
count = 2
target = "embedded"
poll_interval = "1s"
pty_interval = "300ms"
backoff = "200ms"
jitter = "0%"
"""


async def test_drop_keys_disconnect_and_the_sessions_come_back(tmp_path: Path) -> None:
    profile = load_profile_text(PROFILE, path=ROOT / "tests" / "console-ssh.toml")
    app = make_app(profile, runs_dir=tmp_path, duration=60.0, show_log=True)
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            told = record_notifications(app)

            def all_running() -> bool:
                s = app.snapshot
                return (
                    s is not None
                    and all(x.state == "running" for x in s.sessions)
                    and (len(s.sessions) == 2)
                )

            await wait_until(pilot, all_running, "both SSH sessions connected", timeout=20)
            await pilot.press("d")
            await wait_until(pilot, lambda: key_faults(app, "ssh.drop"), "ssh.drop from d")
            assert key_faults(app, "ssh.drop")[0].data["sessions"] == ["pool#0"]
            await wait_until(
                pilot, lambda: events_named(app, "reconnected", "pool#0"), "pool#0 reconnected"
            )
            assert not events_named(app, "reconnected", "pool#1")

            await pilot.press("D", "y")  # asked once
            await wait_until(pilot, lambda: len(key_faults(app, "ssh.drop")) == 2, "drop all")
            assert key_faults(app, "ssh.drop")[1].data["sessions"] == ["pool#0", "pool#1"]
            await wait_until(
                pilot, lambda: events_named(app, "reconnected", "pool#1"), "pool#1 reconnected"
            )
            await wait_until(pilot, all_running, "both back", timeout=20)

            # SIGKILL is for PTY programs: in an SSH-only run ctrl+k is not in the footer (it
            # shows the keys that apply to the run's kinds), and pressed, it says so.
            await pilot.press("ctrl+k")
            await wait_until(pilot, lambda: "accepts kill" in told[-1], "a notification")
            assert told[-1] == "no session in this run accepts kill"
            assert not key_faults(app, "pty.kill")
            assert all(f.source == "key" for f in snap(app).faults)
            await quit_app(pilot, app)
    finally:
        assert app.controller is not None
        app.controller.stop()
        app.controller.result(timeout=20)
