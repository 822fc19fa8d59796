"""The headless summary reads like k6's: units, no raw None or 0.0, thresholds by their metric."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from console.engine import RunResult
from console.headless import figure_text, format_summary
from console.metrics import MetricType, describe
from console.snapshot import CriterionSnapshot, MetricSummary
from tests.synthetic_run import synthetic_snapshot


def _snapshot():  # type: ignore[no-untyped-def]
    metrics = (
        MetricSummary("http_req_failed", "rate", "", {"rate": 0.0, "passes": 0, "fails": 9}),
        MetricSummary("http_reqs", "counter", "count", {"count": 2000, "rate": 100.0}),
        MetricSummary("http_req_duration", "trend", "ms", {"p(95)": 1.234}),
        MetricSummary("data_received", "counter", "bytes", {"count": 131500, "rate": 26300}),
    )
    criterion = CriterionSnapshot(
        name="fast", expression="p(95)<2000", metric="http_req_duration", scope="run",
        state="pass", value=1.234, value_text="1.23ms", target_text="< 2s",
    )  # fmt: skip
    return replace(synthetic_snapshot(), metrics=metrics, criteria=(criterion,))


def test_figures_carry_units_and_never_a_raw_none_or_zero_point_zero() -> None:
    snap = _snapshot()
    assert figure_text(snap, "http_req_failed", 0.0) == "0%"
    assert figure_text(snap, "http_reqs rate", 99.98) == "100.0/s"
    assert figure_text(snap, "http_req_duration p(95)", 1.234) == "1.23ms"
    assert figure_text(snap, "global_reconnect_p95_ms", None) == "- (no data)"
    assert figure_text(snap, "pty_lines_lost", 0.0) == "0"


def test_bytes_read_as_sizes_with_rates_and_thresholds_sit_by_their_metric() -> None:
    assert describe(MetricType.COUNTER, "bytes", {"count": 131500, "rate": 26300}) == (
        "131.5KB 26.3KB/s"
    )
    text = format_summary(RunResult(0, _snapshot(), Path("/tmp/x")), {"http_reqs rate": 100.0})
    lines = text.splitlines()
    at = next(i for i, line in enumerate(lines) if line.strip().startswith("http_req_duration"))
    assert lines[at + 1].strip() == "✓ p(95)<2000"
    assert "None" not in text


def test_metrics_nothing_was_recorded_in_are_named_once_not_listed() -> None:
    """As k6: ``http_errors_tls count=0 rate=0.0/s`` on every run is noise; a metric a
    criterion judges is listed whatever its value."""
    snap = _snapshot()
    quiet = (
        MetricSummary("http_errors_tls", "counter", "count", {"count": 0, "rate": 0.0}),
        MetricSummary("vus", "gauge", "count", {"value": None}),
    )
    snap = replace(snap, metrics=(*snap.metrics, *quiet))
    lines = format_summary(RunResult(0, snap, Path("/tmp/x"))).splitlines()
    listed = {line.split()[0] for line in lines if line.startswith("    ") and " ..." in line}
    assert {"http_reqs", "http_req_duration"} <= listed
    assert not {"http_errors_tls", "vus"} & listed
    assert "    (2 more with nothing recorded: http_errors_tls, vus)" in lines
