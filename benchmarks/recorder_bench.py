"""What the recorder costs against plain h5py, writing and reading (issue 2, point 7).

A federation of 20 clients × ~1,000,000 parameters × 20 rounds (a small CNN's
layers: two convolutions, one large dense matrix, a classifier, their biases) is
recorded, and the same arrays are written with plain h5py. Then every update is
read back with ``open_run`` and with plain h5py.

Baselines ("raw"), chosen to be the fastest honest plain-h5py equivalent:

* raw write: one file, per round a group with the global state and, per layer, one
  *contiguous* dataset ``(n_clients, *shape)`` float32 created at its final size
  (raw knows the number of clients in advance, the recorder does not), filled one
  client row at a time as the clients "arrive" (the pattern of an FL loop). Same
  arrays, same logical layout; no chunking, no resizing, no journal. With fsync,
  raw flushes and ``fsync``\\ s once per round, the recorder's durability point.
* raw read: plain h5py over the *recorder's* file (the same bytes): every update
  dataset of every round read whole (against ``run.update_matrix(r)``) or one
  client row at a time (against ``run.update(r, cid)``).

Before every write the previous file is deleted and ``sync``\\ ed; before every
cold read the page cache is dropped (``/proc/sys/vm/drop_caches`` when allowed,
and always ``posix_fadvise(DONTNEED)`` on the file). The figure is the best of
``--repeats`` repeats (the median is shown too), the variants interleaved, in
reverse order every other repeat, so that drift and order effects hit them alike.
On a virtual machine, pages the guest freed (a deleted file, a dropped cache) may
go back to the host and cost a fault on next use: a single timing can then be
several times slower, hence the repeats and the pause after dropping the cache.

Targets: recorder ≥ 0.8× raw write throughput, reader ≥ 0.8× raw read throughput.
Run: ``python benchmarks/recorder_bench.py [--quick] [--repeats N] [--dir DIR]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np

from fedforensics import open_run
from recorder import Recorder

LAYERS = {
    "conv1.weight": (32, 3, 3, 3),
    "conv1.bias": (32,),
    "conv2.weight": (64, 32, 3, 3),
    "conv2.bias": (64,),
    "fc1.weight": (512, 1904),
    "fc1.bias": (512,),
    "fc2.weight": (10, 512),
    "fc2.bias": (10,),
}
PARAMS = sum(int(np.prod(s)) for s in LAYERS.values())

Federation = tuple[list[dict[str, np.ndarray]], list[list[dict[str, np.ndarray]]]]


def federation(clients: int, rounds: int, seed: int = 0) -> Federation:
    """Global states and client updates (float32 normal noise), all held in memory."""
    rng = np.random.default_rng(seed)
    glob = [{k: rng.standard_normal(s, dtype=np.float32) for k, s in LAYERS.items()} for _ in range(rounds)]
    updates = [
        [{k: rng.standard_normal(s, dtype=np.float32) for k, s in LAYERS.items()} for _ in range(clients)]
        for _ in range(rounds)
    ]
    return glob, updates


def payload_bytes(fed: Federation) -> int:
    """Bytes of array data both writers store: every global state and every update."""
    glob, updates = fed
    return sum(a.nbytes for g in glob for a in g.values()) + sum(
        a.nbytes for rnd in updates for u in rnd for a in u.values()
    )


def evict(path: Path) -> None:
    """Push ``path`` out of the page cache (no privilege needed); other files stay cached."""
    os.sync()
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def drop_cache(path: Path) -> bool:
    """Push ``path`` out of the page cache; True when the whole page cache could be dropped too."""
    evict(path)
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        dropped = True
    except OSError:
        dropped = False
    time.sleep(0.5)  # let the freeing settle before the next timing
    return dropped


def fresh(path: Path) -> None:
    """Delete the previous output and let its write-back finish before the next timing."""
    path.unlink(missing_ok=True)
    subprocess.run(["sync"], check=True)


# -- writers ------------------------------------------------------------------------
def client_states(fed: Federation) -> list[list[dict[str, np.ndarray]]]:
    """Each client's local model (the round's global state plus its update), made before any clock starts."""
    glob, updates = fed
    return [[{k: g[k] + v for k, v in update.items()} for update in clients] for g, clients in zip(glob, updates)]


def write_recorder(path: Path, fed: Federation, fsync: bool, states: list[list[dict[str, np.ndarray]]] | None = None) -> None:
    """Record ``fed``'s updates, or with ``states`` the clients' local models (the recorder subtracts the global)."""
    glob, updates = fed
    replies = updates if states is None else states
    with Recorder(path, meta={"benchmark": "recorder"}, overwrite=True, fsync=fsync) as rec:
        for r, (g, clients) in enumerate(zip(glob, replies)):
            with rec.round(r, g) as rnd:
                for c, reply in enumerate(clients):
                    rnd.client(f"c{c}", reply, num_samples=100, metrics={"loss": 0.5}, delta=states is None)


def write_raw(path: Path, fed: Federation, fsync: bool) -> None:
    glob, updates = fed
    with h5py.File(path, "w") as f:
        fd = os.open(path, os.O_RDONLY)
        try:
            for r, (g, clients) in enumerate(zip(glob, updates)):
                group = f.create_group(f"rounds/{r:04d}")
                for name, array in g.items():
                    group.create_dataset(f"global/{name}", data=array)
                datasets = {
                    name: group.create_dataset(f"updates/{name}", (len(clients), *shape), dtype="f4")
                    for name, shape in LAYERS.items()
                }
                for c, update in enumerate(clients):
                    for name, array in update.items():
                        datasets[name][c] = array
                if fsync:
                    f.flush()
                    os.fsync(fd)
        finally:
            os.close(fd)


# -- readers ------------------------------------------------------------------------
def read_reader_rounds(path: Path) -> int:
    with open_run(path) as run:
        return sum(run.update_matrix(r).nbytes for r in run.rounds)


def read_reader_clients(path: Path) -> int:
    with open_run(path) as run:
        return sum(a.nbytes for r in run.rounds for cid in run.clients(r) for a in run.update(r, cid).values())


def read_raw_rounds(path: Path) -> int:
    with h5py.File(path, "r") as f:
        return sum(ds[()].nbytes for rnd in f["rounds"].values() for ds in rnd["updates"].values())


def read_raw_clients(path: Path) -> int:
    n = 0
    with h5py.File(path, "r") as f:
        for rnd in f["rounds"].values():
            datasets = list(rnd["updates"].values())
            for row in range(datasets[0].shape[0]):
                n += sum(ds[row].nbytes for ds in datasets)
    return n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3 rounds, 1 repeat: a smoke test of the script")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--dir", type=Path, default=None, help="where the files go (default: a temporary directory)")
    args = parser.parse_args()
    rounds, repeats = (3, 1) if args.quick else (args.rounds, args.repeats)

    fed = federation(args.clients, rounds)
    states = client_states(fed)
    mb = payload_bytes(fed) / 1e6
    update_mb = args.clients * rounds * PARAMS * 4 / 1e6
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"numpy {np.__version__}, h5py {h5py.__version__}, HDF5 {h5py.version.hdf5_version}")
    print(f"workload: {args.clients} clients × {PARAMS:,} parameters × {rounds} rounds; "
          f"{mb:,.0f} MB written (updates + global states), {update_mb:,.0f} MB of updates read")

    writers: dict[str, Callable[[Path], None]] = {
        "raw h5py, fsync per round": lambda p: write_raw(p, fed, fsync=True),
        "recorder, fsync (default)": lambda p: write_recorder(p, fed, fsync=True),
        "raw h5py, no fsync": lambda p: write_raw(p, fed, fsync=False),
        "recorder, fsync=False": lambda p: write_recorder(p, fed, fsync=False),
        "recorder, fsync, states (computes local − global)": lambda p: write_recorder(p, fed, True, states),
    }
    readers: dict[str, Callable[[Path], int]] = {
        "raw h5py, every update dataset whole": read_raw_rounds,
        "open_run + update_matrix(r) per round": read_reader_rounds,
        "raw h5py, one client row at a time": read_raw_clients,
        "open_run + update(r, cid) per client": read_reader_clients,
    }
    if args.dir is not None:
        args.dir.mkdir(parents=True, exist_ok=True)  # a folder to make, not a traceback
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        out = Path(tmp) / "bench.h5"
        wtimes: dict[str, list[float]] = {name: [] for name in writers}
        for rep in range(repeats):
            for name, write in list(writers.items())[:: -1 if rep % 2 else 1]:
                fresh(out)
                t = time.perf_counter()
                write(out)
                wtimes[name].append(time.perf_counter() - t)
        write_recorder(out, fed, fsync=True)  # the file every reader reads
        size = out.stat().st_size / 1e6
        rtimes: dict[str, dict[str, list[float]]] = {cache: {name: [] for name in readers} for cache in ("cold", "warm")}
        dropped_all = True
        for rep in range(repeats):
            for name, read in list(readers.items())[:: -1 if rep % 2 else 1]:
                dropped_all &= drop_cache(out)
                t = time.perf_counter()
                n = read(out)
                rtimes["cold"][name].append(time.perf_counter() - t)
                assert n == update_mb * 1e6, (name, n)
                t = time.perf_counter()
                read(out)
                rtimes["warm"][name].append(time.perf_counter() - t)

    print(f"recorder file: {size:,.0f} MB; cold reads: "
          + ("page cache dropped (drop_caches) before each" if dropped_all else "file evicted with posix_fadvise only"))
    print(f"best of {repeats} (median in brackets); × raw compares the best throughputs\n")
    print("| write | seconds | MB/s | × raw |\n|---|---|---|---|")
    for name in writers:
        raw = "raw h5py, no fsync" if ("fsync=False" in name or "no fsync" in name) else "raw h5py, fsync per round"
        s = min(wtimes[name])
        print(f"| {name} | {s:.2f} ({np.median(wtimes[name]):.2f}) | {mb / s:,.0f} | {min(wtimes[raw]) / s:.2f} |")
    print("\n| read every update | cold s | cold MB/s | cold × raw | warm s | warm MB/s | warm × raw |\n|---|---|---|---|---|---|---|")
    for name in readers:
        raw = "raw h5py, every update dataset whole" if "whole" in name or "matrix" in name else "raw h5py, one client row at a time"
        cells = []
        for cache in ("cold", "warm"):
            times = rtimes[cache][name]
            s = min(times)
            cells += [f"{s:.2f} ({np.median(times):.2f})", f"{update_mb / s:,.0f}", f"{min(rtimes[cache][raw]) / s:.2f}"]
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
