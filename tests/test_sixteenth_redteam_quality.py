"""Quality floors on a sixteenth check's federations: benchmarks/redteam/sixteenth_fedavg.py, an outside evaluator's
own plain-PyTorch FedAvg, written by a red-teamer blind to the detectors (docs/detection.md, "A sixteenth check").

The cases are rows of its table where the verdicts do their job: ALIE, min-max and min-sum as the papers send them,
sybils, model replacement and an IID backdoor, among 10 clients or 30 drawn 10 a round, under odd client ids, and a
clean label-skewed control with no client flagged. Two misses the table also shows are strict xfails: a backdoor by 9
of 30 label-skewed clients, and ALIE whose attackers each add noise of their own (neither is in the papers' code).
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch")

from redteam_floor import assert_attackers_found_and_honest_clients_not, floor_cases  # noqa: E402

HARNESS = Path(__file__).resolve().parents[1] / "benchmarks" / "redteam" / "sixteenth_fedavg.py"
TEN = "--clients 10 --rounds 20"
DRAWN = "--clients 30 --per-round 10 --rounds 30"
CASES = {
    # 30 label-skewed (Dirichlet 0.3) clients drawn 10 a round, ids of every shape at once (UUIDs, "客户-3", e-mails)
    "clean-drawn-label-skewed": (f"{DRAWN} --attack none --split dir --model mlp --ids mixed --seed 0", 0),
    # ALIE (Baruch et al. 2019), 6 of them: z from the round's n and m, every attacker mean - z * std
    "alie-drawn": (f"{DRAWN} --attack alie --attackers 6 --split dir --model mlp --ids mixed --seed 0", 6),
    # min-max (Shejwalkar & Houmansadr 2021), the std perturbation, 2 of 10 label-skewed clients, a strided CNN
    "min-max-label-skewed": (f"{TEN} --attack minmax --perturb std --attackers 2 --split dir --model cnn --seed 0", 2),
    # min-sum, 6 of 30 drawn 10 a round
    "min-sum-drawn": (f"{DRAWN} --attack minsum --perturb std --attackers 6 --split dir --model mlp --ids unicode --seed 1", 6),
    # FoolsGold-style sybils: 6 copies of one label-flipped data set, each with its own batch order
    "sybils-drawn": (f"{DRAWN} --attack sybil --attackers 6 --split iid --model mlp --ids site --seed 0", 6),
    # model replacement (Bagdasaryan et al. 2020), 3 of 30, boosted n/m from the fifth round on
    "model-replacement-drawn": (f"{DRAWN} --attack scaling --attackers 3 --split iid --model mlp --ids zeropad --seed 0", 3),
    # a 2x2 square in the bottom-left corner, target 3, 2 of 10 IID clients
    "backdoor-iid": (f"{TEN} --attack backdoor --trigger square --target 3 --attackers 2 --split iid --model cnn --seed 0", 2),
}
MISSED = {
    # 9 of 30 label-skewed clients drawn 10 a round plant a square trigger (attack success 0.79): consensus at chance
    "backdoor-drawn-label-skewed": (
        f"{DRAWN} --attack backdoor --trigger square --target 3 --attackers 9 --split dir --model cnn --ids uuid --seed 0", 9
    ),
    # ALIE whose 6 attackers each add noise of 0.5 x the benign std (accuracy 0.76 against the clean control's 0.86)
    "alie-jittered-drawn": (f"{DRAWN} --attack alie --attackers 6 --split dir --model mlp --ids mixed --jitter 0.5 --seed 1", 6),
}


@pytest.mark.parametrize("case", floor_cases(CASES, MISSED))
def test_an_outside_evaluators_attackers_are_found_and_honest_clients_are_not(case, tmp_path):
    arguments, attackers = CASES.get(case) or MISSED[case]
    assert_attackers_found_and_honest_clients_not(HARNESS, arguments, tmp_path / f"{case}.h5", attackers)
