"""Run snapshots on disk: ``snapshot-N.json``, ``report.md``, ``junit.xml`` and ``report.html``.

``snapshot-N.json`` keeps everything (metrics with percentiles, sessions, criteria with their
flips, faults, the profile with secrets redacted); N counts exports within the run.
``report.md`` is laid out like the seed reports: document information, configuration, a
criteria checklist (Target, Actual, Status), faults, per-session tables. ``junit.xml`` has one
test case per criterion, so CI systems show criteria as tests. ``report.html`` is the charted
report (:mod:`console.report_html`). The reports and JUnit file are rewritten at each export and
always describe the latest one.

All four are created 0600 (:mod:`console.files`) and everything in them passes through the
run's redactor (:class:`console.secrets.Secrets`): secrets by name and by value.
"""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from console import bottleneck, breakdown, ledger, markdown, report_html, verdicts
from console.files import json_text, private_dir, write_private
from console.metrics import MetricType, describe
from console.profile import Profile
from console.secrets import REDACTED, Secrets, redact
from console.snapshot import RunSnapshot
from console.timeline import interval_spread
from console.units import format_duration

__all__ = ["REDACTED", "ExportError", "redact", "write_all"]


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        return None
    return value


def snapshot_dict(
    snapshot: RunSnapshot,
    profile: Profile,
    summary: Mapping[str, Any],
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """The snapshot as JSON data, every string in it passed through the run's redactor."""
    secrets = Secrets.from_profile(profile) if secrets is None else secrets
    data = {"verdict": snapshot.verdict, **_jsonable(snapshot)}  # the verdict first
    for session in data["sessions"]:
        session.pop("screen", None)  # raw terminal bytes are for the live view only
    data["recent_events"] = data["recent_events"][-50:]
    data["summary"] = dict(summary)
    data["profile"] = {
        "path": str(profile.path),
        "content": secrets.profile_content(profile.data),
    }
    redacted: dict[str, Any] = secrets.redact(data)
    return redacted


class ExportError(OSError):
    """Some export files could not be written (a full disk, EIO); ``written`` holds the rest.

    The message names every file that failed and why, so the operator is told which one
    instead of seeing a traceback.
    """

    def __init__(self, failures: Sequence[tuple[Path, OSError]], written: Sequence[Path]) -> None:
        self.failures = tuple(failures)
        self.written = tuple(written)
        super().__init__("; ".join(f"{path.name}: {_reason(exc)}" for path, exc in self.failures))


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc) or type(exc).__name__


def write_all(
    run_dir: Path,
    n: int,
    snapshot: RunSnapshot,
    profile: Profile,
    summary: Mapping[str, Any],
    secrets: Secrets | None = None,
    *,
    history: Mapping[str, Any] | None = None,
) -> list[Path]:
    """Write the four files, private (0600) and redacted by ``secrets`` (the run's), each
    independently; raise :class:`ExportError` naming the files that failed once the others are
    written. A failed write leaves no temporary file (:func:`console.files.write_private`).
    ``history`` is the run's timeline for report.html (:meth:`console.engine.Run.history`)."""
    secrets = Secrets.from_profile(profile) if secrets is None else secrets
    redacted: dict[str, Any] = {}

    def data() -> dict[str, Any]:
        if not redacted:  # built once: snapshot-N.json and report.html show the same copy
            redacted.update(snapshot_dict(snapshot, profile, summary, secrets))
            if history:  # the run's own noise, for `stressdeck diff`
                redacted["intervals"] = interval_spread(history)
        return redacted

    files = [
        (
            run_dir / f"snapshot-{n}.json",
            lambda: json_text(data(), indent=2, default=str),
        ),
        (
            run_dir / "report.md",
            lambda: secrets.text(
                render_report(snapshot, profile, summary, secrets)
                + _host_section(history)
                + _generator_section(snapshot)
            ),
        ),
        (run_dir / "junit.xml", lambda: secrets.text(render_junit(snapshot))),
        # Its inputs are redacted rather than the page: a regex over the inlined chart library
        # could change code, and every string on the page comes from these two.
        (
            run_dir / "report.html",
            lambda: report_html.render(data(), secrets.redact(dict(history or {}))),
        ),
    ]
    try:
        private_dir(run_dir)
    except OSError as exc:
        raise ExportError([(run_dir, exc)], []) from exc
    written: list[Path] = []
    failures: list[tuple[Path, OSError]] = []
    for path, render in files:
        try:
            write_private(path, render())
        except OSError as exc:
            failures.append((path, exc))
        else:
            written.append(path)
    if failures:
        raise ExportError(failures, written)
    return written


def _host_section(history: Mapping[str, Any] | None) -> str:
    """The target host's resources when latency rose (a monitor's figures, console.bottleneck)."""
    lines = bottleneck.markdown_lines(history or {})
    return "\n".join(["", "## Target host", "", *lines, ""]) if lines else ""


def _generator_section(snapshot: RunSnapshot) -> str:
    """Evidence that the load generator saturated (console.health): latencies are suspect."""
    if not snapshot.generator:
        return ""
    verdict, *evidence = snapshot.generator
    return "\n".join(
        ["", "## Load generator", "", f"⚠ {verdict}", "", *(f"- {e}" for e in evidence), ""]
    )


def render_report(
    snapshot: RunSnapshot,
    profile: Profile,
    summary: Mapping[str, Any],
    secrets: Secrets | None = None,
) -> str:
    secrets = Secrets.from_profile(profile) if secrets is None else secrets
    passed = sum(c.state == verdicts.PASS for c in snapshot.criteria)
    verdict = verdicts.label(verdicts.overall(c.state for c in snapshot.criteria))
    out = [f"# {snapshot.profile_name}: run report", ""]
    if snapshot.description:
        out += [snapshot.description, ""]
    out += ["## Document Information", ""]
    out += markdown.table(
        ["Field", "Value"],
        [
            ["Profile", f"`{profile.path}`"],
            ["Run directory", f"`{snapshot.run_dir}`"],
            [
                "State",
                snapshot.state + (f" ({snapshot.abort_reason})" if snapshot.abort_reason else ""),
            ],
            [
                "Elapsed / planned",
                f"{format_duration(snapshot.elapsed)} / {format_duration(snapshot.duration)}",
            ],
            ["Events logged", snapshot.events_logged],
            ["Overall", f"{verdict}: {passed} of {len(snapshot.criteria)} criteria passed"],
        ],
    )
    out += ["", "## Configuration", ""]
    rows = []
    for group in profile.groups:
        fields = dataclasses.asdict(group.config)
        shown = ", ".join(
            f"{k}={v!r}"
            # Redacted before the cut, or a secret cut in half would slip past the value check.
            for k, v in secrets.redact(redact(fields, secrets.keys)).items()
            if k not in ("name", "count") and v not in (None, "", (), [], {})
        )
        rows.append([group.kind, group.config.name, group.config.count, shown[:160]])
    out += markdown.table(["Kind", "Group", "Count", "Settings"], rows)
    if scenarios := breakdown.scenario_lines(snapshot.tables):
        out += ["", "## Scenarios", "", scenarios[0] + ":", ""]
        out += [f"- {line.removeprefix('* ')}" for line in scenarios[1:]]
    out += ["", "## Success Criteria", ""]
    out += markdown.table(
        ["Criterion", "Target", "Actual", "Status"],
        [
            [
                c.name,
                f"{c.metric} {c.target_text}".strip(),
                c.value_text + (f" ({c.evidence})" if c.evidence else ""),
                verdicts.label(c.state),
            ]
            for c in snapshot.criteria
        ],
    )
    flips = [(c.name, t, s) for c in snapshot.criteria for t, s in c.flips if len(c.flips) > 1]
    if flips:
        out += ["", "### Criterion flips", ""]
        out += markdown.table(
            ["Criterion", "At", "New state"], [[n, f"{t:.1f}s", s] for n, t, s in flips[:100]]
        )
    if summary:
        out += ["", "## Summary figures", ""]
        out += markdown.table(
            ["Figure", "Value"],
            [
                [k, breakdown.figure_text(snapshot, k, v)]
                for k, v in summary.items()
                if not isinstance(v, Mapping)
            ],
        )
    for title, (headers, cells) in (
        ("Requests", breakdown.request_cells(snapshot.tables)),
        ("Failures", breakdown.failure_cells(snapshot.tables)),
        ("Checks", breakdown.check_cells(snapshot.tables)),
    ):
        if cells:
            out += ["", f"## {title}", "", *markdown.table(headers, cells)]
    out += ["", "## Faults", ""]
    if snapshot.faults:
        if snapshot.fault_count > len(snapshot.faults):
            out += [
                f"The newest {len(snapshot.faults)} of {snapshot.fault_count} faults; "
                "events.jsonl has every one.",
                "",
            ]
        out += markdown.table(
            ["#", "At", "Action", "Target", "Sessions", "Source", "Note"],
            [
                [f.id, f"{f.t:.1f}s", f.action, f.target, len(f.sessions), f.source, f.note]
                for f in snapshot.faults
            ],
        )
    else:
        out.append("No faults were injected.")
    if snapshot.ledger:
        out += ["", "## Fault impact", "", *markdown.table(*ledger.impact_cells(snapshot.ledger))]
    out += ["", "## Sessions", ""]
    for kind in dict.fromkeys(s.kind for s in snapshot.sessions):
        sessions = [s for s in snapshot.sessions if s.kind == kind]
        labels = list(dict.fromkeys(label for s in sessions for label, _ in s.counters))[:8]
        out += [f"### {kind.upper()} sessions", ""]
        out += markdown.table(
            ["Session", "Target", "State", *labels],
            [
                [s.id, s.target, s.state, *[dict(s.counters).get(label, "") for label in labels]]
                for s in sessions
            ],
        )
        out.append("")
    out += ["## Metrics", ""]

    out += markdown.table(
        ["Metric", "Type", "Values"],
        [
            [m.name, m.type, describe(MetricType(m.type), m.unit, m.values)]
            for m in snapshot.metrics
        ],
    )
    out.append("")
    return "\n".join(out)


def render_junit(snapshot: RunSnapshot) -> str:
    """One test case per criterion, in the shape the strict Ant schema (windyroad JUnit.xsd)
    validates: suite ``timestamp`` and ``hostname``, ``properties`` first, a ``time`` on every
    case, ``system-out``/``system-err`` last. Not judged is a ``skipped`` case with its
    reason: neither a pass nor a failure."""
    failures = sum(c.state not in (verdicts.PASS, verdicts.NOT_JUDGED) for c in snapshot.criteria)
    skipped = sum(c.state == verdicts.NOT_JUDGED for c in snapshot.criteria)
    started = snapshot.started_at or snapshot.ended_at or datetime.now(timezone.utc).isoformat()
    suite = ET.Element(
        "testsuite",
        name=f"stressdeck.{snapshot.profile_name}",
        tests=str(len(snapshot.criteria)),
        failures=str(failures),
        errors="0",
        skipped=str(skipped),
        time=f"{snapshot.elapsed:.3f}",
        timestamp=started[:19],  # the xsd's pattern: no fraction, no zone (this is UTC)
        hostname=socket.gethostname() or "localhost",
    )
    properties = ET.SubElement(suite, "properties")
    for name, value in (
        ("verdict", snapshot.verdict),
        ("exit_status", "" if snapshot.exit_code is None else str(snapshot.exit_code)),
        ("state", snapshot.state),
        ("run_dir", snapshot.run_dir),
    ):
        ET.SubElement(properties, "property", name=name, value=value)
    out = []
    for criterion in snapshot.criteria:
        # A criterion is judged over the whole run: that is its time.
        case = ET.SubElement(
            suite,
            "testcase",
            classname=f"stressdeck.{snapshot.profile_name}",
            name=criterion.name,
            time=f"{snapshot.elapsed:.3f}",
        )
        message = f"{criterion.metric}: {criterion.value_text} (target {criterion.target_text})"
        out.append(f"{verdicts.label(criterion.state)} {criterion.name}: {message}")
        if criterion.state == verdicts.NOT_JUDGED:
            ET.SubElement(case, "skipped", message=criterion.evidence)
        elif criterion.state != verdicts.PASS:
            failure = ET.SubElement(case, "failure", message=message, type=criterion.state)
            failure.text = criterion.evidence or message
    for entry in snapshot.ledger:  # one case per fault: recovered, not back, or not judged
        name, state, text = ledger.junit_case(entry)
        case = ET.SubElement(
            suite,
            "testcase",
            classname=f"stressdeck.{snapshot.profile_name}.faults",
            name=name,
            time=f"{snapshot.elapsed:.3f}",
        )
        out.append(f"{state} {name}: {text}")
        if state == "fail":
            ET.SubElement(case, "failure", message=text, type="not back").text = text
            failures += 1
        elif state == "skip":
            ET.SubElement(case, "skipped", message=text)
            skipped += 1
    suite.set("tests", str(len(snapshot.criteria) + len(snapshot.ledger)))
    suite.set("failures", str(failures))
    suite.set("skipped", str(skipped))
    ET.SubElement(suite, "system-out").text = "\n".join(out)
    ET.SubElement(suite, "system-err").text = ""
    ET.indent(suite)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"
    )
