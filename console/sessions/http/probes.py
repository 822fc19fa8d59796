"""Resilience probes from the three-service report, each a verdict with evidence.

* circuit breaker - drive failures past the threshold, expect fast rejections of a healthy
  route (open), then a success after the timeout (half-open trial) and steady successes (closed).
  The report's breaker never opened after 20 failures; this probe says so when that happens.
* ETag - a GET, then the same with ``If-None-Match``: expect 304 every time and one stable ETag
  (the report saw a new weak ETag on every response, so no 304 ever came).
* backpressure - a burst of concurrent requests (500 in the report): expect explicit 429/503
  within the time bound rather than timeouts. The report counted 500 timeouts as success; here
  timeouts fail the probe, because a client cannot tell them from a dead server.
* recovery - after stress, ``K`` consecutive 200s from the health route within a time limit.

The score follows the report's weights: backpressure 25, recovery 25, basic stability 25 (the
group's own flow checks), circuit breaker 15, ETag 10; it is scaled to 100 over the parts a
group actually runs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from console.sessions.http.config import ProbeConfig
from console.sessions.http.flow import safe_url

__all__ = ["DEFAULT_WEIGHTS", "STABILITY_WEIGHT", "ProbeResult", "resilience_score", "run_probe"]

DEFAULT_WEIGHTS = {"backpressure": 25.0, "recovery": 25.0, "circuit_breaker": 15.0, "etag": 10.0}
STABILITY_WEIGHT = 25.0


@dataclass
class ProbeResult:
    kind: str
    passed: bool
    evidence: str
    weight: float
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "t": "probe",
            "kind": self.kind,
            "pass": self.passed,
            "evidence": self.evidence,
            "weight": self.weight,
            "data": self.data,
        }


def resilience_score(
    results: Mapping[str, tuple[bool, float]], checks_rate: float | None
) -> float | None:
    """Points out of 100 from probe verdicts (kind -> (passed, weight)) and the checks rate."""
    earned = sum(weight for passed, weight in results.values() if passed)
    possible = sum(weight for _, weight in results.values())
    if checks_rate is not None:
        earned += STABILITY_WEIGHT * checks_rate
        possible += STABILITY_WEIGHT
    return 100.0 * earned / possible if possible else None


def _url(base: str, path: str) -> str:
    if path.startswith(("http://", "https://")):
        return path
    return base.rstrip("/") + ("" if path.startswith("/") else "/") + path


async def _get(
    session: aiohttp.ClientSession,
    url: str,
    timeout: float,
    headers: Mapping[str, str] | None = None,
) -> tuple[int, float, Mapping[str, str]]:
    """(status or 0 for timeout / -1 for a connection error, seconds, headers)."""
    start = time.perf_counter()
    try:
        async with session.get(
            url, headers=headers, timeout=aiohttp.ClientTimeout(total=timeout)
        ) as r:
            await r.read()
            return r.status, time.perf_counter() - start, r.headers
    except asyncio.TimeoutError:
        return 0, time.perf_counter() - start, {}
    except (aiohttp.ClientError, OSError):
        return -1, time.perf_counter() - start, {}


async def probe_etag(
    session: aiohttp.ClientSession, base: str, probe: ProbeConfig
) -> tuple[bool, str, dict[str, Any]]:
    url = _url(base, probe.path)
    status, _, headers = await _get(session, url, probe.request_timeout)
    etag = headers.get("ETag", "")
    if status != 200 or not etag:
        return False, f"GET {probe.path} -> {status}, ETag {etag or 'missing'}", {"status": status}
    hits, etags = 0, {etag}
    statuses: dict[int, int] = {}
    for _ in range(probe.repeat):
        status, _, headers = await _get(
            session, url, probe.request_timeout, {"If-None-Match": etag}
        )
        statuses[status] = statuses.get(status, 0) + 1
        hits += status == 304
        if headers.get("ETag"):
            etags.add(headers["ETag"])
    passed = hits == probe.repeat and len(etags) == 1
    split = ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items()))
    evidence = f"{hits}/{probe.repeat} conditional GETs got 304 ({split}); ETag {etag} " + (
        "stable" if len(etags) == 1 else f"changed {len(etags) - 1} times"
    )
    return passed, evidence, {"hits": hits, "etags": len(etags)}


async def probe_backpressure(
    session: aiohttp.ClientSession, base: str, probe: ProbeConfig
) -> tuple[bool, str, dict[str, Any]]:
    url = _url(base, probe.path)
    start = time.perf_counter()
    results = await asyncio.gather(
        *(_get(session, url, probe.request_timeout) for _ in range(probe.concurrency))
    )
    wall = time.perf_counter() - start
    split = {"ok": 0, "429": 0, "503": 0, "other": 0, "timeout": 0, "error": 0}
    for status, _, _ in results:
        if status == 0:
            split["timeout"] += 1
        elif status < 0:
            split["error"] += 1
        elif status in (429, 503):
            split[str(status)] += 1
        elif status < 400:
            split["ok"] += 1
        else:
            split["other"] += 1
    rejected = split["429"] + split["503"]
    slowest = max((seconds for _, seconds, _ in results), default=0.0)
    passed = rejected > 0 and split["timeout"] == 0 and split["error"] == 0
    evidence = (
        f"{probe.concurrency} concurrent: ok {split['ok']}, 429 {split['429']}, "
        f"503 {split['503']}, "
        f"other {split['other']}, timeouts {split['timeout']}, errors {split['error']}; "
        f"slowest {slowest:.2f}s of {probe.request_timeout:g}s, burst took {wall:.2f}s"
    )
    if rejected == 0 and split["timeout"] == 0:
        evidence += " (no explicit rejection: the target absorbed the burst)"
    return passed, evidence, {**split, "slowest_s": round(slowest, 4)}


async def probe_recovery(
    session: aiohttp.ClientSession, base: str, probe: ProbeConfig
) -> tuple[bool, str, dict[str, Any]]:
    url = _url(base, probe.path)
    start = time.perf_counter()
    streak, attempts = 0, 0
    while time.perf_counter() - start < probe.within:
        status, _, _ = await _get(session, url, min(probe.request_timeout, probe.within))
        attempts += 1
        streak = streak + 1 if status == 200 else 0
        if streak >= probe.consecutive:
            took = time.perf_counter() - start
            return (
                True,
                f"{probe.consecutive} consecutive 200s from {probe.path} after {took:.2f}s "
                f"({attempts} checks)",
                {"seconds": round(took, 3), "attempts": attempts},
            )
        await asyncio.sleep(probe.interval)
    return (
        False,
        f"no {probe.consecutive} consecutive 200s from {probe.path} within {probe.within:g}s "
        f"({attempts} checks, last streak {streak})",
        {"attempts": attempts},
    )


async def probe_circuit_breaker(
    session: aiohttp.ClientSession, base: str, probe: ProbeConfig
) -> tuple[bool, str, dict[str, Any]]:
    good = _url(base, probe.path)
    bad = _url(base, probe.fail_path or probe.path)
    t0 = time.perf_counter()
    rel = lambda: time.perf_counter() - t0  # noqa: E731
    failures, opened_at, open_ms = 0, None, 0.0
    rejected_at: float | None = None
    first_status: int | None = None
    for _ in range(probe.failures):
        status, seconds, _ = await _get(session, bad, probe.request_timeout)
        if first_status is None:
            first_status = status
        elif status in probe.open_status and first_status not in probe.open_status:
            rejected_at, open_ms = rel(), seconds * 1000  # the breaker's own rejection
            break
        failures += 1
    # Proof of an open breaker: the healthy route is rejected too (a success would reset it).
    status, seconds, _ = await _get(session, good, probe.request_timeout)
    if status in probe.open_status:
        opened_at = rejected_at if rejected_at is not None else rel()
        open_ms = open_ms or seconds * 1000
    if opened_at is None:
        return (
            False,
            f"breaker never opened: {failures} failures sent, "
            f"healthy route still answered {status}",
            {"failures": failures},
        )
    half_open_at = closed_at = None
    poll = max(min(probe.timeout / 20, 0.25), 0.02)
    deadline = opened_at + probe.timeout * 2 + 5.0
    streak = 0
    while rel() < deadline:
        await asyncio.sleep(poll)
        status, _, _ = await _get(session, good, probe.request_timeout)
        if 200 <= status < 300:
            if half_open_at is None:
                half_open_at = rel()
            streak += 1
            if streak >= 3:
                closed_at = rel()
                break
        else:
            streak = 0
    data = {
        "failures": failures,
        "opened_s": round(opened_at, 3),
        "rejection_ms": round(open_ms, 2),
        "half_open_s": half_open_at and round(half_open_at, 3),
        "closed_s": closed_at and round(closed_at, 3),
    }
    if closed_at is None or half_open_at is None:
        return (
            False,
            f"opened after {failures} failures at +{opened_at:.2f}s "
            f"but never closed within {deadline:.1f}s",
            data,
        )
    evidence = (
        f"opened after {failures} failures at +{opened_at:.2f}s (rejection in {open_ms:.1f}ms), "
        f"half-open trial passed at +{half_open_at:.2f}s (open {half_open_at - opened_at:.2f}s, "
        f"timeout {probe.timeout:g}s), closed at +{closed_at:.2f}s"
    )
    return True, evidence, data


PROBES = {
    "etag": probe_etag,
    "backpressure": probe_backpressure,
    "recovery": probe_recovery,
    "circuit_breaker": probe_circuit_breaker,
}


async def run_probe(
    base: str, probe: ProbeConfig, *, insecure: bool = False, host_header: str = ""
) -> ProbeResult:
    """Run one probe on its own connections (apart from the load's VUs); ``host_header`` names
    the real target when ``base`` is a link's address."""
    weight = probe.weight if probe.weight >= 0 else DEFAULT_WEIGHTS[probe.kind]
    connector = aiohttp.TCPConnector(
        limit=0, ssl=not insecure, force_close=probe.kind == "backpressure"
    )
    headers = {"Host": host_header} if host_header else None
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
        try:
            passed, evidence, data = await PROBES[probe.kind](session, base, probe)
        except Exception as exc:  # a probe's failure is a verdict, not a crash
            text = str(exc).replace(base.rstrip("/"), safe_url(base).rstrip("/"))
            passed, evidence, data = False, f"probe error: {type(exc).__name__}: {text}", {}
    return ProbeResult(probe.kind, passed, evidence, weight, data)
