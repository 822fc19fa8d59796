"""``report.html``: the run as one self-contained page of charts and tables.

Why uPlot: it is a well-kept, MIT-licensed time-series library of 51 KB minified (ECharts is about
1 MB, Chart.js about 200 KB and slower on long series), draws tens of thousands of points on a
canvas without effort, and has what a run timeline needs built in: drag to zoom, a hover cursor
with a live legend, cursors and zoom synced across charts, and draw hooks (the fault bands and
criterion flips are drawn there). Its minified JS and CSS are vendored from the npm package
``uplot`` into ``console/assets/`` and inlined, so the page opens offline with no CDN or server.

The tables (criteria, faults, sessions, failures, metrics, the profile) are rendered here in
HTML, so they read even with JavaScript off; the charts are drawn by ``assets/report.js`` from a
JSON payload: the run's :mod:`timeline <console.timeline>` (bounded, downsampled), the faults'
spans and the criteria's flips.

The input is the dict written to ``snapshot-N.json`` (already redacted by
:func:`console.export.snapshot_dict`): the profile shown here is that redacted copy, never the
file on disk.
"""

from __future__ import annotations

import functools
import html
import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from importlib import resources
from typing import Any

from console import breakdown, verdicts
from console.files import json_text

__all__ = ["dump_toml", "render"]


@functools.cache
def _asset(name: str) -> str:
    return (resources.files("console") / "assets" / name).read_text(encoding="utf-8")


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value))


def _table(
    headers: Sequence[str], rows: Iterable[Sequence[object]], cls: str = "", raw: bool = False
) -> str:
    """An HTML table; cells are escaped unless ``raw`` (then the caller escaped them)."""
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{c if raw else _e(c)}</td>" for c in row) + "</tr>" for row in rows
    )
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    value = float(value)
    minutes, seconds = divmod(value, 60)
    hours, minutes = divmod(int(minutes), 60)
    if hours:
        return f"{hours}h{minutes:02d}m{seconds:04.1f}s"
    if minutes:
        return f"{minutes}m{seconds:04.1f}s"
    return f"{seconds:.1f}s"


def _json_for_script(value: Any) -> str:
    """JSON that cannot close its ``<script>`` element early."""
    text = json_text(value, separators=(",", ":"))
    return text.replace("</", "<\\/")


# ----- TOML -----------------------------------------------------------------------------------

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _key(key: str) -> str:
    return key if _BARE_KEY.match(key) else json.dumps(key)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if value is None:
        return '""'
    return json.dumps(str(value))


def dump_toml(data: Mapping[str, Any]) -> str:
    """The profile as TOML again: scalars first, then tables and arrays of tables, in order."""
    lines: list[str] = []

    def table(path: str, body: Mapping[str, Any], header: str) -> None:
        scalars = [
            (k, v)
            for k, v in body.items()
            if not isinstance(v, Mapping)
            and not (isinstance(v, list) and v and all(isinstance(i, Mapping) for i in v))
        ]
        if header:
            lines.append("")
            lines.append(header)
        lines.extend(f"{_key(k)} = {_value(v)}" for k, v in scalars)
        for k, v in body.items():
            sub = f"{path}.{_key(k)}" if path else _key(k)
            if isinstance(v, Mapping):
                table(sub, v, f"[{sub}]")
            elif isinstance(v, list) and v and all(isinstance(i, Mapping) for i in v):
                for item in v:
                    table(sub, item, f"[[{sub}]]")

    table("", data, "")
    return "\n".join(lines).strip() + "\n"


# ----- sections -------------------------------------------------------------------------------


def _verdict(criteria: Sequence[Mapping[str, Any]]) -> tuple[str, str]:
    look = verdicts.look(verdicts.overall(c["state"] for c in criteria))
    return look.word, look.css


def _state_badge(state: str) -> str:
    look = verdicts.look(state)
    return f'<span class="badge {look.css}">{_e(look.word)}</span>'


def _criteria(criteria: Sequence[Mapping[str, Any]]) -> str:
    if not criteria:
        return "<p>No criteria in this profile.</p>"
    rows = []
    for c in criteria:
        flips = ", ".join(f"{_seconds(t)} {s}" for t, s in c.get("flips", [])[-8:])
        value = _e(c["value_text"]) + (
            f"<br><small>{_e(c['evidence'])}</small>" if c.get("evidence") else ""
        )
        rows.append(
            [
                _e(c["name"]),
                f"<code>{_e(c['metric'])}</code>",
                _e(c["scope"]),
                _e(c["target_text"]),
                value,
                _state_badge(c["state"]),
                _e(flips or "-"),
            ]
        )
    return _table(
        ["Criterion", "Metric", "Scope", "Target", "Value", "Status", "Flips"],
        rows,
        "criteria",
        raw=True,
    )


def _faults(spans: Sequence[Mapping[str, Any]], faults: Sequence[Mapping[str, Any]]) -> str:
    if not faults:
        return "<p>No faults were injected or observed.</p>"
    by_id = {s["id"]: s for s in spans}
    rows = []
    for f in faults:
        span = by_id.get(f["id"], {})
        start, end = span.get("start", f["t"]), span.get("end")  # the timeline's clock
        rows.append(
            [
                f["id"],
                _seconds(start),
                _seconds(end) if end is not None else "-",
                _seconds(end - start) if end is not None else "-",
                f["action"],
                f["source"],
                f["target"],
                len(f.get("sessions", [])),
                _value(f.get("params") or {}) if f.get("params") else "",
                f.get("note", ""),
            ]
        )
    return _table(
        ["#", "Start", "End", "Lasted", "Action", "Source", "Target", "Sessions", "Params", "Note"],
        rows,
        "faults",
    )


def _failures(events: Sequence[Mapping[str, Any]], sessions: Sequence[str] | None) -> str:
    """Failed events grouped by message (event name and detail), most frequent first."""
    counts: Counter[tuple[str, str]] = Counter()
    last: dict[tuple[str, str], float] = {}
    for event in events:
        if event.get("success") is not False:
            continue
        if sessions is not None and event.get("session_id") not in sessions:
            continue
        key = (str(event.get("event", "")), str(event.get("detail", ""))[:200])
        counts[key] += 1
        last[key] = float(event.get("t") or 0.0)
    if not counts:
        return "<p>No failures among the recent events.</p>"
    return _table(
        ["Count", "Event", "Message", "Last at"],
        [[n, ev, msg, _seconds(last[(ev, msg)])] for (ev, msg), n in counts.most_common(30)],
        "failures",
    )


def _breakdown(data: Mapping[str, Any] | None) -> str:
    """Scenarios, requests by name, failures by message and checks (console.breakdown)."""
    tables = breakdown.from_json(data)
    parts = []
    if scenarios := breakdown.scenario_lines(tables):
        items = "".join(f"<li>{_e(line.removeprefix('* '))}</li>" for line in scenarios[1:])
        parts.append(f"<p>{_e(scenarios[0])}</p><ul>{items}</ul>")
    for title, (headers, rows), cls in (
        ("Requests", breakdown.request_cells(tables), "requests"),
        ("Failures by message", breakdown.failure_cells(tables), "request-failures"),
        ("Checks", breakdown.check_cells(tables), "checks"),
    ):
        if rows:
            parts.append(f"<h3>{_e(title)}</h3>" + _table(headers, rows, cls))
    if not parts:
        return ""
    return '<section id="requests"><h2>Requests</h2>' + "".join(parts) + "</section>"


def _sessions(sessions: Sequence[Mapping[str, Any]]) -> str:
    labels = list(dict.fromkeys(label for s in sessions for label, _ in s.get("counters", [])))[:8]
    rows = []
    for s in sessions:
        counters = dict(s.get("counters", []))
        rows.append(
            [s["id"], s["state"], s["target"], *[counters.get(label, "") for label in labels]]
        )
    return _table(["Session", "State", "Target", *labels], rows, "sessions")


def _details(sessions: Sequence[Mapping[str, Any]]) -> str:
    """Every session's detail rows side by side: the per-request figures of HTTP sessions, the
    per-program figures of PTY ones."""
    with_details = [s for s in sessions if s.get("details")][:12]
    if not with_details:
        return ""
    labels = list(dict.fromkeys(label for s in with_details for label, _ in s["details"]))
    rows = [[label, *[dict(s["details"]).get(label, "") for s in with_details]] for label in labels]
    return "<h4>Per-session detail</h4>" + _table(
        ["Figure", *[s["id"] for s in with_details]], rows, "details"
    )


def _metrics(metrics: Sequence[Mapping[str, Any]]) -> str:
    rows = []
    for m in metrics:
        values = " ".join(f"{k}={_number(v)}" for k, v in m["values"].items() if v is not None)
        rows.append([m["name"], m["type"], m["unit"], values])
    return _table(["Metric", "Type", "Unit", "Values"], rows, "metrics")


def _group_criteria(
    criteria: Sequence[Mapping[str, Any]], group: str, kind: str, history: Mapping[str, Any]
) -> list[Mapping[str, Any]]:
    """The criteria about a group: on a metric its sessions record, or recovery after one of
    its kind's faults."""
    metrics = {
        name.split("|")[1] for name in history.get("columns", {}) if name.startswith(group + "|")
    }
    return [
        c
        for c in criteria
        if c["metric"] in metrics or c["metric"].startswith(f"recovery after {kind}.")
    ]


def _flips(criterion: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The changes worth a line on the timeline: every turn to fail, and every turn back to
    pass after a fail (a first verdict of pass is not news)."""
    out, before = [], "pending"
    for t, state in criterion.get("flips", []):
        if state == "fail" or (state == "pass" and before == "fail"):
            out.append({"name": criterion["name"], "t": t, "state": state})
        before = state
    return out


def _number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def render(data: Mapping[str, Any], history: Mapping[str, Any]) -> str:
    """The whole page: ``data`` is :func:`console.export.snapshot_dict`'s output, ``history``
    :meth:`console.engine.Run.history`'s (the timeline; empty is allowed)."""
    criteria = data.get("criteria", [])
    sessions = data.get("sessions", [])
    verdict, verdict_cls = _verdict(criteria)
    groups = list(dict.fromkeys((s["group"], s["kind"]) for s in sessions))
    group_of = {s["id"]: s["group"] for s in sessions}
    reached = {
        f["id"]: sorted({group_of[sid] for sid in f.get("sessions", []) if sid in group_of})
        for f in data.get("faults", [])
    }
    payload = {
        "timeline": {
            "t": history.get("t", []),
            "columns": history.get("columns", {}),
            "stride": history.get("stride", 1),
        },
        "sample_interval": history.get("sample_interval", 1.0),
        "units": history.get("units", {m["name"]: m["unit"] for m in data.get("metrics", [])}),
        "types": history.get("types", {m["name"]: m["type"] for m in data.get("metrics", [])}),
        "histograms": history.get("histograms", {}),
        "fault_spans": history.get(
            "fault_spans",
            [
                {"id": f["id"], "start": f["t"], "end": None, "action": f["action"]}
                | {"source": f["source"], "target": f["target"]}
                for f in data.get("faults", [])
            ],
        ),
        "flips": [flip for c in criteria for flip in _flips(c)],
        "fault_groups": reached,
        "groups": [{"name": g, "kind": k} for g, k in groups],
    }
    profile = data.get("profile", {})
    summary = {k: v for k, v in data.get("summary", {}).items() if not isinstance(v, Mapping)}
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    title = f"{data.get('profile_name', 'run')}: run report"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title>",
        # First, so an error anywhere later (the library included) is caught and shown.
        "<script>window.__sdErrors=[];window.addEventListener('error',function(e){"
        "window.__sdErrors.push(String(e.message));});(function(){var f=console.error;"
        "console.error=function(){window.__sdErrors.push(Array.prototype.join.call(arguments,' '));"
        "return f.apply(console,arguments);};})();</script>",
        f"<style>{_asset('uPlot.min.css')}\n{_asset('report.css')}</style>",
        "</head><body>",
        f"<header><h1>{_e(title)}</h1>",
        f'<span class="badge big {verdict_cls}">{_e(verdict)}</span>',
        f"<p>{_e(data.get('description', ''))}</p>",
        _table(
            ["State", "Elapsed / planned", "Faults", "Events logged", "Run directory", "Written"],
            [
                [
                    data.get("state", "")
                    + (f" ({data['abort_reason']})" if data.get("abort_reason") else ""),
                    f"{_seconds(data.get('elapsed'))} / {_seconds(data.get('duration'))}",
                    len(data.get("faults", [])),
                    data.get("events_logged", 0),
                    data.get("run_dir", ""),
                    generated,
                ]
            ],
            "info",
        ),
        "</header>",
        "<nav>"
        + " · ".join(
            f'<a href="#{a}">{_e(t)}</a>'
            for a, t in [
                ("criteria", "Criteria"),
                ("timeline", "Timeline"),
                ("requests", "Requests"),
                ("faults", "Faults"),
                ("groups", "Groups"),
                ("metrics", "Metrics"),
                ("profile", "Profile"),
            ]
        )
        + "</nav>",
        '<section id="criteria"><h2>Success criteria</h2>',
        _criteria(criteria),
        "</section>",
        '<section id="timeline"><h2>Timeline</h2>',
        '<p class="hint">Drag across a chart to zoom (all charts follow), double-click to zoom '
        "out. Shaded bands are faults (start to end); vertical lines are criteria turning "
        '<span class="pass-text">pass</span> or <span class="fail-text">fail</span>. '
        f"One point covers {_e(payload['timeline']['stride'])} sample(s) of "
        f"{_e(payload['sample_interval'])}s; merged points average their samples "
        "(percentiles so merged are approximate).</p>",
        '<div id="fault-hover" class="hover">Hover over a chart: the faults and criterion flips at that '
        "moment show here.</div>",
        '<div id="timeline-charts"></div>',
        "</section>",
        _breakdown(data.get("tables")),
        '<section id="faults"><h2>Faults</h2>',
        _faults(payload["fault_spans"], data.get("faults", [])),
        "</section>",
        '<section id="groups"><h2>Session groups</h2>',
    ]
    for group, kind in groups:
        members = [s for s in sessions if s["group"] == group]
        ids = [s["id"] for s in members]
        parts += [
            f'<div class="group" data-group="{_e(group)}"><h3>{_e(group)} '
            f"<small>({_e(kind)}, {len(members)} session(s))</small></h3>",
            '<div class="multiples"></div>',
            "<h4>Latency histograms</h4>",
            '<div class="histograms"></div>',
            "<h4>Criteria on this group</h4>",
            _criteria(_group_criteria(criteria, group, kind, history))
            if _group_criteria(criteria, group, kind, history)
            else "<p>No criterion reads this group's metrics.</p>",
            "<h4>Faults that reached this group</h4>",
            _faults(
                payload["fault_spans"],
                [f for f in data.get("faults", []) if set(f.get("sessions", [])) & set(ids)],
            ),
            "<h4>Sessions</h4>",
            _sessions(members),
            _details(members),
            "<h4>Failures by message</h4>",
            _failures(data.get("recent_events", []), ids),
            "</div>",
        ]
    parts += [
        "</section>",
        '<section id="run-failures"><h2>Run failures by message</h2>',
        _failures(data.get("recent_events", []), None),
        "</section>",
        '<section id="metrics"><h2>Metrics</h2>',
        _table(["Figure", "Value"], [[k, v] for k, v in summary.items()], "summary")
        if summary
        else "",
        _metrics(data.get("metrics", [])),
        "</section>",
        '<section id="profile"><h2>Profile</h2>',
        f"<p><code>{_e(profile.get('path', ''))}</code> (secrets redacted)</p>",
        f'<pre class="toml">{_e(dump_toml(profile.get("content", {})))}</pre>',
        "</section>",
        '<footer>Charts: <a href="https://github.com/leeoniya/uPlot">uPlot</a> (MIT), '
        "inlined.</footer>",
        f'<script id="sd-data" type="application/json">{_json_for_script(payload)}</script>',
        f"<script>{_asset('uPlot.iife.min.js')}</script>",
        f"<script>{_asset('report.js')}</script>",
        "</body></html>",
    ]
    return "\n".join(parts)
