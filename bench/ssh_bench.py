"""SSH benchmark: SPIKE-2's workload, 100 sessions at once, and rounds of dropping them all.

Everything runs against the embedded SSH server, which the SSH runtime starts in its own
process, so the console figures below are the console's alone::

    python bench/ssh_bench.py                      # the full run (about 2.5 minutes)
    python bench/ssh_bench.py --workload 10 --sessions 20 --rounds 2   # a quick try

1. workload: 10 sessions, poll every 5 s, medium PTY every 0.6 s (the spike's configuration,
   as in profiles/spike2-ssh-pool.toml: about 360 KB of PTY output per session per 5 min) for
   ``--workload`` seconds; the console's CPU % (of one core, from its own CPU time over the
   measured period, connect phase excluded) and peak RSS. The spike's limits: 5 % and 200 MB.
2. connect: ``--sessions`` sessions started at once; connect time p95 (TCP, key exchange,
   auth, PTY open) and the time until the last one was running.
3. reconnect: ``--rounds`` rounds of dropping every one of those sessions; reconnect success
   and p95/max (from the drop to usable again, the 1 s jittered backoff included).

The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from console.engine import Run
from console.profile import load_profile_text

PROFILE = """
[run]
name = "ssh-bench-{phase}"
duration = "1h"

[[ssh]]
name = "pool"
count = {count}
target = "embedded"
poll_interval = "5s"
intensity = "medium"
pty_interval = "600ms"
reconnect_attempts = 3
reconnect_timeout = "15s"
"""


def _running(run: Run) -> int:
    return sum(1 for s in run.sessions.values() if s.state == "running")


async def _until(predicate: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


async def _start(phase: str, count: int, runs_dir: Path) -> tuple[Run, asyncio.Task[Any]]:
    text = PROFILE.format(phase=phase, count=count)
    run = Run(load_profile_text(text, name=phase), runs_dir=runs_dir)
    task = asyncio.create_task(run.run())
    await _until(lambda: run.state == "running", 30)
    return run, task


async def _finish(run: Run, task: asyncio.Task[Any]) -> Any:
    run.request_stop()
    return (await task).snapshot


def _metric(snapshot: Any, name: str, key: str) -> float | None:
    found = snapshot.metric(name)
    return None if found is None else found.get(key)


def _r(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


async def workload(seconds: float, runs_dir: Path) -> dict[str, Any]:
    me = psutil.Process()
    run, task = await _start("workload", 10, runs_dir)
    ok = await _until(lambda: _running(run) == 10, 30)
    await asyncio.sleep(2.0)  # let the first polls and PTY cycles settle
    cpu0, t0 = me.cpu_times(), time.monotonic()
    peak_rss = me.memory_info().rss
    end = t0 + seconds
    while time.monotonic() < end:
        await asyncio.sleep(1.0)
        peak_rss = max(peak_rss, me.memory_info().rss)
    cpu1, t1 = me.cpu_times(), time.monotonic()
    snapshot = await _finish(run, task)
    used = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    return {
        "sessions": 10,
        "all_connected": ok,
        "seconds": round(t1 - t0, 1),
        "console_cpu_pct": round(100.0 * used / (t1 - t0), 2),
        "console_rss_mb": round(peak_rss / 1e6, 1),
        "polls": int(_metric(snapshot, "ssh_exec_latency", "count") or 0) // 3,
        "poll_failures": int(_metric(snapshot, "ssh_poll_failures", "count") or 0),
        "pty_kb": round((_metric(snapshot, "ssh_pty_bytes", "count") or 0) / 1024, 1),
        "exec_latency_p95_ms": _r(_metric(snapshot, "ssh_exec_latency", "p(95)")),
        "abnormal_ends": int(_metric(snapshot, "ssh_abnormal_ends", "count") or 0),
    }


async def connect_and_drop(sessions: int, rounds: int, runs_dir: Path) -> dict[str, Any]:
    started = time.monotonic()
    run, task = await _start("connect", sessions, runs_dir)
    all_up = await _until(lambda: _running(run) == sessions, 120)
    connect_total = time.monotonic() - started
    snap = run.make_snapshot()  # now: the latest published one may predate the connections
    connect = {
        "sessions": sessions,
        "all_connected": all_up,
        "connect_p95_ms": _r(_metric(snap, "ssh_connect_time", "p(95)")),
        "connect_max_ms": _r(_metric(snap, "ssh_connect_time", "max")),
        "all_running_s": round(connect_total, 2),
    }
    round_times = []
    for _ in range(rounds):
        t = time.monotonic()
        await run.inject("ssh.drop", target="all", source="api")
        await _until(lambda: _running(run) < sessions, 5)
        await _until(lambda: _running(run) == sessions, 60)
        round_times.append(time.monotonic() - t)
        await asyncio.sleep(1.0)
    snapshot = await _finish(run, task)
    reconnect = {
        "rounds": rounds,
        "drops": rounds * sessions,
        "reconnects": int(_metric(snapshot, "ssh_reconnect_time", "count") or 0),
        "success_pct": _r(100.0 * (_metric(snapshot, "ssh_reconnect_success", "rate") or 0.0)),
        "p50_ms": _r(_metric(snapshot, "ssh_reconnect_time", "med")),
        "p95_ms": _r(_metric(snapshot, "ssh_reconnect_time", "p(95)")),
        "max_ms": _r(_metric(snapshot, "ssh_reconnect_time", "max")),
        "slowest_round_s": round(max(round_times), 2) if round_times else None,
        "abnormal_ends": int(_metric(snapshot, "ssh_abnormal_ends", "count") or 0),
    }
    return {"connect": connect, "reconnect": reconnect}


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    runs_dir = Path(args.runs_dir or tempfile.mkdtemp(prefix="ssh-bench-"))
    figures: dict[str, Any] = {"bench": "ssh", "cpus": psutil.cpu_count()}
    if args.workload > 0:
        figures["workload"] = await workload(args.workload, runs_dir)
        print("workload:", figures["workload"], flush=True)
    if args.sessions > 0:
        figures.update(await connect_and_drop(args.sessions, args.rounds, runs_dir))
        print("connect:", figures["connect"], flush=True)
        print("reconnect:", figures["reconnect"], flush=True)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--workload", type=float, default=60.0, help="seconds of the 10-session workload (0 skips)"
    )
    parser.add_argument(
        "--sessions", type=int, default=100, help="sessions connected at once (0 skips)"
    )
    parser.add_argument("--rounds", type=int, default=10, help="rounds of dropping every session")
    parser.add_argument(
        "--runs-dir", default="", help="where run directories go (default: a temp dir)"
    )
    args = parser.parse_args(argv)
    figures = asyncio.run(main_async(args))
    print(json.dumps(figures), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
