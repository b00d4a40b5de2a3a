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

HDF5 must never see a write fail: it does not recover from it. A failed flush
leaves its metadata cache half-flushed, so that closing the file fails too, and a
file whose close failed is freed while its id lives on, which h5py takes for an
open file: the next use of it reads freed memory and kills the process (a full
disk did that). So a write that fails (no space left, file too large, I/O error)
*detaches* the :class:`JournaledFile` instead: it and every later write are kept
in memory, nothing more reaches the disk, so the journal still undoes everything
since the commit, and HDF5 carries on, can flush and can close. The writer learns
of the error from :meth:`JournaledFile.check` and :meth:`JournaledFile.commit`,
which raise it; a detached file never commits.
"""

from __future__ import annotations

import errno
import io
import os
import stat
import struct
import weakref
from pathlib import Path

from .spec import CREATION_SUFFIX, JOURNAL_SUFFIX

MAGIC = b"FFRJNL01"
_HEADER = struct.Struct("<8sQ")  # magic, committed size
_RECORD = struct.Struct("<QQ")  # offset, length
PAGE = 4096


def journal_path(path: str | os.PathLike[str]) -> Path:
    """Where the undo journal of ``path`` is written: beside the file itself, where ``path`` is a symbolic link to
    it, so that a writer and a reader that name the run by different links meet the same journal."""
    return Path(os.path.realpath(path) + JOURNAL_SUFFIX)


def journal_paths(path: str | os.PathLike[str]) -> list[Path]:
    """Where a journal of ``path`` may be: :func:`journal_path`, and beside the link ``path`` names the run by,
    where writers put it before the journal followed links (a reader MUST NOT read the run without it)."""
    paths = [journal_path(path)]
    beside_link = Path(os.fspath(path) + JOURNAL_SUFFIX)
    if os.path.realpath(beside_link) != os.path.realpath(paths[0]):
        paths.append(beside_link)
    return paths


def hot_journal(path: str | os.PathLike[str]) -> Path:
    """The journal of ``path`` a reader must apply: the first of :func:`journal_paths` that exists (else the first)."""
    paths = journal_paths(path)
    return next((p for p in paths if p.exists()), paths[0])


def creation_path(path: str | os.PathLike[str]) -> Path:
    """Where a new run of ``path`` is written until its first commit (:meth:`JournaledFile.move` then puts it in
    place): under the same name, so that its journal's name fits where the run's does, in a folder beside the file
    (beside a link's target), on the same file system, so that the rename is atomic."""
    real = Path(os.path.realpath(path))
    return real.parent / f".{real.name}{CREATION_SUFFIX}" / real.name


def name_max(folder: str | os.PathLike[str]) -> int:
    """The longest file name, in bytes, ``folder``'s file system takes (``PC_NAME_MAX``; 255 where unknown)."""
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):  # no such folder (opening the file says so), or a system without the query
        return 255


def longest_run_name(path: str | os.PathLike[str]) -> int:
    """The longest file name, in bytes, a run in ``path``'s folder may have: its journal's name is
    ``JOURNAL_SUFFIX`` longer and must fit in the file system's limit."""
    return name_max(Path(path).parent) - len(JOURNAL_SUFFIX)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path.parent if str(path.parent) else ".", os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    """``os.write`` all of ``data``: a write cut short (the disk filling up) is continued, or raises."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def read_journal(path: str | os.PathLike[str]) -> tuple[int, list[tuple[int, bytes]]] | None:
    """Parse a hot journal: the committed size and the saved ``(offset, bytes)`` pages.

    Returns ``None`` when there is no journal, or when the journal's header itself
    was never completed (then the main file had not been touched yet). A record
    cut short by a crash is ignored: its page had not been overwritten yet.
    """
    jpath = hot_journal(path)
    try:
        fd = os.open(jpath, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # a FIFO's open waits for a writer otherwise
    except FileNotFoundError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # a FIFO's read waited for a writer for ever (a fuzzed run)
            raise OSError(errno.EINVAL, "not a regular file", os.fspath(jpath))
        with open(fd, "rb", closefd=False) as journal:
            data = journal.read()
    finally:
        os.close(fd)
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
    jpath = hot_journal(path)
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

    Writes and truncations never fail: an ``OSError`` of the file or the journal
    detaches this file (:meth:`detach`; see the module's docstring) and is kept,
    with the name of the file, in :attr:`error`, for :meth:`check` and
    :meth:`commit` to raise. Everything since the commit can then only be rolled
    back.
    """

    def __init__(self, path: str | os.PathLike[str], *, create: bool, fsync: bool = True) -> None:
        super().__init__()
        self.path = Path(path)
        self._journal = journal_path(path)
        self._durable = fsync
        self._fd = os.open(self.path, os.O_RDWR | (os.O_CREAT if create else 0), 0o644)
        if create and os.fstat(self._fd).st_size:
            # Only a file that holds something (left by a recorder killed as it created it) is emptied. ext4 marks a file truncated
            # to zero (even an empty one, as the writer's lock creates it) and writes it out in the thread that next
            # closes a descriptor of it ("auto_da_alloc"): 0.76 s for a 1.6 GB run recorded with fsync=False. A
            # descriptor opened and closed at once, while the file is empty, takes that mark away for nothing.
            try:
                os.ftruncate(self._fd, 0)
                os.close(os.open(self.path, os.O_RDONLY))
            except BaseException:
                os.close(self._fd)
                raise
        self._pos = 0
        self._committed = os.fstat(self._fd).st_size
        self._jfd: int | None = None
        self._saved_pages: set[int] = set()
        #: The first write that failed since the file was opened; the file is detached since.
        self.error: OSError | None = None
        self._reported = False
        # Detached: the pages written since, the file's size, and below which size the disk still holds it.
        self._shadow: dict[int, bytearray] | None = None
        self._size = 0
        self._floor = 0
        _open_files.add(self)

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
            self._pos = self._file_size() + offset
        return self._pos

    def tell(self) -> int:
        return self._pos

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def, override]
        view = memoryview(buffer).cast("B")
        if self._shadow is not None:
            return self._shadow_read(view)
        n = os.preadv(self._fd, [view], self._pos)
        self._pos += n
        return n

    def write(self, data) -> int:  # type: ignore[no-untyped-def, override]
        self._check_open()
        view = memoryview(data).cast("B")
        n = len(view)
        if self._shadow is None:
            try:
                self._save_originals(self._pos, self._pos + n)
                written = 0
                while written < n:
                    written += os.pwrite(self._fd, view[written:], self._pos + written)
            except OSError as exc:
                self._failed(exc)
        if self._shadow is not None:
            self._shadow_write(view)
        self._pos += n
        return n

    def truncate(self, size: int | None = None) -> int:
        self._check_open()
        size = self._pos if size is None else size
        if self._shadow is None:
            try:
                self._save_originals(size, self._committed)
                os.ftruncate(self._fd, size)
            except OSError as exc:
                self._failed(exc)
        if self._shadow is not None:
            self._shadow_truncate(size)
        return size

    def flush(self) -> None:
        """Nothing is buffered here: every write went to the OS already (or, detached, to memory)."""

    def close(self) -> None:
        if not self.closed:
            self._shadow = None
            jfd, self._jfd = self._jfd, None  # forgotten before closed: never closed twice (a number reused since)
            fd, self._fd = self._fd, -1
            super().close()
            if jfd is not None:
                os.close(jfd)
            if fd >= 0:
                os.close(fd)

    def _check_open(self) -> None:
        """Refuse to write once closed: an h5py file left alive past its recorder (an interrupt between two
        steps of closing) flushes its caches when it is freed, and its descriptor's number may be another
        file's by then."""
        if self.closed:
            raise ValueError(f"{self.path}: write to a closed file (its recorder has closed it)")

    # -- transactions ---------------------------------------------------------
    def commit(self) -> None:
        """Make everything written so far durable and forget the journal.

        A detached file raises instead: what it holds since the commit never
        reached the disk, and the journal (left in place) takes the disk back to
        the commit.
        """
        self.check()
        if self._shadow is not None:
            raise OSError(f"{self.path}: detached: its changes since the last commit can only be rolled back")
        try:
            if self._durable:
                os.fsync(self._fd)
            if self._jfd is not None:
                jfd, self._jfd = self._jfd, None  # forgotten before closed: an interrupt here must not close it twice
                os.close(jfd)
                self._journal.unlink()
                if self._durable:
                    _fsync_dir(self._journal)
        except OSError as exc:
            self._failed(exc)
            raise
        self._committed = os.fstat(self._fd).st_size
        self._saved_pages.clear()

    def move(self, path: str | os.PathLike[str]) -> None:
        """Rename the file to ``path``, replacing whatever is there, right after a commit: no journal exists then,
        so either name holds a committed file at every moment. The journal is ``path``'s from now on."""
        if self._jfd is not None:
            raise RuntimeError(f"{self.path}: moved with writes since its last commit (their journal would stay behind)")
        os.replace(self.path, path)
        self.path, self._journal = Path(path), journal_path(path)
        if self._durable:
            _fsync_dir(self.path)

    def owns_journal(self) -> bool:
        """Whether the journal on disk is the one this file opened since its last commit: not another writer's
        of the same path (a recorder of the same file made after this one was dropped, where no lock held it)."""
        if self._jfd is None:
            return False
        try:
            return os.path.samestat(os.fstat(self._jfd), os.stat(self._journal))
        except OSError:
            return False

    def detach(self) -> None:
        """From now on, keep what is written in memory, off the disk.

        Done by a failed write, and on purpose to close HDF5's view of a
        transaction that is then rolled back: HDF5 writes its caches out as it
        closes a file, and those writes need not reach the disk. Reads see them,
        as HDF5 expects.
        """
        if self._shadow is None:
            self._shadow = {}
            self._size = self._floor = os.fstat(self._fd).st_size

    def _failed(self, exc: OSError) -> None:
        """Name the file in ``exc``, the failure of an operation on it or its journal, and detach."""
        if exc.filename is None:
            exc.filename = os.fspath(self.path)
        if self.error is None:
            self.error = exc
        self.detach()

    def check(self) -> None:
        """Raise the ``OSError`` of the write that failed, if one did (then again on every call)."""
        if self.error is not None:
            if self._reported:
                raise OSError(self.error.errno, self.error.strerror, self.error.filename)
            self._reported = True
            raise self.error

    def _file_size(self) -> int:
        return self._size if self._shadow is not None else os.fstat(self._fd).st_size

    def _open_journal(self) -> int:
        fd = os.open(self._journal, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            _write_all(fd, _HEADER.pack(MAGIC, self._committed))
            if self._durable:
                os.fsync(fd)
                _fsync_dir(self._journal)
        except BaseException:
            os.close(fd)  # a journal with no complete header says the file was not touched: true
            raise
        return fd

    def _save_originals(self, start: int, stop: int) -> None:
        """Journal the committed pages in ``[start, stop)`` not journaled since the commit.

        Raises (the journal's ``OSError``, with its name) unless every such page is
        durably in the journal: only then may the caller overwrite them. A record cut
        short by the failure is the journal's last: :func:`read_journal` ignores it.
        """
        try:
            if self._jfd is None:
                # Opened on the first write after a commit, even past the committed
                # size, so that a crash always leaves the size to cut back to.
                self._jfd = self._open_journal()
            stop = min(stop, self._committed)
            if start >= stop:
                return
            records, pages = [], []
            for page in range(start // PAGE, (stop - 1) // PAGE + 1):
                if page in self._saved_pages:
                    continue
                offset = page * PAGE
                original = os.pread(self._fd, min(PAGE, self._committed - offset), offset)
                records.append(_RECORD.pack(offset, len(original)) + original)
                pages.append(page)
            if records:
                _write_all(self._jfd, b"".join(records))
                if self._durable:
                    os.fsync(self._jfd)
                self._saved_pages.update(pages)
        except OSError as exc:
            if exc.filename is None:
                exc.filename = os.fspath(self._journal)
            raise

    # -- detached: in memory ----------------------------------------------------
    def _page(self, index: int, keep: bool) -> bytearray:
        """Page ``index`` as the file now holds it; with ``keep``, as the one to change."""
        page = self._shadow.get(index)  # type: ignore[union-attr]
        if page is None:
            offset = index * PAGE
            page = bytearray(os.pread(self._fd, max(0, min(PAGE, self._floor - offset)), offset))
            page.extend(bytes(PAGE - len(page)))
            if keep:
                self._shadow[index] = page  # type: ignore[index]
        return page

    def _shadow_read(self, view: memoryview) -> int:
        start = self._pos
        stop = min(start + len(view), self._size)
        pos = start
        while pos < stop:
            index, within = divmod(pos, PAGE)
            take = min(PAGE - within, stop - pos)
            view[pos - start : pos - start + take] = self._page(index, keep=False)[within : within + take]
            pos += take
        self._pos = max(start, stop)
        return self._pos - start

    def _shadow_write(self, view: memoryview) -> None:
        done = 0
        while done < len(view):
            index, within = divmod(self._pos + done, PAGE)
            take = min(PAGE - within, len(view) - done)
            self._page(index, keep=True)[within : within + take] = view[done : done + take]
            done += take
        self._size = max(self._size, self._pos + len(view))

    def _shadow_truncate(self, size: int) -> None:
        if size < self._size:
            for index in [i for i in self._shadow if i * PAGE >= size]:  # type: ignore[union-attr]
                del self._shadow[index]  # type: ignore[union-attr]
            index, within = divmod(size, PAGE)
            if within:
                page = self._page(index, keep=True)
                page[within:] = bytes(PAGE - within)
            self._floor = min(self._floor, size)
        self._size = size


class RecoveredFile(io.RawIOBase):
    """Read-only view of a file as it was at its last commit, hot journal applied in memory."""

    def __init__(self, path: str | os.PathLike[str], committed: int, pages: list[tuple[int, bytes]]) -> None:
        super().__init__()
        self._path = os.fspath(path)
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
        read = start
        while read < stop:  # one call reads at most about 2 GiB on Linux (review)
            got = os.preadv(self._fd, [view[read - start : stop - start]], read)
            if not got:  # the file's end
                break
            read += got
        gap = read  # the first byte past the file's end that no saved page restores
        for offset, original in self._pages:
            lo, hi = max(offset, start), min(offset + len(original), stop)
            if lo < hi:
                view[lo - start : hi - start] = original[lo - offset : hi - offset]
                if lo <= gap < hi:
                    gap = hi
        if gap < stop:  # cut shorter than its last commit by someone else: bytes no one has (review: stale ones were read)
            raise OSError(f"{self._path}: shorter than its last commit ({os.fstat(self._fd).st_size:,} of {self._size:,} bytes)")
        self._pos = stop
        return stop - start

    def close(self) -> None:
        if not self.closed:
            os.close(self._fd)
        super().close()


#: Every JournaledFile not yet garbage: a forked child detaches its copies (:func:`_detach_in_child`).
_open_files: weakref.WeakSet[JournaledFile] = weakref.WeakSet()


def _detach_in_child() -> None:
    """In a forked child: whatever HDF5 writes through an inherited file (its flush as the child exits, a write the
    child attempts) stays in the child's memory. The descriptor is the parent's: a write or a truncation through it
    changed the parent's run under its journal (QA: a child leaving an inherited round block truncated the file)."""
    for file in list(_open_files):
        if not file.closed:
            file.detach()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_detach_in_child)
