"""Per-round tables of one number per client, kept compactly.

A report carries, per detector, a number for every client in every round (its
per-round score; the norms; the most separating slice's timeline). As Python
dictionaries of floats these took about 100 bytes a number, and an analysis of
800 rounds of 200 clients held 0.7 MB a round of them. A :class:`RoundTable`
keeps each round as two arrays (the clients' positions in the run's client list,
and float64 values: 12 bytes a number, the values exactly) and is read as the
mapping ``{round: {client: value}}`` the reports expect, one round at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np


class RoundTable(Mapping[int, dict[str, float]]):
    """``{round: {client: value}}`` stored as an index array and a value array per round.

    ``ids`` is the run's client list (:attr:`fedforensics.run.Run.all_clients`); rows
    are added with the positions of their clients in it (:attr:`RoundData.index`).
    """

    def __init__(self, ids: Sequence[str]) -> None:
        self.ids = ids
        self._rows: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def add(self, round_number: int, index: np.ndarray, values: np.ndarray) -> None:
        """Set round ``round_number``'s values of the clients at ``index``. A NaN is no value and is left out (a
        round of NaN alone is no row); an infinity is kept (a client's loss that diverged)."""
        values = np.asarray(values, dtype=np.float64)
        keep = ~np.isnan(values)
        if keep.any():
            self._rows[round_number] = (index[keep] if not keep.all() else index, values[keep])

    def arrays(self, round_number: int) -> tuple[np.ndarray, np.ndarray]:
        """One round's client positions and values, as stored."""
        return self._rows[round_number]

    def __getitem__(self, round_number: int) -> dict[str, float]:
        index, values = self._rows[round_number]
        return dict(zip([self.ids[i] for i in index], values.tolist()))

    def __iter__(self) -> Iterator[int]:
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)

    def __repr__(self) -> str:
        return f"RoundTable({len(self)} rounds)"


class DeferredJSON:
    """A per-round table's JSON data, made only when a writer reaches it
    (:func:`fedforensics.report.json.write_json` expands them one at a time)."""

    def __init__(self, make: Callable[[], Any]) -> None:
        self.make = make


def rounds_json(rounds: Mapping[int, Mapping[str, float]], deferred: bool, value: Callable[[float], Any] = float) -> Any:
    """``{"round": {client: value(v)}}`` of a per-round table, or, with ``deferred``, a :class:`DeferredJSON` that
    makes it when a writer reaches it."""

    def expand() -> dict[str, dict[str, Any]]:
        return {str(r): {cid: value(v) for cid, v in rounds[r].items()} for r in rounds}

    return DeferredJSON(expand) if deferred else expand()
