"""How long `analyze` (without trigger inversion) takes, and how much memory it needs.

A synthetic log of 20 clients × 1,000,000 parameters × R rounds is written with the
recorder; then, each in a fresh process (so peak memory is that work's alone):

* raw:     read every update once with plain h5py;
* analyze: open_run + every registered detector + verdicts.

Target (issue 4): analyze ≤ 2× raw, peak memory < 1 GB and flat in R (20 vs 40 rounds).
Run: ``python benchmarks/analyze_bench.py [--rounds 20 40] [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np

from recorder import Recorder

CLIENTS = 20
LAYERS = {"conv.weight": (64, 32, 3, 3), "conv.bias": (64,), "fc1.weight": (970, 1000), "fc1.bias": (970,), "fc2.weight": (10, 970), "fc2.bias": (10,)}


def make_log(path: Path, rounds: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    params = {k: int(np.prod(s)) for k, s in LAYERS.items()}
    assert 990_000 < sum(params.values()) < 1_010_000, sum(params.values())
    g = {k: np.zeros(s, np.float32) for k, s in LAYERS.items()}
    with Recorder(path, meta={"benchmark": "analyze"}, fsync=False) as rec:
        for r in range(rounds):
            common = {k: rng.standard_normal(s, dtype=np.float32) for k, s in LAYERS.items()}
            with rec.round(r, g) as rnd:
                for c in range(CLIENTS):
                    state = {k: common[k] + 0.5 * rng.standard_normal(s, dtype=np.float32) for k, s in LAYERS.items()}
                    if c == 0:
                        state = {k: v * 5 for k, v in state.items()}
                    rnd.client(f"c{c}", state, num_samples=100, metrics={"train_accuracy": 0.9}, delta=True)


RAW = """
import h5py, time, resource, json, sys
t = time.perf_counter()
n = 0
with h5py.File(sys.argv[1], "r") as f:
    for key in sorted(f["rounds"]):
        for name, ds in f["rounds"][key]["updates"].items():
            n += ds[()].nbytes
dt = time.perf_counter() - t
print(json.dumps({"seconds": dt, "bytes": n, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

ANALYZE = """
import time, resource, json, sys
from fedforensics import open_run
from fedforensics.analysis import analyze
t = time.perf_counter()
with open_run(sys.argv[1]) as run:
    report = analyze(run)
dt = time.perf_counter() - t
assert report.verdicts[0].client == "c0", report.verdicts[0]
print(json.dumps({"seconds": dt, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

BASELINE = """
import resource, json
from fedforensics import open_run
from fedforensics.analysis import analyze
print(json.dumps({"peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def drop_page_cache() -> bool:
    """Evict the file from the OS page cache (needs root); False where not allowed."""
    try:
        subprocess.run(["sync"], check=True)
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def child(code: str, *args: str, cold: bool = False) -> dict:
    if cold and not drop_page_cache():
        raise SystemExit("--cold needs permission to write /proc/sys/vm/drop_caches")
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, nargs="+", default=[20, 40])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cold", action="store_true", help="drop the page cache before every measurement")
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {platform.python_version()}, numpy {np.__version__}")
    imports = child(BASELINE)["peak_mb"]
    print(f"imports alone: {imports:.0f} MB peak; page cache: {'dropped before each run' if args.cold else 'warm'}")
    print("| rounds | file | raw h5py read | analyze | ratio | raw peak RSS | analyze peak RSS |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(dir=Path(__file__).parent) as tmp:
        for rounds in args.rounds:
            path = Path(tmp) / f"log{rounds}.h5"
            make_log(path, rounds)
            child(RAW, str(path))  # warm the page cache (undone per measurement with --cold)
            raw = min((child(RAW, str(path), cold=args.cold) for _ in range(args.repeats)), key=lambda d: d["seconds"])
            ana = min((child(ANALYZE, str(path), cold=args.cold) for _ in range(args.repeats)), key=lambda d: d["seconds"])
            print(
                f"| {rounds} | {path.stat().st_size / 2**20:.0f} MiB | {raw['seconds']:.2f} s | {ana['seconds']:.2f} s "
                f"| {ana['seconds'] / raw['seconds']:.2f}× | {raw['peak_mb']:.0f} MB | {ana['peak_mb']:.0f} MB |"
            )


if __name__ == "__main__":
    main()
