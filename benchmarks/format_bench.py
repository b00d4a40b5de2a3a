"""Which layout and which compression the run format uses, by measurement (issue 2, point 3).

Part 1, layout. The same updates (20 clients × ~1,000,000 parameters in 8 layers,
5 rounds, float32 normal noise) are stored in several layouts with plain h5py
(clients written one at a time, as an FL loop delivers them), then read in the
access patterns the analyzer and users have, from a cold page cache (the file is
opened first, then the cache is dropped, so only the access itself is timed):

* one round, every client, every layer, as a clients × parameters matrix;
* one layer, every client of a round, for a small layer (conv2.weight, 73 KB a
  client) and for the large one (fc1.weight, 3.9 MB a client);
* one client's update in a round.

Besides the time, the bytes HDF5 asks the file for are counted (through a file
object that counts what it reads): what each layout makes the reader fetch, free
of the kernel's read-ahead. The chosen layout is also read through fedforensics'
reader (``open_run``), on a file the recorder wrote.

Part 2, compression. On real updates (a CNN and an MLP trained with FedAvg on
scikit-learn's digits, 20 clients, 2 local epochs, from a common start) and on
float32 normal noise, every update is written in the chosen layout with each
filter, then read back whole: write and read throughput (of the uncompressed
bytes) and the size on disk.

Run: ``python benchmarks/format_bench.py [--quick] [--part layout|compression]``.
"""

from __future__ import annotations

import argparse
import io
import os
import time
from collections.abc import Callable
from pathlib import Path
from tempfile import TemporaryDirectory

import h5py
import hdf5plugin
import numpy as np
from recorder_bench import LAYERS, PARAMS, drop_cache, fresh

from fedforensics import open_run
from recorder import Recorder

Updates = list[list[dict[str, np.ndarray]]]  # [round][client] -> layer name -> update
SMALL, LARGE = "conv2.weight", "fc1.weight"


def noise(clients: int, rounds: int, seed: int = 0) -> Updates:
    rng = np.random.default_rng(seed)
    return [[{k: rng.standard_normal(s, dtype=np.float32) for k, s in LAYERS.items()} for _ in range(clients)]
            for _ in range(rounds)]


def columns() -> dict[str, slice]:
    """Where each layer sits in a flattened clients × parameters row."""
    out, col = {}, 0
    for name, shape in LAYERS.items():
        size = int(np.prod(shape))
        out[name] = slice(col, col + size)
        col += size
    return out


# -- layouts --------------------------------------------------------------------------
class PerLayer:
    """Per round, one ``(n_clients, *shape)`` dataset per layer."""

    def __init__(self, chunks: str | None) -> None:
        self.chunks = chunks  # "row": (1, *shape); "auto": h5py's guess; None: contiguous

    def write(self, f: h5py.File, key: str, clients: list[dict[str, np.ndarray]]) -> None:
        n = len(clients)
        chunks = {"row": lambda s: (1, *s), "auto": lambda s: True, None: lambda s: None}[self.chunks]
        tables = {name: f.create_dataset(f"{key}/{name}", (n, *s), "f4", chunks=chunks(s)) for name, s in LAYERS.items()}
        for row, update in enumerate(clients):
            for name, array in update.items():
                tables[name][row] = array

    def round(self, f: h5py.File, key: str) -> np.ndarray:
        group = f[key]
        n = group[SMALL].shape[0]
        out = np.empty((n, PARAMS), np.float32)
        for name, cols in columns().items():
            out[:, cols] = group[name][()].reshape(n, -1)
        return out

    def layer(self, f: h5py.File, key: str, name: str) -> np.ndarray:
        return f[key][name][()]

    def client(self, f: h5py.File, key: str, row: int) -> dict[str, np.ndarray]:
        return {name: f[key][name][row] for name in LAYERS}


class Matrix:
    """Per round, one ``(n_clients, n_parameters)`` dataset, layers side by side."""

    def __init__(self, chunks: str | None) -> None:
        self.chunks = chunks  # "row": (1, n_parameters); None: contiguous

    def write(self, f: h5py.File, key: str, clients: list[dict[str, np.ndarray]]) -> None:
        table = f.create_dataset(key, (len(clients), PARAMS), "f4", chunks=(1, PARAMS) if self.chunks else None)
        for row, update in enumerate(clients):
            table[row] = np.concatenate([a.ravel() for a in update.values()])

    def round(self, f: h5py.File, key: str) -> np.ndarray:
        return f[key][()]

    def layer(self, f: h5py.File, key: str, name: str) -> np.ndarray:
        table = f[key]
        return table[:, columns()[name]].reshape(table.shape[0], *LAYERS[name])

    def client(self, f: h5py.File, key: str, row: int) -> dict[str, np.ndarray]:
        flat = f[key][row]
        return {name: flat[cols].reshape(LAYERS[name]) for name, cols in columns().items()}


class PerClient:
    """Per round and client, one contiguous dataset per layer."""

    def write(self, f: h5py.File, key: str, clients: list[dict[str, np.ndarray]]) -> None:
        for row, update in enumerate(clients):
            for name, array in update.items():
                f.create_dataset(f"{key}/{row:04d}/{name}", data=array)

    def round(self, f: h5py.File, key: str) -> np.ndarray:
        group = f[key]
        out = np.empty((len(group), PARAMS), np.float32)
        for row, client in enumerate(group.values()):
            for name, cols in columns().items():
                out[row, cols] = client[name][()].ravel()
        return out

    def layer(self, f: h5py.File, key: str, name: str) -> np.ndarray:
        return np.stack([client[name][()] for client in f[key].values()])

    def client(self, f: h5py.File, key: str, row: int) -> dict[str, np.ndarray]:
        return {name: ds[()] for name, ds in f[key][f"{row:04d}"].items()}


LAYOUTS = {
    "per layer (n, *shape), one chunk per client row [chosen]": PerLayer("row"),
    "per layer (n, *shape), h5py's automatic chunks": PerLayer("auto"),
    "per layer (n, *shape), contiguous": PerLayer(None),
    "per round matrix (n, P), one chunk per client row": Matrix("row"),
    "per round matrix (n, P), contiguous": Matrix(None),
    "per client and layer, contiguous datasets": PerClient(),
}


class CountingFile(io.RawIOBase):
    """A read-only file object for h5py that counts the bytes HDF5 reads."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self._fd = os.open(path, os.O_RDONLY)
        self._pos = 0
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._pos = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: os.fstat(self._fd).st_size}[whence] + offset
        return self._pos

    def tell(self) -> int:
        return self._pos

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def, override]
        n = os.preadv(self._fd, [memoryview(buffer).cast("B")], self._pos)
        self._pos += n
        self.bytes_read += n
        return n

    def close(self) -> None:
        if not self.closed:
            os.close(self._fd)
        super().close()


def cold(path: Path, opener: Callable[[Path], object], access: Callable[[object], object], repeats: int) -> float:
    """Best time of ``access`` on a freshly opened file, the page cache dropped after opening."""
    times = []
    for _ in range(repeats):
        handle = opener(path)
        drop_cache(path)
        t = time.perf_counter()
        access(handle)
        times.append(time.perf_counter() - t)
        handle.close()  # type: ignore[attr-defined]
    return min(times)


def layout_part(clients: int, rounds: int, repeats: int, tmp: Path) -> None:
    updates = noise(clients, rounds)
    mid = rounds // 2
    key = f"r{mid:04d}"
    print(f"\n### Layout: {clients} clients × {PARAMS:,} parameters × {rounds} rounds, round {mid} read; best of {repeats}\n")
    print("| layout | write MB/s | round: ms (MB read) | small layer: ms (MB read) | large layer: ms (MB read) "
          "| one client: ms (MB read) |")
    print("|---|---|---|---|---|---|")
    total = clients * rounds * PARAMS * 4 / 1e6
    patterns: dict[str, Callable] = {
        "round": lambda lay, f: lay.round(f, key),
        "small": lambda lay, f: lay.layer(f, key, SMALL),
        "large": lambda lay, f: lay.layer(f, key, LARGE),
        "client": lambda lay, f: lay.client(f, key, clients // 2),
    }
    for label, layout in LAYOUTS.items():
        path = tmp / "layout.h5"
        times = []
        for _ in range(repeats):
            fresh(path)
            t = time.perf_counter()
            with h5py.File(path, "w") as f:
                for r, round_updates in enumerate(updates):
                    layout.write(f, f"r{r:04d}", round_updates)
            times.append(time.perf_counter() - t)
        cells = [f"{total / min(times):,.0f}"]
        for access in patterns.values():
            seconds = cold(path, lambda p: h5py.File(p, "r"), lambda f, a=access: a(layout, f), repeats)
            with CountingFile(path) as counter, h5py.File(counter, "r") as f:
                before = counter.bytes_read
                access(layout, f)
                cells.append(f"{seconds * 1e3:,.0f} ({(counter.bytes_read - before) / 1e6:,.2f})")
        print(f"| {label} | " + " | ".join(cells) + " |")
    # The chosen layout as the recorder writes it and fedforensics reads it.
    path = tmp / "recorded.h5"
    times = []
    for _ in range(repeats):
        fresh(path)
        t = time.perf_counter()
        with Recorder(path, overwrite=True, fsync=False) as rec:
            zero = {k: np.zeros(s, np.float32) for k, s in LAYERS.items()}
            for r, round_updates in enumerate(updates):
                with rec.round(r, zero) as rnd:
                    for c, update in enumerate(round_updates):
                        rnd.client(f"c{c}", update, num_samples=1, delta=True)
        times.append(time.perf_counter() - t)
    reads: dict[str, Callable] = {
        "round": lambda run: run.update_matrix(mid, run.layers),
        "small": lambda run: run.layer_updates(mid, SMALL),
        "large": lambda run: run.layer_updates(mid, LARGE),
        "client": lambda run: run.update(mid, f"c{clients // 2}"),
    }
    cells = [f"{total / min(times):,.0f} (with global states, fsync off)"]
    for access in reads.values():
        cells.append(f"{cold(path, open_run, access, repeats) * 1e3:,.0f}")
    print("| the chosen layout, written by `Recorder`, read by `open_run` | " + " | ".join(cells) + " |")


# -- compression ----------------------------------------------------------------------
def digits_updates(model: str, clients: int, rounds: int, epochs: int = 2, seed: int = 0) -> Updates:
    """Client updates of a real FedAvg run on scikit-learn's digits (IID shards, common start)."""
    import torch
    from sklearn.datasets import load_digits
    from torch import nn

    torch.set_num_threads(1)
    torch.manual_seed(seed)
    x, y = load_digits(return_X_y=True)
    x = torch.tensor(x / 16.0, dtype=torch.float32)
    y = torch.tensor(y)
    if model == "cnn":
        x = x.reshape(-1, 1, 8, 8)
        net = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(256, 512), nn.ReLU(), nn.Linear(512, 10),
        )
    else:
        net = nn.Sequential(nn.Linear(64, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, 10))
    shards = np.array_split(np.random.default_rng(seed).permutation(len(y)), clients)
    global_state = {k: v.clone() for k, v in net.state_dict().items()}
    out: Updates = []
    for _ in range(rounds):
        round_updates = []
        for shard in shards:
            net.load_state_dict(global_state)
            opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
            for _ in range(epochs):
                for batch in torch.from_numpy(np.random.default_rng(len(out)).permutation(shard)).split(32):
                    opt.zero_grad()
                    nn.functional.cross_entropy(net(x[batch]), y[batch]).backward()
                    opt.step()
            round_updates.append({k: (v - global_state[k]).numpy().copy() for k, v in net.state_dict().items()})
        weights = np.array([len(s) for s in shards], np.float32) / len(y)
        for k in global_state:
            global_state[k] = global_state[k] + sum(float(w) * torch.from_numpy(u[k]) for w, u in zip(weights, round_updates))
        out.append(round_updates)
    return out


FILTERS: dict[str, dict] = {
    "none": {},
    "lzf": {"compression": "lzf"},
    "lzf + shuffle": {"compression": "lzf", "shuffle": True},
    "gzip 4": {"compression": "gzip", "compression_opts": 4},
    "gzip 4 + shuffle": {"compression": "gzip", "compression_opts": 4, "shuffle": True},
    "blosc lz4 5 + byte shuffle": dict(hdf5plugin.Blosc("lz4", 5, hdf5plugin.Blosc.SHUFFLE)),
    "blosc zstd 5 + byte shuffle": dict(hdf5plugin.Blosc("zstd", 5, hdf5plugin.Blosc.SHUFFLE)),
}


def write_filtered(path: Path, updates: Updates, options: dict) -> None:
    """The chosen layout, one row chunk per client and layer, with a filter."""
    with h5py.File(path, "w") as f:
        for r, clients in enumerate(updates):
            tables = {
                name: f.create_dataset(f"r{r:04d}/{name}", (len(clients), *a.shape), "f4", chunks=(1, *a.shape), **options)
                for name, a in clients[0].items()
            }
            for row, update in enumerate(clients):
                for name, array in update.items():
                    tables[name][row] = array


def read_all(path: Path) -> int:
    with h5py.File(path, "r") as f:
        return sum(ds[()].nbytes for rnd in f.values() for ds in rnd.values())


def compression_part(clients: int, rounds: int, repeats: int, tmp: Path) -> None:
    data = {
        "digits CNN": digits_updates("cnn", clients, rounds),
        "digits MLP": digits_updates("mlp", clients, rounds),
        "normal noise": noise(clients, max(1, rounds // 4)),
    }
    print(f"\n### Compression: {clients} clients; best of {repeats}\n")
    print("| data | filter | size (× none) | write MB/s | cold read MB/s | warm read MB/s |")
    print("|---|---|---|---|---|---|")
    path = tmp / "filtered.h5"
    for label, updates in data.items():
        raw = sum(a.nbytes for clients_ in updates for u in clients_ for a in u.values())
        zeros = sum(int(np.count_nonzero(a == 0)) for clients_ in updates for u in clients_ for a in u.values())
        params = sum(a.size for a in updates[0][0].values())
        label = f"{label} ({params:,} parameters × {len(updates)} rounds, {raw / 1e6:,.0f} MB, {zeros * 4 / raw:.1%} zeros)"
        size_none = None
        for name, options in FILTERS.items():
            writes, colds, warms = [], [], []
            for _ in range(repeats):
                fresh(path)
                t = time.perf_counter()
                write_filtered(path, updates, options)
                writes.append(time.perf_counter() - t)
                drop_cache(path)
                t = time.perf_counter()
                assert read_all(path) == raw
                colds.append(time.perf_counter() - t)
                t = time.perf_counter()
                read_all(path)
                warms.append(time.perf_counter() - t)
            size = path.stat().st_size
            size_none = size_none or size
            print(f"| {label} | {name} | {size / 1e6:,.1f} MB ({size / size_none:.3f}) | {raw / 1e6 / min(writes):,.0f} "
                  f"| {raw / 1e6 / min(colds):,.0f} | {raw / 1e6 / min(warms):,.0f} |")
            label = ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer rounds, one repeat: a smoke test of the script")
    parser.add_argument("--part", choices=["layout", "compression"], help="only this part (default: both)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=None, help="where the files go (default: a temporary directory)")
    args = parser.parse_args()
    repeats = 1 if args.quick else args.repeats
    print(f"h5py {h5py.__version__}, HDF5 {h5py.version.hdf5_version}, hdf5plugin {hdf5plugin.version}, "
          f"{os.cpu_count()} cores")
    if args.dir is not None:
        args.dir.mkdir(parents=True, exist_ok=True)  # a folder to make, not a traceback
    with TemporaryDirectory(dir=args.dir) as tmp:
        if args.part in (None, "layout"):
            layout_part(20, 2 if args.quick else 5, repeats, Path(tmp))
        if args.part in (None, "compression"):
            compression_part(20, 2 if args.quick else 12, repeats, Path(tmp))


if __name__ == "__main__":
    main()
