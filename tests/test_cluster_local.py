"""``cluster = "local:2"``: the run starts its own Ray cluster, loses a node, and ends clean.

Apart from tests/test_cluster.py because this run owns its cluster: after it, no Ray process
may be left at all. Against the embedded target, with the node removed the way the console's
key removes it (``Run.remove_cluster_node``).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

pytest.importorskip("ray", reason="Ray is not installed: pip install '.[cluster]' (CI does)")

from console.engine import Run
from console.profile import load_profile_text
from console.sessions.http.remote import RayHttpSession
from tests.cluster_support import ray_processes

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

PROFILE = """
[run]
name = "cluster-local"
duration = "12s"
cluster = "local:2"
[[http]]
name = "api"
base_url = "embedded"
count = 2
executor = "constant-arrival-rate"
rate = 60
pre_allocated_vus = 5
  [[http.steps]]
  request = { url = "/health" }
  checks = [{ status = 200 }]
[[criteria]]
name = "lost share back within 10 s"
after = "node.lost"
within = "10s"
threshold = "rate==100%"
"""


async def test_local_cluster_loses_a_node_respreads_and_ends_clean(tmp_path: Path) -> None:
    os.environ.pop("RAY_ADDRESS", None)
    # long enough that the re-spread share runs a while on the survivor, on a loaded machine
    run = Run(load_profile_text(PROFILE, name="t"), runs_dir=tmp_path, duration=25.0)
    task = asyncio.ensure_future(run.run())
    sessions: list[RayHttpSession] = []
    for _ in range(1200):  # bounded: the cluster starts in seconds, then the actors
        sessions = [s for s in run.sessions.values() if isinstance(s, RayHttpSession)]
        if len(sessions) == 2 and all(s.totals.get("http_reqs", 0) >= 10 for s in sessions):
            break
        await asyncio.sleep(0.05)
    assert len({s.node for s in sessions}) == 2, [s.node for s in sessions]
    # A typed rate the lost share must keep on its new node (each worker's share: 40/s).
    await run.inject("http.set_rate", target="api", params={"rate": 80}, source="command")
    for _ in range(200):
        if all(s.rate_set == 40.0 for s in sessions):
            break
        await asyncio.sleep(0.05)
    for _ in range(200):  # some scenario time to go on from (a restart would lose it)
        if sessions[1].scenario_at is not None and sessions[1].scenario_at[0] >= 3.0:
            break
        await asyncio.sleep(0.05)
    assert sessions[1].scenario_at is not None
    ran, heard = sessions[1].scenario_at
    removed_at = run.now()
    node = await run.remove_cluster_node(sessions[1].node)
    assert node == sessions[1].node
    before = sessions[1].totals["http_reqs"]
    # a positive signal before the end: the share answers from the surviving node and sends
    for _ in range(600):
        moved = sessions[1].node not in ("", node) and sessions[1].rate_set == 40.0
        if moved and sessions[1].totals["http_reqs"] > before:
            break
        await asyncio.sleep(0.05)
    # It went on from the scenario time its lost actor had reached (scenario seconds keep
    # pace with the run's clock across the move), not from the scenario's start.
    for _ in range(600):
        if sessions[1].node == sessions[0].node:
            break
        await asyncio.sleep(0.05)
    assigned = run.now()
    for _ in range(200):  # a report from the new actor
        if sessions[1].scenario_at is not None and sessions[1].scenario_at[1] > assigned:
            break
        await asyncio.sleep(0.05)
    assert sessions[1].scenario_at is not None
    ran_after, heard_after = sessions[1].scenario_at
    assert heard_after > assigned
    assert ran_after - heard_after > ran - heard - 1.5, (ran, heard, ran_after, heard_after)
    result = await task

    lost = [e for e in run.event_log.recent if e.event == "node_lost"]
    assert [e.session_id for e in lost] == [sessions[1].id]
    assert lost[0].t - removed_at < 5.0
    assert "re-spreading" in lost[0].detail
    # Its share started again on the surviving node and sent requests there.
    assert sessions[1].node == sessions[0].node != node
    assert sessions[1].totals["http_reqs"] > before
    assert sessions[1].rate_set == 40.0  # the typed rate held on the new node
    # Checks add up over the lost actor and its successor: one check per request.
    for s in sessions:
        assert s.checks_by_name["status is 200"][1] == s.totals["http_reqs"], s.id
    assert result.exit_code == 0, [
        (c.name, c.state, c.value_text) for c in result.snapshot.criteria
    ]
    assert [f.action for f in result.snapshot.faults] == ["http.set_rate", "node.lost"]
    assert any(e.event == "session_recovered" for e in run.event_log.recent)
    assert any(e.event == "cluster_stopped" for e in run.event_log.recent)
    # A pane per node, above the workers: the lost one failed with Ray's cause, the survivor
    # carries both workers now.
    panes = [p for p in result.snapshot.sessions if p.kind == "node"]
    assert [p.id for p in panes] == ["node#0", "node#1"]
    by_node = {dict(p.details)["node"]: p for p in panes}
    assert by_node[node].state == "failed" and dict(by_node[node].details)["cause"]
    survivor = by_node[sessions[0].node]
    assert survivor.state == "stopped"
    assert {k for k, _ in survivor.details if k.startswith("worker ")} == {
        "worker api#0",
        "worker api#1",
    }
    left = [f"{p.pid} {p.name()}" for p in ray_processes()]
    assert not left, f"Ray processes left after the run: {left}"
