"""A fifth red team's federations: numpy FedAvg on scikit-learn's digits written apart (``redteam/digits_numpy.py``), audited.

    python benchmarks/digits_bench.py [--jobs 2] [--print] [--only PATTERN ...]

Simulates what ``benchmarks/.cache/digits/`` lacks of ``redteam/digits_runs.txt`` (186 federations, about
6 minutes on 2 cores), audits each with the default detectors and rewrites the table between the
``digits-redteam`` markers of docs/detection.md: per group of federations (the name without its seed),
the attackers found and the honest clients flagged, with the detectors that flagged them.
"""

from __future__ import annotations

from scenarios import red_team_bench

if __name__ == "__main__":
    red_team_bench(__doc__.splitlines()[0], "digits_numpy.py", "digits_runs.txt", "digits", "digits-redteam")
