"""Quality floors on a third red team's federations: benchmarks/redteam/torch_archs.py, a plain-PyTorch FedAvg on
architectures the thresholds never saw (BatchNorm CNN, LayerNorm residual MLP, wide-and-deep).

The cases are rows of docs/detection.md's "A third check" table where the detectors do their job; the table also
lists where they do not (label flippers of the sequence models under label skew).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

from fedforensics import open_run  # noqa: E402
from fedforensics.analysis import analyze  # noqa: E402

HARNESS = Path(__file__).resolve().parents[1] / "benchmarks" / "redteam" / "torch_archs.py"
CASES = {
    # sign flippers among a CNN's BatchNorm buffers, label-skewed shards
    "bncnn-signflip": "bncnn dir0.3 signflip 2",
    # label flippers of a residual MLP with LayerNorm, label-skewed shards
    "resln-labelflip": "resln dir0.3 labelflip 4",
    # inner-product manipulation on a wide-and-deep model whose head comes first in its state dict
    "wide-ipm": "wide iid ipm 5",
    # no attacker: Dirichlet 0.1, 8 of 12 clients a round
    "bncnn-clean-skew": "bncnn dir0.1 none 1 --per-round 8",
}


@pytest.mark.parametrize("name", list(CASES))
def test_every_attacker_found_and_no_honest_client_flagged(name, tmp_path):
    path = tmp_path / f"{name}.h5"
    subprocess.run([sys.executable, str(HARNESS), str(path), *CASES[name].split()], check=True, capture_output=True)
    with open_run(path) as run:
        truth = run.ground_truth
        report = analyze(run)
    judged = {v.client: v.verdict for v in report.verdicts}
    assert all(judged[c] != "benign" for c in truth), judged
    assert [c for c, v in judged.items() if v != "benign" and c not in truth] == []
    assert len(truth) == (0 if "clean" in name else 2)
