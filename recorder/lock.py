"""One writer per run file: an exclusive ``flock`` held for as long as a recorder writes it.

Without it a second recorder started on a file that another one is still writing (another
process, or a forgotten object in the same notebook) truncated the file under the first, removed
its journal, and the two destroyed every committed round between them.

The lock is ``flock(2)``'s, taken on the run file itself, before anything of it is changed. It
conflicts with any other ``flock`` of the file, in this process too (each open of the file is
its own lock holder), and with the locks HDF5 takes when it opens a file (shared to read, exclusive
to write); a reader that opens the file
without locking (``fedforensics``'s reader, ``h5py.File(path, "r", locking=False)``) is not
affected. Where ``fcntl`` does not exist (Windows) nothing is locked.
"""

from __future__ import annotations

import os
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - not on POSIX
    fcntl = None  # type: ignore[assignment]


class FileBusyError(OSError):
    """Another writer holds the file."""


class WriterLock:
    """The exclusive lock of ``path``, created empty if it does not exist (:attr:`created` says so)."""

    def __init__(self, path: Path) -> None:
        self.created = False
        try:
            self._fd: int | None = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
            self.created = True
        except FileExistsError:
            self._fd = os.open(path, os.O_RDWR)
        if fcntl is None:
            return
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.release()
            raise FileBusyError(f"{path} is locked by another recorder or HDF5 program that has it open: close that first") from None

    def release(self) -> None:
        """Let the next writer in (closing the descriptor drops the lock). Idempotent."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)
