"""Trigger inversion on the red team's federations: does Neural Cleanse find the backdoor the update statistics miss?

    python benchmarks/redteam_inversion.py [--print]      # about 5 minutes once redteam_bench.py has trained them
    python benchmarks/redteam_inversion.py --only bd_tab   # the federations whose name holds bd_tab, printed

For every federation of ``redteam/runs.txt`` with a backdoor (on digits towards 3, a 2 × 2 corner trigger; on
the tabular task towards 0, three features set to 4) and every clean one as a control, inverts the final global
model with ``NeuralCleanse`` defaults, the model rebuilt by ``redteam/models.py`` and the clean data the run's
own held-out fifth (``redteam/data.py``: the split fedavg.py draws from its seed; a tabular sample is a 1 × 20
image to the inversion), and rewrites the table between the ``redteam-inversion`` markers of docs/detection.md.
"""

from __future__ import annotations

import argparse
import sys

import torch
from redteam_bench import DOC, HERE, OUT, RUNS
from scenarios import only_option, publish, read_listed, selected

from fedforensics import open_run
from fedforensics.analysis import analyze
from fedforensics.errors import FedForensicsError
from fedforensics.inversion import invert_run

sys.path.insert(0, str(HERE / "redteam"))
import data  # noqa: E402  (the red team's data)
import models  # noqa: E402  (the red team's model classes)

BACKDOORS = ("bd_tab", "scaled_bd", "neurotoxin", "pgd_bd", "cs_bd", "intermittent")
TARGET = {"digits": 3, "tab": 0}


def row(name: str, setting: dict[str, str]) -> str:
    dataset, target = setting["--data"], TARGET[setting["--data"]]
    x, y = data.held_out(dataset, int(setting.get("--seed", 0)))
    with open_run(OUT / f"{name}.h5") as run:
        truth = set(run.ground_truth or [])
        verdicts = analyze(run).verdicts
        success = run.global_metrics(run.rounds[-1]).get("attack_success")
        factory = getattr(models, f"{dataset}_{setting['--model']}")
        try:
            result = invert_run(run, factory, x, y, seed=0).result
        except FedForensicsError as refused:  # a model averaged into NaN scores: the audit refuses it too
            if "class scores" not in str(refused):
                raise
            result = None
    found = sum(v.verdict != "benign" for v in verdicts if v.client in truth)
    if result is None:
        labels, index = "not inverted: NaN class scores", "–"
    else:
        weak = set(result.weak_labels)
        labels = ", ".join(f"{label}{' (weak)' if label in weak else ''}" for label in result.flagged_labels) or "none"
        index = f"{result.classes[target].anomaly_index:.2f}"
    attack = setting["--attack"] if setting["--attack"] != "none" else "clean"
    return (f"| {name} | {dataset}, {setting['--model']}, {setting['--partition']} | {attack} | {target} | "
            f"{'–' if success is None else f'{success:.2f}'} | {labels} | {index} | "
            f"{f'{found} of {len(truth)}' if truth else '–'} |")


def inverted(patterns: list[str] | None, prog: str) -> dict[str, dict[str, str]]:
    """The federations of ``redteam/runs.txt`` to invert (those with a backdoor, and the clean ones) that ``--only``'s
    ``patterns`` select (:func:`scenarios.selected`): name → its settings."""
    listed = {name: dict(zip(fed_args[::2], fed_args[1::2])) for name, fed_args in read_listed(RUNS).items()}
    names = [name for name, setting in listed.items() if setting["--attack"] in (*BACKDOORS, "none")]
    return {name: listed[name] for name in selected(names, patterns, prog)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--print", action="store_true", help=f"print the table instead of writing {DOC.name}")
    only_option(parser, DOC)
    args = parser.parse_args()
    torch.set_num_threads(1)
    lines = [
        "| federation | data, model, split | attack | target | attack success | labels flagged | target's anomaly index | "
        "attackers found by the update statistics |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, setting in inverted(args.only, parser.prog).items():
        lines.append(row(name, setting))
        print(lines[-1], file=sys.stderr, flush=True)
    publish("\n".join(lines), DOC, "redteam-inversion", args.print, "--only" if args.only else "")


if __name__ == "__main__":
    main()
