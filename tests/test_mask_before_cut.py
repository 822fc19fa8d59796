"""Secrets are masked before a text is cut to its length limit.

Cut first, a secret across the limit keeps its head, which no redactor recognises any more:
the event log and the exports mask what they write, but by then only ``s3cret-to…`` is left.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import pytest

from console.engine import Run
from console.profile import load_profile_text
from console.sanitize import LIMIT
from console.secrets import Secrets
from console.sessions.base import Session, SessionContext
from console.snapshot import SessionSnapshot

SECRET = "s3cret-token-123"
STRADDLING = "x" * (LIMIT - 6) + SECRET  # the limit falls inside the secret


@pytest.mark.usefixtures("fake_kind")
def test_an_event_detail_and_data_are_masked_before_they_are_cut(tmp_path: Path) -> None:
    profile = load_profile_text(
        f'[run]\nname = "t"\n[[fake]]\nsecret_token = "{SECRET}"\n', path="t.toml"
    )
    run = Run(profile, runs_dir=tmp_path)
    event = run.make_event(
        "e", session_id=None, host=None, kind="x", detail=STRADDLING, data={"out": STRADDLING}
    )
    run.event_log.close()
    assert SECRET[:5] not in event.detail, event.detail[-30:]
    assert SECRET[:5] not in event.data["out"], event.data["out"][-30:]
    assert event.detail.endswith("***")


class _Talker(Session):
    kind = "x"

    async def run(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def view(self) -> SessionSnapshot:
        return self.make_view(output_tail=(STRADDLING,), details=(("error", STRADDLING),))


def test_a_session_view_is_masked_before_it_is_cut() -> None:
    ctx = SessionContext(
        cast(Any, None), "x#0", "x", "x", "host", 1, secrets=Secrets(values=(SECRET,))
    )
    view = _Talker(ctx, target="t").view()
    for text in (*view.output_tail, view.details[0][1]):
        assert SECRET[:5] not in text, text[-30:]
