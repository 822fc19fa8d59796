"""The faults panel: a verdict under each fault, and the selected fault's impact."""

from __future__ import annotations

import dataclasses

from console.snapshot import LedgerEntry, MetricImpact
from console.ui.app import make_app
from tests.synthetic_run import synthetic_snapshot
from widgets.faults import FaultsPanel


def impact(group: str, worst: str, back: float | None, state: str) -> MetricImpact:
    return MetricImpact(group, "p95", "ms", 3.0, 250.0, back, state, "3ms", worst)


def _words(panel: FaultsPanel) -> str:
    """The panel's text as one line: a long line under a fault wraps at the panel's width."""
    return " ".join(panel.plain.split())


async def test_selecting_a_fault_shows_its_impact() -> None:
    snapshot = synthetic_snapshot()
    first, second = snapshot.faults[0], snapshot.faults[1]
    ledger = (
        LedgerEntry(first.id, first.t, first.action, first.target, first.source, first.t,
                    (impact("emit", "250ms", 4.2, "back"),)),
        LedgerEntry(second.id, second.t, second.action, second.target, second.source, None,
                    (impact("ssh", "900ms", None, "not back"),)),
    )  # fmt: skip
    app = make_app(snapshot=dataclasses.replace(snapshot, ledger=ledger))
    async with app.run_test(size=(160, 48)) as pilot:
        panel = app.query_one(FaultsPanel)
        await pilot.pause()
        text = _words(panel)
        assert "recovered in 4.2 s" in text and "not back to baseline after 30 s" in text
        assert "p95 3ms" not in text  # the newest has no entry
        panel.focus()
        await pilot.press("down")  # the fault before it: its impact shows
        text = _words(panel)
        assert "ssh p95 3ms → 900ms, not back" in text and "emit p95 3ms" not in text
        await pilot.press("j")
        text = _words(panel)
        assert "emit p95 3ms → 250ms, back after 4.2 s" in text and "ssh p95 3ms" not in text
        await pilot.press("up")
        assert "ssh p95 3ms → 900ms" in _words(panel)


async def test_the_impact_lines_wrap_again_when_the_panel_is_resized() -> None:
    """They wrap at the panel's width when drawn. Drawn while a narrow terminal hid the panel,
    they wrapped at 20 cells, and widened, the terminal showed them so until a new snapshot
    came, which after the run's end none does."""
    snapshot = synthetic_snapshot()
    newest = snapshot.faults[-1]
    ledger = (
        LedgerEntry(newest.id, newest.t, newest.action, newest.target, newest.source, None,
                    (impact("a-rather-long-group-name", "900ms", None, "not back"),)),
    )  # fmt: skip
    app = make_app(snapshot=dataclasses.replace(snapshot, ledger=ledger))
    async with app.run_test(size=(110, 48)) as pilot:  # below 120 columns: no faults panel
        panel = app.query_one(FaultsPanel)
        await pilot.pause()
        await pilot.resize_terminal(200, 48)
        await pilot.pause()
        await pilot.pause()
        assert "a-rather-long-group-name p95" in _words(panel)
        room = panel.scrollable_content_region.width
        under = [text for text in panel.texts if text.plain.startswith("    ")]  # the impact
        widest = max(text.cell_len for text in under)
        assert room - 25 < widest <= room, (room, panel.plain)  # wrapped at this width
