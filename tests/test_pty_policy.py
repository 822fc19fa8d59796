"""Restart decisions and memory-growth estimation, without processes."""

from __future__ import annotations

from pathlib import Path

import pytest

from console.sessions.pty.policy import RestartPolicy
from console.sessions.pty.stats import MemoryGrowth, scan_trees


def policy(name: str = "on-crash", **kw: float) -> RestartPolicy:
    settings: dict[str, float] = {
        "max_restarts": 0,
        "backoff": 0.5,
        "backoff_max": 4.0,
        "crash_loop_count": 3,
        "crash_loop_window": 10.0,
    }
    settings.update(kw)
    return RestartPolicy(
        name,  # type: ignore[arg-type]
        max_restarts=int(settings["max_restarts"]),
        backoff=settings["backoff"],
        backoff_max=settings["backoff_max"],
        crash_loop_count=int(settings["crash_loop_count"]),
        crash_loop_window=settings["crash_loop_window"],
    )


def test_policies_decide_on_clean_exits_and_crashes() -> None:
    assert policy("always").decide(now=1, crashed=False, solicited=False, lifetime=9).restart
    assert not policy("on-crash").decide(now=1, crashed=False, solicited=False, lifetime=9).restart
    assert policy("on-crash").decide(now=1, crashed=True, solicited=True, lifetime=9).restart
    decision = policy("never").decide(now=1, crashed=True, solicited=True, lifetime=9)
    assert not decision.restart and "never" in decision.reason


def test_backoff_doubles_to_its_cap_and_resets_after_a_long_life() -> None:
    p = policy(crash_loop_count=0)
    delays = [p.decide(now=i, crashed=True, solicited=False, lifetime=0.1).delay for i in range(5)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert p.decide(now=99, crashed=True, solicited=False, lifetime=60).delay == 0.5


def test_crash_loop_counts_only_unsolicited_crashes_within_the_window() -> None:
    p = policy()
    for t in (0.0, 1.0, 2.0, 3.0):  # faults asked for these: never a crash loop
        assert p.decide(now=t, crashed=True, solicited=True, lifetime=0.1).restart
    assert p.decide(now=4, crashed=True, solicited=False, lifetime=0.1).restart
    assert p.decide(now=30, crashed=True, solicited=False, lifetime=0.1).restart  # window passed
    assert p.decide(now=31, crashed=True, solicited=False, lifetime=0.1).restart
    loop = p.decide(now=32, crashed=True, solicited=False, lifetime=0.1)
    assert not loop.restart and loop.crash_loop and "3 crashes" in loop.reason


def test_max_restarts_is_a_hard_limit() -> None:
    p = policy("always", max_restarts=2, crash_loop_count=0)
    assert p.decide(now=0, crashed=False, solicited=False, lifetime=1).restart
    assert p.decide(now=1, crashed=False, solicited=False, lifetime=1).restart
    last = p.decide(now=2, crashed=False, solicited=False, lifetime=1)
    assert not last.restart and "max restarts" in last.reason


def test_memory_growth_is_a_slope_after_warmup_and_needs_a_span() -> None:
    growth = MemoryGrowth(warmup=10, min_span=20)
    growth.reset(0.0)
    for t in range(0, 10):
        growth.add(float(t), 500e6)  # start-up allocation: ignored
    for t in range(10, 25):
        growth.add(float(t), 100e6 + (t - 10) * 1e6 / 36)  # 100 MB/h
    assert growth.mb_per_hour is None  # only 14 s measured
    for t in range(25, 60):
        growth.add(float(t), 100e6 + (t - 10) * 1e6 / 36)
    assert growth.mb_per_hour == pytest.approx(100.0, rel=1e-6)


def test_tree_scan_sums_a_process_and_its_children() -> None:
    import os
    import subprocess
    import sys

    child = subprocess.Popen(
        [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(5)"],
        stdout=subprocess.PIPE,
    )
    try:
        # Scanned before it runs (still between fork and exec), its RSS reads 0: wait for it.
        assert child.stdout is not None and child.stdout.readline() == b"up\n"
        stats = scan_trees([os.getpid()])[os.getpid()]
        own = scan_trees([child.pid])[child.pid]
        assert stats.processes >= 2
        assert stats.rss > own.rss > 1e6
    finally:
        child.kill()
        child.communicate()


def test_the_proc_table_agrees_with_psutil_and_survives_odd_command_names(tmp_path: Path) -> None:
    import os
    import subprocess

    import psutil

    from console.sessions.pty.stats import _read_proc

    # A name with spaces and a ")" is what makes /proc/<pid>/stat awkward to split.
    odd = tmp_path / "a b) c"
    odd.symlink_to("/bin/sleep")
    child = subprocess.Popen([str(odd), "5"])
    try:
        table = _read_proc()
        ppid, rss, _ = table[child.pid]
        assert ppid == os.getpid()
        assert rss > 0
        me = psutil.Process()
        _, own_rss, own_cpu = table[os.getpid()]
        assert abs(own_rss - me.memory_info().rss) < 8e6  # moments apart, same figure
        assert 0 <= own_cpu <= sum(me.cpu_times()[:2]) + 0.05
    finally:
        child.kill()
        child.wait()
