"""An evenly spaced sample of a model's coordinates (a grid), for the statistics that need the coordinates
themselves rather than inner products: the detectors and trackers that compare samples of the updates."""

from __future__ import annotations

import numpy as np

from ..run import Layer
from .round_data import RoundData


def sample_columns(layers: list[Layer], coordinates: int) -> list[tuple[str, slice]]:
    """About ``coordinates`` coordinates of the model, evenly spaced over its layers laid end to end.

    Per layer, the slice of its clients × parameters block's columns that falls on the grid; layers
    the grid misses are left out. Evenly spaced rather than in blocks: consecutive weights of a layer
    share an input or an output unit, and a sample of a few rows would be a few facts, not thousands.
    """
    total = sum(layer.size for layer in layers)
    step = max(1, total // max(1, coordinates))
    columns = []
    start = 0
    for layer in layers:
        first = -start % step  # the grid's first position inside this layer
        if first < layer.size:
            columns.append((layer.name, slice(first, layer.size, step)))
        start += layer.size
    return columns


def grid_width(columns: list[tuple[str, slice]]) -> int:
    """How many coordinates :func:`sample_columns`'s grid holds."""
    return sum(len(range(c.start, c.stop, c.step)) for _, c in columns)


def grid_key(columns: list[tuple[str, slice]]) -> tuple[tuple[str, int, int, int], ...]:
    """The grid as a hashable key (slices hash from Python 3.12 only)."""
    return tuple((name, c.start, c.stop, c.step) for name, c in columns)


def grid_sample(data: RoundData, columns: list[tuple[str, slice]]) -> np.ndarray:
    """The round's clients × grid sample (float64), gathered once a round for every detector of the same grid
    (through :attr:`RoundData.shared`) and read-only: a detector that changes it works on its own copy."""
    key = ("grid sample", grid_key(columns))
    if key not in data.shared:
        sample = gather(data, columns, np.empty((len(data.clients), grid_width(columns))))
        sample.flags.writeable = False
        data.shared[key] = sample
    return data.shared[key]


def gather(data: RoundData, columns: list[tuple[str, slice]], out: np.ndarray) -> np.ndarray:
    """The round's clients × grid sample (the grid of :func:`sample_columns`), written into ``out`` and returned."""
    col = 0
    for name, layer_columns in columns:
        block = data.flat(name)[:, layer_columns]
        out[:, col : col + block.shape[1]] = block
        col += block.shape[1]
    return out
