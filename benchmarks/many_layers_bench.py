"""How ``analyze`` scales with the number of layers: logs of L tiny layers (2 parameters each), 8 clients, 3 rounds.

    python benchmarks/many_layers_bench.py [--layers 250 1000 4000] [--print]

A deep, thin model (a BatchNorm CNN's state dict has hundreds of entries, most of them small) costs per-layer
bookkeeping rather than arithmetic; the time should grow in proportion to the layers. Times ``open_run`` +
``analyze`` in this process (best of 3) and rewrites the table between the ``many-layers`` markers of
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from fedforensics import open_run
from fedforensics.analysis import analyze
from recorder import Recorder
from scenarios import publish

DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
LAYERS = [250, 1000, 4000]  # the table's sizes


def record(path: Path, layers: int, clients: int = 8, rounds: int = 3) -> None:
    rng = np.random.default_rng(0)
    state = {f"block{i}.w": np.zeros(2, np.float32) for i in range(layers)}
    with Recorder(path, fsync=False) as rec:
        for r in range(rounds):
            with rec.round(r, state) as rnd:
                for c in range(clients):
                    update = {name: rng.normal(size=2).astype(np.float32) for name in state}
                    rnd.client(f"c{c}", update, num_samples=10, delta=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, nargs="+", default=LAYERS, help=f"the sizes (default: {LAYERS}; others are printed)")
    parser.add_argument("--print", action="store_true", help="print the table instead of writing benchmarks.md")
    args = parser.parse_args()
    lines = ["| layers | analyze() | per layer |", "|---|---|---|"]
    with tempfile.TemporaryDirectory() as folder:
        for layers in args.layers:
            path = Path(folder) / f"layers{layers}.h5"
            record(path, layers)
            best = float("inf")
            for _ in range(3):
                start = time.perf_counter()
                with open_run(path) as run:
                    analyze(run)
                best = min(best, time.perf_counter() - start)
            lines.append(f"| {layers:,} | {best:.2f} s | {best / layers * 1000:.2f} ms |")
    publish("\n".join(lines), DOC, "many-layers", args.print, "--layers" if args.layers != LAYERS else "")


if __name__ == "__main__":
    main()
