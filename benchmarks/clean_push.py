"""Does a client's model push clean inputs toward the label trigger inversion flags? (A lead, not built.)

    python benchmarks/clean_push.py [--dir benchmarks/.cache] [--only PATTERN ...]   # ~8 s a run, cached

The update statistics miss backdoor attackers among label-skewed clients (docs/detection.md, "Where it fails").
This script measures evidence of another kind, from the model: Neural Cleanse (the product's ``invert_run``, default
parameters) on each run's final model gives the flagged label t; for every round and client, the client's model
(the round's global model plus its update) and the round's global model are evaluated on the run's clean data of
the other labels, and the client's *clean push* is the mean log-probability of t under its model less under the
global model (what relabelling part of one's images to t does). Per round a robust z across the round's clients
(at least 4), clipped at ±10, mean over the client's rounds (at least 3), as the detectors do. It prints the honest
clients' largest push, and, for the clients the audit left ``benign``, how many honest clients and attackers reach
both a push and a verdict score (the sum of the client's strengths, docs/detectors.md) at each pair of cut-offs.
Only runs recorded with a model factory (``meta["model_factory"]``) and a ``clean_data`` attachment are read, and
only those where Neural Cleanse flags a label count. Each run's figures are cached beside it in ``clean_push/``.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from scenarios import CACHE

from fedforensics import Run, open_run
from fedforensics.analysis import analyze
from fedforensics.detectors.accumulate import CLIP, EVIDENCE_ROUNDS
from fedforensics.inversion import invert_run, load_model_factory
from fedforensics.stats import robust_z

MIN_CLIENTS = 4  # the detectors' smallest comparable round
PUSH_CUTS = (1.0, 1.2, 1.5, 2.0)
SCORE_CUTS = (1.0, 1.5, 2.0, 2.5, 3.0)


def push_by_round(run: Run, model: torch.nn.Module, x: np.ndarray, y: np.ndarray, label: int) -> dict[int, dict[str, float]]:
    """Per round, each client's clean push toward ``label``: mean log p(label | x) of its model less the round's
    global model's, over the clean inputs of the other labels."""
    others = torch.from_numpy(np.asarray(x[y != label], np.float32))

    def mean_log_p(state: dict[str, np.ndarray]) -> float:
        model.load_state_dict({k: torch.from_numpy(np.asarray(v, np.float32)) for k, v in state.items()})
        with torch.no_grad():
            return float(torch.log_softmax(model(others).double(), 1)[:, label].mean())

    pushes = {}
    for r in run.rounds:
        clients = run.clients(r)
        if len(clients) < MIN_CLIENTS:
            continue
        start = run.global_state(r)
        base = mean_log_p(start)
        pushes[r] = {}
        for cid in clients:
            update = run.update(r, cid)
            pushes[r][cid] = mean_log_p({k: np.asarray(v, np.float32) + update[k] for k, v in start.items()}) - base
    return pushes


def measure(path: Path) -> dict | None:
    """One run's flagged labels, each client's mean clipped push z, verdict, score and truth (``None``: the run
    cannot be inverted)."""
    torch.set_num_threads(1)
    with open_run(path) as run:
        clean, factory = run.attachment("clean_data"), run.sound_meta.get("model_factory")
        if clean is None or not isinstance(factory, str):
            return None
        x, y = np.asarray(clean["x"]), np.asarray(clean["y"])
        build = load_model_factory(factory)
        flagged = invert_run(run, build, x, y).result.flagged_labels
        report = analyze(run)
        truth = set(run.ground_truth or [])
        push: dict[str, float] = {}
        if flagged:
            model = build()
            model.eval()
            zs: dict[str, list[float]] = defaultdict(list)
            for values in push_by_round(run, model, x, y, int(flagged[0])).values():
                ids = list(values)
                for cid, z in zip(ids, np.clip(robust_z(np.array([values[c] for c in ids])), -CLIP, CLIP)):
                    zs[cid].append(float(z))
            push = {cid: float(np.mean(v)) for cid, v in zs.items() if len(v) >= EVIDENCE_ROUNDS}
    return {
        "flagged": [int(label) for label in flagged],
        "clients": {v.client: {"push": push.get(v.client), "verdict": v.verdict, "score": v.score,
                               "attacker": v.client in truth} for v in report.verdicts},
    }


def cached(path: Path) -> dict | None:
    """:func:`measure`, from ``clean_push/<run>.json`` beside the run when an earlier call wrote it."""
    out = path.parent / "clean_push" / f"{path.stem}.json"
    if out.exists():
        return json.loads(out.read_text())
    found = measure(path)
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(found))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, default=CACHE, help=f"a folder of run files (default {CACHE})")
    parser.add_argument("--only", nargs="+", metavar="PATTERN", help="only the runs whose file name matches a glob")
    args = parser.parse_args()
    paths = sorted(p for p in args.dir.glob("*.h5") if not args.only or any(fnmatch.fnmatch(p.name, g) for g in args.only))
    rows = []
    for i, path in enumerate(paths, 1):
        if sys.stderr.isatty():  # a progress line on a terminal only: piped, it is one line per run
            print(f"\r{i}/{len(paths)} {path.name[:60]:60s}", end="", file=sys.stderr, flush=True)
        found = cached(path)
        if found and found["flagged"]:
            rows += [c for c in found["clients"].values() if c["push"] is not None]
    if sys.stderr.isatty():
        print(file=sys.stderr)
    honest = [c for c in rows if not c["attacker"]]
    if not honest:
        print("no run where Neural Cleanse flags a label")
        return
    pushes = np.array([c["push"] for c in honest])
    missed = [c for c in rows if c["attacker"] and c["verdict"] == "benign"]
    print(f"{len(honest)} honest clients and {len(rows) - len(honest)} attackers ({len(missed)} left benign) in runs "
          f"where Neural Cleanse flags a label; the honest clients' push: largest {pushes.max():.2f}, 99th "
          f"percentile {np.percentile(pushes, 99):.2f}")
    print("clients left benign with push >= P and score >= S, honest / attackers:")
    print("P \\ S " + "".join(f"{s:>10g}" for s in SCORE_CUTS))
    for p in PUSH_CUTS:
        cells = []
        for s in SCORE_CUTS:
            both = [c for c in rows if c["verdict"] == "benign" and c["push"] >= p and c["score"] >= s]
            cells.append(f"{sum(not c['attacker'] for c in both)} / {sum(c['attacker'] for c in both)}")
        print(f"{p:<6g}" + "".join(f"{cell:>10}" for cell in cells))


if __name__ == "__main__":
    main()
