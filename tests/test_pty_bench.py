"""bench/pty_bench.py, scaled down: the benchmark itself must account for every byte."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "pty_bench.py"


# Real processes and servers: the full suite, not the fast tier (-m "not slow").
pytestmark = pytest.mark.slow


def test_the_benchmark_reports_zero_loss_and_ends_with_a_json_line() -> None:
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--sessions", "4", "--mb", "1", "--timeout", "30"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    figures = json.loads(proc.stdout.strip().splitlines()[-1])
    assert figures["bytes_lost"] == 0
    assert figures["sessions_complete"] == 4
    assert figures["bytes_verified"] == figures["bytes_expected"] == 4 * 1_000_000
    assert figures["aggregate_mb_s"] > 0 and figures["console_peak_rss_mb"] > 0
    assert "bytes lost          0 (must be 0)" in proc.stdout
