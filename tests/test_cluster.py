"""HTTP load on a real Ray cluster: a head and two worker nodes on 127.0.0.1 (``cluster`` marker).

One cluster serves the module (each start costs seconds and about 830 MB); every test checks
that its run left no live actor behind, and the module checks that no Ray process is left.
Skipped, with the reason, when the ``cluster`` extra is not installed.
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("ray", reason="Ray is not installed: pip install '.[cluster]' (CI does)")

from bench.nginx_loopback import Nginx, nginx_path
from console.cluster.backend import start_local_cluster
from console.cluster.pool import PooledSession
from console.engine import Run
from console.metrics import Trend
from console.profile import load_profile_text
from console.sessions.http.remote import RayHttpSession
from tests.cluster_support import (
    live_actors,
    non_loopback_sockets,
    ray_processes,
)

pytestmark = [pytest.mark.cluster, pytest.mark.slow]


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    os.environ.pop("RAY_ADDRESS", None)  # never a cluster from the environment
    local = start_local_cluster(2, cpus=2)
    try:
        yield local
    finally:
        local.shutdown()
    left = [f"{p.pid} {p.name()}" for p in ray_processes()]
    assert not left, f"Ray processes left after the cluster shut down: {left}"


@pytest.fixture
def no_actor_left(cluster: Any) -> Iterator[None]:
    yield
    assert live_actors(cluster.address) == []


@pytest.fixture(scope="module")
def nginx() -> Iterator[Nginx]:
    if nginx_path() is None:
        pytest.skip("nginx is not installed: apt-get install nginx (CI installs it)")
    with Nginx(access_log=True, workers=1) as server:
        yield server


def _profile(address: str, url: str, *, extra: str = "", rate: int = 100) -> str:
    return f"""
[run]
name = "cluster"
duration = "6s"
cluster = "{address}"
{extra}
[[http]]
name = "web"
base_url = "{url}"
count = 2
executor = "constant-arrival-rate"
rate = {rate}
pre_allocated_vus = 10
max_vus = 40
  [[http.steps]]
  request = {{ url = "/index.html" }}
  checks = [{{ status = 200 }}]
[[criteria]]
name = "p95"
metric = "http_req_duration"
threshold = "p(95)<2000"
"""


def _nearest_rank(values: list[float], pct: float) -> float:
    """The sample at ``pct``: what a log-linear histogram's bucket approximates within 1%."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100.0 * len(ordered)) - 1)]


async def _until_both_send(run: Run, count: int) -> list[RayHttpSession]:
    for _ in range(600):  # bounded: actors start their worker in a second or two
        sessions = [s for s in run.sessions.values() if isinstance(s, RayHttpSession)]
        if len(sessions) == 2 and all(s.totals.get("http_reqs", 0) >= count for s in sessions):
            return sessions
        await asyncio.sleep(0.05)
    raise AssertionError("the actors sent no requests")


async def test_load_splits_over_both_nodes_and_merges_exactly(
    tmp_path: Path, cluster: Any, nginx: Nginx, no_actor_left: None, monkeypatch: Any
) -> None:
    pooled: list[float] = []
    partial: list[int] = []
    handle = RayHttpSession.handle

    def spy(self: RayHttpSession, message: Any) -> None:
        trend = message.get("tr", {}).get("http_req_duration") if message.get("t") == "m" else None
        if trend is not None:  # a delta this small carries every sample exactly
            if len(trend.get("x") or ()) == trend["n"]:
                pooled.extend(trend["x"])
            else:
                partial.append(trend["n"])
        handle(self, message)

    monkeypatch.setattr(RayHttpSession, "handle", spy)
    run = Run(
        load_profile_text(_profile(cluster.address, nginx.url), name="t"),
        runs_dir=tmp_path,
        duration=10.0,  # actors may start seconds late on a loaded machine
    )
    task = asyncio.ensure_future(run.run())
    sessions = await _until_both_send(run, 20)
    sent = time.time()
    await run.inject("http.rate_up", target="web", params={"by": 0.5})
    applied = [s.control_applied["scale"] - sent for s in sessions]
    assert all(0 <= delay < 1.0 for delay in applied), applied
    # While the actors work: no Ray socket listens on or talks to a non-loopback address.
    assert await asyncio.to_thread(non_loopback_sockets) == []
    result = await task

    snap = result.snapshot
    assert result.exit_code == 0, [(c.name, c.state, c.value_text) for c in snap.criteria]
    workers = {node.node_id for node in cluster.worker_nodes}
    assert {s.node for s in sessions} == workers  # one actor on each worker node
    merged = snap.metric("http_reqs")
    assert merged is not None
    per_node = [s.totals["http_reqs"] for s in sessions]
    assert all(n > 0 for n in per_node)
    assert merged.get("count") == sum(per_node)
    served = (nginx.tmp / "access.log").read_text().count("\n")
    assert served == sum(per_node)
    assert not partial and len(pooled) == sum(per_node)
    duration = snap.metric("http_req_duration")
    assert duration is not None
    p95 = duration.get("p(95)")
    assert p95 is not None
    # Exact merge: the same histogram as all samples recorded in one place...
    together = Trend()
    together.record_many(pooled)
    assert p95 == together.percentile(95)
    # ...whose p95 is the pooled samples' within the 1% bucket width.
    assert abs(p95 - _nearest_rank(pooled, 95)) <= 0.01 * _nearest_rank(pooled, 95)
    scales = [dict(x.details)["scale"] for x in snap.sessions if x.kind == "http"]
    assert scales == ["x1.50", "x1.50"]
    assert {e.data.get("node") for e in run.event_log.recent if e.event == "scenario_start"} == (
        workers
    )
    # The node panes: one per worker node, each carrying one worker and its requests.
    panes = [p for p in snap.sessions if p.kind == "node"]
    assert {dict(p.details)["node"] for p in panes} == workers
    assert all(dict(p.counters)["workers"] == "1" for p in panes)


SSH_POOL = """
[run]
name = "cluster-ssh"
duration = "14s"
cluster = "{address}"
[[ssh]]
name = "pool"
count = 4
target = "embedded"
poll_interval = "1s"
intensity = "low"
[[criteria]]
name = "dropped connections back within 15 s"
after = "ssh.drop"
within = "15s"
threshold = "rate==100%"
"""


async def test_ssh_sessions_are_held_by_a_pool_on_each_node(
    tmp_path: Path, cluster: Any, no_actor_left: None
) -> None:
    run = Run(
        load_profile_text(SSH_POOL.format(address=cluster.address), name="t"),
        runs_dir=tmp_path,
        duration=14.0,
    )
    task = asyncio.ensure_future(run.run())
    pooled: list[PooledSession] = []
    for _ in range(600):  # bounded: each pool starts its own embedded server, then connects
        pooled = [s for s in run.sessions.values() if isinstance(s, PooledSession)]
        if len(pooled) == 4 and all(s.state == "running" for s in pooled):
            break
        await asyncio.sleep(0.05)
    errors = [
        f"{e.session_id} {e.event} {e.detail}" for e in run.event_log.recent if e.success is False
    ]
    assert [s.state for s in pooled] == ["running"] * 4, errors
    await run.inject("ssh.drop", target="pool#0")
    result = await task

    workers = {node.node_id for node in cluster.worker_nodes}
    assert {s.node for s in pooled} == workers  # two connections held on each node
    back = [
        e for e in run.event_log.recent if e.event == "reconnected" and e.session_id == "pool#0"
    ]
    assert back and back[0].data["node"] == pooled[0].node
    assert result.exit_code == 0, [
        (c.name, c.state, c.value_text) for c in result.snapshot.criteria
    ]
    panes = [p for p in result.snapshot.sessions if p.kind == "node"]
    assert sorted(k for p in panes for k, _ in p.details if k.startswith("ssh ")) == [
        "ssh pool#0",
        "ssh pool#1",
        "ssh pool#2",
        "ssh pool#3",
    ]


# Last in the module: it removes one of the shared cluster's worker nodes.
async def test_a_lost_node_is_an_observed_fault_and_degraded_runs_on(
    tmp_path: Path, cluster: Any, nginx: Nginx, no_actor_left: None
) -> None:
    extra = 'on_node_lost = "degraded"'
    text = (
        _profile(cluster.address, nginx.url, extra=extra, rate=40)
        + """
[[criteria]]
name = "no session lost"
metric = "session_abnormal_ends"
threshold = "count==0"
"""
    )
    run = Run(load_profile_text(text, name="t"), runs_dir=tmp_path, duration=12.0)
    task = asyncio.ensure_future(run.run())
    sessions = await _until_both_send(run, 10)
    victim = next(n for n in cluster.worker_nodes if n.node_id == sessions[1].node)
    removed_at = run.now()
    await asyncio.to_thread(cluster.remove_node, victim, False)
    result = await task

    lost = [e for e in run.event_log.recent if e.event == "node_lost"]
    assert [e.session_id for e in lost] == [sessions[1].id]
    assert lost[0].data["node"] == victim.node_id and lost[0].data["cause"]
    observed = [f for f in result.snapshot.faults if f.action == "node.lost"]
    assert [f.source for f in observed] == ["observed"]
    assert observed[0].t - removed_at < 5.0
    # The run went on with the surviving node: it finished, degraded, and the criterion says so.
    # the surviving worker ran its scenario's duration (exited) or was stopped at the end
    assert sessions[0].state in ("exited", "stopped") and sessions[1].state == "failed"
    assert result.exit_code == 1
    states = {c.name: c.state for c in result.snapshot.criteria}
    assert states == {"p95": "pass", "no session lost": "fail"}
