"""Red-team federations: an independently written FedAvg loop (``redteam/fedavg.py``), audited.

    python benchmarks/redteam_bench.py [--jobs 2] [--print] [--only PATTERN ...]

Trains what ``benchmarks/.cache/redteam/`` lacks of ``redteam/runs.txt`` (73 federations, about
29 minutes on 2 cores), audits each with the default detectors and rewrites the table between the
``redteam`` markers of docs/detection.md. The loop, its models, data split and attacks were written
apart from ``fedforensics simulate`` and the detectors, against the recorder's API alone. ``--only``: the
federations whose name matches a pattern (a glob, or a substring), trained and printed alone.
"""

from __future__ import annotations

import sys
from pathlib import Path

from scenarios import CACHE, listed_federations, publish

from fedforensics import open_run
from fedforensics.analysis import analyze

HERE = Path(__file__).resolve().parent
DOC = HERE.parent / "docs" / "detection.md"
RUNS = HERE / "redteam" / "runs.txt"
OUT = CACHE / "redteam"


def row(name: str, path: Path, args: list[str]) -> tuple[str, dict[str, int]]:
    """One table row, and the counts it adds to the totals."""
    with open_run(path) as run:
        truth = set(run.ground_truth or [])
        report = analyze(run)
    attackers = [v for v in report.verdicts if v.client in truth]
    honest = [v for v in report.verdicts if v.client not in truth]
    found = [v for v in attackers if v.verdict != "benign"]
    flagged = [v for v in honest if v.verdict != "benign"]
    setting = dict(zip(args[::2], args[1::2]))
    shape = f"{setting['--data']}, {setting['--model']}, {setting['--partition']}, {setting['--clients']} clients"
    if setting.get("--per-round"):
        shape += f" ({setting['--per-round']} a round)"
    attack = setting["--attack"] + (f" (jitter {setting['--jitter']})" if "--jitter" in setting else "")
    found_text = (
        f"{len(found)} of {len(attackers)} ({sum(v.verdict == 'malicious' for v in attackers)} malicious)" if attackers else "–"
    )
    honest_text = ", ".join(f"{v.verdict} by {' + '.join(v.flagged_by) or 'integrity'}" for v in flagged) or "none"
    counts = {
        "attackers": len(attackers),
        "found": len(found),
        "honest": len(honest),
        "honest_malicious": sum(v.verdict == "malicious" for v in flagged),
        "honest_suspicious": sum(v.verdict == "suspicious" for v in flagged),
    }
    return f"| {name} | {shape} | {attack} | {found_text} | {honest_text} |", counts


def main() -> None:
    args, runs, paths = listed_federations(__doc__.splitlines()[0], RUNS, OUT, [sys.executable, str(HERE / "redteam" / "fedavg.py"), "--out", "OUT"], DOC)
    lines = [
        "| federation | data, model, split | attack | attackers found | honest clients flagged |",
        "|---|---|---|---|---|",
    ]
    totals: dict[str, int] = {}
    for (name, fed_args), path in zip(runs.items(), paths):
        line, counts = row(name, path, fed_args)
        lines.append(line)
        totals = {k: totals.get(k, 0) + v for k, v in counts.items()}
    lines.append("")
    lines.append(
        f"Over the {len(runs)} federations: {totals['found']} of {totals['attackers']} attackers found; of "
        f"{totals['honest']} honest clients, {totals['honest_malicious']} `malicious` and "
        f"{totals['honest_suspicious']} `suspicious`."
    )
    publish("\n".join(lines), DOC, "redteam", args.print, "--only" if args.only else "")


if __name__ == "__main__":
    main()
