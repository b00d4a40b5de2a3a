"""The last global update, round by round, on a grid of sampled coordinates: what a round's clients were sent
minus what the previous recorded round's were (the server's last step), read once a round for every detector."""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

import numpy as np

from ..errors import RunFormatError
from ..run import Run
from .level import LevelDetector
from .grid import grid_key, grid_sample, grid_width, sample_columns
from .round_data import RoundData


class GlobalSteps:
    """The server's last step before each round, on one grid of sampled coordinates (:func:`~.grid.sample_columns`):
    :meth:`step` once a round, in round order. The round's global model is read once for every
    detector of the same grid (4 MB for a million float32 parameters), through :attr:`RoundData.shared`."""

    def __init__(self, run: Run, columns: list[tuple[str, slice]]) -> None:
        self._run = run
        self.columns = columns
        #: The grid as a key of :attr:`RoundData.shared`.
        self.grid = grid_key(columns)
        self._previous: np.ndarray | None = None
        #: Rounds whose global model could not be read (their step and the next round's are unknown).
        self.unreadable: list[int] = []
        #: Rounds whose global model held NaN/Inf on the grid (their step and the next round's are not compared).
        self.nonfinite: list[int] = []

    def step(self, data: RoundData) -> np.ndarray | None:
        """This round's global model minus the previous round's on the grid; ``None`` in the first round and next
        to a round whose global model could not be read."""
        key = ("global sample", self.grid)
        if key not in data.shared:
            try:
                state = self._run.global_state(data.round)
                data.shared[key] = np.concatenate(
                    [np.asarray(state[name]).reshape(-1)[cols] for name, cols in self.columns]
                ).astype(np.float64)
            except RunFormatError:  # this input alone: the other detectors can still audit the run
                data.shared[key] = None
        current = data.shared[key]
        if current is None:
            self.unreadable.append(data.round)
        elif not np.isfinite(current).all():  # a step into or out of it is NaN/Inf: no direction to compare with
            self.nonfinite.append(data.round)
            current = None
        previous, self._previous = self._previous, current
        return None if previous is None or current is None else current - previous

    def note(self) -> str:
        """Which rounds' global models could not be read or held NaN/Inf, for a detector's note ('' if none)."""
        notes = [
            f"the global model of {len(rounds)} round(s) {what} ({_shown(rounds)}): {compared}"
            for rounds, what, compared in (
                (self.unreadable, "could not be read", "not compared"),
                (self.nonfinite, "held NaN/Inf", "the steps into and out of them not compared"),
            )
            if rounds
        ]
        return "; ".join(notes)


def _shown(rounds: list[int]) -> str:
    return ", ".join(map(str, rounds[:5])) + (" ..." if len(rounds) > 5 else "")


class LastStepDetector(LevelDetector):
    """Base of the level detectors that compare each round's updates with the server's last step (:meth:`compare`),
    on up to ``coordinates`` evenly spaced coordinates of the analysable layers, from the second recorded round, in
    rounds of at least ``min_clients`` clients whose global model was finite. A subclass sets ``coordinates`` and
    ``min_clients`` in ``__init__`` as well."""

    coordinates: int
    min_clients: int
    reads_global_model = True

    def start(self, run: Run) -> None:
        super().start(run)
        self._columns = sample_columns(run.analysable_layers, self.coordinates)
        self._width = grid_width(self._columns)
        self._steps = GlobalSteps(run, self._columns)

    def observe(self, data: RoundData) -> None:
        if not self._width:
            return
        step = self._steps.step(data)
        if step is None or data.global_nonfinite or len(data.clients) < self.min_clients:
            return
        self.record(data, self.compare(data, grid_sample(data, self._columns), step))

    @abstractmethod
    def compare(self, data: RoundData, sample: np.ndarray, step: np.ndarray) -> np.ndarray:
        """Each client's value (row of the clients × grid ``sample``, shared: not to be changed) against the last
        ``step`` on the same grid (``data``: the rest of the round)."""

    def outcome(self) -> dict[str, Any]:
        note = self._steps.note() if self._width else "the model has no analysable coordinate"
        return {"applicable": bool(self._width), "note": note}
