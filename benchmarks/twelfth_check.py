"""docs/detection.md, "A twelfth check": a fresh-eyes auditor's own federations (session 40), 35 clean and 24 attacked.

Run one: ``python3 benchmarks/twelfth_check.py NAME [SEED]`` (10–20 s); all of them, at the seeds the table used:
``python3 benchmarks/twelfth_check.py all`` (about 15 min on 2 cores). Outputs: ``benchmarks/.cache/twelfth/``
(``$FEDFORENSICS_BENCH_CACHE/twelfth``, or ``$TWELFTH_OUT``): the run, its truth, the audit's JSON and a summary line
per run (``benchmarks/redteam/fresh_fedavg.py``).
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "redteam"))
import fresh_fedavg as fl  # noqa: E402

C = {
    # ---------------- clean federations (no attacker)
    "clean_classes": dict(desc="MLP, 20 clients each holding 1-2 classes", clients=20, partition="classes", model="mlp", rounds=25),
    "clean_dir01_cnn": dict(desc="small CNN, 20 clients Dirichlet 0.1", clients=20, partition="dirichlet", alpha=0.1, model="cnn", rounds=25),
    "clean_quantity_logreg": dict(desc="logistic regression, 15 clients, one holds 40% (IID), rest lognormal", clients=15,
                                  partition="quantity", big_frac=0.4, model="logreg", rounds=25, lr=0.2),
    "clean_partial": dict(desc="MLP, 25 clients Dirichlet 0.3, 5 sampled per round", clients=25, partition="dirichlet", alpha=0.3,
                          model="mlp", rounds=30, per_round=5),
    "clean_churn_bn": dict(desc="BatchNorm CNN, 20 clients Dir 0.5, 5 join at r10, 4 leave at r15", clients=20, partition="dirichlet",
                           alpha=0.5, model="bncnn", rounds=25, lr=0.05,
                           churn={"late": ["c15", "c16", "c17", "c18", "c19"], "join": 10, "drop": ["c00", "c01", "c02", "c03"], "leave": 15}),
    "clean_hetero": dict(desc="MLP, 20 clients Dir 0.5, per-client epochs 1-5 and lr 0.02-0.2", clients=20, partition="dirichlet",
                         alpha=0.5, model="mlp", rounds=25, hetero=True),
    "clean_proxmom": dict(desc="CNN, 18 clients Dir 0.3, 1/3 plain SGD, 1/3 FedProx mu=0.5, 1/3 momentum 0.9", clients=18,
                          partition="dirichlet", alpha=0.3, model="cnn", rounds=25, mixed_opt=True),
    "clean_dp": dict(desc="MLP, 20 clients Dir 0.5, every update clipped to 1.0 + Gaussian noise sigma 0.02*C per coordinate",
                     clients=20, partition="dirichlet", alpha=0.5, model="mlp", rounds=25, dp={"clip": 1.0, "sigma": 0.02}),
    "clean_synth": dict(desc="synthetic 20-d Gaussian mixture (5 classes), MLP, 20 clients Dir 0.1", data="synth", clients=20,
                        partition="dirichlet", alpha=0.1, model="mlp", rounds=25),
    "clean_churn_bn_minbatch8": dict(desc="control of clean_churn_bn: same, but batches smaller than 8 skipped (no tiny BatchNorm batch)",
                                     clients=20, partition="dirichlet", alpha=0.5, model="bncnn", rounds=25, lr=0.05, min_batch=8,
                                     churn={"late": ["c15", "c16", "c17", "c18", "c19"], "join": 10, "drop": ["c00", "c01", "c02", "c03"], "leave": 15}),
    "clean_bn_full": dict(desc="BatchNorm CNN, 20 clients Dir 0.5, all clients every round (no churn)", clients=20,
                          partition="dirichlet", alpha=0.5, model="bncnn", rounds=25, lr=0.05),
    "base_cnn_dir05": dict(desc="clean reference for atk_backdoor/atk_minmax (same split): CNN Dir 0.5, trigger ASR measured",
                           clients=20, partition="dirichlet", alpha=0.5, model="cnn", rounds=25, attack="backdoor", target=4, random_attackers=0),
    "base_mlp_dir03": dict(desc="clean reference for atk_labelflip/atk_alie (same split): MLP Dir 0.3", clients=20, partition="dirichlet",
                           alpha=0.3, model="mlp", rounds=25),
    "base_mlp_classes": dict(desc="clean reference for atk_backdoor_classes (same split): MLP 1-2 classes, trigger ASR measured",
                             clients=20, partition="classes", model="mlp", rounds=25, attack="backdoor", target=4, random_attackers=0),
    # ---------------- attacked federations (attacks written from the papers)
    "atk_alie": dict(desc="MLP, 20 clients Dir 0.3, ALIE 3/20", clients=20, partition="dirichlet", alpha=0.3, model="mlp",
                     rounds=25, attack="alie", random_attackers=3),
    "atk_minmax": dict(desc="CNN, 20 clients Dir 0.5, min-max (std perturbation) 2/20", clients=20, partition="dirichlet", alpha=0.5,
                       model="cnn", rounds=25, attack="minmax", perturb="std", random_attackers=2),
    "atk_minsum": dict(desc="MLP, 20 clients Dir 0.5, min-sum (inverse unit perturbation) 4/20", clients=20, partition="dirichlet",
                       alpha=0.5, model="mlp", rounds=25, attack="minsum", perturb="unit", random_attackers=4),
    "atk_ipm": dict(desc="MLP, 20 clients Dir 1.0, IPM eps=0.2 3/20", clients=20, partition="dirichlet", alpha=1.0, model="mlp",
                    rounds=25, attack="ipm", eps=0.2, random_attackers=3),
    "atk_backdoor": dict(desc="CNN, 20 clients Dir 0.5, backdoor diag trigger -> 4, poison 50%, 3/20", clients=20,
                         partition="dirichlet", alpha=0.5, model="cnn", rounds=25, attack="backdoor", target=4, random_attackers=3),
    "atk_sybil": dict(desc="MLP, 20 clients Dir 0.5, 3 sybils: one backdoored update (diag->4) + 1% noise", clients=20,
                      partition="dirichlet", alpha=0.5, model="mlp", rounds=25, attack="sybil", target=4, random_attackers=3),
    "atk_labelflip": dict(desc="MLP, 20 clients Dir 0.3, label flip y->9-y 3/20", clients=20, partition="dirichlet", alpha=0.3,
                          model="mlp", rounds=25, attack="labelflip", random_attackers=3),
    # attacks inside the hard settings
    "atk_alie_partial": dict(desc="MLP, 25 clients Dir 0.3, 10 sampled/round, ALIE 4/25", clients=25, partition="dirichlet",
                             alpha=0.3, model="mlp", rounds=30, per_round=10, attack="alie", random_attackers=4),
    "atk_backdoor_classes": dict(desc="MLP, 20 clients with 1-2 classes, backdoor diag->4, 3/20", clients=20, partition="classes",
                                 model="mlp", rounds=25, attack="backdoor", target=4, random_attackers=3),
    "atk_minmax_hetero": dict(desc="MLP, 20 clients Dir 0.5 hetero epochs/lr, min-max std 3/20", clients=20, partition="dirichlet",
                              alpha=0.5, model="mlp", rounds=25, hetero=True, attack="minmax", perturb="std", random_attackers=3),
    "atk_labelflip_bn": dict(desc="BatchNorm CNN, 20 clients Dir 0.5, label flip 2/20", clients=20, partition="dirichlet", alpha=0.5,
                             model="bncnn", rounds=25, lr=0.05, attack="labelflip", random_attackers=2),
    "atk_ipm_dp": dict(desc="MLP, 20 clients Dir 0.5 under the same DP clipping+noise, IPM eps=0.5 3/20 (attack after DP)",
                       clients=20, partition="dirichlet", alpha=0.5, model="mlp", rounds=25, dp={"clip": 1.0, "sigma": 0.02},
                       attack="ipm", eps=0.5, random_attackers=3),
    "atk_labelflip_iid": dict(desc="MLP, 20 clients Dir 1.0, label flip y->9-y 3/20", clients=20, partition="dirichlet", alpha=1.0,
                              model="mlp", rounds=25, attack="labelflip", random_attackers=3),
    "atk_labelflip_cnn5ep": dict(desc="CNN, 20 clients Dir 0.3, 5 local epochs lr 0.05, label flip 3/20", clients=20, partition="dirichlet",
                                 alpha=0.3, model="cnn", rounds=25, epochs=5, lr=0.05, attack="labelflip", random_attackers=3),
    "atk_backdoor_boost": dict(desc="CNN, 20 clients Dir 0.5, backdoor diag->4, poison 50%, 5 local epochs for attackers, 2/20",
                               clients=20, partition="dirichlet", alpha=0.5, model="cnn", rounds=25, attack="backdoor", target=4,
                               attack_epochs=5, random_attackers=2),
    "atk_minsum_partial": dict(desc="MLP, 25 clients Dir 0.5, 10 sampled/round, min-sum std 3/25", clients=25, partition="dirichlet",
                               alpha=0.5, model="mlp", rounds=30, per_round=10, attack="minsum", perturb="std", random_attackers=3),
}


def go(name, seed=0):
    cfg = dict(C[name])
    cfg["seed"] = seed
    cfg["name"] = name if seed == 0 else f"{name}_s{seed}"
    return fl.run(cfg)


#: The seeds of the table in docs/detection.md (the others at seed 0 only).
SEEDS = {
    **{name: (0, 1, 2) for name in C if name.startswith("clean_") and "minbatch8" not in name and "bn_full" not in name},
    "clean_bn_full": (0, 1), "clean_churn_bn_minbatch8": (0, 1), "base_mlp_classes": (0, 1),
    **{name: (0, 1) for name in ("atk_alie", "atk_minmax", "atk_minsum", "atk_ipm", "atk_sybil", "atk_backdoor",
                                 "atk_backdoor_classes", "atk_labelflip")},
}


def main(argv: list[str] | None = None) -> None:
    """Run one federation (NAME [SEED]) or every one at the table's seeds (``all``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", choices=["all", *C], metavar="NAME", help=f"all, or one of: {', '.join(C)}")
    parser.add_argument("seed", type=int, nargs="?", default=0, metavar="SEED", help="with NAME: its seed (default 0)")
    args = parser.parse_args(argv)
    if args.name == "all":
        for name in C:
            for seed in SEEDS.get(name, (0,)):
                go(name, seed)
    else:
        go(args.name, args.seed)


if __name__ == "__main__":
    main()
