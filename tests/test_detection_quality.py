"""Quality floors on real simulated federations (PyOD-style: a seeded run, a floor, not a shape).

Each case is a short run of the demo federation (digits CNN, 10 clients, FedAvg) with a known
attack; the floors are those docs/detection.md reports over 3 seeds and 30 rounds.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from fedforensics import open_run  # noqa: E402
from fedforensics.analysis import analyze  # noqa: E402
from fedforensics.evaluate import evaluate_report  # noqa: E402
from fedforensics.simulate import SimulationConfig, simulate  # noqa: E402

ROUNDS = 30  # as benchmarks/detection_bench.py: label flippers sit just under the thresholds at 15
CASES = {
    "backdoor-iid-seed1": SimulationConfig(rounds=ROUNDS, seed=1),
    "scaling-iid-seed2": SimulationConfig(rounds=ROUNDS, seed=2, attack="scaling", malicious_fraction=0.1),
    "label-flip-noniid-seed0": SimulationConfig(rounds=ROUNDS, attack="label-flip", partition="dirichlet"),
    "noise-noniid-seed1": SimulationConfig(rounds=ROUNDS, seed=1, attack="noise", partition="dirichlet"),
    "sybil-iid-seed0": SimulationConfig(rounds=ROUNDS, attack="sybil"),
}
CLEAN = {
    "clean-iid-seed2": SimulationConfig(rounds=ROUNDS, seed=2, attack="none"),
    "clean-noniid-seed1": SimulationConfig(rounds=ROUNDS, seed=1, attack="none", partition="dirichlet"),
    # most shards hold one or two classes: three honest clients moved the output bias enough to be
    # flagged by output-bias alone before that detector became corroborating only
    "clean-strong-skew-seed28": SimulationConfig(rounds=20, seed=28, attack="none", partition="dirichlet", alpha=0.1),
}


def _audit(tmp_path_factory: pytest.TempPathFactory, name: str, config: SimulationConfig):
    path = tmp_path_factory.mktemp("quality") / f"{name}.h5"
    simulate(config, path)
    with open_run(path) as run:
        truth = run.ground_truth or []
        report = analyze(run)
    return report, truth


@pytest.mark.parametrize("name", CASES)
def test_attackers_are_found_and_no_honest_client_is(tmp_path_factory, name):
    report, truth = _audit(tmp_path_factory, name, CASES[name])
    verdicts = {v.client: v.verdict for v in report.verdicts}
    assert all(verdicts[c] != "benign" for c in truth), verdicts
    assert [c for c, v in verdicts.items() if v != "benign" and c not in truth] == []
    evaluation = evaluate_report(report, truth)
    consensus = next(j for j in evaluation.judgements if j.name == "consensus")
    assert consensus.auroc is not None and consensus.auroc >= 0.9


@pytest.mark.parametrize("name", CLEAN)
def test_clean_federations_are_all_benign(tmp_path_factory, name):
    report, _ = _audit(tmp_path_factory, name, CLEAN[name])
    assert {v.verdict for v in report.verdicts} == {"benign"}
