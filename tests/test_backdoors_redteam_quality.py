"""Quality floors on a fourth red team's federations: benchmarks/redteam/stealthy_backdoors.py, published stealthy
backdoors in a plain-PyTorch FedAvg on digits (docs/detection.md, "A fourth check").

Most of its attackers are missed (the table says so); these are the rows where the verdicts do their job: a lone
Neurotoxin attacker on IID shards, and a clean label-skewed federation whose honest client's local training
diverges now and then, which the verdict must not call malicious.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

from redteam_floor import assert_attackers_found_and_honest_clients_not  # noqa: E402

from fedforensics import open_run  # noqa: E402
from fedforensics.analysis import analyze  # noqa: E402

HARNESS = Path(__file__).resolve().parents[1] / "benchmarks" / "redteam" / "stealthy_backdoors.py"


def test_a_lone_neurotoxin_attacker_on_iid_shards_is_found(tmp_path):
    arguments = "--attack neurotoxin --split iid --seed 0 --attackers 1"
    assert_attackers_found_and_honest_clients_not(HARNESS, arguments, tmp_path / "neurotoxin.h5", attackers=1)


def test_an_honest_client_whose_training_diverges_is_not_called_malicious(tmp_path):
    """c10 (97 samples, half of them one class) sends updates up to 57 MADs long and reports losses 27 MADs high in
    the same rounds: `norm` and `layer-deviation` beside `client-metrics`, one event seen twice."""
    path = tmp_path / "clean.h5"
    arguments = "--attack none --split dir --seed 1 --clients 20 --per-round 10"
    subprocess.run([sys.executable, str(HARNESS), str(path), *arguments.split()], check=True, capture_output=True)
    with open_run(path) as run:
        verdicts = {v.client: v for v in analyze(run).verdicts}
    flagged = {cid: v.verdict for cid, v in verdicts.items() if v.verdict != "benign"}
    assert flagged == {"c10": "suspicious"}
    assert {"norm", "client-metrics"} <= set(verdicts["c10"].flagged_by)


def test_two_neurotoxin_attackers_on_label_skewed_shards_are_found_by_what_they_leave_untouched(tmp_path):
    """Missed by every update statistic until `avoidance`: each attacker masks the top 5 % of the coordinates the last
    global update changed (Neurotoxin's Algorithm 1) and stays within its honest norm."""
    path = tmp_path / "neurotoxin.h5"
    assert_attackers_found_and_honest_clients_not(HARNESS, "--attack neurotoxin --split dir --seed 1 --attackers 2", path, 2)
    with open_run(path) as run:
        result = analyze(run).detector("avoidance")
        assert sorted(result.flagged) == sorted(run.ground_truth)
