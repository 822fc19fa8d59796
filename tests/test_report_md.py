"""report.md's table cells show outside text as text: request names, failure messages, check
names, session ids and fault groups come from servers and profiles, and a markdown viewer
renders the HTML in them (``<b>``, links and images on GitHub)."""

from __future__ import annotations

import dataclasses

from console.export import render_report
from console.profile import load_profile_text
from console.snapshot import (
    CheckRow,
    LedgerEntry,
    MetricImpact,
    RequestFailure,
    RequestRow,
    RunTables,
)
from tests.synthetic_run import synthetic_snapshot

HTML = '<img src="https://example.invalid/x.png"> <b>bold</b> & co'
ESCAPED = '&lt;img src="https://example.invalid/x.png"&gt; &lt;b&gt;bold&lt;/b&gt; &amp; co'


def test_report_md_cells_escape_html() -> None:
    snapshot = synthetic_snapshot()
    session = dataclasses.replace(snapshot.sessions[0], id=f"ssh#{HTML}")
    fault = snapshot.faults[0]
    impact = MetricImpact(HTML, "p95", "ms", 1.0, 2.0, None, "not back", "1ms", "2ms")
    tables = RunTables(
        requests=(RequestRow("api", "GET", HTML, 1, 1, 1.0, 1.0, 1.0, 1.0, 1.0),),
        failures=(RequestFailure("api", "GET", "/a", HTML, 1),),
        checks=(CheckRow("api", HTML, 1, 0),),
    )
    snapshot = dataclasses.replace(
        snapshot,
        sessions=(session, *snapshot.sessions[1:]),
        tables=tables,
        ledger=(LedgerEntry(fault.id, fault.t, fault.action, fault.target, "key", 1.0, (impact,)),),
    )
    profile = load_profile_text('[run]\nname = "t"\n[[pty]]\ncommand = "true"\n', path="t.toml")
    report = render_report(snapshot, profile, {})
    assert "<img" not in report and "<b>" not in report, report
    # The request's name, the failure, the check, the session and the fault impact's group.
    assert report.count(ESCAPED) == 5, report
    assert "`t.toml`" in report  # a code span shows its text as it is: not escaped
