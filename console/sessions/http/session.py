"""The engine-side HTTP session: one worker process, one pane.

A ``[[http]]`` group with ``count = N`` becomes N sessions (``group#0`` .. ``group#N-1``), each
owning one worker process that runs its share of the scenario's VUs or arrival rate; the
first one also runs the group's probes. The session never generates load itself: it reads the
worker's metric deltas (several a second), folds them into the run's metrics with
``ctx.add`` / ``ctx.rate`` / ``ctx.merge_trend``, and keeps sparklines of req/s and p95.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from console.children import ChildProcess, Message
from console.errors import TargetError, TargetUnavailable, WorkerError
from console.metrics import Series, Trend
from console.secrets import ENV_REF
from console.sessions.base import FaultNotApplicable, Session, SessionContext
from console.sessions.http.catalog import CONTROL_ACTIONS, PROBE_METRICS, TARGET_ACTIONS
from console.sessions.http.config import MAX_BURST, MAX_RATE, HttpGroupConfig
from console.sessions.http.executors import share
from console.sessions.http.flow import MAX_NAMES, OTHER_NAME, safe_url
from console.sessions.http.probes import resilience_score
from console.sessions.http.stats import MAX_MESSAGES, OTHER_MESSAGES
from console.sessions.http.view import ms_text, rate_text, session_view
from console.snapshot import FaultRecord, SessionSnapshot

__all__ = ["HttpSession"]

_ROOT = str(Path(__file__).resolve().parents[3])
_GRACEFUL_STOP = 5.0  # then SIGKILL: the engine gives session.stop() 10 s in all
_RECOVERY_WINDOW = 1.0  # seconds of successes, with no failure, that count as recovered
_RECOVERY_SUCCESSES = 3
_OTHER_KEY = f"* {OTHER_NAME}"


class RequestTally:
    """One request name's failures and durations over the whole run, from every delta."""

    __slots__ = ("failures", "trend")

    def __init__(self) -> None:
        self.failures = 0
        self.trend = Trend()


class HttpSession(Session):
    kind = "http"

    def __init__(
        self,
        ctx: SessionContext,
        config: HttpGroupConfig,
        *,
        index: int,
        workers: int,
        run_probes: bool,
        base_dir: Path,
        run_duration: float,
        embedded: bool,
    ) -> None:
        super().__init__(ctx, target=safe_url(config.target_url))
        self.config = config
        self.index = index
        self.workers = workers
        self.run_probes = run_probes and bool(config.probes)
        self.base_dir = base_dir
        self.run_duration = run_duration
        self.embedded = embedded
        self.base_url = "" if embedded else config.target_url
        self.via = config.via
        self._route: Callable[[], tuple[str, int]] | None = None
        self.child: ChildProcess | None = None
        self.series = {"req/s": Series(120), "p95": Series(120), "errors/s": Series(120)}
        self.totals: dict[str, float] = {}
        self.codes: dict[str, int] = {}
        self.errors: dict[str, int] = {}
        self.rates: dict[str, list[int]] = {}
        self.checks_by_name: dict[str, list[int]] = {}
        # The per-request table's figures, keyed "METHOD name" (console.sessions.http.tables)
        # Per request name, over the whole run. HttpRuntime makes a group's sessions share one
        # dict (and one total), so the group's table is read, never merged, while it runs.
        self.requests: dict[str, RequestTally] = {}
        self.request_total = RequestTally()
        self.failures: dict[tuple[str, str], int] = {}  # (name key, message) -> count
        self.duration = Trend()
        self.interval_trend = Trend()
        self.interval_reqs = 0.0
        self.scenario_at: tuple[float, float] | None = None  # (scenario s, run s) last heard
        self.iteration_rate = 0.0  # iterations/s over the last sample: what `:rate` offers
        self._iterations_at_sample = 0.0
        self.interval_errors = 0.0
        self.gauges: dict[str, float] = {}
        self.probes: dict[str, tuple[bool, float]] = {}
        self.probe_evidence: dict[str, str] = {}
        self.score: float | None = None
        self.scale = 1.0
        self.rate_set: float | None = None  # this worker's share, once set_rate held it
        self.paused = False
        self.stderr_tail: deque[str] = deque(maxlen=20)
        self.healthy = True
        self.failing_since: float | None = None
        self.good_since: float | None = None  # start of the current run of clean successes
        self.good_count = 0.0
        self._stopping = False

    @property
    def has_flow(self) -> bool:
        """Whether this worker sends traffic at all (probe-only groups do not).

        Recovery after a stall is measured on traffic, so a session without any has nothing
        to recover and must refuse to be counted.
        """
        config = self.config
        if not config.steps:
            return False
        if config.executor == "constant-vus":
            peak = float(config.vus)
        elif config.executor == "constant-arrival-rate":
            peak = config.rate
        elif config.executor == "ramping-vus":
            peak = max([float(config.start_vus), *(s.target for s in config.stages)])
        else:
            peak = max([config.start_rate, *(s.target for s in config.stages)])
        if config.executor.endswith("arrival-rate"):
            return peak > 0
        return share(peak, self.index, self.workers) > 0

    # --- worker process ----------------------------------------------------------------------

    def real_address(self) -> tuple[str, int]:
        """The real target's address, for a link that forwards to it."""
        if not self.base_url:
            raise TargetError("embedded HTTP target is not running")
        parts = urlsplit(self.base_url)
        default = 443 if parts.scheme == "https" else 80
        return parts.hostname or "127.0.0.1", parts.port or default

    def route(self, address: Callable[[], tuple[str, int]] | None) -> None:
        """Send traffic to ``address()`` (a link) with the real target in the Host header."""
        self._route = address  # the link's pane lists the sessions behind it

    def _routed_url(self) -> tuple[str, str]:
        """(URL the worker sends to, Host header) - through the link when routed."""
        if self._route is None:
            return self.base_url, ""
        parts = urlsplit(self.base_url)
        host, port = self._route()
        shown = f"[{host}]" if ":" in host else host
        return urlunsplit(("http", f"{shown}:{port}", parts.path, "", "")), parts.netloc

    def spec(self) -> dict[str, Any]:
        """What the worker runs, sent on its stdin (never in its argv or environment)."""
        config = dataclasses.asdict(self.config)
        # The worker's environment holds no secret (child_env), so the ${env.X} values its
        # flow needs travel here, as if the group's env table had given them.
        wanted = set(ENV_REF.findall(json.dumps(config["steps"])))
        found = {n: os.environ[n] for n in wanted - set(config["env"]) if n in os.environ}
        config["env"] = {**found, **config["env"]}
        base_url, host_header = self._routed_url()
        return {
            "config": config,
            "base_url": base_url,
            "host_header": host_header,
            "index": self.index,
            "workers": self.workers,
            "run_probes": self.run_probes,
            "base_dir": str(self.base_dir),
            "run_duration": self.run_duration,
            "report_interval": 0.25,
        }

    async def run(self) -> None:
        if not self.base_url:
            raise TargetError("embedded HTTP target is not running")
        self.target = safe_url(self.base_url)
        done = False

        def on_message(message: Message) -> None:
            nonlocal done
            done = done or message.get("t") == "done"
            self.handle(message)

        # Started and spoken to the way every child is (console.children); from the loop
        # thread, which outlives the worker (the kernel's parent-death signal follows it).
        child = ChildProcess(
            "console.sessions.http.worker",
            env=self.ctx.secrets.child_env(),
            name=f"{self.id}'s worker",
            on_message=on_message,
            stderr=asyncio.subprocess.PIPE,
        )
        self.child = child
        code: int | None = None
        stderr_task: asyncio.Future[None] | None = None
        try:
            try:
                await child.start()
            except TargetUnavailable as exc:
                raise WorkerError(str(exc)) from None
            stderr_task = asyncio.ensure_future(self._read_stderr())
            await child.notify("start", spec=self.spec())
            code = await child.wait()
        finally:
            # Also on cancellation: never leave a worker behind, never wait without a bound.
            await child.stop(grace=2.0)
            if stderr_task is not None:
                stderr_task.cancel()
                await asyncio.wait({stderr_task}, timeout=1.0)
        if not done and not self._stopping:
            tail = " | ".join(list(self.stderr_tail)[-3:])
            raise WorkerError(f"HTTP worker exited with code {code}: {tail}")
        self.state = "stopped" if self._stopping else "exited"
        if not self._stopping:
            self.ctx.event("scenario_end", self._summary_text(), success=True)

    async def _read_stderr(self) -> None:
        proc = self.child.proc if self.child is not None else None
        assert proc is not None and proc.stderr is not None
        async for line in proc.stderr:
            self.stderr_tail.append(line.decode(errors="replace").rstrip())

    async def _send(self, cmd: str, **fields: Any) -> None:
        child = self.child
        if child is None or child.gone:
            raise FaultNotApplicable(f"{self.id} has no running worker")
        try:
            await child.notify(cmd, **fields)
        except TargetUnavailable as exc:
            raise FaultNotApplicable(f"{self.id}: worker gone") from exc

    async def stop(self) -> None:
        self._stopping = True
        child = self.child
        if child is None or child.gone:
            return
        with contextlib.suppress(FaultNotApplicable):
            await self._send("stop")  # the worker flushes its last figures and says "done"
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(child.wait()), _GRACEFUL_STOP)
        await child.stop(grace=2.0)

    # --- messages from the worker ----------------------------------------------------------------

    def handle(self, message: Mapping[str, Any]) -> None:
        kind = message.get("t")
        if kind == "m":
            self._merge(message)
        elif kind == "event":
            name = str(message.get("name", ""))
            if name == "scenario_start":
                self.state = "running"
            self.ctx.event(name, str(message.get("detail", "")), success=message.get("success"))
        elif kind == "probe":
            self._probe(message)

    def _merge(self, m: Mapping[str, Any]) -> None:
        ctx = self.ctx
        counters: Mapping[str, float] = m.get("c", {})
        for name, amount in counters.items():
            if amount:
                ctx.add(name, amount)
                self.totals[name] = self.totals.get(name, 0.0) + amount
        for name, (passes, total) in m.get("r", {}).items():
            if passes:
                ctx.rate(name, True, passes)
            if total - passes:
                ctx.rate(name, False, total - passes)
            pair = self.rates.setdefault(name, [0, 0])
            pair[0] += passes
            pair[1] += total
        for name, encoded in m.get("tr", {}).items():
            ctx.merge_trend(name, encoded)
            if name == "http_req_duration":
                trend = Trend.decode(encoded)
                self.duration.merge(trend)
                self.interval_trend.merge(trend)
        for name, value in m.get("g", {}).items():
            ctx.gauge(name, value)
            self.gauges[name] = value
        for code, n in m.get("codes", {}).items():
            self.codes[code] = self.codes.get(code, 0) + n
        for cls, n in m.get("errs", {}).items():
            self.errors[cls] = self.errors.get(cls, 0) + n
        for key, entry in m.get("req", {}).items():
            tally = self.requests.get(key)
            if tally is None:
                if len(self.requests) >= MAX_NAMES:  # a worker bounds them too: belt and braces
                    key = _OTHER_KEY
                tally = self.requests.setdefault(key, RequestTally())
            delta, failures = Trend.decode(entry["tr"]), int(entry.get("f", 0))
            tally.failures += failures
            tally.trend.merge(delta)
            self.request_total.failures += failures
            self.request_total.trend.merge(delta)
        for key, message, n in m.get("fails", ()):
            where = (str(key), str(message))
            if where not in self.failures and len(self.failures) >= 2 * MAX_MESSAGES:
                where = (where[0], OTHER_MESSAGES)
            self.failures[where] = self.failures.get(where, 0) + int(n)
        for name, (passes, total) in m.get("checks", {}).items():
            pair = self.checks_by_name.setdefault(str(name), [0, 0])
            pair[0] += int(passes)
            pair[1] += int(total)
        self.scale = float(m.get("scale", self.scale))
        self.rate_set = m.get("rate_set", self.rate_set)
        if "scenario_s" in m:
            self.scenario_at = (float(m["scenario_s"]), self.ctx.now())
        self.paused = bool(m.get("paused", self.paused))
        if self.state in ("running", "paused"):
            self.state = "paused" if self.paused else "running"
        reqs = counters.get("http_reqs", 0.0)
        failed = m.get("r", {}).get("http_req_failed", [0, 0])[0]
        self.interval_reqs += reqs
        self.interval_errors += failed
        self._health(reqs, reqs - failed, int(m.get("inflight", 0)))

    def _health(self, reqs: float, ok: float, inflight: int) -> None:
        """Recovery bookkeeping: usable again = requests succeed for a sustained window.

        One success proves little (a request that slipped through an error rate), so after a
        stall or an unsolicited disruption the session counts as recovered only once at least
        ``_RECOVERY_SUCCESSES`` responses succeeded over ``_RECOVERY_WINDOW`` seconds with no
        failure in between. Held responses cannot succeed while the stall lasts, so the window
        starts after it ends.
        """
        now = self.ctx.now()
        failed = reqs - ok
        if not self.healthy:
            if failed > 0:
                self.good_since, self.good_count = None, 0.0
            elif ok > 0:
                if self.good_since is None:
                    self.good_since = now
                self.good_count += ok
                if (
                    now - self.good_since >= _RECOVERY_WINDOW
                    and self.good_count >= _RECOVERY_SUCCESSES
                ):
                    self.healthy = True
                    self.good_since, self.good_count = None, 0.0
                    self.ctx.recovered()
        if ok > 0:
            self.failing_since = None
            return
        if reqs > 0 or inflight > 0:  # requests fail, or none completes: not merely idle
            if self.failing_since is None:
                self.failing_since = now
            elif self.healthy and now - self.failing_since >= 3.0:
                # Nothing has succeeded for 3s without anyone asking for it.
                self.healthy = False
                cause = max(self.errors, key=lambda k: self.errors[k]) if self.errors else "failing"
                self.ctx.event(
                    "http_unusable", f"no successful response for 3s ({cause})", success=False
                )
                self.ctx.disrupted("unresponsive" if cause == "timeout" else "failing")
        else:
            self.failing_since = None

    def _probe(self, m: Mapping[str, Any]) -> None:
        kind = str(m["kind"])
        passed = bool(m["pass"])
        self.probes[kind] = (passed, float(m.get("weight", 0.0)))
        self.probe_evidence[kind] = str(m.get("evidence", ""))
        self.ctx.rate(PROBE_METRICS[kind], passed)
        self.ctx.event(
            f"probe_{kind}",
            ("PASS: " if passed else "FAIL: ") + self.probe_evidence[kind],
            success=passed,
            data=m.get("data") or {},
        )
        self._update_score()

    def _update_score(self) -> None:
        # Pending until every probe ran: 2 of 4 passed is not 100/100.
        if not self.probes or len(self.probes) < len(self.config.probes):
            return
        checks = self.rates.get("checks")
        checks_rate = checks[0] / checks[1] if checks and checks[1] else None
        score = resilience_score(self.probes, checks_rate if self.config.steps else None)
        if score is not None:
            self.score = score
            self.ctx.gauge("resilience_score", score)

    # --- faults and controls ---

    async def pause(self) -> str:
        """Stop the load: arrivals stop, VUs finish their iteration, the scenario's clock stops."""
        if self.state not in ("running", "paused") or not self.has_flow:
            return ""
        with contextlib.suppress(FaultNotApplicable):
            await self._send("pause")
            return "load"
        return ""

    async def resume(self) -> None:
        with contextlib.suppress(FaultNotApplicable):
            await self._send("resume")

    async def inject(self, action: str, params: Mapping[str, Any], fault: FaultRecord) -> None:
        if action in TARGET_ACTIONS:
            if action == "stall" and not self.has_flow:
                raise FaultNotApplicable(
                    f"{self.id} sends no traffic: no stall recovery to measure"
                )
            self.target_fault(action)
            return
        if action not in CONTROL_ACTIONS:
            raise FaultNotApplicable(f"{self.id} does not accept http.{action}")
        if self.state in ("exited", "stopped", "failed"):
            raise FaultNotApplicable(f"{self.id} is {self.state}")
        if action == "pause":
            await self._send("pause")
        elif action == "resume":
            await self._send("resume")
        elif action in ("rate_up", "rate_down"):
            by = float(params.get("by", 0.25))
            factor = 1.0 + by if action == "rate_up" else 1.0 / (1.0 + by)
            await self._send("scale", value=factor)
        elif action == "set_rate":
            await self._send("rate", value=share(self._rate_of(params), self.index, self.workers))
        elif action == "burst":
            count = int(params.get("count", 50))
            if not 0 <= count <= MAX_BURST:  # the API's faults are not checked as typed ones
                raise FaultNotApplicable(f"a burst is at most {MAX_BURST} iterations")
            await self._send("burst", value=share(count, self.index, self.workers))

    def _rate_of(self, params: Mapping[str, Any]) -> float:
        """The group's new rate for ``set_rate``, refused where it means nothing."""
        if not self.config.executor.endswith("arrival-rate"):
            raise FaultNotApplicable(
                f"{self.id} runs {self.config.executor}: VUs, not a rate (rate_up/rate_down "
                "scale them)"
            )
        rate = float(params.get("rate", 0.0))
        if not 0 < rate <= MAX_RATE:
            raise FaultNotApplicable(f"a rate must be above 0 and at most {MAX_RATE:.0f}/s")
        return rate

    def target_fault(self, action: str) -> None:
        """The shared target was faulted; only a stall is a disruption to recover from.

        Error rate, latency and a failed dependency are conditions that last until cleared
        (their FaultSpecs say ``recovers=False``), so they open no recovery here either.
        """
        if action != "stall" or not self.has_flow:
            return
        self.healthy = False
        self.good_since, self.good_count = None, 0.0

    # --- views ---

    def sample(self) -> None:
        seconds = self.seconds_since_sample()
        iterations = self.totals.get("iterations", 0.0)
        self.iteration_rate = (iterations - self._iterations_at_sample) / seconds
        self._iterations_at_sample = iterations
        self.series["req/s"].push(self.interval_reqs / seconds)
        self.series["p95"].push(self.interval_trend.percentile(95) or 0.0)
        self.series["errors/s"].push(self.interval_errors / seconds)
        self.interval_reqs = self.interval_errors = 0.0
        self.interval_trend = Trend()
        self._update_score()

    def _summary_text(self) -> str:
        return (
            f"{self.totals.get('http_reqs', 0):.0f} requests, "
            f"{self.totals.get('iterations', 0):.0f} iterations, "
            f"p95 {ms_text(self.duration.percentile(95))}, "
            f"failed {rate_text(self, 'http_req_failed')}, "
            f"dropped {self.totals.get('dropped_iterations', 0):.0f}"
        )

    def view(self) -> SessionSnapshot:
        return session_view(self)
