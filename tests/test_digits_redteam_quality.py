"""Quality floors on a fifth red team's federations: benchmarks/redteam/digits_numpy.py, a numpy FedAvg of an MLP or
a softmax regression on scikit-learn's digits, written apart from fedforensics and from the other red teams.

The cases are rows of docs/detection.md's "A fifth red team" table where the detectors do their job; the table
also lists where they do not (intermittent boosts in runs whose differences persist, ramped boosts, label flips
clipped to the median norm).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from redteam_floor import assert_attackers_found_and_honest_clients_not

from fedforensics import open_run
from fedforensics.analysis import analyze

HARNESS = Path(__file__).resolve().parents[1] / "benchmarks" / "redteam" / "digits_numpy.py"
CASES = {
    # inner-product manipulation (Xie et al. 2020, ε 0.1): 6 of 30 clients, 10 a round, Dirichlet 0.3, UUID ids
    "ipm-partial": ("B-dir0.3-30of10-uuid", "ipm0.1", 6),
    # Fang et al. 2020 on trimmed mean: 8 of 40 IID clients of lognormal sizes, 15 a round, ids of odd shapes
    "fang-quantity-skew": ("D-iid40-15pr-lognorm-mixed", "fang", 8),
    # the same on a softmax regression at Dirichlet 1.0
    "fang-softmax": ("E-dir1.0-20-logreg", "fang", 4),
    # label flipping clipped to the honest median norm, 2 of 20 IID clients
    "label-flip-clipped": ("A-iid20-hosp", "labelflip-clip", 2),
    # free riders sending tiny noise, 2 of 40, 15 a round
    "free-rider-noise": ("D-iid40-15pr-lognorm-mixed", "freerider-zero", 2),
    # a free rider replaying the server's last step, ±10 % (Fraboni et al. 2021), 1 of 30 clients, 6 a round
    "free-rider-replay-partial": ("I-dir1.0-30-6pr-int", "freerider-prev", 1),
    # the same beside 11 clients of a softmax regression at Dirichlet 0.3 with 1-5 local epochs each
    "free-rider-replay-softmax": ("J-dir0.3-12-logreg-hetero", "freerider-prev", 1),
    # a backdoor trained 5 epochs and boosted ×5 in every third round, 1 of 30 clients, 6 a round
    "intermittent-backdoor-partial": ("I-dir1.0-30-6pr-int", "backdoor-strong", 1),
    # the same, 1 of 20 IID clients taking part in every round (found by norm's share of extreme rounds alone: its
    # mean z, 3.46, is under the threshold)
    "intermittent-backdoor-iid": ("A-iid20-hosp", "backdoor-strong", 1),
    # and 1 of 10 clients at Dirichlet 1.0 of unequal sizes, with integer ids
    "intermittent-backdoor-unequal": ("C-dir1.0-10-int-unequal", "backdoor-strong", 1),
    # no attacker: 40 clients at Dirichlet 0.3, lognormal sizes (σ 1.5), 1-5 local epochs each
    "clean-heterogeneous": ("K-dir0.3-40-full-hetero-sig1.5", "clean", 0),
}


@pytest.mark.parametrize("name", list(CASES))
def test_every_attacker_found_and_no_honest_client_flagged(name, tmp_path):
    setting, attack, attackers = CASES[name]
    arguments = f"--setting {setting} --attack {attack} --seed 1"
    assert_attackers_found_and_honest_clients_not(HARNESS, arguments, tmp_path / f"{name}.h5", attackers)


def test_an_honest_silo_of_far_more_data_is_not_malicious(tmp_path):
    """Clean, 30 clients at Dirichlet 0.3 with lognormal sizes (σ 1.5): the largest holds 23× the median count and
    was malicious on `opposition` alone at 2.5× its threshold (FedAvg moves the model toward it; the small clients
    pull back). Its flags are one observation, its data size: suspicious, and no honest client is malicious."""
    path = tmp_path / "silo.h5"
    arguments = "--setting N-dir0.3-30-bigsilo-2ep --attack clean --seed 5"
    subprocess.run([sys.executable, str(HARNESS), str(path), *arguments.split()], check=True, capture_output=True)
    with open_run(path) as run:
        counts = run.num_samples(run.rounds[0])
        report = analyze(run)
    silo = max(counts, key=counts.__getitem__)
    verdicts = {v.client: v.verdict for v in report.verdicts}
    assert verdicts[silo] == "suspicious" and "malicious" not in verdicts.values(), verdicts
    assert sum(v == "suspicious" for v in verdicts.values()) <= 3, verdicts
