"""A fourteenth check's federations: attacks from the literature (``redteam/literature_attacks.py``), audited.

    python benchmarks/literature_bench.py [--jobs 1] [--print]

Records what ``benchmarks/.cache/literature/`` (``$FEDFORENSICS_BENCH_CACHE/literature``) lacks of
``redteam/literature_runs.txt`` (72 federations of the zoo's digits CNN: Fang et al.'s attacks on the trimmed mean, the
edge-case backdoor with and without PGD, a semantic backdoor, an A3FL-style optimized trigger, PoisonedFL, F3BA,
Chameleon, an IBA-style generator-made trigger, and clean controls under both servers; about 11 minutes on one core: 7 for the first 54, 4 for the 18 added in session 45), audits each with the default detectors and rewrites the
table between the ``literature-redteam`` markers of docs/detection.md.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

from scenarios import CACHE, listed_federations, publish

from fedforensics import open_run
from fedforensics.analysis import analyze

HERE = Path(__file__).resolve().parent
DOC = HERE.parent / "docs" / "detection.md"


def audit(path: Path) -> dict[str, object]:
    """One federation's figures: each attacker's verdict, the honest clients judged otherwise than benign (with the
    detectors that flagged them, or ``integrity`` where none did), the last round's accuracy and attack success."""
    with open_run(path) as run:
        truth = set(run.ground_truth or [])
        report = analyze(run)
        last = run.global_metrics(run.rounds[-1])
    return {
        "attackers": [v.verdict for v in report.verdicts if v.client in truth],
        "honest": sum(v.client not in truth for v in report.verdicts),
        "flagged": [f"{v.verdict} ({' + '.join(v.flagged_by) or 'integrity'})" for v in report.verdicts if v.client not in truth and v.verdict != "benign"],
        "accuracy": last.get("accuracy"),
        "success": last.get("attack_success"),
    }


def cell(results: list[dict[str, object]], key: str) -> str:
    values = [r[key] for r in results]
    return " / ".join("–" if v is None else f"{v:.2f}" for v in values)


def table(runs: dict[str, list[str]], audits: list[dict[str, object]]) -> str:
    """A row per federation and attack over its seeds (values per seed, ``/`` between them), then the totals."""
    groups: dict[str, list[tuple[list[str], dict[str, object]]]] = defaultdict(list)
    for (name, arguments), result in zip(runs.items(), audits):
        groups[name.rsplit("_s", 1)[0]].append((arguments, result))
    lines = [
        "| federation (seeds) | attack | attackers found | attackers' verdicts | honest clients flagged | final accuracy | final attack success |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, members in groups.items():
        setting = dict(zip(members[0][0][::2], members[0][0][1::2]))
        results = [r for _, r in members]
        attack = setting["--attack"] + (" (trimmed mean)" if setting.get("--server") == "trim" else "")
        verdicts = [v for r in results for v in r["attackers"]]
        found = f"{sum(v != 'benign' for v in verdicts)} of {len(verdicts)}" if verdicts else "–"
        judged = ", ".join(f"{verdicts.count(v)} {v}" for v in ("malicious", "suspicious", "benign") if v in verdicts) or "–"
        flagged = [f for r in results for f in r["flagged"]]
        kinds = ", ".join(f"{flagged.count(kind)} {kind}" for kind in sorted(set(flagged)))
        honest = f"{len(flagged)} of {sum(r['honest'] for r in results)}" + (f": {kinds}" if flagged else "")
        lines.append(f"| {name} ({len(results)}) | {attack} | {found} | {judged} | {honest} | {cell(results, 'accuracy')} | {cell(results, 'success')} |")
    verdicts = [v for r in audits for v in r["attackers"]]
    lines += [
        "",
        f"Over the {len(audits)} federations: {sum(v != 'benign' for v in verdicts)} of {len(verdicts)} attackers found "
        f"({verdicts.count('malicious')} `malicious`); of {sum(r['honest'] for r in audits)} honest clients, "
        f"{sum(len(r['flagged']) for r in audits)} flagged.",
    ]
    return "\n".join(lines)


def main() -> None:
    command = [sys.executable, str(HERE / "redteam" / "literature_attacks.py"), "OUT"]
    args, runs, paths = listed_federations(__doc__.splitlines()[0], HERE / "redteam" / "literature_runs.txt", CACHE / "literature", command, DOC)
    publish(table(runs, [audit(p) for p in paths]), DOC, "literature-redteam", args.print, "--only" if args.only else "")


if __name__ == "__main__":
    main()
