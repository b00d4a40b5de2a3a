"""Federations of shapes the detector thresholds were *not* calibrated on (one seed each, or three).

    python benchmarks/unseen_settings.py      # simulates what benchmarks/.cache lacks (~60 min on 2 cores
                                              # for all 136), analyzes each, rewrites docs/detection.md's tables
    python benchmarks/unseen_settings.py --groups first probe   # those groups' tables only, printed
    python benchmarks/unseen_settings.py --only "MLP, clean"    # the settings whose name holds it, printed

Eight groups, kept apart because each was looked at for a different reason:

* ``first``: partial participation, the MLP, other triggers and targets, late attackers, milder
  label skew; measured once the thresholds were set.
* ``probe``: more clients and stronger label skew (Dirichlet α down to 0.1), ALIE and min-max with
  more attackers. Their clean federations showed honest clients `suspicious` on `output-bias` or
  `client-metrics` alone, which led to the rule that those two only corroborate (docs/detectors.md):
  after that change these are in-sample.
* ``held-out``: other shapes and seeds, simulated only after that rule was fixed.
* ``small``: 4–8 clients, and 5 a round of 50, looked at after a clean 6-client Flower run of the
  red team had an honest client `suspicious`. Their label-skewed clean runs had honest clients
  `malicious` on `median-cosine`'s direction accumulated over the run, which led it to keep to its
  per-round statistic, and the 5-a-round ones honest clients `suspicious` on rounds of 5, which led
  rounds of fewer than 10 to be moved to the 10-client scale (docs/detectors.md): in-sample for both.
* ``crafted``: ALIE and min-max with one attacker among ten (or twenty, ten a round), in shapes and
  seeds simulated only after ``mean-copy`` and ``spread-shift`` had their thresholds, beside clean
  federations of the same shapes.
* ``tiny shards``: clients of about 30 samples (one batch of 32 an epoch, so local training is
  nearly full-batch and each honest update repeats its client's quirks round after round): 10 clients
  with five sixths of the digits held out, and 50 clients sharing them. Their honest flags led to the
  rule that sets one family's flags aside where the clients' differences persist: in-sample for it.
* ``after the persistence rule``: tiny shards again (20 clients of ~30 samples, an MLP of 10), clean
  and attacked, 30 clients of ~50 samples, 100 clients of ~15 samples drawn 10 a round, and the demo
  federation with full-batch local training (FedSGD-like), simulated only after that rule was fixed:
  its out-of-sample check.
* ``more attackers``: every attack with 3 of 10 clients malicious (IID and α = 0.5) and five with 4 of 10,
  simulated after every rule was fixed; it led `sybil` to the log distance (docs/detectors.md), so its
  ALIE rows are in-sample for that change.
"""

from __future__ import annotations

import argparse
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from scenarios import ensure_configs, only_option, publish, run_path, selected

from fedforensics.simulate import SimulationConfig

DOC = Path(__file__).resolve().parents[1] / "docs" / "detection.md"

CLEAN = {"attack": "none"}
SKEW = {"partition": "dirichlet"}

SETTINGS: dict[str, dict[str, dict[str, object]]] = {
    "first": {
        "20 clients, 10 per round, backdoor": dict(clients=20, clients_per_round=10, attack="backdoor", seed=5),
        "20 clients, 10 per round, label flip": dict(clients=20, clients_per_round=10, attack="label-flip", seed=5),
        "20 clients, 10 per round, clean": dict(clients=20, clients_per_round=10, **CLEAN, seed=5),
        "MLP, square trigger, target 2": dict(model="mlp", trigger="square", target=2, seed=6),
        "MLP, clean": dict(model="mlp", **CLEAN, seed=6),
        "CNN, checker trigger, target 0, attackers from round 10": dict(trigger="checker", target=0, attack_start_round=10, seed=7),
        "Dirichlet α = 1, backdoor": dict(**SKEW, alpha=1.0, seed=8),
        "Dirichlet α = 1, clean": dict(**SKEW, alpha=1.0, **CLEAN, seed=8),
    },
    "probe": {
        "20 clients, Dirichlet α = 0.5, clean": dict(clients=20, **SKEW, alpha=0.5, rounds=20, **CLEAN, seed=21),
        "30 clients, 10 per round, α = 0.3, clean": dict(clients=30, clients_per_round=10, **SKEW, alpha=0.3, rounds=25, **CLEAN, seed=22),
        "MLP, α = 0.3, clean": dict(model="mlp", **SKEW, alpha=0.3, rounds=20, **CLEAN, seed=23),
        "Dirichlet α = 0.1, clean": dict(**SKEW, alpha=0.1, rounds=20, **CLEAN, seed=28),
        "30 clients, 10 per round, backdoor 10 %": dict(clients=30, clients_per_round=10, malicious_fraction=0.1, rounds=25, seed=24),
        "20 clients, α = 1, label flip 15 %": dict(clients=20, **SKEW, alpha=1.0, attack="label-flip", malicious_fraction=0.15, rounds=20, seed=25),
        "20 clients, ALIE 20 %": dict(clients=20, attack="alie", rounds=20, seed=26),
        "20 clients, α = 0.5, min-max 20 %": dict(clients=20, **SKEW, alpha=0.5, attack="min-max", rounds=20, seed=27),
    },
    "held-out": {
        "15 clients, Dirichlet α = 0.1, clean": dict(clients=15, **SKEW, alpha=0.1, rounds=20, **CLEAN, seed=31),
        "15 clients, Dirichlet α = 0.1, backdoor 20 %": dict(clients=15, **SKEW, alpha=0.1, rounds=20, seed=31),
        "40 clients, 10 per round, α = 0.5, clean": dict(clients=40, clients_per_round=10, **SKEW, alpha=0.5, rounds=25, **CLEAN, seed=32),
        "40 clients, 10 per round, α = 0.5, scaling 10 %": dict(clients=40, clients_per_round=10, **SKEW, alpha=0.5, attack="scaling", malicious_fraction=0.1, rounds=25, seed=32),
        "MLP, 20 clients, α = 0.2, clean": dict(model="mlp", clients=20, **SKEW, alpha=0.2, rounds=20, **CLEAN, seed=33),
        "MLP, 20 clients, α = 0.2, label flip 20 %": dict(model="mlp", clients=20, **SKEW, alpha=0.2, attack="label-flip", rounds=20, seed=33),
        "20 clients, α = 0.3, sybil 20 %": dict(clients=20, **SKEW, alpha=0.3, attack="sybil", rounds=20, seed=34),
        "20 clients, α = 0.3, noise 10 %": dict(clients=20, **SKEW, alpha=0.3, attack="noise", malicious_fraction=0.1, rounds=20, seed=34),
    },
    "small": {
        **{
            f"{n} clients, α = 0.5, clean, seed {seed}": dict(clients=n, **SKEW, rounds=20, **CLEAN, seed=seed)
            for n in (4, 5, 6, 8)
            for seed in (0, 1, 2)
        },
        **{
            f"{n} clients, {split}, backdoor 20 %, seed {seed}": dict(clients=n, **extra, rounds=20, seed=seed)
            for n in (5, 6)
            for split, extra in (("IID", {}), ("α = 0.5", SKEW))
            for seed in (0, 1, 2)
        },
        **{
            f"50 clients, 5 per round, {split}, {label}, seed {seed}": dict(
                clients=50, clients_per_round=5, rounds=40, **extra, **attack, seed=seed
            )
            for split, extra in (("IID", {}), ("α = 0.5", SKEW))
            for label, attack in (("clean", CLEAN), ("backdoor 10 %", dict(malicious_fraction=0.1)))
            for seed in (0, 1, 2)
        },
    },
    "crafted": {
        **{
            f"{label} 10 %, {shape}, seed {seed}": dict(attack=attack, malicious_fraction=0.1, **extra, seed=seed)
            for label, attack in (("min-max", "min-max"), ("ALIE", "alie"))
            for shape, extra, seed in (
                ("IID", {}, 11),
                ("α = 0.5", SKEW, 12),
                ("MLP", dict(model="mlp"), 13),
                ("20 clients, 10 per round", dict(clients=20, clients_per_round=10), 14),
            )
        },
        "min-max 20 %, MLP, α = 0.5, seed 15": dict(attack="min-max", model="mlp", **SKEW, seed=15),
        "IID, clean, seed 11": dict(**CLEAN, seed=11),
        "α = 0.5, clean, seed 12": dict(**SKEW, **CLEAN, seed=12),
        "MLP, clean, seed 13": dict(model="mlp", **CLEAN, seed=13),
        "20 clients, 10 per round, α = 0.5, clean, seed 14": dict(clients=20, clients_per_round=10, **SKEW, **CLEAN, seed=14),
        "α = 0.1, clean, seed 15": dict(**SKEW, alpha=0.1, **CLEAN, seed=15),
    },
    "tiny shards": {
        **{
            f"10 clients of ~30 samples, {split}, clean, seed {seed}": dict(
                test_fraction=0.83, **extra, rounds=15, **CLEAN, seed=seed
            )
            for split, extra in (("IID", {}), ("α = 1", dict(**SKEW, alpha=1.0)))
            for seed in (40, 41, 42)
        },
        **{
            f"50 clients of ~30 samples, {split}, clean, seed {seed}": dict(clients=50, **extra, rounds=15, **CLEAN, seed=seed)
            for split, extra in (("IID", {}), ("α = 0.5", SKEW))
            for seed in (40, 41, 42)
        },
        "50 clients of ~30 samples, IID, backdoor 10 %, seed 40": dict(clients=50, malicious_fraction=0.1, rounds=15, seed=40),
        "50 clients of ~30 samples, α = 0.5, backdoor 10 %, seed 40": dict(clients=50, **SKEW, malicious_fraction=0.1, rounds=15, seed=40),
        "50 clients of ~30 samples, α = 0.5, label flip 10 %, seed 40": dict(
            clients=50, **SKEW, attack="label-flip", malicious_fraction=0.1, rounds=15, seed=40
        ),
    },
    "after the persistence rule": {
        **{
            f"20 clients of ~30 samples, {split}, clean, seed 50": dict(
                clients=20, test_fraction=0.66, **extra, rounds=15, **CLEAN, seed=50
            )
            for split, extra in (("IID", {}), ("α = 0.5", SKEW))
        },
        **{
            f"20 clients of ~30 samples, IID, {label} {percent} %, seed 50": dict(
                clients=20, test_fraction=0.66, attack=attack, malicious_fraction=percent / 100, rounds=15, seed=50
            )
            for label, attack, percent in (
                ("backdoor", "backdoor", 20),
                ("label flip", "label-flip", 20),
                ("scaling", "scaling", 10),
                ("noise", "noise", 10),
                ("ALIE", "alie", 10),
                ("min-max", "min-max", 10),
            )
        },
        "MLP, 10 clients of ~30 samples, IID, clean, seed 51": dict(model="mlp", test_fraction=0.83, rounds=15, **CLEAN, seed=51),
        "MLP, 10 clients of ~30 samples, IID, label flip 20 %, seed 51": dict(
            model="mlp", test_fraction=0.83, attack="label-flip", rounds=15, seed=51
        ),
        "30 clients of ~50 samples, IID, clean, seed 52": dict(clients=30, rounds=15, **CLEAN, seed=52),
        **{
            f"100 clients of ~15 samples, 10 per round, {label}, seed 60": dict(
                clients=100, clients_per_round=10, rounds=30, seed=60, **extra
            )
            for label, extra in (
                ("IID, clean", CLEAN),
                ("Dirichlet α = 2, clean", dict(**SKEW, alpha=2.0, **CLEAN)),
                ("IID, backdoor 10 %", dict(malicious_fraction=0.1)),
            )
        },
        # full-batch local training (every shard fits one batch): 5 steps of gradient descent a round, FedSGD-like
        **{
            f"full-batch local training, {label}, seed 70": dict(batch_size=256, local_epochs=5, seed=70, **extra)
            for label, extra in (
                ("IID, clean", CLEAN),
                ("α = 0.5, clean", dict(**SKEW, **CLEAN)),
                ("IID, backdoor 20 %", {}),
                ("α = 0.5, backdoor 20 %", SKEW),
                ("IID, label flip 20 %", dict(attack="label-flip")),
                ("IID, scaling 10 %", dict(attack="scaling", malicious_fraction=0.1)),
            )
        },
    },
    "more attackers": {
        **{
            f"{label} 30 %, {split}, seed 80": dict(attack=attack, malicious_fraction=0.3, seed=80, **extra)
            for label, attack in (
                ("backdoor", "backdoor"),
                ("bounded backdoor", "bounded-backdoor"),
                ("DBA", "dba"),
                ("scaling", "scaling"),
                ("sybil", "sybil"),
                ("label flip", "label-flip"),
                ("class flip", "class-flip"),
                ("noise", "noise"),
                ("ALIE", "alie"),
                ("min-max", "min-max"),
            )
            for split, extra in (("IID", {}), ("α = 0.5", SKEW))
        },
        **{
            f"{label} 40 %, IID, seed 81": dict(attack=attack, malicious_fraction=0.4, seed=81)
            for label, attack in (
                ("backdoor", "backdoor"),
                ("scaling", "scaling"),
                ("label flip", "label-flip"),
                ("ALIE", "alie"),
                ("min-max", "min-max"),
            )
        },
        "IID, clean, seed 80": dict(**CLEAN, seed=80),
        "α = 0.5, clean, seed 80": dict(**SKEW, **CLEAN, seed=80),
    },
}


def audit(path: Path) -> tuple[str, list[str], str, str]:
    """Analyze one run: (attackers found, honest clients flagged, accuracy, attack success)."""
    from fedforensics import open_run
    from fedforensics.analysis import analyze

    with open_run(path) as run:
        truth = run.ground_truth or []
        verdicts = {v.client: v.verdict for v in analyze(run).verdicts}
        final = run.global_metrics(run.rounds[-1])
    present = [c for c in truth if c in verdicts]  # with a few clients a round, an attacker may never be drawn
    found = f"{sum(verdicts[c] != 'benign' for c in present)} of {len(present)}"
    if len(present) < len(truth):
        found += f" ({len(truth) - len(present)} never drawn)"
    honest = [f"{c} ({verdicts[c]})" for c in verdicts if verdicts[c] != "benign" and c not in truth]
    success = final.get("attack_success")
    return found, honest, f"{final['accuracy']:.2f}", "–" if success is None else f"{success:.2f}"


def tables(jobs: int, groups: list[str] | None = None, only: list[str] | None = None, prog: str = "unseen_settings.py") -> str:
    """The tables of ``groups`` (default: every group), of their settings that ``only``'s patterns select
    (:func:`scenarios.selected`), simulating what the cache lacks of them."""
    chosen = [(group, name) for group, named in SETTINGS.items() if groups is None or group in groups for name in named]
    names = set(selected(list(dict.fromkeys(name for _, name in chosen)), only, prog))
    configs = {(group, name): SimulationConfig(**SETTINGS[group][name]) for group, name in chosen if name in names}
    ensure_configs(list(configs.values()), jobs)
    with ProcessPoolExecutor(jobs) as pool:
        outcomes = dict(zip(configs, pool.map(audit, [run_path(c) for c in configs.values()])))
    out = []
    for group in [g for g in groups or SETTINGS if any(key[0] == g for key in configs)]:
        out += [f"#### {group}", "", "| setting | accuracy | attack success | attackers found | honest clients flagged |", "|---|---|---|---|---|"]
        for (g, name), (found, honest, accuracy, success) in outcomes.items():
            if g == group:
                out.append(f"| {name} | {accuracy} | {success} | {found} | {', '.join(honest) or 'none'} |")
        out.append("")
    return "\n".join(out).rstrip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--print", action="store_true", help=f"print the tables instead of writing {DOC.name}")
    parser.add_argument("--groups", nargs="+", choices=list(SETTINGS), metavar="GROUP",
                        help=f"only these groups, printed (default: all of {', '.join(map(repr, SETTINGS))})")
    only_option(parser, DOC, "settings")
    args = parser.parse_args()
    subset = " ".join(option for option, value in (("--groups", args.groups), ("--only", args.only)) if value)
    publish(tables(args.jobs, args.groups, args.only, parser.prog), DOC, "unseen-settings", args.print, subset)


if __name__ == "__main__":
    sys.exit(main())
