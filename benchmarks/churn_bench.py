"""A sixth red team's federations: identity churn, windows, long runs, FoolsGold's setting (``redteam/churn_fedavg.py``), audited.

    python benchmarks/churn_bench.py [--jobs 2] [--print] [--only PATTERN ...]

Simulates what ``benchmarks/.cache/churn/`` lacks of ``redteam/churn_runs.txt`` (84 federations, about
25 minutes on 2 cores), audits each with the default detectors and rewrites the table between the
``churn-redteam`` markers of docs/detection.md: per group of federations (the name without its seed),
the attackers found and the honest clients flagged, with the detectors that flagged them.
"""

from __future__ import annotations

from scenarios import red_team_bench

if __name__ == "__main__":
    red_team_bench(__doc__.splitlines()[0], "churn_fedavg.py", "churn_runs.txt", "churn", "churn-redteam")
