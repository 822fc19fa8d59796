"""k6's formats, read back with k6's documented structure.

``--out json``: every line is ``{"type", "data", "metric"}``; ``Metric`` lines carry ``name``,
``type`` (counter, gauge, rate, trend), ``contains``, ``tainted``, ``thresholds`` and
``submetrics``; each ``Point`` follows its ``Metric`` line and carries ``time`` (RFC 3339),
``value`` and ``tags`` (https://grafana.com/docs/k6/latest/results-output/real-time/json/).
``--summary-export``: ``root_group`` (``name``, ``path``, ``id``, ``groups``, ``checks``) and
``metrics`` with each metric's aggregates flat and ``thresholds`` as name -> failed.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from tests.conftest import ROOT

PROFILE = """
[run]
name = "k6"
duration = "2s"
sample_interval = "250ms"

[[fake]]
name = "ticker"
count = 2
interval = "20ms"
fail_every = 4

[[criteria]]
metric = "fake_latency"
threshold = "p(95)<2s"

[[criteria]]
metric = "fake_failed"
threshold = "rate<0.1"
"""


# Real processes and servers: the full suite, not the fast tier (-m "not slow").
pytestmark = pytest.mark.slow


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    profile = tmp_path / "k6.toml"
    profile.write_text(PROFILE)
    return subprocess.run(
        [sys.executable, "-m", "tests.engine_run", "run", str(profile), "--headless", *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_out_json_and_summary_export_have_k6s_structure(tmp_path: Path) -> None:
    out, summary_path = tmp_path / "out" / "result.json", tmp_path / "summary.json"
    proc = _run(
        tmp_path,
        "--runs-dir",
        str(tmp_path / "runs"),
        "--out",
        f"json={out}",
        "--summary-export",
        str(summary_path),
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr  # fake_failed rate is 25%
    # Private like every file of a run: they hold the run's figures and names.
    assert out.stat().st_mode & 0o777 == 0o600 and summary_path.stat().st_mode & 0o777 == 0o600
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    declared: dict[str, dict[str, object]] = {}
    sums: dict[str, float] = {}
    for line in lines:
        assert set(line) == {"type", "data", "metric"}, line
        if line["type"] == "Metric":
            data = line["data"]
            assert set(data) >= {"type", "contains", "tainted", "thresholds", "submetrics"}
            assert data["type"] in ("counter", "gauge", "rate", "trend")
            assert data["contains"] in ("default", "time", "data")
            declared[line["metric"]] = data
        else:
            assert line["type"] == "Point"
            assert line["metric"] in declared, "a Point before its Metric line"
            data = line["data"]
            assert set(data) == {"time", "value", "tags"}
            datetime.fromisoformat(data["time"])
            assert isinstance(data["value"], (int, float))
            assert {"scenario", "session", "kind"} <= set(data["tags"])
            sums[line["metric"]] = sums.get(line["metric"], 0.0) + data["value"]
    assert declared["fake_latency"]["type"] == "trend"
    assert declared["fake_latency"]["contains"] == "time"
    assert declared["fake_latency"]["thresholds"] == ["p(95)<2s"]
    assert declared["fake_samples"]["type"] == "counter"

    summary = json.loads(summary_path.read_text())
    assert set(summary) == {"root_group", "metrics"}
    root = summary["root_group"]
    assert root["name"] == "" and root["path"] == ""
    assert root["id"] == "d41d8cd98f00b204e9800998ecf8427e"  # k6's id of the root group
    metrics = summary["metrics"]
    latency = metrics["fake_latency"]
    assert set(latency) >= {"avg", "min", "med", "max", "p(90)", "p(95)", "thresholds"}
    assert latency["thresholds"] == {"p(95)<2s": False}  # k6: false = not failed
    failed = metrics["fake_failed"]
    assert set(failed) == {"passes", "fails", "value", "thresholds"}
    assert failed["value"] == failed["passes"] / (failed["passes"] + failed["fails"])
    assert failed["thresholds"] == {"rate<0.1": True}
    # Counter Points are increments: they add up to the run's count.
    assert sums["fake_samples"] == metrics["fake_samples"]["count"]
    assert set(metrics["fake_samples"]) == {"count", "rate"}


def test_out_json_gz_is_gzipped(tmp_path: Path) -> None:
    out = tmp_path / "result.gz"
    proc = _run(tmp_path, "--runs-dir", str(tmp_path / "runs"), "--out", f"json={out}")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    with gzip.open(out, "rt") as stream:
        first = json.loads(stream.readline())
    assert first["type"] == "Metric"
