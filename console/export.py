"""Run snapshots on disk: ``snapshot-N.json``, ``report.md``, ``junit.xml`` and ``report.html``.

``snapshot-N.json`` keeps everything (metrics with percentiles, sessions, criteria with their
flips, faults, the profile with secrets redacted); N counts exports within the run.
``report.md`` is laid out like the seed reports: document information, configuration, a
criteria checklist (Target, Actual, Status), faults, per-session tables. ``junit.xml`` has one
test case per criterion, so CI systems show criteria as tests. ``report.html`` is the charted
report (:mod:`console.report_html`). The reports and JUnit file are rewritten at each export and
always describe the latest one.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from console import report_html
from console.profile import Profile
from console.snapshot import RunSnapshot
from console.units import format_duration

__all__ = ["redact", "write_all"]

SECRET_KEY = re.compile(
    r"pass(word|phrase)?|secret|token|api[_-]?key|private[_-]?key|authorization|cookie|credential",
    re.IGNORECASE,
)
REDACTED = "***redacted***"


def secret_keys(kinds: Iterable[str]) -> frozenset[str]:
    """Keys declared ``opt(secret=True)`` in these kinds' configs, at any depth."""
    from console.config import nested_tables
    from console.sessions import get_kind

    found: set[str] = set()
    pending = [get_kind(name).config_type for name in kinds]
    seen: set[type] = set()
    while pending:
        cls = pending.pop()
        if cls in seen:
            continue
        seen.add(cls)
        found |= {f.name for f in dataclasses.fields(cls) if f.metadata.get("secret")}
        pending += [table for _, table in nested_tables(cls)]
    return frozenset(found)


def redact(value: Any, secrets: frozenset[str] = frozenset()) -> Any:
    """A copy of a TOML value with every secret key's value replaced: keys declared secret in
    a config class, and keys whose names say secret (``password``, ``token``, ``Authorization``).

    Keys that only *name* where a secret lives (``passphrase_env``, ``key_file``) are kept:
    they hold no secret and the report is more useful with them.
    """
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            names_only = key.endswith(("_env", "_file", "_path"))
            secret = key in secrets or (SECRET_KEY.search(key) and not names_only)
            out[key] = (
                REDACTED if secret and not isinstance(item, Mapping) else redact(item, secrets)
            )
        return out
    if isinstance(value, (list, tuple)):
        return [redact(v, secrets) for v in value]
    return value


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
    snapshot: RunSnapshot, profile: Profile, summary: Mapping[str, Any]
) -> dict[str, Any]:
    data = _jsonable(snapshot)
    for session in data["sessions"]:
        session.pop("screen", None)  # raw terminal bytes are for the live view only
    data["recent_events"] = data["recent_events"][-50:]
    data["summary"] = dict(summary)
    data["profile"] = {
        "path": str(profile.path),
        "content": redact(dict(profile.data), secret_keys(profile.kinds)),
    }
    return data


def write_all(
    run_dir: Path,
    n: int,
    snapshot: RunSnapshot,
    profile: Profile,
    summary: Mapping[str, Any],
    *,
    history: Mapping[str, Any] | None = None,
) -> list[Path]:
    run_dir.mkdir(parents=True, exist_ok=True)
    json_path = run_dir / f"snapshot-{n}.json"
    data = snapshot_dict(snapshot, profile, summary)
    _atomic_write(json_path, json.dumps(data, indent=2, default=str))
    report_path = run_dir / "report.md"
    _atomic_write(report_path, render_report(snapshot, profile, summary))
    junit_path = run_dir / "junit.xml"
    _atomic_write(junit_path, render_junit(snapshot))
    html_path = run_dir / "report.html"
    # report.html reads the same redacted dict as snapshot-N.json, so one redaction serves both.
    _atomic_write(html_path, report_html.render(data, history or {}))
    return [json_path, report_path, junit_path, html_path]


def _atomic_write(path: Path, text: str) -> None:
    """Write via a temporary file and rename, so a reader never sees half a report."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


STATUS = {"pass": "✅ PASS", "fail": "❌ FAIL", "pending": "⏳ PENDING"}


def render_report(snapshot: RunSnapshot, profile: Profile, summary: Mapping[str, Any]) -> str:
    passed = sum(c.state == "pass" for c in snapshot.criteria)
    verdict = "PASS" if snapshot.criteria and passed == len(snapshot.criteria) else "FAIL"
    if not snapshot.criteria:
        verdict = "NO CRITERIA"
    out = [f"# {snapshot.profile_name}: run report", ""]
    if snapshot.description:
        out += [snapshot.description, ""]
    out += ["## Document Information", ""]
    out += _table(
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
            ["Overall", f"{verdict} ({passed}/{len(snapshot.criteria)} criteria)"],
        ],
    )
    out += ["", "## Configuration", ""]
    rows = []
    for group in profile.groups:
        fields = dataclasses.asdict(group.config)
        shown = ", ".join(
            f"{k}={v!r}"
            for k, v in redact(fields, secret_keys(profile.kinds)).items()
            if k not in ("name", "count") and v not in (None, "", (), [], {})
        )
        rows.append([group.kind, group.config.name, group.config.count, shown[:160]])
    out += _table(["Kind", "Group", "Count", "Settings"], rows)
    out += ["", "## Success Criteria", ""]
    out += _table(
        ["Criterion", "Target", "Actual", "Status"],
        [
            [
                c.name,
                f"{c.metric} {c.target_text}".strip(),
                c.value_text + (f" ({c.evidence})" if c.evidence else ""),
                STATUS.get(c.state, c.state),
            ]
            for c in snapshot.criteria
        ],
    )
    flips = [(c.name, t, s) for c in snapshot.criteria for t, s in c.flips if len(c.flips) > 1]
    if flips:
        out += ["", "### Criterion flips", ""]
        out += _table(
            ["Criterion", "At", "New state"], [[n, f"{t:.1f}s", s] for n, t, s in flips[:100]]
        )
    if summary:
        out += ["", "## Summary figures", ""]
        out += _table(
            ["Figure", "Value"], [[k, v] for k, v in summary.items() if not isinstance(v, Mapping)]
        )
    out += ["", "## Faults", ""]
    if snapshot.faults:
        out += _table(
            ["#", "At", "Action", "Target", "Sessions", "Source", "Note"],
            [
                [f.id, f"{f.t:.1f}s", f.action, f.target, len(f.sessions), f.source, f.note]
                for f in snapshot.faults
            ],
        )
    else:
        out.append("No faults were injected.")
    out += ["", "## Sessions", ""]
    for kind in dict.fromkeys(s.kind for s in snapshot.sessions):
        sessions = [s for s in snapshot.sessions if s.kind == kind]
        labels = list(dict.fromkeys(label for s in sessions for label, _ in s.counters))[:8]
        out += [f"### {kind.upper()} sessions", ""]
        out += _table(
            ["Session", "Target", "State", *labels],
            [
                [s.id, s.target, s.state, *[dict(s.counters).get(label, "") for label in labels]]
                for s in sessions
            ],
        )
        out.append("")
    out += ["## Metrics", ""]
    from console.engine import describe  # late: engine imports this module

    out += _table(
        ["Metric", "Type", "Values"], [[m.name, m.type, describe(m)] for m in snapshot.metrics]
    )
    out.append("")
    return "\n".join(out)


def render_junit(snapshot: RunSnapshot) -> str:
    failures = sum(c.state != "pass" for c in snapshot.criteria)
    suite = ET.Element(
        "testsuite",
        name=f"stressdeck.{snapshot.profile_name}",
        tests=str(len(snapshot.criteria)),
        failures=str(failures),
        errors="0",
        time=f"{snapshot.elapsed:.3f}",
    )
    for criterion in snapshot.criteria:
        case = ET.SubElement(
            suite, "testcase", classname=f"stressdeck.{snapshot.profile_name}", name=criterion.name
        )
        message = f"{criterion.metric}: {criterion.value_text} (target {criterion.target_text})"
        if criterion.state != "pass":
            failure = ET.SubElement(case, "failure", message=message, type=criterion.state)
            failure.text = criterion.evidence or message
        else:
            ET.SubElement(case, "system-out").text = message
    ET.indent(suite)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"
    )
