"""Text from a run file shown as it is: every character that would not show as itself, as an escape."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from recorder import NAME_MAX_LENGTH

#: A backslash that reads as the start of an escape: the text ``c\u200b1`` would look like ``c`` + U+200B + ``1``
#: shown escaped, so a text holding one is shown escaped, its backslashes doubled.
ESCAPE_LIKE = re.compile(r"\\([\\ntr]|x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|N\{)")

#: Printable characters that show as nothing: Unicode's default-ignorable ones that Python counts as printable
#: (the combining grapheme joiner, the Hangul fillers, Khmer's inherent vowels, Mongolian's variation selectors,
#: the variation selectors) and the Braille blank. ``c3`` + U+034F read exactly as ``c3`` (QA).
INVISIBLE = re.compile("[\u034f\u115f\u1160\u17b4\u17b5\u180b-\u180d\u180f\u2800\u3164\ufe00-\ufe0f\uffa0\U000e0100-\U000e01ef]")

#: Spaces that cannot be counted by eye: at either end of a text, or after another space.
HIDDEN_SPACE = re.compile(r"^ | $|(?<= ) ")


#: The longest name (client id, layer, metric or attachment name) a report shows whole: the recorder's limit, so that
#: only a run of another writer has names shown cut (a client id of 100,000 characters printed 58,000 lines in the
#: terminal and 2.8 MB of the HTML, a review); the JSON report keeps them as the run holds them.
NAME_SHOWN = NAME_MAX_LENGTH

#: The names longer than :data:`NAME_SHOWN` that :func:`shown` cuts, longest first (:func:`long_names`).
_LONG_NAMES: ContextVar[tuple[str, ...]] = ContextVar("long_names", default=())


def cut_name(name: str) -> str:
    """``name``'s first :data:`NAME_SHOWN` characters and how many are left out, with a digest of the whole: two long
    ids that begin alike do not read the same."""
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    return (f"{name[:NAME_SHOWN]}… [{len(name) - NAME_SHOWN:,} more characters, sha256 {digest}…: the JSON report and "
            "the run file hold it whole]")


@contextmanager
def long_names(names: Iterable[str]) -> Iterator[None]:
    """Within the block, :func:`shown` writes each of ``names`` longer than :data:`NAME_SHOWN` as :func:`cut_name`
    does, wherever it stands in a text (an id in a list, a layer in an evidence line)."""
    token = _LONG_NAMES.set(tuple(sorted({n for n in names if len(n) > NAME_SHOWN}, key=len, reverse=True)))
    try:
        yield
    finally:
        _LONG_NAMES.reset(token)


def shown(text: str) -> str:
    """``text`` with each character Unicode counts as *other* or *separator* written as its Python escape
    (``\\n``, ``\\x1b``, ``\\u200b``): controls, format characters (zero-width spaces and joiners, the soft
    hyphen, bidirectional marks and overrides, the byte-order mark), line and paragraph separators, and every
    space but the ASCII one (``str.isprintable``); the printable characters that show as nothing
    (:data:`INVISIBLE`); and an ASCII space at either end of the text or after another space, as ``\\x20``
    (``c4`` and ``c4`` + a space, one malicious and one benign, read the same; an id of one space showed nothing).

    Within :func:`long_names`, the names it was given that are longer than :data:`NAME_SHOWN` are shown cut.

    A newline in a client id split its row in two, an ANSI escape recoloured report lines, U+202E reversed
    the text after an id, and an id ending in a zero-width space read exactly as the honest client's id
    in the row beside it.

    Text that Unicode's canonical composition (NFC) would change has the characters it changes written as
    escapes too: the combining marks (``cafe`` followed by U+0301 looked exactly like the precomposed ``café`` of
    another client) and the characters composition replaces (the Kelvin sign U+212A is a ``K``, the ohm sign
    U+2126 an ``Ω``), and the characters that compose with a neighbour (Hangul's conjoining jamo U+1100 U+1161
    read as the syllable U+AC00). Text already in that form (as typed, most text is) keeps its accents and the
    vowel signs of scripts that write with them.

    Shown escaped, a text has every backslash of its own doubled (``\\\\``), and a text with a backslash that
    reads as an escape (``\\u200b``, ``\\n``, ``\\\\``) is shown escaped: the eight characters ``c\\u200b1`` were
    shown exactly as the id ``c`` + U+200B + ``1``, one malicious and one benign (QA). A backslash elsewhere
    (``DOMAIN\\user``) is shown as it is.
    """
    if len(text) > NAME_SHOWN:
        for name in _LONG_NAMES.get():
            text = text.replace(name, cut_name(name))
    composed = unicodedata.is_normalized("NFC", text)
    hidden = {m.start() for m in HIDDEN_SPACE.finditer(text)}
    if text.isprintable() and composed and not hidden and not ESCAPE_LIKE.search(text) and not INVISIBLE.search(text):
        return text

    def changed(stretch: str) -> bool:
        return unicodedata.normalize("NFC", stretch) != stretch

    def plain(i: int, c: str) -> bool:
        if not c.isprintable() or c == "\\" or INVISIBLE.match(c):  # a backslash: doubled, as unicode_escape writes it
            return False
        if composed:
            return True
        return not (unicodedata.combining(c) or changed(c) or changed(text[max(i - 1, 0) : i + 1]) or changed(text[i : i + 2]))

    def escaped(i: int, c: str) -> str:
        if i in hidden:
            return "\\x20"
        return c if plain(i, c) else c.encode("unicode_escape").decode("ascii")

    return "".join(escaped(i, c) for i, c in enumerate(text))
