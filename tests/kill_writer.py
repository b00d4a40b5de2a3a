"""A recording process for the durability test: prints each round once its block has exited.

Run as ``python kill_writer.py PATH ROUNDS``; its data depends only on round and
client, so the test can rebuild what every committed round must hold.
"""

from __future__ import annotations

import sys

import numpy as np

from recorder import Recorder

CLIENTS = 4


def _state(seed: int, rows: int, cols: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"a.weight": rng.normal(size=(rows, cols)).astype(np.float32), "a.bias": rng.normal(size=rows).astype(np.float32)}


def global_state(r: int, rows: int = 64, cols: int = 512) -> dict[str, np.ndarray]:
    """Round ``r``'s global model: one dense layer, seeded by the round."""
    return _state(r, rows, cols)


def client_state(r: int, c: int, rows: int = 64, cols: int = 512) -> dict[str, np.ndarray]:
    """Client ``c``'s local model after round ``r``, seeded by both."""
    return _state(10_000 + r * 100 + c, rows, cols)


def main(path: str, rounds: int) -> None:
    with Recorder(path, meta={"writer": "kill test"}) as rec:
        for r in range(rounds):
            with rec.round(r, global_state(r)) as rnd:
                for c in range(CLIENTS):
                    rnd.client(f"c{c}", client_state(r, c), num_samples=c + 1, metrics={"loss": r + c / 10})
            print(r, flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
