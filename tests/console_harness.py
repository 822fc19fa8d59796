"""Helpers for the console's Pilot tests: a real PTY profile and polling on the UI loop."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual.pilot import Pilot

from console.profile import Profile, load_profile_text
from console.snapshot import RunSnapshot, SessionSnapshot
from console.ui.app import StressdeckApp, make_app

ROOT = Path(__file__).resolve().parent.parent


def pty_profile(count: int = 2, *, keys: str = "", duration: str = "60s") -> Profile:
    """``count`` emit programs at 50 lines/s that restart 100 ms after a crash."""
    command = [sys.executable, "-m", "console", "emit", "--count", "0", "--rate", "50"]
    argv = ", ".join(f'"{part}"' for part in [*command, "--size", "64"])
    text = f"""
[run]
name = "console-keys"
duration = "{duration}"

[[pty]]
name = "emit"
count = {count}
command = [{argv}]
cwd = "{ROOT}"
restart = "on-crash"
backoff = "100ms"
{keys}
"""
    return load_profile_text(text, path=ROOT / "tests" / "console-keys.toml")


def real_app(tmp_path: Path, profile: Profile | None = None) -> StressdeckApp:
    return make_app(profile or pty_profile(), runs_dir=tmp_path, duration=60.0, show_log=True)


async def until(
    pilot: Pilot[Any], predicate: Callable[[], object], what: str, timeout: float = 8.0
) -> None:
    """Let the UI loop run until ``predicate()`` is true; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        await pilot.pause(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def snap(app: StressdeckApp) -> RunSnapshot:
    assert app.snapshot is not None
    return app.snapshot


def session(app: StressdeckApp, session_id: str) -> SessionSnapshot:
    found = snap(app).session(session_id)
    assert found is not None, session_id
    return found


def key_faults(app: StressdeckApp, action: str) -> list[Any]:
    """Fault events from keys for ``action`` in the latest snapshot."""
    return [
        e
        for e in snap(app).recent_events
        if e.event == "fault_injected" and e.source == "key" and e.data.get("action") == action
    ]


def events_named(app: StressdeckApp, name: str, session_id: str) -> list[Any]:
    return [e for e in snap(app).recent_events if e.event == name and e.session_id == session_id]


async def running(pilot: Pilot[Any], app: StressdeckApp, count: int = 2) -> None:
    def ready() -> bool:
        s = app.snapshot
        return s is not None and sum(1 for x in s.sessions if x.state == "running") >= count

    await until(pilot, ready, f"{count} running sessions")


def record_notifications(app: StressdeckApp) -> list[str]:
    """Wrap ``app.notify`` so a test can read what the operator was told."""
    seen: list[str] = []
    original = app.notify

    def notify(message: str, **kwargs: Any) -> None:
        seen.append(message)
        original(message, **kwargs)

    app.notify = notify  # type: ignore[method-assign]
    return seen


async def quit_app(pilot: Pilot[Any], app: StressdeckApp) -> None:
    await pilot.press("q")
    await until(pilot, lambda: type(app.screen).__name__ == "QuitScreen", "the quit dialog")
    await pilot.press("y")
    await until(pilot, lambda: app.run_result is not None, "the graceful stop", timeout=15)
