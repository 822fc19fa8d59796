"""The ``[[http]]`` group schema: a k6-style scenario (executor, load shape, flow) plus probes.

A group is one k6 *scenario*. ``count`` is the number of worker processes that share its load
(each is one session and one pane); VUs and arrival rates are split evenly between them, so
``count`` scales the generator out over cores without changing what the profile asks for.
A group that does not say gets :func:`default_workers`: one per core.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from console.config import GroupConfig, opt

DEFAULT_MAX_BODY = 1 << 20  # bytes of a response body kept for checks and captures
MAX_BODY_LIMIT = 64 << 20  # the most a profile may ask to keep (console.sessions.http.client)

__all__ = [
    "CaptureConfig",
    "CheckConfig",
    "FileField",
    "HttpGroupConfig",
    "ProbeConfig",
    "RequestConfig",
    "StageConfig",
    "StepConfig",
    "default_workers",
]


def default_workers() -> int:
    """Worker processes for a group that does not set ``count``: one per usable core.

    The console's own share: its engine merges a few small deltas per worker a second and
    draws at 4 Hz, a few percent of one core, so up to 3 cores every core gets a worker
    (holding one back would idle most of it); from 4 cores on, one core is left to the
    console and to the rest of the machine. "Usable" is this process's CPU affinity, so a
    ``taskset`` or a container's cpuset is respected.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return cores if cores <= 3 else cores - 1


MAX_VUS = 10_000
# Extra iterations one http.burst starts: as many as a group may have VUs. Each is a task and
# a connection at once; a typed 100000000 started that many.
MAX_BURST = MAX_VUS
MAX_RATE = 1_000_000.0  # iterations per time unit
MAX_BODY = 1024**3


def _url_problem(url: str) -> str | None:
    """Why ``url`` cannot be a base URL: only 'embedded', http:// and https:// with a host."""
    if url in ("", "embedded"):
        return None
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError as exc:
        return f"bad URL {url!r}: {exc}"
    if parts.scheme not in ("http", "https"):
        return f"{url!r}: expected 'embedded' or an http:// or https:// URL"
    if not parts.hostname:
        return f"{url!r}: the URL has no host"
    return None


def _statuses_problem(statuses: tuple[int, ...]) -> str | None:
    bad = [s for s in statuses if not 100 <= s <= 599]
    return f"{bad[0]} is not an HTTP status (100..599)" if bad else None


Executor = Literal["constant-vus", "ramping-vus", "constant-arrival-rate", "ramping-arrival-rate"]
ProbeKind = Literal["circuit_breaker", "etag", "backpressure", "recovery"]


@dataclass(frozen=True, kw_only=True)
class StageConfig:
    """One k6 stage: move linearly to ``target`` (VUs, or iterations per time unit) over ``duration``."""

    duration: float = opt(
        unit="duration", le=30 * 86400.0, doc="How long this stage lasts, e.g. '2m'."
    )
    target: float = opt(
        ge=0,
        le=MAX_RATE,
        doc="VUs (ramping-vus) or iterations per time_unit (ramping-arrival-rate) at the stage's end.",
    )


@dataclass(frozen=True, kw_only=True)
class FileField:
    """A multipart file part, like k6's ``http.file(data, filename, type)``."""

    field: str = opt(doc="Form field name, e.g. 'audio' as in the SignalCraft route.")
    path: str = opt(
        "", doc="File to send (relative to the profile); empty to generate `size` bytes."
    )
    size: float = opt(
        0.0,
        unit="size",
        le=MAX_BODY,
        doc="Generated payload size when no path is given, e.g. '200KB'.",
    )
    filename: str = opt("upload.bin", doc="File name sent in the part.")
    content_type: str = opt("application/octet-stream", doc="Content type of the part.")


@dataclass(frozen=True, kw_only=True)
class RequestConfig:
    """One HTTP request of a flow. Strings may use ${vu}, ${iter}, ${env.NAME} and captured ${name}."""

    method: str = opt("GET", nonempty=True, doc="HTTP method.")
    url: str = opt(nonempty=True, doc="Absolute URL, or a path joined to the group's base_url.")
    headers: dict[str, str] = opt({}, doc="Request headers; values are templated.")
    body: str = opt("", secret=True, doc="Raw text body (templated).")
    body_file: str = opt(
        "", doc="Raw body read from this file (relative to the profile), sent as bytes."
    )
    body_size: float = opt(
        0.0,
        unit="size",
        le=MAX_BODY,
        doc="Generated raw body of this many bytes (for binary uploads).",
    )
    json: dict[str, Any] = opt(
        {}, secret=True, doc="JSON object body; string values are templated."
    )
    form: dict[str, str] = opt(
        {}, secret=True, doc="Form fields (urlencoded, or multipart when files are given)."
    )
    files: tuple[FileField, ...] = opt((), doc="Multipart file parts.")
    timeout: float = opt(
        60.0, unit="duration", gt=0, le=3600.0, doc="Request timeout (k6's default is 60s)."
    )
    expect: tuple[int, ...] = opt(
        (),
        check=_statuses_problem,
        doc="Statuses that do not count in http_req_failed; default is any status below 400.",
    )


@dataclass(frozen=True, kw_only=True)
class CheckConfig:
    """A check on the last response; each one adds a sample to the `checks` rate."""

    name: str = opt("", doc="Check name shown in details; defaults to a description of the check.")
    status: int = opt(
        0,
        check=lambda s: _statuses_problem((s,)) if s else None,
        doc="Expected status code (0 = not checked).",
    )
    header: str = opt("", doc="Header that must be present (and equal `equals` when given).")
    body_contains: str = opt("", secret=True, doc="Text the body must contain.")
    json_path: str = opt(
        "", doc="Dotted path of a JSON field that must exist (and equal `equals` when given)."
    )
    equals: str = opt(
        "", secret=True, doc="Expected value of the header or JSON field, compared as text."
    )


@dataclass(frozen=True, kw_only=True)
class CaptureConfig:
    """A value taken from the last response for later steps, as ``${name}``."""

    name: str = opt(doc="Variable name used later as ${name}.")
    json_path: str = opt("", doc="Dotted path into the JSON body.")
    header: str = opt("", doc="Response header to capture.")


@dataclass(frozen=True, kw_only=True)
class StepConfig:
    """One step of an iteration: a request with its checks and captures, and/or a sleep."""

    name: str = opt(
        "",
        doc="This request's row in the per-request table (like Locust's name= and k6's name "
        "tag); default: the method and URL template, without its query.",
    )
    request: RequestConfig | None = opt(None, doc="The request to send.")
    checks: tuple[CheckConfig, ...] = opt((), doc="Checks on this step's response.")
    capture: tuple[CaptureConfig, ...] = opt((), doc="Values captured from this step's response.")
    sleep: float = opt(0.0, unit="duration", doc="Pause after this step, like k6's sleep().")
    once: bool = opt(False, doc="Run this step only in a VU's first iteration (login-then-verify).")


@dataclass(frozen=True, kw_only=True)
class ProbeConfig:
    """A resilience probe from the resilience report; each yields a verdict with evidence."""

    kind: ProbeKind = opt(doc="circuit_breaker, etag, backpressure or recovery.")
    path: str = opt("/health", doc="URL or path probed (the healthy route for circuit_breaker).")
    fail_path: str = opt(
        "", doc="circuit_breaker: a path whose requests fail (e.g. an unknown type -> 404)."
    )
    failures: int = opt(
        20, ge=1, le=MAX_VUS, doc="circuit_breaker: failing requests to send (the report sent 20)."
    )
    open_status: tuple[int, ...] = opt(
        (503,),
        check=_statuses_problem,
        doc="circuit_breaker: statuses that mean 'rejected by an open breaker'.",
    )
    timeout: float = opt(
        30.0,
        unit="duration",
        gt=0,
        le=3600.0,
        doc="circuit_breaker: the breaker's open timeout (30s in the report).",
    )
    repeat: int = opt(
        20, ge=1, le=MAX_VUS, doc="etag: conditional requests to send (the report sent 20)."
    )
    concurrency: int = opt(
        500,
        ge=1,
        le=MAX_VUS,
        doc="backpressure: concurrent requests in the burst (500 in the report).",
    )
    request_timeout: float = opt(
        5.0, unit="duration", gt=0, le=3600.0, doc="backpressure/recovery: per-request time bound."
    )
    consecutive: int = opt(
        10, ge=1, le=MAX_VUS, doc="recovery: consecutive 200s required (the report used 10)."
    )
    within: float = opt(
        30.0, unit="duration", gt=0, le=86400.0, doc="recovery: time allowed to reach them."
    )
    interval: float = opt(
        0.2, unit="duration", ge=0.01, le=3600.0, doc="recovery: pause between health checks."
    )
    at: float = opt(
        0.0,
        unit="duration",
        doc="Start this probe this long after the session starts (probes run in order).",
    )
    weight: float = opt(
        -1.0,
        doc="Points in the resilience score; -1 = the report's weight (backpressure 25, recovery 25, circuit breaker 15, ETag 10).",
    )


@dataclass(frozen=True, kw_only=True)
class HttpGroupConfig(GroupConfig):
    """An ``[[http]]`` group: one k6 scenario run by ``count`` worker processes, plus probes."""

    base_url: str = opt(
        "embedded",
        check=_url_problem,
        doc="Target base URL; 'embedded' starts Stressdeck's own HTTP target on 127.0.0.1.",
    )
    url: str = opt("", check=_url_problem, doc="Alias of base_url.")
    count: int = opt(
        0,
        ge=0,
        le=1000,
        doc="Worker processes sharing this group's VUs or rate, one session each; 0 = one per core (all cores up to 3, then all but one), 1 for a probe-only group.",
    )
    via: str = opt(
        "",
        doc="Send traffic through this `[[links]]` link (plain http only); the Host header "
        "still names the real target.",
    )
    executor: Executor = opt(
        "constant-vus",
        doc="k6 executor: constant-vus, ramping-vus, constant-arrival-rate or ramping-arrival-rate.",
    )
    vus: int = opt(1, ge=0, le=MAX_VUS, doc="constant-vus: VUs (split across count workers).")
    start_vus: int = opt(0, ge=0, le=MAX_VUS, doc="ramping-vus: VUs at the start.")
    stages: tuple[StageConfig, ...] = opt((), doc="ramping-*: stages of {duration, target}.")
    rate: float = opt(
        1.0, gt=0, le=MAX_RATE, doc="constant-arrival-rate: iterations per time_unit."
    )
    start_rate: float = opt(
        0.0, ge=0, le=MAX_RATE, doc="ramping-arrival-rate: iterations per time_unit at the start."
    )
    time_unit: float = opt(
        1.0,
        unit="duration",
        ge=0.001,
        le=86400.0,
        doc="Time unit of rate and stage targets (k6 timeUnit).",
    )
    pre_allocated_vus: int = opt(
        10,
        ge=0,
        le=MAX_VUS,
        doc="Arrival-rate executors: VUs created up front (k6 preAllocatedVUs).",
    )
    max_vus: int = opt(
        0,
        ge=0,
        le=MAX_VUS,
        doc="Arrival-rate executors: VU ceiling (k6 maxVUs); 0 = pre_allocated_vus. Iterations with no free VU are dropped_iterations.",
    )
    duration: float = opt(
        0.0, unit="duration", doc="Scenario length for constant-* executors; 0 = the whole run."
    )
    start_time: float = opt(
        0.0, unit="duration", doc="Delay before the scenario starts (k6 startTime)."
    )
    steps: tuple[StepConfig, ...] = opt(
        (), doc="The flow each iteration runs; empty for a probe-only group."
    )
    probes: tuple[ProbeConfig, ...] = opt(
        (), doc="Resilience probes run by this group's first worker."
    )
    env: dict[str, str] = opt(
        {},
        secret=True,
        doc="Values for ${env.NAME}; the process environment fills names not given here.",
    )
    client: Literal["raw", "aiohttp", "httpx", "httpx-aiohttp"] = opt(
        "raw",
        doc="HTTP client in the worker, one per VU: raw (fastest: HTTP/1.1 over asyncio, aiohttp for https, cookies and redirects), aiohttp, httpx, or httpx over an aiohttp transport.",
    )
    insecure: bool = opt(False, doc="Skip TLS certificate checks (self-signed staging servers).")
    max_body: float = opt(
        float(DEFAULT_MAX_BODY),
        unit="size",
        doc="Response body bytes kept per request for checks and captures (at most 64MB); the rest is counted in data_received and http_body_truncated, read and dropped.",
    )
    breaker_timeout: float = opt(
        2.0, unit="duration", doc="Embedded target only: its circuit breaker's open timeout."
    )
    capacity: int = opt(
        20,
        ge=1,
        le=MAX_VUS,
        doc="Embedded target only: concurrent requests /api/v1/test/load serves.",
    )
    queue: int = opt(
        40,
        ge=0,
        le=MAX_VUS,
        doc="Embedded target only: requests /api/v1/test/load queues before rejecting with 429/503.",
    )

    def __post_init__(self) -> None:
        if self.count == 0:  # not set: resolved once, here, so every reader sees the same
            workers = default_workers() if self.steps else 1  # probes run in worker 0 only
            object.__setattr__(self, "count", workers)

    @property
    def target_url(self) -> str:
        return self.url or self.base_url
