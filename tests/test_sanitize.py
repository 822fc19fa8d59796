"""The sanitizer: no control character survives, escape sequences show as text, length is bounded."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from console.sanitize import LIMIT, all_unchanged, clean, clean_data
from console.sessions.pty.output import text_lines

# What must never reach a terminal: C0 (tab and newline excepted where allowed), DEL, C1.
FORBIDDEN = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
FORBIDDEN_MULTILINE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)

# Text rich in what hosts send: escape introducers, terminators, C1 controls, plain letters.
hostile = st.text(
    alphabet=st.sampled_from(
        list("\x1b\x07\x9b\x9d\x90\x9c[]P\\c(#78;05m\t\n\r\x00\x7f\u202eaé漢")
    ),
    max_size=300,
)


@settings(max_examples=400)
@given(st.one_of(st.text(max_size=400), hostile), st.booleans(), st.booleans())
def test_nothing_that_acts_on_a_terminal_survives(text: str, multiline: bool, style: bool) -> None:
    out = clean(text, multiline=multiline, drop_style=style)
    assert FORBIDDEN_MULTILINE.search(out) is None
    assert "\t" not in out
    if not multiline:
        assert FORBIDDEN.search(out) is None
    assert clean(out, multiline=multiline) == out  # idempotent: cleaning twice changes nothing


@given(st.text(min_size=0, max_size=5000), st.integers(min_value=1, max_value=1000))
def test_length_is_bounded(text: str, limit: int) -> None:
    out = clean(text, limit=limit)
    assert len(out) <= limit + len(f"…(+{len(text) * 4})")


@given(st.recursive(st.text(max_size=50), lambda inner: st.lists(inner, max_size=4), max_leaves=20))
def test_data_holds_no_controls_but_newlines(value: object) -> None:
    def strings(v: object) -> list[str]:
        return [v] if isinstance(v, str) else [s for item in v for s in strings(item)]  # type: ignore[attr-defined]

    for s in strings(clean_data({"last_lines": value})["last_lines"]):
        assert FORBIDDEN_MULTILINE.search(s) is None


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("\x1b]0;pwned\x07", "␛]0;pwned␇"),  # OSC 0, BEL-terminated: a title change
        ("\x1b]52;c;aGk=\x1b\\", "␛]52;c;aGk=␛\\"),  # OSC 52, ST-terminated: a clipboard write
        ("\x1bPq#0\x1b\\", "␛Pq#0␛\\"),  # DCS
        ("\x1bX sos \x1b\\ \x1b^pm\x1b\\ \x1b_apc\x1b\\", "␛X sos ␛\\ ␛^pm␛\\ ␛_apc␛\\"),
        ("\x1bc", "␛c"),  # full reset
        ("\x1b(0\x1b)B", "␛(0␛)B"),  # charset designations
        ("\x1b#8", "␛#8"),  # screen alignment test (fills the screen with E)
        ("\x1b7x\x1b8", "␛7x␛8"),  # save / restore cursor
        ("\x1b[2J\x1b[H", "␛[2J␛[H"),  # CSI clear screen
        ("\x9b2J \x9d0;t\x9c", "\\x9b2J \\x9d0;t\\x9c"),  # 8-bit CSI, OSC, ST
        ("bell\x07 bs\x08 del\x7f nul\x00", "bell␇ bs␈ del␡ nul␀"),
        ("a\tb", "a       b"),  # tabs readable, as spaces to the next stop
        ("x\r\ny", "x␍␊y"),
        ("abc\u202edef", "abc\\u202edef"),  # a bidi override would reorder the line
        ("plain text, ünïcödé 漢字", "plain text, ünïcödé 漢字"),
    ],
)
def test_sequences_are_shown_not_obeyed(raw: str, shown: str) -> None:
    assert clean(raw) == shown


def test_newlines_stay_only_when_asked() -> None:
    assert clean("one\ntwo", multiline=True) == "one\ntwo"
    assert clean("one\ntwo") == "one␊two"


def test_output_tails_drop_colours_and_show_everything_else() -> None:
    raw = b"\x1b[1;31merror\x1b[0m: disk\n\x1b]0;owned\x07prompt$ \r\n\x1bcnext\n50%\r100%\n"
    assert text_lines(raw, 10) == ("error: disk", "␛]0;owned␇prompt$ ", "␛cnext", "100%")


def test_long_text_says_how_much_was_cut() -> None:
    out = clean("x" * (LIMIT + 10))
    assert out == "x" * LIMIT + "…(+10)"


@given(st.lists(st.one_of(st.text(max_size=60), hostile), max_size=8), st.integers(1, 80))
def test_all_unchanged_only_when_clean_changes_nothing(texts: list[str], limit: int) -> None:
    # One way only: a text isprintable() rejects may still be one clean() leaves alone (a
    # no-break space), and then the slow path runs for nothing, which is only slower.
    if all_unchanged(texts, limit):
        assert all(clean(t, limit=limit) == t for t in texts)
