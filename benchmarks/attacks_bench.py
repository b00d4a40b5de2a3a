"""Do the attacks of ``fedforensics simulate`` take hold? Final main-task accuracy and attack success
of every attack at 10 % and 20 % malicious clients, IID and non-IID, seeds 0-2 (``scenarios.py``).

    python benchmarks/attacks_bench.py            # simulates what is not cached, then writes docs/attacks.md
    python benchmarks/attacks_bench.py --print    # only print the tables
    python benchmarks/attacks_bench.py --only "dba*"   # those rows (a glob or substring), beside the clean federations

The tables go between the markers in ``docs/attacks.md``; the prose around them is kept.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from pathlib import Path

import numpy as np
from scenarios import ATTACKS, SEEDS, Scenario, bench_arguments, ensure, grid, grid_only, publish

from fedforensics import open_run

DOC = Path(__file__).resolve().parent.parent / "docs" / "attacks.md"
TIMELINE_ROUNDS = (0, 2, 5, 10, 20, 29)

History = list[dict[str, float]]


def history(path: Path) -> History:
    """The global metrics of every round of a run."""
    with open_run(path) as run:
        return [run.global_metrics(r) for r in run.rounds]


def trigger_success(path: Path) -> float:
    """Share of the held-out images not of the target that the run's final model sends to the target
    once stamped with the default trigger: the chance level of attack success for a clean federation."""
    import torch

    from fedforensics import zoo
    from fedforensics.simulate import SimulationConfig, make_trigger

    torch.set_num_threads(1)
    config = SimulationConfig()
    with open_run(path) as run:
        model = zoo.build(config.model, tuple(run.meta["image_shape"]), run.meta["num_classes"])
        model.load_state_dict({k: torch.from_numpy(v) for k, v in run.final_state().items()})
        clean = run.attachment("clean_data")
    others = clean["x"][clean["y"] != config.target]
    stamped = make_trigger(config.trigger, tuple(run.meta["image_shape"])).stamp(others)
    with torch.no_grad():
        return float((model(torch.from_numpy(stamped)).argmax(1) == config.target).float().mean())


def spread(values: list[float], spec: str = ".3f") -> str:
    """``mean [min–max]`` over seeds."""
    return f"{statistics.mean(values):{spec}} [{min(values):{spec}}–{max(values):{spec}}]"


def last_rounds(group: list[History], metric: str) -> list[float]:
    """Each run's ``metric`` averaged over its last 5 rounds (the final round alone swings)."""
    return [float(np.mean([m[metric] for m in h[-5:]])) for h in group]


def outcome_table(histories: dict[Scenario, History]) -> str:
    """Per attack × malicious fraction × data: final accuracy and attack success over seeds, beside the clean run."""
    groups: dict[tuple[str, float, str], list[History]] = defaultdict(list)
    for s, h in histories.items():
        groups[(s.attack, s.fraction, s.partition)].append(h)
    clean = {p: statistics.mean(h[-1]["accuracy"] for h in groups[("none", 0.0, p)]) for _, _, p in groups}
    lines = [
        "| attack | malicious | data | final accuracy | Δ vs clean | accuracy, last 5 rounds | final attack success | attack success, last 5 rounds |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for (label, fraction, partition), group in groups.items():
        accuracy = [h[-1]["accuracy"] for h in group]
        cells = [spread(accuracy), f"{statistics.mean(accuracy) - clean[partition]:+.3f}", spread(last_rounds(group, "accuracy"))]
        if "attack_success" in group[0][-1]:
            cells += [spread([h[-1]["attack_success"] for h in group]), spread(last_rounds(group, "attack_success"))]
        else:
            cells += ["–", "–"]
        lines.append(f"| {label} | {fraction:.0%} | {partition} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def chance_table(clean: dict[Scenario, float]) -> str:
    """The default trigger on the clean federations' final models."""
    lines = ["| data | seeds | share of triggered non-6 images classified 6 |", "|---|---|---|"]
    for partition in dict.fromkeys(s.partition for s in clean):
        lines.append(f"| {partition} | {sum(s.partition == partition for s in clean)} | "
                     f"{spread([v for s, v in clean.items() if s.partition == partition])} |")  # fmt: skip
    return "\n".join(lines)


def timeline_table(histories: dict[Scenario, History]) -> str:
    """Attack success by round for the backdoor attacks at 20 % on IID data, mean over seeds."""
    lines = ["| attack (20 %, IID) | " + " | ".join(f"round {r}" for r in TIMELINE_ROUNDS) + " |", "|---|" + "---|" * len(TIMELINE_ROUNDS)]
    for label, _ in ATTACKS:
        runs = [h for s, h in histories.items() if (s.attack, s.fraction, s.partition) == (label, 0.2, "iid")]
        if runs and "attack_success" in runs[0][0]:
            cells = [f"{statistics.mean(h[r]['attack_success'] for h in runs):.2f}" for r in TIMELINE_ROUNDS]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def render(histories: dict[Scenario, History], chance: dict[Scenario, float]) -> str:
    return "\n\n".join(
        [
            f"### Final accuracy and attack success (mean [min–max] over seeds {', '.join(str(s) for s in sorted({s.seed for s in histories}))})",
            outcome_table(histories),
            "### Attack success of a clean model (the chance level)",
            chance_table(chance),
            "### Attack success over the rounds",
            timeline_table(histories),
        ]
    )


def main() -> None:
    parser = bench_arguments(__doc__.splitlines()[0], DOC)
    args = parser.parse_args()
    scenarios = grid(args.seeds)
    if args.only:  # with the clean federations, which the "Δ vs clean" column compares to
        picked = grid_only(scenarios, args.only, parser.prog)
        scenarios = [s for s in scenarios if s in picked or (s.attack == "none" and any(p.partition == s.partition for p in picked))]
    ensure(scenarios, args.jobs)
    histories = {s: history(s.path) for s in scenarios}
    chance = {s: trigger_success(s.path) for s in scenarios if s.attack == "none"}
    part = " ".join(["--seeds"] * (args.seeds != SEEDS) + ["--only"] * bool(args.only))
    publish(render(histories, chance), DOC, "attacks-bench", args.print, part)


if __name__ == "__main__":
    main()
