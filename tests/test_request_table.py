"""The per-request table, failures by message, checks by name and the scenario header, as
Locust and k6 users expect them at the end of a run: headless summary, report.md and
report.html, merged across worker processes."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import pytest

from console.command_line import complete
from console.config import read_table
from console.headless import run_headless
from console.metrics import Trend
from console.profile import load_profile_text
from console.secrets import Secrets
from console.sessions.base import SessionContext
from console.sessions.http.config import HttpGroupConfig
from console.sessions.http.flow import MAX_NAMES, OTHER_NAME, Flow
from console.sessions.http.session import HttpSession
from console.sessions.http.stats import MAX_MESSAGES, OTHER_MESSAGES, Stats
from console.sessions.http.tables import build
from tests.test_http_hardening import Services

# Two names that answer, one that answers 404 and one that is refused (port 1 on loopback).
PROFILE = """
[run]
name = "table"
duration = "5s"
[[http]]
name = "api"
count = 2
executor = "constant-arrival-rate"
rate = 20
duration = "3s"
pre_allocated_vus = 4
max_vus = 20
  [[http.steps]]
  request = { url = "/health" }
  checks = [{ status = 200, name = "health answers" }]
  [[http.steps]]
  name = "missing page"
  request = { url = "/no/such/page" }
  checks = [{ status = 200, name = "missing page answers" }]
  [[http.steps]]
  request = { method = "POST", url = "http://127.0.0.1:1/refused", timeout = "2s" }
"""


@pytest.mark.slow
def test_a_run_shows_requests_failures_and_checks_by_name(tmp_path: Path) -> None:
    out = io.StringIO()
    code = run_headless(load_profile_text(PROFILE, name="t"), runs_dir=tmp_path, duration=None,
                        out=out)  # fmt: skip
    text = out.getvalue()
    assert code == 0, text
    (run_dir,) = tmp_path.iterdir()
    data = json.loads(sorted(run_dir.glob("snapshot-*.json"))[-1].read_text())
    metrics = {m["name"]: m["values"] for m in data["metrics"]}
    tables = data["tables"]
    rows = {(r["method"], r["name"]): r for r in tables["requests"]}
    assert set(rows) == {
        ("GET", "/health"),
        ("GET", "missing page"),
        ("POST", "http://127.0.0.1:1/refused"),
    }
    health, missing, refused = (rows[k] for k in sorted(rows))
    # Every request is in exactly one row, merged over both workers.
    assert sum(r["requests"] for r in rows.values()) == metrics["http_reqs"]["count"]
    assert health["requests"] > 10 and health["failures"] == 0
    assert missing["failures"] == missing["requests"] > 10
    assert refused["failures"] == refused["requests"] > 10
    assert sum(r["failures"] for r in rows.values()) == metrics["http_req_failed"]["passes"]
    assert health["p95"] is not None and health["max"] >= health["p99"] >= health["med"] > 0
    # Failures grouped by message, counted exactly.
    failures = {(f["method"], f["name"]): f for f in tables["failures"]}
    assert set(failures) == {("GET", "missing page"), ("POST", "http://127.0.0.1:1/refused")}
    assert failures["GET", "missing page"]["message"] == "HTTP 404 Not Found"
    assert failures["GET", "missing page"]["occurrences"] == missing["requests"]
    assert failures["POST", "http://127.0.0.1:1/refused"]["message"].startswith("refused: ")
    assert failures["POST", "http://127.0.0.1:1/refused"]["occurrences"] == refused["requests"]
    # Checks by name, merged over both workers.
    checks = {c["name"]: c for c in tables["checks"]}
    assert checks["health answers"]["passes"] == health["requests"]
    assert checks["health answers"]["fails"] == 0
    assert checks["missing page answers"]["fails"] == missing["requests"]
    (scenario,) = tables["scenarios"]
    assert scenario["group"] == "api" and scenario["executor"] == "constant-arrival-rate"

    # The headless summary: scenario header, the table, failures and checks, no raw None.
    assert "scenarios: 1 scenario, 20 max VUs, 3.0s max duration" in text
    assert "* api: 20.00 iterations/s for 3.0s (VUs: 4-20, 2 workers)" in text
    assert "None" not in text and " 0.0 " not in text
    table = text.split("  requests\n")[1].split("\n\n")[0]
    lines = {line.split()[1]: line.split() for line in table.splitlines()[1:]}
    assert lines["/health"][2:4] == [str(health["requests"]), "0"]
    assert lines["missing"][3:5] == [str(missing["requests"]), str(missing["requests"])]
    assert "Aggregated" in table
    failure_lines = text.split("  failures\n")[1].split("\n\n")[0].splitlines()
    assert any(
        line.split()[:4] == [str(missing["requests"]), "GET", "missing", "page"]
        and line.endswith("HTTP 404 Not Found")
        for line in failure_lines
    ), failure_lines
    assert "✓ health answers" in text and "✗ missing page answers" in text

    # report.md has the same tables.
    report = (run_dir / "report.md").read_text()
    assert "## Requests" in report and "| GET | /health |" in report
    assert "| GET | missing page | HTTP 404 Not Found |" in report
    assert "## Checks" in report and "health answers" in report
    assert "## Scenarios" in report
    # Summary figures with their units, as in the headless summary: not 0.6667 or 0.0.
    assert "| http_req_failed rate | 66.67% |" in report
    assert "| dropped_iterations count | 0 |" in report
    html = (run_dir / "report.html").read_text()
    assert "missing page" in html and "HTTP 404 Not Found" in html


def test_names_are_bounded_per_worker_and_say_so() -> None:
    steps = [{"request": {"url": f"/item/{i}"}} for i in range(MAX_NAMES + 5)]
    config, issues = read_table(HttpGroupConfig, {"name": "g", "steps": steps}, ("http",))
    assert config is not None, issues
    flow = Flow(config, "http://127.0.0.1:9", Stats(), Path("."))
    names = {flow.name_of(step.request) for step in config.steps if step.request}
    assert len(names) == MAX_NAMES + 1 and f"* {OTHER_NAME}" in names
    assert flow.name_of(config.steps[0].request) == "GET /item/0"  # type: ignore[arg-type]


def _session(index: int) -> HttpSession:
    raw = {
        "name": "g",
        "count": 2,
        "steps": [{"request": {"url": "/a"}}, {"request": {"url": "/b"}}],
    }
    config, issues = read_table(HttpGroupConfig, raw, ("http",))
    assert config is not None, issues
    ctx = SessionContext(Services(), f"g#{index}", "http", "g", "embedded", 1)
    return HttpSession(ctx, config, index=index, workers=2, run_probes=False, base_dir=Path("."),
                       run_duration=0.0, embedded=True)  # fmt: skip


def test_names_merge_over_workers_with_one_histogram_machinery_and_clean_text() -> None:
    secret = "s3cret-token-123"
    sessions = [_session(0), _session(1)]
    everything = Trend()
    for n, session in enumerate(sessions):
        stats = Stats()
        for i in range(300):  # beyond the exact samples: the histogram answers
            value = 0.5 + (i % 37) * 0.11 + n
            stats.request("GET /a" if i % 3 else "GET /b", value)
            everything.record(value)
            if i % 3 == 0:
                stats.failure("GET /b", f"reset: \x1b]0;owned\x07 token {secret}")
        delta = stats.flush({})
        duration = Trend.decode(delta["tr"]["http_req_duration"])
        assert duration.count == 300 and sum(e["tr"]["n"] for e in delta["req"].values()) == 300
        session.handle(delta)
    tables = build(sessions, 10.0, Secrets(values=(secret,)))
    rows = {row.name: row for row in tables.requests}
    assert [row.name for row in tables.requests] == ["/a", "/b"]  # the flow's order
    assert rows["/a"].requests == 400 and rows["/b"].requests == 200 == rows["/b"].failures
    assert tables.aggregated is not None and tables.aggregated.requests == 600
    # The Aggregated row's percentiles are http_req_duration's, from the same histograms.
    assert tables.aggregated.p99 == pytest.approx(everything.percentile(99), rel=0.01)
    (failure,) = tables.failures
    assert failure.occurrences == 200 and "\x1b" not in failure.message
    assert "␛]0;owned␇" in failure.message and secret not in failure.message
    (scenario,) = tables.scenarios
    assert scenario.text == "1 looping VUs until stopped (2 workers)"


def test_distinct_failure_messages_are_bounded_per_worker() -> None:
    stats = Stats()
    for i in range(MAX_MESSAGES + 10):
        stats.failure("GET /a", f"timeout after {i}")
    messages = {message for _key, message, _n in stats.flush({})["fails"]}
    assert len(messages) == MAX_MESSAGES + 1 and OTHER_MESSAGES in messages


def test_the_scenario_header_says_how_long_it_runs_in_this_run() -> None:
    from console.sessions.http.tables import _planned

    assert _planned(1800.0, 20.0) == 20.0  # --duration 20s cuts a 30-minute ramp
    assert _planned(60.0, 1800.0) == 60.0
    assert _planned(math.inf, 20.0) == 20.0
    assert _planned(math.inf, 0.0) == 0.0  # nothing ends it: "until stopped"


def test_a_secret_cut_by_the_cell_limit_is_still_masked() -> None:
    """Redacted, then cut: cut first, a secret across the 200th character kept its head
    (``s3cr3…``), which the redactor no longer recognised."""
    secret = "s3cret-token-123"
    session = _session(0)
    stats = Stats()
    stats.request("GET /a", 1.0)
    stats.failure("GET /a", "x" * 190 + secret)
    session.handle(stats.flush({}))
    (failure,) = build([session], 10.0, Secrets(values=(secret,))).failures
    assert secret[:5] not in failure.message, failure.message


def test_per_second_figures_divide_by_the_time_between_samples() -> None:
    """At a 250 ms sample interval, 10 requests between samples are 40 req/s, not 10; and the
    command line offers iterations/s (what `:rate` sets), not req/s (two steps: twice as many)."""
    session = _session(0)
    services = session.ctx.services
    assert isinstance(services, Services)
    for t in (1.0, 1.25):
        services.t = t
        stats = Stats()
        for _ in range(5):  # five iterations of the two-step flow
            for name in ("GET /a", "GET /b"):
                stats.request(name, 1.0)
                stats.add("http_reqs")
            stats.add("iterations")
        session.handle(stats.flush({}))
        session.sample()
    assert session.series["req/s"].last == pytest.approx(40.0)
    view = session.view()
    assert dict(view.details)["iterations/s"] == "20.0"
    assert "rate g 20/s" in complete("rate g ", [view])


def test_the_merged_failures_of_a_group_are_bounded_as_one_workers() -> None:
    """Each worker reports up to MAX_MESSAGES messages plus "(other messages)": merged over
    four workers a group had ~200 rows, mostly "1 occurrence". The most frequent are kept,
    the rest summed into the "(other messages)" row."""
    sessions = [_session(i) for i in range(4)]
    for n, session in enumerate(sessions):
        stats = Stats()
        stats.request("GET /a", 1.0)
        for _ in range(5):
            stats.failure("GET /a", "HTTP 500")
        for i in range(60):
            stats.failure("GET /b", f"timeout {n}-{i}")
        session.handle(stats.flush({}))
    failures = build(sessions, 10.0, Secrets()).failures
    assert len(failures) == MAX_MESSAGES + 1
    assert sum(f.occurrences for f in failures) == 4 * 65  # nothing lost
    top, *_, other = failures
    assert (top.name, top.message, top.occurrences) == ("/a", "HTTP 500", 20)
    assert other.message == OTHER_MESSAGES and other.occurrences == 4 * 65 - 20 - 49
