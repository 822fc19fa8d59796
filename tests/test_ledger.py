"""The fault impact ledger: baselines, worst values and recovery, on rows and in a real run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import pytest

from console.engine import Run
from console.ledger import FaultLedger, entry_verdict
from console.profile import load_profile_text
from console.snapshot import FaultRecord, LedgerEntry

P95 = "api|http_req_duration|p95"


def fault(fid: int, t: float, action: str = "http.latency") -> FaultRecord:
    return FaultRecord(
        id=fid, t=t, ts="", action=action, target="api", sessions=("api#0",), source="schedule"
    )


def ledger_on(spans: list[dict[str, Any]]) -> FaultLedger:
    return FaultLedger(
        sessions=lambda sid: ("http", "api") if sid.startswith("api") else None,
        spans=lambda: spans,
        ends_another=lambda action: action == "http.clear",
    )


def impact(entry: LedgerEntry, metric: str) -> Any:
    return next(i for i in entry.impacts if i.metric == metric)


def test_baseline_worst_and_back_after_the_end() -> None:
    spans = [{"id": 1, "start": 9.5, "end": 9.5}]  # the timeline's clock: no pause, fault.t
    ledger = ledger_on(spans)
    for t in range(1, 31):
        p95 = 2.0 + (t % 2) * 0.5 if not 10 < t <= 15 else 202.0 + t
        if t == 10:
            ledger.follow([fault(1, 9.5), fault(2, 9.6, "http.clear")])
        spans[0]["end"] = min(float(t), 15.0)  # a condition until http.clear at 15 s
        ledger.sample(float(t), {P95: p95, "api|http_reqs|rate": 50.0})
    (entry,) = ledger.entries()  # http.clear ends a fault: it is no fault of its own
    p95 = impact(entry, "p95")
    assert p95.baseline == pytest.approx(2.25, abs=0.25)
    assert p95.worst == 217.0
    # Back at the first sample after the end (16 s) for two samples in a row.
    assert p95.state == "back" and p95.back_after == pytest.approx(16.0 - 9.5)
    reqs = impact(entry, "req/s")
    assert reqs.state == "back" and reqs.back_after == pytest.approx(16.0 - 9.5)  # never worse
    assert impact(entry, "error rate").state == "no baseline"


def test_not_back_after_the_give_up_time_and_run_end_is_not_judged() -> None:
    spans: list[dict[str, Any]] = [
        {"id": 1, "start": 5.0, "end": 5.0},
        {"id": 2, "start": 47.5, "end": None},
    ]
    ledger = ledger_on(spans)
    for t in range(1, 50):
        if t == 6:
            ledger.follow([fault(1, 5.0, "http.stall")])
        if t == 48:
            ledger.follow([fault(1, 5.0, "http.stall"), fault(2, 47.5, "http.burst")])
        ledger.sample(float(t), {P95: 2.0 if t < 5 else 900.0 if t < 48 else 5000.0})
    ledger.finish()
    first, second = ledger.entries()
    assert impact(first, "p95").state == "not back"
    assert impact(second, "p95").state == "run ended"


def test_the_verdict_names_the_ledgers_own_give_up_time() -> None:
    """A ledger given 10 s to wait said "not back to baseline after 30 s" (the default)."""
    spans = [{"id": 1, "start": 5.0, "end": 5.0}]
    ledger = FaultLedger(sessions=lambda sid: ("http", "api"), spans=lambda: spans, give_up=10.0)
    for t in range(1, 20):
        if t == 6:
            ledger.follow([fault(1, 5.0, "http.stall")])
        ledger.sample(float(t), {P95: 2.0 if t < 5 else 900.0})
    (entry,) = ledger.entries()
    assert impact(entry, "p95").state == "not back"
    assert entry_verdict(entry) == ("fail", "api p95 not back to baseline after 10 s")


def test_the_noise_of_the_baseline_widens_the_tolerance() -> None:
    spans = [{"id": 1, "start": 9.5, "end": 9.5}]
    ledger = ledger_on(spans)
    for t in range(1, 20):
        if t == 10:
            ledger.follow([fault(1, 9.5, "http.burst")])
        noisy = 20.0 if t % 2 else 60.0  # a metric that swings by 3x on its own
        ledger.sample(float(t), {P95: noisy})
    (entry,) = ledger.entries()
    assert impact(entry, "p95").state == "back"


def test_a_fault_being_injected_waits_for_its_refusals() -> None:
    """A kind may take a while to answer (a cluster actor: up to 15 s) and then refuse: the
    record loses those sessions, or goes altogether. A sample in between must not enter it
    as it first stood: a withdrawn fault stayed in the ledger, report.md and junit.xml."""
    spans = [{"id": 1, "start": 5.0, "end": 5.0}, {"id": 2, "start": 6.0, "end": 6.0}]
    ledger = FaultLedger(
        sessions=lambda sid: ("http", sid.partition("#")[0]),
        spans=lambda: spans,
    )
    both = FaultRecord(
        id=2, t=6.0, ts="", action="http.stall", target="all",
        sessions=("api#0", "web#0"), source="schedule",
    )  # fmt: skip
    ledger.follow([fault(1, 5.0, "http.stall"), both], in_flight={1, 2})
    assert ledger.entries() == ()  # neither is final yet
    # Fault 1 was refused everywhere (gone from the record); fault 2 by web#0.
    ledger.follow([FaultRecord(**{**both.__dict__, "sessions": ("api#0",)})], in_flight=set())
    (entry,) = ledger.entries()
    assert entry.fault_id == 2 and {i.group for i in entry.impacts} == {"api"}


LATENCY = """
[run]
name = "ledger"
duration = "26s"
[[http]]
name = "api"
executor = "constant-arrival-rate"
rate = 40
pre_allocated_vus = 5
max_vus = 40
  [[http.steps]]
  request = { url = "/api/v1/schemas/main/object-types" }
[[faults]]
at = "10s"
action = "http.latency"
target = "api"
params = { delay = "200ms" }
[[faults]]
at = "15s"
action = "http.clear"
target = "api"
"""


@pytest.mark.slow
async def test_a_scheduled_latency_is_one_ledger_entry(tmp_path: Path) -> None:
    result = await Run(load_profile_text(LATENCY, name="t"), runs_dir=tmp_path).run()
    (entry,) = result.snapshot.ledger
    assert entry.action == "http.latency" and entry.end == pytest.approx(15.0, abs=0.1)
    p95 = impact(entry, "p95")
    assert p95.baseline is not None and p95.baseline < 100, p95  # clean: a few ms
    assert p95.worst is not None and 190 <= p95.worst - p95.baseline <= 400, p95
    assert p95.state == "back" and p95.back_after is not None, p95
    assert p95.back_after >= 15.0 - entry.t, p95  # back only after the fault ended
    data = json.loads((result.run_dir / "snapshot-1.json").read_text())
    assert data["ledger"][0]["impacts"][0]["metric"] == "p95"
    report = (result.run_dir / "report.md").read_text()
    assert "## Fault impact" in report and "| http.latency |" in report
    suite = ET.parse(result.run_dir / "junit.xml").getroot()
    cases = [c for c in suite if c.get("name", "").startswith("fault ")]
    # a recovered fault is a passing case; its text is in the suite's system-out (the strict
    # JUnit schema puts output there, not in a case)
    assert len(cases) == 1 and not list(cases[0])
    assert f"{cases[0].get('name')}: recovered in" in (suite.findtext("system-out") or "")


def test_the_faults_panel_shows_the_verdict_and_the_newest_fault_s_impact() -> None:
    from widgets.faults import impact_lines

    spans = [{"id": 1, "start": 3.5, "end": 3.5}]
    ledger = ledger_on(spans)
    for t in range(1, 12):
        if t == 4:
            ledger.follow([fault(1, 3.5, "http.stall")])
        ledger.sample(float(t), {P95: 900.0 if t in (4, 5) else 2.0})
    (entry,) = ledger.entries()
    text = [line.plain for line in impact_lines(entry)]
    assert text[0].strip() == "recovered in 2.5 s"
    assert "api p95 2.00ms → 900ms, back after 2.5 s" in [line.strip() for line in text]
    # A narrow panel wraps the line under the fault, never cutting the recovery time short.
    narrow = [line.plain for line in impact_lines(entry, width=24)]
    assert " ".join(w for line in narrow for w in line.split()) == " ".join(
        w for line in text for w in line.split()
    )
    assert all(len(line) <= 24 for line in narrow) and len(narrow) > len(text)
