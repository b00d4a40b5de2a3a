"""Writing report files: each complete or absent, several all or none, through pipes and descriptors as they are."""

from __future__ import annotations

import errno
import os
import re
import stat
import sys
import tempfile
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from recorder.journal import journal_paths, name_max

from ..errors import FedForensicsError
from ..interrupts import raise_if_interrupted

__all__ = ["all_or_none", "check_output", "check_outputs", "check_writable", "named_descriptor", "write_atomic"]

#: What ``mkstemp`` adds to a temporary file's prefix: 8 random characters and the ``.tmp`` suffix.
_RANDOM_AND_SUFFIX = 12


_local = threading.local()  # .blocks: this thread's open all_or_none() blocks, each its staged writes


def _blocks() -> list[list[tuple[str | Path, Path]]]:
    """This thread's open :func:`all_or_none` blocks, innermost last: (temporary file or text, destination)."""
    if not hasattr(_local, "blocks"):
        _local.blocks = []
    return _local.blocks


@contextmanager
def all_or_none() -> Iterator[None]:
    """Inside, :func:`write_atomic` prepares each file and the block's end puts them all in place, or none.

    ``--json r.json --html /dev/full`` replaced r.json with the new report and then failed; interrupted between
    the two, the same. Here every regular file is written beside its place first and renamed into it only when
    the block ends without an error (an error or Ctrl-C deletes them all, the earlier files untouched); a pipe,
    a device or the process's own output gets its text, held in memory, at the block's end before the renames,
    so that one refusing it (``/dev/full``) leaves the files as they were. A block inside another hands its
    files to the outer one when it ends well, and deletes them when it fails. Blocks belong to their thread:
    another thread's writes are not held. The renames themselves come one after another, each atomic: only
    an interruption between two of them (microseconds) leaves the first report new and the second old.
    """
    blocks = _blocks()
    staged: list[tuple[str | Path, Path]] = []
    blocks.append(staged)
    try:
        yield
        raise_if_interrupted()  # a Ctrl-C lost where it landed (a weak reference's callback): nothing goes in place
    except BaseException:
        _discard(staged)
        raise
    finally:
        blocks.pop()
    if blocks:  # nested: the enclosing block puts these in place with its own
        blocks[-1].extend(staged)
        return
    cut: BrokenPipeError | None = None
    try:
        for item, path in staged:  # what cannot be undone first: a refused write leaves every file as it was
            if isinstance(item, str):
                try:
                    _write_through(path, item)
                except BrokenPipeError as exc:
                    if named_descriptor(path) != 1:
                        raise
                    cut = exc  # whoever reads our output stopped reading, by choice: the files still go in place
        for item, path in staged:
            if isinstance(item, Path):
                os.replace(item, path)
    finally:  # no temporary file is left behind
        _discard(staged)
    if cut is not None:
        raise cut


def _discard(staged: list[tuple[str | Path, Path]]) -> None:
    """Delete the temporary files of ``staged`` still there."""
    for item, _ in staged:
        if isinstance(item, Path):
            item.unlink(missing_ok=True)


def write_atomic(path: str | os.PathLike[str], text: str | Iterable[str]) -> None:
    """Write ``text`` (or its pieces, in order) to ``path`` so that the file is either complete or absent.

    A regular file is written beside its place and renamed into it (inside :func:`all_or_none`, renamed
    when the block ends). A symbolic link is followed (its target gets the report; the link stays). A path
    naming one of the process's open descriptors (``/dev/stdout``, ``/dev/fd/3``) is written through it, at
    its offset, whatever it is (a shell's ``>> log`` appends to the log); a device or a FIFO is written to as
    it is: renaming a file onto either would replace it. Outside a regular file the text goes out whole or
    not at all. An error names ``path``.
    """
    path = Path(path)
    # This process's own output (a file too, when redirected: written at its offset, never replaced), or
    # through links a FIFO, a terminal, /dev/null: complete before the first byte goes out.
    if named_descriptor(path) is not None or (path.exists() and not path.is_file()):
        whole = text if isinstance(text, str) else "".join(text)
        blocks = _blocks()
        if blocks:
            blocks[-1].append((whole, path))
        else:
            _write_through(path, whole)
        return
    if path.is_symlink():
        path = path.resolve()
    tmp = ""
    try:
        fd, tmp = _temporary(path)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.writelines([text] if isinstance(text, str) else text)
        # mkstemp makes it 0600: a new report is as readable as any new file, a rewritten one keeps its mode (a
        # report kept private stays so)
        os.chmod(tmp, stat.S_IMODE(path.stat().st_mode) if path.is_file() else 0o666 & ~_umask())
        blocks = _blocks()
        if blocks:
            blocks[-1].append((Path(tmp), path))
        else:
            os.replace(tmp, path)
    except BaseException as exc:
        if tmp:
            Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise OSError(exc.errno, exc.strerror, str(path)) from None
        raise


def check_writable(path: str | os.PathLike[str]) -> None:
    """Raise the :class:`OSError` writing a regular file's report to ``path`` would meet in its folder (permissions,
    a read-only mount, a name too long), by making and deleting the temporary file it would be written to."""
    path = Path(path)
    if path.is_symlink():
        path = path.resolve()  # the report goes where the link points
    if len(os.fsencode(path.name)) > name_max(_folder(path)):
        raise OSError(errno.ENAMETOOLONG, os.strerror(errno.ENAMETOOLONG))
    fd, tmp = _temporary(path)
    os.close(fd)
    os.unlink(tmp)


def _temporary(path: Path) -> tuple[int, str]:
    """A new file beside ``path`` to write its report to: ``.NAME.XXXXXXXX.tmp``, or ``.report.XXXXXXXX.tmp`` where
    that name would pass the file system's limit (a legal name of 242 bytes or more did)."""
    prefix = f".{path.name}."
    if len(os.fsencode(prefix)) + _RANDOM_AND_SUFFIX > name_max(_folder(path)):
        prefix = ".report."
    return tempfile.mkstemp(dir=_folder(path), prefix=prefix, suffix=".tmp")


def _folder(path: Path) -> Path:
    return path.parent if str(path.parent) else Path(".")


def _write_through(path: Path, whole: str) -> None:
    """Write ``whole`` into the descriptor ``path`` names, or into the device or FIFO it is, in one go."""
    descriptor = named_descriptor(path)
    for stream in (sys.stdout, sys.stderr):  # None when the process was started with that descriptor closed
        if stream is not None:
            stream.flush()
    try:
        with open(os.dup(descriptor) if descriptor is not None else path, "w", encoding="utf-8") as handle:
            handle.write(whole)
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, str(path)) from None


def named_descriptor(path: str | os.PathLike[str]) -> int | None:
    """The open descriptor of this process that ``path`` names (``/dev/stdout``, ``/dev/fd/3``...), if it names one."""
    named = {"/dev/stdout": 1, "/dev/stderr": 2}
    path = Path(path)
    if str(path) in named:
        return named[str(path)]
    match = re.fullmatch(r"/(?:dev/fd|proc/self/fd)/(\d+)", str(path))
    return int(match.group(1)) if match else None


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def check_outputs(outputs: list[Path], inputs: list[Path]) -> None:
    """Refuse, before any long work, outputs that cannot be written, that would overwrite an input
    (``--json run.h5`` replaced the run under audit with its report; an input's journal is the
    undo an interrupted writer left, which reading it needs) or each other."""
    read = {where for given in inputs for where in (_resolved(given), *map(_resolved, journal_paths(given)))}
    seen: dict[Path, Path] = {}
    for path in outputs:
        if str(path) == "-":  # it would have written a file named '-'
            raise FedForensicsError("'-' (standard output) is not supported for reports: give a file name")
        where = _resolved(path)
        if where in read:
            raise FedForensicsError(f"{path} is a file being read: give the report another name")
        if where in seen:
            raise FedForensicsError(f"{seen[where]} is named for two reports: give each its own file")
        seen[where] = path
        check_output(path)


def _resolved(path: Path) -> Path:
    """``path`` with its links followed; a loop of links is refused by name (it was a traceback)."""
    try:
        return path.resolve()
    except RuntimeError:
        raise FedForensicsError(f"{path} is a loop of symbolic links") from None


def check_output(path: Path) -> None:
    """Refuse an output path that cannot be written.

    A regular file's folder must take a new file (the report is written beside its place and renamed). A
    descriptor of this process (``/dev/stdout``, ``/dev/fd/3``) must be open, and a device or FIFO writable:
    they are written as they are, and a non-root user cannot create files in ``/dev``, which refused
    ``--json /dev/stdout`` for everyone but root.
    """
    descriptor = named_descriptor(path)
    if descriptor is not None:
        try:
            os.fstat(descriptor)
        except OSError:
            raise FedForensicsError(f"cannot write {path}: descriptor {descriptor} is not open") from None
        return
    if path.is_symlink():  # the report goes where the link points: its folder is the one to check
        path = _resolved(path)
    if path.exists() and not path.is_file() and not path.is_dir():  # a device or a FIFO
        if not os.access(path, os.W_OK):
            raise FedForensicsError(f"cannot write {path}: permission denied")
        return
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise FedForensicsError(f"{path} is a directory; give a file name")
    if parent.exists() and not parent.is_dir():
        raise FedForensicsError(f"cannot write {path}: {parent} is a file, not a folder")
    if not parent.is_dir():
        raise FedForensicsError(f"cannot write {path}: folder {parent} does not exist")
    try:  # the folder may exist and still refuse files (permissions, a read-only mount, a name too long)
        check_writable(path)
    except OSError as exc:
        raise FedForensicsError(f"cannot write {path}: {exc.strerror or exc}") from None
