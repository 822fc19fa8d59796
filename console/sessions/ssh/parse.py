"""Parsers for the exec poll's output: the remote host's CPU, memory and disk use.

The defaults are SPIKE-2's three commands (``cat /proc/stat``, ``cat /proc/meminfo``,
``df -h /``). Each parser recognises its input by content rather than by command, so a profile
may change the commands (``df -P /``, ``head -1 /proc/stat``) and still get figures.

CPU use is a rate, so it needs two readings: :class:`CpuMeter` keeps the previous ``cpu`` line
of ``/proc/stat`` and reports the busy share of the jiffies elapsed since. Idle time is ``idle``
plus ``iowait``, as ``top`` counts it.
"""

from __future__ import annotations

import re

__all__ = ["CpuMeter", "parse_df_percent", "parse_meminfo_percent", "parse_proc_stat"]

_DF_PERCENT = re.compile(r"\s(\d{1,3})%\s")


def parse_proc_stat(text: str) -> tuple[int, int] | None:
    """(busy, total) jiffies from the aggregate ``cpu`` line of ``/proc/stat``, if present."""
    for line in text.splitlines():
        if line.startswith("cpu "):
            fields = [int(f) for f in line.split()[1:] if f.isdigit()]
            if len(fields) < 4:
                return None
            # user nice system idle iowait irq softirq steal (guest is already in user)
            total = sum(fields[:8])
            idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
            return total - idle, total
    return None


class CpuMeter:
    """Turns successive ``/proc/stat`` readings into a CPU-busy percentage."""

    def __init__(self) -> None:
        self._last: tuple[int, int] | None = None

    def reset(self) -> None:
        """Forget the last reading (after a reconnect the host may even be another one)."""
        self._last = None

    def update(self, reading: tuple[int, int]) -> float | None:
        last, self._last = self._last, reading
        if last is None:
            return None
        busy = reading[0] - last[0]
        total = reading[1] - last[1]
        if total <= 0 or busy < 0:
            return None
        return max(0.0, min(100.0, 100.0 * busy / total))


def parse_meminfo_percent(text: str) -> float | None:
    """Memory in use as a percentage: ``(MemTotal - MemAvailable) / MemTotal``.

    Kernels older than 3.14 lack MemAvailable; there ``MemFree + Buffers + Cached`` stands in.
    """
    values: dict[str, int] = {}
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            values[name.strip()] = int(parts[0])
    total = values.get("MemTotal")
    if not total:
        return None
    available = values.get("MemAvailable")
    if available is None:
        if "MemFree" not in values:
            return None
        available = values["MemFree"] + values.get("Buffers", 0) + values.get("Cached", 0)
    return max(0.0, min(100.0, 100.0 * (total - available) / total))


def parse_df_percent(text: str) -> float | None:
    """The ``Use%`` figure of the first filesystem row of ``df`` output (``-h`` or ``-P``)."""
    lines = text.splitlines()
    if not lines or "%" not in lines[0]:
        return None
    # A long device name makes df wrap a row over two lines; join everything after the header.
    body = " " + " ".join(lines[1:]) + " "
    match = _DF_PERCENT.search(body)
    return float(match.group(1)) if match else None
