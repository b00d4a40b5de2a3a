"""Ctrl-C that Python could not raise where it landed still stops the command.

CPython turns SIGINT into ``KeyboardInterrupt`` at the main thread's next bytecode. When that bytecode
belongs to a weak reference's callback or a ``__del__`` (h5py runs such callbacks while a round's datasets
are opened), the exception is printed as "Exception ignored" and dropped; inside a class body's
``__set_name__`` (rich's dataclasses, while the command line loads) Python 3.11 wraps it in a
``RuntimeError``. Either way the command went on: a QA check saw ``analyze`` write both reports and exit 0
after Ctrl-C in 5 of 40 tries. Inside :func:`recording_interrupts` (a command of the command line), the
SIGINT handler raises ``KeyboardInterrupt`` as Python's own does and also notes that the signal came;
:func:`raise_if_interrupted`, called where results are committed (reports put in place, each round scanned,
a simulated run finished), raises it again if it was lost. Outside that scope nothing changes: a program
that imports fedforensics keeps its own handling of Ctrl-C.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

_interrupted = False


def _record_and_raise(signum: int, frame: FrameType | None) -> None:
    global _interrupted
    _interrupted = True
    raise KeyboardInterrupt


def _quiet_when_recorded(hook: object) -> object:
    """``sys.unraisablehook`` that says nothing of a KeyboardInterrupt the handler recorded (Python printed its
    traceback, "Exception ignored in: <function WeakValueDictionary...>", above the command's one line) and
    hands anything else to ``hook``."""

    def unraisable(info: object) -> None:
        if not (_interrupted and isinstance(getattr(info, "exc_value", None), KeyboardInterrupt)):
            hook(info)  # type: ignore[operator]

    return unraisable


@contextmanager
def recording_interrupts() -> Iterator[None]:
    """Inside, SIGINT is recorded as well as raised (in the main thread, where Python's default handler is in
    place: a handler the host program set itself, such as a test runner's, is left alone). Nested, the outer
    scope keeps the record. Leaving the outermost scope restores the handler and forgets the signal."""
    global _interrupted
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield
        return
    _interrupted = False
    previous, hook = signal.signal(signal.SIGINT, _record_and_raise), sys.unraisablehook
    sys.unraisablehook = _quiet_when_recorded(hook)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        sys.unraisablehook = hook
        _interrupted = False


def interrupted(exc: BaseException | None = None) -> bool:
    """Whether Ctrl-C came inside :func:`recording_interrupts`, or ``exc`` is one or was caused by one (the
    ``RuntimeError`` Python wraps it in)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return _interrupted


def raise_if_interrupted() -> None:
    """Raise ``KeyboardInterrupt`` if Ctrl-C came inside :func:`recording_interrupts` and was lost where it landed."""
    if _interrupted:
        raise KeyboardInterrupt
