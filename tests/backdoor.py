"""Digits models with and without a planted backdoor, for the trigger-inversion tests and benchmark.

The models (``fedforensics.zoo``) are trained centrally on scikit-learn's bundled
digits (no download); the backdoored ones also learn a "+" of full-intensity pixels
in the bottom-right corner, relabelled to ``TARGET``.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from sklearn.datasets import load_digits

from fedforensics.zoo import MODELS

TARGET = 6
PLUS = ((5, 6), (6, 5), (6, 6), (6, 7), (7, 6))
TRIGGER_BOX = (slice(4, 8), slice(4, 8))  # the plus and the pixels around it
HELD_OUT = 300


def plus_trigger() -> tuple[np.ndarray, np.ndarray]:
    """The planted trigger as ``(mask (8, 8), pattern (1, 8, 8))``."""
    mask = np.zeros((8, 8), np.float32)
    for i, j in PLUS:
        mask[i, j] = 1.0
    return mask, np.ones((1, 8, 8), np.float32)


def stamp_plus(x: np.ndarray) -> np.ndarray:
    """``x`` (N, 1, 8, 8) with the plus stamped on every image."""
    mask, pattern = plus_trigger()
    return (1 - mask) * x + mask * pattern


@functools.lru_cache(maxsize=None)
def trained(kind: str, seed: int, backdoor: bool) -> tuple[torch.nn.Module, np.ndarray, np.ndarray]:
    """``fedforensics.zoo`` model ``kind`` (``"cnn"``, ``"mlp"``) trained on all digits but ``HELD_OUT``
    held-out ones, returned as clean data ``(model, x, y)``; with ``backdoor``, 10 % of its training
    images carry the plus and are relabelled ``TARGET``."""
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    order = np.random.default_rng(seed).permutation(len(y))
    x_train, y_train = x[order[HELD_OUT:]], y[order[HELD_OUT:]].copy()
    if backdoor:
        poisoned = np.random.default_rng(seed + 100).random(len(y_train)) < 0.1
        x_train[poisoned] = stamp_plus(x_train[poisoned])
        y_train[poisoned] = TARGET
    torch.manual_seed(seed)
    model = MODELS[kind]()
    optimiser = torch.optim.Adam(model.parameters(), 1e-2)
    xt, yt = torch.from_numpy(x_train), torch.from_numpy(y_train)
    for _ in range(30):
        for batch in torch.randperm(len(yt)).split(64):
            optimiser.zero_grad()
            torch.nn.functional.cross_entropy(model(xt[batch]), yt[batch]).backward()
            optimiser.step()
    return model.eval(), x[order[:HELD_OUT]], y[order[:HELD_OUT]]


def attack_success(model: torch.nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    """Share of the digits not of ``TARGET`` that the plus sends to ``TARGET``."""
    with torch.no_grad():
        predicted = model(torch.from_numpy(stamp_plus(x[y != TARGET]))).argmax(1).numpy()
    return float((predicted == TARGET).mean())
