"""A sixteenth check's federations (docs/detection.md, "A sixteenth check"): an outside evaluator's own FedAvg, audited.

    python benchmarks/sixteenth_bench.py [--jobs 1] [--print] [--only PATTERN ...]

Records what ``benchmarks/.cache/sixteenth/`` (``$FEDFORENSICS_BENCH_CACHE/sixteenth``) lacks of
``redteam/sixteenth_runs.txt`` (62 federations of ``redteam/sixteenth_fedavg.py``, a plain-PyTorch FedAvg of a
red-teamer blind to the detectors: ALIE, min-max, min-sum, sybils, backdoors and model replacement as the papers
send them, odd client ids, partial participation; about 7 minutes on one core), audits each with the default
detectors and rewrites the table between the ``sixteenth-redteam`` markers of docs/detection.md.
"""

from __future__ import annotations

from scenarios import red_team_bench

if __name__ == "__main__":
    red_team_bench(__doc__.splitlines()[0], "sixteenth_fedavg.py", "sixteenth_runs.txt", "sixteenth", "sixteenth-redteam")
