"""The console's view of an HTTP session: latency and verdicts first, then VUs and errors."""

from __future__ import annotations

from typing import TYPE_CHECKING

from console.sessions.http.catalog import CONTROL_ACTIONS, TARGET_ACTIONS
from console.sessions.http.flow import safe_url
from console.snapshot import SessionSnapshot
from console.units import format_bytes

if TYPE_CHECKING:
    from console.sessions.http.session import HttpSession

__all__ = ["ms_text", "rate_text", "session_view"]


def ms_text(value: float | None) -> str:
    """Milliseconds for a pane: 0.4ms, 12.3ms, 250ms, 1.25s."""
    if value is None:
        return "-"
    if value >= 1000:
        return f"{value / 1000:.2f}s"
    return f"{value:.0f}ms" if value >= 100 else f"{value:.1f}ms"


_PROBE_SHORT = {"circuit_breaker": "cb", "etag": "etag", "backpressure": "bp", "recovery": "rec"}


def rate_text(session: HttpSession, name: str) -> str:
    pair = session.rates.get(name)
    return f"{100.0 * pair[0] / pair[1]:.2f}%" if pair and pair[1] else "-"


def _errors_text(session: HttpSession) -> str:
    shown = [f"{cls} {n}" for cls, n in sorted(session.errors.items()) if n]
    return " ".join(shown) if shown else "0"


def _probes_text(session: HttpSession) -> str:
    if not session.probes:
        return "pending" if session.run_probes else ""
    return " ".join(
        f"{_PROBE_SHORT[k]}{'✓' if ok else '✗'}" for k, (ok, _) in session.probes.items()
    )


def session_view(session: HttpSession) -> SessionSnapshot:
    """An immutable snapshot; the pane shows ``counters``, the detail screen ``details``."""
    vus = session.gauges.get("vus", 0.0)
    vus_max = session.gauges.get("vus_max", 0.0)
    # The grid shows the first few: req/s is already the sparkline's value.
    p95 = ("p95", ms_text(session.series["p95"].last if session.series["p95"].last else None))
    probes: list[tuple[str, str]] = []
    if session.run_probes:
        probes.append(("probes", _probes_text(session)))
        if session.score is not None:
            probes.append(("score", f"{session.score:.0f}/100"))
        elif session.config.probes:
            done = f"{len(session.probes)}/{len(session.config.probes)} probes"
            probes.append(("score", f"pending ({done})"))
    if session.config.steps:
        # panes are narrow: verdicts right after latency, then VUs and errors by class
        # VUs busy now / allocated so far: an open model at 50 req/s with 2 ms responses has
        # about 0 busy at any moment out of the 5 it keeps ready.
        counters = [p95, *probes, ("VUs busy", f"{vus:.0f}/{vus_max:.0f} allocated")]
        counters.append(("err", _errors_text(session)))
        counters.append(("failed", rate_text(session, "http_req_failed")))
        if session.config.executor.endswith("arrival-rate"):
            counters.append(("dropped", f"{session.totals.get('dropped_iterations', 0):.0f}"))
        counters.append(("req/s", f"{session.series['req/s'].last or 0:.0f}"))
    else:
        counters = [*probes, ("err", _errors_text(session))]
    details: list[tuple[str, str]] = [
        ("executor", session.config.executor + f" (worker {session.index + 1}/{session.workers})"),
        ("target", safe_url(session.target)),
        ("client", session.config.client),
        ("scale", f"x{session.scale:.2f}"),
        *(
            (("rate set", f"{session.rate_set:g}/s on this worker"),)
            if session.rate_set is not None
            else ()
        ),
        ("http_reqs", f"{session.totals.get('http_reqs', 0):.0f}"),
        ("iterations", f"{session.totals.get('iterations', 0):.0f}"),
        ("iterations/s", f"{session.iteration_rate:.1f}"),
        ("dropped_iterations", f"{session.totals.get('dropped_iterations', 0):.0f}"),
        ("http_req_duration avg", ms_text(session.duration.avg)),
        *(
            (f"http_req_duration p({p})", ms_text(session.duration.percentile(p)))
            for p in (50, 90, 95, 99)
        ),
        (
            "http_req_duration max",
            ms_text(session.duration.max if session.duration.count else None),
        ),
        ("http_req_failed", rate_text(session, "http_req_failed")),
        ("checks", rate_text(session, "checks")),
        ("data_sent", format_bytes(session.totals.get("data_sent", 0.0))),
        ("data_received", format_bytes(session.totals.get("data_received", 0.0))),
        ("status codes", " ".join(f"{c}:{n}" for c, n in sorted(session.codes.items())) or "-"),
        ("errors", _errors_text(session)),
        *((f"check {name}", f"{p}/{t}") for name, (p, t) in session.checks_by_name.items()),
        *(
            (f"probe {k}", ("PASS " if session.probes[k][0] else "FAIL ") + ev)
            for k, ev in session.probe_evidence.items()
        ),
    ]
    if session.score is not None:
        details.append(("resilience score", f"{session.score:.1f}/100"))
    badges = list(session.badges)
    if session.paused:
        badges.append("paused")
    if session.config.insecure:
        badges.append("TLS unchecked")
    faults = [f"http.{a}" for a in CONTROL_ACTIONS]
    if session.embedded:
        faults += [f"http.{a}" for a in TARGET_ACTIONS]
    return session.make_view(
        badges=tuple(badges),
        series=session.series_views({"req/s": "", "p95": "ms", "errors/s": ""}),
        counters=tuple(counters),
        output_tail=tuple(
            f"{k}: {'PASS' if session.probes[k][0] else 'FAIL'} {ev}"
            for k, ev in session.probe_evidence.items()
        ),
        details=tuple(details),
        actions=tuple(faults),
    )
