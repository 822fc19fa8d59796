"""Resilience probes: verdicts with evidence, against the embedded target and a real nginx."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from bench.nginx_loopback import Nginx, nginx_path
from console.config import read_table
from console.sessions.http.config import ProbeConfig
from console.sessions.http.probes import resilience_score, run_probe
from console.targets.http_control import EmbeddedTarget

needs_nginx = pytest.mark.skipif(
    nginx_path() is None, reason="nginx is not installed: apt-get install nginx (CI installs it)"
)


# Real processes and servers: the full suite, not the fast tier (-m "not slow").
pytestmark = pytest.mark.slow


def probe(**raw: Any) -> ProbeConfig:
    config, issues = read_table(ProbeConfig, raw, ("probe",))
    assert config is not None, issues
    return config


@pytest.fixture(scope="module")
def target() -> Iterator[EmbeddedTarget]:
    with EmbeddedTarget(breaker_timeout=0.5, capacity=10, queue=10) as t:
        yield t


@pytest.fixture(scope="module")
def nginx() -> Iterator[Nginx]:
    if nginx_path() is None:
        pytest.skip("nginx is not installed: apt-get install nginx (CI installs it)")
    with Nginx(conn_limit=10) as server:
        yield server


async def test_etag_probe_passes_on_a_stable_tag(target: EmbeddedTarget) -> None:
    result = await run_probe(
        target.url, probe(kind="etag", path="/api/v1/schemas/main/object-types", repeat=5)
    )
    assert result.passed, result.evidence
    assert "5/5 conditional GETs got 304" in result.evidence and result.weight == 10


async def test_etag_probe_fails_without_an_etag(target: EmbeddedTarget) -> None:
    result = await run_probe(target.url, probe(kind="etag", path="/health", repeat=3))
    assert not result.passed and "ETag missing" in result.evidence


async def test_circuit_breaker_probe_reports_each_transition(target: EmbeddedTarget) -> None:
    result = await run_probe(target.url, probe(
        kind="circuit_breaker", path="/api/v1/schemas/main/object-types/Person",
        fail_path="/api/v1/schemas/main/object-types/Nope", timeout="0.5s"))  # fmt: skip
    assert result.passed, result.evidence
    data = result.data
    assert data["failures"] == 5  # the threshold; the 6th request was rejected
    assert data["opened_s"] < data["half_open_s"] <= data["closed_s"]
    assert data["half_open_s"] - data["opened_s"] >= 0.45


async def test_circuit_breaker_probe_fails_when_nothing_opens(target: EmbeddedTarget) -> None:
    # /health has no breaker: 20 "failures" (404s on a missing path) never trip anything
    result = await run_probe(target.url, probe(kind="circuit_breaker", path="/health",
                                               fail_path="/missing", failures=20))  # fmt: skip
    assert not result.passed and "never opened" in result.evidence


async def test_backpressure_probe_splits_rejections(target: EmbeddedTarget) -> None:
    result = await run_probe(target.url, probe(kind="backpressure", path="/api/v1/test/load?ms=300",
                                               concurrency=100, request_timeout="5s"))  # fmt: skip
    assert result.passed, result.evidence
    assert result.data["ok"] == 20 and result.data["429"] + result.data["503"] == 80


async def test_backpressure_probe_fails_on_timeouts(target: EmbeddedTarget) -> None:
    target.set_faults_sync(stall=True, stall_for=2.0)
    try:
        result = await run_probe(target.url, probe(kind="backpressure", path="/health",
                                                   concurrency=20, request_timeout="0.5s"))  # fmt: skip
    finally:
        target.set_faults_sync(clear=True)
    assert not result.passed and result.data["timeout"] == 20


async def test_recovery_probe(target: EmbeddedTarget) -> None:
    target.set_faults_sync(error_rate=1.0)
    fail = await run_probe(
        target.url, probe(kind="recovery", consecutive=3, within="0.5s", interval="0.05s")
    )
    target.set_faults_sync(clear=True)
    ok = await run_probe(
        target.url, probe(kind="recovery", consecutive=3, within="5s", interval="0.05s")
    )
    assert not fail.passed and "no 3 consecutive 200s" in fail.evidence
    assert ok.passed and ok.weight == 25


def test_resilience_score_uses_the_report_weights() -> None:
    # the report: backpressure and recovery passed, breaker and ETag failed, stability 20/25
    verdicts = {"backpressure": (True, 25.0), "recovery": (True, 25.0),
                "circuit_breaker": (False, 15.0), "etag": (False, 10.0)}  # fmt: skip
    assert resilience_score(verdicts, 0.8) == pytest.approx(70.0)
    assert resilience_score({"etag": (True, 10.0)}, None) == pytest.approx(100.0)


@needs_nginx
async def test_etag_probe_against_nginx(nginx: Nginx) -> None:
    result = await run_probe(nginx.url, probe(kind="etag", path="/etag.json", repeat=10))
    assert result.passed, result.evidence


@needs_nginx
async def test_backpressure_probe_against_nginx_limit_conn(nginx: Nginx) -> None:
    result = await run_probe(nginx.url, probe(kind="backpressure", path="/slow/blob.bin",
                                              concurrency=60, request_timeout="8s"))  # fmt: skip
    assert result.passed, result.evidence
    assert result.data["503"] >= 40 and result.data["timeout"] == 0
    assert 1 <= result.data["ok"] <= 20


@needs_nginx
async def test_backpressure_probe_fails_when_nginx_absorbs_the_burst(nginx: Nginx) -> None:
    result = await run_probe(
        nginx.url, probe(kind="backpressure", path="/index.html", concurrency=50)
    )
    assert not result.passed and "absorbed" in result.evidence
