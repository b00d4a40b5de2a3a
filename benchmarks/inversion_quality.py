"""Neural Cleanse on the demo federations' final global models, over seeds and models (issue 5's quality targets).

    python benchmarks/inversion_quality.py [--print] [--jobs 2] [--only PATTERN ...]

For the backdoor federation (2 of 10 attackers, the "+" towards 6) and the clean one, in three
groups: the CNN on IID data (seeds 0-5), the MLP on IID data (seeds 0-8) and the CNN on
label-skewed data (Dirichlet 0.5, seeds 0-4, where the update statistics miss the attackers).
Per model: the labels flagged, the target's anomaly index, the largest anomaly index of any
other label on the small side (the side the rule flags), and the share of the recovered mask's
mass inside the box around the planted trigger. Then a summary per group. Writes the tables
into docs/detection.md between the ``trigger-inversion`` markers; ``--only "MLP, IID, backdoor, seed 3"`` (a glob or
a substring of "MODEL, backdoor|clean, seed N") simulates, inverts and prints those models alone.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scenarios import Scenario, ensure, only_option, publish, selected

from fedforensics import open_run
from fedforensics.inversion import invert_run
from fedforensics.zoo import digits_cnn, digits_mlp

DOC = Path(__file__).resolve().parents[1] / "docs" / "detection.md"
#: (name, model factory, scenario extra settings, partition, seeds)
GROUPS = [
    ("CNN, IID", digits_cnn, (), "iid", range(6)),
    ("MLP, IID", digits_mlp, (("model", "mlp"),), "iid", range(9)),
    ("CNN, Dirichlet α = 0.5", digits_cnn, (), "non-iid", range(5)),
]
#: Issue 5 asks for the target to be flagged where the backdoor works at least this well.
WORKING_BACKDOOR = 0.8


@dataclass
class Row:
    group: str
    backdoor: bool
    seed: int
    target: int
    attack_success: float | None
    flagged: list[int]
    weak: list[int]  # flagged labels below the chance index (NeuralCleanseResult.weak_labels)
    target_index: float  # negative when the target's mask is above the median (the side the rule ignores)
    other_index: float  # the largest anomaly index of a label whose mask is below the median (the target excepted)
    other_label: int
    mass: float | None
    seconds: float


def trigger_box(mask: np.ndarray, margin: int = 1) -> tuple[slice, slice]:
    """The planted trigger's bounding box, grown by ``margin`` pixels."""
    rows, cols = np.nonzero(mask)
    return slice(max(rows.min() - margin, 0), rows.max() + margin + 1), slice(max(cols.min() - margin, 0), cols.max() + margin + 1)


def measure(group: str, factory, scenario: Scenario) -> Row:
    target = scenario.config.target
    with open_run(scenario.path) as run:
        data = run.attachment("clean_data")
        planted = run.attachment("trigger")
        success = run.global_metrics(run.rounds[-1]).get("attack_success")
        started = time.perf_counter()
        report = invert_run(run, factory, data["x"], data["y"], seed=scenario.seed)
        seconds = time.perf_counter() - started
    l1 = np.array([c.mask_l1 for c in report.classes])
    small = l1 < np.median(l1)
    backdoor = scenario.attack != "none"
    # On a clean model the target is a label like any other.
    others = [(c.anomaly_index, c.label) for c in report.classes if small[c.label] and not (backdoor and c.label == target)]
    other_index, other_label = max(others, default=(0.0, -1))
    mass = None
    if planted is not None:
        mask = report.result.masks[target]
        mass = float(mask[trigger_box(planted["mask"])].sum() / max(mask.sum(), 1e-12))
    target_index = report.classes[target].anomaly_index if small[target] else -report.classes[target].anomaly_index
    return Row(
        group, backdoor, scenario.seed, target, success, report.flagged_labels, report.result.weak_labels,
        target_index, other_index, other_label, mass, seconds,
    )


def per_model_table(rows: list[Row]) -> str:
    lines = [
        "| model | backdoor | seed | attack success | flagged labels | target's index | largest small-side index, target excepted (label) | target's mask mass in the trigger box | seconds |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        success = "–" if r.attack_success is None else f"{r.attack_success:.2f}"
        target = "–" if not r.backdoor else f"{r.target_index:.2f}" if r.target_index >= 0 else f"{-r.target_index:.2f}, large side"
        other = "–" if r.other_label < 0 else f"{r.other_index:.2f} ({r.other_label})"
        mass = "–" if r.mass is None else f"{r.mass:.0%}"
        flagged = ", ".join(f"{label} (weak)" if label in r.weak else str(label) for label in r.flagged) or "none"
        lines.append(f"| {r.group} | {'yes' if r.backdoor else 'no'} | {r.seed} | {success} | {flagged} | "
                     f"{target} | {other} | {mass} | {r.seconds:.0f} |")
    return "\n".join(lines)


def summary_table(rows: list[Row]) -> str:
    lines = [
        f"| model | backdoored models (attack success ≥ {WORKING_BACKDOOR}) | target flagged | target flagged alone | "
        "target's flag weak | median mask mass in the box | clean models | clean models flagged | clean models flagged, not weak | "
        "largest small-side index on clean models: median / max |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for group in dict.fromkeys(r.group for r in rows):
        working = [r for r in rows if r.group == group and r.backdoor and (r.attack_success or 0) >= WORKING_BACKDOOR]
        clean = [r for r in rows if r.group == group and not r.backdoor]
        hit = sum(r.target in r.flagged for r in working)
        alone = sum(r.flagged == [r.target] for r in working)
        weak = sum(r.target in r.weak for r in working)
        strong_false = sum(bool(set(r.flagged) - set(r.weak)) for r in clean)
        mass = f"{np.median([r.mass for r in working]):.0%}" if working else "–"
        indices = [r.other_index for r in clean]
        lines.append(f"| {group} | {len(working)} | {hit}/{len(working)} | {alone}/{len(working)} | {weak}/{hit} | {mass} | "
                     f"{len(clean)} | {sum(bool(r.flagged) for r in clean)}/{len(clean)} | {strong_false}/{len(clean)} | "
                     f"{f'{np.median(indices):.2f} / {max(indices):.2f}' if indices else '–'} |")
    return "\n".join(lines)


def models(patterns: list[str] | None, prog: str) -> dict[str, tuple[str, object, Scenario]]:
    """The models to invert that ``--only``'s ``patterns`` select (:func:`scenarios.selected`), by their name
    ("MODEL, backdoor|clean, seed N"): (group, model factory, federation)."""
    plan = {f"{name}, {'clean' if attack == 'none' else attack}, seed {seed}": (name, factory, Scenario(attack, 0.2, partition, seed, extra))
            for name, factory, extra, partition, seeds in GROUPS for attack in ("backdoor", "none") for seed in seeds}
    return {key: plan[key] for key in selected(list(plan), patterns, prog)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2, help="processes for the federations not simulated yet")
    parser.add_argument("--print", action="store_true", help="print the tables instead of writing docs/detection.md")
    only_option(parser, DOC, "models")
    args = parser.parse_args()
    torch.set_num_threads(1)
    plan = models(args.only, parser.prog)
    ensure([scenario for *_, scenario in plan.values()], args.jobs)
    rows = []
    for i, (name, factory, scenario) in enumerate(plan.values(), 1):
        rows.append(measure(name, factory, scenario))
        print(f"  {i}/{len(plan)} {name} {scenario.attack} seed {scenario.seed}: flagged {rows[-1].flagged}", flush=True)
    tables = f"{summary_table(rows)}\n\nPer model:\n\n{per_model_table(rows)}"
    publish(tables, DOC, "trigger-inversion", args.print, "--only" if args.only else "")


if __name__ == "__main__":
    main()
