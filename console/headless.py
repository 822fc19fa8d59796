"""Headless runs: a progress line every few seconds, a k6-style summary, an exit status.

Exit status (:class:`console.errors.ExitStatus`): 0 every criterion passed; 1 a criterion
failed or aborted the run; 2 a bad profile or usage (raised before a run starts); 3 nothing
failed but some criterion could not be judged; 130 interrupted by Ctrl-C or SIGTERM, with the
summary and final snapshot still written.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from console import breakdown
from console.breakdown import figure_text
from console.engine import Run, RunResult
from console.metrics import MetricType, describe
from console.profile import Profile
from console.replay import ReplayFault
from console.snapshot import MetricSummary, RunSnapshot
from console.units import format_bytes, format_duration
from console.verdicts import NOT_JUDGED, STATES, label, mark, overall

__all__ = ["figure_text", "format_summary", "run_headless"]


def progress_line(snap: RunSnapshot) -> str:
    states: dict[str, int] = {}
    links: dict[str, int] = {}  # links are panes too, but not sessions under test
    for session in snap.sessions:
        counts = links if session.kind == "net" else states
        counts[session.state] = counts.get(session.state, 0) + 1
    crit = {s: sum(c.state == s for c in snap.criteria) for s in STATES}
    return (
        f"[{format_duration(snap.elapsed):>7} / {format_duration(snap.duration)}] "
        f"{snap.state} | sessions "
        + " ".join(f"{k}={v}" for k, v in sorted(states.items()))
        + (" | links " + " ".join(f"{k}={v}" for k, v in sorted(links.items())) if links else "")
        + " | criteria "
        + " ".join(f"{mark(s)}{n}" for s, n in crit.items() if n or s != NOT_JUDGED)
        + f" | faults {snap.fault_count} | cpu {snap.console.cpu_pct:.1f}% rss {format_bytes(snap.console.rss_bytes)}"
    )


def format_summary(result: RunResult, summary: dict[str, object] | None = None) -> str:
    snap = result.snapshot
    width = (
        max(
            [len(c.name) for c in snap.criteria]
            + [len(m.name) for m in snap.metrics]
            + [len(k) for k in (summary or {})]
            + [20]
        )
        + 3
    )
    lines = [
        "",
        f"  {snap.profile_name}: {snap.state}"
        + (f" ({snap.abort_reason})" if snap.abort_reason else "")
        + f": {label(overall(c.state for c in snap.criteria))}",
        "",
    ]
    if scenarios := breakdown.scenario_lines(snap.tables):
        lines += [f"  {scenarios[0]}", *(f"    {line}" for line in scenarios[1:]), ""]
    if snap.criteria:
        lines.append("  criteria")
        for c in snap.criteria:
            if c.state == NOT_JUDGED:
                text = f"not judged: {c.evidence} (target {c.expression})"
            else:
                text = f"{c.value_text} (target {c.expression})"
                text += f"  ({c.evidence})" if c.evidence else ""
            lines.append(f"  {mark(c.state)} {c.name + ' ':.<{width}} {text}")
        lines.append("")
    if summary:
        lines.append("  summary")
        for key, value in summary.items():
            if not isinstance(value, dict):
                lines.append(f"    {key + ' ':.<{width}} {figure_text(snap, key, value)}")
        lines.append("")
    lines += _breakdown(snap)
    if snap.data_loss:
        lines.append("  data not written")
        lines += [f"  ! {text}" for text in snap.data_loss]
        lines.append("")
    lines.append("  metrics")
    judged = {c.metric for c in snap.criteria}
    quiet = [m.name for m in snap.metrics if m.name not in judged and _nothing_recorded(m)]
    for m in snap.metrics:
        if m.name in quiet:
            continue  # as k6: a metric nothing was recorded in is not listed
        lines.append(
            f"    {m.name + ' ':.<{width}} {describe(MetricType(m.type), m.unit, m.values)}"
        )
        # Thresholds next to their metric, as k6 prints them.
        for c in snap.criteria:
            if c.metric == m.name and c.scope != "recovery":
                lines.append(f"      {mark(c.state)} {c.expression}")
    if quiet:
        lines.append(f"    ({len(quiet)} more with nothing recorded: {', '.join(quiet)})")
    lines += ["", f"  run directory: {result.run_dir}", f"  exit status: {result.exit_code}", ""]
    return "\n".join(lines)


def _nothing_recorded(m: MetricSummary) -> bool:
    """A counter still at 0, a rate or trend with no sample, a gauge never set."""
    values = m.values
    if m.type == MetricType.GAUGE.value:
        return values.get("value") is None
    if m.type == MetricType.RATE.value:
        return not any(values.get(k) for k in ("count", "passes", "fails"))
    return not values.get("count")


def _breakdown(snap: RunSnapshot) -> list[str]:
    """Requests by name, failures by message and checks by name (console.breakdown)."""
    tables = snap.tables
    lines: list[str] = []
    for title, (headers, rows) in (
        ("requests", breakdown.request_cells(tables)),
        ("failures", breakdown.failure_cells(tables)),
    ):
        if rows:
            lines += [f"  {title}", *(f"    {r}" for r in breakdown.text_table(headers, rows)), ""]
    if checks := breakdown.check_lines(tables):
        lines += ["  checks", *(f"    {line}" for line in checks), ""]
    return lines


async def _run(run: Run, out: TextIO) -> RunResult:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, lambda: run.request_stop(interrupted=True))
        except (NotImplementedError, RuntimeError):  # not the main thread
            pass
    interval = run.config.progress_interval
    last = [-interval]

    def on_snapshot(snap: RunSnapshot) -> None:
        if snap.elapsed - last[0] >= interval and snap.state in ("running", "paused"):
            last[0] = snap.elapsed
            print(progress_line(snap), file=out, flush=True)

    run.subscribe(on_snapshot)
    return await run.run()


def run_headless(
    profile: Profile,
    *,
    runs_dir: Path,
    duration: float | None,
    replay: Sequence[ReplayFault] = (),
    out: TextIO = sys.stdout,
) -> int:
    run = Run(profile, runs_dir=runs_dir, duration=duration, replay=replay)
    print(f"stressdeck: {profile.name} -> {run.run_dir}", file=out, flush=True)
    for warning in run.start_warnings():
        print(
            f"stressdeck: warning: {warning}; criteria that need them will not be judged",
            file=out,
            flush=True,
        )
    result = asyncio.run(_run(run, out))
    print(format_summary(result, run.kind_figures(result.snapshot)), file=out, flush=True)
    return result.exit_code
