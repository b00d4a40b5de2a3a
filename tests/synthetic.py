"""Small synthetic federations for detector tests: fast, seeded, with known attackers.

Honest updates share a round's common direction plus client noise; attackers
add what their attack implies. Not a substitute for the real simulation
(fedforensics.simulate); a way to test the contract and edge cases in
milliseconds.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from recorder import Recorder

SHAPES = {"fc1.weight": (16, 24), "fc1.bias": (16,), "fc2.weight": (10, 16), "fc2.bias": (10,)}
#: A model large enough for ``avoidance`` (a top 1 % of its coordinates holds at least 32 of them).
WIDE = {"fc1.weight": (64, 64), "fc1.bias": (64,), "fc2.weight": (10, 64), "fc2.bias": (10,)}


def make_run(
    path: Path,
    *,
    clients: int = 10,
    rounds: int = 12,
    attackers: tuple[str, ...] = (),
    attack: str = "none",
    participation: float = 1.0,
    seed: int = 0,
    ids: list[str] | None = None,
    nan_client: str | None = None,
    spread: float = 0.6,
    shapes: dict[str, tuple[int, ...]] = SHAPES,
) -> Path:
    """Write a synthetic run; ``attack`` is none | boost | bias | noise | flip (the update reversed) | sybil | mean (the honest
    mean) | shift (mean − std) | mask (Neurotoxin's Algorithm 1: the top 5 % of the last global update's coordinates
    left untouched, from the second round) | replay (a free rider: the last global update, ±10 %, from the second round) |
    zero (a plain free rider: the model sent back unchanged).

    ``spread`` is each honest update's own noise against the round's common direction (0.6: cosine
    about 0.74 between two honest updates; 0.2: about 0.96, as on a federation of IID shards)."""
    rng = np.random.default_rng(seed)
    ids = ids or [f"c{i}" for i in range(clients)]
    size = sum(int(np.prod(s)) for s in shapes.values())
    glob = {k: np.zeros(s, np.float32) for k, s in shapes.items()}
    last_step = None
    sybil_noise = rng.normal(size=size)
    with Recorder(path, meta={"synthetic": True}, overwrite=True) as rec:
        for r in range(rounds):
            decay = np.exp(-r / 15)
            common = rng.normal(size=size) * decay
            chosen = [c for c in ids if rng.random() < participation] or ids[:1]
            sent = {}
            for cid in chosen:
                u = common + spread * decay * rng.normal(size=size)
                if cid in attackers:
                    if attack == "boost":
                        u *= 6.0
                    elif attack == "bias":
                        u[size - 10 + 6] += 1.5 * decay  # fc2.bias, class 6
                        u[: size - 10] += 0.5 * decay * sybil_noise[: size - 10]
                    elif attack == "noise":
                        u = rng.normal(size=size) * np.linalg.norm(u) / np.sqrt(size)
                    elif attack == "flip":
                        u = -u
                    elif attack == "mask" and last_step is not None:
                        u[np.argsort(-np.abs(last_step))[: size // 20]] = 0.0
                    elif attack == "replay" and last_step is not None:  # a free rider: the server's last step, ±10 %
                        u = last_step * (1.0 + 0.1 * rng.normal(size=size))
                    elif attack == "zero":
                        u = np.zeros(size)
                    elif attack == "sybil":
                        u = common + 0.6 * decay * sybil_noise + 0.01 * decay * rng.normal(size=size)
                if cid == nan_client:
                    u[3] = np.nan
                accuracy = 0.9 + 0.01 * rng.normal() - (0.4 if cid in attackers and attack == "bias" else 0.0)
                sent[cid] = u, accuracy
            honest = [u for cid, (u, _) in sent.items() if cid not in attackers]
            if attack in ("mean", "shift") and honest:
                # "a little is enough": the honest clients' mean, shifted by z = 1 standard deviation per coordinate
                crafted = np.mean(honest, axis=0) - (np.std(honest, axis=0) if attack == "shift" else 0.0)
                for cid in attackers:
                    if cid in sent:
                        sent[cid] = crafted, sent[cid][1]
            with rec.round(r, glob) as rnd:
                for cid, (u, accuracy) in sent.items():
                    state, col = {}, 0
                    for name, shape in shapes.items():
                        n = int(np.prod(shape))
                        state[name] = u[col : col + n].reshape(shape)
                        col += n
                    rnd.client(cid, state, num_samples=50, metrics={"train_accuracy": accuracy}, delta=True)
            finite = [u for u, _ in sent.values() if np.isfinite(u).all()]  # the server drops a NaN update
            if finite:
                step = last_step = np.mean(finite, axis=0)
                col = 0
                for name, shape in shapes.items():
                    n = int(np.prod(shape))
                    glob[name] = (glob[name] + step[col : col + n].reshape(shape)).astype(np.float32)
                    col += n
        rec.ground_truth(list(attackers))
    return path


def make_crashed_run(path: Path, rounds: int = 3, clients: int = 5) -> Path:
    """A run whose federation raised inside the recorder's ``with`` block: ``finished`` stays FALSE."""
    try:
        with Recorder(path) as rec:
            for r in range(rounds):
                with rec.round(r, {"w": np.zeros(4)}) as rnd:
                    for i in range(clients):
                        rnd.client(f"c{i}", {"w": np.full(4, float(i))}, num_samples=10)
            raise RuntimeError("the federation crashed")
    except RuntimeError:
        pass
    return path


def make_long_named_run(path: Path, length: int = 100_000) -> tuple[Path, str, str, str]:
    """A boosted run (attacker ``c1``) as another writer with plain h5py could write it: ``c1``'s id, the first
    layer's name and the one metric's name ``length`` characters long, beyond what a recorder writes. Returns the
    path, the id, the layer name and the metric name."""
    make_run(path, clients=6, rounds=4, attackers=("c1",), attack="boost")
    cid, layer, metric = "C" * length, "L" * length, "M" * length
    strings = h5py.string_dtype("utf-8")
    with h5py.File(path, "r+") as f:
        f["layers/name"][0] = layer
        for group in f["rounds"].values():
            ids = [cid if c.decode() == "c1" else c.decode() for c in group["clients"][()]]
            del group["clients"], group["metric_names"]
            group.create_dataset("clients", data=ids, dtype=strings)
            group.create_dataset("metric_names", data=[metric], dtype=strings)
        truth = [cid if c.decode() == "c1" else c.decode() for c in f["ground_truth/malicious"][()]]
        del f["ground_truth/malicious"]
        f["ground_truth"].create_dataset("malicious", data=truth, dtype=strings)
    return path, cid, layer, metric
