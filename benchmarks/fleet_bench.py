"""Memory of `analyze` on a device fleet: many clients, each seen in a few rounds.

The clients' accumulated update directions are the one thing an analysis keeps
per client (``DirectionHistory``): clients × parameters float32, 1.6 GB for the
fleet below, 8 GB for 2,000 clients of a 1M-parameter model. Beyond
``DIRECTION_MEMORY`` (512 MiB) they are kept as a count sketch. This benchmark
writes a synthetic fleet log — 1,500 clients × 265,994 parameters, 50 sampled per
round, 90 rounds (each client in 3 rounds on average); every update is noise
around the round's common direction, and 30 clients add one shared, fixed
direction — then analyzes it in fresh processes, whole (``direction_memory``
large enough) and sketched (the default), and compares peak RSS, time and the
clients each flags.

Run: ``python benchmarks/fleet_bench.py [--dir DIR]`` (needs ~5 GB of disk).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np

from analyze_bench import child
from recorder import Recorder

CLIENTS = 1500
PER_ROUND = 50
ROUNDS = 90
COLLUDERS = 30
LAYERS = {"fc1.weight": (256, 1024), "fc1.bias": (256,), "fc2.weight": (10, 256), "fc2.bias": (10,)}


def make_log(path: Path, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    g = {k: np.zeros(s, np.float32) for k, s in LAYERS.items()}
    shared = {k: rng.standard_normal(s, dtype=np.float32) for k, s in LAYERS.items()}
    with Recorder(path, meta={"benchmark": "fleet"}, fsync=False) as rec:
        for r in range(ROUNDS):
            common = {k: rng.standard_normal(s, dtype=np.float32) for k, s in LAYERS.items()}
            sampled = rng.choice(CLIENTS, PER_ROUND, replace=False)
            with rec.round(r, g) as rnd:
                for c in sorted(sampled):
                    state = {k: common[k] + 2.0 * rng.standard_normal(s, dtype=np.float32) for k, s in LAYERS.items()}
                    if c < COLLUDERS:
                        state = {k: v + 0.6 * shared[k] for k, v in state.items()}
                    rnd.client(f"d{c:04d}", state, num_samples=50, delta=True)
        rec.ground_truth(malicious=[f"d{c:04d}" for c in range(COLLUDERS)])


ANALYZE = """
import json, sys, time
from fedforensics import open_run
from fedforensics.analysis import analyze
memory = int(sys.argv[2])
with open_run(sys.argv[1]) as run:
    truth = set(run.ground_truth)
    t = time.perf_counter()
    report = analyze(run, direction_memory=memory)
    seconds = time.perf_counter() - t
flagged = {v.client for v in report.verdicts if v.verdict != "benign"}
print(json.dumps({"seconds": seconds, "flagged": sorted(flagged), "found": len(flagged & truth),
                  "false": len(flagged - truth), "notes": report.notes}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, default=None, help="where the log goes (default: a temporary folder here)")
    args = parser.parse_args()
    from fedforensics.detectors.history import DIRECTION_MEMORY

    if args.dir is not None:
        args.dir.mkdir(parents=True, exist_ok=True)  # a folder to make, not a traceback
    with tempfile.TemporaryDirectory(dir=args.dir or Path(__file__).parent) as tmp:
        path = Path(tmp) / "fleet.h5"
        make_log(path)
        print(f"log: {path.stat().st_size / 2**30:.1f} GiB, {CLIENTS} clients, {PER_ROUND} a round, {ROUNDS} rounds")
        size = sum(int(np.prod(s)) for s in LAYERS.values())
        variants = {"whole": 8 * CLIENTS * size, "sketched (default)": DIRECTION_MEMORY}
        child([sys.executable, "-c", "import h5py, sys; h5py.File(sys.argv[1])", str(path)], path, cold=False)
        results = {}
        for name, memory in variants.items():
            results[name] = child([sys.executable, "-c", textwrap.dedent(ANALYZE), str(path), str(memory)], path, cold=False)
    print("| directions | analyze() | peak RSS | colluders found | honest flagged |")
    print("|---|---|---|---|---|")
    for name, r in results.items():
        print(f"| {name} | {r['seconds']:.1f} s | {r['peak_mb']:,.0f} MB | {r['found']} of {COLLUDERS} | {r['false']} |")
    whole, sketched = (set(r["flagged"]) for r in results.values())
    print(f"\nflagged by one and not the other: {sorted(whole ^ sketched) or 'none'}")
    print("notes (sketched):", json.dumps(results["sketched (default)"]["notes"], indent=1))


if __name__ == "__main__":
    main()
