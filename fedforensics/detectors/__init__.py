"""The detector registry: every :class:`~.base.Detector` subclass in this package, and in the modules installed
packages name under the entry-point group ``fedforensics.detectors``.

Detectors are discovered by walking the package (as scikit-learn's
``all_estimators`` does), so adding a detector is adding one module (here, or in a package of one's own).
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import inspect
import pkgutil

from ..errors import FedForensicsError
from .base import Detector, DetectorResult, Evidence
from .round_data import RoundData

__all__ = ["Detector", "DetectorResult", "Evidence", "RoundData", "all_detectors", "get_detector"]


#: The entry-point group through which an installed package adds detectors (docs/detectors.md, "Writing a detector").
PLUGINS = "fedforensics.detectors"


def all_detectors() -> dict[str, type[Detector]]:
    """Every concrete detector class, by name, in a stable order: this package's modules, then those of the
    installed packages that name a module (or a class) under the entry-point group :data:`PLUGINS`."""
    found: dict[str, type[Detector]] = {}
    for module in pkgutil.iter_modules(__path__):
        _register(found, importlib.import_module(f"{__name__}.{module.name}"))
    for plugin in plugins():
        _register(found, plugin)
    return dict(sorted(found.items()))


@functools.cache
def plugins() -> tuple[object, ...]:
    """What the installed packages name under :data:`PLUGINS`, loaded (once a process: looking them up reads every
    installed package's metadata, 13 ms here, and the registry is asked for each detector built)."""
    loaded = []
    for entry in importlib.metadata.entry_points(group=PLUGINS):
        try:
            source = entry.load()
        except Exception as exc:  # a plugin's own defect: named, in one line
            raise FedForensicsError(
                f"detector plugin {entry.name!r} ({entry.value}) failed to load: {type(exc).__name__}: {exc}"
            ) from None
        if not (inspect.ismodule(source) or (inspect.isclass(source) and issubclass(source, Detector))):
            raise FedForensicsError(
                f"detector plugin {entry.name!r} ({entry.value}) names a {type(source).__name__}, neither a module nor "
                "a Detector class"
            )
        loaded.append(source)
    return tuple(loaded)


def plugin_raising(exc: BaseException) -> str | None:
    """The detector plugin whose own code raised ``exc`` (its innermost frame of such a module), as ``'name' (value)``
    of its entry point, or ``None``: the command line then names that plugin's defect rather than one of fedforensics."""
    modules = {entry.module: f"{entry.name!r} ({entry.value})" for entry in importlib.metadata.entry_points(group=PLUGINS)}
    found = None
    trace = exc.__traceback__
    while trace is not None:
        found = modules.get(trace.tb_frame.f_globals.get("__name__"), found)
        trace = trace.tb_next
    return found


def _register(found: dict[str, type[Detector]], source: object) -> None:
    """Add the concrete detectors a module defines (or ``source`` itself, a detector class) to ``found``."""
    if inspect.isclass(source):
        classes = [source]
    else:
        classes = [cls for _, cls in inspect.getmembers(source, inspect.isclass) if cls.__module__ == getattr(source, "__name__", None)]
    for cls in classes:
        if issubclass(cls, Detector) and not inspect.isabstract(cls):
            if cls.name in found:  # the later one would silently replace the earlier everywhere
                raise FedForensicsError(
                    f"two detectors are named {cls.name!r}: {found[cls.name].__module__}.{found[cls.name].__name__} "
                    f"and {cls.__module__}.{cls.__name__}; a detector's name must be unique"
                )
            found[cls.name] = cls


def get_detector(name: str, **params: object) -> Detector:
    """Instantiate the detector called ``name`` with ``params`` (keyword arguments of its ``__init__``)."""
    registry = all_detectors()
    if name not in registry:
        raise FedForensicsError(f"unknown detector {name!r}; known: {', '.join(registry)}")
    signature = inspect.signature(registry[name])
    try:  # a misspelt parameter escaped as __init__'s bare TypeError, naming the class rather than the detector
        signature.bind(**params)
    except TypeError as exc:
        raise FedForensicsError(f"{name}: {exc}; its parameters: {', '.join(signature.parameters)}") from None
    return registry[name](**params)
