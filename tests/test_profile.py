"""Profiles: good and bad fixtures, errors naming file, line and key, bundled profiles."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from console.profile import ProfileError, bundled_profiles, load_profile, load_profile_text

DATA = Path(__file__).parent / "data"
pytestmark = pytest.mark.usefixtures("fake_kind")


def issues_of(name: str) -> list[str]:
    with pytest.raises(ProfileError) as caught:
        load_profile(DATA / "bad" / name)
    return [str(i) for i in caught.value.issues]


def test_good_profile_reads_every_table() -> None:
    profile = load_profile(DATA / "good" / "fake_full.toml")
    assert profile.name == "fake-full"
    assert profile.run.duration == 1.5 and profile.run.seed == 7
    (group,) = profile.groups
    assert group.config.name == "tick" and group.config.count == 4
    assert group.config.interval == pytest.approx(0.02)  # type: ignore[attr-defined]
    (fault,) = profile.faults
    assert fault.times == (0.3, 0.9) and fault.pick == 2 and fault.params == {"down": 0.1}
    assert [c.scope for c in profile.criteria] == ["run", "recovery"]
    assert profile.criteria[0].threshold.target == 2000
    assert profile.keys == {"kill": "K"}


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [
        (
            "typo.toml",
            "typo.toml:7: fake[0].intervall: unknown key 'intervall' (did you mean 'interval'?)",
        ),
        ("unit.toml", "unit.toml:2: run.duration: bad duration '5 parsecs'"),
        ("type.toml", "type.toml:5: fake[0].count: expected a whole number, got 'three'"),
        (
            "metric.toml",
            "metric.toml:8: criteria[0].metric: no session in this profile produces 'http_req_duration'",
        ),
        (
            "threshold.toml",
            "threshold.toml:9: criteria[0].threshold: 'p(95)' does not apply to fake_samples",
        ),
        (
            "fault.toml",
            "fault.toml:9: faults[0].action: unknown action 'fake.dorp' (did you mean 'fake.drop'?)",
        ),
        ("syntax.toml", "syntax.toml:2: not valid TOML"),
        ("table.toml", "table.toml:1: runn: unknown table 'runn' (did you mean 'run'?)"),
    ],
)
def test_bad_profiles_name_file_line_and_key(fixture: str, expected: str) -> None:
    found = issues_of(fixture)
    assert any(expected in line for line in found), found


def test_all_problems_are_reported_at_once() -> None:
    text = '[run]\nduration = "x"\n[[fake]]\ncount = 0\nbogus = 1\n'
    with pytest.raises(ProfileError) as caught:
        load_profile_text(text, path="p.toml")
    keys = [i.key for i in caught.value.issues]
    assert keys == ["run.duration", "fake[0].count", "fake[0].bogus"] or set(keys) >= {
        "run.duration",
        "fake[0].bogus",
    }


def test_fault_target_and_params_are_checked() -> None:
    text = (
        '[[fake]]\nname = "t"\ncount = 2\n[[faults]]\nat = "1s"\naction = "fake.drop"\ntarget = "t#5"\n'
        "params = { donw = 1 }\n"
    )
    with pytest.raises(ProfileError) as caught:
        load_profile_text(text, path="p.toml")
    text_out = str(caught.value)
    assert "p.toml:7: faults[0].target" in text_out
    assert (
        "p.toml:8: faults[0].params.donw: unknown parameter 'donw' (did you mean 'down'?)"
        in text_out
    )


def test_recovery_criterion_needs_a_known_action_and_within() -> None:
    text = '[[fake]]\n[[criteria]]\nafter = "fake.dorp"\nthreshold = "rate>=90%"\n'
    with pytest.raises(ProfileError) as caught:
        load_profile_text(text, path="p.toml")
    assert {i.key for i in caught.value.issues} == {"criteria[0].within", "criteria[0].after"}


def test_unknown_bundled_name_lists_the_bundled_ones() -> None:
    with pytest.raises(ProfileError, match=r"Bundled: .*demo"):
        load_profile("no-such-profile")


def test_bundled_profiles_are_valid() -> None:
    paths = bundled_profiles()
    assert {"demo", "pty-stability"} <= {p.stem for p in paths}
    for path in paths:
        assert load_profile(path.stem).path == path


def test_validate_command_exits_2_without_traceback() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "console", "validate", str(DATA / "bad" / "syntax.toml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "syntax.toml:2" in proc.stderr and "Traceback" not in proc.stderr


def test_keys_table_names_real_binding_ids() -> None:
    with pytest.raises(ProfileError) as caught:
        load_profile_text('[[fake]]\n[keys]\nkil = "ctrl+x"\n', path="k.toml")
    assert "k.toml:3: keys.kil: 'kil' is not a console binding id (did you mean 'kill'?)" in str(
        caught.value
    )


def test_modal_keys_are_in_the_one_table_and_remappable() -> None:
    p = load_profile_text(
        '[[fake]]\n[keys]\n"detail.back" = "b"\n"quit.yes" = "ctrl+y"\n', path="k.toml"
    )
    assert p.keys == {"detail.back": "b", "quit.yes": "ctrl+y"}


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ('kill = "q"', "k.toml:3: keys.kill: 'q' is already the key of 'quit'; remap that"),
        ('"grid.up" = "ctrl+k"', "keys.grid.up: 'ctrl+k' is already the key of 'kill'"),
        ('"quit.no" = "y"', "keys.quit.no: 'y' is already the key of 'quit.yes'"),
        ('export = "ctrl+p"', "keys.export: 'ctrl+p' is Textual's own key"),
        ('kill = ""', "keys.kill: expected a key name such as \"ctrl+k\", got ''"),
    ],
)
def test_keymaps_that_would_lose_a_binding_are_errors(keys: str, message: str) -> None:
    with pytest.raises(ProfileError) as caught:
        load_profile_text(f"[[fake]]\n[keys]\n{keys}\n", path="k.toml")
    assert message in str(caught.value)


def test_swapping_two_keys_is_fine() -> None:
    p = load_profile_text('[[fake]]\n[keys]\nkill = "q"\nquit = "K"\n', path="k.toml")
    assert p.keys == {"kill": "q", "quit": "K"}


def test_a_faults_panel_key_may_not_shadow_an_app_key() -> None:
    """The focused faults panel's keys and the app's are live at once: "d" there would take
    Drop away whenever the panel has the focus."""
    with pytest.raises(ProfileError) as caught:
        load_profile_text('[[fake]]\n[keys]\n"faults.newer" = "d"\n', path="k.toml")
    assert "k.toml:3: keys.faults.newer: 'd' is already the key of 'drop'" in str(caught.value)
    load_profile_text('[[fake]]\n[keys]\n"faults.newer" = "u"\n', path="k.toml")  # a free key


def test_console_table_sets_bulk_confirmation_and_rejects_what_is_not_a_bool() -> None:
    assert load_profile_text("[[fake]]\n", path="c.toml").console.confirm_bulk is True
    quiet = load_profile_text("[[fake]]\n[console]\nconfirm_bulk = false\n", path="c.toml")
    assert quiet.console.confirm_bulk is False
    with pytest.raises(ProfileError) as caught:
        load_profile_text('[[fake]]\n[console]\nconfirm_bulk = "no"\n', path="c.toml")
    assert "c.toml:3: console.confirm_bulk: expected true or false" in str(caught.value)
    with pytest.raises(ProfileError) as caught:
        load_profile_text("[[fake]]\n[console]\nconfirm = true\n", path="c.toml")
    assert "c.toml:3: console.confirm: unknown key 'confirm'" in str(caught.value)


def test_no_destructive_key_is_one_shift_away_from_a_movement_key() -> None:
    """``K`` killed the focused program when the operator meant ``k`` (up) with shift held."""
    from console.bindings import APP_KEYS, GRID_KEYS

    moves = {k.strip() for spec in GRID_KEYS for k in spec.key.split(",")}
    shifted = {m.upper() for m in moves if len(m) == 1} | {f"shift+{m}" for m in moves}
    destructive = {"kill", "kill_all", "drop", "drop_all", "restart", "restart_all", "hang_all"}
    for spec in APP_KEYS:
        if spec.id in destructive:
            assert not {k.strip() for k in spec.key.split(",")} & shifted, spec
