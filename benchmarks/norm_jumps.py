"""Does a one-shot boosted update stand out against its client's own history? (No.)

    python benchmarks/norm_jumps.py [--dir benchmarks/.cache]   # ~1.5 min over the cached runs

Bagdasaryan et al.'s model replacement sends one update ×n/η in one round. Its norm's z in that
round is large, but honest clients of label-skewed federations reach per-round z ≈ 85 too, so
the detectors do not conclude from one round (docs/detection.md, "Where it fails"). This script
measures the statistic that would remove a client's own persistent offset: per round, a client's
log-norm minus the round's median log-norm; minus the median of the same offset over the three
rounds before and after (its own recent history); divided by the run's robust spread of those
jumps (1.4826 · MAD over every client-round). It prints the honest clients' largest jumps, and how
often a boost (×3, ×5, ×10 added to one honest client's norm in the middle of its rounds, one per
run) exceeds every honest jump of the cached federations.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

import numpy as np
from scenarios import CACHE

from fedforensics import open_run

WINDOW = 3  # rounds either side that make a client's own recent history
MIN_ROUNDS = 5  # clients seen in fewer rounds have no history to jump from
BOOSTS = (3, 5, 10)


def norms(path: Path) -> tuple[dict[int, tuple[list[str], np.ndarray]], set[str]]:
    """Per round, its clients and their update norms; and the run's malicious clients."""
    with open_run(path) as run:
        rounds = {}
        for r in run.rounds:
            ids = run.clients(r)
            if ids:
                rounds[r] = (ids, np.linalg.norm(run.update_matrix(r).astype(np.float64), axis=1))
        return rounds, set(run.ground_truth or [])


def largest_jumps(rounds: dict[int, tuple[list[str], np.ndarray]], boost: tuple[str, int, float] | None = None) -> dict[str, float]:
    """Each client's largest jump over the run, in robust spreads; ``boost`` = (client, round, factor)."""
    offsets: dict[str, list[float]] = defaultdict(list)
    for r, (ids, values) in sorted(rounds.items()):
        if len(ids) < 3:
            continue
        logs = np.log(np.maximum(values, 1e-30))
        if boost is not None and boost[1] == r:
            logs[ids.index(boost[0])] += np.log(boost[2])
        centre = np.median(logs)
        for cid, value in zip(ids, logs):
            offsets[cid].append(value - centre)
    jumps = {}
    for cid, series in offsets.items():
        if len(series) < MIN_ROUNDS:
            continue
        v = np.array(series)
        jumps[cid] = np.array(
            [v[t] - np.median(np.concatenate([v[max(0, t - WINDOW) : t], v[t + 1 : t + 1 + WINDOW]])) for t in range(len(v))]
        )
    if not jumps:
        return {}
    spread = 1.4826 * np.median(np.abs(np.concatenate(list(jumps.values()))))
    return {cid: float(v.max() / spread) for cid, v in jumps.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, default=CACHE, help="the runs to read, and those of its redteam/ (default: %(default)s)")
    args = parser.parse_args()
    files = sorted(args.dir.glob("*.h5")) + sorted(args.dir.glob("redteam/*.h5"))
    honest: list[tuple[float, str, str]] = []
    boosted: dict[int, list[float]] = {k: [] for k in BOOSTS}
    rng = np.random.default_rng(0)
    for path in files:
        rounds, malicious = norms(path)
        jumps = largest_jumps(rounds)
        honest += [(z, path.name, cid) for cid, z in jumps.items() if cid not in malicious]
        candidates = [cid for cid in jumps if cid not in malicious]
        if not candidates:
            continue
        cid = candidates[rng.integers(len(candidates))]
        own = sorted(r for r, (ids, _) in rounds.items() if cid in ids)
        for factor in BOOSTS:
            boosted[factor].append(largest_jumps(rounds, (cid, own[len(own) // 2], factor))[cid])
    honest.sort()
    top = honest[-1][0]
    print(f"{len(files)} federations, {len(honest)} honest clients")
    print("honest largest jump: median {:.2f}, 99th percentile {:.2f}, max {:.2f}".format(
        np.median([h[0] for h in honest]), np.percentile([h[0] for h in honest], 99), top))
    for z, name, cid in honest[-5:]:
        print(f"  {z:6.2f}  {cid}  {name}")
    for factor, values in boosted.items():
        print(f"boost x{factor}: median jump {np.median(values):.2f}; above every honest jump in "
              f"{np.mean(np.array(values) > top):.0%} of {len(values)} runs")


if __name__ == "__main__":
    main()
