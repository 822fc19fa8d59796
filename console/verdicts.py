"""The one verdict vocabulary: a criterion's states, how each is shown, and the run's verdict.

A criterion is *pending* while it has no data, then *pass* or *fail*. At the end of a run a
criterion still without data is *not judged*, with its reason ("ssh.drop is scheduled at 30s;
the run ended at 20s"): it neither passed (a threshold never passes silently, grafana/k6#1526)
nor failed (nothing went wrong). The criteria panel, the headless summary, the console's closing
text, report.md, report.html, junit.xml and the Prometheus endpoint all read this module.

The run's verdict orders them: any *fail* fails the run, else any *not judged* makes it not
judged, else it passes. :func:`exit_status` maps it to :class:`console.errors.ExitStatus`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from console.errors import ExitStatus

__all__ = [
    "FAIL",
    "NOT_JUDGED",
    "PASS",
    "PENDING",
    "STATES",
    "Look",
    "exit_status",
    "label",
    "look",
    "mark",
    "overall",
    "rank",
]

PASS = "pass"
FAIL = "fail"
NOT_JUDGED = "not_judged"
PENDING = "pending"
STATES = (PASS, FAIL, NOT_JUDGED, PENDING)  # every state a criterion can be in, as listed
NO_CRITERIA = "no_criteria"  # the run's verdict when the profile has none


@dataclass(frozen=True)
class Look:
    mark: str  # one cell wide: "✓"
    word: str  # "PASS"
    style: str  # a Rich style for the console
    css: str  # report.html's badge class


_LOOKS = {
    PASS: Look("✓", "PASS", "bold green", "pass"),
    FAIL: Look("✗", "FAIL", "bold red", "fail"),
    NOT_JUDGED: Look("○", "NOT JUDGED", "bold magenta", "not-judged"),
    PENDING: Look("…", "WAIT", "yellow", "pending"),
    NO_CRITERIA: Look("-", "NO CRITERIA", "dim", "pending"),
}
# Failing first, so a failure is never scrolled away; then what could not be judged.
_RANK = {FAIL: 0, NOT_JUDGED: 1, PENDING: 2, PASS: 3}


def look(state: str) -> Look:
    return _LOOKS.get(state) or Look("?", state.upper(), "bold", "pending")


def mark(state: str) -> str:
    return look(state).mark


def label(state: str) -> str:
    """``"✓ PASS"``, ``"○ NOT JUDGED"``: mark and word."""
    found = look(state)
    return f"{found.mark} {found.word}"


def rank(state: str) -> int:
    return _RANK.get(state, 2)


def overall(states: Iterable[str]) -> str:
    """The run's verdict from its criteria's states (``NO_CRITERIA`` when there are none)."""
    seen = set(states)
    if not seen:
        return NO_CRITERIA
    for state in (FAIL, NOT_JUDGED, PENDING):
        if state in seen:
            return state
    return PASS


def exit_status(verdict: str) -> ExitStatus:
    """The exit status of a finished run with this verdict (neither aborted nor interrupted)."""
    if verdict == FAIL:
        return ExitStatus.FAILED
    if verdict in (NOT_JUDGED, PENDING):
        return ExitStatus.NOT_JUDGED
    return ExitStatus.OK
