"""HTTP sessions inside a real engine run: worker processes, metrics, faults, probes, criteria."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import cast

import pytest

from console.engine import Run
from console.profile import load_profile, load_profile_text
from console.sessions.http.config import HttpGroupConfig, default_workers

ROOT = Path(__file__).resolve().parent.parent

LOAD = """
[run]
name = "http-session"
duration = "6s"
[[http]]
name = "api"
executor = "constant-arrival-rate"
rate = 100
pre_allocated_vus = 5
max_vus = 40
  [[http.steps]]
  request = { url = "/api/v1/schemas/main/object-types" }
  checks = [{ status = 200 }]
[[criteria]]
name = "p95"
metric = "http_req_duration"
threshold = "p(95)<2000"
[[criteria]]
name = "errors"
metric = "http_req_failed"
threshold = "rate<0.5"
"""


# Real processes and servers: the full suite, not the fast tier (-m "not slow").
pytestmark = pytest.mark.slow


def counters(run: Run, session_id: str) -> dict[str, str]:
    snap = run.current_snapshot().session(session_id)
    assert snap is not None
    return dict(snap.counters)


async def until_requests(run: Run, count: int, session_id: str = "api#0") -> None:
    """Wait (bounded) until the session has sent ``count`` requests: worker processes start
    late on a loaded machine, and a fault before any traffic shows in nothing."""
    for _ in range(400):
        pane = run.current_snapshot().session(session_id)
        if pane is not None and int(dict(pane.details).get("http_reqs", "0")) >= count:
            return
        await asyncio.sleep(0.05)


async def test_run_merges_worker_metrics_and_obeys_faults(tmp_path: Path) -> None:
    run = Run(load_profile_text(LOAD, name="t"), runs_dir=tmp_path, duration=10.0)
    task = asyncio.ensure_future(run.run())
    await until_requests(run, 20)
    await run.inject("http.latency", target="api", params={"delay": 0.15})
    session = run.sessions["api#0"]
    for _ in range(100):  # the added delay shows in the pane's p95 sparkline, a sample later
        await asyncio.sleep(0.1)
        if max(session.series["p95"].values(), default=0) >= 150:
            break
    assert max(session.series["p95"].values()) >= 150
    await run.inject("http.clear", target="api")
    await run.inject("http.pause", target="api")
    for _ in range(30):  # the next whole sample interval after the pause shows no requests
        await asyncio.sleep(0.1)
        if counters(run, "api#0")["req/s"] == "0":
            break
    assert counters(run, "api#0")["req/s"] == "0"
    assert session.state == "paused"
    await run.inject("http.resume", target="api")
    await run.inject("http.rate_up", target="api", params={"by": 1.0})
    await run.inject("http.burst", target="api", params={"count": 30})
    result = await task
    snap = result.snapshot
    assert result.exit_code == 0, [(c.name, c.state, c.value_text) for c in snap.criteria]
    reqs = snap.metric("http_reqs")
    assert reqs is not None
    count = reqs.get("count") or 0
    # At most 100/s until the rate doubles, never more than 200/s, plus the burst of 30; how
    # many more than the burst depends on the machine's load, so only the bounds are certain.
    assert 30 < count <= 200 * 10 + 30, count
    assert any(e.event == "control" and "burst" in e.detail for e in run.event_log.recent)
    pane = snap.session("api#0")
    assert pane is not None and pane.series[0].name == "req/s"
    assert "http.stall" in pane.actions and dict(pane.details)["status codes"].startswith("200:")


async def test_stall_is_a_disruption_that_recovers(tmp_path: Path) -> None:
    run = Run(load_profile_text(LOAD, name="t"), runs_dir=tmp_path, duration=8.0)
    task = asyncio.ensure_future(run.run())
    # Stall only once requests flow: under load the worker process can start seconds late,
    # and a stall before its first request shows in no latency.
    await until_requests(run, 20)
    await run.inject("http.stall", target="api", params={"duration": 1.0})
    result = await task
    recovered = [e for e in run.event_log.recent if e.event == "session_recovered"]
    assert recovered and recovered[0].elapsed_ms is not None and recovered[0].elapsed_ms >= 900
    duration = result.snapshot.metric("http_req_duration")
    assert duration is not None and (duration.get("max") or 0) >= 900  # no omission


async def test_resilience_profile_passes_against_the_embedded_target(tmp_path: Path) -> None:
    profile = load_profile(ROOT / "profiles" / "resilience.toml")
    result = await Run(profile, runs_dir=tmp_path, duration=12.0).run()  # probes take ~8 s
    states = {c.name: (c.state, c.value_text) for c in result.snapshot.criteria}
    assert result.exit_code == 0, states
    pane = result.snapshot.session("probes#0")
    assert pane is not None
    assert dict(pane.counters)["probes"] == "etag✓ cb✓ bp✓ rec✓"
    assert any(line.startswith("backpressure: PASS 500 concurrent") for line in pane.output_tail)
    score = result.snapshot.metric("resilience_score")
    assert score is not None and score.get("value") == 100.0


async def test_failed_probe_fails_its_criterion(tmp_path: Path) -> None:
    text = """
[run]
name = "bad-etag"
duration = "5s"
[[http]]
name = "p"
vus = 0
probes = [{ kind = "etag", path = "/health", repeat = 2 }]
[[criteria]]
name = "etag"
metric = "http_probe_etag"
threshold = "rate==1"
"""
    result = await Run(load_profile_text(text, name="t"), runs_dir=tmp_path, duration=3.0).run()
    assert result.exit_code != 0
    (criterion,) = result.snapshot.criteria
    assert criterion.state == "fail"
    assert any(
        e.event == "probe_etag" and e.success is False for e in result.snapshot.recent_events
    )


def test_signalcraft_profile_loads_with_three_scenarios() -> None:
    profile = load_profile(ROOT / "profiles" / "signalcraft-load.toml")
    groups = {g.config.name: g.config for g in profile.groups if g.kind == "http"}
    assert all(isinstance(g, HttpGroupConfig) for g in groups.values())
    # ... and a monitor of the host serving them
    assert [g.config.name for g in profile.groups if g.kind == "ssh"] == ["target-host"]
    typed = cast(dict[str, HttpGroupConfig], groups)
    assert typed["analyze"].executor == "ramping-vus"
    assert [s.target for s in typed["analyze"].stages][1::2] == [15, 30, 50]
    assert typed["iot"].executor == "ramping-arrival-rate" and typed["iot"].max_vus == 200
    assert typed["auth"].vus == 100 and typed["auth"].steps[0].once
    assert {c.threshold.text for c in profile.criteria} >= {"p(95)<2000", "rate<0.01"}


def test_a_group_without_count_gets_a_worker_per_core() -> None:
    text = (
        LOAD
        + """
[[http]]
name = "one"
count = 1
  [[http.steps]]
  request = { url = "/health" }
[[http]]
name = "probes"
  [[http.probes]]
  kind = "etag"
"""
    )
    counts = {g.config.name: g.config.count for g in load_profile_text(text, name="t").groups}
    # probe-only: probes run in a group's first worker, more would idle
    assert counts == {"api": default_workers(), "one": 1, "probes": 1}
    cores = len(os.sched_getaffinity(0))
    assert default_workers() == (cores if cores <= 3 else cores - 1)  # the console keeps one of 4+
    # the cores this process may use, not the machine's: one core allowed, one worker
    pinned = subprocess.run(
        [sys.executable, "-c", "import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))});"
         "from console.sessions.http.config import default_workers; print(default_workers())"],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )  # fmt: skip
    assert pinned.stdout.strip() == "1", pinned.stderr


async def test_count_splits_the_rate_between_worker_processes(tmp_path: Path) -> None:
    text = """
[run]
name = "split"
duration = "3s"
[[http]]
name = "w"
count = 2
executor = "constant-arrival-rate"
rate = 100
duration = "2s"
pre_allocated_vus = 4
  [[http.steps]]
  request = { url = "/health" }
"""
    result = await Run(load_profile_text(text, name="t"), runs_dir=tmp_path, duration=4.0).run()
    # Each worker schedules its half, 50/s for 2 s: at most 100 arrivals each. How many of them
    # complete before the run ends depends on the machine's load (a worker that starts late is
    # cut short; an arrival with no free VU is dropped), so only the bound is guaranteed, and
    # that it did some work. Unsplit, each worker would schedule 200.
    per = {
        s.id: int(dict(s.details)["iterations"]) + int(dict(s.details)["dropped_iterations"])
        for s in result.snapshot.sessions
    }
    assert set(per) == {"w#0", "w#1"}
    assert all(0 < arrivals <= 100 for arrivals in per.values()), per
    vus = result.snapshot.metric("vus_max")
    assert vus is not None and vus.get("value") == 4  # 2 + 2, summed over workers


async def test_missing_body_file_fails_the_session_by_name(tmp_path: Path) -> None:
    text = """
[run]
name = "nofile"
duration = "3s"
[[http]]
name = "up"
  [[http.steps]]
  request = { method = "POST", url = "/api/esp32/audio/upload", body_file = "no-such.raw" }
"""
    # Wait for the failure rather than racing a short run: starting a worker process can take
    # seconds on a loaded machine, and a group without count starts one per core.
    run = Run(load_profile_text(text, name="t"), runs_dir=tmp_path, duration=60.0)
    task = asyncio.ensure_future(run.run())
    for _ in range(300):
        await asyncio.sleep(0.1)
        if all(s.state == "failed" for s in run.sessions.values()) and run.sessions:
            break
    run.request_stop()
    result = await asyncio.wait_for(task, 30.0)
    pane = result.snapshot.session("up#0")
    assert pane is not None and pane.state == "failed"
    errors = [e.detail for e in run.event_log.recent if e.event == "session_error"]
    assert errors and "no-such.raw" in errors[0]


@pytest.mark.slow
async def test_setup_is_not_load_rate_times_duration_iterations(tmp_path: Path) -> None:
    """k6 starts its clock after setup(): rate 100 for 5 s is 500 iterations at 100/s, however
    long the worker and the SSH session took to be ready."""
    text = (
        '[run]\nduration = "5s"\n'
        '[[ssh]]\nname = "ssh"\ntarget = "embedded"\npoll_interval = "5s"\n'
        '[[http]]\nname = "api"\nbase_url = "embedded"\nexecutor = "constant-arrival-rate"\n'
        "rate = 100\npre_allocated_vus = 5\nmax_vus = 20\n"
        '[[http.steps]]\nrequest = { url = "/health" }\n'
    )
    result = await Run(load_profile_text(text, name="t"), runs_dir=tmp_path).run()
    iterations = result.snapshot.metric("iterations")
    assert iterations is not None and iterations.get("count") == 500
    assert iterations.get("rate") == pytest.approx(100.0, rel=0.01)
    # Final states, not "running": the report and the last snapshot show how each ended.
    assert {s.state for s in result.snapshot.sessions} <= {"stopped", "exited"}
    text = (result.run_dir / "events.jsonl").read_text()
    events = [json.loads(line) for line in text.splitlines()]
    (started,) = [e for e in events if e["event"] == "load_started"]
    assert started["data"]["setup_s"] > 0 and started["success"] is True
