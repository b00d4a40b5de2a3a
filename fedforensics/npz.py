"""Named arrays from an ``.npz`` file an auditor gives (clean data, a trigger, a dataset), safely.

The file is untrusted input: it is never unpickled, and whatever is wrong with it is one line.
"""

from __future__ import annotations

import os
import zipfile

import numpy as np

from .errors import FedForensicsError, one_line

_ZIP = b"PK\x03\x04"
_NPY = b"\x93NUMPY"


def load_arrays(
    path: str | os.PathLike[str], keys: tuple[str, ...], example: str, *, splits: tuple[str, ...] = ()
) -> dict[str, np.ndarray]:
    """The arrays ``keys`` of the ``.npz`` at ``path``; ``example`` shows how to write one (``np.savez(...)``).

    With ``splits`` (``("train", "test")``), an archive without ``keys`` that holds every ``<key>_<split>`` of the
    first split (Keras's ``mnist.npz``: ``x_train``, ``y_train``, ``x_test``, ``y_test``) gives each key as its
    splits present, concatenated in order; a later split must have all its keys or none."""
    try:
        with open(path, "rb") as handle:
            magic = handle.read(6)
    except FileNotFoundError:
        raise FedForensicsError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise FedForensicsError(f"{path}: is a directory, not an .npz file") from None
    except OSError as exc:
        raise FedForensicsError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if magic.startswith(_NPY):
        raise FedForensicsError(f"{path}: one array (np.save), not an .npz archive of {' and '.join(keys)}: {example}")
    if not magic.startswith(_ZIP):
        raise FedForensicsError(f"{path}: not an .npz file (write one with {example})")
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [key for key in keys if key not in archive.files]
            if missing and splits and all(f"{key}_{splits[0]}" in archive.files for key in keys):
                return _joined_splits(archive, keys, splits, str(path))
            if missing:
                held = ", ".join(archive.files) or "nothing"
                raise FedForensicsError(f"{path}: no array {' or '.join(missing)} (it holds {held}): {example}")
            return {key: archive[key] for key in keys}
    except FedForensicsError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise FedForensicsError(f"{path}: not a readable .npz file ({one_line(exc)})") from None


def _joined_splits(archive: np.lib.npyio.NpzFile, keys: tuple[str, ...], splits: tuple[str, ...], source: str) -> dict[str, np.ndarray]:
    """Each of ``keys`` as its ``<key>_<split>`` arrays concatenated, for the splits ``archive`` holds."""
    present = []
    for split in splits:
        held = [f"{key}_{split}" for key in keys if f"{key}_{split}" in archive.files]
        if held and len(held) < len(keys):
            lacking = next(f"{key}_{split}" for key in keys if f"{key}_{split}" not in archive.files)
            raise FedForensicsError(f"{source}: holds {held[0]} but no {lacking}: a split needs all of its arrays")
        if held:
            present.append(split)
    joined = {}
    for key in keys:
        parts = [archive[f"{key}_{split}"] for split in present]
        if len({part.shape[1:] for part in parts}) > 1:
            shapes = " and ".join(f"{key}_{split} {part.shape}" for split, part in zip(present, parts))
            raise FedForensicsError(f"{source}: {shapes} differ beyond their first axis: the splits cannot be joined")
        joined[key] = np.concatenate(parts) if len(parts) > 1 else parts[0]
    return joined


def channels_last(shape: tuple[int, ...]) -> bool:
    """Whether images of ``shape`` (N, C, H, W) look channels-last, (N, H, W, C) read as such: 1, 3 or 4 pixels wide
    beside more than 4 channels ((N, 8, 8, 1) read as 8 channels of 8×1 pixels, which cannot hold a "+": QA)."""
    return len(shape) == 4 and shape[3] in (1, 3, 4) and shape[1] > 4
