"""Ctrl-C and SIGTERM that Python could not raise where they landed still stop the command.

CPython runs a signal's Python handler at the main thread's next bytecode. When that bytecode belongs
to a weak reference's callback or a ``__del__`` (h5py runs such callbacks while a round's datasets are
opened), the exception the handler raises is printed as "Exception ignored" and dropped; inside a class
body's ``__set_name__`` (rich's dataclasses, while the command line loads) Python 3.11 wraps it in a
``RuntimeError``. Either way the command went on: a QA check saw ``analyze`` write both reports and exit
0 after Ctrl-C in 5 of 40 tries. Inside :func:`recording_interrupts` (a command of the command line),
SIGINT raises ``KeyboardInterrupt`` as Python's own handler does and SIGTERM raises :class:`Terminated`,
and both note that the signal came; :func:`raise_if_interrupted`, called where results are committed
(reports put in place, each round scanned, a simulated run finished), raises it again if it was lost, and
Python's "Exception ignored" report of it is left out. Outside that scope nothing changes: a program that
imports fedforensics keeps its own signal handling.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


class Terminated(BaseException):
    """SIGTERM (``kill``, ``timeout``, a CI job cancelled), raised where the command is, as Ctrl-C raises
    KeyboardInterrupt: the same clean-up runs (a half-written report's temporary file is removed)."""


STOPPING = (KeyboardInterrupt, Terminated)

#: The exception of the signal that came inside the scope (KeyboardInterrupt or Terminated), if one did.
_came: type[BaseException] | None = None
#: Whether a scope is open (nested scopes leave the record to the outermost).
_active = False


def _record_and_raise(signum: int, frame: FrameType | None) -> None:
    global _came
    _came = Terminated if signum == signal.SIGTERM else KeyboardInterrupt
    raise _came


def _quiet_when_recorded(hook: object) -> object:
    """``sys.unraisablehook`` that says nothing of the signal's exception the handler recorded (Python printed
    its traceback, "Exception ignored in: <function WeakValueDictionary...>", above the command's one line) and
    hands anything else to ``hook``."""

    def unraisable(info: object) -> None:
        if not (_came is not None and isinstance(getattr(info, "exc_value", None), _came)):
            hook(info)  # type: ignore[operator]

    return unraisable


@contextmanager
def recording_interrupts() -> Iterator[None]:
    """Inside, SIGINT and SIGTERM are recorded as well as raised, in the main thread (only it can set a
    handler), each only where Python's own handling is in place (``default_int_handler``, ``SIG_DFL``): a
    handler the host program set itself, such as a test runner's, is left alone. Nested, the outer scope keeps
    the record. Leaving the outermost scope restores the handlers and the unraisable hook and forgets the
    signal, even when a signal lands meanwhile (it is raised once all is restored: a second Ctrl-C there left
    the record behind, for every later command of the process to stop on; review)."""
    global _came, _active
    if _active or threading.current_thread() is not threading.main_thread():
        yield
        return
    _active, _came = True, None
    hook = sys.unraisablehook
    previous: dict[int, object] = {}
    try:
        sys.unraisablehook = _quiet_when_recorded(hook)  # type: ignore[assignment]
        for signum, python_s in ((signal.SIGTERM, signal.SIG_DFL), (signal.SIGINT, signal.default_int_handler)):
            if signal.getsignal(signum) is python_s:
                previous[signum] = python_s  # noted before it is replaced: a signal in between finds it restored
                signal.signal(signum, _record_and_raise)
        yield
    finally:
        _restore(previous, hook)


def _restore(previous: dict[int, object], hook: object) -> None:
    """Put the handlers and the hook back and forget the signal; a signal landing meanwhile is raised after."""
    global _came, _active
    landed: BaseException | None = None
    while True:
        try:
            for signum, handler in previous.items():
                signal.signal(signum, handler)  # type: ignore[arg-type]
            sys.unraisablehook = hook  # type: ignore[assignment]
            _came, _active = None, False
            break
        except STOPPING as exc:  # each step is idempotent: done again from the start
            landed = exc
    if landed is not None:
        raise landed


def stopped_by(exc: BaseException | None = None) -> type[BaseException] | None:
    """``KeyboardInterrupt`` or :class:`Terminated` when ``exc`` is one or was caused by one (the
    ``RuntimeError`` Python wraps it in), or when that signal came inside :func:`recording_interrupts`; else None."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, STOPPING):
            return Terminated if isinstance(exc, Terminated) else KeyboardInterrupt
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return _came


def exit_for(stopped: type[BaseException]) -> tuple[str, int]:
    """What a command line says and the status it exits with, stopped by ``stopped`` (a :func:`stopped_by`)."""
    return ("terminated", 143) if stopped is Terminated else ("interrupted", 130)


def raise_if_interrupted() -> None:
    """Raise the signal's exception if SIGINT or SIGTERM came inside :func:`recording_interrupts` and was lost
    where it landed."""
    if _came is not None:
        raise _came
