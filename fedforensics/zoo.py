"""The demo federation's models, importable by path (``fedforensics.zoo:digits_cnn``).

Each named callable returns a fresh ``torch.nn.Module`` whose ``state_dict`` keys are the layer
names ``fedforensics simulate`` records, so ``fedforensics analyze RUN.h5 --model
fedforensics.zoo:digits_cnn`` can load any of the run's global models.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

__all__ = ["MODELS", "build", "cnn", "digits_cnn", "digits_mlp", "mlp", "mnist_cnn", "mnist_mlp", "model_path"]


def cnn(image_shape: tuple[int, int, int] = (1, 8, 8), num_classes: int = 10) -> nn.Module:
    """A small CNN: conv(16, 3×3) → ReLU → max-pool(2) → fc(64) → ReLU → fc(classes).

    Layers: ``0.weight/bias`` (conv), ``4.weight/bias`` (hidden), ``6.weight/bias`` (output).
    """
    channels, height, width = image_shape
    return nn.Sequential(
        nn.Conv2d(channels, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(16 * (height // 2) * (width // 2), 64), nn.ReLU(), nn.Linear(64, num_classes),
    )  # fmt: skip


def mlp(image_shape: tuple[int, int, int] = (1, 8, 8), num_classes: int = 10) -> nn.Module:
    """A one-hidden-layer MLP: fc(64) → ReLU → fc(classes). Layers: ``1.weight/bias``, ``3.weight/bias``."""
    channels, height, width = image_shape
    return nn.Sequential(nn.Flatten(), nn.Linear(channels * height * width, 64), nn.ReLU(), nn.Linear(64, num_classes))


def digits_cnn() -> nn.Module:
    """The CNN for scikit-learn's 8×8 digits (10 classes)."""
    return cnn((1, 8, 8), 10)


def digits_mlp() -> nn.Module:
    """The MLP for scikit-learn's 8×8 digits (10 classes)."""
    return mlp((1, 8, 8), 10)


def mnist_cnn() -> nn.Module:
    """The CNN for 28×28 MNIST-style images (10 classes)."""
    return cnn((1, 28, 28), 10)


def mnist_mlp() -> nn.Module:
    """The MLP for 28×28 MNIST-style images (10 classes)."""
    return mlp((1, 28, 28), 10)


MODELS: dict[str, Callable[[tuple[int, int, int], int], nn.Module]] = {"cnn": cnn, "mlp": mlp}
"""The architectures ``fedforensics simulate --model`` accepts, by name."""

_NAMED = {
    ("cnn", (1, 8, 8), 10): digits_cnn,
    ("mlp", (1, 8, 8), 10): digits_mlp,
    ("cnn", (1, 28, 28), 10): mnist_cnn,
    ("mlp", (1, 28, 28), 10): mnist_mlp,
}


def build(name: str, image_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """Architecture ``name`` for images of ``image_shape`` and ``num_classes`` labels."""
    return MODELS[name](image_shape, num_classes)


def model_path(name: str, image_shape: tuple[int, int, int], num_classes: int) -> str | None:
    """The ``MODULE:CALLABLE`` that ``analyze --model`` takes for this model, when the zoo names one."""
    named = _NAMED.get((name, tuple(image_shape), num_classes))
    return f"{__name__}:{named.__name__}" if named else None
