"""Remote text reaches panes and the event log only through the sanitizer's choke points.

Two places see every outside string: ``Run.make_event`` (each event's detail and data) and
``Session.snapshot`` (each pane's output tail, counters, details, badges). A real PTY program that
prints escape sequences and crashes shows them as text in its pane and its ``crashed`` event, and
``events.jsonl`` holds no control character; a session view of any kind is cleaned the same way.
"""

from __future__ import annotations

import json
import re
from typing import Any, cast

import pytest

from console.sessions.base import Session, SessionContext
from console.snapshot import SessionSnapshot
from tests.test_pty_session import drive, events, group, make_run, until

CONTROLS = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f]")
HOSTILE = "\x1b]0;OWNED\x07\x1b]52;c;eA==\x1b\\\x1bc\x1b[2J\x9b6n"


# Real processes and servers: the full suite, not the fast tier (-m "not slow").
pytestmark = pytest.mark.slow


async def test_a_programs_escape_sequences_are_shown_in_its_pane_and_crash_event(
    tmp_path: Any,
) -> None:
    script = r"printf '\033[1;31mred\033[0m \033]0;OWNED\007title\n\033c\033[2Jcleared\n'; exit 3"
    run = make_run(tmp_path, group("evil", json.dumps(script), restart="never"))

    async def wait_crash(run: Any) -> None:
        await until(lambda: bool(events(run, "crashed")))

    result = await drive(run, wait_crash)
    (crash,) = events(run, "crashed", "evil#0")
    expected = ["red ␛]0;OWNED␇title", "␛c␛[2Jcleared"]  # colours dropped, the rest shown
    assert crash.data["last_lines"] == expected
    pane = result.snapshot.session("evil#0")
    assert pane is not None and list(pane.output_tail) == expected
    raw = (result.run_dir / "events.jsonl").read_text()
    assert "\\u001b" not in raw and not CONTROLS.search(raw.replace("\n", ""))


class Hostile(Session):
    kind = "x"

    async def run(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def view(self) -> SessionSnapshot:
        return self.make_view(
            counters=(("err", HOSTILE),),
            output_tail=(f"probe: FAIL {HOSTILE}",),
            details=((f"check {HOSTILE}", HOSTILE),),
        )


def test_every_text_of_a_session_view_is_cleaned() -> None:
    ctx = SessionContext(cast(Any, None), "x#0", "x", "x", "host", 1)
    session = Hostile(ctx, target=f"http://h/{HOSTILE}")
    session.badges = (HOSTILE,)
    view = session.view()
    texts = [
        view.target,
        *view.badges,
        *view.output_tail,
        *(value for _, value in view.counters),
        *(t for pair in view.details for t in pair),
    ]
    assert len(texts) == 6
    for text in texts:
        assert not CONTROLS.search(text), text
        assert "␛]0;OWNED␇" in text and "\\x9b6n" in text
