"""End to end: the installed command when its terminal or its own process goes away.

* The terminal hangs up (the tmux session is killed, as an SSH link drops): the console stops
  the run, writes its final snapshot and exits 130 within 5 s.
* The console is SIGKILLed (headless and under tmux): no program it started survives it, even
  one that ignores SIGHUP.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.test_e2e_tmux import COMMAND, ROOT, Tmux, logged, run_dirs

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture
def tmux() -> Iterator[Tmux]:
    if shutil.which("tmux") is None or COMMAND is None:
        pytest.skip("needs tmux and the installed stressdeck command")
    server = Tmux(f"stressdeck-life-{uuid.uuid4().hex[:8]}")
    try:
        yield server
    finally:
        server("kill-server")  # our private server only


# A PTY program that ignores SIGHUP and says its pid, then works on for a minute.
STUBBORN = "import os, signal, time; signal.signal(signal.SIGHUP, signal.SIG_IGN); print('PID', os.getpid(), flush=True); time.sleep(60)"


def profile(path: Path, program: list[str]) -> Path:
    path.write_text(
        f"""[run]
name = "lifecycle"
duration = "60s"

[[pty]]
name = "work"
count = 2
command = {json.dumps(program)}
cwd = "{ROOT}"
"""
    )
    return path


def wait_gone(pids: list[int], timeout: float) -> list[int]:
    """The pids still alive (zombies count as gone) after at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    alive = pids
    while True:
        alive = [p for p in alive if _alive(p)]
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _wait_for_line(path: Path, timeout: float) -> str:
    """The first line of ``path`` once it has one, or "" after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        text = path.read_text() if path.exists() else ""
        if text.endswith("\n") or time.monotonic() > deadline:
            return text.strip()
        time.sleep(0.05)


def console_process(tmux: Tmux) -> psutil.Process:
    shell_pid = int(tmux("display-message", "-p", "-t", "console", "#{pane_pid}").strip())
    (console,) = [
        p
        for p in psutil.Process(shell_pid).children(recursive=True)
        if "stressdeck" in " ".join(p.cmdline()) and "python" in p.name().lower() + p.exe()
    ]
    return console


@pytest.mark.parametrize("hangup", [("kill-session", "-t", "console"), ("kill-server",)])
def test_console_exits_when_its_terminal_goes_away(
    tmux: Tmux, tmp_path: Path, hangup: tuple[str, ...]
) -> None:
    emit = [sys.executable, "-m", "console", "emit", "--count", "0", "--rate", "40"]
    runs = tmp_path / "runs"
    status = tmp_path / "status"
    script = tmp_path / "run.sh"
    # The wrapper shell ignores the hangup so it can record the console's exit status.
    script.write_text(
        f"trap '' HUP\n{COMMAND} run {profile(tmp_path / 'p.toml', emit)} --runs-dir {runs}\n"
        f"echo $? > {status}\n"
    )
    tmux("new-session", "-d", "-s", "console", "-x", "120", "-y", "36", "-c", str(ROOT))
    tmux("send-keys", "-t", "console", f"exec sh {script}", "Enter")
    tmux.wait(lambda s: s.count(" RUN ") >= 2, "two running panes")
    console = console_process(tmux)
    tmux(*hangup)  # the session only, or the whole terminal server (its ptys close at once)
    assert not wait_gone([console.pid], 5.0), "the console outlived its terminal by 5 s"
    # The wrapper writes the status a moment after the console is gone: wait for its line.
    assert _wait_for_line(status, 5.0) == "130"
    (run_dir,) = run_dirs(runs)
    assert list(run_dir.glob("snapshot-*.json"))
    summary = [e for e in logged(run_dir) if e["event"] == "summary"]
    assert summary[0]["data"]["state"] == "interrupted"  # type: ignore[index]


def test_no_child_survives_a_sigkilled_headless_run(tmp_path: Path) -> None:
    """PTY programs, the HTTP worker and the embedded HTTP target: all gone after SIGKILL."""
    path = profile(tmp_path / "p.toml", [sys.executable, "-c", STUBBORN])
    with path.open("a") as f:
        f.write(
            '\n[[http]]\nname = "load"\nbase_url = "embedded"\nexecutor = "constant-vus"\n'
            'vus = 1\n  [[http.steps]]\n  request = { url = "/health" }\n'
        )
    proc = subprocess.Popen(
        [COMMAND or "stressdeck", "run", str(path), "--headless", "--runs-dir", str(tmp_path)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    try:
        _wait_children(proc.pid, 2)
        descendants = _wait_descendants(proc.pid, 4)  # 2 programs, a worker, the target
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        assert not wait_gone(descendants, 5.0), "a child outlived the console"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _wait_descendants(pid: int, n: int, timeout: float = 20.0) -> list[int]:
    deadline = time.monotonic() + timeout
    found: list[int] = []
    while time.monotonic() < deadline:
        found = [p.pid for p in psutil.Process(pid).children(recursive=True)]
        if len(found) >= n:
            return found
        time.sleep(0.1)
    raise AssertionError(f"the console started {len(found)} of {n} processes")


def test_no_child_survives_a_sigkilled_console(tmux: Tmux, tmp_path: Path) -> None:
    path = profile(tmp_path / "p.toml", [sys.executable, "-c", STUBBORN])
    shell = f"{COMMAND} run {path} --runs-dir {tmp_path / 'runs'}; sleep 60"
    tmux("new-session", "-d", "-s", "console", "-x", "120", "-y", "36", "-c", str(ROOT), shell)
    tmux.wait(lambda s: s.count(" RUN ") >= 2, "two running panes")
    console = console_process(tmux)
    children = _wait_children(console.pid, 2)
    console.kill()
    assert not wait_gone(children, 5.0), "a SIGHUP-ignoring program outlived the console"


def _wait_children(pid: int, n: int, timeout: float = 20.0) -> list[int]:
    """The pids of the first ``n`` programs (python -c STUBBORN) the console started."""
    deadline = time.monotonic() + timeout
    found: list[int] = []
    while time.monotonic() < deadline:
        found = [
            p.pid
            for p in psutil.Process(pid).children(recursive=True)
            if "signal.SIG_IGN" in " ".join(p.cmdline())
        ]
        if len(found) >= n:
            return found
        time.sleep(0.1)
    raise AssertionError(f"the console started {len(found)} of {n} programs")
