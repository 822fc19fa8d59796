"""A small in-process session kind for engine unit tests (STYLE.md 6: fakes for the engine's own
unit tests; the product's tests also drive real PTY, SSH and HTTP sessions).

Each ``ticker`` session records a latency sample every ``interval`` and a pass/fail sample, and
obeys faults: ``crash`` raises inside ``run`` (the supervisor must contain it), ``drop``
disrupts it for ``down`` seconds and then it recovers, ``slow`` raises its latency until
``fast``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from console.config import GroupConfig, opt
from console.metrics import MetricSpec, MetricType, Series
from console.sessions.base import (
    FaultNotApplicable,
    FaultSpec,
    KindRuntime,
    RunEnv,
    Session,
    SessionKind,
)
from console.snapshot import FaultRecord, SessionSnapshot


@dataclass(frozen=True, kw_only=True)
class TickerGroup(GroupConfig):
    interval: float = opt(0.05, unit="duration", doc="Time between samples.")
    latency: float = opt(10.0, doc="Latency sample in ms.")
    fail_every: int = opt(0, doc="Every Nth sample is a failure (0: never).")
    secret_token: str = opt("", secret=True, doc="A secret that must never be exported.")
    pin: str = opt("", secret=True, doc="Secret by declaration only: its name says nothing.")
    chatty: bool = opt(False, doc="Log an event for every sample (for event-log tests).")
    never_starts: bool = opt(False, doc="Wait in `starting` for the whole run, doing nothing.")
    fail_at_start: bool = opt(False, doc="Turn `failed` at once, then wait for the end of the run.")


class Ticker(Session):
    kind = "fake"

    def __init__(self, ctx: Any, config: TickerGroup) -> None:
        super().__init__(ctx, target="in-process")
        self.config = config
        self.latency = config.latency
        self.samples = 0
        self.crash_next = False
        self.down_until = -1.0
        self.series = {"latency": Series(60)}
        self._stop = asyncio.Event()

    async def run(self) -> None:
        if self.config.never_starts or self.config.fail_at_start:
            # The cases an engine must not miss: no work at all, or a failure while run() goes on.
            self.state = "failed" if self.config.fail_at_start else "starting"
            await self._stop.wait()
            return
        self.state = "running"
        self.ctx.event("connected", success=True)
        while not self._stop.is_set():
            if self.crash_next:
                raise RuntimeError("injected crash")
            now = self.ctx.now()
            if now < self.down_until:
                self.state = "reconnecting"
            else:
                if self.state == "reconnecting":
                    self.state = "running"
                    self.ctx.event("reconnected", elapsed_ms=500.0, attempt=1, success=True)
                    self.ctx.recovered()
                self.samples += 1
                self.ctx.observe("fake_latency", self.latency)
                bad = self.config.fail_every > 0 and self.samples % self.config.fail_every == 0
                self.ctx.rate("fake_failed", bad)
                self.ctx.add("fake_samples")
                if self.config.chatty:
                    self.ctx.event("tick", f"sample {self.samples}", success=not bad)
            try:
                await asyncio.wait_for(self._stop.wait(), self.config.interval)
            except asyncio.TimeoutError:
                pass
        self.state = "stopped"

    async def stop(self) -> None:
        self._stop.set()

    async def inject(self, action: str, params: Mapping[str, Any], fault: FaultRecord) -> None:
        if self.state in ("failed", "stopped"):
            raise FaultNotApplicable(f"{self.id} is {self.state}")
        if action == "crash":
            self.crash_next = True
        elif action == "drop":
            self.down_until = self.ctx.now() + float(params.get("down", 0.2))
            self.ctx.event("disconnect_injected", success=True)
        elif action == "slow":
            self.latency = float(params.get("latency", 5000.0))
        elif action == "fast":
            self.latency = self.config.latency

    def sample(self) -> None:
        self.series["latency"].push(self.latency)

    def view(self) -> SessionSnapshot:
        return self.make_view(
            series=self.series_views({"latency": "ms"}),
            counters=(("samples", str(self.samples)),),
            actions=("fake.crash", "fake.drop", "fake.slow", "fake.fast"),
        )


def create(groups: Sequence[TickerGroup], env: RunEnv) -> KindRuntime:
    sessions: list[Session] = []
    for group in groups:
        for i in range(group.count):
            sid = f"{group.name}#{i}"
            sessions.append(Ticker(env.context(sid, "fake", group.name, "in-process"), group))
    return KindRuntime(sessions)


KIND = SessionKind(
    name="fake",
    config_type=TickerGroup,
    metrics=(
        MetricSpec("fake_latency", MetricType.TREND, "ms"),
        MetricSpec("fake_failed", MetricType.RATE),
        MetricSpec("fake_samples", MetricType.COUNTER, "count"),
    ),
    faults={
        "crash": FaultSpec("raise inside the session", recovers=False),
        "drop": FaultSpec("disrupt, then recover", {"down": "float"}),
        "slow": FaultSpec("raise latency", {"latency": "float"}, until=("fast",)),
        "fast": FaultSpec("latency back to the configured one", recovers=False),
    },
    create=create,
)
