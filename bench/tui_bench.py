"""Console drawing benchmark: the real console under tmux on 40 PTY sessions.

Runs ``stressdeck run bench/tui40.toml`` in a private tmux server (200x50), lets it settle,
then measures over a steady window:

* ``cpu_pct``: the console process (UI thread + engine thread, not the emit children), % of
  one core; ``cpu_pct_headless`` is the same profile run ``--headless`` over the same window,
  and ``draw_cpu_pct`` the difference: what drawing 40 panes at 4 Hz costs.
* ``rss_mb``: the console process's resident memory at the end of the window.
* ``engine_loop_lag_p99_ms``: the engine loop's lag p99 over the steady window (the loop whose
  timing faults and reconnects depend on); ``engine_loop_lag_p99_run_ms`` over the whole run
  with its start-up (from the final snapshot); ``ui_loop_lag_p99_ms`` the UI loop's.
* ``key_to_fault_p95_ms``: from ``tmux send-keys C-k`` to the ``fault_injected`` event's
  timestamp in events.jsonl, over ``--keys`` presses.

Ends with one JSON line. Bounded: about a minute; every process it starts is stopped.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
PROFILE = Path(__file__).resolve().parent / "tui40.toml"


def command() -> list[str]:
    found = shutil.which("stressdeck")
    return [found] if found else [sys.executable, "-m", "console"]


def percentile(values: list[float], pct: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


def cpu_over(proc: psutil.Process, seconds: float) -> float:
    """Average CPU of ``proc`` (its threads, not its children) over ``seconds``, % of a core."""
    start = proc.cpu_times()
    began = time.monotonic()
    time.sleep(seconds)
    end = proc.cpu_times()
    used = (end.user + end.system) - (start.user + start.system)
    return 100.0 * used / (time.monotonic() - began)


def events(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / "events.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def wait_for(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise SystemExit(f"tui_bench: timed out waiting for {what}")


class Tmux:
    def __init__(self) -> None:
        self.socket = f"stressdeck-bench-{uuid.uuid4().hex[:8]}"

    def __call__(self, *args: str) -> str:
        done = subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, timeout=10
        )
        return done.stdout


def headless_cpu(runs: Path, warmup: float, window: float) -> float:
    argv = [*command(), "run", str(PROFILE), "--headless", "--runs-dir", str(runs)]
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(warmup)
        return cpu_over(psutil.Process(proc.pid), window)
    finally:
        proc.terminate()  # SIGTERM: a graceful stop
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def reap(proc: psutil.Process, grace: float = 10.0) -> None:
    """Make sure the console we started is gone: one that outlived its terminal (seen once,
    spinning at half a core) would distort every later figure on this machine."""
    try:
        proc.wait(grace)
    except psutil.TimeoutExpired:
        children = proc.children(recursive=True)
        for victim in [proc, *children]:
            with contextlib.suppress(psutil.Error):
                victim.kill()
        print(
            f"tui_bench: the console outlived its terminal; killed pid {proc.pid}", file=sys.stderr
        )
    except psutil.Error:
        pass


def console_pid(pane_pid: int) -> int:
    """The pane runs ``sh -c 'exec stressdeck ...'``; follow a launcher shim if there is one."""
    proc = psutil.Process(pane_pid)
    for candidate in [proc, *proc.children(recursive=True)]:
        cmdline = " ".join(candidate.cmdline())
        if "python" in cmdline and " run " in cmdline and "emit" not in cmdline:
            return candidate.pid
    return pane_pid


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warmup", type=float, default=8.0, help="seconds before measuring")
    parser.add_argument("--window", type=float, default=10.0, help="CPU measuring window")
    parser.add_argument("--keys", type=int, default=20, help="K presses for key-to-fault")
    parser.add_argument("--no-headless", action="store_true", help="skip the headless baseline")
    args = parser.parse_args(argv)
    if shutil.which("tmux") is None:
        print("tui_bench: tmux is required", file=sys.stderr)
        return 2

    work = Path(tempfile.mkdtemp(prefix="stressdeck-tui-bench-"))
    runs = work / "runs"
    ui_stats = work / "ui-stats.json"
    engine_stats = work / "engine-stats.json"
    tmux = Tmux()
    line = " ".join([*command(), "run", str(PROFILE), "--runs-dir", str(runs)])
    shell = f"STRESSDECK_UI_STATS={ui_stats} STRESSDECK_ENGINE_STATS={engine_stats} exec {line}"
    result: dict[str, Any] = {"bench": "tui", "sessions": 40, "terminal": "200x50"}
    proc: psutil.Process | None = None
    try:
        tmux("new-session", "-d", "-s", "b", "-x", "200", "-y", "50", "-c", str(ROOT), shell)
        tmux("set-option", "-t", "b", "remain-on-exit", "on")
        pane_pid = int(tmux("display-message", "-p", "-t", "b", "#{pane_pid}").strip())
        wait_for(lambda: tmux("capture-pane", "-p", "-t", "b").count(" RUN ") >= 20, 60, "panes")
        run_dir = wait_for(lambda: next(iter(runs.iterdir()), None), 10, "the run directory")
        proc = psutil.Process(console_pid(pane_pid))
        time.sleep(args.warmup)
        steady = time.time()
        result["cpu_pct"] = round(cpu_over(proc, args.window), 2)
        keys_from = time.time()
        result["rss_mb"] = round(proc.memory_info().rss / 1e6, 1)

        sent: list[float] = []
        for _ in range(args.keys):
            tmux("send-keys", "-t", "b", "l")  # a different pane each time
            time.sleep(0.1)
            sent.append(time.time())
            tmux("send-keys", "-t", "b", "C-k")
            time.sleep(0.4)

        def key_faults() -> list[dict[str, Any]] | None:
            found = [
                e
                for e in events(run_dir)
                if e.get("source") == "key" and e.get("event") == "fault_injected"
            ]
            return found if len(found) >= args.keys else None

        keyed = wait_for(key_faults, 10, "the key faults in events.jsonl")
        latencies = [
            (datetime.fromisoformat(e["ts"]).timestamp() - t) * 1000.0
            for e, t in zip(keyed[: len(sent)], sent, strict=True)
        ]
        result["key_to_fault_p95_ms"] = round(percentile(latencies, 95) or -1, 1)
        result["key_to_fault_p50_ms"] = round(percentile(latencies, 50) or -1, 1)
        keys_to = time.time()

        tmux("send-keys", "-t", "b", "q")
        time.sleep(0.5)
        tmux("send-keys", "-t", "b", "y")
        wait_for(lambda: ui_stats.exists() and engine_stats.exists(), 30, "the console to exit")
        ui = json.loads(ui_stats.read_text())
        engine = json.loads(engine_stats.read_text())

        def window_p99(samples: list[list[float]], start: float, end: float) -> float:
            lags = [ms for t, ms in samples if start <= t <= end]
            return round(percentile(lags, 99) or 0.0, 1)

        result["engine_loop_lag_p99_ms"] = window_p99(engine["samples"], steady, keys_from)
        result["engine_loop_lag_p99_keys_ms"] = window_p99(engine["samples"], keys_from, keys_to)
        result["ui_loop_lag_p99_ms"] = window_p99(ui["samples"], steady, keys_from)
        result["ui_loop_lag_p99_keys_ms"] = window_p99(ui["samples"], keys_from, keys_to)
        result["ui_loop_lag_p99_run_ms"] = round(ui["ui_lag_p99_ms"] or 0.0, 1)
        finals = sorted(run_dir.glob("snapshot*.json"), key=lambda p: p.stat().st_mtime)
        if finals:
            console = json.loads(finals[-1].read_text()).get("console", {})
            engine_lag = console.get("loop_lag_p99_ms")
            result["engine_loop_lag_p99_run_ms"] = round(engine_lag, 1) if engine_lag else None
        result["loop_lag_p99_ms"] = max(
            result.get("engine_loop_lag_p99_ms") or 0.0, result["ui_loop_lag_p99_ms"]
        )
        if not args.no_headless:
            base = headless_cpu(work / "headless", args.warmup, args.window)
            result["cpu_pct_headless"] = round(base, 2)
            result["draw_cpu_pct"] = round(result["cpu_pct"] - base, 2)
    finally:
        tmux("kill-server")  # our private server only
        if proc is not None:
            reap(proc)
    print(f"console CPU      {result.get('cpu_pct')} % of a core (40 panes, 4 Hz)")
    if "draw_cpu_pct" in result:
        print(
            f"  headless CPU   {result['cpu_pct_headless']} %  -> drawing {result['draw_cpu_pct']} %"
        )
    print(f"RSS              {result.get('rss_mb')} MB")
    print(
        f"loop lag p99     engine {result.get('engine_loop_lag_p99_ms')} ms steady, "
        f"{result.get('engine_loop_lag_p99_keys_ms')} ms while pressing keys, "
        f"{result.get('engine_loop_lag_p99_run_ms')} ms whole run incl. startup; UI "
        f"{result.get('ui_loop_lag_p99_ms')} ms steady, "
        f"{result.get('ui_loop_lag_p99_keys_ms')} ms while pressing keys, "
        f"{result.get('ui_loop_lag_p99_run_ms')} ms whole run incl. startup"
    )
    print(
        f"key-to-fault     p95 {result.get('key_to_fault_p95_ms')} ms, "
        f"p50 {result.get('key_to_fault_p50_ms')} ms over {args.keys} presses"
    )
    print(json.dumps(result))
    os.environ.pop("STRESSDECK_UI_STATS", None)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
