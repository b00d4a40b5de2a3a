"""A second red team's federations: a numpy MLP written apart from everything else (``redteam/numpy_mlp.py``), audited.

    python benchmarks/numpy_bench.py [--jobs 2] [--print]

Simulates what ``benchmarks/.cache/numpy/`` lacks of ``redteam/numpy_runs.txt`` (88 federations, about
2 minutes on 2 cores), audits each with the default detectors and rewrites the table between the
``numpy-redteam`` markers of docs/detection.md: per group of federations (the name without its seed),
the attackers found and the honest clients flagged, with the detectors that flagged them.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from scenarios import CACHE, listed_federations, publish

from fedforensics import open_run
from fedforensics.analysis import analyze

HERE = Path(__file__).resolve().parent
DOC = HERE.parent / "docs" / "detection.md"
RUNS = HERE / "redteam" / "numpy_runs.txt"
OUT = CACHE / "numpy"


def audit(path: Path) -> dict[str, object]:
    """What the table needs of one federation's audit."""
    with open_run(path) as run:
        truth = set(run.ground_truth or [])
        report = analyze(run)
    attackers = [v for v in report.verdicts if v.client in truth]
    honest = [v for v in report.verdicts if v.client not in truth and v.verdict != "benign"]
    return {
        "attackers": len(attackers),
        "found": sum(v.verdict != "benign" for v in attackers),
        "honest": sum(v.client not in truth for v in report.verdicts),
        "malicious": sum(v.verdict == "malicious" for v in honest),
        "suspicious": sum(v.verdict == "suspicious" for v in honest),
        "by": sorted({name for v in honest for name in v.flagged_by}),
    }


def group(name: str) -> str:
    """The federation's group: its name without the seed."""
    return name.rsplit("_s", 1)[0]


def main() -> None:
    args, runs, paths = listed_federations(__doc__.splitlines()[0], RUNS, OUT, [sys.executable, str(HERE / "redteam" / "numpy_mlp.py"), "OUT"], DOC)
    with ProcessPoolExecutor(args.jobs) as pool:
        audits = list(pool.map(audit, paths))
    groups: dict[str, list[dict[str, object]]] = defaultdict(list)
    for name, result in zip(runs, audits):
        groups[group(name)].append(result)
    lines = [
        "| federations (seeds) | attackers found | honest clients | honest `malicious` | honest `suspicious` | detectors flagging honest clients |",
        "|---|---|---|---|---|---|",
    ]
    for name, results in groups.items():
        total = {key: sum(r[key] for r in results) for key in ("attackers", "found", "honest", "malicious", "suspicious")}
        found = f"{total['found']} of {total['attackers']}" if total["attackers"] else "–"
        by = ", ".join(sorted({d for r in results for d in r["by"]})) or "–"
        lines.append(f"| {name} ({len(results)}) | {found} | {total['honest']} | {total['malicious']} | {total['suspicious']} | {by} |")
    total = {key: sum(r[key] for r in audits) for key in ("attackers", "found", "honest", "malicious", "suspicious")}
    lines += [
        "",
        f"Over the {len(audits)} federations: {total['found']} of {total['attackers']} attackers found; of {total['honest']} "
        f"honest clients, {total['malicious']} `malicious` and {total['suspicious']} `suspicious`.",
    ]
    publish("\n".join(lines), DOC, "numpy-redteam", args.print)


if __name__ == "__main__":
    main()
