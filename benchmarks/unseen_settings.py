"""Settings the detector thresholds were *not* calibrated on: partial participation, the MLP, other
triggers and targets, attackers who join late, milder label skew (one seed each).

    python benchmarks/unseen_settings.py      # ~2 min on 2 cores; prints a markdown table for docs/detection.md
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor

SETTINGS = {
    "20 clients, 10 per round, backdoor": dict(clients=20, clients_per_round=10, attack="backdoor", seed=5),
    "20 clients, 10 per round, label flip": dict(clients=20, clients_per_round=10, attack="label-flip", seed=5),
    "20 clients, 10 per round, clean": dict(clients=20, clients_per_round=10, attack="none", seed=5),
    "MLP, square trigger, target 2": dict(model="mlp", trigger="square", target=2, seed=6),
    "MLP, clean": dict(model="mlp", attack="none", seed=6),
    "CNN, checker trigger, target 0, attackers from round 10": dict(trigger="checker", target=0, attack_start_round=10, seed=7),
    "Dirichlet α = 1, backdoor": dict(partition="dirichlet", alpha=1.0, seed=8),
    "Dirichlet α = 1, clean": dict(partition="dirichlet", alpha=1.0, attack="none", seed=8),
}


def audit(name: str) -> str:
    """Simulate one setting, analyze it, and say who was found."""
    import tempfile
    from pathlib import Path

    import torch

    from fedforensics import open_run
    from fedforensics.analysis import analyze
    from fedforensics.simulate import SimulationConfig, simulate

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "run.h5"
        result = simulate(SimulationConfig(**SETTINGS[name]), path)
        with open_run(path) as run:
            truth = run.ground_truth or []
            verdicts = {v.client: v.verdict for v in analyze(run).verdicts}
    found = [c for c in truth if verdicts[c] != "benign"]
    honest = [f"{c} ({verdicts[c]})" for c in verdicts if verdicts[c] != "benign" and c not in truth]
    success = "–" if result.attack_success is None else f"{result.attack_success:.2f}"
    return f"| {name} | {result.accuracy:.2f} | {success} | {len(found)} of {len(truth)} | {', '.join(honest) or 'none'} |"


def main() -> None:
    print("| setting | accuracy | attack success | attackers found | honest clients flagged |")
    print("|---|---|---|---|---|")
    with ProcessPoolExecutor(2) as pool:
        for line in pool.map(audit, SETTINGS):
            print(line, flush=True)


if __name__ == "__main__":
    main()
