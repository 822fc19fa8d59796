"""A fixed, made-up RunSnapshot for deterministic console snapshots and widget tests.

Nothing in it depends on the clock or on randomness (a fixed-seed generator), so an SVG
taken of the console built on it is the same on every run.
"""

from __future__ import annotations

import math
import random

from console.events import Event
from console.snapshot import (
    ConsoleStats,
    CriterionSnapshot,
    FaultRecord,
    RunSnapshot,
    SeriesView,
    SessionSnapshot,
)

KIND_FAULTS = {
    "pty": ("pty.kill", "pty.hang", "pty.resume", "pty.restart"),
    "ssh": ("ssh.drop", "ssh.restart"),
    "http": ("http.pause", "http.resume", "http.rate_up", "http.rate_down", "http.burst"),
}
STATES = ("running", "running", "running", "reconnecting", "crashed", "hung", "restarting")


def _series(
    rng: random.Random, name: str, unit: str, n: int, markers: tuple[int, ...]
) -> SeriesView:
    values = tuple(
        round(50 + 40 * math.sin(i / 5 + rng.random()) + rng.random() * 10, 1) for i in range(n)
    )
    return SeriesView(name, unit, values, markers)


def synthetic_session(kind: str, group: str, index: int, rng: random.Random) -> SessionSnapshot:
    state = STATES[(index * 3 + len(kind)) % len(STATES)]
    counters: tuple[tuple[str, str], ...]
    if kind == "pty":
        target = "python -m console emit --rate 200"
        marks: tuple[int, ...] = (20, 41) if index % 2 else ()
        series = (_series(rng, "output", "", 60, marks), _series(rng, "rss", "bytes", 60, marks))
        counters = (("crashes", str(index % 3)), ("restarts", str(index % 2)), ("loss", "0.0%"))
        last = "crashed: SIGKILL" if state == "crashed" else "output 200 lines/s"
    elif kind == "ssh":
        target = f"127.0.0.1:{2222 + index % 2}"
        marks = (30,) if index == 0 else ()
        series = (_series(rng, "cpu", "%", 60, marks), _series(rng, "mem", "%", 60, marks))
        counters = (("reconnects", str(index)), ("errors", "0"), ("polls", str(120 + index)))
        last = "reconnected after 1069 ms" if index % 2 else "poll ok 12 ms"
    else:
        target = "http://127.0.0.1:8080/upload"
        series = (_series(rng, "req/s", "", 60, ()), _series(rng, "p95", "ms", 60, ()))
        counters = (("reqs", "12.4k"), ("failed", "0.3%"), ("p95", "182ms"), ("vus", "20"))
        last = "iteration ok"
    return SessionSnapshot(
        id=f"{group}#{index}",
        kind=kind,
        group=group,
        target=target,
        state=state,
        badges=("host key unchecked",) if kind == "ssh" and index == 0 else (),
        series=series,
        counters=counters,
        last_event=last,
        output_tail=("line 1 ok", "line 2 ok", "line 3 ok"),
        details=(*counters, ("bytes out", "1.2MB"), ("uptime", "00:42")),
        actions=KIND_FAULTS[kind],
    )


def _event(i: int, session: str | None, kind: str, name: str, detail: str = "") -> Event:
    return Event(
        ts=f"2026-02-07T12:00:{i:02d}.123456+00:00",
        session_id=session,
        host="127.0.0.1",
        event=name,
        detail=detail,
        kind=kind,
        run="20260207T120000Z-synthetic",
        source="key" if name == "fault" else None,
        t=float(i),
    )


def synthetic_snapshot(ssh: int = 3, pty: int = 5, http: int = 2) -> RunSnapshot:
    rng = random.Random(7)
    sessions = (
        [synthetic_session("ssh", "ssh", i, rng) for i in range(ssh)]
        + [synthetic_session("pty", "emit", i, rng) for i in range(pty)]
        + [synthetic_session("http", "upload", i, rng) for i in range(http)]
    )
    criteria = (
        CriterionSnapshot(
            "reconnect p95",
            "p(95)<2000",
            "ssh_reconnect_ms",
            "run",
            "pass",
            1069.0,
            "1.07s",
            "< 2s",
        ),
        CriterionSnapshot(
            "output loss",
            "rate<1%",
            "pty_output_loss",
            "run",
            "fail",
            0.021,
            "2.1%",
            "< 1%",
            abort_on_fail=True,
        ),
        CriterionSnapshot(
            "recovered after drop",
            "rate>=90%",
            "recovery after ssh.drop",
            "recovery",
            "pending",
            None,
            "-",
            ">= 90% within 15s",
        ),
    )
    faults = (
        FaultRecord(1, 12.0, "2026-02-07T12:00:12+00:00", "pty.kill", "emit#1", ("emit#1",), "key"),
        FaultRecord(
            2,
            30.5,
            "2026-02-07T12:00:30+00:00",
            "ssh.drop",
            "all",
            ("ssh#0", "ssh#1", "ssh#2"),
            "schedule",
        ),
        FaultRecord(
            3,
            41.0,
            "2026-02-07T12:00:41+00:00",
            "pty.hang",
            "emit#0",
            (),
            "key",
            note="emit#0 has already exited",
        ),
    )
    events = tuple(
        _event(i, s.id, s.kind, "fault" if i % 4 == 0 else "output", "synthetic")
        for i, s in enumerate(sessions * 2)
    )
    return RunSnapshot(
        seq=42,
        profile_name="synthetic-demo",
        description="a fixed snapshot for console tests",
        state="running",
        elapsed=65.0,
        duration=1800.0,
        run_dir="runs/20260207T120000Z-synthetic",
        sessions=tuple(sessions),
        criteria=criteria,
        metrics=(),
        console=ConsoleStats(
            cpu_pct=3.2,
            engine_cpu_pct=1.9,
            rss_bytes=84_000_000,
            loop_lag_ms=0.8,
            loop_lag_p99_ms=4.1,
        ),
        faults=faults,
        fault_count=len(faults),
        recent_events=events,
        events_logged=len(events),
    )
