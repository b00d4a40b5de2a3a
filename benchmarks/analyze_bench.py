"""How long `analyze` (without trigger inversion) takes against reading the log with raw h5py, and its memory.

A synthetic log of 20 clients × 999,176 parameters × R rounds (6 layers, float32
noise around a common direction per round, client c0's updates ×5) is written with
the recorder; then every measurement runs in a fresh process (so its peak RSS,
taken from ``wait4``, is that work's alone):

* **raw**: plain h5py reads every update dataset whole, once (``ds[()]``, each
  allocated fresh as h5py does). Timed inside the process around the reads, and
  as a whole process (interpreter start and ``import h5py`` included).
* **analyze()**: ``open_run`` + ``analyze(run)`` (every registered detector and the
  verdicts), timed inside the process once the detector modules and what they
  import on first use (scikit-learn, scipy) are imported; the imports are timed apart.
* **CLI**: ``python -m fedforensics.cli analyze LOG --json OUT`` as a user runs
  it, the whole process (imports, terminal report and JSON included).

"cold" evicts the log from the page cache before each measurement
(``posix_fadvise(DONTNEED)`` on the file, after ``sync``): the data comes from
disk, the Python modules stay cached. Best of ``--repeats`` (median in the
table's brackets), the variants interleaved, in reverse order every other repeat.

Target (issue 4): analyze ≤ 2× raw, peak memory < 1 GB and flat in R (20 vs 40 rounds).
Run: ``python benchmarks/analyze_bench.py [--rounds 20 40] [--repeats 5] [--cache warm cold] [--wait-idle 60] [--dir DIR]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

from recorder import Recorder
from recorder_bench import evict

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
import json, sys, time
import h5py
t = time.perf_counter()
n = 0
with h5py.File(sys.argv[1], "r") as f:
    for key in sorted(f["rounds"]):
        for name, ds in f["rounds"][key]["updates"].items():
            n += ds[()].nbytes
print(json.dumps({"seconds": time.perf_counter() - t, "bytes": n}))
"""

ANALYZE = """
import json, sys, time
from fedforensics import open_run
from fedforensics.analysis import analyze, default_detectors
t0 = time.perf_counter()
default_detectors()  # imports every detector module
import scipy.linalg.blas, scipy.stats, sklearn.cluster  # and what they import on first use
t1 = time.perf_counter()
with open_run(sys.argv[1]) as run:
    report = analyze(run)
    rounds = len(run.rounds)
t2 = time.perf_counter()
assert report.verdicts[0].client == "c0" or rounds < 5, report.verdicts[0]  # the boosted client tops the verdicts
print(json.dumps({"seconds": t2 - t1, "imports": t1 - t0}))
"""


def cpu_busy(seconds: float) -> float:
    """Share of the machine's CPU time that was busy over the next ``seconds`` (from /proc/stat)."""
    def snapshot() -> tuple[int, int]:
        with open("/proc/stat") as f:
            ticks = [int(v) for v in f.readline().split()[1:]]
        return sum(ticks), ticks[3] + ticks[4]  # all, idle + iowait

    total0, idle0 = snapshot()
    time.sleep(seconds)
    total1, idle1 = snapshot()
    return 1.0 - (idle1 - idle0) / max(1, total1 - total0)


def wait_idle(limit: float) -> bool:
    """Wait up to ``limit`` seconds for a second in which the CPUs are < 10 % busy; whether one came."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if cpu_busy(1.0) < 0.10:
            return True
    return False


def child(argv: list[str], path: Path, cold: bool, idle: float = 0.0) -> dict:
    """Run ``argv`` in a fresh process: its JSON output (if any), wall time, peak RSS, whether the machine was idle."""
    if cold:
        evict(path)
        time.sleep(0.5)  # on a VM, let the freed pages settle before the timing
    was_idle = wait_idle(idle) if idle else None
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)  # the child's own rusage, hence its peak RSS
        wall = time.perf_counter() - t
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode:
            err.seek(0)
            raise SystemExit(f"a measurement failed ({proc.returncode}): {err.read()[-2000:]}")
        out.seek(0)
        text = out.read().strip()
    result = json.loads(text) if text.startswith("{") else {}
    return {**result, "wall": wall, "peak_mb": usage.ru_maxrss / 1024, "idle": was_idle}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, nargs="+", default=[20, 40])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cache", nargs="+", choices=["warm", "cold"], default=["warm", "cold"])
    parser.add_argument("--dir", type=Path, default=None, help="where the logs go (default: a temporary folder here)")
    parser.add_argument(
        "--wait-idle", type=float, default=0.0, metavar="SECONDS",
        help="before each measurement, wait up to this long for the CPUs to be idle (for a machine others share)",
    )
    args = parser.parse_args()
    import h5py
    import scipy
    import sklearn

    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, numpy {np.__version__}, "
        f"h5py {h5py.__version__} (HDF5 {h5py.version.hdf5_version}), scipy {scipy.__version__}, scikit-learn {sklearn.__version__}"
    )
    print(f"best of {args.repeats} (median in brackets); page cache: {', '.join(args.cache)}\n")
    rows = []
    if args.dir is not None:
        args.dir.mkdir(parents=True, exist_ok=True)  # a folder to make, not a traceback
    with tempfile.TemporaryDirectory(dir=args.dir or Path(__file__).parent) as tmp:
        for rounds in args.rounds:
            path = Path(tmp) / f"log{rounds}.h5"
            make_log(path, rounds)
            out_json = Path(tmp) / "report.json"
            variants = {
                "raw": [sys.executable, "-c", textwrap.dedent(RAW), str(path)],
                "analyze": [sys.executable, "-c", textwrap.dedent(ANALYZE), str(path)],
                "cli": [sys.executable, "-m", "fedforensics.cli", "analyze", str(path), "--json", str(out_json)],
            }
            child(variants["raw"], path, cold=False)  # warm the page cache and the module files
            for cache in args.cache:
                results: dict[str, list[dict]] = {name: [] for name in variants}
                for repeat in range(args.repeats):
                    order = list(variants) if repeat % 2 == 0 else list(variants)[::-1]
                    for name in order:
                        results[name].append(child(variants[name], path, cold=cache == "cold", idle=args.wait_idle))
                rows.append((rounds, cache, path.stat().st_size, results))
    print("| rounds | cache | raw read | analyze() | × raw | raw process | CLI process | × raw | peak RSS raw / analyze() / CLI |")
    print("|---|---|---|---|---|---|---|---|---|")
    for rounds, cache, size, res in rows:
        def best(name: str, key: str) -> float:
            return min(r[key] for r in res[name])

        def show(name: str, key: str) -> str:
            return f"{best(name, key):.2f} s ({statistics.median(r[key] for r in res[name]):.2f})"

        peaks = " / ".join(f"{max(r['peak_mb'] for r in res[name]):.0f}" for name in ("raw", "analyze", "cli"))
        print(
            f"| {rounds} | {cache} | {show('raw', 'seconds')} | {show('analyze', 'seconds')} "
            f"| **{best('analyze', 'seconds') / best('raw', 'seconds'):.2f}×** | {show('raw', 'wall')} | {show('cli', 'wall')} "
            f"| **{best('cli', 'wall') / best('raw', 'wall'):.2f}×** | {peaks} MB |"
        )
    if args.wait_idle:
        idle = [r["idle"] for *_, res in rows for runs in res.values() for r in runs]
        print(f"\nthe CPUs were idle before {sum(idle)} of {len(idle)} measurements (waited up to {args.wait_idle:.0f} s each)")
    imports = [r["imports"] for *_, res in rows for r in res["analyze"]]
    print(f"\nimporting the detector modules (scikit-learn, scipy) in the analyze() process: best {min(imports):.2f} s, "
          f"median {statistics.median(imports):.2f} s; log size {rows[0][2] / 2**20:,.0f} MiB for {rows[0][0]} rounds")


if __name__ == "__main__":
    main()
