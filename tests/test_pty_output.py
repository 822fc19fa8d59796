"""SessionOutput's tail: computed again when output arrives, reused while none does."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from console.sanitize import clean
from console.sessions.pty.output import LINE_LIMIT, SessionOutput, text_lines


def test_the_tail_follows_new_output_and_is_reused_while_there_is_none() -> None:
    out = SessionOutput(display_bytes=4096, path=None)
    out.feed(b"one\r\ntwo\r\n")
    first = out.tail(5)
    assert first == ("one", "two")
    assert out.tail(5) is first  # nothing new: the same tuple, not a new scan
    out.feed(b"three\r\n")
    assert out.tail(5) == ("one", "two", "three")
    assert out.tail(1) == ("three",)  # another size is not served from the cache
    out.feed(b"\x1b[31mred\x1b[0m \x1b]0;title\x07\r\n")
    assert out.tail(1) == ("red ␛]0;title␇",)


def test_text_lines_keeps_the_last_lines_of_a_long_window() -> None:
    raw = b"".join(b"line %d\r\n" % i for i in range(500)) + b"partial"
    assert text_lines(raw, 3) == ("line 498", "line 499", "partial")
    assert text_lines(b"a\r\nb\r\n", 20) == ("a", "b")
    assert text_lines(b"", 3) == ()


def _reference_lines(raw: bytes, keep: int) -> tuple[str, ...]:
    """text_lines as it was before its plain-output shortcut: every line cleaned on its own."""
    lines = []
    for line in raw.decode("utf-8", "replace").split("\n")[-keep - 1 :]:
        line = line.rstrip("\r").rsplit("\r", 1)[-1]
        lines.append(clean(line, drop_style=True, limit=LINE_LIMIT))
    if lines and not lines[-1]:
        lines.pop()
    return tuple(lines[-keep:])


@settings(max_examples=300)
@given(
    st.lists(
        st.sampled_from([b"a", b"xyz ", b"\r", b"\n", b"\r\n", b"\x1b[31m", b"\x1b]0;t\x07",
                         b"\t", b"\xc3\xa9", b"\xff", b"\xe2\x80\xae", b"x" * 600]),
        max_size=60,
    ),
    st.integers(1, 25),
)  # fmt: skip
def test_the_plain_output_shortcut_shows_what_line_by_line_cleaning_shows(
    parts: list[bytes], keep: int
) -> None:
    raw = b"".join(parts)
    assert text_lines(raw, keep) == _reference_lines(raw, keep)
