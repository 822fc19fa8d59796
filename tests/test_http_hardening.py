"""Review fixes for the HTTP kind: bounded stops, stall recovery, no proxies, no secrets in logs."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import psutil
import pytest

from console.config import read_table
from console.engine import RECENT_EVENTS, Run
from console.events import Event
from console.profile import load_profile_text
from console.sessions.base import FaultNotApplicable, SessionContext
from console.sessions.http import KIND
from console.sessions.http.client import make_client
from console.sessions.http.config import HttpGroupConfig, default_workers
from console.sessions.http.executors import Executor
from console.sessions.http.flow import Flow
from console.sessions.http.session import HttpSession
from console.sessions.http.stats import Stats
from console.targets.http_control import EmbeddedTarget

STALLED = """
[run]
name = "stalled"
duration = "3s"
[[http]]
name = "load"
executor = "constant-vus"
vus = 3
  [[http.steps]]
  request = { url = "/health", timeout = "30s" }
[[http]]
name = "probes"
vus = 0
"""


# Real processes and servers: the full suite, not the fast tier (-m "not slow").
pytestmark = pytest.mark.slow


def workers() -> list[psutil.Process]:
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if "console.sessions.http.worker" in " ".join(child.cmdline()):
                found.append(child)
        except psutil.NoSuchProcess:
            continue
    return found


async def test_stalled_run_stops_quickly_and_leaves_no_worker(tmp_path: Path) -> None:
    run = Run(load_profile_text(STALLED, name="t"), runs_dir=tmp_path, duration=3.0)
    task = asyncio.ensure_future(run.run())
    await asyncio.sleep(1.0)
    # Probe-only sessions have no traffic to recover: they are refused, the load is not.
    record = await run.inject("http.stall", target="all")
    refusal = ""
    try:
        await run.inject("http.stall", target="probes")
    except FaultNotApplicable as exc:
        refusal = str(exc)
    await asyncio.sleep(2.0)  # the run's duration is over: stopping starts now
    await asyncio.wait_for(task, 20.0)
    # Stopped, not killed: each worker left by itself when told to stop (exit 0), so none went
    # to SIGTERM/SIGKILL or past the engine's stop budget (which would log stop_error).
    exits = {
        sid: s.child.proc.returncode
        for sid, s in run.sessions.items()
        if isinstance(s, HttpSession) and s.child is not None and s.child.proc is not None
    }
    assert exits and set(exits.values()) == {0}, exits
    assert not [e for e in run.event_log.tail(RECENT_EVENTS) if e.event == "stop_error"]
    assert workers() == []
    # "load" does not set count: one worker per core, every one of them stopped in time
    assert record.sessions == tuple(f"load#{i}" for i in range(default_workers()))
    assert "no traffic" in refusal


class Services:
    """Just enough of the engine for a session's recovery bookkeeping, with a settable clock."""

    run_name = "unit"

    def __init__(self) -> None:
        self.t = 0.0
        self.recovered: list[float] = []
        self.events: list[str] = []

    def now(self) -> float:
        return self.t

    def log_event(self, event: Event) -> Event:
        return event

    def make_event(self, name: str, **kw: Any) -> Event:
        self.events.append(name)
        return Event("", kw.get("session_id"), None, name, kw.get("detail", ""))

    def session_recovered(self, session_id: str, at: float) -> None:
        self.recovered.append(at)

    def __getattr__(self, name: str) -> Any:  # metric_* calls: not under test here
        return lambda *a, **k: None


def session(**raw: Any) -> tuple[HttpSession, Services]:
    config, issues = read_table(HttpGroupConfig, {"name": "g", **raw}, ("http",))
    assert config is not None, issues
    services = Services()
    ctx = SessionContext(services, "g#0", "http", "g", "embedded", 1)
    s = HttpSession(
        ctx,
        config,
        index=0,
        workers=1,
        run_probes=False,
        base_dir=Path("."),
        run_duration=0.0,
        embedded=True,
    )
    return s, services


def test_stall_recovers_only_after_a_sustained_clean_window() -> None:
    s, services = session(steps=[{"request": {"url": "/health"}}])
    s.target_fault("stall")
    services.t = 1.0
    s._health(reqs=1, ok=1, inflight=0)  # one success proves nothing
    services.t = 1.3
    s._health(reqs=2, ok=1, inflight=0)  # a failure restarts the window
    for t in (1.5, 1.8, 2.1, 2.4):
        services.t = t
        s._health(reqs=2, ok=2, inflight=0)
    assert services.recovered == []  # 0.9 s of clean successes: not yet
    services.t = 2.6
    s._health(reqs=2, ok=2, inflight=0)
    assert services.recovered == [2.6]


def test_conditions_and_controls_open_no_recovery() -> None:
    recovering = {name for name, spec in KIND.faults.items() if spec.recovers}
    assert recovering == {"stall"}
    s, _ = session(steps=[{"request": {"url": "/health"}}])
    for action in ("error_rate", "latency", "dependency_down"):
        s.target_fault(action)
    assert s.healthy
    probe_only, _ = session(vus=0)
    assert not probe_only.has_flow
    probe_only.target_fault("stall")
    assert probe_only.healthy  # nothing to recover: never left waiting for traffic


@pytest.fixture
def proxied(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    for name in (
        "http_proxy",
        "HTTP_PROXY",
        "https_proxy",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "all_proxy",
    ):
        monkeypatch.setenv(name, "http://127.0.0.1:9")  # a closed port: any use of it fails
    urllib.request.install_opener(None)  # urlopen's cached opener read the environment earlier
    yield
    urllib.request.install_opener(None)


async def test_proxy_variables_do_not_reroute_loopback(proxied: None) -> None:
    with EmbeddedTarget() as target:
        state = target.set_faults_sync(latency=0.01)
        assert state
        target.set_faults_sync(clear=True)
        raw = {"name": "p", "client": "httpx", "vus": 1, "duration": "0.5s"}
        raw["steps"] = [{"request": {"url": "/health"}}]
        config, issues = read_table(HttpGroupConfig, raw, ("http",))
        assert config is not None, issues
        stats = Stats()
        flow = Flow(config, target.url, stats, Path("."))
        executor = Executor(config, flow, lambda: make_client("httpx"))
        await asyncio.wait_for(executor.run(), 10.0)
        assert stats.codes.get("200", 0) > 0, (stats.codes, stats.errors)
        assert not stats.errors


SECRET_FLOW = """
[run]
name = "secret"
duration = "2s"
[[http]]
name = "leaky"
base_url = "http://127.0.0.1:9"
vus = 1
  [[http.steps]]
  request = { url = "/x?token=${env.SD_SECRET}", timeout = "1s" }
  sleep = "0.1s"
"""


async def test_secrets_in_urls_stay_out_of_events(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "s3cr3t-value-4242"
    monkeypatch.setenv("SD_SECRET", secret)
    run = Run(load_profile_text(SECRET_FLOW, name="t"), runs_dir=tmp_path, duration=2.0)
    await asyncio.wait_for(run.run(), 20.0)
    lines = [
        json.loads(line)
        for path in tmp_path.rglob("events.jsonl")
        for line in path.read_text().splitlines()
    ]
    errors = [e for e in lines if str(e.get("event", "")).startswith("http_error_")]
    assert errors and "/x" in errors[0]["detail"], lines  # the error is there, and says where
    assert not any(secret in json.dumps(e) for e in lines)
    assert not any(secret in json.dumps(e.__dict__, default=str) for e in run.event_log.recent)


def test_safe_url_drops_userinfo_query_and_fragment() -> None:
    from console.sessions.http.flow import safe_url

    cases: Mapping[str, str] = {
        "https://user:pw@example.test:8443/a/b?token=x#f": "https://example.test:8443/a/b",
        "/api?key=1": "/api",
        "embedded": "embedded",
    }
    for raw, shown in cases.items():
        assert safe_url(raw) == shown
