"""Network-fault benchmark: a link's own cost, and how exact its toxics are, against nginx.

Run: ``python bench/net_bench.py [--duration 5] [--connections 50]``. Everything is bounded and
on 127.0.0.1. The link runs in its own process with Toxiproxy's API on (as in a run, the proxy
shares no loop with the load generator), and toxics are set through that API. The last line
printed is one JSON object with every figure; missing tools are named in it, never guessed.

Stages:
1. Cost with no toxic: wrk (``-t2 -c50``, keep-alive) on a small static file, direct vs through
   the link - the throughput ratio, the median of ``--rounds`` rounds - and, as the reference,
   through nginx's own TCP proxy in C (its stream module, Debian's ``libnginx-mod-stream``)
   in the same rounds; then one keep-alive connection sending requests back to back, direct
   vs through the link - the added p50 and p99.
2. ``latency`` 100 ms (downstream): the added p50 must be 100 ms ± 2 ms; with ``jitter`` 20 ms
   every added delay must fall inside 80..120 ms (plus the link's own cost).
3. ``bandwidth`` 500 KB/s: a 5 MB download (10 s at the cap) must take its time within 5%.
4. Toxic in effect on an open connection: the time from sending the API call that adds a
   200 ms latency to its reply, and whether the very next request on an already open
   keep-alive connection is delayed (the chain is consulted per chunk, so it must be).
5. Key press to toxic in effect: the real console (Textual, headless) runs an HTTP group that
   goes through a link to nginx; ``w`` then ``2`` (latency 200 ms) is pressed, and the time
   until the link's chain holds the toxic - what every open connection consults at its next
   chunk - is measured.

On 2 cores wrk, nginx and the proxy share them, so absolute rates are low; the ratio is the
figure to read.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402

from bench.nginx_loopback import Nginx, NginxStreamProxy, nginx_path  # noqa: E402

BIG = 5_000_000


def serve(upstream: str) -> None:
    """The link process: one link and the API, until stdin closes."""
    from console.net.api import ApiServer, LinkSet

    async def main() -> None:
        links = LinkSet()
        await links.create("web", "127.0.0.1:0", upstream, True)
        api = ApiServer(links, "127.0.0.1:0")
        await api.start()
        print(json.dumps({"listen": links.links["web"].listen, "api": api.address}), flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        await api.stop()
        await links.close()

    asyncio.run(main())


class LinkProcess:
    def __init__(self, upstream: str) -> None:
        env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve", upstream],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            text=True,
        )
        assert self.proc.stdout is not None
        info = json.loads(self.proc.stdout.readline())
        self.listen: str = info["listen"]
        self.api_host, _, port = info["api"].rpartition(":")
        self.api_port = int(port)

    def api(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        conn = http.client.HTTPConnection(self.api_host, self.api_port, timeout=10)
        data = json.dumps(body) if body is not None else None
        conn.request(method, path, body=data, headers={"Content-Type": "application/json"})
        reply = conn.getresponse()
        raw = reply.read()
        conn.close()
        return reply.status, json.loads(raw) if raw else None

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def wrk(url: str, connections: int, duration: float) -> float | None:
    binary = shutil.which("wrk")
    if binary is None:
        return None
    out = subprocess.run(
        [binary, "-t2", f"-c{connections}", f"-d{duration:g}s", url],
        capture_output=True,
        text=True,
        timeout=duration + 30,
        check=False,
    ).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    return float(match.group(1)) if match else None


def timed_requests(host: str, port: int, path: str, n: int) -> list[float]:
    """Seconds per request on one keep-alive connection, back to back."""
    conn = http.client.HTTPConnection(host, port, timeout=30)
    times = []
    for _ in range(n):
        start = time.perf_counter()
        conn.request("GET", path)
        reply = conn.getresponse()
        reply.read()
        times.append(time.perf_counter() - start)
    conn.close()
    return times


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


KEY_PROFILE = """
[run]
name = "net-bench-keys"
duration = "60s"

[[links]]
name = "web"

[[http]]
name = "load"
base_url = "{url}"
via = "web"
vus = 1
  [[http.steps]]
  request = {{ url = "/index.html" }}
  [[http.steps]]
  sleep = "50ms"
"""


async def key_to_effect(url: str, tmp: Path) -> tuple[float, float]:
    """Milliseconds from pressing the preset's key to the toxic being in the link's chain, and
    from the app sending the fault to the engine (the key handled) to the same moment."""
    from console.profile import load_profile_text
    from console.ui.app import make_app

    profile = load_profile_text(KEY_PROFILE.format(url=url), path=tmp / "keys.toml")
    app = make_app(profile, runs_dir=tmp, duration=60.0, show_log=False)
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            for _ in range(400):
                snap = app.snapshot
                if snap is not None and all(s.state == "running" for s in snap.sessions):
                    break
                await pilot.pause(0.05)
            assert app.controller is not None
            link = app.controller.run.runtimes["net"].links["web"].link  # type: ignore[attr-defined]
            sent: list[float] = []
            send = app._inject

            def timed(*args: Any, **kw: Any) -> None:
                sent.append(time.perf_counter())
                send(*args, **kw)

            app._inject = timed  # type: ignore[method-assign]
            seen: list[float] = []

            def watch() -> None:  # a thread: the UI loop may be busy redrawing meanwhile
                deadline = time.perf_counter() + 10
                while "key_latency_downstream" not in link.toxics:
                    if time.perf_counter() > deadline:
                        return
                    time.sleep(0.0002)
                seen.append(time.perf_counter())

            watcher = threading.Thread(target=watch)
            watcher.start()
            await pilot.press("w")
            start = time.perf_counter()
            await pilot.press("2")
            await asyncio.to_thread(watcher.join)
            if not seen or not sent:
                raise RuntimeError("the key's toxic never reached the link")
            took = (seen[0] - start) * 1000, (seen[0] - sent[0]) * 1000
            await pilot.press("q")
            await pilot.pause(0.2)
            await pilot.press("y")
            for _ in range(300):
                if app.run_result is not None:
                    break
                await pilot.pause(0.05)
            return took
    finally:
        if app.controller is not None:
            app.controller.stop()
            app.controller.result(timeout=20)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk stage")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3, help="wrk rounds of stage 1 (medians)")
    parser.add_argument("--requests", type=int, default=2000, help="sequential requests")
    parser.add_argument("--serve", metavar="UPSTREAM", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve)
        return 0
    figures: dict[str, Any] = {"missing": []}
    if nginx_path() is None:
        figures["missing"].append("nginx")
        print(json.dumps(figures))
        return 1
    if shutil.which("wrk") is None:
        figures["missing"].append("wrk")
    with Nginx(conn_limit=1000, workers=1) as nginx:
        (nginx.tmp / "www" / "big.bin").write_bytes(os.urandom(BIG))
        link = LinkProcess(f"127.0.0.1:{nginx.port}")
        try:
            lhost, _, lport_text = link.listen.rpartition(":")
            lport = int(lport_text)
            direct_url = nginx.url + "/index.html"
            proxied_url = f"http://{link.listen}/index.html"

            # 1. cost with no toxic: rounds of direct / link / nginx's own TCP proxy, medians
            proxy_proc = psutil.Process(link.proc.pid)
            runs: dict[str, list[float]] = {"direct": [], "link": [], "nginx": []}
            cpu = wall = 0.0
            with contextlib.ExitStack() as stack:
                try:
                    stream = stack.enter_context(NginxStreamProxy(nginx.port))
                    stream_url: str | None = f"http://127.0.0.1:{stream.port}/index.html"
                except (FileNotFoundError, RuntimeError):
                    stream_url = None
                    figures["missing"].append("libnginx-mod-stream (the C proxy reference)")
                for _ in range(args.rounds):
                    runs["direct"].append(wrk(direct_url, args.connections, args.duration) or 0)
                    cpu_before, wall_before = sum(proxy_proc.cpu_times()[:2]), time.perf_counter()
                    runs["link"].append(wrk(proxied_url, args.connections, args.duration) or 0)
                    cpu += sum(proxy_proc.cpu_times()[:2]) - cpu_before
                    wall += time.perf_counter() - wall_before
                    if stream_url:
                        runs["nginx"].append(wrk(stream_url, args.connections, args.duration) or 0)
            direct_rps = statistics.median(runs["direct"])
            proxied_rps = statistics.median(runs["link"])
            figures["link_cpu_pct_during_wrk"] = round(cpu / wall * 100, 1) if wall else None
            if proxied_rps:
                figures["link_cpu_us_per_request"] = round(
                    cpu / (statistics.mean(runs["link"]) * wall) * 1e6, 1
                )
            figures["wrk_direct_rps"] = direct_rps
            figures["wrk_link_rps"] = proxied_rps

            def ratio(name: str) -> float | None:
                pairs = [b / a for a, b in zip(runs["direct"], runs[name], strict=False) if a and b]
                return round(statistics.median(pairs), 3) if pairs else None

            figures["throughput_ratio"] = ratio("link")  # median of the rounds' ratios
            if runs["nginx"]:
                figures["wrk_nginx_stream_rps"] = statistics.median(runs["nginx"])
                figures["nginx_stream_ratio"] = ratio("nginx")
                if figures["throughput_ratio"] and figures["nginx_stream_ratio"]:
                    figures["link_vs_nginx_stream"] = round(
                        figures["throughput_ratio"] / figures["nginx_stream_ratio"], 3
                    )
            direct = timed_requests("127.0.0.1", nginx.port, "/index.html", args.requests)
            proxied = timed_requests(lhost, lport, "/index.html", args.requests)
            figures["direct_p50_ms"] = round(pct(direct, 50) * 1000, 3)
            figures["link_p50_ms"] = round(pct(proxied, 50) * 1000, 3)
            figures["added_p50_ms"] = round((pct(proxied, 50) - pct(direct, 50)) * 1000, 3)
            figures["added_p99_ms"] = round((pct(proxied, 99) - pct(direct, 99)) * 1000, 3)
            base = pct(direct, 50)

            # 2. latency accuracy
            status, _ = link.api(
                "POST",
                "/proxies/web/toxics",
                {"name": "lat", "type": "latency", "attributes": {"latency": 100}},
            )
            assert status == 200, status
            slow = timed_requests(lhost, lport, "/index.html", 200)
            figures["latency100_added_p50_ms"] = round((pct(slow, 50) - base) * 1000, 2)
            figures["latency100_within_2ms"] = abs(pct(slow, 50) - base - 0.1) <= 0.002
            link.api("POST", "/proxies/web/toxics/lat", {"attributes": {"jitter": 20}})
            jittered = [t - base for t in timed_requests(lhost, lport, "/index.html", 200)]
            figures["jitter20_added_min_ms"] = round(min(jittered) * 1000, 2)
            figures["jitter20_added_max_ms"] = round(max(jittered) * 1000, 2)
            figures["jitter20_added_p50_ms"] = round(statistics.median(jittered) * 1000, 2)
            own = max(figures["added_p99_ms"] / 1000, 0.001)  # the link's own cost, p99
            figures["jitter_within_bounds"] = (
                min(jittered) >= 0.08 - 0.001 and max(jittered) <= 0.12 + own + 0.002
            )
            link.api("DELETE", "/proxies/web/toxics/lat")

            # 3. bandwidth accuracy
            link.api(
                "POST",
                "/proxies/web/toxics",
                {"name": "bw", "type": "bandwidth", "attributes": {"rate": 500}},
            )
            (took,) = timed_requests(lhost, lport, "/big.bin", 1)
            rate = BIG / took
            figures["bandwidth_cap_Bps"] = 500_000
            figures["bandwidth_measured_Bps"] = round(rate)
            figures["bandwidth_error_pct"] = round((rate / 500_000 - 1) * 100, 2)
            figures["bandwidth_within_5pct"] = abs(rate / 500_000 - 1) <= 0.05
            link.api("DELETE", "/proxies/web/toxics/bw")

            # 4. toxic in effect on an open connection
            conn = http.client.HTTPConnection(lhost, lport, timeout=10)
            for _ in range(20):
                conn.request("GET", "/index.html")
                conn.getresponse().read()
            start = time.perf_counter()
            status, _ = link.api(
                "POST",
                "/proxies/web/toxics",
                {"name": "lat2", "type": "latency", "attributes": {"latency": 200}},
            )
            figures["api_call_to_effect_ms"] = round((time.perf_counter() - start) * 1000, 2)
            sent = time.perf_counter()
            conn.request("GET", "/index.html")
            conn.getresponse().read()
            figures["next_request_on_open_conn_ms"] = round((time.perf_counter() - sent) * 1000, 1)
            figures["in_effect_on_open_connection"] = time.perf_counter() - sent >= 0.2
            conn.close()
        finally:
            link.close()

        # 5. key press to toxic in effect, through the real console
        tmp = nginx.tmp / "runs"
        tmp.mkdir()
        pressed, handled = asyncio.run(key_to_effect(nginx.url, tmp))
        figures["key_press_to_effect_ms"] = round(pressed, 2)  # includes Pilot's own waits
        figures["key_handled_to_effect_ms"] = round(handled, 2)
    figures["target_added_p50_le_0_2ms"] = figures.get("added_p50_ms", 1e9) <= 0.2
    figures["target_throughput_ge_80pct"] = (figures.get("throughput_ratio") or 0) >= 0.8
    for key, value in figures.items():
        if key != "missing":
            print(f"{key:<34} {value}")
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
