"""Client ids as people type them: which of two spellings name the same client."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence


def _spelling(cid: str) -> str:
    # NFKC first: 'ü' typed as u + a combining mark (macOS file names) and full-width '００７' spell 'ü' and '007'
    return "".join(c for c in unicodedata.normalize("NFKC", cid).casefold() if c.isalnum())


def spelled_alike(ids: Sequence[str], clients: Sequence[str]) -> dict[str, str]:
    """Each of ``ids`` that a client of ``clients`` spells alike (the same letters and digits, case, spaces,
    punctuation and Unicode's compatible forms aside; an id of none spells nothing), with that client (the caller
    leaves out the attackers the truth names already): a truth naming ``site3`` where the run has ``site 3``
    scored the attacked run as clean, its one hint "not in the run: 'site3'" (red team)."""
    if not ids:
        return {}
    known: dict[str, str] = {}
    for cid in clients:
        if spelling := _spelling(cid):  # an id of no letter or digit spells nothing (review: '★' was '☆')
            known.setdefault(spelling, cid)
    return {cid: known[spelling] for cid in ids if (spelling := _spelling(cid)) and spelling in known}
