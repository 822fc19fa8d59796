"""SessionOutput's tail: computed again when output arrives, reused while none does."""

from __future__ import annotations

from console.sessions.pty.output import SessionOutput, text_lines


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
