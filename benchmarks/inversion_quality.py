"""Neural Cleanse on the demo federations' final global models, seeds 0-2 (issue 5's quality targets).

    python benchmarks/inversion_quality.py

For the default backdoor federation and the clean one (IID, seeds 0-2): the labels flagged,
every label's anomaly index, and the share of the recovered mask's mass inside the box around
the planted trigger. Prints a markdown table for docs/detection.md.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from scenarios import Scenario, ensure

from fedforensics import open_run
from fedforensics.inversion import invert_run
from fedforensics.zoo import digits_cnn


def trigger_box(mask: np.ndarray, margin: int = 1) -> tuple[slice, slice]:
    """The planted trigger's bounding box, grown by ``margin`` pixels."""
    rows, cols = np.nonzero(mask)
    return slice(max(rows.min() - margin, 0), rows.max() + margin + 1), slice(max(cols.min() - margin, 0), cols.max() + margin + 1)


def main() -> None:
    torch.set_num_threads(1)
    scenarios = [Scenario(attack, 0.2 if attack != "none" else 0.0, "iid", seed) for attack in ("backdoor", "none") for seed in (0, 1, 2)]
    ensure(scenarios)
    print("| federation | seed | attack success | flagged labels | anomaly index of target (6) | largest other anomaly index | recovered mask mass in the trigger box | seconds |")
    print("|---|---|---|---|---|---|---|---|")
    for scenario in scenarios:
        with open_run(scenario.path) as run:
            data = run.attachment("clean_data")
            planted = run.attachment("trigger")
            success = run.global_metrics(run.rounds[-1]).get("attack_success")
            started = time.perf_counter()
            report = invert_run(run, digits_cnn, data["x"], data["y"], seed=scenario.seed)
            seconds = time.perf_counter() - started
        indices = {c.label: c.anomaly_index for c in report.classes}
        others = max(v for k, v in indices.items() if k != 6)
        if planted is not None:
            box = trigger_box(planted["mask"])
            mask = report.result.masks[6]
            mass = f"{float(mask[box].sum() / max(mask.sum(), 1e-12)):.0%}"
        else:
            mass = "–"
        print(
            f"| {scenario.attack} | {scenario.seed} | {'–' if success is None else f'{success:.2f}'} | "
            f"{report.flagged_labels or 'none'} | {indices[6]:.2f} | {others:.2f} | {mass} | {seconds:.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
