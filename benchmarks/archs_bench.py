"""A third red team's federations: plain-PyTorch FedAvg on five architectures (``redteam/torch_archs.py``), audited.

    python benchmarks/archs_bench.py [--jobs 2] [--print]

Simulates what ``benchmarks/.cache/archs/`` lacks of ``redteam/archs_runs.txt`` (46 federations: a CNN
with BatchNorm, a residual MLP with LayerNorm, an Embedding + GRU, a one-layer transformer encoder and a
wide-and-deep model; about 5 minutes on 2 cores), audits each with the default detectors and rewrites
the table between the ``archs-redteam`` markers of docs/detection.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

from scenarios import CACHE, listed_federations, listed_table, publish

HERE = Path(__file__).resolve().parent
DOC = HERE.parent / "docs" / "detection.md"
RUNS = HERE / "redteam" / "archs_runs.txt"
OUT = CACHE / "archs"


def main() -> None:
    command = [sys.executable, str(HERE / "redteam" / "torch_archs.py"), "OUT"]
    args, runs, paths = listed_federations(__doc__.splitlines()[0], RUNS, OUT, command, DOC)
    publish(listed_table(list(runs), paths, args.jobs), DOC, "archs-redteam", args.print)


if __name__ == "__main__":
    main()
