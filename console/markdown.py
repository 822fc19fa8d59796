"""Markdown tables for report.md and ``stressdeck diff``: the one cell writer.

Cells carry text from outside (request names, failure messages, session ids, fault targets),
so a cell escapes what would break the table (``|``, line breaks) and what a markdown viewer
would render as HTML (``&``, ``<``, ``>``); a cell that is one code span is shown as it is.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = ["cell", "table"]

_CODE_SPAN = re.compile(r"`[^`]*`")


def cell(text: object) -> str:
    text = str(text).replace("|", "\\|").replace("\n", " ")
    if _CODE_SPAN.fullmatch(text):
        return text
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    """The lines of a table: a header row, its rule, then one line per row."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return lines
