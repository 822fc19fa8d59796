"""End to end: the INSTALLED ``stressdeck`` command in a real terminal (tmux).

Starts ``stressdeck run PROFILE`` in a private tmux server (its own socket, so other tmux
users on the machine are never touched), sends keys as a person would (kill, export, help,
quit) and checks both the screen (``capture-pane``) and the files in the run directory.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
# The installed command: on PATH, or beside this interpreter (where pip puts scripts, which
# a version manager's shims may not have picked up yet).
_BESIDE = Path(sys.executable).with_name("stressdeck")
COMMAND = shutil.which("stressdeck") or (str(_BESIDE) if _BESIDE.exists() else None)


class Tmux:
    def __init__(self, socket: str) -> None:
        self.socket = socket

    def __call__(self, *args: str) -> str:
        done = subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, timeout=10
        )
        return done.stdout

    def screen(self) -> str:
        return self("capture-pane", "-p", "-t", "console")

    def keys(self, *keys: str) -> None:
        self("send-keys", "-t", "console", *keys)

    def wait(self, predicate: Callable[[str], object], what: str, timeout: float = 15.0) -> str:
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            if predicate(screen):
                return screen
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}; screen was:\n{screen}")


@pytest.fixture
def tmux() -> Iterator[Tmux]:
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed (apt-get install tmux)")
    if COMMAND is None:
        pytest.skip("the stressdeck command is not on PATH (pip install .)")
    server = Tmux(f"stressdeck-e2e-{uuid.uuid4().hex[:8]}")
    try:
        yield server
    finally:
        server("kill-server")  # our private server only


def write_profile(path: Path) -> Path:
    argv = [sys.executable, "-m", "console", "emit", "--count", "0", "--rate", "40"]
    command = ", ".join(f'"{a}"' for a in [*argv, "--size", "64"])
    path.write_text(
        f"""[run]
name = "e2e-console"
duration = "90s"

[[pty]]
name = "emit"
count = 2
command = [{command}]
cwd = "{ROOT}"
restart = "on-crash"
backoff = "100ms"
"""
    )
    return path


def run_dirs(runs: Path) -> list[Path]:
    return sorted(p for p in runs.iterdir() if p.is_dir()) if runs.exists() else []


def logged(run_dir: Path) -> list[dict[str, object]]:
    path = run_dir / "events.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_installed_console_under_tmux(tmux: Tmux, tmp_path: Path) -> None:
    profile = write_profile(tmp_path / "e2e.toml")
    runs = tmp_path / "runs"
    shell = f"{COMMAND} run {profile} --runs-dir {runs}; echo STRESSDECK-EXIT=$?; sleep 60"
    tmux("new-session", "-d", "-s", "console", "-x", "140", "-y", "40", "-c", str(ROOT), shell)

    tmux.wait(lambda s: s.count(" RUN ") >= 2, "two running panes")
    assert "e2e-console" in tmux.screen()
    (run_dir,) = run_dirs(runs)

    tmux.keys("C-k")  # SIGKILL the focused pane (emit#0)
    tmux.wait(lambda s: "pty.kill" in s, "the kill in the faults panel")
    deadline = time.monotonic() + 5
    while not any(e.get("source") == "key" for e in logged(run_dir)):
        assert time.monotonic() < deadline, "no key fault in events.jsonl"
        time.sleep(0.2)
    fault = next(e for e in logged(run_dir) if e.get("source") == "key")
    assert fault["event"] == "fault_injected" and fault["session_id"] == "emit#0"

    tmux.keys("x")
    tmux.wait(lambda s: "exported" in s, "the export notification")
    assert (run_dir / "snapshot-1.json").exists() and (run_dir / "report.md").exists()

    tmux.keys("?")
    tmux.wait(lambda s: "Stressdeck keys" in s and "kill_all" in s, "the help screen")
    tmux.keys("Escape")
    tmux.wait(lambda s: "Stressdeck keys" not in s, "help closed")

    tmux.keys("q")
    tmux.wait(lambda s: "Stop the run and quit?" in s, "the quit confirmation")
    tmux.keys("y")
    screen = tmux.wait(lambda s: "STRESSDECK-EXIT=" in s, "the command to exit", timeout=30)
    assert "Stressdeck run 'e2e-console'" in screen  # the summary, printed after the UI
    assert "STRESSDECK-EXIT=0" in screen
    events = logged(run_dir)
    assert [e for e in events if e["event"] == "crashed" and e["session_id"] == "emit#0"]
    assert len(list(run_dir.glob("snapshot*.json"))) >= 2  # the export and the final one


def test_sigterm_stops_the_console_gracefully(tmux: Tmux, tmp_path: Path) -> None:
    """SIGTERM to the console: a graceful stop, a final snapshot, a summary, exit status 130."""
    import psutil

    profile = write_profile(tmp_path / "e2e.toml")
    runs = tmp_path / "runs"
    shell = f"{COMMAND} run {profile} --runs-dir {runs}; echo STRESSDECK-EXIT=$?; sleep 60"
    tmux("new-session", "-d", "-s", "console", "-x", "120", "-y", "36", "-c", str(ROOT), shell)
    tmux.wait(lambda s: s.count(" RUN ") >= 2, "two running panes")
    shell_pid = int(tmux("display-message", "-p", "-t", "console", "#{pane_pid}").strip())
    (console,) = [
        p for p in psutil.Process(shell_pid).children() if "stressdeck" in " ".join(p.cmdline())
    ]
    console.terminate()
    screen = tmux.wait(lambda s: "STRESSDECK-EXIT=" in s, "the command to exit", timeout=30)
    assert "STRESSDECK-EXIT=130" in screen
    (run_dir,) = run_dirs(runs)
    summary = [e for e in logged(run_dir) if e["event"] == "summary"]
    assert summary and summary[0]["data"]["state"] == "interrupted"  # type: ignore[index]
    assert list(run_dir.glob("snapshot-*.json")) and (run_dir / "junit.xml").exists()
