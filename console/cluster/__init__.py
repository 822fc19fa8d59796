"""Run a profile's HTTP load on a Ray cluster: the optional ``stressdeck[cluster]`` extra.

``[run] cluster`` (or ``--cluster``) names the cluster: ``local:N`` starts one on this machine
with a head and N worker nodes (for trying it out and for CI), anything else is a Ray address
(``auto``, ``host:port`` of a head started with ``ray start --head``). Nothing here imports Ray:
:func:`open_cluster` loads :mod:`.backend`, which imports it inside its functions, so a run
without a cluster, and every engine module, work without the extra installed.

What runs where: each ``[[http]]`` worker becomes an actor (:mod:`.actors`) running the same
executor and flow code as a worker process; the engine pulls its counter deltas and encoded
histograms at the snapshot cadence and merges them exactly as it merges local workers'.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from console.errors import ClusterError

if TYPE_CHECKING:
    from console.cluster.backend import RayCluster

__all__ = [
    "NODE_LOST_POLICIES",
    "ClusterAddress",
    "check_cluster",
    "check_node_lost",
    "open_cluster",
    "parse_cluster",
]

NODE_LOST_POLICIES = ("respread", "degraded")
_LOCAL = re.compile(r"local:(\d+)")
MAX_LOCAL_NODES = 8  # each simulated node costs ~300 MB


@dataclass(frozen=True)
class ClusterAddress:
    """Where the cluster is: ``local`` nodes to start here, or a Ray ``address`` to join."""

    text: str
    local_nodes: int = 0  # > 0: start a local cluster with this many worker nodes
    address: str = ""  # otherwise: ray.init(address=...)

    @property
    def local(self) -> bool:
        return self.local_nodes > 0


def parse_cluster(text: str) -> ClusterAddress:
    """``local:N`` or a Ray address; a bad value raises :class:`ClusterError`."""
    text = text.strip()
    match = _LOCAL.fullmatch(text)
    if match:
        nodes = int(match.group(1))
        if not 1 <= nodes <= MAX_LOCAL_NODES:
            raise ClusterError(f"local:{nodes}: between 1 and {MAX_LOCAL_NODES} worker nodes")
        return ClusterAddress(text, local_nodes=nodes)
    if not text or any(c.isspace() for c in text):
        raise ClusterError(f"{text!r} is not a Ray address (try local:2, auto or host:6379)")
    return ClusterAddress(text, address=text)


def check_cluster(text: str) -> str | None:
    """The profile's check for ``[run] cluster``: a message for a bad value, else None."""
    if not text:
        return None
    try:
        parse_cluster(text)
    except ClusterError as exc:
        return str(exc)
    return None


def check_node_lost(policy: str) -> str | None:
    """The profile's check for ``[run] on_node_lost``."""
    return None if policy in NODE_LOST_POLICIES else f"one of {', '.join(NODE_LOST_POLICIES)}"


def open_cluster(text: str, *, on_node_lost: str = "respread") -> RayCluster:
    """Start or join the cluster (blocking, seconds): call it from a thread."""
    where = parse_cluster(text)
    try:
        import ray  # noqa: F401  (only to tell a missing extra from a failing cluster)
    except ImportError as exc:
        raise ClusterError(
            "the cluster extra is not installed: pip install 'stressdeck[cluster]'"
        ) from exc
    from console.cluster.backend import RayCluster

    cluster = RayCluster(where, on_node_lost=on_node_lost)
    cluster.start()
    return cluster
