"""One writer per run file: an exclusive ``flock`` held for as long as a recorder writes it.

Without it a second recorder started on a file that another one is still writing (another
process, or a forgotten object in the same notebook) truncated the file under the first, removed
its journal, and the two destroyed every committed round between them.

The lock is ``flock(2)``'s, taken on the run file itself (on the file it replaces too, until the new one,
created under another name, takes its place), before anything of it is changed. On a
local filesystem it conflicts with any other ``flock`` of the file, in this process too (each open
of the file is its own lock holder), and with the locks HDF5 takes when it opens a file (shared to
read, exclusive to write); a reader that opens the file without locking (``fedforensics``'s reader,
``h5py.File(path, "r", locking=False)``) is not affected. A child process forked while the lock is
held lets go of its copy at once, so that a pool of workers does not keep the file locked after the
recorder closed. Where ``flock`` is not available (Windows; some network and FUSE filesystems answer
ENOLCK or EOPNOTSUPP) nothing is locked and the recorder writes as before; on NFS, Linux emulates
``flock`` with POSIX locks, which do not conflict within one process.
"""

from __future__ import annotations

import errno
import os
import weakref
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - not on POSIX
    fcntl = None  # type: ignore[assignment]

#: flock errors that mean "this filesystem does not lock", not "someone holds the lock".
_UNSUPPORTED = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS, errno.EINVAL}
_held: weakref.WeakSet[WriterLock] = weakref.WeakSet()


class FileBusyError(OSError):
    """Another writer holds the file."""


def busy(path: Path) -> FileBusyError:
    """The error that says another writer holds ``path``."""
    return FileBusyError(f"{path} is locked by another recorder or HDF5 program that has it open: close that first")


class WriterLock:
    """The exclusive lock of ``path``, created empty if it does not exist (:attr:`created` says so)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.created = False
        self._fd: int | None = None
        try:
            self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
            self.created = True
        except FileExistsError:
            dangling = path.is_symlink() and not path.exists()  # O_EXCL refuses the link; plain O_CREAT follows it
            self._fd = os.open(path, os.O_RDWR | (os.O_CREAT if dangling else 0), 0o644)
            self.created = dangling
        if fcntl is None:
            return
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.release(remove=False)  # the file is the other writer's now, even if this call created it
            raise busy(path) from None
        except OSError as exc:
            if exc.errno not in _UNSUPPORTED:
                self.release(remove=True)
                raise
        _held.add(self)

    def release(self, remove: bool = False) -> None:
        """Let the next writer in (closing the descriptor drops the lock); ``remove``: first delete the file if
        this lock created it (nothing was written to it). Idempotent."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        if remove and self.created:
            self.path.unlink(missing_ok=True)
        os.close(fd)

    def _forget_in_child(self) -> None:
        """In a forked child: close the inherited descriptor, which would otherwise hold the parent's lock."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


def writer_holds(path: Path) -> bool:
    """Whether a writer (a recorder, or an HDF5 program that opened the file to write) holds ``path`` now: a
    shared lock of it is refused. False where the filesystem does not lock or the file cannot be opened."""
    if fcntl is None:
        return False
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)  # drops the shared lock, if taken
    return False


def _after_fork_in_child() -> None:
    for lock in list(_held):
        lock._forget_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
