"""Labelled images from an auditor's file, read one way for simulate's ``--dataset`` and trigger inversion's ``--data``.

The file is an ``.npz`` with ``x`` (images) and ``y`` (labels) (or Keras's layout, ``x_train``, ``y_train`` and
optionally ``x_test``, ``y_test``, read as one set, as ``keras.datasets``' ``mnist.npz`` holds them), or a folder of MNIST's IDX files
(``train-images-idx3-ubyte[.gz]`` and its labels, optionally both ``t10k-*`` files). Each
command then checks the images for its own use: simulate scales integer grey levels to [0, 1];
trigger inversion feeds them to the model as they are. IDX images are grey levels 0..255 by the
format's definition, so a folder's images are read as such, divided by 255, for both.
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from pathlib import Path

import numpy as np

from .errors import FedForensicsError
from .npz import load_arrays

__all__ = ["LABEL_LIMIT", "check_labels", "load_samples", "read_idx"]

LABEL_LIMIT = 2**31
"""Labels from here up are no model's classes (and from 2**63 up a cast to int64 would wrap them): refused as such."""

EXAMPLE = "np.savez(path, x=images, y=labels)"


def load_samples(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """Images and labels of the ``.npz`` or IDX folder at ``path``: ``x`` as stored (a folder's as float32
    (N, 1, H, W) in [0, 1]) and ``y`` as int64 class labels (:func:`check_labels`)."""
    if Path(path).is_dir():
        return _load_idx_folder(Path(path))
    arrays = load_arrays(path, ("x", "y"), EXAMPLE, splits=("train", "test"))
    x = arrays["x"]
    return x, check_labels(arrays["y"], len(x) if x.ndim else 0, str(path))


def check_labels(y: np.ndarray, n: int, source: str) -> np.ndarray:
    """``n`` class labels as int64: whole numbers from 0 to ``LABEL_LIMIT`` − 1 of any real dtype (3.0 is 3), checked on
    their own dtype (before a cast wraps or truncates them); one-hot rows are refused with the line that converts them."""
    y = np.asarray(y)
    if y.shape != (n,):
        hint = ""
        if y.ndim == 2 and len(y) == n:
            hint = ": one-hot rows? give y.argmax(1)" if y.shape[1] > 1 else ": give y.ravel()"
        raise FedForensicsError(f"{source}: labels have shape {y.shape}; expected ({n},), one label per sample{hint}")
    first = y[0].item() if n and isinstance(y[0], np.generic) else (y[0] if n else None)
    if isinstance(first, (str, bytes)):  # an array of texts, or an object array of them: it said "got <U21"
        raise FedForensicsError(
            f"{source}: labels are text (the first is {first[:20]!r}{'…' * (len(first) > 20)}), not class indices: give "
            "each sample's class as the model numbers it, a whole number ≥ 0 (y.astype(int) for numbers stored as text)"
        )
    if not (np.issubdtype(y.dtype, np.integer) or np.issubdtype(y.dtype, np.floating)):
        raise FedForensicsError(f"{source}: labels must be class indices (whole numbers ≥ 0), got {y.dtype}")
    bad = ~np.isfinite(y) | (y != np.round(y)) | (y < 0) if y.dtype.kind == "f" else y < 0
    if bad.any():
        raise FedForensicsError(f"{source}: labels must be class indices (whole numbers ≥ 0), got {_number(y[bad][0])}")
    if n and y.max() >= LABEL_LIMIT:
        raise FedForensicsError(f"{source}: label {_number(y.max())} is too large: class labels run from 0 to the number of classes − 1")
    return y.astype(np.int64)


def _number(value: np.generic) -> str:
    """A label for a message: an integer in full, a float short (``0.5``, ``1e+30``, ``nan``)."""
    return f"{float(value):g}" if isinstance(value, np.floating) else str(int(value))


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """An IDX file (MNIST's format: big-endian header, then uint8 data), gzipped or not."""
    opener = gzip.open if str(path).endswith(".gz") else open
    try:
        with opener(path, "rb") as f:  # type: ignore[operator]
            raw = f.read()
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:  # EOFError: the stream stops short
        raise FedForensicsError(f"{path}: cannot read: not a gzip file, or a truncated or damaged one ({exc})") from None
    except OSError as exc:
        raise FedForensicsError(f"{path}: cannot read ({exc})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise FedForensicsError(f"{path}: not an IDX file of unsigned bytes")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise FedForensicsError(f"{path}: truncated header ({len(raw)} bytes; {ndim} dimensions need {header})")
    dims = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    data = np.frombuffer(raw, np.uint8, offset=header)
    if data.size != math.prod(dims):
        problem = "truncated" if data.size < math.prod(dims) else "too long"
        raise FedForensicsError(f"{path}: {problem} ({data.size} values for shape {dims})")
    return data.reshape(dims)


def _size(shape: tuple[int, ...]) -> str:
    return "×".join(str(d) for d in shape)


def _load_idx_folder(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """``train-*`` (required) and ``t10k-*`` (optional, both files or neither) IDX files as one set of samples."""

    def find(stem: str) -> Path | None:
        return next((folder / name for name in (stem, stem + ".gz") if (folder / name).is_file()), None)

    parts: list[tuple[Path, np.ndarray, np.ndarray]] = []
    for prefix in ("train", "t10k"):
        stems = (f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte")
        images, labels = (find(stem) for stem in stems)
        if prefix == "t10k" and images is None and labels is None:
            continue  # the test split is optional
        if images is None or labels is None:
            missing = stems[0] if images is None else stems[1]
            need = "an MNIST-style IDX folder needs it" if prefix == "train" else "the t10k split needs both its files"
            raise FedForensicsError(f"{folder}: no {missing}[.gz] ({need})")
        x = read_idx(images)
        if x.ndim != 3 or 0 in x.shape:
            raise FedForensicsError(f"{images}: images must be (N, H, W) grey levels, none empty, got shape {x.shape}")
        parts.append((images, x, check_labels(read_idx(labels), len(x), str(labels))))
    (train, x, _), *rest = parts
    for other, ox, _ in rest:
        if ox.shape[1:] != x.shape[1:]:
            raise FedForensicsError(
                f"{folder}: {other.name} holds images of 1×{_size(ox.shape[1:])} (C×H×W), {train.name} of 1×{_size(x.shape[1:])}: "
                "the two splits must have one image size"
            )
    x = np.concatenate([p[1] for p in parts])[:, None] / np.float32(255)
    return x.astype(np.float32), np.concatenate([p[2] for p in parts])
