"""Quality floors on a second red team's federations: benchmarks/redteam/numpy_mlp.py, a numpy FedAvg of an
MLP on synthetic data, written apart from fedforensics and from the first red team (no torch).

The cases are rows of docs/detection.md's "A second red team" table where the detectors do their job; the
table also lists where they do not (strong label skew, sign flipping under persistent label skew).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from redteam_floor import assert_attackers_found_and_honest_clients_not

from fedforensics import open_run
from fedforensics.analysis import analyze

HARNESS = Path(__file__).resolve().parents[1] / "benchmarks" / "redteam" / "numpy_mlp.py"
SKEWED = "--clients 20 --rounds 20 --alpha 0.5 --qty 0.5 --samples 300 --n-mal 4 --metrics"
CASES = {
    # "a little is enough" (Baruch et al. 2019): 4 of 20 send mean - z·std of the honest updates
    "alie": f"{SKEWED} --attack alie --seed 0",
    # inner-product manipulation (Xie et al. 2020): -0.5 × the honest mean
    "ipm": f"{SKEWED} --attack ipm --seed 1",
    # min-sum (Shejwalkar & Houmansadr 2021) along -std
    "min-sum": f"{SKEWED} --attack minsum --seed 0",
    # min-max, the same paper's other crafted update
    "min-max": f"{SKEWED} --attack minmax --seed 1",
    # sybils: one update shifted by half the honest mean, each with its own small jitter
    "sybil": f"{SKEWED} --attack sybil --seed 1",
    # Fang et al. 2020's full-knowledge attacks on trimmed mean and on Krum (added after every threshold was set)
    "fang-trim": f"{SKEWED} --attack fang_trim --seed 1",
    "fang-krum": f"{SKEWED} --attack fang_krum --seed 1",
    # ×10 boosted updates in every round
    "scale": f"{SKEWED} --attack scale --seed 0",
    # sign flipping where the clients' differences do not persist (256 hidden units, batch 8, one epoch)
    "sign-flip": "--clients 20 --rounds 20 --alpha 0.5 --hidden 256 --batch 8 --lr 0.1 --samples 100 --epochs 1 "
    "--metrics --attack signflip --n-mal 4 --seed 0",
    # no attacker, Dirichlet 0.1: two honest clients were malicious on a standalone flag plus output-bias
    "clean-label-skew": "--clients 10 --rounds 20 --alpha 0.1 --metrics --seed 10",
    # no attacker, 40 IID silos of lognormal sizes (σ 2: 0.3–50× the median): the largest were malicious on
    # norm and mean-copy until magnitudes were compared as at the round's median sample count
    "clean-quantity-skew": "--clients 40 --rounds 15 --qty 2.0 --seed 5",
    # 5 sign flippers among 50 clients at Dirichlet 0.3, every client in every round (the large rounds)
    "sign-flip-50": "--clients 50 --alpha 0.3 --metrics --seed 0 --rounds 20 --samples 200 --attack signflip --n-mal 5",
}


@pytest.mark.parametrize("name", list(CASES))
def test_every_attacker_found_and_no_honest_client_flagged(name, tmp_path):
    attackers = 0 if name.startswith("clean") else 5 if name.endswith("-50") else 4
    assert_attackers_found_and_honest_clients_not(HARNESS, CASES[name], tmp_path / f"{name}.h5", attackers)


def test_no_honest_client_is_malicious_in_large_label_skewed_rounds(tmp_path):
    """50 clients at Dirichlet 0.3, about 60 samples each, no attacker: four honest clients holding nearly one
    class were malicious (outside FLAME's cluster and near copies of each other, in a run whose differences
    persist); FLAME's vote counts as no family there. They stay suspicious: the floor is what was measured."""
    path = tmp_path / "large.h5"
    subprocess.run(
        [sys.executable, str(HARNESS), str(path), *"--clients 50 --alpha 0.3 --metrics --seed 1 --rounds 20 --samples 60".split()],
        check=True, capture_output=True,
    )
    with open_run(path) as run:
        report = analyze(run)
    verdicts = [v.verdict for v in report.verdicts]
    assert len(verdicts) == 50 and "malicious" not in verdicts and verdicts.count("suspicious") <= 4, verdicts
