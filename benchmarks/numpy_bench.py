"""A second red team's federations: a numpy MLP written apart from everything else (``redteam/numpy_mlp.py``), audited.

    python benchmarks/numpy_bench.py [--jobs 2] [--print]

Simulates what ``benchmarks/.cache/numpy/`` lacks of ``redteam/numpy_runs.txt`` (88 federations, about
2 minutes on 2 cores), audits each with the default detectors and rewrites the table between the
``numpy-redteam`` markers of docs/detection.md: per group of federations (the name without its seed),
the attackers found and the honest clients flagged, with the detectors that flagged them.
"""

from __future__ import annotations

import sys
from pathlib import Path

from scenarios import CACHE, listed_federations, listed_table, publish

HERE = Path(__file__).resolve().parent
DOC = HERE.parent / "docs" / "detection.md"
RUNS = HERE / "redteam" / "numpy_runs.txt"
OUT = CACHE / "numpy"


def main() -> None:
    args, runs, paths = listed_federations(__doc__.splitlines()[0], RUNS, OUT, [sys.executable, str(HERE / "redteam" / "numpy_mlp.py"), "OUT"], DOC)
    publish(listed_table(list(runs), paths, args.jobs), DOC, "numpy-redteam", args.print)


if __name__ == "__main__":
    main()
