"""What the recorder refuses, and how it says so: :class:`RecorderError`, the longest names it takes, and the checks
and conversions of every input (client ids, layer, metric and attachment names, arrays, metrics, meta, the run's
path), each message naming where: the round, client and layer, or the path.
"""

from __future__ import annotations

import json
import operator
import os
from collections.abc import Mapping
from numbers import Real
from pathlib import Path
from typing import Any

import numpy as np

_NUMERIC_KINDS = "biuf"
#: The longest name the recorder takes, in characters: a client id, a layer's, a metric's or an attachment's name, not
#: whatever was passed in its place (a 10 MB id, a state's repr, made `analyze` print a report of 39 MB; a 10 MB
#: layer name, reports of 190 MB after ten minutes).
NAME_MAX_LENGTH = 1024
#: The longest client id the recorder takes, in characters (:data:`NAME_MAX_LENGTH`).
CLIENT_ID_MAX_LENGTH = NAME_MAX_LENGTH


class RecorderError(ValueError):
    """Input the recorder refuses. The message names the round, client and layer."""


def _count(value: object) -> int | None:
    """``value`` as an int where it is an integer (an int, a numpy integer, a one-element integer tensor: anything
    ``operator.index`` takes, as metrics take tensors; a torch tensor was refused), else ``None`` (a bool too)."""
    if isinstance(value, (bool, np.bool_)) or str(getattr(value, "dtype", "")) in ("bool", "torch.bool"):
        return None  # a bool, numpy's or torch's (torch.tensor(True) indexes as 1: a review)
    try:
        return operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        return None


def _brief(value: object) -> str:
    """A value for an error message: its repr when short, else its type (arguments swapped, a model's state dict
    made a message of 163,512 characters; QA)."""
    text = repr(value)
    return text if len(text) <= 80 else f"a {type(value).__name__}"


def _where(round_number: int | None, client: str | None = None, layer: str | None = None) -> str:
    parts = []
    if round_number is not None:
        parts.append(f"round {round_number}")
    if client is not None:
        parts.append(f"client {client!r}")
    if layer is not None:
        parts.append(f"layer {layer!r}")
    return ", ".join(parts)


def _as_array(value: Any, where: str) -> np.ndarray:
    """Convert a numpy array (ml_dtypes' too), torch tensor (any device) or nested list to a numeric ndarray."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch tensor, without importing torch
        try:
            tensor = value.detach().cpu()
            if str(tensor.dtype) == "torch.bfloat16" or str(tensor.dtype).startswith("torch.float8"):
                tensor = tensor.float()  # numpy has no such type: stored as float32 (docs/format.md)
            value = tensor.numpy()
        except (TypeError, RuntimeError, NotImplementedError, ValueError) as exc:  # sparse, quantized, meta-device
            hint = (
                ": pass tensor.dequantize()" if getattr(value, "is_quantized", False)
                else ": pass tensor.to_dense()" if str(getattr(value, "layout", "")) != "torch.strided" else ""
            )
            raise RecorderError(f"{where}: cannot read the {value.dtype} tensor on {value.device} as an array ({exc}){hint}") from None
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise RecorderError(f"{where}: not an array ({exc})") from None
    if array.dtype.isbuiltin == 2 and array.dtype.name.startswith(("bfloat", "float")):
        # ml_dtypes' bfloat16 and 8-, 6-, 4-bit floats (JAX's arrays), a type numpy registers but HDF5 lacks: stored
        # as float32, which holds each of their values exactly, as torch's are (docs/format.md); they were refused
        array = array.astype(np.float32)
    elif array.dtype.isbuiltin == 2 and array.dtype.name.startswith(("int", "uint")) and array.dtype.itemsize <= 8:
        # ml_dtypes' 2- and 4-bit integers (quantized weights): as the byte-wide integers that hold each value exactly;
        # they were refused as "not of booleans, integers or real floats", integers though they are (a review)
        array = array.astype(f"{'u' * array.dtype.name.startswith('u')}int{8 * array.dtype.itemsize}")
    if array.dtype.kind not in _NUMERIC_KINDS:
        raise RecorderError(f"{where}: an array of dtype {array.dtype}, not of booleans, integers or real floats")
    return array


def _json_value(value: Any) -> Any:
    """What ``meta`` stores for a value JSON cannot hold: a numpy number or array as its value, else its text."""
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    return str(value)


def _string_keys(value: Any) -> Any:
    """``value`` with the keys of its dicts as JSON writes them (42 → "42", None → "null"), so that keys of mixed
    types sort; a key JSON cannot hold (a tuple) is left for ``json.dumps`` to refuse. Two keys that JSON would
    write alike (1 and "1") are refused: one of their values would be lost."""
    if isinstance(value, Mapping):
        out: dict[Any, Any] = {}
        for k, v in value.items():
            key = json.dumps(k) if isinstance(k, (int, float, bool)) or k is None else k
            if key in out:
                raise RecorderError(f"meta holds two keys written alike in JSON ({key!r}): one value would be lost")
            out[key] = _string_keys(v)
        return out
    if isinstance(value, (list, tuple)):
        return [_string_keys(v) for v in value]
    return value


def _storable(text: str, what: str, where: str) -> str:
    """``text`` if it may name something in the file: at most :data:`NAME_MAX_LENGTH` characters, and an HDF5 UTF-8
    string can hold it: no NUL character, no lone surrogate."""
    if len(text) > NAME_MAX_LENGTH:
        raise RecorderError(
            f"{where}: {what} {text[:40]!r}… of {len(text):,} characters is refused, at most {NAME_MAX_LENGTH:,}: "
            "a name, not a text"
        )
    if "\x00" in text:
        raise RecorderError(f"{where}: {what} {text!r} contains a NUL character, which HDF5 strings cannot hold")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise RecorderError(f"{where}: {what} {text!r} is not valid Unicode (it holds a lone surrogate)") from None
    return text


def _link_name(name: Any, what: str, where: str) -> str:
    """``name`` if it names one HDF5 object directly: not empty, no '/' (a path to a nested group), not '.' or '..'."""
    if isinstance(name, str):
        _storable(name, what, where)  # first: the message below quotes the name
    if not isinstance(name, str) or not name or "/" in name or name in (".", ".."):
        raise RecorderError(f"{where}: {what} must be a non-empty string without '/', not '.' or '..' (got {name!r})")
    return name


def _check_folder(path: Path, folder: Path) -> None:
    """Refuse ``path`` when ``folder``, where its run is to be written (through a link: the folder it leads to), is
    missing or a file: open() said "No such file or directory" and named the run, not the folder (a review)."""
    if folder.is_dir():
        return
    shown = folder if path.is_symlink() else path.parent
    if folder.exists():
        raise RecorderError(f"{path}: {shown} is a file, not a folder")
    raise RecorderError(f"{path}: folder {shown} does not exist: create it first (the recorder does not)")


def _check_creation_path(path: Path, creating: Path) -> None:
    """Refuse ``path`` when something the recorder did not leave is where it creates the run (``creating``, inside
    the folder ``.<name>.new``): a file in the folder's place, a folder or a device in the file's. mkdir and open
    said "File exists" or "Is a directory" of the run, which did not exist (a review)."""
    folder = creating.parent
    if os.path.lexists(folder) and not folder.is_dir():
        spot, holds = folder, "the folder it creates the run in first"
    elif os.path.lexists(creating) and (creating.is_dir() or (creating.exists() and not creating.is_file())):
        spot, holds = creating, "the file it creates the run as first"
    else:
        return
    raise RecorderError(f"{path}: {spot} is in the way, where the recorder puts {holds}: move it away or remove it")


def _client_id(cid: Any, where: str) -> str:
    if isinstance(cid, (bool, np.bool_)) or not isinstance(cid, (str, int, np.integer)):
        raise RecorderError(f"{where}: client id must be str or int, got {type(cid).__name__}")
    try:
        text = str(cid)
    except ValueError:  # an int of more digits than Python writes out (4300): its ValueError said nothing of the id
        text = None
    if text is None or len(text) > CLIENT_ID_MAX_LENGTH:
        size = "more than 4,300 digits" if text is None else f"{len(text):,} characters"
        raise RecorderError(
            f"{where}: client id of {size} is refused, at most {CLIENT_ID_MAX_LENGTH:,}: an id names a client"
        )
    if not text:
        raise RecorderError(f"{where}: client id is empty")
    return _storable(text, "client id", where)


def _numbers(values: Mapping[str, Any] | None, where: str) -> dict[str, float]:
    if values is None:
        return {}
    if not isinstance(values, Mapping):
        raise RecorderError(f"{where}: metrics must be a mapping of name to number")
    out: dict[str, float] = {}
    for name, value in values.items():
        if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:
            value = value.item()
        if not isinstance(name, str):
            raise RecorderError(f"{where}: metric name {name!r} must be a string, got {type(name).__name__}")
        _storable(name, "metric name", where)  # first: the messages below quote the name
        if not isinstance(value, (Real, bool)):
            raise RecorderError(f"{where}: metric {name!r} must be a number, got {_brief(value)}")
        try:
            number = float(value)
        except OverflowError:  # an int beyond ~1.8e308
            raise RecorderError(f"{where}: metric {name!r} is too large for a float64 (metrics are stored as float64)") from None
        out[name] = number
    return out
