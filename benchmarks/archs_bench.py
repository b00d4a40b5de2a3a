"""A third red team's federations: plain-PyTorch FedAvg on five architectures (``redteam/torch_archs.py``), audited.

    python benchmarks/archs_bench.py [--jobs 2] [--print] [--only PATTERN ...]

Simulates what ``benchmarks/.cache/archs/`` lacks of ``redteam/archs_runs.txt`` (46 federations: a CNN
with BatchNorm, a residual MLP with LayerNorm, an Embedding + GRU, a one-layer transformer encoder and a
wide-and-deep model; about 5 minutes on 2 cores), audits each with the default detectors and rewrites
the table between the ``archs-redteam`` markers of docs/detection.md.
"""

from __future__ import annotations

from scenarios import red_team_bench

if __name__ == "__main__":
    red_team_bench(__doc__.splitlines()[0], "torch_archs.py", "archs_runs.txt", "archs", "archs-redteam")
