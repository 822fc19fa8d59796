"""Shared helpers for the SSH tests: run a profile through the engine and read its event log."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from console.engine import Run, RunResult
from console.profile import load_profile_text
from console.targets.ssh_control import EmbeddedSshTarget

During = Callable[[Run], Awaitable[None]]


async def run_profile(
    toml: str, runs_dir: Path, duration: float, during: During | None = None
) -> tuple[RunResult, Run, list[dict[str, Any]]]:
    """Run ``toml`` for ``duration`` seconds; ``during`` runs alongside (faults, signals)."""
    profile = load_profile_text(toml, name="t")
    run = Run(profile, runs_dir=runs_dir, duration=duration)
    helper: asyncio.Task[None] | None = None
    if during is not None:
        helper = asyncio.create_task(_after_start(run, during))
    try:
        result = await asyncio.wait_for(run.run(), duration + 40)
    finally:
        if helper is not None:
            helper.cancel()
            await asyncio.gather(helper, return_exceptions=True)
    if helper is not None and helper.done() and not helper.cancelled() and helper.exception():
        raise helper.exception()  # type: ignore[misc]
    return result, run, read_events(result.run_dir)


async def _after_start(run: Run, during: During) -> None:
    while run.state != "running":
        await asyncio.sleep(0.05)
    await during(run)


async def wait_for_state(run: Run, session_id: str, state: str, timeout: float = 15.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while run.sessions[session_id].state != state:
        if loop.time() > deadline:
            raise AssertionError(
                f"{session_id} stayed {run.sessions[session_id].state}, never {state}"
            )
        await asyncio.sleep(0.05)


async def wait_all_running(run: Run, timeout: float = 15.0) -> None:
    for session_id in list(run.sessions):
        await wait_for_state(run, session_id, "running", timeout)


def read_events(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / "events.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def named(
    events: list[dict[str, Any]], name: str, session: str | None = None
) -> list[dict[str, Any]]:
    return [
        e
        for e in events
        if e["event"] == name and (session is None or e.get("session_id") == session)
    ]


@contextlib.asynccontextmanager
async def started_target(state_dir: Path) -> AsyncIterator[EmbeddedSshTarget]:
    """An embedded SSH target in its own process for the length of a test."""
    server = EmbeddedSshTarget(state_dir)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
