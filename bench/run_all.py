"""Every benchmark, one after another, and one table: figure, today, the README's, a peer's.

    python bench/run_all.py                  # everything, about 12 minutes on 2 cores
    python bench/run_all.py --only pty tui   # some of them
    python bench/run_all.py --quick          # shorter stages, to try the harness

Each benchmark runs as its own process (``bench/<name>_bench.py``), its output passed through
as it comes; its last line is its JSON, as when it runs alone. The table is Markdown, so the
README's benchmark section can be pasted from one run of it; ``README`` below holds the figures
the README shows, and is updated with it. "peer" is the figure to compare with from the same
run: Locust or wrk for HTTP, the headless console for drawing, nginx without the link for the
network. The machine's load average before each benchmark is printed with the table: on a
shared 2-core machine absolute figures move with it, ratios within one run much less.

Ends with one JSON line: ``{"bench": "all", "results": {name: its JSON}, "load": {...}}``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

SPIKE2 = ["--profile", "profiles/spike2-ssh-pool.toml", "--panes", "10", "--keys", "0"]

# name: (arguments, arguments with --quick); the script is bench/<name up to "-">_bench.py
BENCHES: dict[str, tuple[list[str], list[str]]] = {
    "pty": ([], ["--sessions", "10", "--mb", "5"]),
    "tui": ([], ["--warmup", "4", "--window", "5", "--keys", "5"]),
    "tui-spike2": (SPIKE2, [*SPIKE2, "--warmup", "4", "--window", "5"]),
    "http": ([], ["--duration", "2", "--rounds", "1"]),
    "ssh": ([], ["--workload", "10", "--sessions", "20", "--rounds", "2"]),
    "net": (["--duration", "10"], ["--duration", "3", "--requests", "500"]),
    "soak": ([], ["--minutes", "1.5", "--warmup", "30"]),
}


def get(data: dict[str, Any], path: str) -> Any:
    """``a.b.c`` into nested dicts; None where any step is missing."""
    value: Any = data
    for key in path.split("."):
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


@dataclass(frozen=True)
class Row:
    bench: str
    figure: str
    path: str  # into the bench's JSON
    readme: float | str | None  # what the README shows (update with the README)
    target: str = ""
    peer: str | None = None  # path of the peer's figure in the same JSON
    peer_name: str = ""
    scale: float = 1.0  # today's unit from the JSON's (ms from s, ...)


ROWS: tuple[Row, ...] = (
    Row("pty", "PTY 30 x 10 MB: bytes lost", "bytes_lost", 0, "0"),
    Row("pty", "… aggregate throughput, MB/s", "aggregate_mb_s", 52.15, "≥ 50"),
    Row("pty", "… console CPU, s per MB", "console_cpu_s_per_mb", 0.009),
    Row("pty", "… the programs' CPU, % of a core", "programs_cpu_pct", 78.0),
    Row("pty", "… console peak RSS, MB", "console_peak_rss_mb", 36.8),
    Row("tui", "Console, 40 PTY panes at 4 Hz: CPU, % of a core", "cpu_pct", 6.6),
    Row(
        "tui",
        "… of which drawing, % of a core",
        "draw_cpu_pct",
        2.2,
        "≤ 5",
        "cpu_pct_headless",
        "headless CPU",
    ),
    Row("tui", "… RSS, MB", "rss_mb", 80.0),
    Row("tui", "… engine loop lag p99, steady, ms", "engine_loop_lag_p99_ms", 10.2, "≤ 10"),
    Row("tui", "… engine loop lag p99, whole run, ms", "engine_loop_lag_p99_run_ms", 14.6),
    Row("tui", "… UI loop lag p99, steady, ms", "ui_loop_lag_p99_ms", 2.1),
    Row("tui", "… key-to-fault p95, ms", "key_to_fault_p95_ms", 7.0),
    Row(
        "tui-spike2",
        "Console, spike2-ssh-pool (10 SSH panes): CPU, % of a core",
        "cpu_pct",
        5.0,
        "",
        "cpu_pct_headless",
        "headless CPU",
    ),
    Row("tui-spike2", "… its engine thread, % of a core", "engine_cpu_pct", 2.11, "< 5"),
    Row("tui-spike2", "… of which drawing, % of a core", "draw_cpu_pct", 2.8),
    Row(
        "http",
        "HTTP one worker (raw, uvloop), req/s",
        "per_core.stressdeck_rps",
        64479,
        "",
        "per_core.locust_FastHttpUser_rps",
        "Locust FastHttpUser",
    ),
    Row(
        "http",
        "… x Locust FastHttpUser (median of rounds)",
        "per_core.x_locust_fast",
        5.37,
        "≥ 2",
    ),
    Row(
        "http",
        "… all cores, req/s",
        "all_cores.stressdeck_rps",
        60129,
        "",
        "all_cores.wrk_rps",
        "wrk -t2",
    ),
    Row("http", "… all cores, % of wrk", "all_cores.pct_of_wrk", 62.69, "≥ 20"),
    Row("http", "… open model at 1,000/s: achieved", "open_model.achieved_rps", 1000),
    Row(
        "http",
        "… latency vs a reference client, worst error %",
        "latency_fidelity.max_error_vs_reference_pct",
        0.42,
    ),
    Row("ssh", "SSH 10-session workload: console CPU, %", "workload.console_cpu_pct", 2.41, "≤ 5"),
    Row("ssh", "… console RSS, MB", "workload.console_rss_mb", 52.7, "≤ 200"),
    Row("ssh", "… 100 at once: connect p95, ms", "connect.connect_p95_ms", 570.9),
    Row(
        "ssh",
        "… dropping all 100, 10 rounds: reconnected %",
        "reconnect.success_pct",
        100.0,
        "≥ 90",
    ),
    Row("ssh", "… reconnect p95, ms", "reconnect.p95_ms", 2036, "≤ 15000"),
    Row(
        "net",
        "Network link, wrk through it, req/s",
        "wrk_link_rps",
        52820,
        "",
        "wrk_direct_rps",
        "direct to nginx",
    ),
    Row("net", "… throughput ratio", "throughput_ratio", 0.559, "≥ 0.80"),
    Row("net", "… nginx's own TCP proxy (C), same rounds: ratio", "nginx_stream_ratio", 0.676),
    Row("net", "… added p50, no toxic, ms", "added_p50_ms", 0.019, "≤ 0.2"),
    Row("net", "… latency 100 ms: added p50, ms", "latency100_added_p50_ms", 100.9, "100 ± 2"),
    Row(
        "soak", "Demo soak: console growth after warm-up, MB/h", "console_growth_mb_h", 68.19, "≤ 5"
    ),
    Row("soak", "… PTY programs, MB/h", "pty_growth_mb_h", 3.72),
    Row("soak", "… HTTP workers, MB/h", "http_worker_growth_mb_h", 0.0),
    Row("soak", "… embedded SSH target, MB/h", "target_ssh_growth_mb_h", 5.51),
    Row("soak", "… embedded HTTP target, MB/h", "target_http_growth_mb_h", 0.08),
)


def fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        if abs(value) >= 100:
            return f"{value:.1f}"
        return f"{value:.3g}" if abs(value) < 1 else f"{value:.2f}".rstrip("0").rstrip(".")
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def run_bench(name: str, args: list[str], echo: Callable[[str], None]) -> dict[str, Any] | None:
    """Run ``bench/<name>_bench.py``; pass its output through; return its last JSON line."""
    argv = [sys.executable, str(HERE / f"{name.partition('-')[0]}_bench.py"), *args]
    echo(f"=== {name}: {' '.join(argv[1:])}")
    last: dict[str, Any] | None = None
    with subprocess.Popen(
        argv, cwd=ROOT, stdout=subprocess.PIPE, text=True, env=dict(os.environ)
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            echo(line.rstrip("\n"))
            if line.startswith("{"):
                try:
                    last = json.loads(line)
                except ValueError:
                    pass
    if proc.returncode not in (0, 1):  # 1: a bench's own "a target was missed"
        echo(f"=== {name}: exit status {proc.returncode}")
    return last


def table(results: dict[str, dict[str, Any] | None]) -> list[str]:
    lines = [
        "| figure | today | README | target | peer, same run |",
        "|---|---|---|---|---|",
    ]
    for row in ROWS:
        data = results.get(row.bench)
        if data is None:
            continue
        today = get(data, row.path)
        peer = ""
        if row.peer is not None:
            peer = f"{fmt(get(data, row.peer))} ({row.peer_name})"
        lines.append(
            f"| {row.figure} | **{fmt(today)}** | {fmt(row.readme)} | {row.target} | {peer} |"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--only", nargs="+", choices=list(BENCHES), help="these benchmarks only")
    parser.add_argument("--quick", action="store_true", help="shorter stages")
    parser.add_argument("--json-out", type=Path, help="also write every bench's JSON here")
    args = parser.parse_args(argv)
    names = args.only or list(BENCHES)
    results: dict[str, dict[str, Any] | None] = {}
    load: dict[str, float] = {}
    started = time.monotonic()
    for name in names:
        load[name] = os.getloadavg()[0]
        full, quick = BENCHES[name]
        results[name] = run_bench(name, quick if args.quick else full, print)
    print()
    print(
        f"One run of {', '.join(names)} in {(time.monotonic() - started) / 60:.1f} min on "
        f"{os.cpu_count()} cores; load average (1 min) before each: "
        + ", ".join(f"{n} {v:.1f}" for n, v in load.items())
    )
    print()
    for line in table(results):
        print(line)
    missing = [n for n, r in results.items() if r is None]
    if missing:
        print(f"\nno JSON from: {', '.join(missing)}")
    everything = {"bench": "all", "results": results, "load": load, "quick": args.quick}
    if args.json_out:
        args.json_out.write_text(json.dumps(everything, indent=1) + "\n")
    print(json.dumps(everything))
    return 1 if missing else 0


if __name__ == "__main__":
    raise SystemExit(main())
