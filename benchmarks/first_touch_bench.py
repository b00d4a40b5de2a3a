"""How long a fresh process takes to fault in an 80 MB float32 buffer, by the way its pages are taken.

An analysis of 20 clients × 1M parameters holds two such buffers (the round's updates and the clients'
accumulated directions), first written in the first round; docs/benchmarks.md ("On another machine") asks
whether the time that first touch takes can be cut. Each measurement allocates the buffer and adds 1 to every
element once, in a process of its own (a reused buffer is faulted in already), the ways interleaved:

* **numpy**: ``np.zeros`` as the analysis allocates (numpy advises huge pages for large arrays);
* **numpy, no huge pages**: the same with numpy's huge-page advice switched off;
* **populate**: an anonymous ``mmap`` whose pages the kernel takes in one call (``MAP_POPULATE``, small pages);
* **huge mmap**: an anonymous ``mmap`` advised for huge pages (``MADV_HUGEPAGE``) before its first write.

Run: ``python benchmarks/first_touch_bench.py [--repeats 8] [--megabytes 80]`` (Linux; a few seconds).
"""

from __future__ import annotations

import argparse
import subprocess
import sys

WAYS = {"numpy": "numpy", "numpy, no huge pages": "nohuge", "populate": "populate", "huge mmap": "hugemmap"}


def touch(way: str, size: int) -> float:
    """Milliseconds to allocate ``size`` bytes ``way`` and write every float32 of them once."""
    import mmap
    import time

    import numpy as np

    if way == "nohuge":
        (getattr(np, "_core", None) or np.core).multiarray._set_madvise_hugepage(False)  # numpy 2 and 1
    start = time.perf_counter()
    if way in ("numpy", "nohuge"):
        buffer = np.zeros(size // 4, np.float32)
    else:
        flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | (mmap.MAP_POPULATE if way == "populate" else 0)
        memory = mmap.mmap(-1, size, flags=flags)
        if way == "hugemmap":
            memory.madvise(mmap.MADV_HUGEPAGE)
        buffer = np.frombuffer(memory, np.float32)
    buffer += 1
    return (time.perf_counter() - start) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=8)
    parser.add_argument("--megabytes", type=int, default=80)
    parser.add_argument("--way", choices=sorted(WAYS.values()), help=argparse.SUPPRESS)  # one measurement, in a child
    args = parser.parse_args()
    size = args.megabytes * 1_000_000
    if args.way:
        print(touch(args.way, size))
        return
    times: dict[str, list[float]] = {name: [] for name in WAYS}
    for _ in range(args.repeats):
        for name, way in WAYS.items():
            command = [sys.executable, __file__, "--way", way, "--megabytes", str(args.megabytes)]
            times[name].append(float(subprocess.run(command, capture_output=True, text=True, check=True).stdout))
    print(f"| {args.megabytes} MB, first touch in a fresh process | fastest | median | slowest |")
    print("|---|---|---|---|")
    for name, values in times.items():
        values.sort()
        print(f"| {name} | {values[0]:.0f} ms | {values[len(values) // 2]:.0f} ms | {values[-1]:.0f} ms |")


if __name__ == "__main__":
    main()
