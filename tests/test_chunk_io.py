"""The recorder writes, and the reader reads, uncompressed update rows as raw HDF5 chunks.

Those direct chunk paths must store and return exactly what HDF5's ordinary
paths do (used for compressed files and for layouts other writers may choose).
"""

from __future__ import annotations

import errno
import os
import shutil
import threading
import time
import types

import h5py
import numpy as np
import pytest

from fedforensics import open_run
from recorder import Recorder, spec
from recorder.journal import journal_path


def _states(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {
        "w": rng.normal(size=(6, 5)).astype(np.float32).T,  # not C-contiguous
        "b": rng.normal(size=5),  # float64: subtracted in float64, stored as float32
        "scale": np.float32(rng.normal()),  # a scalar layer
        "steps": np.array(3, dtype=np.int64),
    }


def _record(path, rng, compression):
    expected = {}
    with Recorder(path, compression=compression) as rec:
        for r, n in enumerate([5, 1, 0, 3]):  # 5 rows outgrow the doubling (1, 2, 4, 8); 0: all failed
            g = _states(rng)
            with rec.round(r, g) as rnd:
                for c in range(n):
                    local = _states(rng)
                    rnd.client(f"c{c}", local, num_samples=1)
                    # float32 layers subtract in float32, float64 and int64 ones in float64 (docs/format.md)
                    expected[r, f"c{c}"] = {
                        k: (np.asarray(local[k], np.float64) - np.asarray(g[k], np.float64)).astype(np.float32) for k in g
                    }
                if not n:
                    rnd.failure("c0", "timeout")
    return expected


@pytest.mark.parametrize("compression", [None, "gzip"])
def test_every_read_path_returns_what_was_recorded(tmp_path, compression):
    expected = _record(tmp_path / "run.h5", np.random.default_rng(0), compression)
    with open_run(tmp_path / "run.h5") as run:
        assert run.rounds == [0, 1, 2, 3]  # every recorded round, so that the loop below checks each
        for r in run.rounds:
            clients = run.clients(r)
            assert len(clients) == [5, 1, 0, 3][r]
            for cid in clients:
                for name, value in run.update(r, cid).items():
                    assert value.dtype == np.float32
                    np.testing.assert_array_equal(value, expected[r, cid][name])
            for layer in run.layers:
                stacked = run.layer_updates(r, layer.name)
                assert stacked.shape == (len(clients), *layer.shape)
                for row, cid in enumerate(clients):
                    np.testing.assert_array_equal(stacked[row], expected[r, cid][layer.name])
            matrix = run.update_matrix(r, run.layers)
            for row, cid in enumerate(clients):
                np.testing.assert_array_equal(matrix[row], np.concatenate([v.ravel() for v in expected[r, cid].values()]))


def test_update_tables_hold_exactly_the_recorded_rows_as_one_chunk_each(tmp_path):
    _record(tmp_path / "run.h5", np.random.default_rng(1), None)
    with h5py.File(tmp_path / "run.h5", "r") as f:
        for key, n in zip(sorted(f[spec.ROUNDS]), [5, 1, 0, 3]):
            w = f[spec.ROUNDS][key][spec.UPDATES][spec.layer_key(0)]
            assert w.shape == (n, 5, 6) and w.chunks == (1, 5, 6) and w.compression is None
            assert w.id.get_num_chunks() == n  # nothing stored beyond the rows, whatever the table grew to


def _reads_by_thread(monkeypatch) -> list[tuple[str, list[int]]]:
    """The thread and the file offsets of every batch of pieces read at their offsets (``chunk_read``)."""
    from fedforensics import chunk_read

    batches: list[tuple[str, list[int]]] = []
    read = chunk_read._read_pieces

    def spied(fd, pieces):
        batches.append((threading.current_thread().name, [offset for offset, _ in pieces]))
        read(fd, pieces)

    monkeypatch.setattr(chunk_read, "_read_pieces", spied)
    return batches


def _names(batches: list[tuple[str, list[int]]]) -> list[str]:
    return [name for name, _ in batches]


def _check_every_read(path, expected) -> None:
    with open_run(path) as run:
        for r in run.rounds:
            clients = run.clients(r)
            for cid in clients:
                for name, value in run.update(r, cid).items():
                    np.testing.assert_array_equal(value, expected[r, cid][name])
            for layer in run.layers:
                stacked = run.layer_updates(r, layer.name)
                for row, cid in enumerate(clients):
                    np.testing.assert_array_equal(stacked[row], expected[r, cid][layer.name])
            matrix = run.update_matrix(r, run.layers)  # rows of a wider matrix: each layer's piece of every row
            for row, cid in enumerate(clients):
                np.testing.assert_array_equal(matrix[row], np.concatenate([v.ravel() for v in expected[r, cid].values()]))


def test_rows_read_at_their_offsets_by_two_threads_are_the_recorded_ones(tmp_path, monkeypatch):
    """Rows cut into pieces of 12 bytes (a row of 5 float32 is 20), every read large enough for two threads."""
    from fedforensics import chunk_read

    expected = _record(tmp_path / "run.h5", np.random.default_rng(2), None)
    monkeypatch.setattr(chunk_read, "PIECE_BYTES", 12)
    monkeypatch.setattr(chunk_read, "THREADED_BYTES", 0)
    monkeypatch.setattr(chunk_read, "THREADS", 2)
    batches = _reads_by_thread(monkeypatch)
    _check_every_read(tmp_path / "run.h5", expected)
    assert "fedforensics-read" in _names(batches) and threading.main_thread().name in _names(batches)


def test_the_second_thread_reads_the_first_half_of_the_bytes_each_in_file_order(tmp_path, monkeypatch):
    from fedforensics import chunk_read

    path = tmp_path / "f.bin"
    path.write_bytes(np.arange(400, dtype=np.float32).tobytes())
    out = np.empty((4, 100), np.float32)
    monkeypatch.setattr(chunk_read, "THREADED_BYTES", 0)
    monkeypatch.setattr(chunk_read, "THREADS", 2)
    monkeypatch.setattr(chunk_read, "PIECE_BYTES", 200)
    batches = _reads_by_thread(monkeypatch)
    fd = os.open(path, os.O_RDONLY)
    try:
        chunk_read.read_rows(fd, [1200, 800, 400, 0], out)  # the rows in reverse file order
    finally:
        os.close(fd)
    np.testing.assert_array_equal(out, np.arange(400, dtype=np.float32).reshape(4, 100)[::-1])
    assert dict(batches) == {
        "fedforensics-read": [0, 200, 400, 600],
        threading.main_thread().name: [800, 1000, 1200, 1400],
    }


def test_a_large_round_is_read_by_two_threads_with_the_defaults(tmp_path, monkeypatch):
    """Six clients × 512 × 512 float32: rows of THREADED_BYTES (1 MiB), below PIECE_BYTES. A round of them is read
    on two threads; one client's row, a single piece, on the calling thread alone (a review: handing it over made
    reading one client's update a third slower)."""
    from fedforensics import chunk_read

    rng = np.random.default_rng(3)
    g = {"big": np.zeros((512, 512), np.float32), "b": np.zeros(7, np.float32)}
    expected = {}
    with Recorder(tmp_path / "run.h5") as rec:
        with rec.round(0, g) as rnd:
            for c in range(6):
                update = {k: rng.normal(size=v.shape).astype(np.float32) for k, v in g.items()}
                rnd.client(f"c{c}", update, num_samples=1, delta=True)
                expected[0, f"c{c}"] = update
    monkeypatch.setattr(chunk_read, "THREADS", 2)  # the machine's CPUs decide otherwise
    batches = _reads_by_thread(monkeypatch)
    _check_every_read(tmp_path / "run.h5", expected)
    assert _names(batches).count("fedforensics-read") == 2  # the big layer, by layer_updates and by update_matrix


def test_hdf5_reads_the_rows_where_preadv_is_missing(tmp_path, monkeypatch):
    expected = _record(tmp_path / "run.h5", np.random.default_rng(4), None)
    monkeypatch.delattr(os, "preadv")
    batches = _reads_by_thread(monkeypatch)
    _check_every_read(tmp_path / "run.h5", expected)
    assert not batches


def test_a_run_behind_a_userblock_is_read_at_the_chunks_offsets(tmp_path, monkeypatch):
    """HDF5's chunk offsets count the bytes before the superblock: a run copied behind a 512-byte userblock."""
    expected = _record(tmp_path / "run.h5", np.random.default_rng(5), None)
    with h5py.File(tmp_path / "run.h5", "r") as src, h5py.File(tmp_path / "ub.h5", "w", userblock_size=512) as dst:
        dst.attrs.update(src.attrs)
        for name in src:
            src.copy(src[name], dst, name=name)
    with h5py.File(tmp_path / "ub.h5", "r") as f:
        w = f[spec.ROUNDS][sorted(f[spec.ROUNDS])[0]][spec.UPDATES][spec.layer_key(0)]
        assert f.userblock_size == 512 and w.chunks == (1, 5, 6) and w.id.get_num_chunks() == 5
    batches = _reads_by_thread(monkeypatch)
    _check_every_read(tmp_path / "ub.h5", expected)
    assert batches or h5py.version.hdf5_version_tuple < (1, 14, 4)  # whose offsets leave the userblock out


def test_a_recovered_run_is_read_through_its_journal_not_at_the_file_s_offsets(tmp_path, monkeypatch):
    """A copy of a run and its journal taken mid-round, as a killed writer leaves them: the committed state is
    the file's pages with the journal's put back, which reading the file's bytes at their offsets would skip."""
    g = {"w": np.zeros((4, 3), np.float32)}
    with Recorder(tmp_path / "run.h5") as rec:
        with rec.round(0, g) as rnd:
            for c in range(3):
                rnd.client(f"c{c}", {"w": g["w"] + c + 1}, num_samples=1)
        with rec.round(1, g) as rnd:
            rnd.client("c0", {"w": g["w"] + 5}, num_samples=1)
            (tmp_path / "copy").mkdir()
            shutil.copy(tmp_path / "run.h5", tmp_path / "copy" / "run.h5")
            shutil.copy(journal_path(tmp_path / "run.h5"), journal_path(tmp_path / "copy" / "run.h5"))
    batches = _reads_by_thread(monkeypatch)
    with open_run(tmp_path / "copy" / "run.h5") as run:
        assert run.recovered and run.rounds == [0]
        np.testing.assert_array_equal(run.layer_updates(0, "w")[:, 0, 0], [1, 2, 3])
        np.testing.assert_array_equal(run.update(0, "c2")["w"], np.full((4, 3), 3, np.float32))
    assert not batches


def test_a_file_cut_short_after_it_was_opened_fails_the_read(tmp_path, monkeypatch):
    from fedforensics import chunk_read

    path = tmp_path / "f.bin"
    path.write_bytes(np.arange(100, dtype=np.float32).tobytes())
    out = np.full((2, 50), -1, np.float32)
    fd = os.open(path, os.O_RDONLY)
    try:
        chunk_read.read_rows(fd, [200, 0], out)  # in file order: row 1 (bytes 0-199), then row 0 (200-399)
        np.testing.assert_array_equal(out.ravel(), np.r_[np.arange(50, 100), np.arange(50)])
        os.truncate(path, 300)
        monkeypatch.setattr(chunk_read, "THREADED_BYTES", 0)
        monkeypatch.setattr(chunk_read, "THREADS", 2)
        batches = _reads_by_thread(monkeypatch)
        with pytest.raises(OSError, match=r"ends inside an update's chunk \(read 100 of 200 bytes at offset 200\)"):
            chunk_read.read_rows(fd, [200, 0], out)
        assert sorted(_names(batches)) == sorted(["fedforensics-read", threading.main_thread().name])
    finally:
        os.close(fd)


def test_the_second_thread_s_failure_is_raised_once_it_has_stopped(tmp_path, monkeypatch):
    from fedforensics import chunk_read

    path = tmp_path / "f.bin"
    path.write_bytes(np.arange(100, dtype=np.float32).tobytes())
    out = np.full((2, 50), -1, np.float32)
    preadv = os.preadv

    def failing(fd, buffers, offset):
        if offset == 0:  # the first half of the bytes: the second thread's
            time.sleep(0.2)  # still reading when the calling thread is done
            raise OSError("disk gone")
        return preadv(fd, buffers, offset)

    monkeypatch.setattr(chunk_read.os, "preadv", failing)
    monkeypatch.setattr(chunk_read, "THREADED_BYTES", 0)
    monkeypatch.setattr(chunk_read, "THREADS", 2)
    fd = os.open(path, os.O_RDONLY)
    try:
        with pytest.raises(OSError, match="disk gone"):
            chunk_read.read_rows(fd, [200, 0], out)
    finally:
        os.close(fd)
    np.testing.assert_array_equal(out[0], np.arange(50, 100))  # the calling thread's half was read
    assert not [t for t in threading.enumerate() if t.name == "fedforensics-read"]


def test_an_interrupt_while_waiting_for_the_second_thread_is_raised_once_it_has_stopped(tmp_path, monkeypatch):
    """A review: a second Ctrl-C during the wait returned while the second thread still wrote into ``out``."""
    from fedforensics import chunk_read

    path = tmp_path / "f.bin"
    path.write_bytes(np.arange(100, dtype=np.float32).tobytes())
    out = np.full((2, 50), -1, np.float32)
    preadv, join = os.preadv, threading.Thread.join

    def slow(fd, buffers, offset):
        if offset == 0:  # the second thread's half
            time.sleep(0.3)
        return preadv(fd, buffers, offset)

    interrupts = []

    def interrupted_join(self, timeout=None):
        if not interrupts:
            interrupts.append(self)
            raise KeyboardInterrupt
        return join(self, timeout)

    monkeypatch.setattr(chunk_read.os, "preadv", slow)
    monkeypatch.setattr(threading.Thread, "join", interrupted_join)
    monkeypatch.setattr(chunk_read, "THREADED_BYTES", 0)
    monkeypatch.setattr(chunk_read, "THREADS", 2)
    fd = os.open(path, os.O_RDONLY)
    try:
        with pytest.raises(KeyboardInterrupt):
            chunk_read.read_rows(fd, [200, 0], out)
    finally:
        os.close(fd)
    assert interrupts and not interrupts[0].is_alive()
    np.testing.assert_array_equal(out, np.r_[np.arange(50, 100), np.arange(50)].reshape(2, 50))


class _Chunk:
    def __init__(self, byte_offset, size):
        self.byte_offset, self.size = byte_offset, size


def _table(chunks, file_size):
    """What ``row_offsets`` asks of an h5py dataset of two float32 rows of 10: each row's chunk, the file's size."""
    return types.SimpleNamespace(
        dtype=np.dtype(np.float32),
        shape=(2, 10),
        ndim=2,
        id=types.SimpleNamespace(get_chunk_info_by_coord=lambda coord: chunks[coord[0]]),
        file=types.SimpleNamespace(id=types.SimpleNamespace(get_filesize=lambda: file_size)),
    )


def test_row_offsets_refuse_a_chunk_of_another_size_or_past_the_file_s_end():
    """A review: a chunk index pointing past the file's end read as "the run file ends inside an update's chunk",
    without the file's name, where HDF5 had said the run file was damaged."""
    from fedforensics import chunk_read

    assert chunk_read.row_offsets(_table([_Chunk(100, 40), _Chunk(140, 40)], 180)) == [100, 140]
    with pytest.raises(ValueError, match="^row 1 is stored at bytes 141–181, past the file's end \\(180\\)$"):
        chunk_read.row_offsets(_table([_Chunk(100, 40), _Chunk(141, 40)], 180))
    with pytest.raises(ValueError, match="^row 0 is stored as 44 bytes, not the 40 of its shape$"):
        chunk_read.row_offsets(_table([_Chunk(100, 44), _Chunk(144, 40)], 184))


def test_a_read_the_file_refuses_is_named_with_the_file_and_round(tmp_path, monkeypatch):
    from fedforensics import RunFormatError, chunk_read

    expected = _record(tmp_path / "run.h5", np.random.default_rng(6), None)
    assert expected

    def failing(fd, buffers, offset):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(chunk_read.os, "preadv", failing)
    with open_run(tmp_path / "run.h5") as run:
        for read in (lambda: run.layer_updates(0, "w"), lambda: run.update(0, "c1")):
            with pytest.raises(RunFormatError) as info:
                read()
            assert str(info.value) == f"{tmp_path / 'run.h5'}: round 0: cannot read its updates (Input/output error)"
