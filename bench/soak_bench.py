"""Soak benchmark: does memory stay flat on the demo profile? (issue 12: ≤ 5 MB/h after warm-up)

Runs the bundled ``demo`` profile (PTY programs, SSH sessions and HTTP load against the embedded
targets, faults every minute or two) in the real console under a private tmux server (200x50;
``--headless`` for the headless mode), samples the resident memory of the console process and
of its children every ``--interval`` seconds, and prints the growth of each after the warm-up in
MB/h: the least-squares slope of RSS over the window.

Children are grouped by kind: ``pty`` (the PTY programs and what they start), ``http_worker``
(the HTTP worker processes), ``target_ssh`` and ``target_http`` (the embedded servers, with the
commands the SSH server runs). A kind's figure is the slope of its summed RSS; PTY programs are
killed and restarted by the profile's faults, so for them the median slope of the programs that
lived through most of the window is given too.

What remains: the console runs inside ``bench/soak_hook.py``, which counts live objects by type
at the start and the end of the window and prints the types that grew (``--tracemalloc`` adds a
tracemalloc diff of the top allocation sites; it slows the console, so its growth figure is then
not comparable). Ends with one JSON line::

    python bench/soak_bench.py                 # 3 minutes, 60 s warm-up
    python bench/soak_bench.py --minutes 30    # the issue's soak: 30 minutes, 5 min warm-up
    python bench/soak_bench.py --headless --tracemalloc

Bounded: the run's duration is the window plus a minute; every process it starts is stopped.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
HOOK = Path(__file__).resolve().parent / "soak_hook.py"
KINDS = ("pty", "http_worker", "target_ssh", "target_http")


def slope_mb_per_hour(samples: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (seconds, bytes) samples, in MB/h."""
    if len(samples) < 3:
        return None
    n = len(samples)
    mean_t = sum(t for t, _ in samples) / n
    mean_m = sum(m for _, m in samples) / n
    var = sum((t - mean_t) ** 2 for t, _ in samples)
    if var <= 0:
        return None
    cov = sum((t - mean_t) * (m - mean_m) for t, m in samples)
    return cov / var * 3600.0 / 1e6


def kind_of(top: psutil.Process) -> str:
    """The kind of a direct child of the console, from its command line."""
    try:
        line = " ".join(top.cmdline())
    except psutil.Error:
        return "pty"
    if "console.sessions.http.worker" in line:
        return "http_worker"
    if "console.targets.ssh_server" in line:
        return "target_ssh"
    if "console.targets.http_server" in line:
        return "target_http"
    return "pty"


def sample(console: psutil.Process) -> tuple[float, dict[str, float], dict[int, float]]:
    """RSS of the console, summed RSS per child kind, and RSS of each PTY program tree."""
    rss = float(console.memory_info().rss)
    kinds: dict[str, float] = defaultdict(float)
    programs: dict[int, float] = {}
    for top in console.children():
        kind = kind_of(top)
        try:
            tree = [top, *top.children(recursive=True)]
            total = 0.0
            for proc in tree:
                try:
                    total += proc.memory_info().rss
                except psutil.Error:
                    continue
        except psutil.Error:
            continue
        kinds[kind] += total
        if kind == "pty":
            programs[top.pid] = total
    return rss, kinds, programs


class Tmux:
    def __init__(self) -> None:
        self.socket = f"stressdeck-soak-{uuid.uuid4().hex[:8]}"

    def __call__(self, *args: str) -> str:
        done = subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, timeout=10
        )
        return done.stdout


def find_console(root_pid: int, timeout: float = 30.0) -> psutil.Process:
    """The Python process running the hook (under tmux, below the pane's shell if any)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        root = psutil.Process(root_pid)
        for proc in [root, *root.children(recursive=True)]:
            try:
                if "soak_hook.py" in " ".join(proc.cmdline()):
                    return proc
            except psutil.Error:
                continue
        time.sleep(0.2)
    raise SystemExit("soak_bench: the console did not start")


def reap(proc: psutil.Process, grace: float = 10.0) -> None:
    """Make sure the console we started is gone, with its children, even if it outlived its
    terminal."""
    try:
        proc.wait(grace)
    except psutil.TimeoutExpired:
        for victim in [proc, *proc.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                victim.kill()
        print(
            f"soak_bench: the console outlived its terminal; killed pid {proc.pid}", file=sys.stderr
        )
    except psutil.Error:
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=3.0, help="window incl. warm-up")
    parser.add_argument(
        "--warmup", type=float, help="seconds not counted (default 60, or 300 from 20 minutes)"
    )
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between samples")
    parser.add_argument("--headless", action="store_true", help="no console, no tmux")
    parser.add_argument("--tracemalloc", action="store_true", help="add a tracemalloc diff")
    parser.add_argument("--profile", default="demo")
    args = parser.parse_args(argv)
    window = args.minutes * 60.0
    warmup = args.warmup if args.warmup is not None else (300.0 if args.minutes >= 20 else 60.0)
    if warmup >= window:
        parser.error("--warmup must be shorter than the window")
    if not args.headless and shutil.which("tmux") is None:
        print("soak_bench: tmux is required (or --headless)", file=sys.stderr)
        return 2

    work = Path(tempfile.mkdtemp(prefix="stressdeck-soak-"))
    hook_out = work / "hook.json"
    env = dict(os.environ)
    env.update(
        SOAK_HOOK_OUT=str(hook_out),
        SOAK_HOOK_FROM=str(warmup),
        SOAK_HOOK_TO=str(window - args.interval),
    )
    if args.tracemalloc:
        env["SOAK_HOOK_TRACEMALLOC"] = "1"
    duration = f"{int(window + 60)}s"
    argv_run = [
        sys.executable,
        str(HOOK),
        "run",
        args.profile,
        "--duration",
        duration,
        "--runs-dir",
        str(work / "runs"),
    ]
    tmux = Tmux()
    proc: subprocess.Popen[bytes] | None = None
    console_samples: list[tuple[float, float]] = []
    kind_samples: dict[str, list[tuple[float, float]]] = {k: [] for k in KINDS}
    program_samples: dict[int, list[tuple[float, float]]] = defaultdict(list)
    rss_start = rss_end = 0.0
    console: psutil.Process | None = None
    try:
        if args.headless:
            argv_run.append("--headless")
            proc = subprocess.Popen(
                argv_run, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            console = find_console(proc.pid)
        else:
            exports = " ".join(f"{k}={v}" for k, v in env.items() if k.startswith("SOAK_HOOK_"))
            shell = f"{exports} exec {' '.join(argv_run)}"
            tmux("new-session", "-d", "-s", "s", "-x", "200", "-y", "50", "-c", str(ROOT), shell)
            pane = int(tmux("display-message", "-p", "-t", "s", "#{pane_pid}").strip())
            console = find_console(pane)
        started = time.monotonic()
        print(
            f"soak: {args.profile} {'headless' if args.headless else 'console under tmux'}, "
            f"{args.minutes:g} min, warm-up {warmup:g} s, pid {console.pid}",
            flush=True,
        )
        next_at = started
        while True:
            now = time.monotonic()
            t = now - started
            if t > window:
                break
            rss, kinds, programs = sample(console)
            if t >= warmup:
                if not console_samples:
                    rss_start = rss
                rss_end = rss
                console_samples.append((t, rss))
                for kind in KINDS:
                    kind_samples[kind].append((t, kinds.get(kind, 0.0)))
                for pid, value in programs.items():
                    program_samples[pid].append((t, value))
            next_at += args.interval
            time.sleep(max(0.0, next_at - time.monotonic()))
        deadline = time.monotonic() + 30
        while not hook_out.exists() and time.monotonic() < deadline:
            time.sleep(0.5)
    finally:
        if args.headless and proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        elif not args.headless:
            tmux("send-keys", "-t", "s", "q")
            time.sleep(0.5)
            tmux("send-keys", "-t", "s", "y")
            time.sleep(3)
            tmux("kill-server")  # our private server only
        if console is not None:
            reap(console)

    span = window - warmup
    result: dict[str, Any] = {
        "bench": "soak",
        "profile": args.profile,
        "mode": "headless" if args.headless else "console",
        "minutes": args.minutes,
        "warmup_s": warmup,
        "console_rss_mb_start": round(rss_start / 1e6, 1),
        "console_rss_mb_end": round(rss_end / 1e6, 1),
        "console_growth_mb_h": _round(slope_mb_per_hour(console_samples)),
    }
    for kind in KINDS:
        if any(v for _, v in kind_samples[kind]):
            result[f"{kind}_growth_mb_h"] = _round(slope_mb_per_hour(kind_samples[kind]))
    lived = [
        s for s in program_samples.values() if len(s) >= 3 and s[-1][0] - s[0][0] >= 0.8 * span
    ]
    slopes = [v for v in (slope_mb_per_hour(s) for s in lived) if v is not None]
    if slopes:
        result["pty_program_growth_mb_h_median"] = _round(statistics.median(slopes))
        result["pty_programs_through_window"] = len(slopes)
    if hook_out.exists():
        hook = json.loads(hook_out.read_text())
        result["objects_before"] = hook["objects_before"]
        result["objects_after"] = hook["objects_after"]
        result["types_grown"] = {d["type"]: d["diff"] for d in hook["types_grown"][:8]}
        if "tracemalloc_top" in hook:
            result["tracemalloc_top"] = hook["tracemalloc_top"][:5]
    shutil.rmtree(work, ignore_errors=True)

    print(
        f"console          {result['console_growth_mb_h']} MB/h after warm-up "
        f"({result['console_rss_mb_start']} -> {result['console_rss_mb_end']} MB)"
    )
    for kind in KINDS:
        if f"{kind}_growth_mb_h" in result:
            print(f"{kind:16} {result[f'{kind}_growth_mb_h']} MB/h (summed over the kind)")
    if "pty_program_growth_mb_h_median" in result:
        print(
            f"  one PTY program  {result['pty_program_growth_mb_h_median']} MB/h median over "
            f"{result['pty_programs_through_window']} that lived through the window"
        )
    if "objects_before" in result:
        print(
            f"live objects     {result['objects_before']} -> {result['objects_after']}; "
            f"grown: {result['types_grown']}"
        )
    for top in result.get("tracemalloc_top", []):
        print(f"  +{top['size_diff_kb']} KB ({top['count_diff']:+d})  {top['where'][-1]}")
    print(json.dumps(result))
    return 0


def _round(value: float | None) -> float | None:
    return round(value, 2) if value is not None else None


if __name__ == "__main__":
    raise SystemExit(main())
