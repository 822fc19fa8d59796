"""Prometheus: a real server (Debian's ``prometheus``) scrapes a live run's ``/metrics`` on
loopback, and its HTTP API answers a PromQL query for ``stressdeck_http_reqs_total`` with the
count the run itself reports; ``promtool check metrics`` accepts the exposition."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from console.units import UnitError, parse_address
from tests.conftest import ROOT

PROMETHEUS = shutil.which("prometheus")
PROMTOOL = shutil.which("promtool")


# Real processes and servers: the full suite, not the fast tier (-m "not slow").
pytestmark = pytest.mark.slow


def test_metrics_listen_defaults_to_loopback() -> None:
    assert parse_address(":9464") == ("127.0.0.1", 9464)
    assert parse_address("9464") == ("127.0.0.1", 9464)
    assert parse_address("[::1]:9464") == ("::1", 9464)
    assert parse_address("0.0.0.0:9464") == ("0.0.0.0", 9464)  # only when the user says so
    with pytest.raises(UnitError):
        parse_address("localhost:http")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _get(url: str, timeout: float = 2.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        body: bytes = response.read()
        return body


def _wait_for(url: str, seconds: float) -> bytes:
    deadline = time.monotonic() + seconds
    while True:
        try:
            return _get(url)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@pytest.mark.slow
@pytest.mark.skipif(
    PROMETHEUS is None or PROMTOOL is None, reason="needs Debian's prometheus (see .ci/run)"
)
def test_prometheus_scrapes_a_live_run(tmp_path: Path) -> None:
    assert PROMETHEUS is not None and PROMTOOL is not None
    metrics_port, prom_port = _free_port(), _free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n"
        "scrape_configs:\n  - job_name: stressdeck\n    static_configs:\n"
        f"      - targets: ['127.0.0.1:{metrics_port}']\n"
    )
    prometheus = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    api = f"http://127.0.0.1:{prom_port}"
    try:
        _wait_for(f"{api}/-/ready", 60)
        profile = tmp_path / "http.toml"
        # Load for 4 s, then the pause control stops arrivals: the count is still for the
        # remaining seconds, so the last scrapes see the run's final figure.
        profile.write_text(
            f"""
[run]
name = "prom"
duration = "10s"
sample_interval = "250ms"
metrics_listen = "127.0.0.1:{metrics_port}"

[[http]]
name = "api"
base_url = "embedded"
executor = "constant-arrival-rate"
rate = 20
pre_allocated_vus = 2
max_vus = 5

  [[http.steps]]
  request = {{ url = "/api/v1/schemas/main/object-types" }}

[[faults]]
at = "4s"
action = "http.pause"
target = "api"

[[criteria]]
metric = "http_req_duration"
threshold = "p(95)<2000"
"""
        )
        runs = tmp_path / "runs"
        run = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "console",
                "run",
                str(profile),
                "--headless",
                "--runs-dir",
                str(runs),
            ],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + 30
        exposition = b""
        while b"stressdeck_http_req_duration_seconds_bucket{" not in exposition:
            assert time.monotonic() < deadline, exposition.decode()[-2000:]
            time.sleep(0.3)
            exposition = _wait_for(f"http://127.0.0.1:{metrics_port}/metrics", 30)
        checked = subprocess.run(
            [PROMTOOL, "check", "metrics"], input=exposition, capture_output=True, timeout=30
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr
        output, _ = run.communicate(timeout=120)
        assert run.returncode == 0, output
        (run_dir,) = runs.iterdir()
        final = json.loads(max(run_dir.glob("snapshot-*.json")).read_text())
        reported = next(m for m in final["metrics"] if m["name"] == "http_reqs")["values"]["count"]
        assert reported > 20

        query = 'sum(last_over_time(stressdeck_http_reqs_total{group="api",kind="http"}[5m]))'
        answer = json.loads(_get(f"{api}/api/v1/query?query={urllib.parse.quote(query)}"))
        assert answer["status"] == "success", answer
        (sample,) = answer["data"]["result"]
        assert float(sample["value"][1]) == reported

        states = 'last_over_time(stressdeck_criterion_state{state="pass"}[5m])'
        answer = json.loads(_get(f"{api}/api/v1/query?query={urllib.parse.quote(states)}"))
        assert [float(r["value"][1]) for r in answer["data"]["result"]] == [1.0]
        faults = "sum(last_over_time(stressdeck_faults_total[5m]))"
        answer = json.loads(_get(f"{api}/api/v1/query?query={urllib.parse.quote(faults)}"))
        assert float(answer["data"]["result"][0]["value"][1]) == 1.0  # the pause
    finally:
        prometheus.terminate()
        prometheus.wait(timeout=30)
