"""Text from a run file shown as it is: every character that would not show as itself, as an escape."""

from __future__ import annotations

import unicodedata


def shown(text: str) -> str:
    """``text`` with each character Unicode counts as *other* or *separator* written as its Python escape
    (``\\n``, ``\\x1b``, ``\\u200b``): controls, format characters (zero-width spaces and joiners, the soft
    hyphen, bidirectional marks and overrides, the byte-order mark), line and paragraph separators, and every
    space but the ASCII one (``str.isprintable``).

    A newline in a client id split its row in two, an ANSI escape recoloured report lines, U+202E reversed
    the text after an id, and an id ending in a zero-width space read exactly as the honest client's id
    in the row beside it.

    Text that Unicode's canonical composition (NFC) would change has its combining marks written as escapes
    too: ``cafe`` followed by U+0301 looked exactly like the precomposed ``café`` of another client. Text already
    in that form (as typed, most text is) keeps its accents and the vowel signs of scripts that write with them.
    """
    composed = unicodedata.is_normalized("NFC", text)
    if text.isprintable() and composed:
        return text
    return "".join(
        c if c.isprintable() and (composed or not unicodedata.combining(c)) else c.encode("unicode_escape").decode("ascii")
        for c in text
    )
