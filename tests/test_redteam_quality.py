"""Quality floors on federations the simulator did not make: benchmarks/redteam/fedavg.py, a FedAvg
loop written apart from fedforensics (its own models, tabular data, split, ids and attacks).

The two cases are rows of docs/detection.md's red-team table where the detectors do their job; the
table also lists where they do not (clean label-skewed softmax regression, the tabular backdoor).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

from fedforensics import open_run  # noqa: E402
from fedforensics.analysis import analyze  # noqa: E402
from fedforensics.evaluate import CONSENSUS, evaluate_report  # noqa: E402

HARNESS = Path(__file__).resolve().parents[1] / "benchmarks" / "redteam" / "fedavg.py"
CASES = {
    # inner-product manipulation (Xie et al. 2020): 2 of 10 send -0.5 x the honest mean
    "ipm-tabular-mlp-iid": "--data tab --model mlpln --partition iid --clients 10 --rounds 20 --attack ipm --ids hospital",
    # label flipping on Dirichlet 0.5 shards, an MLP with LayerNorm
    "labelflip-tabular-mlp-dirichlet": "--data tab --model mlpln --partition dir --clients 10 --rounds 20 --attack labelflip --ids hospital",
}


@pytest.mark.parametrize("name", list(CASES))
def test_every_attacker_found_and_no_honest_client_flagged(name, tmp_path):
    path = tmp_path / f"{name}.h5"
    subprocess.run([sys.executable, str(HARNESS), "--out", str(path), *CASES[name].split()], check=True, capture_output=True)
    with open_run(path) as run:
        truth = run.ground_truth
        report = analyze(run)
    judged = {v.client: v.verdict for v in report.verdicts}
    assert len(truth) == 2 and all(judged[c] != "benign" for c in truth), judged
    assert [c for c, v in judged.items() if v != "benign" and c not in truth] == []
    consensus = next(j for j in evaluate_report(report, truth).judgements if j.name == CONSENSUS)
    assert consensus.auroc is not None and consensus.auroc >= 0.9
