"""An iteration's flow: templated requests, checks, captures and sleeps, run by one VU.

Templates: ``${vu}`` (1-based, unique across a group's workers), ``${iter}`` (the VU's iteration
number from 0), ``${env.NAME}`` (the group's ``env`` table, then the process environment) and
``${name}`` for values captured earlier by the same VU. A VU keeps its client, hence its
cookies and captures, for its whole life: login once, then verify, as in the SignalCraft plan.
"""

from __future__ import annotations

import asyncio
import functools
import http
import json
import os
import re
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from console.secrets import MIN_SECRET, Secrets
from console.sessions.http.catalog import ERROR_METRICS, STATUS_METRICS
from console.sessions.http.client import Client, Reply, RequestError
from console.sessions.http.config import CheckConfig, HttpGroupConfig, RequestConfig, StepConfig
from console.sessions.http.stats import Stats

__all__ = [
    "MAX_NAMES",
    "OTHER_NAME",
    "VU",
    "Flow",
    "check_reply",
    "render",
    "request_name",
    "safe_url",
    "scrub",
]

# Request names one worker reports; the rest share one row. Names are templates, so only a
# profile with this many steps reaches it; k6's advice on tag cardinality is the reason.
MAX_NAMES = 100
OTHER_NAME = f"(other names: beyond {MAX_NAMES} per worker)"

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_.]*)\}")
_BOUNDARY = "stressdeck-boundary-7f3a9c"
_STATUS_CLASS = {int(k[0]): v for k, v in STATUS_METRICS.items()}  # 2 -> "http_status_2xx"


def render(text: str, variables: Mapping[str, str], env: Mapping[str, str]) -> str:
    """Substitute ``${...}`` references; unknown names are left as written."""
    if "${" not in text:
        return text

    def sub(match: re.Match[str]) -> str:
        name = match.group(1)
        if name.startswith("env."):
            key = name[4:]
            return env.get(key, os.environ.get(key, match.group(0)))
        return variables.get(name, match.group(0))

    return _VAR.sub(sub, text)


def _json_path(data: Any, path: str) -> tuple[bool, Any]:
    for part in path.split("."):
        if isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        else:
            return False, None
    return True, data


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else json.dumps(value)


def check_name(check: CheckConfig) -> str:
    if check.name:
        return check.name
    if check.status:
        return f"status is {check.status}"
    if check.header:
        return f"header {check.header}" + (f" = {check.equals}" if check.equals else "")
    if check.json_path:
        return f"json {check.json_path}" + (f" = {check.equals}" if check.equals else "")
    return f"body contains {check.body_contains!r}"


def check_reply(check: CheckConfig, reply: Reply | None) -> bool:
    if reply is None:
        return False
    if check.status and reply.status != check.status:
        return False
    if check.header:
        value = reply.headers.get(check.header)
        if value is None or (check.equals and value != check.equals):
            return False
    if check.body_contains and check.body_contains.encode() not in reply.body:
        return False
    if check.json_path:
        try:
            found, value = _json_path(json.loads(reply.body), check.json_path)
        except ValueError:
            return False
        if not found or (check.equals and _as_text(value) != check.equals):
            return False
    return True


@dataclass
class VU:
    """A virtual user: its own client (connection, cookies) and captured variables."""

    id: int
    client: Client
    iteration: int = 0
    captured: dict[str, str] = field(default_factory=dict)
    busy: bool = False


def safe_url(url: str) -> str:
    """``url`` fit for events and panes: no userinfo, query or fragment (tokens live there)."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    if not parts.scheme or not parts.netloc:
        return url.split("?", 1)[0].split("#", 1)[0]
    host = parts.netloc.rsplit("@", 1)[-1]
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))


def request_name(step: StepConfig, request: RequestConfig) -> str:
    """The row a request counts in: ``"METHOD name"``, the step's name or the URL template
    without query or fragment (tokens live there; ``${...}`` stay unrendered)."""
    if step.name:
        return f"{request.method} {step.name}"
    url = request.url
    if url.startswith(("http://", "https://")):
        return f"{request.method} {safe_url(url)}"
    return f"{request.method} {url.split('?', 1)[0].split('#', 1)[0]}"


@functools.lru_cache(maxsize=256)
def _status_message(status: int, expect: tuple[int, ...]) -> str:
    """``HTTP 404 Not Found``; with ``expect``, what was expected instead."""
    try:
        phrase = " " + http.HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    wanted = f" (expected {', '.join(map(str, expect))})" if expect else ""
    return f"HTTP {status}{phrase}{wanted}"


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret value (rendered variables, env) replaced by ``***``."""
    values = sorted({v for v in secrets if len(v) >= MIN_SECRET}, key=len, reverse=True)
    return Secrets(values=tuple(values)).text(text)


class Flow:
    """The compiled steps of one group, shared by all VUs of a worker."""

    def __init__(
        self,
        config: HttpGroupConfig,
        base_url: str,
        stats: Stats,
        base_dir: Path,
        on_error: Callable[[str, str], None] | None = None,
        host_header: str = "",
    ) -> None:
        self.config = config
        self.base_url = base_url.rstrip("/")
        self.host_header = host_header  # through a link: the real target's host[:port]
        self.stats = stats
        self.base_dir = base_dir
        self.env = dict(config.env)
        self.on_error = on_error
        self.check_counts: dict[str, list[int]] = {}  # name -> [passes, total]
        self.inflight = 0  # requests awaiting a response, for stall detection
        self._files: dict[tuple[str, float], bytes] = {}
        found = {m.group(1) for m in _VAR.finditer(repr(config.steps))}
        # Requests without a ${...} are the same every time: built once, then reused
        # (keyed by identity: the config, hence every request, lives as long as the flow).
        self._templated = bool(found)
        self._built: dict[int, tuple[str, dict[str, str], bytes | None, int]] = {}
        self._static = {
            id(step.request)
            for step in config.steps
            if step.request is not None and "${" not in repr(step.request)
        }
        # Each request's name key, made once here: the hot path only looks it up.
        self._names: dict[int, str] = {}
        for step in config.steps:
            if step.request is not None:
                key = request_name(step, step.request)
                known = set(self._names.values())
                if key not in known and len(known) >= MAX_NAMES:
                    key = f"* {OTHER_NAME}"
                self._names[id(step.request)] = key

    def name_of(self, request: RequestConfig) -> str:
        return self._names[id(request)]

    def _payload(self, path: str, size: float) -> bytes:
        key = (path, size)
        data = self._files.get(key)
        if data is None:
            if path:
                file = Path(path)
                data = (file if file.is_absolute() else self.base_dir / file).read_bytes()
            else:
                # Deterministic, incompressible-ish bytes: a fake audio payload.
                data = (bytes(range(256)) * (int(size) // 256 + 1))[: int(size)]
            self._files[key] = data
        return data

    def preload(self) -> None:
        """Read every body file now, so a missing file stops the worker at once, by name."""
        for step in self.config.steps:
            request = step.request
            if request is None:
                continue
            if request.body_file or request.body_size:
                self._payload(request.body_file, request.body_size)
            for part in request.files:
                self._payload(part.path, part.size)

    def _secrets(self, vu: VU) -> list[str]:
        """Values that must not reach an event: the flow's env and the VU's captures.

        The session fills the env table with every ${env.X} the flow uses (the worker's own
        environment holds none of them); the console redacts events again on arrival.
        """
        return [*self.env.values(), *vu.captured.values()]

    def url(self, raw: str) -> str:
        if raw.startswith(("http://", "https://")):
            return raw
        return self.base_url + ("" if raw.startswith("/") else "/") + raw

    def build(
        self, request: RequestConfig, variables: Mapping[str, str]
    ) -> tuple[str, dict[str, str], bytes | None]:
        """URL, headers and encoded body of one request."""
        env = self.env
        url = self.url(render(request.url, variables, env))
        headers = {k: render(v, variables, env) for k, v in request.headers.items()}
        lower = {k.lower() for k in headers}
        if self.host_header and "host" not in lower and url.startswith(self.base_url):
            headers["Host"] = self.host_header
        body: bytes | None = None
        if request.files:
            parts: list[bytes] = []
            for name, value in request.form.items():
                head = f'--{_BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
                parts.append(head.encode() + render(value, variables, env).encode() + b"\r\n")
            for part in request.files:
                head = (
                    f'--{_BOUNDARY}\r\nContent-Disposition: form-data; name="{part.field}"; '
                    f'filename="{part.filename}"\r\nContent-Type: {part.content_type}\r\n\r\n'
                )
                parts.append(head.encode() + self._payload(part.path, part.size) + b"\r\n")
            body = b"".join(parts) + f"--{_BOUNDARY}--\r\n".encode()
            headers["Content-Type"] = f"multipart/form-data; boundary={_BOUNDARY}"
        elif request.json:
            body = json.dumps(
                {
                    k: render(v, variables, env) if isinstance(v, str) else v
                    for k, v in request.json.items()
                }
            ).encode()
            if "content-type" not in lower:
                headers["Content-Type"] = "application/json"
        elif request.form:
            body = urllib.parse.urlencode(
                {k: render(v, variables, env) for k, v in request.form.items()}
            ).encode()
            if "content-type" not in lower:
                headers["Content-Type"] = "application/x-www-form-urlencoded"
        elif request.body_file or request.body_size:
            body = self._payload(request.body_file, request.body_size)
        elif request.body:
            body = render(request.body, variables, env).encode()
        return url, headers, body

    async def send(
        self, vu: VU, request: RequestConfig, variables: Mapping[str, str], intended: float | None
    ) -> Reply | None:
        """Send one request and record k6's request metrics; ``None`` when no response came."""
        built = self._built.get(id(request))
        if built is None:
            url, headers, body = self.build(request, variables)
            sent = (
                len(request.method)
                + len(url)
                + 12
                + sum(len(k) + len(v) + 4 for k, v in headers.items())
                + (len(body) if body else 0)
            )
            built = (url, headers, body, sent)
            if id(request) in self._static:
                self._built[id(request)] = built
        url, headers, body, sent = built
        stats = self.stats
        name = self._names[id(request)]
        start = time.perf_counter()
        began = intended if intended is not None and intended < start else start
        reply: Reply | None = None
        failure = ""
        self.inflight += 1
        try:
            reply = await vu.client.request(request.method, url, headers, body, request.timeout)
        except RequestError as exc:
            stats.error(exc.cls)
            stats.add(ERROR_METRICS[exc.cls])
            # The template, never the rendered URL: ${env.X} and captures may be tokens.
            where = safe_url(self.url(request.url))
            detail = scrub(str(exc), self._secrets(vu)).replace(url, where)
            failure = f"{exc.cls}: {detail[:200]}"
            if self.on_error is not None:
                self.on_error(exc.cls, f"{request.method} {where}: {detail}")
        finally:
            self.inflight -= 1
        elapsed_ms = (time.perf_counter() - began) * 1000.0
        stats.add("http_reqs")
        stats.add("data_sent", sent)
        stats.request(name, elapsed_ms)  # http_req_duration, and its name's row
        if reply is None:
            stats.rate("http_req_failed", True)
            stats.failure(name, failure)
            return None
        stats.add("data_received", reply.received)
        if reply.truncated:
            stats.add("http_body_truncated")
        stats.status(reply.status)
        status_metric = _STATUS_CLASS.get(reply.status // 100)
        if status_metric:
            stats.add(status_metric)
        failed = reply.status not in request.expect if request.expect else reply.status >= 400
        stats.rate("http_req_failed", failed)
        if failed:
            stats.failure(name, _status_message(reply.status, request.expect))
        return reply

    async def iterate(self, vu: VU, intended: float | None = None) -> None:
        """Run every step once; ``intended`` is the scheduled start (arrival-rate executors)."""
        # a flow without ${...} never reads them: skip the strings and the copy
        variables = (
            {"vu": str(vu.id), "iter": str(vu.iteration), **vu.captured} if self._templated else {}
        )
        # The loop may wake a scheduled arrival a hair early (its clock resolution): an
        # iteration then starts now, never in the future, so no duration is negative.
        now = time.perf_counter()
        began = now if intended is None else min(intended, now)
        first = True
        for step in self.config.steps:
            if step.once and vu.iteration > 0:
                continue
            try:
                await self._step(vu, step, variables, intended if first else None)
            except (ValueError, TypeError, KeyError, UnicodeError) as exc:
                # A step that cannot even be sent (a bad URL, say) is an error, not a dead VU.
                self.stats.error("other")
                self.stats.add(ERROR_METRICS["other"])
                if self.on_error is not None:
                    detail = scrub(str(exc), self._secrets(vu))
                    self.on_error("other", f"step failed: {type(exc).__name__}: {detail}")
            first = False
        vu.iteration += 1
        self.stats.add("iterations")
        self.stats.observe("iteration_duration", (time.perf_counter() - began) * 1000.0)

    async def _step(
        self, vu: VU, step: StepConfig, variables: dict[str, str], intended: float | None
    ) -> None:
        if step.request is not None:
            reply = await self.send(vu, step.request, variables, intended)
            for check in step.checks:
                ok = check_reply(check, reply)
                self.stats.rate("checks", ok)
                pair = self.check_counts.setdefault(check_name(check), [0, 0])
                pair[1] += 1
                pair[0] += ok
            if reply is not None:
                for capture in step.capture:
                    value: str | None = None
                    if capture.header:
                        value = reply.headers.get(capture.header)
                    elif capture.json_path:
                        try:
                            found, raw = _json_path(json.loads(reply.body), capture.json_path)
                        except ValueError:
                            found, raw = False, None
                        value = _as_text(raw) if found else None
                    if value is not None:
                        vu.captured[capture.name] = value
                        variables[capture.name] = value
        if step.sleep > 0:
            await asyncio.sleep(step.sleep)
