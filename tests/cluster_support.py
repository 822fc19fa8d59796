"""Helpers for the cluster tests and the cluster benchmark: Ray's processes and their sockets."""

from __future__ import annotations

import ipaddress
import logging
from typing import Any

import psutil

__all__ = ["live_actors", "non_loopback_sockets", "ray_processes"]

_RAY_NAMES = ("raylet", "gcs_server", "ray::", "plasma", "dashboard", "runtime_env", "log_monitor")


def ray_processes() -> list[psutil.Process]:
    """Ray's processes started from this one (nodes, agents, actor workers)."""
    found = []
    for proc in psutil.Process().children(recursive=True):
        try:
            text = proc.name() + " " + " ".join(proc.cmdline()[:4])
        except psutil.Error:
            continue
        if any(name in text for name in _RAY_NAMES) or "ray/" in text:
            found.append(proc)
    return found


def _loopback(host: str) -> bool:
    ip = ipaddress.ip_address(host.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def non_loopback_sockets() -> list[str]:
    """Every inet socket of a Ray process that listens on, or talks to, a non-loopback address."""
    bad = []
    for proc in ray_processes():
        try:
            conns = proc.net_connections("inet")
            name = proc.name()
        except psutil.Error:
            continue
        for conn in conns:
            for side, addr in (("local", conn.laddr), ("remote", conn.raddr)):
                if addr and not _loopback(addr.ip):
                    bad.append(f"{name} ({proc.pid}) {side} {addr.ip}:{addr.port} {conn.status}")
    return bad


def live_actors(address: str) -> list[dict[str, Any]]:
    """Actors of the cluster at ``address`` that are not dead (connects, then leaves)."""
    import ray
    from ray._private import state

    ray.init(
        address=address,
        _node_ip_address="127.0.0.1",
        log_to_driver=False,
        logging_level=logging.ERROR,
    )
    try:
        return [a for a in state.actors().values() if a.get("State") != "DEAD"]
    finally:
        ray.shutdown()
