"""HTTP benchmark: Stressdeck's worker against Locust and wrk on the same loopback nginx.

Run: ``python bench/http_bench.py [--duration 5] [--vus 50]``. Everything is bounded: each
stage runs ``--duration`` seconds against 127.0.0.1 only. The last line printed is one JSON
object with every figure; missing tools are named in it (``"missing": [...]``), never guessed.

Stages:
1. Highest steady rate, closed model (``--vus`` connections, no think time), GET a small static
   file from nginx: Stressdeck's worker with each of its clients (aiohttp, httpx, and httpx over
   an aiohttp transport; one client per VU in all three), the aiohttp client in two worker
   processes (``count = 2``), Locust ``FastHttpUser`` and ``HttpUser`` (one process each, as the
   worker), and wrk (``-t2``, C, the ceiling).
2. Open-model accuracy: ``constant-arrival-rate`` at 1,000 iterations/s against nginx; the
   achieved rate must be within 1% and dropped iterations are reported.
3. Latency fidelity: the embedded target adds a known delay (100 ms) to every response, at
   50 req/s; the reported p50/p95/p99 must be within 5% of it.

The machine this runs on matters: on 2 cores the generator, nginx and the console share them,
so absolute numbers are low and only the ratios between tools in the same run mean much.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.nginx_loopback import Nginx, nginx_path  # noqa: E402
from console.config import read_table  # noqa: E402
from console.metrics import Trend  # noqa: E402
from console.sessions.http.config import HttpGroupConfig  # noqa: E402
from console.targets.http_server import EmbeddedTarget  # noqa: E402

LOCUSTFILE = """
from locust import {base}, constant, task

class Bench({base}):
    wait_time = constant(0)

    @task
    def get(self):
        self.client.get("{path}")
"""


def run_worker(
    raw: dict[str, Any], base_url: str, timeout: float, index: int = 0, workers: int = 1
) -> dict[str, Any]:
    """Run one Stressdeck worker process to the end of its scenario; totals and latency."""
    config, issues = read_table(HttpGroupConfig, {"name": "bench", **raw}, ("http",))
    assert config is not None, issues
    spec = {"config": dataclasses.asdict(config), "base_url": base_url, "index": index,
            "workers": workers, "run_probes": False, "report_interval": 0.25}  # fmt: skip
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-m", "console.sessions.http.worker"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
    )  # fmt: skip
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write((json.dumps(spec) + "\n").encode())
    proc.stdin.flush()
    totals: dict[str, float] = {}
    trend = Trend()
    started = time.perf_counter()
    first: float | None = None
    last = started
    for line in proc.stdout:
        message = json.loads(line)
        if message.get("t") != "m":
            continue
        reqs = message["c"].get("http_reqs", 0)
        if reqs and first is None:
            first = time.perf_counter()
        if reqs:
            last = time.perf_counter()
        for name, amount in message["c"].items():
            totals[name] = totals.get(name, 0.0) + amount
        if "http_req_duration" in message["tr"]:
            trend.merge(Trend.decode(message["tr"]["http_req_duration"]))
        if time.perf_counter() - started > timeout:
            break
    proc.stdin.close()
    proc.wait(15)
    return {"totals": totals, "trend": trend, "active_s": last - (first or started)}


def stressdeck_rate(url: str, client: str, vus: int, duration: float, workers: int = 1) -> float:
    """Requests per second of ``workers`` processes sharing ``vus`` (a group with count=N)."""
    raw = {"executor": "constant-vus", "vus": vus, "duration": duration, "client": client,
           "steps": [{"request": {"url": "/index.html"}}]}  # fmt: skip
    with ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(
            lambda i: run_worker(raw, url, duration + 30, i, workers), range(workers)
        ))  # fmt: skip
    return sum(r["totals"].get("http_reqs", 0.0) for r in results) / duration


def locust_rate(url: str, base: str, vus: int, duration: float) -> float | None:
    with tempfile.TemporaryDirectory() as tmp:
        locustfile = Path(tmp) / "locustfile.py"
        locustfile.write_text(LOCUSTFILE.format(base=base, path="/index.html"))
        prefix = str(Path(tmp) / "out")
        cmd = [sys.executable, "-m", "locust", "-f", str(locustfile), "--headless", "-u", str(vus),
               "-r", str(vus), "-t", f"{int(duration)}s", "--host", url, "--csv", prefix,
               "--only-summary", "--loglevel", "ERROR", "--stop-timeout", "2"]  # fmt: skip
        subprocess.run(cmd, capture_output=True, timeout=duration + 60, cwd=tmp)
        stats = Path(prefix + "_stats.csv")
        if not stats.exists():
            return None
        with stats.open() as fh:
            for row in csv.DictReader(fh):
                if row.get("Name") == "Aggregated":
                    return float(row["Requests/s"])
    return None


def wrk_rate(url: str, vus: int, duration: float) -> float | None:
    wrk = shutil.which("wrk")
    if wrk is None:
        return None
    out = subprocess.run(
        [wrk, "-t2", f"-c{vus}", f"-d{int(duration)}s", url + "/index.html"],
        capture_output=True, text=True, timeout=duration + 30,
    ).stdout  # fmt: skip
    match = re.search(r"Requests/sec:\s+([0-9.]+)", out)
    return float(match.group(1)) if match else None


def open_model(url: str, rate: float, duration: float) -> dict[str, Any]:
    raw = {"executor": "constant-arrival-rate", "rate": rate, "duration": duration,
           "pre_allocated_vus": 50, "max_vus": 400,
           "steps": [{"request": {"url": "/index.html"}}]}  # fmt: skip
    result = run_worker(raw, url, duration + 30)
    totals = result["totals"]
    achieved = totals.get("iterations", 0.0) / duration
    trend: Trend = result["trend"]
    return {
        "target_rps": rate,
        "achieved_rps": round(achieved, 2),
        "error_pct": round(100.0 * (achieved - rate) / rate, 3),
        "within_1pct": abs(achieved - rate) <= 0.01 * rate,
        "dropped_iterations": int(totals.get("dropped_iterations", 0)),
        "failed": int(totals.get("http_errors_timeout", 0) + totals.get("http_errors_refused", 0)
                      + totals.get("http_errors_reset", 0) + totals.get("http_errors_other", 0)),
        "p99_ms": round(trend.percentile(99) or 0.0, 2),
    }  # fmt: skip


def reference_latency(url: str, duration: float) -> Trend:
    """The same route timed by the plainest client there is: blocking, one connection.

    It measures what the target and machine add on top of the known delay (timer rounding,
    scheduling), so the report can separate that from what the load generator adds.
    """
    host, _, port = url.removeprefix("http://").partition(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    trend = Trend()
    end = time.perf_counter() + duration
    while time.perf_counter() < end:
        start = time.perf_counter()
        conn.request("GET", "/health")
        conn.getresponse().read()
        trend.record((time.perf_counter() - start) * 1000.0)
    conn.close()
    return trend


def latency_fidelity(delay: float, duration: float) -> dict[str, Any]:
    with EmbeddedTarget(latency=delay) as target:
        raw = {"executor": "constant-arrival-rate", "rate": 50, "duration": duration,
               "pre_allocated_vus": 20, "max_vus": 100,
               "steps": [{"request": {"url": "/health"}}]}  # fmt: skip
        # The reference client runs at the same time, so it sees the same target and machine.
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(reference_latency, target.url, duration)
            result = run_worker(raw, target.url, duration + 30)
            reference = pending.result()
    trend: Trend = result["trend"]
    known = delay * 1000.0
    figures: dict[str, Any] = {"known_delay_ms": known, "samples": trend.count}
    ok = True
    worst_vs_reference = 0.0
    for p in (50, 95, 99):
        value = trend.percentile(p) or 0.0
        ref = reference.percentile(p) or known
        err = 100.0 * (value - known) / known
        figures[f"p{p}_ms"] = round(value, 2)
        figures[f"p{p}_error_pct"] = round(err, 2)
        figures[f"reference_p{p}_ms"] = round(ref, 2)
        worst_vs_reference = max(worst_vs_reference, abs(100.0 * (value - ref) / ref))
        ok = ok and abs(err) <= 5.0
    figures["within_5pct"] = ok
    figures["max_error_vs_reference_pct"] = round(worst_vs_reference, 2)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per stage")
    parser.add_argument("--vus", type=int, default=50, help="connections in the closed-model stage")
    parser.add_argument("--rate", type=float, default=1000.0, help="open-model target rate")
    args = parser.parse_args(argv)
    results: dict[str, Any] = {"bench": "http", "cpus": os.cpu_count(), "duration_s": args.duration,
                               "vus": args.vus, "missing": []}  # fmt: skip
    have_locust = (
        subprocess.run([sys.executable, "-c", "import locust"], capture_output=True).returncode == 0
    )
    if not have_locust:
        results["missing"].append("locust (pip install 'stressdeck[bench]')")
    if shutil.which("wrk") is None:
        results["missing"].append("wrk (apt-get install wrk)")
    if nginx_path() is None:
        results["missing"].append(
            "nginx (apt-get install nginx): throughput and open-model stages skipped"
        )
    else:
        with Nginx(conn_limit=60_000) as nginx:
            rates: dict[str, float | None] = {}
            for client in ("aiohttp", "httpx", "httpx-aiohttp"):
                rates[f"stressdeck_{client}"] = round(
                    stressdeck_rate(nginx.url, client, args.vus, args.duration), 1
                )
                print(
                    f"stressdeck ({client} client): {rates[f'stressdeck_{client}']} req/s",
                    flush=True,
                )
            two = round(
                stressdeck_rate(nginx.url, "aiohttp", args.vus, args.duration, workers=2), 1
            )
            rates["stressdeck_aiohttp_2_workers"] = two
            print(f"stressdeck (aiohttp, count = 2 workers): {two} req/s", flush=True)
            if have_locust:
                for base in ("FastHttpUser", "HttpUser"):
                    value = locust_rate(nginx.url, base, args.vus, args.duration)
                    rates[f"locust_{base}"] = round(value, 1) if value is not None else None
                    print(f"locust {base}: {rates[f'locust_{base}']} req/s", flush=True)
            wrk = wrk_rate(nginx.url, args.vus, args.duration)
            rates["wrk"] = round(wrk, 1) if wrk is not None else None
            print(f"wrk: {rates['wrk']} req/s", flush=True)
            results["max_rate_rps"] = rates
            results["open_model"] = open_model(nginx.url, args.rate, args.duration)
            print(f"open model: {results['open_model']}", flush=True)
    results["latency_fidelity"] = latency_fidelity(0.1, args.duration)
    print(f"latency fidelity: {results['latency_fidelity']}", flush=True)
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
