"""The detector registry: every :class:`~.base.Detector` subclass in this package.

Detectors are discovered by walking the package (as scikit-learn's
``all_estimators`` does), so adding a detector is adding one module.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil

from ..errors import FedForensicsError
from .base import Detector, DetectorResult, Evidence, RoundData

__all__ = ["Detector", "DetectorResult", "Evidence", "RoundData", "all_detectors", "get_detector"]


def all_detectors() -> dict[str, type[Detector]]:
    """Every concrete detector class, by name, in a stable order."""
    found: dict[str, type[Detector]] = {}
    for module in pkgutil.iter_modules(__path__):
        mod = importlib.import_module(f"{__name__}.{module.name}")
        for _, cls in inspect.getmembers(mod, inspect.isclass):
            if issubclass(cls, Detector) and not inspect.isabstract(cls) and cls.__module__ == mod.__name__:
                if cls.name in found:  # the later module's would silently replace the earlier's everywhere
                    raise FedForensicsError(
                        f"two detectors are named {cls.name!r}: {found[cls.name].__module__}.{found[cls.name].__name__} "
                        f"and {cls.__module__}.{cls.__name__}; a detector's name must be unique"
                    )
                found[cls.name] = cls
    return dict(sorted(found.items()))


def get_detector(name: str, **params: object) -> Detector:
    """Instantiate the detector called ``name``."""
    registry = all_detectors()
    if name not in registry:
        raise FedForensicsError(f"unknown detector {name!r}; known: {', '.join(registry)}")
    return registry[name](**params)
