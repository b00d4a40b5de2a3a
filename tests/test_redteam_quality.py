"""Quality floors on federations the simulator did not make: benchmarks/redteam/fedavg.py, a FedAvg
loop written apart from fedforensics (its own models, tabular data, split, ids and attacks).

The cases are rows of docs/detection.md's red-team table where the detectors do their job; the
table also lists where they do not (clean label-skewed softmax regression, the tabular backdoor, the
norm-bounded and intermittent backdoors). For one of the last, a case checks that trigger inversion on the
final model finds the backdoor's target where the update statistics find no attacker.
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
    # ALIE (z = 1) with each attacker's own jitter as large as the honest spread: no copies for sybil to see
    "alie-jitter-tabular-mlp-dirichlet": (
        "--data tab --model mlpln --partition dir --clients 10 --rounds 20 --attack alie --jitter 1.0 --ids hospital --seed 2"
    ),
    # Neurotoxin (Zhang et al. 2022): gradients masked off the coordinates the last global update moved most,
    # the update bounded by the last round's median honest norm; added after every threshold was set
    "neurotoxin-digits-cnn-iid": (
        "--data digits --model cnn --partition iid --clients 10 --rounds 20 --attack neurotoxin --ids hospital --seed 40"
    ),
    # ALIE with z = 0 and no jitter by 4 of 10: four exact copies of the honest mean, 40 % of every round
    # (benign until `sybil` scored the log distance to the nearest update; added after that change)
    "alie-copies-four-of-ten-digits-cnn-iid": (
        "--data digits --model cnn --partition iid --clients 10 --rounds 20 --attack alie --n-mal 4 --z 0 --jitter 0 --ids int --seed 62"
    ),
    # MPAF (Cao & Gong 2022): two fake clients drag the model to a random one, 10 of 20 clients a round
    "mpaf-tabular-mlp-dirichlet-partial": (
        "--data tab --model mlpln --partition dir --clients 20 --per-round 10 --rounds 20 --attack mpaf --ids uuid --seed 50"
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_every_attacker_found_and_no_honest_client_flagged(name, tmp_path):
    path = tmp_path / f"{name}.h5"
    subprocess.run([sys.executable, str(HARNESS), "--out", str(path), *CASES[name].split()], check=True, capture_output=True)
    with open_run(path) as run:
        truth = run.ground_truth
        report = analyze(run)
    judged = {v.client: v.verdict for v in report.verdicts}
    assert len(truth) >= 2 and all(judged[c] != "benign" for c in truth), judged
    assert [c for c, v in judged.items() if v != "benign" and c not in truth] == []
    consensus = next(j for j in evaluate_report(report, truth).judgements if j.name == CONSENSUS)
    assert consensus.auroc is not None and consensus.auroc >= 0.9


def test_a_clean_quantity_skewed_federation_flags_no_silo_and_explains_its_small_client(tmp_path):
    """Quantity skew (IID digits, shards of 15 to 595): softmax regression's largest silo takes 6.8x the median
    client's SGD steps and sends updates 3-7x the median norm, which `norm` flagged until clients were compared as
    at the round's median sample count; it is benign now. The smallest is an outlier of FLAME's clustering (23
    digits make a noisy direction): not judged malicious, and the notes name it as resting on label-mix evidence
    alone."""
    path = tmp_path / "quantity.h5"
    args = "--data digits --model softreg --partition iid --clients 10 --rounds 20 --attack none --quantity 0.5 --ids int --seed 7"
    subprocess.run([sys.executable, str(HARNESS), "--out", str(path), *args.split()], check=True, capture_output=True)
    with open_run(path) as run:
        counts = run.num_samples(run.rounds[0])
        report = analyze(run)
    judged = {v.client: v.verdict for v in report.verdicts}
    assert judged[max(counts, key=counts.get)] == "benign", judged
    flagged = [v for v in report.verdicts if v.verdict != "benign"]
    assert {v.verdict for v in flagged} <= {"suspicious"}
    for verdict in flagged:
        assert any(note.startswith(f"client {verdict.client} ") for note in report.notes), (verdict.client, report.notes)


def test_trigger_inversion_finds_the_target_of_a_bounded_backdoor_the_update_statistics_miss(tmp_path, monkeypatch):
    """A PGD norm-bounded backdoor (Sun et al. 2019) by 2 of 10 clients on label-skewed digits: no detector flags
    either attacker (docs/detection.md), but Neural Cleanse on the final model flags the target, 3, well above
    chance (index 5.9)."""
    monkeypatch.syspath_prepend(str(HARNESS.parent))
    import data  # the red team's data: its held-out digits are the clean data
    import models  # the red team's model classes, rebuilt for inversion

    from fedforensics.inversion import invert_run

    path = tmp_path / "pgd.h5"
    args = "--data digits --model cnn --partition dir --clients 10 --rounds 20 --attack pgd_bd --ids hospital --seed 43"
    subprocess.run([sys.executable, str(HARNESS), "--out", str(path), *args.split()], check=True, capture_output=True)
    x, y = data.held_out("digits", 43)
    with open_run(path) as run:
        result = invert_run(run, models.digits_cnn, x, y, seed=0).result
    assert 3 in result.flagged_labels and 3 not in result.weak_labels
    assert result.classes[3].anomaly_index >= 4.0
