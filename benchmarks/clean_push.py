"""What the clean push adds to the verdicts of ``fedforensics analyze --model`` (docs/detection.md, "Trigger inversion's clean push").

    python benchmarks/clean_push.py [--grid | --dir DIR [--only PATTERN ...]] [--model MODULE:CALLABLE] [--jobs 2]

For every run: Neural Cleanse on its final model (``invert_run``, the defaults ``analyze --model`` uses); where it
flags a label, each client's clean push toward it (``fedforensics.inversion.attribution.clean_push``) and the audit
with and without it (``analyze(run, clean_push=...)``: the verdict rule's ``corroborate``). It prints the honest
clients' largest push; for the clients the audit leaves ``benign``, how many honest clients and attackers reach a
push P and a score without the label-mix detectors S at each pair of cut-offs (the rule's are ``verdict.push`` and
``verdict.push_score``); and per attack, the F1 of the ``malicious`` + ``suspicious`` verdicts against the recorded
ground truth without and with the push. ``--grid``: the detection benchmark's 150 federations (seeds 0, 1, 2,
simulated where ``benchmarks/.cache`` lacks them); ``--dir``: the runs of a folder. Only runs recorded with a
``clean_data`` attachment and a model factory (``meta["model_factory"]``, else ``--model``'s) are read. Each run's
figures are cached beside it in ``clean_push/`` (about 10 s a run on one core).
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import sys
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from scenarios import CACHE, SEEDS, ensure, grid

from fedforensics import open_run
from fedforensics.analysis import analyze
from fedforensics.errors import FedForensicsError
from fedforensics.verdict import ConsensusRule

#: The figures a cached file holds: a file of another version is measured again.
VERSION = 2
PUSH_CUTS = (1.0, 1.5, 2.0)
SCORE_CUTS = (1.0, 1.5, 2.0, 2.5)


def measure(path: Path, model: str | None = None) -> dict | None:
    """One run's attack, flagged labels, and per client its push, score without the label-mix detectors, verdict
    without and with the push, and truth (``None``: the run cannot be inverted)."""
    import torch

    from fedforensics.inversion import invert_run, load_model_factory
    from fedforensics.inversion.attribution import clean_push

    torch.set_num_threads(1)
    with open_run(path) as run:
        clean, factory = run.attachment("clean_data"), run.sound_meta.get("model_factory", model)
        if clean is None or not isinstance(factory, str):
            return None
        x, y = np.asarray(clean["x"]), np.asarray(clean["y"])
        build = load_model_factory(factory)
        try:
            flagged = invert_run(run, build, x, y).result.flagged_labels
        except FedForensicsError:  # e.g. a final model that holds NaN (PoisonedFL): nothing to invert
            return None
        push = clean_push(run, build, x, y, int(flagged[0])) if flagged else None
        without = analyze(run)
        judged = analyze(run, clean_push=push) if push is not None else without
        label_mix = {d.name for d in without.detectors if d.label_mix}
        truth = set(run.ground_truth or [])
        config = run.sound_meta.get("config") or {}
    # a run simulate did not record names no attack: its runs are one row
    attack = str(config.get("attack", "(attack not recorded)")) + (" (target-class)" if config.get("flavour") == "target-class" else "")
    verdicts = {v.client: v.verdict for v in judged.verdicts}
    return {
        "version": VERSION,
        "attack": attack,
        "flagged": [int(label) for label in flagged],
        "clients": {
            v.client: {
                "push": push.scores.get(v.client) if push is not None else None,
                "unmixed": without.rule.unmixed_score(v, label_mix),
                "verdict": v.verdict,
                "with_push": verdicts[v.client],
                "attacker": v.client in truth,
            }
            for v in without.verdicts
        },
    }


def cached(path: Path, model: str | None = None) -> dict | None:
    """:func:`measure`, from ``clean_push/<run>.json`` beside the run when an earlier call of this version wrote it."""
    out = path.parent / "clean_push" / f"{path.stem}.json"
    if out.exists():
        found = json.loads(out.read_text())
        if found is None or found.get("version") == VERSION:
            return found
    found = measure(path, model)
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(found))
    return found


def f1(clients: list[dict], key: str) -> str:
    """The F1 of the clients judged other than benign under ``key`` against their truth ("–": no attacker)."""
    flagged = [c for c in clients if c[key] != "benign"]
    found = sum(c["attacker"] for c in flagged)
    attackers = sum(c["attacker"] for c in clients)
    if not attackers:
        return "–"
    return f"{2 * found / (len(flagged) + attackers):.2f}"


def print_tables(runs: list[dict]) -> None:
    rows = [c for run in runs if run["flagged"] for c in run["clients"].values() if c["push"] is not None]
    honest = [c for c in rows if not c["attacker"]]
    if honest:
        pushes = np.array([c["push"] for c in honest])
        missed = [c for c in rows if c["attacker"] and c["verdict"] == "benign"]
        print(f"{sum(bool(r['flagged']) for r in runs)} of {len(runs)} runs with a label flagged: {len(honest)} honest "
              f"clients and {len(rows) - len(honest)} attackers ({len(missed)} left benign); the honest clients' push: "
              f"largest {pushes.max():.2f}, 99th percentile {np.percentile(pushes, 99):.2f}")  # fmt: skip
        rule = ConsensusRule()
        print(f"clients left benign with push >= P and score without label-mix detectors >= S, honest / attackers "
              f"(the rule: P {rule.push:g}, S {rule.push_score:g}):")  # fmt: skip
        print("P \\ S " + "".join(f"{s:>10g}" for s in SCORE_CUTS))
        for p in PUSH_CUTS:
            cells = []
            for s in SCORE_CUTS:
                both = [c for c in rows if c["verdict"] == "benign" and c["push"] >= p and c["unmixed"] >= s]
                cells.append(f"{sum(not c['attacker'] for c in both)} / {sum(c['attacker'] for c in both)}")
            print(f"{p:<6g}" + "".join(f"{cell:>10}" for cell in cells))
    by_attack = defaultdict(list)
    for run in runs:
        by_attack[run["attack"]].append(run)
    print("\n| attack | runs | label flagged | F1 without | F1 with the push | honest flagged without | with |")
    print("|---|---|---|---|---|---|---|")
    for attack, group in sorted(by_attack.items()):
        clients = [c for run in group for c in run["clients"].values()]
        honest_flags = [sum(not c["attacker"] and c[key] != "benign" for c in clients) for key in ("verdict", "with_push")]
        print(f"| {attack} | {len(group)} | {sum(bool(r['flagged']) for r in group)} | {f1(clients, 'verdict')} | "
              f"{f1(clients, 'with_push')} | {honest_flags[0]} | {honest_flags[1]} |")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--grid", action="store_true", help=f"the detection benchmark's federations (seeds {SEEDS})")
    where.add_argument("--dir", type=Path, default=CACHE, help=f"a folder of run files (default {CACHE})")
    parser.add_argument("--only", nargs="+", metavar="PATTERN", help="with --dir: only the runs whose file name matches a glob")
    parser.add_argument("--model", metavar="MODULE:CALLABLE", help="the model factory of runs that name none")
    parser.add_argument("--jobs", type=int, default=2, help="runs measured at once")
    args = parser.parse_args()
    if args.grid:
        paths = ensure(grid(SEEDS), args.jobs)
    else:
        paths = sorted(p for p in args.dir.glob("*.h5") if not args.only or any(fnmatch.fnmatch(p.name, g) for g in args.only))
    runs = []
    with ProcessPoolExecutor(args.jobs) as pool:
        for i, found in enumerate(pool.map(cached, paths, [args.model] * len(paths)), 1):
            if sys.stderr.isatty():  # a progress line on a terminal only
                print(f"\r{i}/{len(paths)}", end="", file=sys.stderr, flush=True)
            if found is not None:
                runs.append(found)
    if sys.stderr.isatty():
        print(file=sys.stderr)
    if not runs:
        print("no run could be inverted")
        return
    print_tables(runs)


if __name__ == "__main__":
    main()
