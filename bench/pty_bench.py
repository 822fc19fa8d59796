"""PTY throughput benchmark: 30 sessions each print 10 MB through the engine's real PTY path.

Every session runs ``stressdeck emit`` (as ``python -m console.emit``) on its own terminal, with
the console draining all of them through one event loop, verifying every line's sequence number
and checksum. It prints the bytes lost (must be 0), the aggregate throughput, the console's CPU
seconds per MB (user + system of this process, threads included) and its peak RSS, and ends
with one JSON line holding those figures::

    python bench/pty_bench.py                      # 30 x 10 MB, 200-byte lines
    python bench/pty_bench.py --sessions 5 --mb 2  # a quick look

Exit status 0 when nothing was lost, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from console.engine import Run  # noqa: E402
from console.profile import load_profile_text  # noqa: E402
from console.sessions.pty.session import PtySession  # noqa: E402


def _profile(sessions: int, lines: int, size: int) -> str:
    argv = [sys.executable, "-m", "console.emit", "--count", str(lines), "--size", str(size)]
    return f"""
[run]
name = "pty-bench"
duration = "10m"

[[pty]]
name = "bench"
count = {sessions}
command = {json.dumps(argv)}
env = {{ PYTHONPATH = {json.dumps(str(ROOT))} }}
restart = "never"
"""


def _cpu_seconds(who: int = resource.RUSAGE_SELF) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


async def bench(
    sessions: int, mb: float, size: int, runs_dir: Path, timeout: float
) -> dict[str, float]:
    lines = int(mb * 1e6) // size
    profile = load_profile_text(_profile(sessions, lines, size), name="pty-bench")
    run = Run(profile, runs_dir=runs_dir)
    cpu0 = _cpu_seconds()
    children0 = _cpu_seconds(resource.RUSAGE_CHILDREN)
    task = asyncio.create_task(run.run())
    while not run.sessions:
        await asyncio.sleep(0.01)
    ptys = [s for s in run.sessions.values() if isinstance(s, PtySession)]
    started = time.monotonic()
    deadline = started + timeout
    all_writing: float | None = None
    while any(s.state not in ("exited", "crashed", "failed") for s in ptys):
        if time.monotonic() > deadline:
            break
        if all_writing is None and all(s.output.bytes for s in ptys):
            all_writing = time.monotonic() - started
        await asyncio.sleep(0.01)
    elapsed = time.monotonic() - started
    cpu = _cpu_seconds() - cpu0
    children_cpu = _cpu_seconds(resource.RUSAGE_CHILDREN) - children0
    run.request_stop()
    await task
    expected = lines * size
    received = sum(s.verifier.lines_ok * size for s in ptys)
    # Gaps the verifier saw, or a stream that simply came up short: whichever is larger.
    lost = sum(max(expected - s.verifier.lines_ok * size, s.verifier.bytes_lost) for s in ptys)
    total_bytes = sum(s.output.bytes for s in ptys)
    complete = sum(1 for s in ptys if s.verifier.streams_complete == 1)
    return {
        "sessions": sessions,
        "mb_per_session": mb,
        "line_bytes": size,
        "sessions_complete": complete,
        "bytes_expected": expected * sessions,
        "bytes_verified": received,
        "bytes_lost": lost,
        "terminal_bytes": total_bytes,
        "seconds": round(elapsed, 3),
        "aggregate_mb_s": round(total_bytes / 1e6 / elapsed, 2),
        "console_cpu_s_per_mb": round(cpu / (total_bytes / 1e6), 4),
        "console_cpu_pct": round(100 * cpu / elapsed, 1),
        # The programs' own CPU (start-up, generating lines, the kernel's terminal work on
        # their side): with the console's, what the machine's cores had to give.
        "programs_cpu_pct": round(100 * children_cpu / elapsed, 1),
        "all_writing_s": round(all_writing, 3) if all_writing is not None else -1.0,
        "console_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=30)
    parser.add_argument("--mb", type=float, default=10.0, help="MB each session prints")
    parser.add_argument("--size", type=int, default=200, help="bytes per line (the spike: 200)")
    parser.add_argument("--timeout", type=float, default=300.0)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="pty-bench-") as tmp:
        figures = asyncio.run(bench(args.sessions, args.mb, args.size, Path(tmp), args.timeout))
    print(f"sessions complete   {figures['sessions_complete']}/{figures['sessions']}")
    print(f"bytes lost          {figures['bytes_lost']:.0f} (must be 0)")
    print(
        f"aggregate           {figures['aggregate_mb_s']} MB/s "
        f"({figures['terminal_bytes'] / 1e6:.1f} MB in {figures['seconds']} s)"
    )
    print(
        f"console CPU         {figures['console_cpu_s_per_mb']} s per MB "
        f"({figures['console_cpu_pct']}% of a core; the programs: {figures['programs_cpu_pct']}%)"
    )
    print(f"all writing         after {figures['all_writing_s']} s (start-up of the programs)")
    print(f"console peak RSS    {figures['console_peak_rss_mb']} MB")
    print(json.dumps(figures))
    ok = figures["bytes_lost"] == 0 and figures["sessions_complete"] == figures["sessions"]
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
