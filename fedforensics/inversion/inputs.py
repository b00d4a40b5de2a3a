"""What the auditor hands to trigger inversion: a model factory, clean data, a trigger to probe with.

Each loader checks its input and refuses bad input with one readable line
(:class:`~fedforensics.errors.FedForensicsError`). The model factory is named by
the auditor (``--model MODULE:CALLABLE``), never taken from the run file: a run
file is untrusted input, and importing a module runs its code.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..errors import FedForensicsError, one_line
from ..npz import channels_last, load_arrays
from ..samples import check_labels, load_samples
from ..run import Run
from .neural_cleanse import NeuralCleanse

__all__ = [
    "build_model", "check_clean_data", "check_model", "check_trigger", "evaluating", "load_clean_data", "load_model_factory",
    "load_state", "load_trigger",
]  # fmt: skip

ModelFactory = Callable[[], torch.nn.Module]

#: How a model of flat inputs (a loop that flattened its images itself) takes the images inversion stamps: an
#: nn.Flatten() put first in an nn.Sequential renames its recorded layers ('0.weight' becomes '1.weight': QA).
FLAT_INPUTS = (
    "for a model of flat inputs give x as (N, 1, H, W) and make the factory's module flatten them itself, e.g. a "
    "subclass of nn.Sequential whose forward(x) returns super().forward(x.flatten(1)) (an nn.Flatten() put first "
    "would rename the recorded layers)"
)

def load_model_factory(spec: str) -> ModelFactory:
    """Import ``"package.module:callable"`` (e.g. ``"fedforensics.zoo:digits_cnn"``), a callable returning an ``nn.Module``."""
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise FedForensicsError(f"--model {spec!r}: expected MODULE:CALLABLE, e.g. fedforensics.zoo:digits_cnn")
    if module_name.endswith(".py") or os.sep in module_name or "/" in module_name:  # a file path (QA: three riddles)
        stem = Path(module_name).stem
        raise FedForensicsError(
            f"--model {spec!r}: give the module's name, not its file ({stem}:{attribute}), and run from its folder or "
            "put that folder on PYTHONPATH"
        )
    # The current folder first, as `python -m` would have it: a model file beside the run is the usual case.
    here = os.getcwd()
    add = here not in sys.path and "" not in sys.path
    if add:
        sys.path.insert(0, here)
    try:
        target = importlib.import_module(module_name)
    except (Exception, SystemExit) as exc:  # the module is the auditor's own code: any failure is bad input (QA: a
        # sys.exit(0) in it ended the audit with exit 0, no report written and --fail-on bypassed)
        missing = isinstance(exc, ModuleNotFoundError) and module_name.startswith(str(exc.name))
        raise FedForensicsError(
            f"--model {spec!r}: cannot import {module_name} from the current folder or the Python path ({one_line(exc)})"
            if missing  # not found, or a package of its path not found; else it was found and failed as it ran
            else f"--model {spec!r}: importing {module_name} failed ({one_line(exc)})"
        ) from None
    finally:
        if add:
            sys.path.remove(here)
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise FedForensicsError(f"--model {spec!r}: {module_name} has no attribute {attribute!r}")
        target = getattr(target, part)
    if not callable(target):
        raise FedForensicsError(f"--model {spec!r}: {attribute} is not callable")
    return target


def build_model(factory: ModelFactory, name: str = "the model factory") -> torch.nn.Module:
    """Call ``factory`` and check that it returned an ``nn.Module``."""
    try:
        model = factory()
    except (Exception, SystemExit) as exc:  # the auditor's own code; a sys.exit in it is no way to end an audit
        raise FedForensicsError(f"{name} failed: {one_line(exc)}") from None
    if not isinstance(model, torch.nn.Module):
        raise FedForensicsError(f"{name} returned {type(model).__name__}, not a torch.nn.Module")
    return model


def check_model(model: torch.nn.Module, run: Run) -> None:
    """Refuse a model whose ``state_dict`` keys or shapes differ from the run's recorded layers."""
    expected = {layer.name: tuple(layer.shape) for layer in run.layers}
    actual = {name: tuple(value.shape) for name, value in model.state_dict().items()}
    problems = []
    missing = [name for name in expected if name not in actual]
    extra = [name for name in actual if name not in expected]
    if missing:
        problems.append(f"the model lacks {_names(missing)}")
    if extra:
        problems.append(f"the run lacks {_names(extra)}")
    shapes = [f"{name} {actual[name]} vs {expected[name]} recorded" for name in expected if name in actual and actual[name] != expected[name]]
    if shapes:
        problems.append("shapes differ: " + _names(shapes, quote=False))
    if problems:
        raise FedForensicsError(f"the model does not match the run {run.path}: " + "; ".join(problems))


def load_state(model: torch.nn.Module, state: dict[str, np.ndarray], which: str = "the recorded state") -> torch.nn.Module:
    """Load a recorded state into ``model`` (checked with :func:`check_model` first), keeping the model's dtypes."""
    own = model.state_dict()
    try:
        model.load_state_dict({name: torch.as_tensor(np.asarray(value)).to(own[name].dtype) for name, value in state.items()})
    except Exception as exc:  # the auditor's model code
        raise FedForensicsError(f"the model cannot load {which}: {one_line(exc)}") from None
    return model


@contextmanager
def evaluating(model: torch.nn.Module, gradients: bool = False) -> Iterator[torch.nn.Module]:
    """``model`` in evaluation mode for the block, without gradients unless ``gradients``; its mode is restored afterwards."""
    training = model.training
    model.eval()
    try:
        with torch.set_grad_enabled(gradients):
            yield model
    finally:
        model.train(training)


def load_clean_data(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """Read clean samples from an ``.npz`` (``x`` (N, C, H, W) or grey (N, H, W), ``y`` (N,)) or a folder of MNIST IDX
    files (grey levels read as x / 255, as simulate trains on them: :func:`~fedforensics.samples.load_samples`),
    checked by :func:`check_clean_data`: float32 and int64."""
    x, y = load_samples(path)
    return check_clean_data(x, y, str(path))


def check_clean_data(
    x: np.ndarray, y: np.ndarray, source: str = "clean data", inversion: NeuralCleanse | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Check clean samples ``x`` (N, C, H, W), or grey (N, H, W), and labels ``y`` (N,) on their own dtypes; return them as
    float32 (N, C, H, W) and int64.

    ``inversion`` is the search they are for (default ``NeuralCleanse()``): its held-out share sets how many
    samples of a label it needs (:meth:`NeuralCleanse.check_samples`).
    """
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim == 3:  # (N, H, W) grey images, as simulate's --dataset takes them (a fresh-eyes user's were refused here)
        x = x[:, None]
    if x.ndim != 4:
        flat = f": the trigger is stamped on images; {FLAT_INPUTS}" if x.ndim == 2 else ""
        raise FedForensicsError(f"{source}: x has shape {x.shape}; expected (N, C, H, W) or (N, H, W){flat}")
    if channels_last(x.shape):
        raise FedForensicsError(
            f"{source}: x has shape {x.shape}, which looks channels-last (N, H, W, C); give (N, C, H, W): "
            "x.transpose(0, 3, 1, 2)"
        )
    if np.issubdtype(x.dtype, np.integer):  # uint8 grey levels fed as 0..255 to a model trained on 0..1 (QA)
        raise FedForensicsError(
            f"{source}: x holds integers ({x.dtype}); inversion feeds x to the model as it is, so give it as the model "
            "saw its inputs in training, as floats (x / 255 for grey levels of a model trained on [0, 1], as simulate "
            "scales an .npz of integers)"
        )
    y = check_labels(y, len(x), source)
    x = _float32(x, "x", source)
    (inversion if inversion is not None else NeuralCleanse()).check_samples(y, source)
    return x, y


def _float32(values: np.ndarray, name: str, source: str, booleans: bool = False) -> np.ndarray:
    """``values`` as float32, refusing all but real numbers finite in float32 (booleans become 0/1 if ``booleans``)."""
    if values.dtype == np.bool_ and booleans:
        return values.astype(np.float32)
    if values.dtype == np.bool_:
        raise FedForensicsError(f"{source}: {name} holds booleans, not pixel values; save it as numbers (e.g. float32)")
    if np.iscomplexobj(values):
        raise FedForensicsError(f"{source}: {name} holds complex numbers; expected real ones")
    if not _real(values):
        raise FedForensicsError(f"{source}: {name} must hold finite numbers (its dtype is {values.dtype})")
    if not np.isfinite(values).all():
        raise FedForensicsError(f"{source}: {name} must hold finite numbers (it holds NaN or Inf)")
    with np.errstate(over="ignore"):  # checked right below
        converted = values.astype(np.float32, copy=False)
    if not np.isfinite(converted).all():
        raise FedForensicsError(
            f"{source}: {name} holds {_number(np.abs(values).max())}, beyond float32's range (±3.4e38), in which trigger inversion computes"
        )
    return converted


def _real(values: np.ndarray) -> bool:
    """Whether ``values`` hold real numbers (integers or floats; not booleans, complex numbers, text or objects)."""
    return np.issubdtype(values.dtype, np.integer) or np.issubdtype(values.dtype, np.floating)


def _number(value: np.generic) -> str:
    """A label or value for a message: an integer in full, a float short (``1e+30``)."""
    return f"{float(value):g}" if isinstance(value, np.floating) else str(int(value))


def load_trigger(path: str | os.PathLike[str], image_shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Read a trigger ``.npz`` holding ``mask`` and ``pattern`` and check it with :func:`check_trigger`."""
    arrays = load_arrays(path, ("mask", "pattern"), "np.savez(path, mask=mask, pattern=pattern)")
    return check_trigger(arrays["mask"], arrays["pattern"], image_shape, str(path))


def check_trigger(mask: np.ndarray, pattern: np.ndarray, image_shape: tuple[int, ...], source: str = "trigger") -> tuple[np.ndarray, np.ndarray]:
    """A trigger for inputs of ``image_shape`` (C, H, W): ``mask`` (H, W) in [0, 1] (booleans as 0/1) and ``pattern``
    (H, W) or (C, H, W), as float32 ``(mask, pattern (C, H, W))``."""
    mask, pattern = np.asarray(mask), np.asarray(pattern)
    channels, height, width = image_shape
    if mask.shape != (height, width):
        raise FedForensicsError(f"{source}: mask has shape {mask.shape}; the clean data's images are {height}x{width}")
    if pattern.shape not in ((height, width), (channels, height, width)):
        raise FedForensicsError(f"{source}: pattern has shape {pattern.shape}; expected ({height}, {width}) or {tuple(image_shape)}")
    mask, pattern = _float32(mask, "mask", source, booleans=True), _float32(pattern, "pattern", source)
    if mask.min() < 0 or mask.max() > 1:
        raise FedForensicsError(f"{source}: mask values must lie in [0, 1]")
    if not mask.any():  # it stamps nothing: the probe would report a tie of unchanged predictions as a pull
        raise FedForensicsError(f"{source}: the mask is all zero, so the trigger stamps nothing")
    return mask, np.broadcast_to(pattern, tuple(image_shape)).astype(np.float32)


def _names(names: list[str], quote: bool = True, most: int = 4) -> str:
    shown = [repr(n) if quote else n for n in names[:most]]
    return ", ".join(shown) + (f" and {len(names) - most} more" if len(names) > most else "")
