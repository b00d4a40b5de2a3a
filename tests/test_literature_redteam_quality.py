"""Quality floors on a fourteenth check's federations: benchmarks/redteam/literature_attacks.py, attacks from the
literature on the zoo's digits CNN (docs/detection.md, "A fourteenth check").

The cases are rows of its table where the verdicts do their job, at what was measured: Fang et al.'s attacks on the
trimmed mean, the edge-case backdoor on IID shards, PoisonedFL (also where it broke honest clients' training), and clean controls with no client flagged. The table
also says what is missed (the A3FL-style optimized trigger in every federation, the edge-case and semantic backdoors
among label-skewed clients drawn 10 of 20 a round). Session 45 added F3BA, Chameleon and an IBA-style trigger; Chameleon
among label-skewed clients drawn 10 of 20 a round is missed, a strict xfail.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch")

from redteam_floor import assert_attackers_found_and_honest_clients_not, floor_cases  # noqa: E402

HARNESS = Path(__file__).resolve().parents[1] / "benchmarks" / "redteam" / "literature_attacks.py"
PARTIAL = "--split dir --clients 20 --per-round 10"
CASES = {
    # clean controls: 20 label-skewed clients drawn 10 a round, under the trimmed mean and under the mean
    "clean-partial-trimmed-mean": (f"--attack none {PARTIAL} --seed 0 --server trim", 0),
    "clean-label-skewed": ("--attack none --split dir --seed 1", 0),
    # Fang et al. 2020, full knowledge, 4 of 20 drawn 10 a round: 7 of the 8 of both seeds `malicious`
    "fang-partial": (f"--attack fang {PARTIAL} --attackers 4 --seed 1 --server trim", 4),
    # its partial-knowledge variant, 2 of 10 label-skewed clients
    "fang-partial-knowledge": ("--attack fang-pk --split dir --seed 0 --server trim", 2),
    # the edge-case backdoor without PGD, 2 of 10 IID clients (attack success 0.43)
    "edge-case-iid": ("--attack edge --split iid --seed 0", 2),
    # PoisonedFL, 4 of 20 drawn 10 a round (seed 1: no honest update ever turned NaN)
    "poisonedfl-partial": (f"--attack poisonedfl {PARTIAL} --attackers 4 --seed 1", 4),
    # PoisonedFL, 2 of 10 IID clients, seed 1: the global model it made broke all 8 honest clients' training in one
    # round (NaN), which made each `suspicious` until such a round's NaN was held against none of them
    "poisonedfl-diverged": ("--attack poisonedfl --split iid --seed 1", 2),
    # added in session 45: F3BA (Fang and Chen 2023), sign flips of candidate conv and hidden weights, 2 of 10 IID
    # clients (attack success 0.99): its conv flips stand out (`layer-deviation` on 0.weight, `norm`)
    "f3ba-iid": ("--attack f3ba --split iid --seed 0", 2),
    # Chameleon (Dai and Li 2023), contrastive encoder then classifier, 2 of 10 IID clients (attack success 0.60)
    "chameleon-iid": ("--attack chameleon --split iid --seed 1", 2),
    # an IBA-style generator-made trigger with a Neurotoxin-style mask, 4 of 20 drawn 10 a round: `avoidance`
    "iba-partial": (f"--attack iba {PARTIAL} --attackers 4 --seed 1", 4),
}
MISSED = {
    # Chameleon, 4 of 20 label-skewed clients drawn 10 a round (attack success 0.49): every attacker under every
    # detector's threshold (at most 0.68 of `output-bias`'s, honest clients up to 0.65 of `client-metrics`')
    "chameleon-partial": (f"--attack chameleon {PARTIAL} --attackers 4 --seed 0", 4),
}


@pytest.mark.parametrize("case", floor_cases(CASES, MISSED))
def test_literature_attackers_are_found_and_honest_clients_are_not(case, tmp_path):
    arguments, attackers = CASES.get(case) or MISSED[case]
    assert_attackers_found_and_honest_clients_not(HARNESS, arguments, tmp_path / f"{case}.h5", attackers)
