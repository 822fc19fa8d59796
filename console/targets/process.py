"""Stopping a target's process: SIGTERM, a grace period, then SIGKILL, and close its pipes.

Shared by the embedded targets' helpers (and the benchmarks' throwaway nginx) so that every
process Stressdeck starts is reaped the same way and no run leaves one behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from typing import Any

__all__ = ["terminate", "terminate_async"]


def terminate(proc: subprocess.Popen[Any], grace: float = 5.0) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(grace)
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


async def terminate_async(proc: asyncio.subprocess.Process, grace: float = 5.0) -> None:
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), grace)
        except asyncio.TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
    if proc.stdin is not None:
        proc.stdin.close()
