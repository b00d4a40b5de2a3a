"""Crash-safe writes to an HDF5 file through an undo journal.

HDF5 updates its metadata (superblock, group indexes, dataset headers) in place,
so a process killed while a round is being written can leave a file whose
*earlier* rounds no longer open. The recorder therefore hands HDF5 a file object
that keeps an undo journal, the technique of SQLite's rollback journal:

* the file's size at the last commit is remembered;
* before any byte below that size is overwritten for the first time since the
  commit, the original page is appended to ``<file>.journal`` and made durable;
* a commit flushes the file, ``fsync``\\ s it and deletes the journal.

A journal that is still there after a crash ("hot") describes exactly how to get
back to the last committed state: put the saved pages back and cut the file to
the committed size. :func:`rollback` does that on disk; :class:`RecoveredFile`
does it in memory, for readers that must not modify what they audit.
"""

from __future__ import annotations

import io
import os
import struct
from pathlib import Path

from .spec import JOURNAL_SUFFIX

MAGIC = b"FFRJNL01"
_HEADER = struct.Struct("<8sQ")  # magic, committed size
_RECORD = struct.Struct("<QQ")  # offset, length
PAGE = 4096


def journal_path(path: str | os.PathLike[str]) -> Path:
    """Where the undo journal of ``path`` lives."""
    return Path(os.fspath(path) + JOURNAL_SUFFIX)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path.parent if str(path.parent) else ".", os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_journal(path: str | os.PathLike[str]) -> tuple[int, list[tuple[int, bytes]]] | None:
    """Parse a hot journal: the committed size and the saved ``(offset, bytes)`` pages.

    Returns ``None`` when there is no journal, or when the journal's header itself
    was never completed (then the main file had not been touched yet). A record
    cut short by a crash is ignored: its page had not been overwritten yet.
    """
    jpath = journal_path(path)
    try:
        data = jpath.read_bytes()
    except FileNotFoundError:
        return None
    if len(data) < _HEADER.size:
        return None
    magic, committed = _HEADER.unpack_from(data, 0)
    if magic != MAGIC:
        return None
    pages: list[tuple[int, bytes]] = []
    pos = _HEADER.size
    while pos + _RECORD.size <= len(data):
        offset, length = _RECORD.unpack_from(data, pos)
        pos += _RECORD.size
        if pos + length > len(data):
            break
        pages.append((offset, data[pos : pos + length]))
        pos += length
    return committed, pages


def rollback(path: str | os.PathLike[str]) -> bool:
    """Undo an interrupted write on disk. Returns whether there was anything to undo."""
    jpath = journal_path(path)
    parsed = read_journal(path)
    if parsed is None:
        jpath.unlink(missing_ok=True)
        return False
    committed, pages = parsed
    fd = os.open(path, os.O_RDWR)
    try:
        for offset, original in pages:
            os.pwrite(fd, original, offset)
        os.ftruncate(fd, committed)
        os.fsync(fd)
    finally:
        os.close(fd)
    jpath.unlink()
    _fsync_dir(jpath)
    return True


class JournaledFile(io.RawIOBase):
    """A binary file object for h5py's ``fileobj`` driver that journals overwrites.

    Parameters
    ----------
    path
        The HDF5 file. It is created (or emptied) when ``create`` is true.
    create
        Start a new, empty file.
    fsync
        Make commits and journal records durable against power loss, not only
        against the death of the process.
    """

    def __init__(self, path: str | os.PathLike[str], *, create: bool, fsync: bool = True) -> None:
        super().__init__()
        self.path = Path(path)
        self._journal = journal_path(path)
        self._durable = fsync
        flags = os.O_RDWR | (os.O_CREAT | os.O_TRUNC if create else 0)
        self._fd = os.open(self.path, flags, 0o644)
        self._pos = 0
        self._committed = os.fstat(self._fd).st_size
        self._jfd: int | None = None
        self._saved_pages: set[int] = set()

    # -- io.RawIOBase ---------------------------------------------------------
    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            self._pos = offset
        elif whence == io.SEEK_CUR:
            self._pos += offset
        else:
            self._pos = os.fstat(self._fd).st_size + offset
        return self._pos

    def tell(self) -> int:
        return self._pos

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def, override]
        view = memoryview(buffer).cast("B")
        n = os.preadv(self._fd, [view], self._pos)
        self._pos += n
        return n

    def write(self, data) -> int:  # type: ignore[no-untyped-def, override]
        view = memoryview(data).cast("B")
        n = len(view)
        self._save_originals(self._pos, self._pos + n)
        written = 0
        while written < n:
            written += os.pwrite(self._fd, view[written:], self._pos + written)
        self._pos += n
        return n

    def truncate(self, size: int | None = None) -> int:
        size = self._pos if size is None else size
        self._save_originals(size, self._committed)
        os.ftruncate(self._fd, size)
        return size

    def flush(self) -> None:
        """Nothing is buffered here: every write went to the OS already."""

    def close(self) -> None:
        if not self.closed:
            if self._jfd is not None:
                os.close(self._jfd)
                self._jfd = None
            os.close(self._fd)
        super().close()

    # -- transactions ---------------------------------------------------------
    def commit(self) -> None:
        """Make everything written so far durable and forget the journal."""
        if self._durable:
            os.fsync(self._fd)
        if self._jfd is not None:
            os.close(self._jfd)
            self._jfd = None
            self._journal.unlink()
            if self._durable:
                _fsync_dir(self._journal)
        self._committed = os.fstat(self._fd).st_size
        self._saved_pages.clear()

    def _open_journal(self) -> int:
        fd = os.open(self._journal, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.write(fd, _HEADER.pack(MAGIC, self._committed))
        if self._durable:
            os.fsync(fd)
            _fsync_dir(self._journal)
        return fd

    def _save_originals(self, start: int, stop: int) -> None:
        """Journal the committed pages in ``[start, stop)`` not journaled since the commit."""
        if self._jfd is None:
            # Opened on the first write after a commit, even past the committed
            # size, so that a crash always leaves the size to cut back to.
            self._jfd = self._open_journal()
        stop = min(stop, self._committed)
        if start >= stop:
            return
        records = []
        for page in range(start // PAGE, (stop - 1) // PAGE + 1):
            if page in self._saved_pages:
                continue
            offset = page * PAGE
            original = os.pread(self._fd, min(PAGE, self._committed - offset), offset)
            records.append(_RECORD.pack(offset, len(original)) + original)
            self._saved_pages.add(page)
        if records:
            os.write(self._jfd, b"".join(records))
            if self._durable:
                os.fsync(self._jfd)


class RecoveredFile(io.RawIOBase):
    """Read-only view of a file as it was at its last commit, hot journal applied in memory."""

    def __init__(self, path: str | os.PathLike[str], committed: int, pages: list[tuple[int, bytes]]) -> None:
        super().__init__()
        self._fd = os.open(path, os.O_RDONLY)
        self._size = committed
        self._pages = sorted(pages)
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = base + offset
        return self._pos

    def tell(self) -> int:
        return self._pos

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def, override]
        view = memoryview(buffer).cast("B")
        start = self._pos
        stop = min(start + len(view), self._size)
        if stop <= start:
            return 0
        n = os.preadv(self._fd, [view[: stop - start]], start)
        for offset, original in self._pages:
            lo, hi = max(offset, start), min(offset + len(original), stop)
            if lo < hi:
                view[lo - start : hi - start] = original[lo - offset : hi - offset]
        n = stop - start
        self._pos = stop
        return n

    def close(self) -> None:
        if not self.closed:
            os.close(self._fd)
        super().close()
