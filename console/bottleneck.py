"""Which of the target host's resources saturated first when latency rose.

A monitor of the host under test (an ``[[ssh]]`` group with ``monitor = true``) puts its CPU,
memory, disk and load on the run's timeline next to latency and errors
(:class:`console.timeline.RunRecorder`). This module reads that timeline: latency **rose** at
the first point whose interval p95 exceeds :data:`RISE` times the median of the points before
it; a resource **saturated** at the first point over its limit (:data:`LIMITS`). The report names
the resource whose saturation came first, at or before the rise (within :data:`LEAD` seconds
after it, as the sample intervals of a monitor and the load are not aligned), with the figures.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["LIMITS", "find_bottleneck", "markdown_lines"]

RISE = 1.5  # latency rose: an interval p95 over this many times the median before it
LEAD = 5.0  # seconds after the rise a saturation still counts as its cause
LATENCIES = ("http_req_duration", "ssh_exec_latency")
# (metric, limit, label): a resource at or above its limit is saturated.
LIMITS: tuple[tuple[str, float, str], ...] = (
    ("ssh_remote_cpu", 90.0, "CPU"),
    ("ssh_remote_mem", 90.0, "memory"),
    ("ssh_remote_disk_busy", 80.0, "disk I/O"),
    ("ssh_remote_disk", 95.0, "disk space"),
)


def _column(history: Mapping[str, Any], scope: str, metric: str, stat: str) -> list[Any]:
    values = history.get("columns", {}).get(f"{scope}|{metric}|{stat}")
    return list(values) if isinstance(values, list) else []


def _rise(
    times: Sequence[float], values: Sequence[float | None]
) -> tuple[float, float, float] | None:
    """(time, value, baseline) of the first interval p95 over RISE times the median before."""
    seen: list[float] = []
    for t, v in zip(times, values, strict=False):
        if v is None:
            continue
        if len(seen) >= 3:
            base = statistics.median(seen)
            if base > 0 and v > base * RISE:
                return t, v, base
        seen.append(v)
    return None


def find_bottleneck(history: Mapping[str, Any]) -> dict[str, Any] | None:
    """The latency rise and the first saturated resource, or None when latency never rose."""
    times = history.get("t", [])
    rise = None
    for metric in LATENCIES:
        found = _rise(times, _column(history, "run", metric, "p95"))
        if found is not None and (rise is None or found[0] < rise[1]):
            rise = (metric, *found)
    if rise is None:
        return None
    metric, at, value, base = rise
    saturated = []
    for name, limit, label in LIMITS:
        for t, v in zip(times, _column(history, "run", name, "value"), strict=False):
            if v is not None and v >= limit:
                if t <= at + LEAD:
                    saturated.append({"resource": label, "metric": name, "t": t, "value": v})
                break
    saturated.sort(key=lambda s: s["t"])
    load = [
        v
        for t, v in zip(times, _column(history, "run", "ssh_remote_load", "value"), strict=False)
        if v is not None and t <= at + LEAD
    ]
    return {
        "latency": metric,
        "rose_at": at,
        "p95": value,
        "baseline_p95": base,
        "first": saturated[0] if saturated else None,
        "saturated": saturated,
        "load": max(load) if load else None,
        "monitored": any(_column(history, "run", name, "value") for name, _, _ in LIMITS),
    }


def markdown_lines(history: Mapping[str, Any]) -> list[str]:
    """report.md's "Target host" section body; empty when there is nothing to say."""
    found = find_bottleneck(history)
    if found is None or not found["monitored"]:
        return []
    lines = [
        f"{found['latency']} p95 rose to {found['p95']:.0f} ms at {found['rose_at']:.0f}s "
        f"(from {found['baseline_p95']:.0f} ms)."
    ]
    first = found["first"]
    if first is None:
        lines.append(
            "No resource of the target host saturated by then "
            f"({', '.join(f'{label} ≥ {limit:g}%' for _, limit, label in LIMITS)}): the "
            "bottleneck is elsewhere (the application, a dependency, the network or the load "
            "generator)."
        )
    else:
        lines.append(
            f"**{first['resource']}** saturated first: {first['metric']} = {first['value']:.0f}% "
            f"at {first['t']:.0f}s."
        )
        for other in found["saturated"][1:]:
            lines.append(f"Then {other['resource']} ({other['value']:.0f}% at {other['t']:.0f}s).")
    if found["load"] is not None:
        lines.append(f"Highest one-minute load average by then: {found['load']:.2f}.")
    return lines
