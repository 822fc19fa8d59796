"""PTY sessions driven by the real engine, with real programs on real terminals."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import psutil
import pytest

from console.emit import LineVerifier
from console.engine import Run, RunResult
from console.events import Event
from console.profile import load_profile_text
from console.sessions.base import FaultNotApplicable
from console.sessions.pty.session import PtySession

REPO = Path(__file__).resolve().parents[1]
EMIT = [sys.executable, "-m", "console.emit"]


# Real processes and servers: the full suite, not the fast tier (-m "not slow").
pytestmark = pytest.mark.slow


def argv(*extra: str) -> str:
    return json.dumps([*EMIT, *extra])


def group(name: str, command: str, **keys: Any) -> str:
    lines = [
        "[[pty]]",
        f'name = "{name}"',
        f"command = {command}",
        f'env = {{ PYTHONPATH = "{REPO}" }}',
    ]
    lines += [f"{key} = {json.dumps(value)}" for key, value in keys.items()]
    return "\n".join(lines) + "\n"


def make_run(tmp_path: Path, body: str, duration: float = 20.0) -> Run:
    profile = load_profile_text(f'[run]\nname = "t"\nduration = "{duration}s"\n{body}', name="t")
    return Run(profile, runs_dir=tmp_path, duration=duration)


async def until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


async def drive(run: Run, script: Callable[[Run], Awaitable[None]]) -> RunResult:
    """Run ``run`` while ``script`` acts on it; the script ends the run when it is done."""
    task = asyncio.create_task(run.run())
    await until(lambda: run.state == "running" and bool(run.sessions))
    try:
        await script(run)
    finally:
        run.request_stop()
    return await asyncio.wait_for(task, 30)


def events(run: Run, name: str, session: str | None = None) -> list[Event]:
    return [
        e
        for e in run.event_log.recent
        if e.event == name and (session is None or e.session_id == session)
    ]


def session(run: Run, session_id: str) -> PtySession:
    found = run.sessions[session_id]
    assert isinstance(found, PtySession)
    return found


def metric(result: RunResult, name: str, key: str) -> float | None:
    summary = result.snapshot.metric(name)
    return summary.get(key) if summary is not None else None


async def test_a_large_burst_through_the_pty_loses_nothing(tmp_path: Path) -> None:
    """The spike's buffering test: 50,000 lines (10 MB) as fast as possible, three at once."""
    body = group(
        "burst",
        argv("--count", "50000", "--size", "200"),
        count=3,
        restart="never",
        keep_output=True,
    )
    run = make_run(tmp_path, body)

    async def script(run: Run) -> None:
        await until(lambda: len(events(run, "exited")) == 3, 25)

    result = await drive(run, script)
    for index in range(3):
        s = session(run, f"burst#{index}")
        assert s.verifier.lines_ok == 50_000
        assert s.verifier.lines_lost == 0 and s.verifier.bytes_lost == 0
        assert s.verifier.streams_complete == 1
        assert s.state == "exited" and s.last_exit is not None and s.last_exit.code == 0
        kept = (result.run_dir / "output" / f"burst#{index}.log").read_bytes()
        assert len(kept) == s.output.bytes > 10_000_000
        replay = LineVerifier()
        replay.feed(kept)
        assert replay.lines_ok == 50_000 and replay.lines_lost == 0
    for view in result.snapshot.sessions:  # what is kept for display stays bounded
        assert len(session(run, view.id).screen()) <= 65536 and len(view.output_tail) <= 20
        assert view.output_tail[-1] == "SDE-END lines=50000"
    assert metric(result, "pty_output_loss", "rate") == 0.0
    assert metric(result, "pty_output_loss", "count") == 150_000
    assert metric(result, "pty_lines_lost", "count") in (None, 0.0)
    assert metric(result, "pty_session_ok", "rate") == 1.0


async def test_sigkill_is_detected_in_milliseconds_and_the_session_restarts(tmp_path: Path) -> None:
    body = group("emit", argv("--count", "0", "--rate", "500", "--size", "100"), backoff="100ms")
    run = make_run(tmp_path, body)

    async def script(run: Run) -> None:
        s = session(run, "emit#0")
        await until(lambda: s.verifier.lines_ok > 100)
        await run.inject("pty.kill", target="emit#0")
        await until(lambda: bool(events(run, "restarted")))
        before = s.verifier.lines_ok
        await until(lambda: s.verifier.lines_ok > before + 50)

    result = await drive(run, script)
    (crash,) = events(run, "crashed", "emit#0")
    assert crash.data["signal"] == "SIGKILL" and crash.data["exit_code"] is None
    assert crash.elapsed_ms is not None and crash.elapsed_ms < 200  # the spike took 2 s
    assert any(line.startswith("SDE ") for line in crash.data["last_lines"])
    (restarted,) = events(run, "restarted", "emit#0")
    assert restarted.elapsed_ms is not None and 100 <= restarted.elapsed_ms < 3000
    assert events(run, "session_recovered", "emit#0")
    assert metric(result, "pty_crashes", "count") == 1
    assert metric(result, "pty_restarts", "count") == 1
    assert metric(result, "pty_restart_success", "rate") == 1.0
    assert metric(result, "pty_crash_detect_time", "count") == 1
    assert metric(result, "pty_recovery_time", "count") == 1
    assert metric(result, "pty_output_loss", "rate") == 0.0
    assert metric(result, "pty_session_ok", "rate") == 1.0  # a fault's crash is not a failure
    assert session(run, "emit#0").verifier.streams == 2


async def test_sigterm_fault_is_a_crash_with_its_signal_and_restarts(tmp_path: Path) -> None:
    body = group("emit", argv("--count", "0", "--rate", "300", "--size", "64"), backoff="50ms")
    run = make_run(tmp_path, body)

    async def script(run: Run) -> None:
        s = session(run, "emit#0")
        await until(lambda: s.verifier.lines_ok > 20)
        await run.inject("pty.term", target="emit")
        await until(lambda: bool(events(run, "restarted")))

    result = await drive(run, script)
    (crash,) = events(run, "crashed")
    assert crash.data["signal"] == "SIGTERM"
    assert crash.elapsed_ms is not None and crash.elapsed_ms < 200
    assert metric(result, "pty_restart_success", "rate") == 1.0


async def test_exit_codes_and_signals_are_reported(tmp_path: Path) -> None:
    body = (
        group("code", json.dumps("echo bye; exit 3"), restart="never")
        + group("sig", json.dumps("echo bye; kill -TERM $$"), restart="never")
        + group("clean", json.dumps("echo bye"), restart="never")
    )
    run = make_run(tmp_path, body)

    async def script(run: Run) -> None:
        await until(lambda: len(events(run, "crashed")) + len(events(run, "exited")) == 3)

    result = await drive(run, script)
    code = events(run, "crashed", "code#0")[0]
    assert (code.data["exit_code"], code.data["signal"]) == (3, None)
    assert code.data["last_lines"] == ["bye"]
    sig = events(run, "crashed", "sig#0")[0]
    assert (sig.data["exit_code"], sig.data["signal"]) == (None, "SIGTERM")
    assert events(run, "exited", "clean#0")[0].data["exit_code"] == 0
    states = {s.id: (s.state, dict(s.counters)["exit"]) for s in result.snapshot.sessions}
    assert states == {
        "code#0": ("crashed", "exit code 3"),
        "sig#0": ("crashed", "killed by SIGTERM"),
        "clean#0": ("exited", "exit code 0"),
    }
    assert metric(result, "pty_session_ok", "passes") == 1  # two unsolicited crashes


async def test_a_missing_command_is_a_failed_session_and_the_run_goes_on(tmp_path: Path) -> None:
    body = group("ghost", json.dumps(["/no/such/program", "--flag"])) + group(
        "emit", argv("--count", "0", "--rate", "200", "--size", "64")
    )
    run = make_run(tmp_path, body, duration=2.0)
    result = await asyncio.wait_for(run.run(), 30)
    ghost = result.snapshot.session("ghost#0")
    assert ghost is not None and ghost.state == "failed"
    (failed,) = events(run, "spawn_failed", "ghost#0")
    assert "/no/such/program" in failed.detail and failed.success is False
    emit = result.snapshot.session("emit#0")
    assert emit is not None and emit.state == "stopped"
    assert session(run, "emit#0").verifier.lines_ok > 100
    assert metric(result, "pty_session_ok", "rate") == 0.5
    assert run.state == "finished"
    rss, cpu = result.snapshot.metric("pty_rss"), result.snapshot.metric("pty_cpu")
    assert rss is not None and (rss.get("max") or 0) > 1e6  # psutil saw the emit process
    assert cpu is not None and cpu.get("max") is not None


async def test_memory_growth_of_a_leaking_program_is_measured_in_mb_per_hour(
    tmp_path: Path,
) -> None:
    leak = "import time\nx = []\nwhile True:\n    x.append(bytearray(2_000_000)); time.sleep(0.1)"
    body = group(
        "leak",
        json.dumps([sys.executable, "-c", leak]),
        memory_warmup="0s",
        memory_min_span="2s",
    ) + group("steady", json.dumps(["sleep", "30"]), memory_warmup="0s", memory_min_span="2s")
    run = make_run(tmp_path, body)

    async def script(run: Run) -> None:
        leaky, steady = session(run, "leak#0"), session(run, "steady#0")
        await until(lambda: None not in (leaky.growth.mb_per_hour, steady.growth.mb_per_hour))
        await until(lambda: run.registry.run_value("pty_memory_growth") is not None)

    result = await drive(run, script)
    leaky, steady = session(run, "leak#0"), session(run, "steady#0")
    # 2 MB every 0.1 s is 72,000 MB/h; sleep(1) does not grow at all.
    assert 20_000 < (leaky.growth.mb_per_hour or 0) < 150_000
    assert abs(steady.growth.mb_per_hour or 0) < 50
    assert (metric(result, "pty_memory_growth", "max") or 0) > 20_000


async def test_cwd_environment_and_terminal_size_reach_the_program(tmp_path: Path) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir()
    body = group(
        "probe",
        json.dumps('pwd; echo "tag=$TAG"; stty size; test -t 0 && echo tty; sleep 5'),
        cwd=str(workdir),
        cols=101,
        rows=33,
    ).replace("PYTHONPATH", 'TAG = "{name}-{index}", PYTHONPATH')
    run = make_run(tmp_path, body)

    async def script(run: Run) -> None:
        await until(lambda: "tty" in session(run, "probe#0").output.tail(10))

    result = await drive(run, script)
    tail = result.snapshot.sessions[0].output_tail
    assert tail[:4] == (str(workdir), "tag=probe-0", "33 101", "tty")


async def test_hang_stops_output_and_resume_brings_it_back(tmp_path: Path) -> None:
    body = group("emit", argv("--count", "0", "--rate", "400", "--size", "64"))
    run = make_run(tmp_path, body)

    async def script(run: Run) -> None:
        s = session(run, "emit#0")
        await until(lambda: s.verifier.lines_ok > 50)
        await run.inject("pty.hang", target="all", params={"duration": "600ms"})
        assert s.state == "hung"
        await asyncio.sleep(0.2)
        frozen = s.output.bytes
        await asyncio.sleep(0.2)
        assert s.output.bytes == frozen  # SIGSTOP really stopped it
        await until(lambda: bool(events(run, "session_recovered")), 5)
        assert s.state == "running" and s.output.bytes > frozen

    result = await drive(run, script)
    assert events(run, "hung") and events(run, "resumed")
    assert metric(result, "pty_output_loss", "rate") == 0.0
    assert metric(result, "pty_crashes", "count") in (None, 0.0)


async def test_hang_without_duration_waits_for_resume_and_faults_say_when_they_cannot_apply(
    tmp_path: Path,
) -> None:
    body = group("emit", argv("--count", "0", "--rate", "400", "--size", "64"))
    run = make_run(tmp_path, body)

    async def script(run: Run) -> None:
        s = session(run, "emit#0")
        await until(lambda: s.verifier.lines_ok > 20)
        with pytest.raises(FaultNotApplicable, match=r"no pty\.hang in progress on emit#0"):
            await run.inject("pty.resume", target="emit#0")
        await run.inject("pty.hang", target="emit#0")
        await asyncio.sleep(0.5)
        assert s.state == "hung" and not events(run, "session_recovered")
        with pytest.raises(FaultNotApplicable, match="already hung"):
            await run.inject("pty.hang", target="emit#0")
        await asyncio.sleep(0.3)
        ended = await run.inject("pty.resume", target="emit#0")
        await until(lambda: bool(events(run, "session_recovered")))
        # A resume is the end of the hang, not a fault of its own.
        assert ended.action == "pty.hang" and ended.ended_by == "pty.resume"
        assert ended.duration is not None and ended.duration >= 0.3
        assert [f.action for f in run.faults] == ["pty.hang"] and run.injector.total == 1

    result = await drive(run, script)
    assert result.snapshot.sessions[0].state == "stopped"
    assert metric(result, "pty_output_loss", "rate") == 0.0


async def test_a_crash_loop_gives_up_and_fails_the_session(tmp_path: Path) -> None:
    body = group(
        "flaky",
        json.dumps("echo starting; exit 1"),
        backoff="10ms",
        backoff_max="20ms",
        crash_loop_count=3,
        crash_loop_window="10s",
    )
    run = make_run(tmp_path, body)

    async def script(run: Run) -> None:
        await until(lambda: bool(events(run, "crash_loop")))

    result = await drive(run, script)
    assert result.snapshot.sessions[0].state == "failed"
    assert len(events(run, "crashed")) == 3
    assert metric(result, "pty_session_ok", "rate") == 0.0
    # Each restarted program printed "starting" before dying: output flowed, so they count as
    # successful restarts; the crash loop is what failed the session.
    assert metric(result, "pty_restarts", "count") == 2


async def test_input_script_is_typed_and_silence_turns_idle(tmp_path: Path) -> None:
    body = group(
        "repl",
        json.dumps(["cat"]),
        input=["hello", "world"],
        input_delay="50ms",
        input_interval="50ms",
        idle_after="300ms",
    )
    run = make_run(tmp_path, body)

    async def script(run: Run) -> None:
        await until(lambda: bool(events(run, "output_idle")), 5)

    result = await drive(run, script)
    assert [e.detail for e in events(run, "input_sent")] == ["hello", "world"]
    tail = result.snapshot.sessions[0].output_tail
    assert tail.count("hello") == 2 and tail.count("world") == 2  # echo, then cat's copy


async def test_restart_fault_starts_an_exited_program_again(tmp_path: Path) -> None:
    body = group("once", argv("--count", "10", "--size", "64"), restart="never")
    run = make_run(tmp_path, body)

    async def script(run: Run) -> None:
        s = session(run, "once#0")
        await until(lambda: s.state == "exited")
        await run.inject("pty.restart", target="once#0")
        await until(lambda: s.verifier.streams_complete == 2)

    result = await drive(run, script)
    assert session(run, "once#0").verifier.lines_ok == 20
    assert metric(result, "pty_restarts", "count") == 1
    assert events(run, "restarted", "once#0")


def _fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


async def test_no_fds_or_processes_are_left_after_a_run(tmp_path: Path) -> None:
    fds_before = _fd_count()
    children_before = {p.pid for p in psutil.Process().children(recursive=True)}
    seen: dict[int, psutil.Process] = {}

    def remember() -> None:  # every descendant so far, even those later orphaned
        for proc in psutil.Process().children(recursive=True):
            if proc.pid not in children_before:
                seen.setdefault(proc.pid, proc)

    body = (
        group(
            "emit", argv("--count", "0", "--rate", "300", "--size", "64"), count=3, backoff="50ms"
        )
        # Background children that ignore SIGHUP outlive their shell unless the session kills
        # the process group: they would keep the terminal open and leak.
        + group("tree", json.dumps("trap '' HUP; sleep 30 & sleep 30 & echo up; wait"), count=2)
        + group("ghost", json.dumps(["/no/such/program"]))
        # A child that left the process group and the session: only the process-tree scan
        # (once a second) knows it belongs to this program.
        + group("escape", json.dumps("setsid sleep 30 & echo up; wait"))
    )
    run = make_run(tmp_path, body)

    async def script(run: Run) -> None:
        await asyncio.sleep(1.5)  # let the process-tree scan see the escaped child
        ptys = [session(run, i) for i in run.sessions if i != "ghost#0"]
        await until(lambda: all(s.output.bytes for s in ptys))
        remember()
        await run.inject("pty.kill", target="emit", pick=2)
        await run.inject("pty.kill", target="tree#0")
        await until(lambda: len(events(run, "restarted")) == 3, 10)
        remember()
        await run.inject("pty.hang", target="emit#2", params={})  # still stopped at the end

    await drive(run, script)
    await asyncio.sleep(0.1)
    assert len(seen) >= 3 + 2 * 3
    alive = [p for p in seen.values() if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert alive == []
    zombies = [p for p in psutil.Process().children(recursive=True) if p.pid not in children_before]
    assert zombies == []
    assert _fd_count() == fds_before


async def test_without_pidfd_eof_and_waitpid_still_see_a_kill_quickly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fallback for systems without pidfd (macOS, old kernels)."""
    monkeypatch.delattr(os, "pidfd_open")
    body = group("emit", argv("--count", "0", "--rate", "300", "--size", "64"), backoff="50ms")
    run = make_run(tmp_path, body)

    async def script(run: Run) -> None:
        s = session(run, "emit#0")
        await until(lambda: s.verifier.lines_ok > 20)
        await run.inject("pty.kill", target="emit#0")
        await until(lambda: bool(events(run, "restarted")))

    result = await drive(run, script)
    (crash,) = events(run, "crashed")
    assert crash.elapsed_ms is not None and crash.elapsed_ms < 200
    assert metric(result, "pty_restart_success", "rate") == 1.0
