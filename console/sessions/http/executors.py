"""k6's executors, in one worker process: closed model (VUs) and open model (arrival rate).

* ``constant-vus`` / ``ramping-vus``: a fixed or staged number of VUs loop over the flow. When
  the target drops, a VU finishes its iteration and stops (k6's graceful ramp-down).
* ``constant-arrival-rate`` / ``ramping-arrival-rate``: iterations start on a schedule whatever
  the target does. Each scheduled start takes a free VU; if none is free a new one is made up to
  ``max_vus``; otherwise the iteration is counted in ``dropped_iterations``. The first request
  of each iteration is timed from its *scheduled* start, so when the generator or the server
  falls behind, the delay shows in ``http_req_duration`` (no coordinated omission).

Live controls: ``pause``/``resume``; ``scale`` multiplies VUs or the rate (``http.rate_up`` /
``http.rate_down``), kept within ``MIN_SCALE``..``MAX_SCALE`` and never above ``MAX_VUS`` VUs;
``rate`` holds an arrival rate at a value per second (``http.set_rate``);
``burst`` starts N extra iterations at once, each on a fresh VU and its own
connection.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable

from console.sessions.http.client import Client
from console.sessions.http.config import MAX_RATE, MAX_VUS, HttpGroupConfig
from console.sessions.http.flow import VU, Flow
from console.units import format_duration

__all__ = [
    "MAX_SCALE",
    "MIN_SCALE",
    "Executor",
    "RateShape",
    "describe",
    "peak_vus",
    "scenario_length",
    "share",
]

_EARLY = 0.001  # seconds an arrival may be dispatched ahead of its schedule
_END_DRAIN = 10.0  # seconds running iterations get after a scenario ends by itself
_STOP_DRAIN = 3.0  # ... once told to stop: inside the session's 5 s before SIGTERM
_YIELD_EVERY = 64  # arrivals dispatched before the open model's loop lets others run
# How far rate_up/rate_down may take the profile's VUs or rate; an arrival rate also stays
# within the profile's own bound (MAX_RATE a second), which one worker's loop keeps up with.
# Unbounded, a typed ``:rate api +99999999999999999999%`` made the scale so large that the
# next arrival's step vanished in the float (next_t + 1e-20 == next_t): the worker dispatched
# forever without waiting, and could not even be stopped.
MIN_SCALE, MAX_SCALE = 0.01, 100.0


def share(total: float, index: int, workers: int) -> float:
    """Worker ``index``'s part of ``total`` when ``workers`` split it (whole numbers stay whole)."""
    if workers <= 1:
        return total
    if float(total).is_integer():
        base, extra = divmod(int(total), workers)
        return float(base + (1 if index < extra else 0))
    return total / workers


def scenario_length(config: HttpGroupConfig, run_duration: float) -> float:
    """Seconds a scenario runs from its start: its stages, its ``duration`` or the run's;
    ``inf`` when nothing ends it."""
    if config.executor.startswith("ramping"):
        return sum(s.duration for s in config.stages)
    duration = config.duration or run_duration
    return duration if duration > 0 else math.inf


def peak_vus(config: HttpGroupConfig) -> int:
    """The most VUs the scenario may hold at once, summed over its workers."""
    if config.executor == "constant-vus":
        return config.vus
    if config.executor == "ramping-vus":
        return int(max([float(config.start_vus), *(s.target for s in config.stages)]))
    return max(config.max_vus, config.pre_allocated_vus)


def describe(config: HttpGroupConfig, run_duration: float) -> str:
    """The scenario in k6's words: ``50 looping VUs for 20.0s``, ``100.00 iterations/s for
    1m00s (VUs: 10-50)``, plus the worker processes it is split over."""
    length = scenario_length(config, run_duration)
    span = "until stopped" if math.isinf(length) else f"for {format_duration(length)}"
    stages = f" over {len(config.stages)} stages" if config.executor.startswith("ramping") else ""
    unit = config.time_unit or 1.0
    notes = []
    if config.executor == "constant-vus":
        text = f"{config.vus} looping VUs {span}"
    elif config.executor == "ramping-vus":
        text = f"Up to {peak_vus(config)} looping VUs {span}{stages}"
    else:
        if config.executor == "constant-arrival-rate":
            text = f"{config.rate / unit:.2f} iterations/s {span}"
        else:
            peak = max([config.start_rate, *(s.target for s in config.stages)]) / unit
            text = f"Up to {peak:.2f} iterations/s {span}{stages}"
        notes.append(f"VUs: {config.pre_allocated_vus}-{peak_vus(config)}")
    if not config.steps:
        text = f"no load, {len(config.probes)} probe(s)"
        notes = []
    if config.start_time:
        notes.append(f"starts at {format_duration(config.start_time)}")
    if config.count > 1:
        notes.append(f"{config.count} workers")
    return text + (f" ({', '.join(notes)})" if notes else "")


class RateShape:
    """A piecewise-linear rate (per second) over time, and the next arrival after a moment."""

    def __init__(self, start: float, stages: tuple[tuple[float, float], ...], end: float) -> None:
        # segments: (t0, t1, r0, r1)
        self.segments: list[tuple[float, float, float, float]] = []
        t, r = 0.0, start
        for duration, target in stages:
            self.segments.append((t, t + duration, r, target))
            t, r = t + duration, target
        if not stages:
            self.segments.append((0.0, end, start, start))
        self.end = self.segments[-1][1] if self.segments else 0.0

    def rate_at(self, t: float) -> float:
        for t0, t1, r0, r1 in self.segments:
            if t0 <= t < t1:
                if math.isinf(t1) or t1 <= t0:
                    return r1
                return r0 + (r1 - r0) * (t - t0) / (t1 - t0)
        return 0.0

    def next_arrival(self, t: float, scale: float = 1.0) -> float:
        """When the rate's integral from ``t`` reaches one more arrival; inf after the end."""
        remaining = 1.0 / scale if scale > 0 else math.inf
        for t0, t1, r0, r1 in self.segments:
            if t1 <= t:
                continue
            cur = max(t, t0)
            if math.isinf(t1):  # an open-ended constant rate
                return cur + remaining / r0 if r0 > 0 else math.inf
            slope = (r1 - r0) / (t1 - t0) if t1 > t0 else 0.0
            a = r0 + slope * (cur - t0)
            length = t1 - cur
            area = a * length + slope * length * length / 2.0
            if area >= remaining:
                if abs(slope) < 1e-12:
                    return cur + remaining / a
                disc = max(a * a + 2.0 * slope * remaining, 0.0)
                return cur + (-a + math.sqrt(disc)) / slope
            remaining -= area
        return math.inf


class Executor:
    """Runs one worker's share of a scenario until it ends or :meth:`stop` is called."""

    def __init__(
        self,
        config: HttpGroupConfig,
        flow: Flow,
        make_client: Callable[[], Client],
        *,
        index: int = 0,
        workers: int = 1,
        run_duration: float = 0.0,
        resume_at: float = 0.0,
    ) -> None:
        self.config = config
        # Scenario seconds already run elsewhere: a share re-spread after its node was lost
        # goes on from there (a ramp where it was, the end where it was), not from the start.
        self.resume_at = max(0.0, resume_at)
        self.flow = flow
        self.make_client = make_client
        self.index = index
        self.workers = workers
        self.scale = 1.0
        self.paused = False
        self.stopping = False
        self.vus: list[VU] = []
        self.free: list[VU] = []
        self.tasks: set[asyncio.Task[None]] = set()
        self.started = 0.0
        self.active_target = 0
        self.open_model = config.executor.endswith("arrival-rate")
        self._wake = asyncio.Event()
        self._bursts = 0
        self._paused_at: float | None = None
        self._replanned = False  # the rate changed: the next arrival is due again
        self.rate_set: float | None = None  # per second, once ``rate`` held it
        self.end = scenario_length(config, run_duration)
        unit = config.time_unit or 1.0
        if config.executor == "constant-arrival-rate":
            self.shape = RateShape(share(config.rate, index, workers) / unit, (), self.end)
        elif config.executor == "ramping-arrival-rate":
            self.shape = RateShape(
                share(config.start_rate, index, workers) / unit,
                tuple((s.duration, share(s.target, index, workers) / unit) for s in config.stages),
                self.end,
            )
        elif config.executor == "ramping-vus":
            self.shape = RateShape(
                share(config.start_vus, index, workers),
                tuple((s.duration, share(s.target, index, workers)) for s in config.stages),
                self.end,
            )
        else:
            self.shape = RateShape(share(config.vus, index, workers), (), self.end)
        self.pre_allocated = int(share(config.pre_allocated_vus, index, workers))
        self.max_vus = max(
            int(share(config.max_vus or config.pre_allocated_vus, index, workers)),
            self.pre_allocated,
        )

    # --- VUs -------------------------------------------------------------------------------

    def _new_vu(self) -> VU:
        # VU ids are 1-based and unique across the group's workers (interleaved).
        vu = VU(id=1 + self.index + len(self.vus) * self.workers, client=self.make_client())
        self.vus.append(vu)
        return vu

    @property
    def busy(self) -> int:
        return sum(1 for vu in self.vus if vu.busy)

    def gauges(self) -> dict[str, float]:
        active = self.busy if self.open_model else min(self.active_target, len(self.vus))
        return {"vus": float(active), "vus_max": float(len(self.vus))}

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def scenario_seconds(self) -> float:
        """Scenario time run so far: a pause going on now is not counted (resuming moves
        ``started`` by it), so a successor can go on from here."""
        return (self._paused_at or time.perf_counter()) - self.started

    # --- controls ----------------------------------------------------------------------------

    def _max_scale(self) -> float:
        if not self.open_model:
            return MAX_SCALE
        peak = max((r for _, _, r0, r1 in self.shape.segments for r in (r0, r1)), default=0.0)
        return min(MAX_SCALE, MAX_RATE / peak) if peak > 0 else MAX_SCALE

    def control(self, op: str, value: float = 0.0) -> str:
        if op == "pause":
            if not self.paused:
                self._paused_at = time.perf_counter()
            self.paused = True
        elif op == "resume":
            if self._paused_at is not None and self.started:
                # One clock with the run: a pause is not scenario time, so the schedule picks
                # up where it stopped and the scenario still ends after its full duration.
                self.started += time.perf_counter() - self._paused_at
            self._paused_at = None
            self.paused = False
        elif op == "scale" and math.isfinite(value) and value > 0:
            self.scale = min(self._max_scale(), max(MIN_SCALE, self.scale * value))
            self._replanned = True
        elif op == "rate" and self.open_model and value > 0:
            # From now on, a constant rate to the end: RateShape reads absolute run time.
            self.shape = RateShape(value, (), self.end)
            self.scale, self.rate_set, self._replanned = 1.0, value, True
        elif op == "burst":
            for _ in range(int(value)):
                self._spawn(self._burst_one())
        self._wake.set()
        held = f" rate {self.rate_set:g}/s" if self.rate_set is not None else ""
        return f"scale x{self.scale:.2f}{held}" + (" paused" if self.paused else "")

    def _spawn(self, coro: object) -> None:
        task = asyncio.ensure_future(coro)  # type: ignore[call-overload]
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _burst_one(self) -> None:
        # burst VUs live for one iteration; their ids stay clear of the scenario's
        self._bursts += 1
        vu = VU(id=1_000_000 + self._bursts * self.workers + self.index, client=self.make_client())
        try:
            await self.flow.iterate(vu, time.perf_counter())
        finally:
            await vu.client.close()

    # --- running -------------------------------------------------------------------------------

    async def run(self) -> None:
        if self.config.start_time > 0 and not self.resume_at:
            await asyncio.sleep(self.config.start_time)
        self.started = time.perf_counter() - self.resume_at  # 0.0 until then: not begun
        if self.paused:  # paused before it began: only the pause from now on is not its time
            self._paused_at = time.perf_counter()
        try:
            if self.open_model:
                await self._run_open()
            else:
                await self._run_closed()
            await self._drain()
        finally:
            await self.close()

    async def _drain(self) -> None:
        """k6's graceful stop: let running iterations finish, bounded (k6 gives 30 s).

        10 s after the scenario ends by itself; 3 s once told to stop, even when the stop comes
        during the 10 s, so the session's 5 s before SIGTERM is never reached.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (_STOP_DRAIN if self.stopping else _END_DRAIN)
        told = self.stopping
        while self.tasks:
            if self.stopping and not told:
                told = True
                deadline = min(deadline, loop.time() + _STOP_DRAIN)
            left = deadline - loop.time()
            if left <= 0:
                return
            self._wake.clear()
            waker = asyncio.ensure_future(self._wake.wait())  # stop() sets it
            try:
                await asyncio.wait(
                    {*self.tasks, waker}, timeout=left, return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                waker.cancel()

    async def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)
        await asyncio.gather(*(vu.client.close() for vu in self.vus), return_exceptions=True)

    def stop(self) -> None:
        self.stopping = True
        self._wake.set()

    async def _sleep(self, seconds: float) -> None:
        self._wake.clear()
        try:
            await asyncio.wait_for(self._wake.wait(), timeout=max(seconds, 0.0))
        except asyncio.TimeoutError:
            pass

    async def _run_closed(self) -> None:
        running: dict[int, asyncio.Task[None]] = {}
        while not self.stopping:
            t = self.elapsed()
            if t >= self.end:
                break
            target = 0 if self.paused else round(self.shape.rate_at(t) * self.scale)
            target = min(max(0, target), MAX_VUS)
            self.active_target = target
            while len(self.vus) < target:
                self._new_vu()
            for slot in range(target):
                if slot not in running or running[slot].done():
                    running[slot] = asyncio.ensure_future(self._vu_loop(slot))
                    self.tasks.add(running[slot])
                    running[slot].add_done_callback(self.tasks.discard)
            await self._sleep(0.05)
        self.active_target = 0

    async def _vu_loop(self, slot: int) -> None:
        vu = self.vus[slot]
        while not self.stopping and slot < self.active_target and self.elapsed() < self.end:
            vu.busy = True
            try:
                await self.flow.iterate(vu)
            finally:
                vu.busy = False
            if not self.config.steps:
                await asyncio.sleep(1.0)  # a probe-only group has nothing to loop over

    async def _run_open(self) -> None:
        if not self.config.steps:
            while not self.stopping and self.elapsed() < self.end:
                await self._sleep(0.5)
            return
        for _ in range(self.pre_allocated):
            self.free.append(self._new_vu())
        # like k6, a non-zero starting rate starts its first iteration at once
        first = self.resume_at
        next_t = (
            first if self.shape.rate_at(first) > 0 else self.shape.next_arrival(first, self.scale)
        )
        unbroken = 0  # arrivals dispatched since the last forced yield
        while not self.stopping:
            if self.paused:  # resuming moves ``started``: the schedule goes on from next_t
                await self._sleep(0.5)
                continue
            now = self.elapsed()
            if self._replanned:  # a higher rate must not wait for the old, later arrival
                self._replanned = False
                next_t = min(next_t, self.shape.next_arrival(now, self.scale))
            # the epsilon keeps 250 sums of 1/50 s from landing just under 5 s
            if next_t >= self.end - 1e-9 or math.isinf(next_t):
                if math.isinf(self.end) or now >= self.end:
                    break
                # no arrival left at this rate, but the scenario lasts: a new rate may come
                await self._sleep(min(self.end - now, 0.5))
                continue
            if next_t > now + _EARLY:
                # The loop's timers fire up to ~1 ms late (epoll rounds its timeout up to whole
                # ms), so aim that much early; a request sent early is timed from its real
                # start, a late one from its schedule. Short waits use a plain sleep (cheap at
                # 1,000/s); long ones wake on controls.
                delay = next_t - now - _EARLY
                await (asyncio.sleep(delay) if delay < 0.05 else self._sleep(min(delay, 0.5)))
                continue
            self._dispatch(self.started + next_t)
            next_t = self.shape.next_arrival(next_t, self.scale)
            unbroken += 1
            if unbroken >= _YIELD_EVERY:
                # Behind schedule, the loop never waits: let the controls (a stop), the
                # reporter and the iterations themselves run.
                unbroken = 0
                await asyncio.sleep(0)

    def _dispatch(self, intended: float) -> None:
        if self.free:
            vu = self.free.pop()
        elif len(self.vus) < self.max_vus:
            vu = self._new_vu()
        else:
            self.flow.stats.add("dropped_iterations")
            return
        vu.busy = True
        self._spawn(self._open_iteration(vu, intended))

    async def _open_iteration(self, vu: VU, intended: float) -> None:
        try:
            await self.flow.iterate(vu, intended)
        finally:
            vu.busy = False
            self.free.append(vu)
