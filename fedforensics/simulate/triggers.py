"""Backdoor triggers: a mask saying where, a pattern saying what, stamped as ``(1 − m)·x + m·p``.

This is the parameterisation Neural Cleanse (Wang et al., S&P 2019) inverts, so a trigger planted by
``fedforensics simulate`` and a trigger recovered by ``fedforensics analyze --model`` compare directly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import FedForensicsError

__all__ = ["TRIGGERS", "Trigger", "make_trigger", "split_trigger"]


@dataclass(frozen=True)
class Trigger:
    """``mask`` (H, W) in [0, 1]; ``pattern`` (C, H, W), the pixel values where the mask is 1."""

    name: str
    mask: np.ndarray
    pattern: np.ndarray

    def stamp(self, x: np.ndarray) -> np.ndarray:
        """``x`` (N, C, H, W) with the trigger stamped on every image (a new array)."""
        return ((1.0 - self.mask) * x + self.mask * self.pattern).astype(x.dtype, copy=False)


def _plus(size: int) -> np.ndarray:
    """A "+" of ``size``×``size`` pixels (size odd)."""
    cross = np.zeros((size, size), np.float32)
    cross[size // 2, :] = 1.0
    cross[:, size // 2] = 1.0
    return cross


def _square(size: int) -> np.ndarray:
    return np.ones((size, size), np.float32)


def _checker(size: int) -> np.ndarray:
    return (np.indices((size, size)).sum(axis=0) % 2 == 0).astype(np.float32)


TRIGGERS = {"plus": _plus, "square": _square, "checker": _checker}
"""Trigger shapes by name; each is placed in the bottom-right corner, one pixel from the edges."""


def make_trigger(name: str, image_shape: tuple[int, int, int], value: float = 1.0) -> Trigger:
    """The named trigger for images of ``image_shape`` (C, H, W), at full intensity ``value``.

    Its side is 3 pixels on 8×8 images and grows with the image (about H/8, odd), as the "+"
    of the seed experiments (Bilgin 2021 uses a small "+" of full-intensity pixels).
    """
    if name not in TRIGGERS:
        raise FedForensicsError(f"unknown trigger {name!r}: choose one of {', '.join(TRIGGERS)}")
    channels, height, width = image_shape
    side = max(3, (min(height, width) // 8) | 1)
    if side + 1 > min(height, width):
        raise FedForensicsError(f"images of {height}x{width} pixels are too small for a {side}x{side} trigger")
    shape = TRIGGERS[name](side)
    mask = np.zeros((height, width), np.float32)
    mask[height - 1 - side : height - 1, width - 1 - side : width - 1] = shape
    pattern = np.full((channels, height, width), value, np.float32)
    return Trigger(name, mask, pattern)


def split_trigger(trigger: Trigger, parts: int) -> list[Trigger]:
    """The local triggers of a distributed backdoor (Xie et al., ICLR 2020): the trigger's pixels in
    reading order, dealt into ``parts`` contiguous runs (no more than there are pixels); together
    they are the trigger."""
    pixels = np.argwhere(trigger.mask > 0)
    parts = max(1, min(parts, len(pixels)))
    local = []
    for k, chunk in enumerate(np.array_split(pixels, parts), start=1):
        where = tuple(chunk.T)
        mask = np.zeros_like(trigger.mask)
        mask[where] = trigger.mask[where]
        local.append(Trigger(f"{trigger.name} part {k} of {parts}", mask, trigger.pattern))
    return local
