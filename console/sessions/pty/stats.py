"""Resource use of each PTY program's process tree, and its memory growth per hour.

One scan of the process table per interval serves every session: walking each session's tree
with ``psutil.Process.children(recursive=True)`` would rescan ``/proc`` once per session (thirty
times a second for the spike's thirty sessions). The scan runs in a worker thread because reading
``/proc`` is blocking I/O. On Linux it reads one file per process, ``/proc/<pid>/stat`` (parent,
CPU times and RSS are all there), rather than psutil's several: the thread still holds the GIL
while it parses, and on a machine with 175 processes psutil's scan took 12 ms of it every second,
time in which the engine loop could not run (measured with py-spy under ``bench/tui_bench.py``).

Memory growth is the spike's "< 100 MB/hour": the least-squares slope of the tree's RSS over the
current program's life, ignoring a warm-up (start-up allocations are not a leak) and reported
only once enough time has passed for the slope to mean something.
"""

from __future__ import annotations

import os
from collections import defaultdict, deque
from collections.abc import Iterable
from dataclasses import dataclass

import psutil

__all__ = ["MemoryGrowth", "TreeStats", "scan_trees"]


@dataclass(frozen=True)
class TreeStats:
    rss: float  # bytes, summed over the tree
    cpu_seconds: float  # user + system, summed over the tree's live processes
    processes: int
    descendants: tuple[psutil.Process, ...] = ()  # the tree below the root, for cleanup


_PROC = "/proc"
_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _read_proc() -> dict[int, tuple[int, float, float]]:
    """``{pid: (ppid, rss bytes, cpu seconds)}`` from ``/proc/<pid>/stat``, one read each."""
    table: dict[int, tuple[int, float, float]] = {}
    for name in os.listdir(_PROC):
        if not name.isdigit():
            continue
        try:
            with open(f"{_PROC}/{name}/stat", "rb") as f:
                raw = f.read()
        except OSError:  # gone between the listing and the read
            continue
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after
        # its last ")"; then ppid is field 4, utime 14, stime 15 and rss (pages) 24 of stat(5).
        fields = raw[raw.rfind(b")") + 2 :].split()
        try:
            ppid = int(fields[1])
            cpu = (int(fields[11]) + int(fields[12])) / _TICK
            rss = float(int(fields[21]) * _PAGE)
        except (IndexError, ValueError):
            continue
        table[int(name)] = (ppid, rss, cpu)
    return table


def _read_psutil() -> dict[int, tuple[int, float, float]]:
    """The same table where there is no ``/proc`` to read."""
    table: dict[int, tuple[int, float, float]] = {}
    for proc in psutil.process_iter(["ppid", "memory_info", "cpu_times"]):
        info = proc.info
        mem, cpu = info.get("memory_info"), info.get("cpu_times")
        if mem is None or cpu is None:
            continue
        table[proc.pid] = (info.get("ppid") or 0, float(mem.rss), float(cpu.user + cpu.system))
    return table


def scan_trees(roots: Iterable[int]) -> dict[int, TreeStats]:
    """RSS and CPU time of the process tree under each root pid (blocking: run in a thread)."""
    wanted = set(roots)
    if not wanted:
        return {}
    table = _read_proc() if os.path.isdir(f"{_PROC}/self") else _read_psutil()
    children: dict[int, list[int]] = defaultdict(list)
    figures: dict[int, tuple[float, float]] = {}
    for pid, (ppid, rss, cpu) in table.items():
        children[ppid].append(pid)
        figures[pid] = (rss, cpu)
    result: dict[int, TreeStats] = {}
    for root in wanted:
        if root not in figures:
            continue
        rss = cpu = 0.0
        count = 0
        stack = [root]
        seen: set[int] = set()
        while stack:
            pid = stack.pop()
            if pid in seen or pid not in figures:
                continue
            seen.add(pid)
            rss += figures[pid][0]
            cpu += figures[pid][1]
            count += 1
            stack.extend(children.get(pid, ()))
        result[root] = TreeStats(rss, cpu, count, _processes(seen - {root}))
    return result


def _processes(pids: Iterable[int]) -> tuple[psutil.Process, ...]:
    """psutil handles for the descendants (rare: most programs start none); a handle knows its
    process's start time, so a later kill cannot hit a reused pid."""
    found = []
    for pid in pids:
        try:
            found.append(psutil.Process(pid))
        except psutil.Error:
            continue
    return tuple(found)


class MemoryGrowth:
    """Least-squares RSS slope in MB/hour over one program's life, after a warm-up."""

    def __init__(self, warmup: float, min_span: float, keep: int = 720) -> None:
        self.warmup = warmup
        self.min_span = min_span
        self._samples: deque[tuple[float, float]] = deque(maxlen=keep)
        self._started: float | None = None
        self._count = 0

    def reset(self, started: float) -> None:
        """A new program started at ``started`` (run seconds)."""
        self._samples.clear()
        self._started = started
        self._count = 0

    def add(self, t: float, rss: float) -> None:
        if self._started is None or t - self._started < self.warmup:
            return
        # Keep a long life within ``keep`` samples by thinning: every other sample once full.
        self._count += 1
        if len(self._samples) == self._samples.maxlen:
            kept = list(self._samples)[::2]
            self._samples.clear()
            self._samples.extend(kept)
        self._samples.append((t, rss))

    @property
    def mb_per_hour(self) -> float | None:
        if len(self._samples) < 3:
            return None
        t0 = self._samples[0][0]
        if self._samples[-1][0] - t0 < self.min_span:
            return None
        n = len(self._samples)
        mean_t = sum(t - t0 for t, _ in self._samples) / n
        mean_m = sum(m for _, m in self._samples) / n
        var = sum((t - t0 - mean_t) ** 2 for t, _ in self._samples)
        if var <= 0:
            return None
        cov = sum((t - t0 - mean_t) * (m - mean_m) for t, m in self._samples)
        return cov / var * 3600.0 / 1e6
