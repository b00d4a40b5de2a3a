"""A second red team's federations: a numpy MLP written apart from everything else (``redteam/numpy_mlp.py``), audited.

    python benchmarks/numpy_bench.py [--jobs 2] [--print] [--only PATTERN ...]

Simulates what ``benchmarks/.cache/numpy/`` lacks of ``redteam/numpy_runs.txt`` (160 federations, about
7 minutes on 2 cores), audits each with the default detectors and rewrites the table between the
``numpy-redteam`` markers of docs/detection.md: per group of federations (the name without its seed),
the attackers found and the honest clients flagged, with the detectors that flagged them.
"""

from __future__ import annotations

from scenarios import red_team_bench

if __name__ == "__main__":
    red_team_bench(__doc__.splitlines()[0], "numpy_mlp.py", "numpy_runs.txt", "numpy", "numpy-redteam")
