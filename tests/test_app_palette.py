"""The command palette finds every action of the key table by typing, with its key."""

from __future__ import annotations

import pytest
from textual.command import CommandList, CommandPalette

from console.bindings import APP_KEYS
from console.ui.app import make_app
from tests.console_harness import until
from tests.synthetic_run import synthetic_snapshot

# Help opens a modal and quit asks first: the rest must all be found by their words.
ACTIONS = [spec for spec in APP_KEYS if spec.id not in ("quit",)]


async def _search(pilot, app, text: str) -> list[str]:  # type: ignore[no-untyped-def]
    await pilot.press("ctrl+p")
    await until(pilot, lambda: isinstance(app.screen, CommandPalette), "the palette")
    await pilot.press(*text)
    results = app.screen.query_one(CommandList)
    await until(pilot, lambda: results.option_count > 0, f"a match for {text!r}")
    await pilot.pause(0.2)  # the search streams its hits in
    found = [str(results.get_option_at_index(i).prompt) for i in range(results.option_count)]
    await pilot.press("escape")
    await until(pilot, lambda: not isinstance(app.screen, CommandPalette), "palette closed")
    return found


@pytest.mark.parametrize("word", ["drop", "kill", "hang", "burst", "export", "filter", "rate"])
async def test_typing_a_word_finds_its_action_with_its_key(word: str) -> None:
    app = make_app(snapshot=synthetic_snapshot(ssh=2, pty=2, http=1), show_log=True)
    async with app.run_test(size=(120, 40)) as pilot:
        found = await _search(pilot, app, word)
        specs = [s for s in ACTIONS if word in s.description.lower() or word in s.id]
        assert specs
        for spec in specs:
            assert any(spec.description in line for line in found), (spec.id, found)


async def test_the_palette_runs_the_action_it_found() -> None:
    app = make_app(snapshot=synthetic_snapshot(ssh=2, pty=2, http=1), show_log=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("ctrl+p")
        await until(pilot, lambda: isinstance(app.screen, CommandPalette), "the palette")
        await pilot.press(*"Help")
        results = app.screen.query_one(CommandList)
        await until(pilot, lambda: results.option_count > 0, "Help found")
        await pilot.press("enter")
        from widgets import HelpScreen

        await until(pilot, lambda: isinstance(app.screen, HelpScreen), "help opened")
