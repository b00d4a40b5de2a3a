"""The writer of a run file: :class:`Recorder`, which creates the file and holds it, and :class:`RoundRecorder`, the
round it has open. Every write reaches the disk through the undo journal (:mod:`recorder.journal`), under the
writer's lock (:mod:`recorder.lock`); the inputs are checked first (:mod:`recorder.checks`).
"""

from __future__ import annotations

import atexit
import datetime as _dt
import functools
import json
import math
import os
import threading
import warnings
import weakref
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

import h5py
import numpy as np

from . import __version__, spec
from .checks import (
    RecorderError, _as_array, _brief, _check_creation_path, _check_folder, _client_id, _count, _json_value, _link_name,
    _numbers, _storable, _string_keys, _where,
)
from .journal import JournaledFile, creation_path, journal_paths, longest_run_name, rollback
from .lock import FileBusyError, WriterLock, busy, writer_holds

_STR = h5py.string_dtype("utf-8")
#: HDF5 files an interrupted flush left unable to close, each with its detached journaled file
#: (:meth:`Recorder._release_detached`): held, never closed again.
_UNCLOSABLE: list[tuple[h5py.File, JournaledFile]] = []
#: The longest failure reason the recorder keeps, in characters: a longer one (free text from a client, a traceback)
#: keeps its beginning and its end, the rest replaced by a marker saying how much was cut (a 10 MB reason took 10 MB
#: of the file in each round; refusing it would have lost the round).
REASON_MAX_LENGTH = 10_000


#: What a process other than the recorder's is told to do instead of recording.
_RECORD_THERE = "record from the process that opened it (return the update to it)"


def _not_to_send(owner: Recorder) -> RecorderError:
    """The error pickling a recorder or a round raises (handing it to a worker of a pool or an executor): its
    file, lock and HDF5 state stay with the process that opened it (pickling failed on its thread lock)."""
    return RecorderError(f"{owner.path}: a recorder cannot be sent to another process: {_RECORD_THERE}")


def _serialized(method: Any) -> Any:
    """One call at a time into the recorder, whichever thread makes it (a server recording each reply as it
    arrives, from a thread pool): HDF5 and the round's bookkeeping are not for concurrent hands."""

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        owner = getattr(self, "_rec", self)  # a RoundRecorder's recorder, or the recorder itself
        if not owner._owned():
            raise RecorderError(
                f"{owner.path}: this recorder belongs to process {owner._pid}, not to this forked child "
                f"({os.getpid()}): {_RECORD_THERE}"
            )
        with self._lock:
            return method(self, *args, **kwargs)

    return wrapper


class _Layer:
    __slots__ = ("index", "name", "shape", "dtype", "analysable")

    def __init__(self, index: int, name: str, array: np.ndarray) -> None:
        self.index = index
        self.name = name
        self.shape = array.shape
        self.dtype = array.dtype
        self.analysable = array.dtype.kind == "f"


class Recorder:
    """Writer of one run file.

    Parameters
    ----------
    path
        The HDF5 file to create, in a folder that exists: a missing folder is refused, not created (a misspelt
        folder name would otherwise scatter runs), as are a folder, a device or a FIFO at the path itself.
    meta
        Run metadata (dataset, model, settings...): JSON values; numpy numbers and arrays are stored as
        their values, anything else JSON cannot hold (a path, a dtype) as its ``str()``.
    overwrite
        Replace an existing file with an empty run (there is no appending to a run; record a federation
        resumed after a crash into a new file). The new run is created beside it (``.<name>.new/``) and
        takes its place at once when the file is complete: until then the path holds the previous file.
        Without it an existing file is refused. A file another recorder is writing is refused either way:
        the recorder holds an exclusive lock on it until it closes (``recorder/lock.py``).
    compression
        ``None`` (default: several times faster to write and read), ``"lzf"``, or
        ``"gzip"`` (level 4 behind HDF5's byte shuffle: the smallest files any HDF5
        reads) for the update and state datasets. ``docs/format.md`` has the
        measurements.
    fsync
        Also survive power loss, not only the death of the process (default).

    Threads may share a recorder (a server recording each reply from the thread that received it): its calls
    run one at a time. A round's clients are stored in the order their calls got through. Processes may not: a
    forked child (a worker of a ``multiprocessing`` pool) that calls it gets a :class:`RecorderError` (its
    writes would go to a copy of the file's state, or corrupt the parent's file), and so does handing the
    recorder or a round to a worker (pickling it); the worker returns its update to the process that opened
    the recorder, which records it.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        meta: Mapping[str, Any] | None = None,
        *,
        overwrite: bool = False,
        compression: str | None = None,
        fsync: bool = True,
    ) -> None:
        self.path = Path(path)
        #: The file as it is opened, rolled back and reopened: the working directory may change while it is written.
        self._file_path = Path(os.path.abspath(self.path))
        self._lock = threading.RLock()  # see _serialized
        self._pid = os.getpid()  # a forked child inherits the exit handler, not the file: see _close_at_exit
        if compression not in (None, "lzf", "gzip"):
            raise RecorderError(f"unknown compression {compression!r}: use None, 'lzf' or 'gzip'")
        if meta is not None and not isinstance(meta, Mapping):
            raise RecorderError(f"meta must be a mapping of names to values (a dict), got {type(meta).__name__}")
        too_deep = f"meta nests more than {spec.META_MAX_DEPTH} levels deep (or holds itself): docs/format.md"
        if spec.nests_deeper(dict(meta or {})):  # before the recursion below meets it
            raise RecorderError(too_deep)
        keyed = _string_keys(dict(meta or {}))
        try:
            meta_json = json.dumps(keyed, sort_keys=True, allow_nan=True, default=_json_value)
        except (TypeError, ValueError) as exc:
            raise RecorderError(f"meta is not JSON-serialisable: {exc}") from None
        if spec.nests_deeper(json.loads(meta_json)):  # as a reader sees it: an array becomes lists as deep as its dims
            raise RecorderError(too_deep)
        real = Path(os.path.realpath(self.path))  # the journal goes beside the file a link names
        _check_folder(self.path, real.parent)
        if len(os.fsencode(real.name)) > (longest := longest_run_name(real)):
            raise RecorderError(
                f"{real.name!r} is too long a file name: its journal ({spec.JOURNAL_SUFFIX} added) would not fit "
                f"in the file system's limit; use at most {longest} bytes"
            )
        creating = creation_path(real)
        _check_creation_path(self.path, creating)
        replaced = self._replaced(overwrite)  # before anything changes: one writer at a time
        try:
            creating.parent.mkdir(exist_ok=True)
            lock = WriterLock(creating)  # held on the new file from now on, whatever its name
        except BaseException as exc:
            self._forget_creation(creating, replaced)
            if isinstance(exc, FileBusyError):
                raise RecorderError(f"{self.path} is being created by another recorder") from None
            self._name_the_run(exc, creating)
            raise
        self._compression = compression
        #: HDF5 filter options of the update and state datasets. The shuffle makes gzip both
        #: smaller and faster on float32 updates; it makes lzf slower to read (docs/format.md).
        self._filters: dict[str, Any] = (
            {"compression": compression, "shuffle": compression == "gzip"} if compression else {}
        )
        self._layers: list[_Layer] = []
        self._last_round: int | None = None
        self._open_round: RoundRecorder | None = None
        #: Why the recorder closed itself: an error it could not write past.
        self._failure: BaseException | None = None
        self._h5: h5py.File | None = None
        try:
            for stale in journal_paths(creating):  # of a recorder killed while it created the run
                stale.unlink(missing_ok=True)
            self._file = JournaledFile(creating, create=True, fsync=fsync)
        except BaseException as exc:
            lock.release(remove=True)
            self._forget_creation(creating, replaced)
            self._name_the_run(exc, creating)
            raise
        self._held = _Held(self._file, lock)
        #: Run once: when the recorder closes, or when it is dropped without closing.
        self._let_go = weakref.finalize(self, self._held.let_go)
        self._let_go.atexit = False
        #: A recorder alive at exit is closed, unfinished, by an exit handler of its own, registered now: after any
        #: handler registered later (``atexit.register(rec.close)``), which then closes it as the trainer meant to.
        self._at_exit = functools.partial(_close_at_exit, weakref.ref(self))
        atexit.register(self._at_exit)
        try:
            self._h5 = h5py.File(self._file, "w")
            root = self._h5
            root.attrs[spec.ATTR_FORMAT] = spec.FORMAT_NAME
            root.attrs[spec.ATTR_VERSION] = spec.FORMAT_VERSION
            root.attrs[spec.ATTR_RECORDER_VERSION] = __version__
            root.attrs[spec.ATTR_CREATED] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
            root.attrs[spec.ATTR_META] = meta_json
            root.attrs[spec.ATTR_FINISHED] = False
            root.create_group(spec.ROUNDS)
            self._commit()
            replaced = replaced or self._replaced(overwrite)  # one that appeared meanwhile
            self._file.move(real)  # the creation commit: the run takes its path whole
        except BaseException as exc:
            self._name_the_run(exc, creating)
            self._abandon(exc, remove=creating)  # nothing was committed at the path: no file is left
            raise
        finally:
            self._forget_creation(creating, replaced)

    def _replaced(self, overwrite: bool) -> WriterLock | None:
        """The lock of the file at the path that the new run is to replace (``None``: there is none), taken so that
        no other writer starts on it; its hot journal is rolled back, as every reader sees it until it is replaced,
        and gone, as the new run must not meet it."""
        if not self.path.exists():
            return None
        if self.path.is_dir():  # before the advice to overwrite, which could not replace it either
            raise RecorderError(f"{self.path} is a directory: give a run file's name, e.g. {self.path / 'run.h5'}")
        if not self.path.is_file():  # a device (/dev/null), a FIFO
            raise RecorderError(f"{self.path} is not a regular file: a run is written to a file of its own")
        if not overwrite:
            if writer_holds(self._file_path):  # not advice to overwrite it, which would then be refused for this
                raise RecorderError(str(busy(self.path)))
            raise RecorderError(
                f"{self.path} exists already: pass overwrite=True to replace it with a new, empty run (a run cannot be "
                "appended to: record a federation resumed after a crash into a new file)"
            )
        try:
            lock = WriterLock(self._file_path)
        except FileBusyError as exc:
            raise RecorderError(str(exc)) from None
        if lock.created:  # gone since: there is nothing to replace
            lock.release(remove=True)
            return None
        try:
            try:
                rollback(self._file_path)
            except OSError:  # (it is replaced anyway) the journal is removed below all the same
                pass
            for stale in journal_paths(self._file_path):
                stale.unlink(missing_ok=True)
        except BaseException:
            lock.release()
            raise
        return lock

    def _name_the_run(self, exc: BaseException, creating: Path) -> None:
        """Make ``exc``, an error about the file the run is created as (its folder, its journal), name the run: the
        user named that, not where it is created."""
        if isinstance(exc, OSError) and os.fspath(exc.filename or "").startswith(os.fspath(creating.parent)):
            exc.filename = os.fspath(self.path)

    @staticmethod
    def _forget_creation(creating: Path, replaced: WriterLock | None) -> None:
        """Let go of the file the new run replaced, and remove the folder it was created in (if another recorder
        of the same path uses it by now, that one removes it)."""
        if replaced is not None:
            replaced.release()
        try:
            creating.parent.rmdir()
        except OSError:
            pass

    # -- context management ---------------------------------------------------
    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._owned():  # a forked child leaving the block leaves the file to its parent
            self._close(finished=exc_type is None)

    def __reduce__(self) -> Any:
        raise _not_to_send(self)

    def _owned(self) -> bool:
        """Whether this process opened the recorder (a forked child holds a copy it must not write through)."""
        return self._pid == os.getpid()

    def close(self) -> None:
        """Close the file and mark the run finished. Every round whose block exited is already on disk.

        A round still open (its ``with`` block not exited, nor committed) was never complete: it is
        discarded, with a warning, and the run is marked unfinished.
        """
        self._close(finished=True)

    @_serialized
    def _close(self, finished: bool) -> None:
        if self._h5 is None:
            return
        if self._open_round is not None:
            number = self._open_round.number
            self._finish_round(self._open_round, failed=True)
            finished = False
            warnings.warn(
                f"{self.path}: round {number} was still open when the recorder closed and is discarded "
                "(a round is written when its `with` block exits, or by its commit())",
                RuntimeWarning,
                stacklevel=4,  # the trainer's close() or `with` line: above close/__exit__ and _serialized's wrapper
            )
        if not finished:
            # The file stays as last committed, FALSE since its creation. What HDF5 writes as it
            # closes (its superblock, again) stays off the disk, which may just have filled up.
            self._file.detach()
            self._release()
            self._file.close()
            self._done()
            return
        try:
            self._h5.attrs[spec.ATTR_FINISHED] = True
            self._release()
            self._file.commit()  # raises the error of a write that failed since the last commit
        except BaseException as exc:
            self._abandon(exc)  # back to the last commit: the run is not marked finished
            raise
        self._file.close()
        self._done()

    # -- public API -----------------------------------------------------------
    @_serialized
    def round(self, round_number: int, global_state: Mapping[str, Any]) -> RoundRecorder:
        """Open round ``round_number``; ``global_state`` is the model the clients received, copied here: the
        trainer may go on to train its model in place."""
        self._check_open()
        if self._open_round is not None:
            raise RecorderError(self._still_open())
        if isinstance(round_number, (bool, np.bool_)) or not isinstance(round_number, (int, np.integer)):
            raise RecorderError(f"round number must be an int, got {_brief(round_number)}")
        round_number = int(round_number)
        if round_number < 0:
            raise RecorderError(f"round {round_number}: round numbers start at 0")
        if round_number > spec.INT64_MAX:
            raise RecorderError(f"round {round_number}: round numbers are stored as int64, at most 2**63 - 1")
        self._check_next_round(round_number)
        state = self._state(global_state, round_number, None)
        self._open_round = RoundRecorder(self, round_number, state)
        return self._open_round

    @_serialized
    def final(self, global_state: Mapping[str, Any]) -> None:
        """Record the model after the last round (a later call replaces it)."""
        self._check_idle("final")
        if not self._layers:
            raise RecorderError("final: record at least one round first")
        state = self._state(global_state, None, None)
        with self._committed():
            self._replace_group(spec.FINAL)
            group = self._h5.create_group(spec.FINAL)
            for layer in self._layers:
                self._dataset(group, spec.layer_key(layer.index), state[layer.index])

    @_serialized
    def ground_truth(self, malicious: Iterable[str | int]) -> None:
        """Record the ids of the truly malicious clients (simulations, red-team exercises), all of them in one call:
        a later call replaces the list, it does not add to it."""
        self._check_idle("ground_truth")
        if isinstance(malicious, (str, bytes)) or not isinstance(malicious, Iterable):
            raise RecorderError(f"ground_truth: malicious must be a list of client ids, not {type(malicious).__name__}")
        ids = [_client_id(cid, "ground truth") for cid in malicious]
        if len(set(ids)) != len(ids):
            twice = next(cid for cid in ids if ids.count(cid) > 1)
            raise RecorderError(f"ground truth: client {twice!r} is named twice")
        with self._committed():
            self._replace_group(spec.GROUND_TRUTH)
            group = self._h5.create_group(spec.GROUND_TRUTH)
            group.create_dataset(spec.MALICIOUS, data=np.array(ids, dtype=object), dtype=_STR)

    @_serialized
    def attach(self, name: str, **arrays: Any) -> None:
        """Store named arrays with the run, e.g. ``attach("clean_data", x=x_test, y=y_test)``; a name attached again
        holds only the arrays of its last call."""
        self._check_idle("attach")
        if not arrays:
            raise RecorderError(f"attach: need at least one array (got none for {name!r})")
        _link_name(name, "attachment name", "attach")
        for key in arrays:
            _link_name(key, "array name", f"attach {name!r}")
        converted = {key: _as_array(value, f"attachment {name!r}, array {key!r}") for key, value in arrays.items()}
        with self._committed():
            parent = self._h5.require_group(spec.ATTACHMENTS)
            if name in parent:
                del parent[name]
            group = parent.create_group(name)
            for key, array in converted.items():
                group.create_dataset(key, data=array)

    # -- internals --------------------------------------------------------------
    def _check_next_round(self, round_number: int, hint: str = "") -> None:
        """Raise :class:`RecorderError` if :meth:`round` would refuse the int ``round_number`` for being closed or
        out of order (``hint`` ends the message): the Flower adapter asks before its clients train."""
        self._check_open()
        if self._last_round is not None and round_number <= self._last_round:
            raise RecorderError(f"round {round_number}: round numbers must increase (the last round was {self._last_round}){hint}")

    def _check_open(self) -> None:
        if self._h5 is None:
            if self._failure is not None:
                raise RecorderError(
                    f"{self.path} is closed: writing it failed ({self._failure}); "
                    "it holds the rounds committed before the failure"
                )
            raise RecorderError(f"{self.path} is closed")

    def _check_idle(self, what: str) -> None:
        self._check_open()
        if self._open_round is not None:
            raise RecorderError(f"{what}: {self._still_open()}")

    def _still_open(self) -> str:
        return f"round {self._open_round.number} is still open: leave its `with` block, or call its commit(), first"

    def _commit(self) -> None:
        self._h5.flush()
        self._file.commit()

    @contextmanager
    def _committed(self) -> Iterator[None]:
        """Commit what the block writes, or, if it or the commit raises, throw all of it away."""
        try:
            yield
            self._commit()
        except BaseException:
            self._discard()
            raise

    def _replace_group(self, name: str) -> None:
        if name in self._h5:
            del self._h5[name]

    def _dataset(self, group: h5py.Group, key: str, array: np.ndarray) -> h5py.Dataset:
        if self._compression is None or array.ndim == 0:
            return group.create_dataset(key, data=array)
        return group.create_dataset(key, data=array, chunks=True, **self._filters)

    def _state(
        self, state: Mapping[str, Any], round_number: int | None, client: str | None, what: str = "state"
    ) -> list[np.ndarray]:
        """Validate a state (``what``: or an update) against the layer table (set by the first one) and list its
        arrays."""
        where = _where(round_number, client) or "final state"
        if not isinstance(state, Mapping):
            raise RecorderError(
                f"{where}: {'an' if what[0] in 'aeiou' else 'a'} {what} must be a mapping of layer name to array, "
                f"not {type(state).__name__} (a flat vector: split it into the model's layers)"
            )
        if not self._layers:
            if not state:
                raise RecorderError(f"{where}: the state has no layers")
            for name in state:
                if not isinstance(name, str) or not name:
                    raise RecorderError(f"{where}: layer names must be non-empty strings, got {name!r}")
                _storable(name, "layer name", where)
            arrays = [_as_array(value, f"{where}, layer {name!r}") for name, value in state.items()]
            self._layers = [_Layer(i, name, a) for i, (name, a) in enumerate(zip(state, arrays))]
            try:
                self._write_layer_table()
            except BaseException:  # no round holds it yet: nothing of it may reach the next commit
                self._layers = []
                self._discard()
                raise
            return arrays
        known = {layer.name for layer in self._layers}
        for name in state:
            if name not in known:
                raise RecorderError(f"{_where(round_number, client, name)}: unknown layer")
        arrays = []
        for layer in self._layers:
            lw = _where(round_number, client, layer.name)
            if layer.name not in state:
                raise RecorderError(f"{lw}: missing layer")
            array = _as_array(state[layer.name], lw)
            if array.shape != layer.shape:
                raise RecorderError(f"{lw}: shape {array.shape} does not match the recorded {layer.shape}")
            arrays.append(array)
        return arrays

    def _write_layer_table(self) -> None:
        group = self._h5.create_group(spec.LAYERS)
        names = np.array([layer.name for layer in self._layers], dtype=object)
        group.create_dataset(spec.LAYER_NAME, data=names, dtype=_STR)
        dtypes = np.array([layer.dtype.str for layer in self._layers], dtype=object)
        group.create_dataset(spec.LAYER_DTYPE, data=dtypes, dtype=_STR)
        shapes = group.create_dataset(spec.LAYER_SHAPE, (len(self._layers),), dtype=h5py.vlen_dtype(np.int64))
        for i, layer in enumerate(self._layers):
            shapes[i] = np.array(layer.shape, dtype=np.int64)
        group.create_dataset(spec.LAYER_ANALYSABLE, data=np.array([layer.analysable for layer in self._layers]))

    @_serialized
    def _finish_round(self, rnd: RoundRecorder, failed: bool) -> None:
        if self._open_round is not rnd:  # discarded already: the recorder was closed while its block ran
            return
        self._open_round = None
        if failed:
            self._drop_round()
            return
        try:
            rnd._write_summary()
            self._commit()
        except BaseException:  # nothing of a half-written round may reach the next commit
            self._drop_round()
            raise
        self._last_round = rnd.number

    def _drop_round(self) -> None:
        """Back to the last commit, without the open round."""
        self._discard()
        if self._last_round is None:
            # The layer table came with the discarded round.
            self._layers = []

    def _release(self) -> None:
        """Let HDF5 close the file, and forget it whatever happens.

        No write can make the close fail (a failed write detaches the journaled
        file, see :mod:`recorder.journal`), and a file HDF5 failed to close must
        never be touched again: HDF5 has freed it.
        """
        h5 = self._h5
        try:
            h5.close()
        finally:
            # Forgotten once HDF5 has let go of it (closed, or freed by a failed close). An interrupt (Ctrl-C) before
            # HDF5 began leaves it open and known, for _abandon to detach and close: dropped open, it would flush its
            # caches into the file whenever Python freed it.
            if not h5.id.valid:
                self._h5 = None

    def _release_detached(self) -> bool:
        """:meth:`_release` once the journaled file is detached, whose rollback follows; whether HDF5 let go.

        An interrupt inside HDF5's own flush can leave it unable to close the file (h5py: "Can't decrement id ref
        count"): the rollback restores the file bit for bit all the same, so the failure is no reason to lose the
        interrupt. The broken object is kept, with its detached journaled file left open (what it still writes, as
        Python exits, stays in memory), never asked to close again.
        """
        h5 = self._h5
        try:
            self._release()
        except Exception:
            if not h5.id.valid:  # HDF5 let go before the error: nothing is left to hold
                return True
            _UNCLOSABLE.append((h5, self._file))
            self._h5 = None
            return False
        return True

    def _done(self) -> None:
        """Closed for good: release the lock, and drop the exit handler."""
        self._let_go()
        atexit.unregister(self._at_exit)

    def _abandon(self, exc: BaseException, remove: Path | None = None) -> None:
        """Close for good after ``exc``, the file rolled back to its last commit (``remove``: the file being
        created, deleted if it is still there, while this recorder still holds its lock)."""
        self._failure = exc
        self._open_round = None
        released = True
        if self._h5 is not None:
            self._file.detach()
            released = self._release_detached()
        if released:
            self._file.close()
        try:
            rollback(self._file.path)
        except OSError as failed:  # the journal stays: readers roll back in memory, the next writer on disk
            exc.add_note(f"{self.path}: rolling back to the last commit failed too ({failed}); readers still can")
        if remove is not None:
            remove.unlink(missing_ok=True)
        self._done()

    def _discard(self) -> None:
        """Throw away everything written since the last commit, bit for bit."""
        self._file.detach()  # what HDF5 writes as it closes is rolled back anyway: keep it off the disk
        if self._release_detached():
            self._file.close()
        try:
            rollback(self._file_path)
            self._file = self._held.file = JournaledFile(self._file_path, create=False, fsync=self._file._durable)
            self._h5 = h5py.File(self._file, "r+")
        except BaseException as exc:
            self._abandon(exc)
            raise


def _close_at_exit(recorder: weakref.ref[Recorder]) -> None:
    """The interpreter is exiting with ``recorder`` still open: close it, unfinished (a round still open is
    discarded with a warning), so that nothing HDF5 writes as it shuts down reaches the disk."""
    alive = recorder()
    if alive is None:
        return
    if not alive._owned():  # a forked child's copy: the file is its parent's; HDF5 lets go of the child's view here
        if alive._h5 is not None:  # (its journaled file detached at fork: what HDF5 writes as it closes stays in memory;
            try:  # left to h5py's own exit, the child segfaulted whenever the parent had another thread)
                alive._h5.close()
            except Exception:  # a view HDF5 cannot close is the child's to drop: the parent's file is untouched
                pass
        return
    if alive._lock.acquire(timeout=5.0):
        try:
            alive._close(finished=False)
        finally:
            alive._lock.release()
    elif alive._let_go.detach() is not None:  # a daemon thread is still inside a call, perhaps mid-write: the file
        alive._held.let_go(roll_back=False)  # detached and left, lock released; its journal takes a reader back


class _Held:
    """What a recorder holds while it writes: the journaled file and the writer's lock."""

    def __init__(self, file: JournaledFile, lock: WriterLock) -> None:
        self.file = file
        self.lock = lock
        self.pid = os.getpid()

    def let_go(self, roll_back: bool = True) -> None:
        """Release the lock; a file still open (a recorder dropped without ``close()``) is detached first, so
        that nothing HDF5 writes as it closes it later reaches the disk, and, with ``roll_back``, what a round left
        open had written is rolled back (QA: dropped mid-round, the file kept it and its hot journal): the file
        stays as last committed, unfinished, with no journal left behind. Only the process that opened the file
        rolls back, and only its own journal (review: a forked child's copy, freed, rolled back the round its
        parent was writing, and so did a recorder freed late beside a new one of the same path without a lock)."""
        try:
            if not self.file.closed:
                self.file.detach()
                if roll_back and os.getpid() == self.pid and self.file.owns_journal():
                    try:
                        rollback(self.file.path)
                    except OSError:  # the journal stays: a reader goes back to the commit through it
                        pass
        finally:  # whatever stops the rollback (a Ctrl-C), the file is not left locked
            self.lock.release()


class RoundRecorder:
    """One open round: add client replies with :meth:`client`; it is written when its block exits, or by
    :meth:`commit` (a framework that ends rounds in a callback has no block around one)."""

    def __init__(self, recorder: Recorder, number: int, global_state: list[np.ndarray]) -> None:
        self._rec = recorder
        self._lock = recorder._lock  # see _serialized
        self.number = number
        # A copy: the trainer may train its model in place once the round is open (load the global
        # state, step, record), and a view would then change the global model and every update with it.
        self._global = [np.array(a, copy=True) for a in global_state]
        with np.errstate(over="ignore"):  # a float64 global beyond float32's range: _update subtracts it in float64
            self._global32 = [a.astype(np.float32, copy=False) for a in self._global]
        self._clients: list[str] = []
        self._recorded: set[str] = set()  # the same ids, looked up: a list made a round of 60,000 clients quadratic (QA)
        self._num_samples: list[int] = []
        self._metrics: list[dict[str, float]] = []
        self._nonfinite: list[int] = []
        self._failures: dict[str, str] = {}
        self._global_metrics: dict[str, float] = {}
        self._group: h5py.Group | None = None
        self._updates: list[h5py.Dataset] = []  # by layer index
        self._direct: list[bool] = []  # whether a layer's rows are written as raw chunks
        self._capacity = 0  # rows the update tables hold (>= clients recorded)

    def __reduce__(self) -> Any:
        raise _not_to_send(self._rec)

    def __enter__(self) -> RoundRecorder:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._rec._owned():  # a forked child leaving the block leaves the round to its parent
            self._rec._finish_round(self, failed=exc_type is not None)

    @_serialized
    def commit(self) -> None:
        """Write the round and close it, as leaving its ``with`` block without an exception does (leaving it
        afterwards does nothing more): for callback-style frameworks, ``rnd = rec.round(r, g)`` in
        ``on_round_begin``, ``rnd.commit()`` in ``on_round_end``. The round is durable when it returns."""
        self._check_writable()
        self._rec._finish_round(self, failed=False)

    @_serialized
    def client(
        self,
        cid: str | int,
        state: Mapping[str, Any],
        *,
        num_samples: int,
        metrics: Mapping[str, Any] | None = None,
        delta: bool = False,
    ) -> None:
        """Record one client's reply.

        Parameters
        ----------
        cid
            Client id (``str`` or ``int``; stored as a string).
        state
            The client's weights after local training, or its update (local − global)
            when ``delta=True``.
        num_samples
            Number of training samples the client used (FedAvg weight), 0 … 2**63 − 1 (int64).
        metrics
            Numeric training metrics the client reported (accuracy, loss...).
        """
        self._check_writable()
        cid = _client_id(cid, _where(self.number))
        where = _where(self.number, cid)
        self._check_unrecorded(cid, where)
        count = _count(num_samples)
        if count is None or count < 0:
            raise RecorderError(f"{where}: num_samples must be a non-negative int, got {_brief(num_samples)}")
        num_samples = count
        if num_samples > spec.INT64_MAX:
            raise RecorderError(f"{where}: num_samples is stored as int64, at most 2**63 - 1, got {num_samples}")
        values = _numbers(metrics, where)
        arrays = self._rec._state(state, self.number, cid, "update" if delta else "state")
        row = len(self._clients)
        self._reserve(row + 1)
        nonfinite = 0
        for layer, array, base, dataset in zip(self._rec._layers, arrays, self._global32, self._updates):
            update = self._update(array, layer.index, base, delta)
            nonfinite += int(update.size - np.count_nonzero(np.isfinite(update)))
            if self._direct[layer.index]:
                # The row is one whole, unfiltered chunk: hand HDF5 its bytes as they are.
                dataset.id.write_direct_chunk((row,) + (0,) * update.ndim, np.ascontiguousarray(update))
            else:
                dataset[row] = update
        self._rec._file.check()  # a write that failed (a full disk) fails the client, then the round
        self._clients.append(cid)
        self._recorded.add(cid)
        self._num_samples.append(int(num_samples))
        self._metrics.append(values)
        self._nonfinite.append(nonfinite)

    def _update(self, array: np.ndarray, index: int, base32: np.ndarray, delta: bool) -> np.ndarray:
        """One layer's update as stored: float32. When the client's state or the global one is of a type
        float32 cannot hold exactly (float64, large integers), they are subtracted in float64 before the
        cast: float64 weights near 300 moved by 1e-6 would otherwise differ by 0 in float32. Beyond
        float32's range an update is stored as ±Inf."""
        with np.errstate(over="ignore"):  # counted and stored as non-finite, not warned about
            if delta:
                return array.astype(np.float32, copy=False)
            if all(np.can_cast(a.dtype, np.float32, casting="safe") for a in (array, self._global[index])):
                return np.subtract(array, base32, dtype=np.float32)  # one pass: no float32 copy of the state first
            return (array.astype(np.float64) - self._global[index].astype(np.float64)).astype(np.float32)

    @_serialized
    def failure(self, cid: str | int, reason: str) -> None:
        """Record that client ``cid`` was asked to train in this round but its reply failed, and why: ``reason``, kept
        whole up to :data:`REASON_MAX_LENGTH` characters (beyond, its beginning and end, with a marker)."""
        self._check_writable()
        cid = _client_id(cid, _where(self.number))
        self._check_unrecorded(cid, _where(self.number, cid))
        # the reason is free text (often an exception's message): kept, with what HDF5 cannot hold escaped
        text = str(reason).replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode("utf-8")
        if len(text) > REASON_MAX_LENGTH:  # its beginning and its end: a traceback ends with the error
            half = REASON_MAX_LENGTH // 2
            text = f"{text[:half]} … [{len(text) - 2 * half:,} characters cut] … {text[-half:]}"
        self._failures[cid] = text

    @_serialized
    def global_metrics(self, values: Mapping[str, Any]) -> None:
        """Record the evaluation of the model aggregated in this round (accuracy, attack success...)."""
        self._check_writable()
        self._global_metrics.update(_numbers(values, _where(self.number)))

    # -- internals --------------------------------------------------------------
    def _check_unrecorded(self, cid: str, where: str) -> None:
        """Refuse a second record of ``cid`` in this round, saying what the first was (a reply, or a failure)."""
        if cid in self._failures:
            raise RecorderError(f"{where}: already recorded as failed in this round")
        if cid in self._recorded:
            raise RecorderError(f"{where}: already recorded as having replied in this round")

    def _check_writable(self) -> None:
        if self._rec._open_round is not self:
            raise RecorderError(f"round {self.number} is closed: committed, or discarded")

    def _round_group(self) -> h5py.Group:
        """The round's group, created with the global state and an empty update table per layer."""
        if self._group is None:
            rec = self._rec
            self._group = rec._h5[spec.ROUNDS].create_group(spec.round_key(self.number))
            glob = self._group.create_group(spec.GLOBAL)
            for layer, array in zip(rec._layers, self._global):
                rec._dataset(glob, spec.layer_key(layer.index), array)
            updates = self._group.create_group(spec.UPDATES)
            for layer in rec._layers:
                self._updates.append(
                    updates.create_dataset(
                        spec.layer_key(layer.index),
                        shape=(0, *layer.shape),
                        # a zero-length axis (an empty layer) cannot be chunked as it is: HDF5 chunks are >= 1
                        maxshape=(None, *(d if d else None for d in layer.shape)),
                        dtype=spec.UPDATE_DTYPE,
                        chunks=(1, *(d or 1 for d in layer.shape)) if layer.shape else (64,),
                        **rec._filters,
                    )
                )
                self._direct.append(rec._compression is None and bool(layer.shape) and all(layer.shape))
        return self._group

    def _reserve(self, rows: int) -> None:
        """Make every update table hold at least ``rows`` rows, growing geometrically.

        Resizing is a metadata operation per dataset; doubling keeps it to a few per
        round. :meth:`_write_summary` cuts the tables to the clients recorded.
        """
        self._round_group()
        if rows > self._capacity:
            self._capacity = max(rows, 2 * self._capacity)
            for dataset in self._updates:
                dataset.resize(self._capacity, axis=0)

    def _write_summary(self) -> None:
        group = self._round_group()
        group.attrs[spec.ATTR_ROUND] = self.number
        group.create_dataset(spec.CLIENTS, data=np.array(self._clients, dtype=object), dtype=_STR)
        group.create_dataset(spec.NUM_SAMPLES, data=np.array(self._num_samples, dtype=np.int64))
        group.create_dataset(spec.NONFINITE, data=np.array(self._nonfinite, dtype=np.int64))
        names = sorted({name for values in self._metrics for name in values})
        table = np.full((len(self._clients), len(names)), math.nan)
        for i, values in enumerate(self._metrics):
            for j, name in enumerate(names):
                table[i, j] = values.get(name, math.nan)
        group.create_dataset(spec.METRIC_NAMES, data=np.array(names, dtype=object), dtype=_STR)
        group.create_dataset(spec.METRICS, data=table)
        if self._failures:
            failures = group.create_group(spec.FAILURES)
            failures.create_dataset(spec.FAILURE_CLIENTS, data=np.array(list(self._failures), dtype=object), dtype=_STR)
            failures.create_dataset(
                spec.FAILURE_REASONS, data=np.array(list(self._failures.values()), dtype=object), dtype=_STR
            )
        if self._global_metrics:
            gm = group.create_group(spec.GLOBAL_METRICS)
            gm.create_dataset(spec.GLOBAL_METRIC_NAMES, data=np.array(list(self._global_metrics), dtype=object), dtype=_STR)
            gm.create_dataset(spec.GLOBAL_METRIC_VALUES, data=np.array(list(self._global_metrics.values())))
        for dataset in self._updates:  # _reserve grew them geometrically: keep the recorded rows
            dataset.resize(len(self._clients), axis=0)
        group.attrs[spec.ATTR_COMPLETE] = True
