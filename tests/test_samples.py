"""One reading of an auditor's labelled images for simulate's --dataset and trigger inversion's --data (fedforensics.samples):
a fresh-eyes user's MNIST IDX folder was a dataset to one and 'a directory, not an .npz file' to the other, and labels
saved as floats (3.0) were taken by one and refused by the other."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from fedforensics.errors import FedForensicsError
from fedforensics.inversion import load_clean_data
from fedforensics.simulate import load_dataset


def write_idx(path, array: np.ndarray) -> None:  # type: ignore[no-untyped-def]
    raw = bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(raw) if path.suffix == ".gz" else raw)


def both(path) -> list[tuple[np.ndarray, np.ndarray]]:  # type: ignore[no-untyped-def]
    """What simulate's and trigger inversion's loaders make of ``path``."""
    data = load_dataset(str(path))
    return [(data.x, data.y), load_clean_data(path)]


@pytest.fixture
def images() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (40, 6, 6), dtype=np.uint8), np.arange(40, dtype=np.uint8) % 4


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_an_idx_folder_is_read_alike_as_grey_levels(tmp_path, images, suffix):
    x, y = images
    write_idx(tmp_path / f"train-images-idx3-ubyte{suffix}", x[:30])
    write_idx(tmp_path / f"train-labels-idx1-ubyte{suffix}", y[:30])
    write_idx(tmp_path / f"t10k-images-idx3-ubyte{suffix}", x[30:])
    write_idx(tmp_path / f"t10k-labels-idx1-ubyte{suffix}", y[30:])
    for got_x, got_y in both(tmp_path):
        assert got_x.shape == (40, 1, 6, 6) and got_x.dtype == np.float32 and got_y.dtype == np.int64
        np.testing.assert_allclose(got_x[:, 0], x / 255, rtol=1e-6)
        assert np.array_equal(got_y, y)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_whole_float_labels_are_taken_by_both(tmp_path, images, dtype):
    x, y = images
    np.savez(tmp_path / "d.npz", x=x / np.float32(255), y=y.astype(dtype))
    for _, got_y in both(tmp_path / "d.npz"):
        assert got_y.dtype == np.int64 and np.array_equal(got_y, y)


@pytest.mark.parametrize(
    ("labels", "words"),
    [
        (lambda y: y + 0.5, "labels must be class indices (whole numbers ≥ 0), got 0.5"),
        (lambda y: np.where(y == 2, np.nan, y), "got nan"),
        (lambda y: y.astype(np.int64) - 1, "got -1"),
        (lambda y: np.eye(4, dtype=np.float32)[y], "labels have shape (40, 4); expected (40,), one label per sample: one-hot rows? give y.argmax(1)"),
        (lambda y: y[:, None], "give y.ravel()"),
    ],
)
def test_bad_labels_are_refused_by_both_in_one_line(tmp_path, images, labels, words):
    x, y = images
    np.savez(tmp_path / "d.npz", x=x / np.float32(255), y=labels(y))
    for load in (lambda: load_dataset(str(tmp_path / "d.npz")), lambda: load_clean_data(tmp_path / "d.npz")):
        with pytest.raises(FedForensicsError) as refused:
            load()
        assert words in str(refused.value) and "\n" not in str(refused.value)


def test_an_npz_of_any_name_is_a_dataset_as_it_is_clean_data(tmp_path, images):
    x, y = images
    with open(tmp_path / "digits.data", "wb") as f:  # np.savez to an open file keeps the name
        np.savez(f, x=x / np.float32(255), y=y)
    assert [len(got_y) for _, got_y in both(tmp_path / "digits.data")] == [40, 40]


def test_kerass_mnist_npz_layout_is_one_set_of_its_splits(tmp_path, images):
    """keras.datasets' mnist.npz holds x_train, y_train, x_test and y_test, the commonest MNIST file there is: it was
    refused ("no array x or y"); its splits are read as one set, as an IDX folder's train and t10k files are."""
    x, y = images
    floats = x / np.float32(255)
    np.savez(tmp_path / "mnist.npz", x_train=floats[:30], y_train=y[:30], x_test=floats[30:], y_test=y[30:])
    for got_x, got_y in both(tmp_path / "mnist.npz"):
        np.testing.assert_allclose(got_x[:, 0], floats, rtol=1e-6)
        assert np.array_equal(got_y, y)
    np.savez(tmp_path / "train_only.npz", x_train=floats, y_train=y)
    assert [len(got_y) for _, got_y in both(tmp_path / "train_only.npz")] == [40, 40]


@pytest.mark.parametrize(
    ("arrays", "words"),
    [
        (lambda x, y: dict(x_train=x[:30], y_train=y[:30], x_test=x[30:]), "holds x_test but no y_test"),
        (lambda x, y: dict(x_train=x[:30], y_train=y[:30], x_test=x[30:, :3], y_test=y[30:]), "differ beyond their first axis"),
    ],
)
def test_a_keras_layout_with_a_broken_split_is_refused_in_one_line(tmp_path, images, arrays, words):
    x, y = images
    np.savez(tmp_path / "mnist.npz", **arrays(x / np.float32(255), y))
    for load in (lambda: load_dataset(str(tmp_path / "mnist.npz")), lambda: load_clean_data(tmp_path / "mnist.npz")):
        with pytest.raises(FedForensicsError) as refused:
            load()
        assert words in str(refused.value) and "\n" not in str(refused.value)
