"""Reading a run file: :func:`open_run` and :class:`Run`.

The reader is lazy: opening a run reads the layer table and the list of rounds;
every array is read when asked for, so memory does not grow with the number of
rounds. It validates the file against :mod:`recorder.spec` and refuses, with one
clear line (:class:`~fedforensics.errors.RunFormatError`), a file that is not an
HDF5 file, not a fedforensics run, of a newer format version, truncated, or
missing required parts. A run whose writer was killed mid-round (a hot journal
beside it) is read as of its last committed round, without modifying it.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from recorder import spec
from recorder.journal import RecoveredFile, hot_journal, journal_path, read_journal
from recorder.lock import writer_holds

from . import chunk_read
from .errors import FedForensicsError, RunFormatError, one_line

__all__ = ["Layer", "Run", "open_run"]


@dataclass(frozen=True)
class Layer:
    """One entry of the layer table."""

    index: int
    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    analysable: bool

    @property
    def size(self) -> int:
        """Number of parameters."""
        return int(np.prod(self.shape, dtype=np.int64))


def _member(parent: h5py.Group, name: str, where: str, kind: type[h5py.Group] | type[h5py.Dataset] | tuple[type, ...]) -> Any:
    """``parent[name]``, refused with one line naming ``where`` unless it is there and a group or dataset, as ``kind``
    (either, for a tuple of both)."""
    found = parent.get(name)
    if found is None and _has(parent, name):  # linked, but HDF5 cannot open it: damage, not a part left out
        try:
            parent[name]
        except (KeyError, OSError, RuntimeError) as exc:
            reason = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else one_line(exc)
            raise RunFormatError(f"{where}: {_shown(name)} cannot be opened, damaged run file ({reason})") from None
    if found is None:
        raise RunFormatError(f"{where} lacks {_shown(name)}")
    if not isinstance(found, kind):
        raise RunFormatError(f"{where}: {_shown(name)} is not a {'group' if kind is h5py.Group else 'dataset'}")
    return found


def _has(parent: h5py.Group, name: str) -> bool:
    """Whether ``parent`` links ``name``, whether or not HDF5 can open it: ``name in parent`` is False for an object
    whose header is damaged, and a damaged ground truth read as none recorded (a fuzzed run); a damaged index of
    names lists a member that a lookup by its name does not find."""
    return parent.get(name, getlink=True) is not None or name in list(parent)


def _optional_group(parent: h5py.Group, name: str, where: str) -> h5py.Group | None:
    """``parent[name]`` when present, refused unless a group."""
    return _member(parent, name, where, h5py.Group) if _has(parent, name) else None


def _list(parent: h5py.Group, name: str, where: str, strings: bool = False) -> np.ndarray:
    """The values of the one-dimensional dataset ``parent[name]``; with ``strings``, one of variable-length values that
    are not text (sequences, references) is refused unread: HDF5 crashed reading one whose type a flipped bit had
    made an unknown kind of sequence (a fuzzed run: a segmentation fault, no line)."""
    dataset = _member(parent, name, where, h5py.Dataset)
    if dataset.ndim != 1:
        raise RunFormatError(f"{where}: '{name}' has shape {dataset.shape}, not a list")
    if strings and dataset.size and dataset.dtype.kind == "O" and h5py.check_string_dtype(dataset.dtype) is None:
        raise RunFormatError(f"{where}: '{name}' holds {dataset.dtype}, not strings")
    return dataset[()]


def _strings(parent: h5py.Group, name: str, where: str) -> list[str]:
    """The texts of the one-dimensional dataset ``parent[name]``, refused unless it holds strings
    (integer client ids are stored as their decimal strings: 7 and "07" are different ids)."""
    values = _list(parent, name, where, strings=True)
    if not len(values):  # an empty list h5py was not told the type of is float64
        return []
    if values.dtype.kind not in "OSU" or not isinstance(values[0], (bytes, str)):  # an object array may hold anything
        raise RunFormatError(f"{where}: '{name}' holds {values.dtype}, not strings")
    try:
        texts = [s.decode("utf-8") if isinstance(s, bytes) else str(s) for s in values]
    except UnicodeDecodeError:
        raise RunFormatError(f"{where}: '{name}' holds bytes that are not UTF-8 text") from None
    # a fixed-length string keeps a NUL inside it (numpy strips trailing ones only): format.md's text has none
    if any("\0" in text for text in texts):
        raise RunFormatError(f"{where}: '{name}' holds a string with a NUL character inside it")
    return texts


def _numbers(parent: h5py.Group, name: str, where: str) -> list[float]:
    """The numbers of the one-dimensional dataset ``parent[name]``."""
    values = _list(parent, name, where)
    if values.dtype.kind not in "biuf":
        raise RunFormatError(f"{where}: '{name}' holds {values.dtype}, not numbers")
    return [float(v) for v in values]


#: The numpy kinds of a layer, a state and an attachment (docs/format.md): booleans, integers, real floats.
_NUMERIC = "biuf"
_NOT_NUMERIC = "not booleans, integers or real floats"

#: The range of the format's int64 scalars and counts (an unsigned 64-bit value beyond it is not one).
INT64 = np.iinfo(np.int64)


def _one(value: object) -> object:
    """``value``, or the element of an array of exactly one (a number or a text): a writer in another language
    (MATLAB's ``h5writeatt``, some HDF5 wrappers) stores a scalar attribute as an array of shape (1,) or (1, 1)."""
    if isinstance(value, np.ndarray) and value.size == 1:
        return value.reshape(())[()]
    return value


def _integer(value: object) -> int | None:
    """``value`` as an ``int`` when it is one integer an int64 holds (as an int64 scalar attribute reads, or an array
    of one), else ``None``."""
    value = _one(value)
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool) and INT64.min <= int(value) <= INT64.max:
        return int(value)
    return None


def _boolean(value: object) -> bool | None:
    """``value`` as a ``bool`` when it is one boolean (h5py reads HDF5's boolean enum as ``numpy.bool_``; another
    writer may store the integer 0 or 1, or an array of one), else ``None``."""
    value = _one(value)
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)) and int(value) in (0, 1):
        return bool(value)
    return None


def _unique(values: list[str], what: str, where: str, empty: bool = False) -> list[str]:
    """``values``, refused with one line when one appears twice, or is empty unless ``empty`` allows it (client ids
    are non-empty; a metric's name may be empty, as the recorder and Flower's records take it)."""
    seen: set[str] = set()
    for value in values:
        if not value and not empty:
            raise RunFormatError(f"{where}: {what} holds an empty string")
        if value in seen:
            raise RunFormatError(f"{where}: {what} names {_shown(value)} twice")
        seen.add(value)
    return values


#: The shape of ``created``: date, T, hours, minutes, seconds, UTC (docs/format.md).
_UTC_SECOND = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\+00:00|Z)", re.ASCII)


def _utc_second(text: str) -> bool:
    """Whether ``text`` is an ISO 8601 time in UTC to the second (``2026-11-22T18:59:34+00:00``, or ``Z``)."""
    if not _UTC_SECOND.fullmatch(text):  # fromisoformat takes an hour alone (T18+00:00) or a minute
        return False
    try:
        return datetime.fromisoformat(text).utcoffset() == timedelta(0)
    except ValueError:  # the shape of a time, not a time (month 13)
        return False


#: This machine's byte order as numpy writes it in a dtype.
_NATIVE = "<" if np.little_endian else ">"


def _declared_order(values: np.ndarray, declared: np.dtype) -> np.ndarray:
    """``values`` of a variable-length element whose file type is ``declared``, read in that byte order: h5py
    returns them as native integers without swapping their bytes (an element of an explicit byte order is as
    declared already)."""
    if values.dtype.byteorder in ("=", _NATIVE) and values.dtype.itemsize == declared.itemsize:
        return values.byteswap()
    return values


#: The longest text of a file a one-line message quotes whole.
QUOTED = 200


def _cut(text: str) -> str:
    """``text`` for a one-line message, cut past :data:`QUOTED` characters with how many it had (a failure reason or a
    layer's shape of another writer may be millions long)."""
    return text if len(text) <= QUOTED else f"{text[:QUOTED]}… ({len(text):,} characters)"


def _shown(value: object) -> str:
    """A value of the file (an attribute, an id, a name) for a one-line message: ``0``, ``'1'``, ``an array of shape
    (2,)``; a text escaped as ``repr`` escapes it, cut past :data:`QUOTED` characters (or bytes)."""
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape}"
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, (str, bytes)) and len(value) > QUOTED:
        return f"{value[:QUOTED]!r}… ({len(value):,} {'characters' if isinstance(value, str) else 'bytes'})"
    return repr(value)


def _key(name: str) -> str:
    """An HDF5 member's name from the file, unquoted in a one-line message while short and printable (``0000000003``),
    else as :func:`_shown` shows a text."""
    return name if len(name) <= QUOTED and name.isprintable() else _shown(name)


def raised_by_hdf5(exc: BaseException) -> bool:
    """Whether ``exc`` is HDF5 reporting a file it cannot read: an error h5py raises for the library (RuntimeError,
    OSError, KeyError, ValueError), last raised in h5py's own modules. A TypeError there is a call of ours h5py
    refused (an unsorted index), not the file: a defect."""
    if isinstance(exc, TypeError) or not isinstance(exc, (RuntimeError, OSError, KeyError, ValueError)):
        return False
    tb = exc.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    where = tb.tb_frame.f_code.co_filename  # h5py's Python modules, or its compiled ones ("h5py/h5o.pyx")
    return where.startswith(os.path.dirname(h5py.__file__) + os.sep) or where.startswith(("h5py/", "h5py\\"))


class _RoundIndex:
    """One round's client ids, their rows, and its update tables, each looked up when first read.

    What needs the datasets' shapes is checked here, when the round is first read,
    rather than for every round when the file is opened (opening a 30-round run took
    3.5 times as long with it): the client ids are unique and non-empty, the
    per-client datasets have one row per client, ``num_samples`` and ``nonfinite``
    are (n,), and ``updates/<i>`` is (n, *shape_i) of numbers (when the layer is
    first read). What needs the data (dtypes of the small tables, the columns of
    ``metrics``) is checked by the methods that read it, at no extra HDF5 call.
    """

    def __init__(self, group: h5py.Group, path: Path, number: int, checked: list[str] | None = None) -> None:
        """``checked``: the round's client ids, when an earlier index of it read and checked them."""
        self.where = f"{path}: round {number}"
        self._updates = _member(group, spec.UPDATES, self.where, h5py.Group)
        self._tables: dict[int, tuple[h5py.Dataset, bool]] = {}
        self._offsets: dict[int, list[int]] = {}
        if checked is not None:
            self.clients = checked
            self.rows = {cid: i for i, cid in enumerate(checked)}
            return
        self.clients = _strings(group, spec.CLIENTS, self.where)
        self.rows = {cid: i for i, cid in enumerate(self.clients)}
        if len(self.rows) != len(self.clients):
            twice = next(cid for i, cid in enumerate(self.clients) if self.rows[cid] != i)
            raise RunFormatError(
                f"{self.where}: client {_shown(twice)} appears {self.clients.count(twice)} times in '{spec.CLIENTS}' "
                "(ids are unique within a round)"
            )
        if "" in self.rows:
            raise RunFormatError(f"{self.where}: '{spec.CLIENTS}' holds an empty client id")
        n = len(self.clients)
        self._check_shape(spec.NUM_SAMPLES, group[spec.NUM_SAMPLES], (n,))
        self._check_shape(spec.NONFINITE, group[spec.NONFINITE], (n,))
        metrics = _member(group, spec.METRICS, self.where, h5py.Dataset)  # its columns and dtype: Run.metrics, which reads it and metric_names
        self._check_shape(spec.METRICS, metrics, (n, *metrics.shape[1:]))

    def _check_shape(self, name: str, dataset: h5py.Dataset, shape: tuple[int, ...], layer: Layer | None = None) -> None:
        """Refuse ``dataset`` unless it is a dataset with one row per client, then the whole ``shape``
        (``layer``'s update table: (n, *layer.shape))."""
        if not isinstance(dataset, h5py.Dataset):
            raise RunFormatError(f"{self.where}: '{name}' is not a dataset")
        actual = dataset.shape
        if actual != shape:
            if actual[:1] != shape[:1]:
                rows = actual[0] if actual else "no"
                raise RunFormatError(f"{self.where}: '{name}' has {rows} rows for {shape[0]} clients")
            detail = f" ({shape[0]} clients × layer {_shown(layer.name)} of shape {layer.shape})" if layer else ""
            raise RunFormatError(f"{self.where}: '{name}' has shape {actual}, not {shape}{detail}")

    def table(self, layer: Layer) -> tuple[h5py.Dataset, bool]:
        """The update table of ``layer``, and whether its rows are raw float32 chunks."""
        if layer.index not in self._tables:
            key = spec.layer_key(layer.index)
            try:
                dataset = self._updates[key]
            except KeyError:
                raise RunFormatError(f"{self.where}: '{spec.UPDATES}' lacks '{key}' (layer {_shown(layer.name)})") from None
            self._check_shape(f"{spec.UPDATES}/{key}", dataset, (len(self.clients), *layer.shape), layer)
            if dataset.dtype.kind != "f":  # h5py keeps the dtype: _rows_are_chunks reads it again for free
                raise RunFormatError(f"{self.where}: '{spec.UPDATES}/{key}' holds {dataset.dtype}, not floating-point numbers")
            direct = _rows_are_chunks(dataset)  # every row stored: nothing left unwritten
            unwritten = None if direct else _never_written(dataset, lambda row: f"row {row} (client {_shown(self.clients[row])})")
            if unwritten:
                raise RunFormatError(
                    f"{self.where}: '{spec.UPDATES}/{key}' (layer {_shown(layer.name)}): {unwritten} "
                    "(HDF5 reads what was never written as the table's fill value)"
                )
            self._tables[layer.index] = (dataset, direct)
        return self._tables[layer.index]

    def offsets(self, layer: Layer) -> list[int]:
        """The file offset of each row of ``layer``'s table, one whose rows are chunks (:meth:`table`); refuses a
        table whose chunk of a row is not that row's bytes."""
        if layer.index not in self._offsets:
            dataset = self.table(layer)[0]
            try:
                self._offsets[layer.index] = chunk_read.row_offsets(dataset)
            except ValueError as exc:
                key = f"{spec.UPDATES}/{spec.layer_key(layer.index)}"
                raise RunFormatError(f"{self.where}: '{key}' (layer {_shown(layer.name)}): {exc}") from None
        return self._offsets[layer.index]


def _rows_are_chunks(dataset: h5py.Dataset) -> bool:
    """Whether every row of an update table is one stored, unfiltered, native float32 chunk.

    Such rows are read straight into the caller's array, skipping HDF5's selection
    and conversion machinery: from the file at each chunk's offset
    (:mod:`~fedforensics.chunk_read`), or with HDF5's direct chunk read where the
    file is read through a journal's recovery. Any other layout the format allows
    is read the ordinary way.
    """
    return (
        dataset.ndim > 1
        and dataset.chunks == (1, *dataset.shape[1:])
        and dataset.dtype == np.dtype(np.float32)
        and dataset.id.get_create_plist().get_nfilters() == 0
        and dataset.id.get_num_chunks() == dataset.shape[0]
    )


def _never_written(dataset: h5py.Dataset, row: Callable[[int], str] = str) -> str | None:
    """What of ``dataset`` was never written, or None: HDF5 reads it as the dataset's fill value, numbers nobody
    wrote (a writer created a table for every client asked and one reply never came). ``row`` names a row of a
    table chunked by row. Reads the storage's index, not the data; a virtual dataset's storage is elsewhere."""
    if dataset.size == 0 or dataset.is_virtual:
        return None
    if dataset.chunks is None:  # contiguous (stored when first written) or compact (always stored)
        return None if dataset.id.get_storage_size() else "nothing of it was written"
    expected = int(np.prod([-(-size // chunk) for size, chunk in zip(dataset.shape, dataset.chunks)], dtype=np.int64))
    stored = dataset.id.get_num_chunks()
    if stored >= expected:
        return None
    if dataset.chunks == (1, *dataset.shape[1:]):
        tail = (0,) * (dataset.ndim - 1)
        missing = next(r for r in range(dataset.shape[0]) if dataset.id.get_chunk_info_by_coord((r, *tail)).byte_offset is None)
        return f"{row(missing)} was never written"
    return f"{expected - stored} of its {expected} chunks were never written"


def _which_rounds(rounds: list[int], most: int = 6) -> str:
    """A run's rounds for a message: "it has rounds 0 and 5"; past ``most``, "it has rounds 0, 1, …, 29 (30
    rounds)"; "it has no rounds". ("[0]..[5]" read as the rounds 0 to 5, and "[]..[]" as nothing.)"""
    if not rounds:
        return "it has no rounds"
    if len(rounds) == 1:
        return f"it has round {rounds[0]} only"
    if len(rounds) > most:
        return f"it has rounds {rounds[0]}, {rounds[1]}, …, {rounds[-1]} ({len(rounds)} rounds)"
    return f"it has rounds {', '.join(map(str, rounds[:-1]))} and {rounds[-1]}"


class Run:
    """A recorded federation, read lazily. Use :func:`open_run` to get one."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._fileobj: RecoveredFile | None = None
        self._last_index: tuple[int, _RoundIndex] | None = None
        self._clients: dict[int, list[str]] = {}  # each round's ids, once read and checked (8 bytes a client-round)
        self._ids: dict[str, str] = {}  # one string per id, shared by every round's list
        self._metric_names: dict[int, tuple[str, ...]] = {}  # each round's metric names, once read and checked
        self._name_tuples: dict[tuple[str, ...], tuple[str, ...]] = {}  # one tuple for the rounds that share them
        self._global_faults: dict[int, str | None] = {}  # round -> its global model's fault (None: sound), once checked
        self.recovered = False
        self._opened_as = self._stamp()
        self._file: h5py.File | None = None
        self._file = self._open(self.path)
        # the file's own descriptor, for reading update rows at their chunks' offsets (chunk_read): where HDF5 reads
        # the file itself ("sec2"), not a journal's recovery of it (a Python file object: "fileobj"), and where
        # those offsets count the bytes before the superblock (HDF5 before 1.14.4 left a userblock out of them)
        self._fd: int | None = None
        offsets_are_the_file_s = self._h5.userblock_size == 0 or h5py.version.hdf5_version_tuple >= (1, 14, 4)
        if self._h5.driver == "sec2" and hasattr(os, "preadv") and offsets_are_the_file_s:
            self._fd = self._h5.id.get_vfd_handle()
        try:
            self._validate()
        except RunFormatError as exc:
            self.close()
            if self.changed():  # a writer mid-round leaves a round group half written
                raise self.changed_error(exc) from None
            raise
        except (KeyError, OSError, ValueError, TypeError, AttributeError, RuntimeError) as exc:
            damaged = self.damaged_error(str(exc))
            self.close()
            if self.changed():
                raise self.changed_error(exc) from None
            raise damaged from None

    def _stamp(self) -> tuple[int, int] | None:
        try:
            stat = self.path.stat()
        except OSError:
            return None
        return stat.st_size, stat.st_mtime_ns

    def changed(self) -> bool:
        """Whether the file changed since it was opened, or a writer holds it now: a writer still at work (one
        mid-round leaves groups half written whether or not its last change reached the file's size and time)."""
        return self._stamp() != self._opened_as or writer_holds(self.path)

    def changed_error(self, failure: BaseException | None = None) -> RunFormatError:
        """The error to raise when reading failed because the file changed under the reader (``failure``: what
        reading raised, named too: a writer's lock says a writer is there, not that it caused the failure)."""
        cause = f" (reading failed with {type(failure).__name__}: {str(failure).strip() or '-'})" if failure is not None else ""
        return RunFormatError(
            f"{self.path}: the file changed while it was being read (a writer is still at work?): "
            f"audit a finished run, or a copy taken while the writer is stopped{cause}"
        )

    @contextmanager
    def guarded(self) -> Iterator[None]:
        """Turn what HDF5 raises when a writer changes the file under this reader into one clear error
        (HDF5 gives a reader no isolation); any other failure passes through. A round found malformed
        while the file changed is said to be the change too: a writer mid-round can make it look so."""
        try:
            yield
        except (KeyError, OSError, RuntimeError, AttributeError, ValueError, RunFormatError) as exc:
            if self.changed():
                raise self.changed_error(exc) from None
            if raised_by_hdf5(exc):  # damage found where it is first read (a chunk that no longer decompresses)
                raise self.damaged_error(one_line(exc)) from None
            raise

    def damaged_error(self, detail: str) -> RunFormatError:
        """The error for a file HDF5 finds damaged; where its writer did not finish it and no journal was read, with
        the likely cause (a fresh-eyes user copied a killed writer's run without the journal it left beside it)."""
        try:
            unfinished = not self.recovered and _boolean(self._h5.attrs.get(spec.ATTR_FINISHED, True)) is False
        except (OSError, KeyError, RuntimeError, ValueError, TypeError, RunFormatError):  # damaged too: no hint
            unfinished = False
        hint = (
            f"; its writer did not finish it: a killed writer's run is read through the journal it left beside it "
            f"({journal_path(self.path).name}), which a copy of the run must take along"
            if unfinished
            else ""
        )
        return RunFormatError(f"{self.path}: damaged run file ({detail}){hint}")

    # -- opening and validation -------------------------------------------------
    def _open(self, path: Path) -> h5py.File:
        if not path.exists():
            raise RunFormatError(f"{path}: no such file")
        if path.is_dir():
            raise RunFormatError(f"{path}: is a directory, not a run file")
        if not path.is_file():  # a FIFO made open() wait for a writer for ever; <(cat run.h5) read "not an HDF5 file" (QA)
            raise RunFormatError(f"{path}: is not a regular file (a pipe or a device?): HDF5 reads a run by seeking, so save it to a file first")
        try:
            journal = read_journal(path)
        except OSError as exc:
            raise RunFormatError(f"{path}: cannot read its journal ({exc.strerror})") from None
        try:
            if journal is not None:
                # The writer died (or is still writing) mid-round: read the last committed state.
                self._fileobj = RecoveredFile(path, *journal)
                self.recovered = True
                return h5py.File(self._fileobj, "r")
            return h5py.File(path, "r", locking=False)
        except BaseException as exc:
            if self._fileobj is not None:  # whatever ended the open (an interrupt too), the handle goes with it
                self._fileobj.close()
            if not isinstance(exc, OSError):
                raise
            if self.changed():
                raise self.changed_error(exc) from None
            if journal is None and not h5py.is_hdf5(path):
                raise RunFormatError(f"{path}: not an HDF5 file") from None
            message = str(exc).split("(", 1)[0].strip() or "cannot be opened"
            if "truncated" in str(exc):
                message = "truncated file (it was cut short, e.g. by a full disk or an interrupted copy)"
            elif "file locking flag values don't match" in str(exc):  # HDF5 keeps one handle per file and process
                message = (
                    "it is open already in this process, with other file-locking settings (an h5py.File of it left "
                    "open?): close that first, or open it there with h5py.File(path, 'r', locking=False)"
                )
            if journal is not None:  # the damage may be the journal's: say which file was read through which
                message = (
                    f"its journal {hot_journal(path).name} (left by a writer that stopped mid-write) gives a last "
                    f"commit HDF5 cannot open ({message}): the file or its journal is damaged"
                )
            raise RunFormatError(f"{path}: {message}") from None

    def _validate(self) -> None:
        root = self._h5
        name = _one(root.attrs.get(spec.ATTR_FORMAT))  # a text array of one too, as a number's (format.md, "scalar")
        if isinstance(name, bytes):
            try:
                name = name.decode()
            except UnicodeDecodeError:  # shown as the bytes it is (it was called a damaged file)
                pass
        if name is None:
            raise RunFormatError(f"{self.path}: not a fedforensics run (no '{spec.ATTR_FORMAT}' attribute = {spec.FORMAT_NAME!r})")
        if not isinstance(name, str) or name != spec.FORMAT_NAME:  # an array compared element-wise was "damaged"
            raise RunFormatError(
                f"{self.path}: not a fedforensics run ('{spec.ATTR_FORMAT}' is {_shown(name)}, not {spec.FORMAT_NAME!r})"
            )
        raw = root.attrs.get(spec.ATTR_VERSION)
        if raw is None:
            raise RunFormatError(f"{self.path}: no '{spec.ATTR_VERSION}' attribute")
        version = _integer(raw)
        if version is None:
            raise RunFormatError(f"{self.path}: '{spec.ATTR_VERSION}' is {_shown(raw)}, not an integer")
        if version not in spec.READABLE_VERSIONS:
            if version > spec.FORMAT_VERSION:
                raise RunFormatError(
                    f"{self.path}: format version {version} is newer than this fedforensics reads "
                    f"({spec.FORMAT_VERSION}): upgrade fedforensics"
                )
            readable = ", ".join(map(str, spec.READABLE_VERSIONS))
            raise RunFormatError(f"{self.path}: unknown format version {version} (this fedforensics reads {readable})")
        self.format_version = version
        if spec.ROUNDS not in root:
            raise RunFormatError(f"{self.path}: missing required group /{spec.ROUNDS}")
        rounds: dict[int, str] = {}
        for key, group in (members := _member(root, spec.ROUNDS, str(self.path), h5py.Group)).items():
            if group is None:  # h5py's items() gives None for an object HDF5 cannot open: damage, not a wrong layout
                try:
                    members[key]
                except (KeyError, OSError, RuntimeError) as exc:  # its reason ("bad object header version number")
                    reason = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else one_line(exc)  # unquoted
                    raise self.damaged_error(f"/{spec.ROUNDS}/{key}: {reason}") from None
            if not isinstance(group, h5py.Group):
                raise RunFormatError(f"{self.path}: /{spec.ROUNDS}/{_key(key)} is not a round group")
            attrs = group.attrs
            complete = attrs.get(spec.ATTR_COMPLETE)
            if complete is not None and _boolean(complete) is None:
                raise RunFormatError(f"{self.path}: round group {_key(key)} has {_shown(complete)} as its '{spec.ATTR_COMPLETE}' attribute, not a boolean")
            if not _boolean(complete):
                raise RunFormatError(f"{self.path}: round group {_key(key)} is incomplete")
            raw = attrs.get(spec.ATTR_ROUND)
            number = _integer(raw)
            if number is None or number < 0:
                said = "has no" if raw is None else f"has {_shown(raw)} as its"
                raise RunFormatError(f"{self.path}: round group {_key(key)} {said} '{spec.ATTR_ROUND}' attribute (a round number ≥ 0)")
            if number in rounds:
                raise RunFormatError(f"{self.path}: round groups {_key(rounds[number])} and {_key(key)} both hold round {number}")
            if key != spec.round_key(number):
                raise RunFormatError(
                    f"{self.path}: round group {_key(key)} holds round {number}: its name must be {spec.round_key(number)!r} "
                    "(the round number, zero-padded to 10 digits)"
                )
            rounds[number] = key
        self._round_keys = dict(sorted(rounds.items()))
        self._rounds_group = root[spec.ROUNDS]  # looked up once: every per-round read starts here
        if rounds and spec.LAYERS not in root:
            raise RunFormatError(f"{self.path}: missing required group /{spec.LAYERS}")
        self.layers = self._read_layers() if spec.LAYERS in root else []
        for number, key in self._round_keys.items():
            group = root[spec.ROUNDS][key]
            for required in (
                spec.CLIENTS, spec.NUM_SAMPLES, spec.NONFINITE, spec.METRICS, spec.METRIC_NAMES, spec.GLOBAL, spec.UPDATES
            ):
                if required not in group:
                    raise RunFormatError(f"{self.path}: round {number} lacks '{required}'")
            where = f"{self.path}: round {number}"
            updates, state = (_member(group, name, where, h5py.Group) for name in (spec.UPDATES, spec.GLOBAL))
            for part, members in ((spec.UPDATES, updates), (spec.GLOBAL, state)):
                if len(members) != len(self.layers):  # say which group and which layer (a fresh-eyes user's deletion)
                    keys = {spec.layer_key(i): layer.name for i, layer in enumerate(self.layers)}
                    missing = [f"{k} ({_shown(keys[k])})" for k in keys if k not in members]
                    extra = [k for k in members if k not in keys]
                    raise RunFormatError(
                        f"{where}: its {part!r} group holds {len(members)} of the {len(self.layers)} layers"
                        + (f"; missing {', '.join(missing[:3])}" if missing else "")
                        + (f"; not in the layer table: {', '.join(map(_key, extra[:3]))}" if extra else "")
                    )

    def _read_layers(self) -> list[Layer]:
        table = _member(self._h5, spec.LAYERS, str(self.path), h5py.Group)
        where = f"{self.path}: '/{spec.LAYERS}'"
        names = _strings(table, spec.LAYER_NAME, where)
        dtypes = _strings(table, spec.LAYER_DTYPE, where)
        shapes = _list(table, spec.LAYER_SHAPE, where)
        declared = h5py.check_vlen_dtype(table[spec.LAYER_SHAPE].dtype)
        if declared in (str, bytes) or shapes.dtype.kind in "SU":  # numbers stored as text ("3,4")
            raise RunFormatError(f"{where}: '{spec.LAYER_SHAPE}' holds strings, not lists of integers ≥ 0")
        if declared is not None and declared.byteorder not in ("=", "|", _NATIVE):
            # h5py (3.16) hands a variable-length column of the other byte order back as native integers whose bytes
            # it did not swap: (4, 3) stored big-endian read as (288230376151711744, 216172782113783808)
            shapes = [_declared_order(np.asarray(dims), declared) for dims in shapes]
        analysable = _list(table, spec.LAYER_ANALYSABLE, where)
        # HDF5 has no boolean type: h5py writes an enum; another writer may write integers, which must be 0 or 1
        if analysable.dtype.kind not in "biu":
            raise RunFormatError(f"{where}: '{spec.LAYER_ANALYSABLE}' holds {analysable.dtype}, not booleans")
        if not np.isin(analysable, (0, 1)).all():
            raise RunFormatError(f"{where}: '{spec.LAYER_ANALYSABLE}' holds integers other than 0 and 1, not booleans")
        if not (len(names) == len(dtypes) == len(shapes) == len(analysable)):
            raise RunFormatError(f"{self.path}: the layer table's columns differ in length")
        layers: list[Layer] = []
        first: dict[str, int] = {}
        for i, name in enumerate(names):
            where = f"{self.path}: layer {i} of the layer table"
            if not name:
                raise RunFormatError(f"{where} has an empty name")
            if name in first:
                raise RunFormatError(f"{self.path}: the layer table names {_shown(name)} twice (layers {first[name]} and {i})")
            first[name] = i
            dims = np.asarray(shapes[i])
            if dims.ndim != 1 or dims.dtype.kind not in "iu" or (dims < 0).any():
                raise RunFormatError(f"{where} ({_shown(name)}) has shape {_cut(repr(dims.tolist()))}, not a list of integers ≥ 0")
            try:
                dtype = np.dtype(dtypes[i])
            except TypeError:
                raise RunFormatError(f"{where} ({_shown(name)}) has dtype {_shown(dtypes[i])}, not a numpy dtype") from None
            if dtype.kind == "V":  # marked not analysable, as format.md's rule has it, it was left out of every analysis
                raise RunFormatError(
                    f"{where} ({_shown(name)}) has dtype {_shown(dtypes[i])}, raw bytes, not numbers (bfloat16 or an 8-bit float "
                    "stored as it is?): store it as float32 ('<f4'), which holds each of their values exactly (docs/format.md)"
                )
            if dtype.kind not in _NUMERIC:  # complex, text, times: marked not analysable, they were left out as void was
                raise RunFormatError(f"{where} ({_shown(name)}) has dtype {_shown(dtypes[i])}, {_NOT_NUMERIC} (docs/format.md)")
            if bool(analysable[i]) != (dtype.kind == "f"):  # trusted as it was, all False audited float layers as none
                marked = "analysable" if analysable[i] else "not analysable"
                raise RunFormatError(
                    f"{where} ({_shown(name)}) has dtype {_shown(dtypes[i])} but is marked {marked} "
                    "(the floating-point layers are analysable, the others not)"
                )
            layers.append(Layer(i, name, tuple(int(d) for d in dims), dtype, bool(analysable[i])))
        return layers

    def validate(self) -> None:
        """Check every part of the file that docs/format.md defines, beyond what opening checks.

        Reads only the small tables (ids, counts, metrics, failures, ground truth), the
        datasets' shapes and types and where each update row is stored, never an update's or
        a state's values: a run's validation costs about one pass over its rounds' metadata.
        ``fedforensics inspect`` calls it; the analysis meets the same checks as it reads each part.

        Raises
        ------
        RunFormatError
            The first part found malformed, in one line.
        """
        self._check_header()
        _ = self.meta, self.finished, self.ground_truth  # each checks its part as it reads it
        self._check_attachments()
        for r in self.rounds:
            index = self._index(r)
            for layer in self.layers:
                if index.table(layer)[1] and index.clients and layer.size:  # rows read at their chunks' offsets
                    index.offsets(layer)
            _ = self.num_samples(r), self.nonfinite(r), self.metrics(r), self.failures(r), self.global_metrics(r)
        self._check_global_states()
        self._check_final_state()

    def damaged_parts(self) -> dict[str, str]:
        """What is malformed among the parts no verdict rests on: ``"header"`` (the root's ``created``,
        ``recorder_version`` and ``meta`` attributes present as text, ``created`` in ISO 8601 UTC, ``meta`` a JSON
        object), ``"global"``
        (the rounds' global models, which only ``avoidance``, ``free-rider`` and trigger inversion read), and
        trigger inversion's inputs, ``"attachments"`` and ``"final"`` (the final state); each with one line
        saying what (the first fault found); empty when they are sound or absent.

        :meth:`validate` refuses the file for any of them; an audit names them instead, so that a run whose
        updates are sound is still audited, and not as if nothing were wrong.
        """
        return dict(self._damaged)

    @cached_property
    def _damaged(self) -> dict[str, str]:
        problems = {}
        for part, check in (
            ("header", self._check_header),
            ("global", self._check_global_states),
            ("attachments", self._check_attachments),
            ("final", self._check_final_state),
        ):
            try:
                check()
            except RunFormatError as exc:
                problems[part] = str(exc)
        return problems

    def _check_header(self) -> None:
        for name in (spec.ATTR_RECORDER_VERSION, spec.ATTR_CREATED, spec.ATTR_META):
            value = _one(self._h5.attrs.get(name))
            if value is None:
                raise RunFormatError(f"{self.path}: no '{name}' attribute (docs/format.md: every run has one)")
            if not isinstance(value, (str, bytes)):
                raise RunFormatError(f"{self.path}: '{name}' is {_shown(value)}, not a string")
            if isinstance(value, bytes):  # a string is UTF-8 (format.md): 'recorder_version' was shown with U+FFFD
                try:
                    value.decode("utf-8")
                except UnicodeDecodeError:
                    raise RunFormatError(f"{self.path}: the '{name}' attribute holds bytes that are not UTF-8 text") from None
        if not _utc_second(self.created):
            raise RunFormatError(
                f"{self.path}: 'created' is {_shown(self.created)}, not a time in UTC to the second in ISO 8601 "
                "(2026-11-22T18:59:34+00:00)"
            )
        _ = self.meta  # JSON of an object, not too deep

    def _check_global_states(self) -> None:
        for r in self.rounds:
            if r not in self._global_faults:  # not looked at yet (a read or an earlier check remembers it)
                self._global_datasets(r)
            elif self._global_faults[r]:
                raise RunFormatError(self._global_faults[r])

    def _global_datasets(self, r: int) -> dict[str, h5py.Dataset]:
        """Round ``r``'s global model as datasets, checked against the layer table once (its fault remembered: the
        audit's reads, validation and the damaged parts' check share one look at each round)."""
        fault = self._global_faults.get(r)
        if fault:
            raise RunFormatError(fault)
        try:
            datasets = self._state_datasets(self._round(r)[spec.GLOBAL], f"{self.path}: round {r}: '{spec.GLOBAL}'")
        except RunFormatError as exc:
            self._global_faults[r] = str(exc)
            raise
        self._global_faults[r] = None
        return datasets

    def _check_attachments(self) -> None:
        for name in self.attachments:
            self._attachment(name)

    def _check_final_state(self) -> None:
        if self.has_final_state:
            self._state_datasets(self._final(), f"{self.path}: '/{spec.FINAL}'")

    # -- lifecycle --------------------------------------------------------------
    def close(self) -> None:
        """Close the file."""
        self._last_index = None
        self._clients.clear()
        self._ids.clear()
        self._metric_names.clear()
        self._name_tuples.clear()
        self._rounds_group = None  # type: ignore[assignment]
        self._fd = None  # the number may be another file's once HDF5 lets go of it
        if getattr(self, "_file", None) is not None:
            self._file.close()
            self._file = None
        if self._fileobj is not None:
            self._fileobj.close()
            self._fileobj = None

    @property
    def _h5(self) -> h5py.File:
        """The open file; once :meth:`close` ran, an error that says so (it was a ``TypeError`` of ``None``)."""
        if self._file is None:
            raise FedForensicsError(f"{self.path}: this Run is closed; open the file again with open_run")
        return self._file

    def __enter__(self) -> Run:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Run {self.path.name}: {len(self.rounds)} rounds, {len(self.layers)} layers>"

    # -- run-level facts ----------------------------------------------------------
    @property
    def rounds(self) -> list[int]:
        """Round numbers, ascending."""
        return list(self._round_keys)

    @cached_property
    def meta(self) -> dict[str, Any]:
        """The run metadata the trainer recorded."""
        raw = _one(self._h5.attrs.get(spec.ATTR_META, "{}"))
        too_deep = f"{self.path}: the '{spec.ATTR_META}' attribute nests more than {spec.META_MAX_DEPTH} levels deep"
        try:
            value = json.loads(raw)
        except UnicodeDecodeError:  # another writer's Latin-1 bytes: JSON they may be, UTF-8 text they are not
            raise RunFormatError(f"{self.path}: the '{spec.ATTR_META}' attribute holds bytes that are not UTF-8 text") from None
        except (TypeError, ValueError):
            raise RunFormatError(f"{self.path}: the '{spec.ATTR_META}' attribute is not JSON") from None
        except RecursionError:  # deeper than Python's parser goes
            raise RunFormatError(too_deep) from None
        if not isinstance(value, dict):
            raise RunFormatError(f"{self.path}: the '{spec.ATTR_META}' attribute is JSON but not an object ({type(value).__name__})")
        if spec.nests_deeper(value):  # no report could carry it: their JSON encoder recurses
            raise RunFormatError(too_deep)
        return value

    @property
    def sound_meta(self) -> dict[str, Any]:
        """:attr:`meta`, or an empty one where the attribute is malformed (:meth:`damaged_parts` names it): an audit
        reads past it, as no verdict rests on it."""
        try:
            return self.meta
        except RunFormatError:
            return {}

    @property
    def recorder_version(self) -> str:
        """The version of the recorder that wrote the file ("unknown" when it did not say)."""
        return self._text_attr(spec.ATTR_RECORDER_VERSION, "unknown")

    @property
    def created(self) -> str:
        """When the recorder created the file (ISO 8601, as it wrote it; empty when it did not say)."""
        return self._text_attr(spec.ATTR_CREATED, "")

    def _text_attr(self, name: str, default: str) -> str:
        """A root attribute as text (or an array of one text): a fixed-length string reads as bytes, shown decoded, not
        as ``b'...'``."""
        value = _one(self._h5.attrs.get(name, default))
        return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)

    @property
    def finished(self) -> bool | None:
        """Whether the writer closed the run normally: ``False`` when it crashed, was killed, gave up
        on an open round or is still writing (later rounds may be missing), ``None`` when the writer
        does not say (the attribute is optional)."""
        value = self._h5.attrs.get(spec.ATTR_FINISHED)
        if value is None:
            return None
        finished = _boolean(value)
        if finished is None:
            raise RunFormatError(f"{self.path}: '{spec.ATTR_FINISHED}' is {_shown(value)}, not a boolean")
        return finished

    @property
    def being_written(self) -> bool:
        """Whether a writer holds the file now (its lock, ``recorder/lock.py``): an unfinished run that is, is a
        recorder still at work, not one that stopped; asked anew at each call."""
        return writer_holds(self.path)

    @cached_property
    def ground_truth(self) -> list[str] | None:
        """The true malicious client ids, when the trainer recorded them."""
        group = _optional_group(self._h5, spec.GROUND_TRUTH, str(self.path))
        if group is None:
            return None
        if not _has(group, spec.MALICIOUS):  # format.md: the dataset absent means unknown, whatever else the group holds
            return None
        where = f"{self.path}: '/{spec.GROUND_TRUTH}'"
        ids = _strings(group, spec.MALICIOUS, where)
        if "" in ids:
            raise RunFormatError(f"{where}: '{spec.MALICIOUS}' holds an empty client id")
        twice = next((cid for cid, count in Counter(ids).items() if count > 1), None)
        if twice is not None:
            raise RunFormatError(f"{where}: '{spec.MALICIOUS}' names {_shown(twice)} twice (each malicious id appears once)")
        return ids

    @property
    def analysable_layers(self) -> list[Layer]:
        """Layers that hold floating-point parameters (integer buffers are left out)."""
        return [layer for layer in self.layers if layer.analysable]

    @cached_property
    def all_clients(self) -> list[str]:
        """Every client id seen in any round, in order of first appearance."""
        seen: dict[str, None] = {}
        for r in self.rounds:
            seen.update(dict.fromkeys(self.clients(r)))
        return list(seen)

    def attachment(self, name: str) -> dict[str, np.ndarray] | None:
        """Arrays the trainer attached under ``name`` (e.g. ``"clean_data"``), or ``None``."""
        datasets = self._attachment(name)
        return None if datasets is None else {key: dataset[()] for key, dataset in datasets.items()}

    def _attachment(self, name: str) -> dict[str, h5py.Dataset] | None:
        """The datasets of attachment ``name`` (not read), each checked to be one of booleans, integers or real
        floats (format.md: no complex numbers, no text)."""
        group = _optional_group(self._h5, spec.ATTACHMENTS, str(self.path))
        if group is None or name not in group:
            return None
        arrays = _member(group, name, f"{self.path}: '/{spec.ATTACHMENTS}'", h5py.Group)
        where = f"{self.path}: {_shown(f'/{spec.ATTACHMENTS}/{name}')}"
        datasets = {key: _member(arrays, key, where, h5py.Dataset) for key in arrays}
        for key, dataset in datasets.items():
            if dataset.dtype.kind not in _NUMERIC:
                raise RunFormatError(f"{where}: {_shown(key)} holds {dataset.dtype}, {_NOT_NUMERIC}")
        return datasets

    @property
    def attachments(self) -> list[str]:
        """The names of the arrays attached to the run (``Recorder.attach``), such as held-out data."""
        group = _optional_group(self._h5, spec.ATTACHMENTS, str(self.path))
        return list(group) if group is not None else []

    @property
    def file_size(self) -> int:
        """The size of the run file in bytes."""
        return self.path.stat().st_size

    @cached_property
    def compression(self) -> str:
        """Compression filter of the update datasets ('none' when stored raw)."""
        if not self.rounds:
            return "none"
        index = self._index(self.rounds[0])
        filters = {index.table(layer)[0].compression for layer in self.layers}
        return ", ".join(sorted(str(f) for f in filters if f)) or "none"

    # -- per round ------------------------------------------------------------------
    def _round(self, r: int) -> h5py.Group:
        try:
            key = self._round_keys[r]
        except KeyError:
            raise KeyError(f"round {r} is not in this run: {_which_rounds(self.rounds)}") from None
        if self._rounds_group is None:  # closed
            return self._h5[spec.ROUNDS][key]
        return self._rounds_group[key]

    def _index(self, r: int) -> _RoundIndex:
        """The lookups reading round ``r``'s updates needs, kept for the round last read.

        Readers go round by round, client by client or layer by layer: one entry is
        enough to spare them the h5py lookups (which cost more than reading a small
        layer), and memory stays flat in the number of rounds. Each round's client ids
        are kept once read and checked: the summary, the scan and the reports each go
        over every round's clients, and building the index anew took 5 % of an analysis.
        """
        if self._last_index is None or self._last_index[0] != r:
            index = _RoundIndex(self._round(r), self.path, r, self._clients.get(r))
            if r not in self._clients:
                self._clients[r] = [self._ids.setdefault(cid, cid) for cid in index.clients]
            self._last_index = (r, index)
        return self._last_index[1]

    def clients(self, r: int) -> list[str]:
        """Ids of the clients whose replies were recorded in round ``r``, in recording order."""
        ids = self._clients.get(r)
        return list(ids if ids is not None else self._index(r).clients)

    def update(self, r: int, cid: str) -> dict[str, np.ndarray]:
        """That client's update (local − global) in round ``r``, float32, per layer.

        Raises :class:`KeyError` for a round not in the run, or a client with no update in it (a failed reply says
        its reason); the other per-round reads raise it for a round as well.
        """
        index = self._index(r)
        try:
            row = index.rows[str(cid)]
        except KeyError:
            failure = self.failures(r).get(str(cid))
            if failure is not None:
                raise KeyError(f"client {cid!r} failed in round {r} ({_cut(failure)}): no update was recorded") from None
            raise KeyError(f"client {cid!r} did not take part in round {r}") from None
        out = {}
        for layer in self.layers:
            dataset, direct = index.table(layer)
            out[layer.name] = np.empty(layer.shape, np.float32)
            if direct:
                self._read_chunk(index, layer, row, out[layer.name].reshape(-1))
            else:  # float64, float16, the other byte order: float32 as every other read (a float64 table came back float64)
                with np.errstate(over="ignore"):
                    out[layer.name][...] = dataset[row]
        return out

    def check_updates(self, r: int, layers: list[Layer] | None = None) -> None:
        """Refuse round ``r`` unless each layer's update table is there with the layer table's shape (all layers
        by default): before memory is set aside for the round from the layer table's shapes, which a damaged
        table could make petabytes."""
        index = self._index(r)
        for layer in self.layers if layers is None else layers:
            index.table(layer)

    def layer_updates(self, r: int, name: str, out: np.ndarray | None = None) -> np.ndarray:
        """One layer's updates of every client of round ``r``: float32 ``(n_clients, *shape)``.

        ``out``, when given, is a C-contiguous float32 array of that shape to read into
        (a buffer reused from round to round spares allocating and faulting in fresh
        pages every round); it is returned.
        """
        layer = self.layer(name)
        index = self._index(r)
        shape = (len(index.clients), *layer.shape)
        if out is None:
            out = np.empty(shape, np.float32)
        elif out.shape != shape or out.dtype != np.float32 or not out.flags.c_contiguous:
            raise ValueError(f"out must be a C-contiguous float32 array of shape {shape}, not {out.dtype} {out.shape}")
        self._read_rows(index, layer, out.reshape(len(index.clients), layer.size))
        return out

    def update_matrix(self, r: int, layers: list[Layer] | None = None) -> np.ndarray:
        """Round ``r`` as a clients × parameters float32 matrix (analysable layers by default).

        Rows follow :meth:`clients`; columns follow the layers' order, each flattened.
        """
        layers = self.analysable_layers if layers is None else layers
        index = self._index(r)
        out = np.empty((len(index.clients), sum(layer.size for layer in layers)), dtype=np.float32)
        col = 0
        for layer in layers:
            self._read_rows(index, layer, out[:, col : col + layer.size])
            col += layer.size
        return out

    def _read_at(self, index: _RoundIndex, offsets: list[int], out: np.ndarray) -> None:
        """Read rows of ``out`` from the file at ``offsets`` (:func:`chunk_read.read_rows`); a read the file
        refuses (it shrank since the offsets were read, a disk error) is named with the file and round."""
        assert self._fd is not None
        try:
            chunk_read.read_rows(self._fd, offsets, out)
        except OSError as exc:
            raise RunFormatError(f"{index.where}: cannot read its updates ({exc.strerror or exc})") from None

    def _read_chunk(self, index: _RoundIndex, layer: Layer, row: int, out: np.ndarray) -> None:
        """Read row ``row`` of ``layer``'s table, one whose rows are chunks, into the contiguous 1-D ``out``."""
        offset = index.offsets(layer)[row]  # checks the chunk's size and place, whichever way it is read
        if self._fd is not None:
            self._read_at(index, [offset], out[np.newaxis])
        else:
            dataset = index.table(layer)[0]
            dataset.id.read_direct_chunk((row,) + (0,) * (dataset.ndim - 1), out=out.view(np.uint8))

    def _read_rows(self, index: _RoundIndex, layer: Layer, out: np.ndarray) -> None:
        """Read every client's row of ``layer`` into ``out`` (n_clients × layer.size, rows contiguous)."""
        if not (len(index.clients) and layer.size):
            return
        dataset, direct = index.table(layer)
        if direct and self._fd is not None:
            self._read_at(index, index.offsets(layer), out)
        elif direct:
            for row in range(len(index.clients)):
                self._read_chunk(index, layer, row, out[row])
        else:
            with np.errstate(over="ignore"):  # a float64 value beyond float32's range reads as ±Inf: the scan sets it apart
                out[...] = dataset[()].reshape(out.shape)

    def global_state(self, r: int) -> dict[str, np.ndarray]:
        """The global model the clients received in round ``r``.

        Raises :class:`RunFormatError` when it lacks a layer or a layer has another shape than the
        layer table's."""
        return {name: dataset[()] for name, dataset in self._global_datasets(r).items()}

    @property
    def has_final_state(self) -> bool:
        """Whether the recorder wrote the global model after the last round (``Recorder.final``)."""
        return _has(self._h5, spec.FINAL)

    def _final(self) -> h5py.Group | h5py.Dataset:
        return _member(self._h5, spec.FINAL, str(self.path), (h5py.Group, h5py.Dataset))

    def final_state(self) -> dict[str, np.ndarray] | None:
        """The model after the last round, when the trainer recorded it.

        Raises :class:`RunFormatError` as :meth:`global_state`."""
        if not self.has_final_state:
            return None
        return self._state(self._final(), f"{self.path}: '/{spec.FINAL}'")

    def _state(self, group: h5py.Group | h5py.Dataset, where: str) -> dict[str, np.ndarray]:
        """Every layer of a state group (``global/``, ``final/``), each checked against the layer table."""
        return {name: dataset[()] for name, dataset in self._state_datasets(group, where).items()}

    def _state_datasets(self, group: h5py.Group | h5py.Dataset, where: str) -> dict[str, h5py.Dataset]:
        """The datasets of a state group by layer name (not read), each checked against the layer table."""
        if not isinstance(group, h5py.Group):
            raise RunFormatError(f"{where} is not a group")
        state = {}
        for layer in self.layers:
            key = spec.layer_key(layer.index)
            try:
                dataset = group[key]
            except KeyError:
                raise RunFormatError(f"{where} lacks '{key}' (layer {_shown(layer.name)})") from None
            if not isinstance(dataset, h5py.Dataset):
                raise RunFormatError(f"{where}: '{key}' (layer {_shown(layer.name)}) is not a numeric dataset")
            if dataset.dtype.kind not in _NUMERIC:  # complex was taken, and its imaginary part dropped when read
                raise RunFormatError(f"{where}: '{key}' (layer {_shown(layer.name)}) holds {dataset.dtype}, {_NOT_NUMERIC}")
            if dataset.shape != layer.shape:
                raise RunFormatError(f"{where}: '{key}' (layer {_shown(layer.name)}) has shape {dataset.shape}, not {layer.shape}")
            unwritten = _never_written(dataset)
            if unwritten:
                raise RunFormatError(f"{where}: '{key}' (layer {_shown(layer.name)}): {unwritten} (HDF5 would read its fill value)")
            state[layer.name] = dataset
        if len(group) != len(self.layers):  # format.md: a state's members are fixed, one dataset per layer
            extra = sorted(set(group) - {spec.layer_key(layer.index) for layer in self.layers})
            raise RunFormatError(f"{where} holds {_shown(extra[0])}, which is no layer of the layer table")
        return state

    def num_samples(self, r: int) -> dict[str, int]:
        """Training samples each client of round ``r`` reported."""
        counts = self._round(r)[spec.NUM_SAMPLES][()]
        return {cid: int(n) for cid, n in zip(self.clients(r), self._integers(r, spec.NUM_SAMPLES, counts))}

    def metrics(self, r: int) -> dict[str, dict[str, float]]:
        """Client metrics of round ``r``: ``{client: {metric: value}}`` (unreported metrics left out)."""
        group = self._round(r)
        clients = self.clients(r)
        names = self.metric_names(r)
        table = group[spec.METRICS][()]
        if table.shape != (len(clients), len(names)):
            raise RunFormatError(
                f"{self.path}: round {r}: '{spec.METRICS}' has shape {table.shape}, not {(len(clients), len(names))}"
            )
        if table.dtype.kind not in "iuf":
            raise RunFormatError(f"{self.path}: round {r}: '{spec.METRICS}' holds {table.dtype}, not numbers")
        return {
            cid: {name: float(v) for name, v in zip(names, row) if not np.isnan(v)}
            for cid, row in zip(clients, table)
        }

    def metric_names(self, r: int) -> list[str]:
        """The names of round ``r``'s client metrics, the columns of its ``metrics`` table (unique; the recorder sorts them)."""
        names = self._metric_names.get(r)
        if names is None:
            where = f"{self.path}: round {r}"
            read = tuple(_unique(_strings(self._round(r), spec.METRIC_NAMES, where), f"'{spec.METRIC_NAMES}'", where, empty=True))
            names = self._metric_names[r] = self._name_tuples.setdefault(read, read)
        return list(names)

    def nonfinite(self, r: int) -> dict[str, int]:
        """Number of NaN/Inf values in each client's update of round ``r``."""
        counts = self._round(r)[spec.NONFINITE][()]
        return {cid: int(n) for cid, n in zip(self.clients(r), self._integers(r, spec.NONFINITE, counts))}

    def _integers(self, r: int, name: str, values: np.ndarray) -> np.ndarray:
        """``values``, read from round ``r``'s per-client dataset ``name``, refused unless integers ≥ 0."""
        if values.dtype.kind not in "iu" or (values < 0).any():
            shown = values.dtype if values.dtype.kind not in "iu" else f"{int(values.min())}"
            raise RunFormatError(f"{self.path}: round {r}: '{name}' holds {shown}, not counts (integers ≥ 0)")
        if values.dtype.kind == "u" and values.size and int(values.max()) > INT64.max:
            raise RunFormatError(f"{self.path}: round {r}: '{name}' holds {int(values.max())}, beyond the format's int64")
        return values

    def failures(self, r: int) -> dict[str, str]:
        """Clients whose reply failed in round ``r``, with the reason."""
        where = f"{self.path}: round {r}"
        group = _optional_group(self._round(r), spec.FAILURES, where)
        if group is None:
            return {}
        where = f"{where}: '{spec.FAILURES}'"
        clients, reasons = _strings(group, spec.FAILURE_CLIENTS, where), _strings(group, spec.FAILURE_REASONS, where)
        _unique(clients, f"'{spec.FAILURE_CLIENTS}'", where)
        replied = next((cid for cid in clients if cid in self._index(r).rows), None)
        if replied is not None:
            raise RunFormatError(f"{where}: client {_shown(replied)} both failed and replied in round {r}")
        return dict(self._pairs(r, spec.FAILURES, clients, reasons))

    def global_metrics(self, r: int) -> dict[str, float]:
        """Evaluation of the model aggregated in round ``r`` (e.g. accuracy, attack success)."""
        where = f"{self.path}: round {r}"
        group = _optional_group(self._round(r), spec.GLOBAL_METRICS, where)
        if group is None:
            return {}
        where = f"{where}: '{spec.GLOBAL_METRICS}'"
        names, values = _strings(group, spec.GLOBAL_METRIC_NAMES, where), _numbers(group, spec.GLOBAL_METRIC_VALUES, where)
        _unique(names, f"'{spec.GLOBAL_METRIC_NAMES}'", where, empty=True)
        return dict(self._pairs(r, spec.GLOBAL_METRICS, names, values))

    def _pairs(self, r: int, name: str, keys: list[str], values: list[Any]) -> zip[tuple[str, Any]]:
        """``keys`` and ``values`` of round ``r``'s optional group ``name``, refused unless as many."""
        if len(keys) != len(values):
            raise RunFormatError(f"{self.path}: round {r}: '{name}' pairs {len(keys)} names with {len(values)} values")
        return zip(keys, values)

    def layer(self, name: str) -> Layer:
        """The layer called ``name``."""
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(f"no layer {name!r} in this run")


def open_run(path: str | os.PathLike[str]) -> Run:
    """Open and validate a run file.

    Raises
    ------
    RunFormatError
        The file is missing, not HDF5, not a fedforensics run, of a newer format
        version, truncated, or lacks required parts.
    """
    return Run(path)
