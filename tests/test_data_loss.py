"""A full disk, for real: a small tmpfs filled while a run writes to it.

The event log must hold only whole lines whatever the disk does, what could not be written
must be counted and reported, the final export must name the file it could not write (no
traceback, no ``.tmp`` left), and the exit status must still be the criteria's.
Needs root (``mount -t tmpfs``); skipped with the reason otherwise.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from console.events import EventLog
from tests.test_engine import ROOT

# Real processes and servers: the full suite, not the fast tier (-m "not slow").
pytestmark = pytest.mark.slow


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs: {done.stderr.strip() or done.returncode}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path, name: str = "filler") -> Path:
    """Take every free byte of ``disk``; return the file that holds them."""
    path = disk / name
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        chunk = 64 * 1024
        while chunk:
            try:
                os.write(fd, b"\0" * chunk)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
                chunk //= 2
    finally:
        os.close(fd)
    return path


def parsed(path: Path) -> list[dict[str, object]]:
    """Every line of a JSONL file, parsed: a torn line fails the test here."""
    data = path.read_bytes()
    assert not data or data.endswith(b"\n"), f"torn last line: {data[-80:]!r}"
    return [json.loads(line) for line in data.decode().splitlines()]


def test_event_log_keeps_whole_lines_on_a_full_disk(small_disk: Path) -> None:
    from console.events import Event

    log = EventLog(small_disk / "events.jsonl", "r")
    fill(small_disk)
    detail = "x" * 700  # lines longer than what is left, so a write can land part of one
    for i in range(200):
        log.log(Event(ts="t", session_id=None, host=None, event="tick", detail=f"{i} {detail}"))
        log.flush()
    written = parsed(small_disk / "events.jsonl")
    assert log.write_error and log.failed_writes and len(written) == log.written
    (small_disk / "filler").unlink()
    log.flush()  # the disk has room again: everything held back is written
    assert not log.write_error and log.dropped == 0
    assert len(parsed(small_disk / "events.jsonl")) == 200
    fill(small_disk)
    big = "y" * 9000  # more than the free end of the file's last page
    log.log(Event(ts="t", session_id=None, host=None, event="last", detail=big))
    log.close()  # still full: the line is lost, counted, and the file stays whole
    assert log.dropped == 1
    assert [e["event"] for e in parsed(small_disk / "events.jsonl")][-1] == "tick"


def test_a_run_on_a_disk_that_fills_up_reports_what_it_lost(small_disk: Path) -> None:
    """Fill the disk mid-run, free it, fill it again until the end."""
    emit = [sys.executable, "-m", "console", "emit", "--count", "0", "--rate", "50"]
    profile = small_disk.parent / "full.toml"
    profile.write_text(
        f"""[run]
name = "full-disk"
duration = "7s"

[[pty]]
name = "emit"
count = 2
command = {json.dumps([*emit, "--size", "200"])}
cwd = "{ROOT}"
restart = "on-crash"
backoff = "50ms"
keep_output = true

[[faults]]
at = "200ms"
every = "150ms"
action = "pty.kill"
pick = 1

[[criteria]]
metric = "pty_session_ok"
threshold = "rate>=0"
"""
    )
    runs = small_disk / "runs"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    argv = [sys.executable, "-m", "console", "run", str(profile), "--headless"]
    proc = subprocess.Popen(
        [*argv, "--runs-dir", str(runs)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not list(runs.glob("*/events.jsonl")) and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)
        filler = fill(small_disk)
        time.sleep(1.5)
        filler.unlink()  # writing works again: the log must say what it lost
        time.sleep(1.5)
        fill(small_disk)  # and full until the end: the export cannot be written
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "Traceback" not in err, err
    assert proc.returncode == 0, (out, err)  # the criterion passed; the disk does not change that
    (run_dir,) = [p for p in runs.iterdir() if p.is_dir()]
    events = parsed(run_dir / "events.jsonl")
    failed = [e for e in events if e["event"] == "log_write_failed"]
    assert any(e["data"]["file"] == "events.jsonl" for e in failed), [  # type: ignore[index]
        e["event"] for e in events
    ]
    assert "data not written" in out
    assert "events.jsonl:" in out and "not written" in out
    assert "snapshot-1.json" in out  # the export says which file failed
    assert "output/emit#" in out and "of output not written" in out  # kept output counted
    assert not list(run_dir.rglob("*.tmp"))


@pytest.mark.parametrize("where", ["under-a-file", "read-only"])
def test_an_unwritable_runs_directory_is_exit_2_before_anything_starts(
    tmp_path: Path, where: str
) -> None:
    if where == "under-a-file":
        (tmp_path / "file").write_text("")
        runs = tmp_path / "file" / "runs"
    else:
        runs = tmp_path / "ro"
        runs.mkdir()
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(runs)],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            pytest.skip(f"cannot mount a read-only tmpfs: {done.stderr.strip()}")
    profile = tmp_path / "p.toml"
    marker = tmp_path / "started"
    program = [sys.executable, "-c", f"open({str(marker)!r}, 'w')"]
    profile.write_text(
        f'[run]\nname = "ro"\nduration = "5s"\n[[pty]]\ncommand = {json.dumps(program)}\n'
    )
    try:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "console",
                "run",
                str(profile),
                "--headless",
                "--runs-dir",
                str(runs),
            ],
            cwd=ROOT,
            env=dict(os.environ, PYTHONPATH=str(ROOT)),
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        if where == "read-only":
            subprocess.run(["umount", "-l", str(runs)], check=False)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "cannot write the run directory" in done.stderr
    assert "Traceback" not in done.stderr
    assert not marker.exists()  # no session started


async def test_the_console_alerts_once_per_file_that_lost_data() -> None:
    from dataclasses import replace

    from console.ui.app import closing_text, make_app
    from tests.synthetic_run import synthetic_snapshot

    snap = synthetic_snapshot(ssh=0, pty=1, http=0)
    lost = ("events.jsonl: 3 event(s) not written (OSError: [Errno 28] No space left on device)",)
    app = make_app(snapshot=replace(snap, data_loss=lost), show_log=False)
    async with app.run_test() as pilot:
        await pilot.pause()
        app.snapshot = replace(snap, seq=snap.seq + 1, data_loss=(lost[0].replace("3", "4"),))
        await pilot.pause()
        shown = [n.message for n in app._notifications]
    assert shown == [lost[0]]  # once for the file, not at every new count

    class Result:
        exit_code = 0
        snapshot = replace(snap, data_loss=lost)

    assert f"NOT WRITTEN {lost[0]}" in closing_text(Result())


def test_the_memory_ring_is_bounded_and_its_tail_is_the_newest_events(tmp_path: Path) -> None:
    from console.events import RECENT_EVENTS, Event

    log = EventLog(tmp_path / "events.jsonl", "r")
    for i in range(RECENT_EVENTS + 300):
        log.log(Event(ts="t", session_id=None, host=None, event="tick", detail=str(i)))
    log.close()
    assert len(log.recent) == RECENT_EVENTS  # memory stays flat on a soak
    assert [e.detail for e in log.tail(3)] == [str(RECENT_EVENTS + 300 - k) for k in (3, 2, 1)]
    assert len(log.tail(RECENT_EVENTS * 2)) == RECENT_EVENTS
    assert len(parsed(tmp_path / "events.jsonl")) == RECENT_EVENTS + 300  # the file has them all
