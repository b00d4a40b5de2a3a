"""Memory of `analyze` on long runs with many clients: does it grow with the rounds?

The per-round tables the reports carry (each detector's per-round score of each
client, the norms, the most separating slice's timeline) hold a number per client
and round by definition; everything else an analysis keeps is per client (each
statistic's running evidence, each client's accumulated direction) and must not grow
with the rounds. This benchmark writes synthetic logs of 200 clients of a
1,010-parameter model (4 layers; every update is noise around the round's common
direction, and 10 clients add one shared direction from round 5 on) for 50, 200 and
800 rounds, then runs ``open_run`` + ``analyze`` + the JSON report in a fresh process
per log and reports its peak RSS, the time, the JSON's size and whether the 10 were
found and nobody else.

Run: ``python benchmarks/long_run_bench.py [--rounds 50 200 800] [--dir DIR]``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np

from analyze_bench import child
from recorder import Recorder

CLIENTS = 200
COLLUDERS = 10
LAYERS = {"fc1.weight": (30, 25), "fc1.bias": (30,), "fc2.weight": (8, 30), "fc2.bias": (8,)}


def make_log(path: Path, rounds: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    g = {k: np.zeros(s, np.float32) for k, s in LAYERS.items()}
    shared = {k: rng.standard_normal(s, dtype=np.float32) for k, s in LAYERS.items()}
    with Recorder(path, meta={"benchmark": "long-run"}, fsync=False) as rec:
        for r in range(rounds):
            common = {k: rng.standard_normal(s, dtype=np.float32) for k, s in LAYERS.items()}
            with rec.round(r, g) as rnd:
                for c in range(CLIENTS):
                    state = {k: common[k] + 2.0 * rng.standard_normal(s, dtype=np.float32) for k, s in LAYERS.items()}
                    if c < COLLUDERS and r >= 5:
                        state = {k: v + 0.8 * shared[k] for k, v in state.items()}
                    rnd.client(f"c{c:03d}", state, num_samples=50, metrics={"train_loss": 1.0 + 0.01 * c}, delta=True)
        rec.ground_truth(malicious=[f"c{c:03d}" for c in range(COLLUDERS)])


ANALYZE = """
import json, sys, time
from pathlib import Path
from fedforensics import open_run
from fedforensics.analysis import analyze
from fedforensics.report.json import write_json
t = time.perf_counter()
with open_run(sys.argv[1]) as run:
    truth = set(run.ground_truth)
    report = analyze(run)
seconds = time.perf_counter() - t
write_json(report, Path(sys.argv[2]))
flagged = {v.client for v in report.verdicts if v.verdict != "benign"}
print(json.dumps({"seconds": seconds, "found": len(flagged & truth), "false": len(flagged - truth)}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, nargs="+", default=[50, 200, 800])
    parser.add_argument("--dir", type=Path, default=None, help="where the logs go (default: a temporary folder here)")
    args = parser.parse_args()
    if args.dir is not None:
        args.dir.mkdir(parents=True, exist_ok=True)
    print("| rounds | analyze() | peak RSS | JSON | colluders found | honest flagged |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(dir=args.dir or Path(__file__).parent) as tmp:
        for rounds in args.rounds:
            path, out = Path(tmp) / f"long{rounds}.h5", Path(tmp) / f"long{rounds}.json"
            make_log(path, rounds)
            r = child([sys.executable, "-c", textwrap.dedent(ANALYZE), str(path), str(out)], path, cold=False)
            print(
                f"| {rounds} | {r['seconds']:.1f} s | {r['peak_mb']:,.0f} MB | {out.stat().st_size / 2**20:.1f} MB "
                f"| {r['found']} of {COLLUDERS} | {r['false']} |",
                flush=True,
            )
            path.unlink()


if __name__ == "__main__":
    main()
