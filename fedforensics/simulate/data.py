"""The simulation's data: a dataset (bundled digits or a local file), its held-out split, the clients' shards."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import FedForensicsError
from ..npz import channels_last
from ..samples import load_samples

__all__ = ["MAX_CLASSES", "Dataset", "load_dataset", "partition", "train_test_split"]

MAX_CLASSES = 10_000
"""The most classes a local dataset may have: the model has one output per class, and every run
records every client's update of it (docs/attacks.md)."""


@dataclass
class Dataset:
    """Images ``x`` (N, C, H, W) float32 in [0, 1] and integer labels ``y`` (N,)."""

    name: str
    x: np.ndarray
    y: np.ndarray

    @property
    def num_classes(self) -> int:
        """How many labels the data has (the largest label + 1)."""
        return int(self.y.max()) + 1

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """One sample's shape, channels first."""
        return tuple(self.x.shape[1:])  # type: ignore[return-value]

    def sha256(self) -> str:
        """The SHA-256 of the images' bytes (float32, little-endian, C order) followed by the labels' (int64): what
        tells a run's reader which data it was trained on (docs/attacks.md)."""
        digest = hashlib.sha256(np.ascontiguousarray(self.x, "<f4").data)
        digest.update(np.ascontiguousarray(self.y, "<i8").data)
        return digest.hexdigest()


def load_dataset(spec: str) -> Dataset:
    """``"digits"`` (scikit-learn's bundled 8×8 digits, no download), an ``.npz`` with ``x`` and ``y``,
    or a folder holding MNIST's IDX files (``train-images-idx3-ubyte[.gz]`` and its labels)."""
    if spec == "digits":
        from sklearn.datasets import load_digits

        x, y = load_digits(return_X_y=True)
        return Dataset("digits", (x / 16.0).astype(np.float32).reshape(-1, 1, 8, 8), y.astype(np.int64))
    path = Path(spec)
    if path.exists():  # a folder of IDX files, or an .npz of any name (as trigger inversion's --data takes them)
        x, y = load_samples(path)
        return _dataset(path.stem if path.is_file() else path.name, _images(x, spec), _labels(y, spec), spec)
    if path.suffix.lower() == ".npz" or spec.endswith(("/", os.sep)):  # DATA.NPZ is one too (QA)
        raise FedForensicsError(f"dataset {spec!r}: no such {'file' if path.suffix.lower() == '.npz' else 'folder'}")
    raise FedForensicsError(f"dataset {spec!r}: give 'digits', an .npz file with x and y, or a folder of MNIST IDX files")


def _images(x: np.ndarray, source: str) -> np.ndarray:
    """(N, H, W) or (N, C, H, W) real numbers as float32 (N, C, H, W); integers are scaled from 0..255 to [0, 1]."""
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4:
        raise FedForensicsError(f"{source}: images must be (N, H, W) or (N, C, H, W), got shape {x.shape}")
    if len(x) == 0:
        raise FedForensicsError(f"{source}: no images")
    if 0 in x.shape[1:]:
        raise FedForensicsError(f"{source}: images of {_size(x.shape[1:])} (C×H×W) are empty: give one channel and one pixel")
    if channels_last(x.shape):
        raise FedForensicsError(
            f"{source}: images of shape {x.shape} look channels-last (N, H, W, C); give (N, C, H, W): x.transpose(0, 3, 1, 2)"
        )
    if x.dtype.kind not in "biuf":  # complex would lose its imaginary part, strings would be parsed
        raise FedForensicsError(f"{source}: images must be real numbers (integers, floats or booleans), got {x.dtype}")
    if np.issubdtype(x.dtype, np.integer):
        low, high = int(x.min()), int(x.max())
        if low < 0 or high > 255:
            raise FedForensicsError(
                f"{source}: integer images are read as grey levels 0..255, but these run from {low} to {high}: "
                "save them as uint8, or as floats in the range the model should see"
            )
        x = x / 255.0
    x = x.astype(np.float32)
    if not np.isfinite(x).all():
        raise FedForensicsError(f"{source}: images contain NaN or Inf")
    return x


def _labels(y: np.ndarray, source: str) -> np.ndarray:
    """Class labels (checked by :func:`~fedforensics.samples.check_labels`) of at most ``MAX_CLASSES`` classes."""
    largest = int(y.max())
    if largest >= MAX_CLASSES:
        raise FedForensicsError(
            f"{source}: label {largest} is too large: labels are class indices 0..C-1, one model output each, "
            f"and at most {MAX_CLASSES:,} classes are allowed"
        )
    return y


def _dataset(name: str, x: np.ndarray, y: np.ndarray, source: str) -> Dataset:
    """The checked images and labels as a :class:`Dataset`, refused when they have more classes than images."""
    if len(y) < int(y.max()) + 1:
        raise FedForensicsError(
            f"{source}: labels up to {y.max()} make {y.max() + 1} classes for {len(y)} images: "
            "labels are class indices 0..C-1, and there cannot be more classes than images"
        )
    return Dataset(name, x, y)


def _size(shape: tuple[int, ...]) -> str:
    return "×".join(str(d) for d in shape)


def _by_class(y: np.ndarray) -> list[np.ndarray]:
    """The indices of each label present in ``y``, in increasing order of label and of index: one sort,
    not one pass over ``y`` per class."""
    order = np.argsort(y, kind="stable")
    starts = np.unique(y[order], return_index=True)[1]
    return np.split(order, starts[1:])


def train_test_split(data: Dataset, test_fraction: float, rng: np.random.Generator) -> tuple[Dataset, Dataset]:
    """A stratified held-out split: the server's test set, which also serves as trigger inversion's clean data."""
    test = np.concatenate(
        [idx[: max(1, round(test_fraction * len(idx)))] for idx in (rng.permutation(members) for members in _by_class(data.y))]
    )
    train = np.setdiff1d(np.arange(len(data.y)), test)
    test = np.sort(test)
    return Dataset(data.name, data.x[train], data.y[train]), Dataset(data.name, data.x[test], data.y[test])


def partition(
    y: np.ndarray, clients: int, rng: np.random.Generator, alpha: float | None = None, min_size: int = 10
) -> list[np.ndarray]:
    """Indices of each client's shard: IID (``alpha=None``) or label-skewed by Dirichlet(α) per class
    (Hsu et al. 2019, "Measuring the effects of non-identical data distribution"); smaller α, more skew.

    Dirichlet draws are repeated until every client holds at least ``min_size`` samples.
    """
    if clients * min_size > len(y):
        raise FedForensicsError(f"{len(y)} training samples are too few for {clients} clients of at least {min_size}")
    if alpha is None:
        return [np.sort(shard) for shard in np.array_split(rng.permutation(len(y)), clients)]
    if not 0 < alpha < float("inf"):  # NaN fails too
        raise FedForensicsError(f"--alpha must be positive, got {alpha}")
    classes = _by_class(y)
    for _ in range(1000):
        shards: list[list[int]] = [[] for _ in range(clients)]
        for members in classes:
            idx = rng.permutation(members)
            cuts = (np.cumsum(rng.dirichlet(np.full(clients, alpha))) * len(idx)).astype(int)[:-1]
            for shard, part in zip(shards, np.split(idx, cuts)):
                shard.extend(part.tolist())
        if min(len(s) for s in shards) >= min_size:
            return [np.sort(np.array(s, dtype=np.int64)) for s in shards]
    raise FedForensicsError(f"Dirichlet alpha={alpha} leaves some of {clients} clients with under {min_size} samples: raise --alpha")
