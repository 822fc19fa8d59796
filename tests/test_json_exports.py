"""Every JSON file Stressdeck writes is JSON: no ``NaN`` or ``Infinity``, which ``json.dumps``
writes by default and jq, k6's tooling and ``JSON.parse`` reject. Non-finite figures are null."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import stat
from pathlib import Path
from typing import Any

from console.events import Event
from console.export import write_all
from console.k6 import JsonOutput, write_summary_export
from console.metrics import MetricSpec, MetricsRegistry, MetricType
from console.profile import load_profile_text
from console.snapshot import MetricSummary
from tests.synthetic_run import synthetic_snapshot


def _strict(text: str) -> Any:
    def reject(word: str) -> Any:
        raise AssertionError(f"{word} in a JSON file")

    return json.loads(text, parse_constant=reject)


def _snapshot_with_non_finite_figures() -> Any:
    metric = MetricSummary("lat", "gauge", "ms", {"value": math.inf, "min": -math.inf, "max": 1})
    return dataclasses.replace(synthetic_snapshot(), metrics=(metric,))


def test_snapshot_json_holds_no_nan_or_infinity(tmp_path: Path) -> None:
    profile = load_profile_text('[run]\nname = "t"\n[[pty]]\ncommand = "true"\n', path="t.toml")
    summary = {"throughput": math.nan, "peak": math.inf}
    write_all(tmp_path, 1, _snapshot_with_non_finite_figures(), profile, summary)
    data = _strict((tmp_path / "snapshot-1.json").read_text())
    assert data["summary"] == {"throughput": None, "peak": None}


def test_summary_export_holds_no_nan_or_infinity(tmp_path: Path) -> None:
    write_summary_export(tmp_path / "summary.json", _snapshot_with_non_finite_figures())
    data = _strict((tmp_path / "summary.json").read_text())
    assert data["metrics"]["lat"] == {"value": None, "min": None, "max": 1}


def test_out_json_holds_no_nan_or_infinity(tmp_path: Path) -> None:
    registry = MetricsRegistry([MetricSpec("level", MetricType.GAUGE, "")], lambda: 0.0)
    registry.gauge("level", math.inf, session="s#0")
    out = JsonOutput(tmp_path / "out.json", registry, lambda: [("s#0", "s", "x", "running")], {})
    out.sample()
    out.close()
    lines = [_strict(line) for line in (tmp_path / "out.json").read_text().splitlines()]
    assert [line["data"]["value"] for line in lines if line["type"] == "Point"] == [None]


def test_an_event_log_line_holds_no_nan_or_infinity() -> None:
    event = Event("t", None, None, "e", elapsed_ms=math.nan, data={"rate": math.inf})
    line = _strict(event.to_json())
    assert line["elapsed_ms"] is None and line["data"] == {"rate": None}


def test_directories_made_for_k6_outputs_are_private(tmp_path: Path) -> None:
    """``--out json=a/b/out.json`` and ``--summary-export c/d/summary.json`` made ``a/b`` and
    ``c/d`` 0755 (the umask's); the directory that was there keeps its mode."""
    os.chmod(tmp_path, 0o755)
    old = os.umask(0o022)
    try:
        registry = MetricsRegistry([MetricSpec("level", MetricType.GAUGE, "")], lambda: 0.0)
        JsonOutput(tmp_path / "a" / "b" / "out.json", registry, list, {}).close()
        write_summary_export(tmp_path / "c" / "d" / "summary.json", synthetic_snapshot())
    finally:
        os.umask(old)
    for made in ("a", "a/b", "c", "c/d"):
        assert stat.S_IMODE((tmp_path / made).stat().st_mode) == 0o700, made
    assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o755
