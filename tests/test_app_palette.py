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


async def test_the_footer_shows_the_keys_of_the_profiles_kinds_and_always_help_and_quit() -> None:
    from textual.widgets._footer import FooterKey

    app = make_app(snapshot=synthetic_snapshot(ssh=0, pty=0, http=2), show_log=False)
    async with app.run_test(size=(80, 24)) as pilot:

        def visible() -> set[str]:
            return {
                k.description
                for k in app.query(FooterKey)
                if k.region.width and k.region.right <= 80
            }

        # The footer lays out after its keys mount: wait for the layout, not a fixed pause.
        await until(pilot, lambda: {"Help", "Quit"} <= visible(), "help and quit on screen")
        shown = [k.description for k in app.query(FooterKey)]
        assert {"Rate +", "Rate -"} <= set(shown), shown
        assert not {"Kill", "Drop", "Hang"} & set(shown), shown  # no PTY, no SSH


@pytest.mark.parametrize("width", [80, 100, 120, 160])
async def test_the_footer_shows_whole_keys_only(width: int) -> None:
    """A key past the edge is left out, not cut (a bare ``b`` at 120, ``p Pau`` at 80): every
    key on the row ends before the palette's key, and the next one would not have fitted."""
    from textual.widgets import Footer
    from textual.widgets._footer import FooterKey

    app = make_app(snapshot=synthetic_snapshot(), show_log=True)
    async with app.run_test(size=(width, 30)) as pilot:
        footer = app.screen.query_one(Footer)

        def keys() -> list[FooterKey]:
            return [k for k in footer.query(FooterKey) if not k.has_class("-command-palette")]

        def laid_out() -> bool:
            return bool(keys()) and all(k.region.width for k in footer.query(FooterKey))

        await until(pilot, laid_out, "the footer laid out")
        (palette,) = footer.query(FooterKey).filter(".-command-palette")
        shown = keys()
        assert all(k.region.right <= palette.region.x for k in shown), [
            (k.description, k.region) for k in shown
        ]
        assert {"Help", "Quit"} <= {k.description for k in shown}
        if width < 160:
            assert len(shown) < len(app.screen.active_bindings), "some keys left out"


async def test_a_screenshot_goes_to_the_run_directory(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from dataclasses import replace

    snapshot = replace(synthetic_snapshot(ssh=1, pty=1, http=1), run_dir=str(tmp_path))
    app = make_app(snapshot=snapshot, show_log=False)
    async with app.run_test(size=(100, 30)) as pilot:
        from tests.console_harness import record_notifications

        told = record_notifications(app)
        app.action_screenshot(filename="shot.svg")
        shot = tmp_path / "shot.svg"
        # Written by Textual's thread, which then tells the app: wait for both (the whole file,
        # and the thread done with the app) so it never calls into a closed loop later.
        await until(
            pilot, lambda: shot.exists() and "</svg>" in shot.read_text(), "the screenshot file"
        )
        await until(pilot, lambda: len(told) >= 1, f"the saved-screenshot note, got {told}")
    assert "<svg" in shot.read_text()[:2000]


async def test_the_command_line_completes_verbs_targets_and_parameters() -> None:
    from textual.widgets import Input

    from widgets import CommandLineScreen

    app = make_app(snapshot=synthetic_snapshot(ssh=2, pty=2, http=1), show_log=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("colon")
        await until(pilot, lambda: isinstance(app.screen, CommandLineScreen), "the : line")
        box = app.screen.query_one(Input)
        await pilot.press("d", "r")
        await until(pilot, lambda: box._suggestion == "drop", "drop suggested")
        await pilot.press("tab", "space", "s", "s", "h", "number_sign")
        await until(pilot, lambda: box._suggestion == "drop ssh#0", "a session suggested")
        await pilot.press("tab")
        assert box.value == "drop ssh#0"
        await pilot.press("escape")
        await pilot.press("colon", *"burst upload ")
        box = app.screen.query_one(Input)
        await until(pilot, lambda: box._suggestion == "burst upload count=", "its parameter")
        await pilot.press("escape")
        assert not isinstance(app.screen, CommandLineScreen)


@pytest.mark.slow
async def test_a_typed_fault_is_recorded_with_source_command(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.console_harness import quit_app, real_app, running, snap

    app = real_app(tmp_path)
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await running(pilot, app)
            await pilot.press("colon", *"kill emit#1", "enter")
            await until(
                pilot,
                lambda: any(f.source == "command" for f in snap(app).faults),
                "the typed kill",
            )
            (fault,) = snap(app).faults
            assert (fault.action, fault.sessions, fault.source) == (
                "pty.kill",
                ("emit#1",),
                "command",
            )
            await pilot.press("colon", *"hang emit#0 nonsense", "enter")
            await pilot.pause(0.3)
            assert len(snap(app).faults) == 1  # refused with a message, nothing injected
            await quit_app(pilot, app)
    finally:
        assert app.controller is not None
        app.controller.stop()
        app.controller.result(timeout=15)


async def test_slash_filters_the_panes_and_the_event_log_with_completion() -> None:
    from textual.widgets import Input

    from widgets import CommandLineScreen, EventLogPanel, SessionGrid

    app = make_app(snapshot=synthetic_snapshot(ssh=3, pty=5, http=2), show_log=True)
    async with app.run_test(size=(160, 48)) as pilot:
        grid = app.query_one(SessionGrid)
        await pilot.press("slash")
        await until(pilot, lambda: isinstance(app.screen, CommandLineScreen), "the / line")
        box = app.screen.query_one(Input)
        await pilot.press("f", "a")
        await until(pilot, lambda: box._suggestion == "fail", "fail suggested")
        await pilot.press("tab", "enter")
        await until(pilot, lambda: not isinstance(app.screen, CommandLineScreen), "closed")
        failing = {s.id for s in grid._sessions}
        states = {s.id: s.state for s in app.snapshot.sessions}  # type: ignore[union-attr]
        assert failing and all(
            states[i] in ("failed", "crashed", "reconnecting", "hung", "exited", "restarting")
            for i in failing
        ), failing
        assert len(failing) < len(states)
        await pilot.press("slash", *"ssh", "enter")
        await until(pilot, lambda: grid.filter_text == "ssh", "the ssh filter")
        assert {s.kind for s in grid._sessions} == {"ssh"}
        log = app.query_one(EventLogPanel)
        assert log.log_filter == ("text", "ssh")
        assert log.lines and all("ssh" in line.text.lower() for line in log.lines)
        await pilot.press("slash", "ctrl+u", "enter")  # empty: everything again
        await until(pilot, lambda: grid.filter_text == "", "the filter cleared")
        assert len(grid._sessions) == len(states)


async def test_double_clicking_a_pane_opens_its_detail() -> None:
    from widgets import SessionDetailScreen, SessionGrid

    app = make_app(snapshot=synthetic_snapshot(ssh=2, pty=2, http=1), show_log=False)
    async with app.run_test(size=(160, 48)) as pilot:
        grid = app.query_one(SessionGrid)
        box = grid._boxes["emit#1"]
        await pilot.click(SessionGrid, offset=(box.left + 2, box.top + 1), times=2)
        await until(pilot, lambda: isinstance(app.screen, SessionDetailScreen), "the detail")
        assert grid.focused_id == "emit#1"


async def test_the_criteria_panel_says_how_many_more_and_scrolls() -> None:
    from dataclasses import replace

    from console.snapshot import CriterionSnapshot
    from widgets import CriteriaPanel

    many = tuple(
        CriterionSnapshot(
            name=f"criterion {i}",
            expression="p(95)<2000",
            metric="m",
            scope="run",
            state="pass",
            value=1.0,
            value_text="1ms",
            target_text="< 2s",
        )
        for i in range(30)
    )
    app = make_app(snapshot=replace(synthetic_snapshot(), criteria=many), show_log=False)
    async with app.run_test(size=(120, 40)) as pilot:
        panel = app.query_one(CriteriaPanel)
        await until(pilot, lambda: "more" in str(panel.border_title), "+N more")
        assert panel.can_focus
        panel.focus()
        await pilot.press("end")
        await until(pilot, lambda: str(panel.border_title) == "criteria", "all in view")
