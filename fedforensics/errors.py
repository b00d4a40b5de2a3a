"""Errors a user can act on.

Every error raised for bad input derives from :class:`FedForensicsError`. The CLI
prints its message as one line and exits with code 2, as it does for what HDF5 raises
reading a damaged file; anything else is a defect of fedforensics: one line and exit
code 3 (``FEDFORENSICS_TRACEBACK=1`` keeps the traceback).
"""

from __future__ import annotations


class FedForensicsError(Exception):
    """Bad input: a file, an option or a model that cannot be used as given."""


class RunFormatError(FedForensicsError):
    """A file that is not a valid fedforensics run."""


def one_line(exc: BaseException) -> str:
    """The first line of an exception's message, for a one-line error (``sys.exit(0)`` for a ``SystemExit``, whose
    message is its bare code)."""
    if isinstance(exc, SystemExit):
        return f"sys.exit({exc.code!r})"
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
