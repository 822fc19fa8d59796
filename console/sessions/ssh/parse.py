"""Parsers for the exec poll's output: the remote host's CPU, memory and disk use.

The defaults are SPIKE-2's three commands (``cat /proc/stat``, ``cat /proc/meminfo``,
``df -h /``). Each parser recognises its input by content rather than by command, so a profile
may change the commands (``df -P /``, ``head -1 /proc/stat``) and still get figures.

CPU use is a rate, so it needs two readings: :class:`CpuMeter` keeps the previous ``cpu`` line
of ``/proc/stat`` and reports the busy share of the jiffies elapsed since. Idle time is ``idle``
plus ``iowait``, as ``top`` counts it.
"""

from __future__ import annotations

import math
import re

__all__ = [
    "MONITOR_COMMANDS",
    "CpuMeter",
    "RateMeter",
    "parse_df_percent",
    "parse_diskstats",
    "parse_loadavg",
    "parse_meminfo_percent",
    "parse_net_dev",
    "parse_proc_stat",
    "parse_top",
]

# What a monitor (``monitor = true``) polls besides CPU, memory and disk use: disk I/O, network,
# load average and the top processes by CPU (with their RSS).
MONITOR_COMMANDS = (
    "cat /proc/diskstats",
    "cat /proc/net/dev",
    "cat /proc/loadavg",
    "ps -eo pid,comm,%cpu,rss --sort=-%cpu",
)
_LOADAVG = re.compile(r"(\d+\.\d+) \d+\.\d+ \d+\.\d+ \d+/\d+ \d+")
# Whole disks, not partitions, loops, RAM disks or device-mapper volumes (counted twice).
_DISK = re.compile(r"(?:[shv]d[a-z]+|xvd[a-z]+|nvme\d+n\d+|mmcblk\d+)")

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


def parse_loadavg(text: str) -> float | None:
    """The one-minute load average from ``/proc/loadavg``."""
    match = _LOADAVG.match(text.strip())
    return float(match.group(1)) if match else None


def parse_diskstats(text: str) -> tuple[int, int, int] | None:
    """(sectors read, sectors written, milliseconds doing I/O) over the whole disks of
    ``/proc/diskstats``; None when the text is not diskstats."""
    read = written = busy = 0
    found = False
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 14 or not (fields[0].isdigit() and fields[1].isdigit()):
            return None
        if not all(f.isdigit() for f in fields[3:14]):
            return None
        found = True
        if _DISK.fullmatch(fields[2]):
            read += int(fields[5])
            written += int(fields[9])
            busy += int(fields[12])
    return (read, written, busy) if found else None


def parse_net_dev(text: str) -> tuple[int, int] | None:
    """(bytes received, bytes sent) over every interface but loopback, from ``/proc/net/dev``."""
    if not text.startswith("Inter-"):
        return None
    rx = tx = 0
    for line in text.splitlines()[2:]:
        name, _, rest = line.partition(":")
        fields = rest.split()
        if name.strip() == "lo" or len(fields) < 9:
            continue
        if not (fields[0].isdigit() and fields[8].isdigit()):
            return None  # not /proc/net/dev after all: the host's text, never an exception
        rx += int(fields[0])
        tx += int(fields[8])
    return rx, tx


def parse_top(text: str, limit: int = 5) -> list[tuple[str, float, float]] | None:
    """(command, CPU %, RSS bytes) of the first ``limit`` processes of
    ``ps -eo pid,comm,%cpu,rss`` output; None when the text is not that."""
    lines = text.splitlines()
    if not lines or lines[0].split() != ["PID", "COMMAND", "%CPU", "RSS"]:
        return None
    top = []
    for line in lines[1:]:
        fields = line.split()
        if len(fields) < 4:
            continue
        try:
            cpu, rss = float(fields[-2]), float(fields[-1]) * 1024
        except ValueError:
            continue
        if math.isfinite(cpu) and math.isfinite(rss):  # "nan" parses, and is not JSON
            top.append((" ".join(fields[1:-2]), cpu, rss))
    return top[:limit]


class RateMeter:
    """Turns successive cumulative counters into per-second rates."""

    def __init__(self) -> None:
        self._last: tuple[float, tuple[int, ...]] | None = None

    def reset(self) -> None:
        self._last = None

    def update(self, t: float, reading: tuple[int, ...]) -> tuple[float, ...] | None:
        last, self._last = self._last, (t, reading)
        if last is None or t <= last[0] or len(reading) != len(last[1]):
            return None
        dt = t - last[0]
        deltas = [b - a for a, b in zip(last[1], reading, strict=True)]
        if any(d < 0 for d in deltas):  # a counter wrapped or the host rebooted
            return None
        return tuple(d / dt for d in deltas)
