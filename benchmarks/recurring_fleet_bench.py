"""Peak memory and time of ``analyze`` against a fleet's recurring clients: N clients of a tiny model, each in about
3 of 30 rounds of N/10.

    python benchmarks/recurring_fleet_bench.py [--clients 2500 5000 10000] [--print]

Clients seen in 3 rounds or more can vote in ``cosine-hdbscan``, which clusters their accumulated directions
(N × N cosine distances, and HDBSCAN's own N × N arrays), and ``accumulated-sybil`` compares their histories the
same way: at fleet scale these, not the updates, are what an analysis holds. The model is tiny (36 parameters) so
that they are all there is. Each log is analysed in a process of its own (``wide_rounds_bench.bench_main``); the table
goes between the ``recurring-fleet`` markers of docs/benchmarks.md.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from recorder import Recorder
from wide_rounds_bench import bench_main

ROUNDS = 30
SHAPES = {"fc.weight": (4, 8), "fc.bias": (4,)}


def record(path: Path, clients: int) -> None:
    """``clients`` ids, each round a tenth of them (every id in 3 rounds), updates noise around the round's direction."""
    rng = np.random.default_rng(clients)
    # three passes over the ids in a new order each, a tenth of a pass a round: no id twice in a round, every id thrice
    rounds = [part for _ in range(ROUNDS // 10) for part in np.array_split(rng.permutation(clients), 10)]
    ids = [f"dev-{i:05d}" for i in range(clients)]
    state = {name: np.zeros(shape, np.float32) for name, shape in SHAPES.items()}
    with Recorder(path, fsync=False) as rec:
        for r in range(ROUNDS):
            common = {name: rng.normal(size=shape) for name, shape in SHAPES.items()}
            with rec.round(r, state) as rnd:
                for i in rounds[r]:
                    update = {name: common[name] + 0.8 * rng.normal(size=shape) for name, shape in SHAPES.items()}
                    rnd.client(ids[i], update, num_samples=20, delta=True)


def row(clients: int, got: dict) -> str:
    return (
        f"| {clients:,} | {clients // 10:,} | {got['seconds']:.1f} s | {got['peak_mb']:,.0f} MB "
        f"| {got['base_mb']:,.0f} MB | {clients**2 * 8 / 2**20:,.0f} MB | {got['flagged']} |"
    )


if __name__ == "__main__":
    bench_main(
        __doc__, [2500, 5000, 10000],
        "| recurring clients | clients a round | analyze() | peak memory | before analyze() | clients² × 8 bytes | flagged |",
        record, row, "recurring-fleet",
    )  # fmt: skip
