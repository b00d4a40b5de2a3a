"""Detection quality on the demo federations: every attack at 10 % and 20 % malicious clients,
IID and non-IID (Dirichlet α = 0.5), seeds 0-2, judged by ``fedforensics evaluate``.

    python benchmarks/detection_bench.py            # simulates what is not cached, then writes docs/detection.md
    python benchmarks/detection_bench.py --print    # only print the tables
    python benchmarks/detection_bench.py --only "scaling, 20%, non-iid"   # one row's federations (a glob or substring), printed
    python benchmarks/detection_bench.py --seeds 300 301 302 --clients 20 --clients-per-round 10 \
        --marker detection-bench-partial            # partial participation, seeds no threshold was set on

The tables go between the markers in ``docs/detection.md``; the prose around them is kept.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scenarios import ATTACKS, SEEDS, Scenario, bench_arguments, ensure, final_metrics, grid, grid_only, publish

from fedforensics.evaluate import CONSENSUS, Judgement, RunEvaluation, evaluate_report, pool
from fedforensics.report.wording import median_round

DOC = Path(__file__).resolve().parent.parent / "docs" / "detection.md"
MARKER = "detection-bench"  # the tables of the whole grid, default seeds


@dataclass
class Outcome:
    scenario: Scenario
    evaluation: RunEvaluation
    verdicts: dict[str, int]  # verdict -> clients
    honest_flagged: list[str]  # honest clients judged malicious or suspicious
    metrics: dict[str, float]
    to_flip: dict[str, int]  # a class flip's attackers: each one's images of the flipped class (none for other attacks)


def audit(scenario: Scenario) -> Outcome:
    """Analyze one run and judge it against its recorded ground truth."""
    import torch

    from fedforensics import open_run
    from fedforensics.analysis import analyze
    from fedforensics.simulate import plan
    from fedforensics.simulate.federation import client_id

    torch.set_num_threads(1)
    with open_run(scenario.path) as run:
        truth = run.ground_truth or []
        report = analyze(run)
    counts: dict[str, int] = defaultdict(int)
    for v in report.verdicts:
        counts[v.verdict] += 1
    honest = [v.client for v in report.verdicts if v.verdict != "benign" and v.client not in truth]
    config = scenario.config
    to_flip = {}
    if config.attack == "class-flip":  # what each flipper held of the class it relabels, drawn as the simulation drew it
        setup = plan(config)
        to_flip = {client_id(i): int(np.count_nonzero(setup.train.y[setup.shards[i]] == config.source)) for i in setup.malicious}
    return Outcome(scenario, evaluate_report(report, truth), dict(counts), honest, final_metrics(scenario.path), to_flip)


def _fmt(value: float | None, spec: str = ".2f") -> str:
    return "–" if value is None else format(value, spec)


def _consensus(judgements: list[Judgement]) -> Judgement:
    return next(j for j in judgements if j.name == CONSENSUS)


def attack_table(outcomes: list[Outcome]) -> str:
    """Per attack, pooled over fractions, partitions and seeds: the consensus (its verdicts, and the AUROC of its score)
    and every detector's AUROC."""
    by_attack: dict[str, list[Outcome]] = defaultdict(list)
    for o in outcomes:
        by_attack[o.scenario.attack].append(o)
    detectors = [j.name for j in outcomes[0].evaluation.judgements if j.name != CONSENSUS]
    head = (
        "| attack | runs | precision | recall | F1 | FPR | median first round | AUROC consensus | "
        + " | ".join(f"AUROC {d}" for d in detectors) + " |"
    )
    lines = [head, "|" + "---|" * (8 + len(detectors))]
    for label, _ in ATTACKS:
        if label == "none" or label not in by_attack:
            continue
        pooled = pool([o.evaluation for o in by_attack[label]])
        c = _consensus(pooled)
        aurocs = {j.name: j.auroc for j in pooled}
        lines.append(
            f"| {label} | {len(by_attack[label])} | {_fmt(c.precision)} | {_fmt(c.recall)} | **{_fmt(c.f1)}** | {_fmt(c.fpr)} | "
            f"{median_round(c.median_first_round)} | {_fmt(c.auroc)} | " + " | ".join(_fmt(aurocs.get(d)) for d in detectors) + " |"
        )
    return "\n".join(lines)


def scenario_table(outcomes: list[Outcome]) -> str:
    """Per attack × fraction × partition: the consensus over seeds, with the federation's accuracy and attack success."""
    groups: dict[tuple[str, float, str], list[Outcome]] = defaultdict(list)
    for o in outcomes:
        groups[(o.scenario.attack, o.scenario.fraction, o.scenario.partition)].append(o)
    lines = [
        "| attack | malicious | data | seeds | F1 | recall | honest flagged (malicious+suspicious) | accuracy | attack success |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for (label, fraction, partition), group in groups.items():
        c = _consensus(pool([o.evaluation for o in group]))
        honest = sum(len(o.honest_flagged) for o in group)
        success = [o.metrics["attack_success"] for o in group if "attack_success" in o.metrics]
        lines.append(
            f"| {label} | {fraction:.0%} | {partition} | {len(group)} | {_fmt(c.f1)} | {_fmt(c.recall)} | {honest} | "
            f"{statistics.mean(o.metrics['accuracy'] for o in group):.3f} | {_fmt(statistics.mean(success) if success else None, '.3f')} |"
        )
    return "\n".join(lines)


def clean_table(outcomes: list[Outcome]) -> str:
    """Clean federations: how many honest clients each verdict caught."""
    lines = ["| data | seed | malicious | suspicious | clients flagged |", "|---|---|---|---|---|"]
    for o in outcomes:
        if o.scenario.attack == "none":
            lines.append(
                f"| {o.scenario.partition} | {o.scenario.seed} | {o.verdicts.get('malicious', 0)} | "
                f"{o.verdicts.get('suspicious', 0)} | {', '.join(o.honest_flagged) or '–'} |"
            )
    return "\n".join(lines)


#: Bins of a class flipper's images of the flipped class: with one or none, what it sends is all but an honest update.
FLIP_BINS = [("none or one", 0, 1), ("2–9", 2, 9), ("10 or more", 10, None)]


def flip_table(outcomes: list[Outcome]) -> str:
    """Class flippers by how many images of the flipped class their shard held, and how many of them were found."""
    counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])  # (data, bin) -> [found, flippers]
    for o in outcomes:
        found = {d.client: d.flagged for d in _consensus(o.evaluation.judgements).detections}
        for cid, images in o.to_flip.items():
            label = next(name for name, low, high in FLIP_BINS if images >= low and (high is None or images <= high))
            counts[(o.scenario.partition, label)][0] += found[cid]
            counts[(o.scenario.partition, label)][1] += 1
    lines = ["| data | images of the flipped class in the flipper's shard | flippers | found |", "|---|---|---|---|"]
    lines += [
        f"| {data} | {label} | {counts[(data, label)][1]} | {counts[(data, label)][0]} |"
        for data in dict.fromkeys(o.scenario.partition for o in outcomes)
        for label, _, _ in FLIP_BINS
        if (data, label) in counts
    ]
    return "\n".join(lines)


def first_rounds(outcomes: list[Outcome]) -> str:
    """When each true attacker was first flagged by the consensus (rounds from 0; 'run' flagged on a run-level
    statistic only, which has no round; '–' never)."""
    rows: dict[str, list[str]] = defaultdict(list)
    for o in outcomes:
        for d in _consensus(o.evaluation.judgements).detections:
            rows[o.scenario.attack].append("–" if not d.flagged else "run" if d.round is None else str(d.round))
    order = {"run": 1, "–": 2}
    lines = ["| attack | first flagged round of every attacker (all runs) |", "|---|---|"]
    lines += [
        f"| {label} | {' '.join(sorted(r, key=lambda s: (order.get(s, 0), int(s) if s.isdigit() else 0)))} |"
        for label, r in rows.items()
    ]
    return "\n".join(lines)


def render(outcomes: list[Outcome]) -> str:
    attacked = [o for o in outcomes if o.scenario.attack != "none"]
    clean = len(attacked) < len(outcomes)  # --attacks may leave the clean federations out
    return "\n\n".join(
        ["### Per attack (pooled over 10 % / 20 % malicious, IID / non-IID, seeds)", attack_table(attacked)]
        + (["### Clean federations", clean_table(outcomes)] if clean else [])
        + ["### Per scenario", scenario_table(outcomes), "### Round of first detection", first_rounds(attacked)]
        + (["### Class flippers by what they had to flip", flip_table(attacked)] if any(o.to_flip for o in attacked) else [])
    )


def main() -> None:
    parser = bench_arguments(__doc__.splitlines()[0], DOC)
    parser.add_argument("--attacks", nargs="+", default=None, help="only these attack labels (default: all)")
    parser.add_argument("--marker", default=MARKER, help="the marked section of the doc to rewrite")
    parser.add_argument("--clients", type=int, default=None, help="clients of each federation (default: 10)")
    parser.add_argument("--clients-per-round", type=int, default=None, help="clients sampled a round (default: all)")
    args = parser.parse_args()
    extra = {"clients": args.clients, "clients_per_round": args.clients_per_round}
    scenarios = grid_only(grid(args.seeds, args.attacks, extra={k: v for k, v in extra.items() if v is not None}), args.only, parser.prog)
    ensure(scenarios, args.jobs)
    with ProcessPoolExecutor(args.jobs) as executor:
        outcomes = list(executor.map(audit, scenarios))
    # the default marker's tables hold the whole grid of the default seeds: a part of it is printed
    changed = {"--seeds": args.seeds != SEEDS, "--attacks": args.attacks, "--clients": args.clients, "--clients-per-round": args.clients_per_round}
    part = [option for option, value in changed.items() if value] if args.marker == MARKER else []
    publish(render(outcomes), DOC, args.marker, args.print, " ".join(part + ["--only"] * bool(args.only)))


if __name__ == "__main__":
    main()
