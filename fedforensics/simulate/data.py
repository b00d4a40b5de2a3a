"""The simulation's data: a dataset (bundled digits or a local file), its held-out split, the clients' shards."""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import FedForensicsError
from ..npz import load_arrays

__all__ = ["Dataset", "load_dataset", "partition", "train_test_split"]


@dataclass
class Dataset:
    """Images ``x`` (N, C, H, W) float32 in [0, 1] and integer labels ``y`` (N,)."""

    name: str
    x: np.ndarray
    y: np.ndarray

    @property
    def num_classes(self) -> int:
        return int(self.y.max()) + 1

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.x.shape[1:])  # type: ignore[return-value]


def load_dataset(spec: str) -> Dataset:
    """``"digits"`` (scikit-learn's bundled 8×8 digits, no download), an ``.npz`` with ``x`` and ``y``,
    or a folder holding MNIST's IDX files (``train-images-idx3-ubyte[.gz]`` and its labels)."""
    if spec == "digits":
        from sklearn.datasets import load_digits

        x, y = load_digits(return_X_y=True)
        return Dataset("digits", (x / 16.0).astype(np.float32).reshape(-1, 1, 8, 8), y.astype(np.int64))
    path = Path(spec)
    if path.is_dir():
        return _load_idx_folder(path)
    if path.suffix == ".npz" and path.is_file():
        return _load_npz(path)
    raise FedForensicsError(f"dataset {spec!r}: give 'digits', an .npz file with x and y, or a folder of MNIST IDX files")


def _images(x: np.ndarray, source: str) -> np.ndarray:
    """(N, H, W) or (N, C, H, W) as float32 (N, C, H, W) in [0, 1]."""
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4:
        raise FedForensicsError(f"{source}: images must be (N, H, W) or (N, C, H, W), got shape {x.shape}")
    if len(x) == 0:
        raise FedForensicsError(f"{source}: no images")
    if np.issubdtype(x.dtype, np.integer):
        x = x / 255.0
    x = x.astype(np.float32)
    if not np.isfinite(x).all():
        raise FedForensicsError(f"{source}: images contain NaN or Inf")
    return x


def _labels(y: np.ndarray, n: int, source: str) -> np.ndarray:
    if y.shape != (n,) or not np.issubdtype(y.dtype, np.integer) or (y < 0).any():
        raise FedForensicsError(f"{source}: labels must be {n} non-negative integers, got {y.dtype} of shape {y.shape}")
    return y.astype(np.int64)


def _load_npz(path: Path) -> Dataset:
    arrays = load_arrays(path, ("x", "y"), "np.savez(path, x=images, y=labels)")
    x = _images(arrays["x"], str(path))
    return Dataset(path.stem, x, _labels(arrays["y"], len(x), str(path)))


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """An IDX file (MNIST's format: big-endian header, then uint8 data), gzipped or not."""
    opener = gzip.open if str(path).endswith(".gz") else open
    try:
        with opener(path, "rb") as f:  # type: ignore[operator]
            raw = f.read()
    except OSError as exc:
        raise FedForensicsError(f"{path}: cannot read ({exc})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise FedForensicsError(f"{path}: not an IDX file of unsigned bytes")
    ndim = raw[3]
    dims = np.frombuffer(raw, ">u4", count=ndim, offset=4).astype(int)
    data = np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise FedForensicsError(f"{path}: truncated ({data.size} values for shape {tuple(dims)})")
    return data.reshape(dims)


def _load_idx_folder(folder: Path) -> Dataset:
    def find(stem: str) -> Path:
        for name in (stem, stem + ".gz"):
            if (folder / name).is_file():
                return folder / name
        raise FedForensicsError(f"{folder}: no {stem}[.gz] (an MNIST-style IDX folder needs it)")

    parts = []
    for prefix in ("train", "t10k"):
        try:
            images, labels = find(f"{prefix}-images-idx3-ubyte"), find(f"{prefix}-labels-idx1-ubyte")
        except FedForensicsError:
            if prefix == "t10k":
                continue  # the test split is optional: we hold our own out
            raise
        x = _images(read_idx(images), str(images))
        parts.append((x, _labels(read_idx(labels), len(x), str(labels))))
    x = np.concatenate([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    return Dataset(folder.name, x, y)


def train_test_split(data: Dataset, test_fraction: float, rng: np.random.Generator) -> tuple[Dataset, Dataset]:
    """A stratified held-out split: the server's test set, which also serves as trigger inversion's clean data."""
    test = np.concatenate(
        [
            idx[: max(1, round(test_fraction * len(idx)))]
            for idx in (rng.permutation(np.flatnonzero(data.y == c)) for c in range(data.num_classes))
            if len(idx)
        ]
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
    for _ in range(1000):
        shards: list[list[int]] = [[] for _ in range(clients)]
        for c in np.unique(y):
            idx = rng.permutation(np.flatnonzero(y == c))
            cuts = (np.cumsum(rng.dirichlet(np.full(clients, alpha))) * len(idx)).astype(int)[:-1]
            for shard, part in zip(shards, np.split(idx, cuts)):
                shard.extend(part.tolist())
        if min(len(s) for s in shards) >= min_size:
            return [np.sort(np.array(s, dtype=np.int64)) for s in shards]
    raise FedForensicsError(f"Dirichlet alpha={alpha} leaves some of {clients} clients with under {min_size} samples: raise --alpha")
