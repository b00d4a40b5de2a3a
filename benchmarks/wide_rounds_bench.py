"""Peak memory of ``analyze`` against the clients of a round: logs of C clients a round of a 16-layer tiny model.

    python benchmarks/wide_rounds_bench.py [--clients 500 1000 2000 3000] [--print]

Whatever compares the clients of a round pairwise holds clients² numbers: the whole updates' Gram matrix, the
cosine distances, HDBSCAN's copy. This measures how far that goes on rounds of thousands (a cross-device round),
where the model is tiny (16 layers of 8 parameters) so that the clients² terms are all there is. Each log (4
rounds, the same C clients every round) is analysed in a process of its own; its peak resident memory, that
of the process before ``analyze`` (interpreter, libraries, the open run) and the time of ``analyze`` are
written between the ``wide-rounds`` markers of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from recorder import Recorder
from scenarios import publish

DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
LAYERS = 16
ROUNDS = 4

#: Run in a fresh interpreter: the peak resident memory of the analysis alone.
MEASURE = """
import json, resource, sys, time
from fedforensics import open_run
from fedforensics.analysis import analyze, default_detectors
import scipy.linalg.blas, sklearn.cluster  # imported before the baseline: libraries are not the analysis
default_detectors()
with open_run(sys.argv[1]) as run:
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    report = analyze(run)
    seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
flagged = sum(v.verdict != "benign" for v in report.verdicts)
print(json.dumps({"seconds": seconds, "base_mb": base / 1024, "peak_mb": peak / 1024, "flagged": flagged}))
"""


def record(path: Path, clients: int) -> None:
    rng = np.random.default_rng(clients)
    state = {f"layer{i}.weight": np.zeros(8, np.float32) for i in range(LAYERS)}
    shared = {name: rng.normal(size=8).astype(np.float32) for name in state}  # what honest clients agree on
    with Recorder(path, fsync=False) as rec:
        for r in range(ROUNDS):
            with rec.round(r, state) as rnd:
                for c in range(clients):
                    update = {name: shared[name] + rng.normal(size=8).astype(np.float32) for name in state}
                    rnd.client(f"c{c}", update, num_samples=10, delta=True)


def measure(path: Path) -> dict[str, float]:
    done = subprocess.run([sys.executable, "-c", MEASURE, str(path)], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"analysing {path.name} failed: {done.stderr.strip()}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measured_rows(sizes: list[int], record: Callable[[Path, int], None], row: Callable[[int, dict], str]) -> list[str]:
    """For each size, record a log (``record(path, size)``), analyse it in a process of its own (:func:`measure`) and
    make its table row (``row(size, measured)``), printed as it comes."""
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for size in sizes:
            path = Path(folder) / f"log{size}.h5"
            record(path, size)
            rows.append(row(size, measure(path)))
            print(rows[-1], flush=True)
    return rows


def bench_main(doc: str, sizes: list[int], header: str, record: Callable[[Path, int], None],
               row: Callable[[int, dict], str], marker: str) -> None:
    """A clients² benchmark's command line: ``--clients`` sizes (default ``sizes``), a table of ``header`` and one
    :func:`measured_rows` row a size, written between ``marker``'s markers of docs/benchmarks.md (or ``--print``; other
    sizes than the table's are printed alone)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--clients", type=int, nargs="+", default=sizes, help=f"the sizes (default: {sizes}; others are printed)")
    parser.add_argument("--print", action="store_true", help="print the table instead of writing benchmarks.md")
    args = parser.parse_args()
    separator = "|" + "---|" * header.count(" | ") + "---|"
    table = "\n".join([header, separator, *measured_rows(args.clients, record, row)])
    publish(table, DOC, marker, args.print, "--clients" if args.clients != sizes else "")


def row(clients: int, got: dict) -> str:
    return (
        f"| {clients:,} | {got['seconds']:.1f} s | {got['peak_mb']:,.0f} MB | {got['base_mb']:,.0f} MB "
        f"| {clients**2 * 8 / 2**20:,.0f} MB | {got['flagged']} |"
    )


if __name__ == "__main__":
    bench_main(
        __doc__, [500, 1000, 2000, 3000],
        "| clients a round | analyze() | peak memory | before analyze() | clients² × 8 bytes | flagged |",
        record, row, "wide-rounds",
    )  # fmt: skip
