"""Update rows read straight from the run file at their chunks' offsets, by two threads at once.

A table whose every row is one stored, unfiltered float32 chunk (what the recorder writes) keeps each row's bytes
at one place in the file, which HDF5 reports (``H5Dget_chunk_info``). Copying a round from the page cache is bound
by what one core can copy, not by the memory: two threads, each taking a contiguous half of the round's bytes with
``os.preadv`` (which lets go of the GIL), read it twice as fast as one. On the benchmark's machine a round of
20 clients × 1M float32 took 15–18 ms with HDF5's direct chunk read of each row, 15 ms with ``preadv`` on one
thread and 8 ms on two.
"""

from __future__ import annotations

import os
import threading

import h5py
import numpy as np

#: Bytes a single ``preadv`` takes at most: a round of a few large rows still splits evenly between the threads.
PIECE_BYTES = 4 * 2**20
#: Below this many bytes a read stays on the calling thread (starting and joining a thread takes about 50 µs, a quarter
#: of what copying 1 MB from the page cache takes).
THREADED_BYTES = 2**20


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux, or not allowed to ask
        return os.cpu_count() or 1


#: Threads that read at once: two (the second halves the time of a copy on a 2-core machine), one on a single CPU.
THREADS = min(2, _cpus())


def row_offsets(dataset: h5py.Dataset) -> list[int]:
    """Each row's file offset in a table whose rows are single unfiltered chunks.

    Raises ``ValueError`` naming a row whose chunk is not its row's bytes (HDF5 lets a writer store a chunk of any
    size, and reads the first bytes of a short one, leaving the rest of the caller's array as it was) or lies past
    the file's end (a damaged chunk index)."""
    row_bytes = dataset.dtype.itemsize * int(np.prod(dataset.shape[1:], dtype=np.int64))
    info = dataset.id.get_chunk_info_by_coord
    tail = (0,) * (dataset.ndim - 1)
    size = dataset.file.id.get_filesize()
    offsets = []
    for row in range(dataset.shape[0]):
        chunk = info((row, *tail))
        if chunk.size != row_bytes:
            raise ValueError(f"row {row} is stored as {chunk.size} bytes, not the {row_bytes} of its shape")
        end = chunk.byte_offset + chunk.size
        if end > size:
            raise ValueError(f"row {row} is stored at bytes {chunk.byte_offset:,}–{end:,}, past the file's end ({size:,})")
        offsets.append(chunk.byte_offset)
    return offsets


def read_rows(fd: int, offsets: list[int], out: np.ndarray) -> None:
    """Read row ``i`` of ``out`` (2-D, C-contiguous rows) from the ``fd``'s bytes at ``offsets[i]``.

    The rows are cut into pieces of at most :data:`PIECE_BYTES`, taken in file order; with :data:`THREADS` = 2,
    at least two pieces and :data:`THREADED_BYTES` in all, a second thread reads the first half of the bytes
    while the calling thread reads the rest (one piece stays on the calling thread: handing it over made
    reading one client's update a third slower). Returns, or raises, only once both are done: the caller may
    reuse ``out`` at once, even after an interrupt. Raises ``OSError`` if the file ends before a row does (it
    shrank after the offsets were read).
    """
    pieces: list[tuple[int, memoryview]] = []
    for offset, row in zip(offsets, out):
        view = memoryview(row).cast("B")
        for start in range(0, len(view), PIECE_BYTES):
            pieces.append((offset + start, view[start : start + PIECE_BYTES]))
    pieces.sort(key=lambda piece: piece[0])
    total = sum(len(view) for _, view in pieces)
    if THREADS < 2 or len(pieces) < 2 or total < THREADED_BYTES:
        _read_pieces(fd, pieces)
        return
    cut, taken = 0, 0
    while taken < total / 2:
        taken += len(pieces[cut][1])
        cut += 1
    failure: list[BaseException] = []

    def first_half() -> None:
        try:
            _read_pieces(fd, pieces[:cut])
        except BaseException as exc:  # handed to the calling thread, which raises it
            failure.append(exc)

    worker = threading.Thread(target=first_half, name="fedforensics-read")
    interrupted: BaseException | None = None
    try:
        worker.start()
        _read_pieces(fd, pieces[cut:])
    finally:
        while worker.is_alive():  # a second Ctrl-C during the wait must not return while it still writes ``out``
            try:
                worker.join()
            except BaseException as exc:
                interrupted = interrupted or exc
        if interrupted is not None:  # over whatever the calling thread's read raised
            raise interrupted
    if failure:
        raise failure[0]


def _read_pieces(fd: int, pieces: list[tuple[int, memoryview]]) -> None:
    for offset, view in pieces:
        done = 0
        while done < len(view):  # a regular file gives every byte asked for, short of its end
            got = os.preadv(fd, [view[done:]], offset + done)
            if not got:
                raise OSError(
                    f"the run file ends inside an update's chunk (read {done} of {len(view)} bytes at offset {offset})"
                )
            done += got
