"""The trigger probe: how far a trigger pulls a model's predictions towards one label.

The backdoor blog post this project started from (see ``docs/detectors.md``)
shows a global model's prediction histogram on a clean test set, on the same
set stamped with the attackers' "+" trigger, and with partial triggers (only
the horizontal bar, only the vertical bar): a backdoored model sends most
triggered inputs to the target label, and even part of the trigger pulls them
there. :func:`probe_triggers` computes those histograms for any set of
triggers; :func:`partial_triggers` derives the partial variants of a trigger.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .inputs import evaluating
from .neural_cleanse import BATCH, stamp

__all__ = ["ProbeSet", "TriggerProbe", "partial_triggers", "probe_triggers"]

Trigger = tuple[np.ndarray, np.ndarray]  # mask (H, W) in [0, 1], pattern (C, H, W) or (H, W)


@dataclass(frozen=True)
class ProbeSet:
    """The model's predictions on one version of the clean data.

    Attributes
    ----------
    name : what was stamped (``"clean"`` for none).
    histogram : number of inputs predicted as each label.
    target : the label the trigger pulls towards: the one it was recovered for, else the
        label whose count grew most over the clean predictions (``None`` for the clean set).
    pulled : share of the inputs predicted as ``target`` (0 for the clean set).
    tied : the other labels whose count grew as much as ``target``'s, when the trigger's label was not known: the
        trigger pulls to none of them more than to the others (the report drew the first alone as its pull).
    """

    name: str
    histogram: list[int]
    target: int | None
    pulled: float
    tied: tuple[int, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "histogram": self.histogram, "target": self.target, "pulled": self.pulled,
                "tied": list(self.tied)}


@dataclass
class TriggerProbe:
    """Prediction histograms of one model: on clean data first, then on the same data under each trigger."""

    sets: list[ProbeSet]

    @property
    def clean(self) -> ProbeSet:
        """The histogram of predictions on the clean samples."""
        return self.sets[0]

    def clean_share(self, label: int) -> float:
        """Share of the clean samples the model predicts as ``label``: what a trigger's pull is measured against."""
        return self.clean.histogram[label] / (sum(self.clean.histogram) or 1)

    def to_json(self) -> dict[str, Any]:
        return {"samples": int(sum(self.clean.histogram)), "sets": [s.to_json() for s in self.sets]}


def partial_triggers(mask: np.ndarray, pattern: np.ndarray, name: str = "trigger") -> dict[str, Trigger]:
    """A trigger and its partial variants, as the blog post probes them.

    * ``horizontal part``: only the mask rows carrying at least half the mass of the heaviest row;
    * ``vertical part``: the same for columns;
    * ``shifted``: the whole trigger moved a quarter of the image towards its centre
      (pixels that would leave the image are dropped).

    A part that is the whole trigger, or the part before it, is left out: a solid square has
    no bar of its own (a red team's 2 × 2 square showed three identical histograms).
    """
    mask = np.asarray(mask, dtype=np.float32)
    rows, cols = mask.sum(axis=1), mask.sum(axis=0)
    keep_rows = rows >= 0.5 * rows.max() if rows.max() > 0 else np.zeros_like(rows, bool)
    keep_cols = cols >= 0.5 * cols.max() if cols.max() > 0 else np.zeros_like(cols, bool)
    variants: dict[str, Trigger] = {name: (mask, pattern)}
    for part, kept in (("horizontal part", mask * keep_rows[:, None]), ("vertical part", mask * keep_cols[None, :])):
        if not any(np.array_equal(kept, earlier) for earlier, _ in variants.values()):
            variants[f"{name}: {part}"] = (kept, pattern)
    variants[f"{name}: shifted"] = _shift_to_centre(mask, pattern)
    return variants


def _shift_to_centre(mask: np.ndarray, pattern: np.ndarray) -> Trigger:
    height, width = mask.shape
    total = mask.sum()
    offsets = []
    for axis, size in ((0, height), (1, width)):
        centroid = float((mask.sum(axis=1 - axis) * np.arange(size)).sum() / total) if total > 0 else (size - 1) / 2
        step = max(1, size // 4)
        offsets.append(-step if centroid > (size - 1) / 2 else step)
    return _translate(mask, *offsets), _translate(np.asarray(pattern), *offsets)


def _translate(image: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """Move the last two axes of ``image`` by ``(dy, dx)``, filling with zeros."""
    out = np.zeros_like(image)
    height, width = image.shape[-2:]
    src_y, dst_y = slice(max(0, -dy), height - max(0, dy)), slice(max(0, dy), height - max(0, -dy))
    src_x, dst_x = slice(max(0, -dx), width - max(0, dx)), slice(max(0, dx), width - max(0, -dx))
    out[..., dst_y, dst_x] = image[..., src_y, src_x]
    return out


@torch.no_grad()
def probe_triggers(model: torch.nn.Module, x: np.ndarray, triggers: dict[str, Trigger], targets: dict[str, int] | None = None, batch_size: int = BATCH) -> TriggerProbe:
    """Histogram of ``model``'s predictions on clean ``x`` and on ``x`` stamped with each trigger.

    Parameters
    ----------
    model : the classifier (evaluated in eval mode; its mode is restored).
    x : clean inputs ``(N, C, H, W)``.
    triggers : name → ``(mask (H, W), pattern)``; stamped as ``(1 − m)·x + m·p`` (Wang et al. 2019).
    targets : name → the label a trigger is known to aim at (e.g. the label it was recovered for).
    """
    with evaluating(model):
        x_t = torch.as_tensor(np.asarray(x, dtype=np.float32))

        def histogram(inputs: torch.Tensor) -> np.ndarray:
            logits = torch.cat([model(batch) for batch in inputs.split(batch_size)])
            return np.bincount(logits.argmax(-1).numpy(), minlength=logits.shape[-1])

        clean = histogram(x_t)
        sets = [ProbeSet("clean", clean.tolist(), None, 0.0)]
        for name, (mask, pattern) in triggers.items():
            counts = histogram(stamp(x_t, torch.as_tensor(mask, dtype=torch.float32), torch.as_tensor(pattern, dtype=torch.float32)))
            known, grown = (targets or {}).get(name), counts - clean
            target = int(known) if known is not None else int(np.argmax(grown))
            tied = () if known is not None else tuple(int(k) for k in np.flatnonzero(grown == grown[target]) if k != target)
            sets.append(ProbeSet(name, counts.tolist(), target, float(counts[target] / max(len(x_t), 1)), tied))
        return TriggerProbe(sets)
