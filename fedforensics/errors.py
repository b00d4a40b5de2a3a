"""Errors a user can act on.

Every error raised for bad input derives from :class:`FedForensicsError`. The CLI
prints its message as one line and exits with code 2; anything else is a bug and
keeps its traceback.
"""

from __future__ import annotations


class FedForensicsError(Exception):
    """Bad input: a file, an option or a model that cannot be used as given."""


class RunFormatError(FedForensicsError):
    """A file that is not a valid fedforensics run."""
