"""A fourth red team's federations: published stealthy backdoors (``redteam/stealthy_backdoors.py``), audited.

    python benchmarks/backdoors_bench.py [--jobs 2] [--print] [--only PATTERN ...]

Simulates what ``benchmarks/.cache/backdoors/`` lacks of ``redteam/backdoors_runs.txt`` (56 federations of a
digits CNN: Neurotoxin, constrain-and-scale, PGD with an edge-case backdoor, a semantic backdoor, and clean
ones; about 10 minutes on 2 cores), audits each with the default detectors and rewrites the table between the
``backdoors-redteam`` markers of docs/detection.md.
"""

from __future__ import annotations

from scenarios import red_team_bench

if __name__ == "__main__":
    red_team_bench(__doc__.splitlines()[0], "stealthy_backdoors.py", "backdoors_runs.txt", "backdoors", "backdoors-redteam")
