"""HTTP benchmark: Stressdeck's workers against Locust and wrk on the same loopback nginx.

Run: ``python bench/http_bench.py [--duration 5] [--vus 50] [--rounds 3]``. Everything is
bounded: each stage runs ``--duration`` seconds against 127.0.0.1 only. The last line printed
is one JSON object with every figure; missing tools are named in it (``"missing": [...]``),
never guessed.

Stages:
1. Per core, closed model (``--vus`` connections, no think time, GET a small static file from
   nginx), ``--rounds`` times: one Stressdeck worker process with the default client (raw
   HTTP/1.1 on uvloop), the same with each change undone (aiohttp instead of the raw client,
   asyncio's loop instead of uvloop), and Locust ``FastHttpUser`` in one process. Each round's
   ratio to Locust is taken within the round; the medians are reported. Worker CPU per request
   (user + system, from the worker's rusage) is reported too: it is far less noisy than req/s
   on a shared machine.
2. All cores, in the same rounds: a group that does not set ``count`` (one worker per core,
   :func:`default_workers`) sharing the same ``--vus``, against wrk (``-t2``, C, the ceiling).
3. Once: the httpx and httpx-over-aiohttp clients and Locust ``HttpUser``, for the README.
4. Open-model accuracy: ``constant-arrival-rate`` at 1,000 iterations/s against nginx; the
   achieved rate must be within 1% and dropped iterations are reported.
5. Latency fidelity: the embedded target adds a known delay (100 ms) to every response, at
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
import statistics
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
from console.sessions.http.config import HttpGroupConfig, default_workers  # noqa: E402
from console.targets.http_control import EmbeddedTarget  # noqa: E402

LOCUSTFILE = """
from locust import {base}, constant, task

class Bench({base}):
    wait_time = constant(0)

    @task
    def get(self):
        self.client.get("{path}")
"""


def _reap(proc: subprocess.Popen[bytes], timeout: float = 15.0) -> float:
    """Wait (bounded) for a worker to exit; the CPU seconds it used, user plus system."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return float(usage.ru_utime + usage.ru_stime)
        time.sleep(0.02)
    proc.kill()
    proc.wait(5)
    return 0.0


def run_worker(
    raw: dict[str, Any],
    base_url: str,
    timeout: float,
    index: int = 0,
    workers: int = 1,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Run one Stressdeck worker process to the end of its scenario; totals, latency, CPU."""
    config, issues = read_table(HttpGroupConfig, {"name": "bench", **raw}, ("http",))
    assert config is not None, issues
    spec = {"config": dataclasses.asdict(config), "base_url": base_url, "index": index,
            "workers": workers, "run_probes": False, "report_interval": 0.25}  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "console.sessions.http.worker"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        env=dict(os.environ, PYTHONPATH=str(ROOT), **(env or {})),
    )  # fmt: skip
    assert proc.stdin is not None and proc.stdout is not None
    # The console's child protocol (console.children): a start command carrying the spec.
    proc.stdin.write((json.dumps({"cmd": "start", "spec": spec}) + "\n").encode())
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
    cpu = _reap(proc)
    return {"totals": totals, "trend": trend, "active_s": last - (first or started), "cpu_s": cpu}


def stressdeck_rate(
    url: str,
    client: str,
    vus: int,
    duration: float,
    workers: int = 1,
    env: dict[str, str] | None = None,
) -> dict[str, float]:
    """Requests per second of ``workers`` processes sharing ``vus`` (a group with count=N),
    and the workers' CPU time per request in microseconds."""
    raw = {"executor": "constant-vus", "vus": vus, "duration": duration, "client": client,
           "steps": [{"request": {"url": "/index.html"}}]}  # fmt: skip
    with ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(
            lambda i: run_worker(raw, url, duration + 30, i, workers, env), range(workers)
        ))  # fmt: skip
    reqs = sum(r["totals"].get("http_reqs", 0.0) for r in results)
    cpu = sum(r["cpu_s"] for r in results)
    return {"rps": reqs / duration, "cpu_us_per_req": 1e6 * cpu / reqs if reqs else 0.0}


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


# What each change of issue 12 bought: (label, client, environment of the worker).
VARIANTS: tuple[tuple[str, str, dict[str, str]], ...] = (
    ("aiohttp_asyncio", "aiohttp", {"STRESSDECK_UVLOOP": "0"}),  # before issue 12
    ("aiohttp_uvloop", "aiohttp", {}),
    ("raw_asyncio", "raw", {"STRESSDECK_UVLOOP": "0"}),
    ("raw_uvloop", "raw", {}),  # the default
)


def _median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(statistics.median(present), 2) if present else None


def throughput(url: str, args: argparse.Namespace, have_locust: bool) -> dict[str, Any]:
    """Stages 1-3: per-core rounds against Locust, all cores against wrk, the other clients."""
    workers = default_workers()
    rounds: list[dict[str, Any]] = []
    for n in range(args.rounds):
        row: dict[str, Any] = {}
        for label, client, env in VARIANTS:
            row[label] = stressdeck_rate(url, client, args.vus, args.duration, env=env)
        fast = locust_rate(url, "FastHttpUser", args.vus, args.duration) if have_locust else None
        row["locust_FastHttpUser"] = fast
        row["all_cores"] = stressdeck_rate(url, "raw", args.vus, args.duration, workers=workers)
        row["wrk"] = wrk_rate(url, args.vus, args.duration)
        rounds.append(row)
        shown = {k: round(v["rps"]) if isinstance(v, dict) else v for k, v in row.items()}
        print(f"round {n + 1}: req/s {shown}", flush=True)

    def ratio(row: dict[str, Any], label: str, base: str) -> float | None:
        value, ref = row[label], row[base]
        value = value["rps"] if isinstance(value, dict) else value
        ref = ref["rps"] if isinstance(ref, dict) else ref
        return value / ref if value and ref else None

    variants = {
        label: {
            "rps": _median([r[label]["rps"] for r in rounds]),
            "x_locust_fast": _median([ratio(r, label, "locust_FastHttpUser") for r in rounds]),
            "cpu_us_per_req": _median([r[label]["cpu_us_per_req"] for r in rounds]),
        }
        for label, _client, _env in VARIANTS
    }
    per_core = {
        "stressdeck_rps": variants["raw_uvloop"]["rps"],
        "locust_FastHttpUser_rps": _median([r["locust_FastHttpUser"] for r in rounds]),
        "x_locust_fast": variants["raw_uvloop"]["x_locust_fast"],
        "x_locust_fast_by_round": [
            round(x, 2) if x else None for x in (ratio(r, "raw_uvloop", "locust_FastHttpUser")
                                                 for r in rounds)
        ],
    }  # fmt: skip
    all_cores = {
        "workers": workers,
        "stressdeck_rps": _median([r["all_cores"]["rps"] for r in rounds]),
        "wrk_rps": _median([r["wrk"] for r in rounds]),
        "pct_of_wrk": _median(
            [100 * x if (x := ratio(r, "all_cores", "wrk")) else None for r in rounds]
        ),
    }
    others: dict[str, float | None] = {}
    for client in ("httpx", "httpx-aiohttp"):
        others[f"stressdeck_{client}"] = round(
            stressdeck_rate(url, client, args.vus, args.duration)["rps"], 1
        )
    if have_locust:
        value = locust_rate(url, "HttpUser", args.vus, args.duration)
        others["locust_HttpUser"] = round(value, 1) if value is not None else None
    print(f"per core: {per_core}", flush=True)
    print(f"what each change bought (medians): {variants}", flush=True)
    print(f"all cores: {all_cores}", flush=True)
    print(f"other clients, once: {others}", flush=True)
    return {"per_core": per_core, "variants": variants, "all_cores": all_cores, "others": others}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per stage")
    parser.add_argument("--vus", type=int, default=50, help="connections in the closed-model stage")
    parser.add_argument("--rate", type=float, default=1000.0, help="open-model target rate")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the throughput stages")
    args = parser.parse_args(argv)
    results: dict[str, Any] = {"bench": "http", "cpus": os.cpu_count(), "duration_s": args.duration,
                               "vus": args.vus, "rounds": args.rounds, "missing": []}  # fmt: skip
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
            results.update(throughput(nginx.url, args, have_locust))
            results["open_model"] = open_model(nginx.url, args.rate, args.duration)
            print(f"open model: {results['open_model']}", flush=True)
    results["latency_fidelity"] = latency_fidelity(0.1, args.duration)
    print(f"latency fidelity: {results['latency_fidelity']}", flush=True)
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
