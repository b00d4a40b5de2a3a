"""Ctrl-C that Python could not raise where it landed still stops the command.

CPython turns SIGINT into ``KeyboardInterrupt`` at the main thread's next bytecode. When that bytecode
belongs to a weak reference's callback or a ``__del__`` (h5py runs such callbacks while a round's datasets
are opened), the exception is printed as "Exception ignored" and dropped; inside a class body's
``__set_name__`` (rich's dataclasses, while the command line loads) Python 3.11 wraps it in a
``RuntimeError``. Either way the command went on: a QA check saw ``analyze`` write both reports and exit 0
after Ctrl-C in 5 of 40 tries. The handler of :func:`recording_interrupts` raises ``KeyboardInterrupt`` as
Python's own does and also notes that the signal came; :func:`raise_if_interrupted`, called where results
are committed (reports put in place, each round scanned), raises it again if it was lost.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

_interrupted = False


def _record_and_raise(signum: int, frame: FrameType | None) -> None:
    global _interrupted
    _interrupted = True
    raise KeyboardInterrupt


def recording_interrupts() -> None:
    """Put the recording handler in place of Python's default SIGINT handler (in the main thread; a handler
    the host program set itself, such as a test runner's, is left alone)."""
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _record_and_raise)


def interrupted(exc: BaseException | None = None) -> bool:
    """Whether Ctrl-C came (since :func:`recording_interrupts`), or ``exc`` is one or was caused by one
    (the ``RuntimeError`` Python wraps it in)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return _interrupted


def raise_if_interrupted() -> None:
    """Raise ``KeyboardInterrupt`` if Ctrl-C came and was lost where it landed."""
    if _interrupted:
        raise KeyboardInterrupt
