"""Text from outside made safe to draw: no control character reaches the operator's terminal.

Remote hosts and programs under test control much of what Stressdeck shows: SSH disconnect
reasons, banners and stderr, PTY output, HTTP error texts and bodies. Drawn raw, an escape
sequence in them would act on the operator's terminal (retitle it, write the clipboard with
OSC 52, reset it with ``ESC c``, clear it). :func:`clean` is the one place that prevents that.

It *shows* controls instead of deleting them, so an operator can see that a host sent one:

* C0 controls become their Unicode control pictures: ``ESC`` → ``␛``, ``BEL`` → ``␇``,
  ``CR`` → ``␍``, ``LF`` → ``␊`` (unless ``multiline``), DEL → ``␡``.
* C1 controls (U+0080..U+009F, e.g. the 8-bit CSI U+009B) become ``\\x9b``.
* Bidirectional overrides and isolates (U+202A..U+202E, U+2066..U+2069) and the line and
  paragraph separators (U+2028, U+2029) become ``\\u202e`` and so on: they reorder or break
  what a line appears to say.
* Tabs are expanded to spaces (tab stops every 8 columns): a raw tab moves the terminal's
  cursor behind the renderer's back, spaces keep the text aligned and readable.

Every escape sequence is thereby neutralised as a whole, whatever its kind (CSI, OSC ended by
BEL or ST, DCS/SOS/PM/APC strings, ``ESC c``, ``ESC (B``, ``ESC #8``, ``ESC 7``...): once its
``ESC`` (or C1 introducer) and its terminators are pictures, the rest is plain text. No parser
state is needed, so a sequence split across lines or cut short is as harmless as a whole one.

One exception, for output tails only (``drop_style=True``): SGR sequences (``ESC [ ... m``,
colours and bold) are removed, because nearly every program prints them and shown as text they
would bury the output. They only style text; anything else stays visible.

Length is bounded (``limit`` characters, then ``…(+N)`` saying how many were cut), and text
with nothing to neutralise is returned unchanged after one regular-expression scan, which is
what keeps this cheap on output lines. Raw bytes are kept only in the lossless output logs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["LIMIT", "all_unchanged", "clean", "clean_data"]

LIMIT = 2000  # characters kept of one string; an event detail longer than this is not for a pane

_UNSAFE = "\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069"
_UNSAFE_LINE = re.compile(f"[{_UNSAFE}]")
_UNSAFE_MULTILINE = re.compile(f"[{_UNSAFE.replace(chr(10) + '-', chr(11) + '-')}]")
_SGR = re.compile("\x1b\\[[0-9;:]*m")


def _picture(code: int) -> str:
    if code < 0x20:
        return chr(0x2400 + code)
    if code == 0x7F:
        return "\u2421"
    if code <= 0x9F:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}"


_TABLE = {c: _picture(c) for c in (*range(0x20), *range(0x7F, 0xA0))}
_TABLE.update({c: _picture(c) for c in (0x2028, 0x2029, *range(0x202A, 0x202F))})
_TABLE.update({c: _picture(c) for c in range(0x2066, 0x206A)})
del _TABLE[ord("\t")]  # expanded before the table applies
_TABLE_MULTILINE = {c: p for c, p in _TABLE.items() if c != ord("\n")}


def clean(
    text: str, *, multiline: bool = False, drop_style: bool = False, limit: int = LIMIT
) -> str:
    """``text`` with every control character shown, not acted on; at most about ``limit`` long.

    ``multiline`` keeps newlines (for a detail that is several lines by nature);
    ``drop_style`` removes SGR colour sequences (for program output tails).
    """
    if text.isprintable() and len(text) <= limit:
        # Most texts (counters, numbers, plain output lines) have nothing to neutralise, and
        # one C-level scan says so: every character ``clean`` rewrites (controls, tabs, bidi
        # overrides, line and paragraph separators) is one ``isprintable`` rejects.
        return text
    cut = len(text) - limit
    if cut > 0:
        text = text[:limit]
    if drop_style and "\x1b" in text:
        text = _SGR.sub("", text)
    if "\t" in text:
        text = text.expandtabs(8)
    if (_UNSAFE_MULTILINE if multiline else _UNSAFE_LINE).search(text) is not None:
        text = text.translate(_TABLE_MULTILINE if multiline else _TABLE)
    if len(text) > limit:  # tabs became spaces, C1 controls four-character pictures
        cut = max(cut, 0) + len(text) - limit
        text = text[:limit]
    return f"{text}…(+{cut})" if cut > 0 else text


def all_unchanged(texts: Sequence[str], limit: int = LIMIT) -> bool:
    """True when :func:`clean` (single-line, default ``limit``) would return every one of
    ``texts`` as it is; two C-level scans of them all, for a view's hundred short texts."""
    return "".join(texts).isprintable() and max(map(len, texts), default=0) <= limit


def clean_data(value: Any, *, limit: int = LIMIT) -> Any:
    """``value`` with :func:`clean` applied to every string in it (keys, lists, nested maps).

    Newlines stay: data is structured (a traceback, a crash's ``last_lines``), JSON escapes
    them in the log, and nothing draws a data value as raw lines.
    """
    if isinstance(value, str):
        return clean(value, multiline=True, limit=limit)
    if isinstance(value, Mapping):
        return {
            clean(k, limit=limit) if isinstance(k, str) else k: clean_data(v, limit=limit)
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [clean_data(v, limit=limit) for v in value]
    return value
