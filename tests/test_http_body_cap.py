"""HTTP response bodies are bounded: a huge response is counted in full, kept only up to
``max_body``, and never held in a worker's memory (real nginx, real worker processes)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from bench.nginx_loopback import Nginx, nginx_path
from console.engine import Run
from console.profile import load_profile_text

BIG = 128 << 20


# Real processes and servers: the full suite, not the fast tier (-m "not slow").
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def nginx() -> Iterator[Nginx]:
    if nginx_path() is None:
        pytest.skip("nginx is not installed: apt-get install nginx (CI installs it)")
    with Nginx(conn_limit=10) as server:
        with open(server.tmp / "www" / "big.bin", "wb") as f:
            f.truncate(BIG)  # sparse: costs no disk
        yield server


def profile(url: str) -> str:
    groups = "".join(
        f"""
[[http]]
name = "{name}"
base_url = "{url}"
client = "{name}"
count = 1
vus = 1
  [[http.steps]]
  request = {{ url = "/big.bin", timeout = "30s" }}
  checks = [{{ status = 200 }}]
"""
        for name in ("raw", "aiohttp", "httpx", "httpx-aiohttp")
    )
    return f'[run]\nname = "big-bodies"\nduration = "4s"\n{groups}'


def peak_rss(pid: int) -> int:
    """The process's high-water mark of resident memory (VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


async def test_huge_responses_are_counted_not_kept(nginx: Nginx, tmp_path: Path) -> None:
    run = Run(load_profile_text(profile(nginx.url), name="t"), runs_dir=tmp_path)
    task = asyncio.ensure_future(run.run())
    peaks: dict[int, int] = {}
    me = psutil.Process(os.getpid())
    while not task.done():
        for child in me.children():
            try:
                if "console.sessions.http.worker" in " ".join(child.cmdline()):
                    peaks[child.pid] = peak_rss(child.pid)
            except (OSError, psutil.Error):
                pass  # just exited
        await asyncio.sleep(0.1)
    result = await task
    snap = result.snapshot
    reqs = snap.metric("http_reqs")
    received = snap.metric("data_received")
    truncated = snap.metric("http_body_truncated")
    checks = snap.metric("checks")
    assert reqs and received and truncated and checks
    count = reqs.get("count") or 0
    assert count >= 4  # one huge response at least per client
    assert (received.get("count") or 0) >= count * BIG  # every byte counted
    assert truncated.get("count") == count
    assert checks.get("rate") == 1.0
    assert len(peaks) == 4
    for pid, peak in peaks.items():
        assert peak < 100 << 20, f"worker {pid} peaked at {peak >> 20} MB for {BIG >> 20} MB bodies"
