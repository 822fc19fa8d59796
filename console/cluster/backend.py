"""The Ray side of a cluster run: start or join the cluster, place actors, talk to them, end clean.

Ray is imported inside the methods only, so :mod:`console.cluster` and the engine import
without it. Blocking calls (:meth:`RayCluster.start`, :meth:`~RayCluster.remove_node`,
:meth:`~RayCluster.shutdown`, :meth:`~RayCluster.nodes`) are for a thread; the ``async``
ones await Ray's object refs on the engine's loop.

Loopback: Ray replaces ``127.0.0.1`` by the machine's interface address when it resolves an
address (ray-project/ray#26293), so a local cluster would listen on loopback yet try to reach
its head on the LAN address. For a local cluster (or a loopback address) Ray's own switch for
single-machine clusters is turned on, in this process and in the nodes it starts, and every
node is given ``node_ip_address="127.0.0.1"``; the dashboard is off.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from console.cluster import ClusterAddress
from console.errors import ClusterError, NodeLost

__all__ = ["NodeInfo", "RayCluster", "loopback_only", "start_local_cluster"]

_LOOPBACK = "127.0.0.1"
_STORE = 75 << 20  # object store per local node: deltas are small, the default is GBs
_NAMESPACE = "stressdeck"
_SINGLE_MACHINE = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"  # "0": localhost stays loopback


@dataclass(frozen=True)
class NodeInfo:
    node_id: str
    address: str
    alive: bool
    cpus: float
    head: bool
    cause: str = ""


def loopback_only() -> None:
    """Keep Ray's addresses on 127.0.0.1 in this process and the nodes it starts from now on."""
    from ray._private import ray_constants

    os.environ[_SINGLE_MACHINE] = "0"
    ray_constants.ENABLE_RAY_CLUSTER = False


def start_local_cluster(nodes: int, *, cpus: int = 0) -> Any:
    """A ``ray.cluster_utils.Cluster`` on 127.0.0.1: a head without CPUs and ``nodes`` workers.

    Small by design (75 MB object store per node, no dashboard): a head and two nodes take
    about 830 MB. Blocking, seconds; the caller shuts it down (``shutdown_at_exit`` would set
    signal handlers, which only the main thread may do).
    """
    from ray.cluster_utils import Cluster

    loopback_only()
    cpus = cpus or max(2, os.cpu_count() or 1)  # logical: actors take one each
    cluster = Cluster(
        initialize_head=True,
        shutdown_at_exit=False,
        head_node_args={
            "num_cpus": 0,  # the head only coordinates: workers go to the worker nodes
            "object_store_memory": _STORE,
            "include_dashboard": False,
            "node_ip_address": _LOOPBACK,
        },
    )
    try:
        for _ in range(nodes):
            cluster.add_node(num_cpus=cpus, object_store_memory=_STORE, node_ip_address=_LOOPBACK)
        cluster.wait_for_nodes()
    except BaseException:
        cluster.shutdown()
        raise
    return cluster


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return f"{type(exc).__name__}: {text.splitlines()[0][:300]}"


def _is_loopback_host(address: str) -> bool:
    host = address.rpartition(":")[0] if ":" in address else address
    return host.strip("[]") in ("127.0.0.1", "localhost", "::1")


class RayCluster:
    """The run's Ray cluster: the local one Stressdeck started, or the one it joined."""

    def __init__(self, where: ClusterAddress, *, on_node_lost: str = "respread") -> None:
        self.where = where
        self.on_node_lost = on_node_lost
        self.address = ""
        self._local: Any = None  # ray.cluster_utils.Cluster when we started it
        self._actor_cls: Any = None
        self._pool_cls: Any = None
        self._actors: dict[int, Any] = {}  # id(handle) -> handle, to kill what is left
        self._lock = threading.Lock()
        self._connected = False
        self.lost: dict[str, str] = {}  # node id -> cause, as the first one to see it said

    # --- starting and ending ---------------------------------------------------------------

    def start(self) -> None:
        try:
            import ray
        except ImportError as exc:  # pragma: no cover - checked by open_cluster
            raise ClusterError("the cluster extra is not installed") from exc
        loopback = self.where.local or _is_loopback_host(self.where.address)
        if loopback:
            loopback_only()
        options: dict[str, Any] = {
            "namespace": _NAMESPACE,
            "log_to_driver": False,
            "logging_level": logging.ERROR,
            "ignore_reinit_error": False,
        }
        try:
            if self.where.local:
                self._start_local()
                self.address = self._local.address
                options["_node_ip_address"] = _LOOPBACK
            else:
                self.address = self.where.address
                if loopback:
                    options["_node_ip_address"] = _LOOPBACK
            ray.init(address=self.address, **options)
            self._connected = True
        except ClusterError:
            self.shutdown()
            raise
        except Exception as exc:
            self.shutdown()
            raise ClusterError(
                f"cannot start or reach {self.where.text}: {_first_line(exc)}"
            ) from exc

    def _start_local(self) -> None:
        # Ray's own exit hooks set signal handlers, which only the main thread may do, and the
        # engine runs in a thread under the console: our atexit hook stands in for them.
        atexit.register(self.shutdown)
        self._local = start_local_cluster(self.where.local_nodes)

    def shutdown(self) -> None:
        """Kill every actor we made, leave the cluster, and stop it if we started it."""
        import ray

        with self._lock:
            actors = list(self._actors.values())
            self._actors.clear()
        if self._connected:
            for actor in actors:
                with contextlib.suppress(Exception):
                    ray.kill(actor, no_restart=True)
            with contextlib.suppress(Exception):
                ray.shutdown()
            self._connected = False
        if self._local is not None:
            local, self._local = self._local, None
            with contextlib.suppress(Exception):
                local.shutdown()
        os.environ.pop(_SINGLE_MACHINE, None)
        atexit.unregister(self.shutdown)

    # --- nodes ---------------------------------------------------------------------------------

    def nodes(self) -> list[NodeInfo]:
        import ray

        head = self._local.head_node.node_id if self._local is not None else None
        found: list[NodeInfo] = []
        for node in ray.nodes():
            resources = node.get("Resources", {}) or {}
            found.append(
                NodeInfo(
                    node_id=str(node.get("NodeID", "")),
                    address=str(node.get("NodeManagerAddress", "")),
                    alive=bool(node.get("Alive")),
                    cpus=float(resources.get("CPU", 0.0)),
                    head=node.get("NodeID") == head
                    if head
                    else bool(resources.get("node:__internal_head__")),
                    cause=str(node.get("DeathReasonMessage", "") or ""),
                )
            )
        return found

    def worker_nodes(self) -> list[NodeInfo]:
        """The alive nodes that can hold workers (a head without CPUs only coordinates)."""
        return [n for n in self.nodes() if n.alive and (n.cpus > 0 or not n.head)]

    def node_cause(self, node_id: str) -> str:
        """Why a node is gone, in Ray's words ("" when it is alive or unknown)."""
        with contextlib.suppress(Exception):
            for node in self.nodes():
                if node.node_id == node_id and not node.alive:
                    return node.cause or "node is dead"
        return ""

    def remove_node(self, node_id: str = "") -> str:
        """Remove a worker node of a local cluster (to rehearse a node loss); its id."""
        if self._local is None:
            raise ClusterError("only a local cluster's nodes can be removed")
        workers = list(self._local.worker_nodes)
        if not workers:
            raise ClusterError("no worker node left to remove")
        chosen = next((n for n in workers if n.node_id == node_id), None) if node_id else None
        node = chosen or workers[-1]
        self._local.remove_node(node, allow_graceful=False)
        return str(node.node_id)

    # --- actors ----------------------------------------------------------------------------------

    def http_actor(self) -> Any:
        """A new HTTP worker actor, spread over the nodes (a lost node's share lands elsewhere)."""
        import ray

        from console.cluster.actors import HttpActor

        if self._actor_cls is None:
            self._actor_cls = ray.remote(HttpActor)
        handle = self._actor_cls.options(
            num_cpus=1, scheduling_strategy="SPREAD", max_restarts=0, max_concurrency=64
        ).remote()
        with self._lock:
            self._actors[id(handle)] = handle
        return handle

    def pool_actor(self, node_id: str) -> Any:
        """A session pool actor pinned to ``node_id`` (see :mod:`console.cluster.pool`)."""
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        from console.cluster.pool import SessionPoolActor

        if self._pool_cls is None:
            self._pool_cls = ray.remote(SessionPoolActor)
        handle = self._pool_cls.options(
            num_cpus=1,
            scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False),
            max_restarts=0,
            max_concurrency=64,
        ).remote()
        with self._lock:
            self._actors[id(handle)] = handle
        return handle

    def release(self, actor: Any) -> None:
        import ray

        with self._lock:
            self._actors.pop(id(actor), None)
        with contextlib.suppress(Exception):
            ray.kill(actor, no_restart=True)

    async def call(self, method: Callable[..., Any], *args: Any, timeout: float) -> Any:
        """``await actor.method.remote(*args)``; a dead actor or node raises :class:`NodeLost`."""
        import ray

        ref = method.remote(*args)  # type: ignore[attr-defined]
        try:
            return await asyncio.wait_for(ref, timeout)
        except asyncio.TimeoutError as exc:
            raise NodeLost(f"no answer from the actor for {timeout:g}s") from exc
        except ray.exceptions.RayActorError as exc:
            raise NodeLost(_first_line(exc)) from exc

    async def wait(self, ref: Any, timeout: float) -> None:
        """Wait (bounded) for an actor call to end, whatever its outcome."""
        with contextlib.suppress(Exception):
            await asyncio.wait_for(ref, timeout)
