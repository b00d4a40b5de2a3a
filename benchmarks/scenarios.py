"""The grid of demo federations the attack and detection benchmarks run on, simulated once and cached.

    python benchmarks/scenarios.py [--seeds 0 1 2] [--jobs 2]     # FEDFORENSICS_BENCH_CACHE=DIR: cache elsewhere

Each scenario is a ``SimulationConfig``; its run file is named after the settings that differ from
the defaults, so a cached file is reused only for the same configuration.
"""

from __future__ import annotations

import argparse
import fnmatch
import itertools
import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from fedforensics.simulate import SimulationConfig

CACHE = Path(os.environ.get("FEDFORENSICS_BENCH_CACHE", Path(__file__).parent / ".cache"))

#: (label, settings) of every attack the benchmarks cover; "none" is the clean federation.
ATTACKS = [
    ("none", {"attack": "none"}),
    ("backdoor", {"attack": "backdoor"}),
    ("backdoor (target-class)", {"attack": "backdoor", "flavour": "target-class"}),
    ("scaling", {"attack": "scaling"}),
    ("bounded-backdoor", {"attack": "bounded-backdoor"}),
    ("dba", {"attack": "dba"}),
    ("sybil", {"attack": "sybil"}),
    ("label-flip", {"attack": "label-flip"}),
    ("class-flip", {"attack": "class-flip"}),
    ("noise", {"attack": "noise"}),
    ("sign-flip", {"attack": "sign-flip"}),
    ("alie", {"attack": "alie"}),
    ("min-max", {"attack": "min-max"}),
]
FRACTIONS = [0.1, 0.2]
PARTITIONS = {"iid": {"partition": "iid"}, "non-iid": {"partition": "dirichlet", "alpha": 0.5}}


@dataclass(frozen=True)
class Scenario:
    attack: str  # the label in ATTACKS
    fraction: float
    partition: str
    seed: int
    extra: tuple[tuple[str, object], ...] = ()

    @property
    def config(self) -> SimulationConfig:
        settings = dict(ATTACKS)[self.attack] | PARTITIONS[self.partition] | dict(self.extra)
        fraction = 0.0 if settings["attack"] == "none" else self.fraction
        return SimulationConfig(seed=self.seed, malicious_fraction=fraction, **settings)

    @property
    def path(self) -> Path:
        return run_path(self.config)

    @property
    def name(self) -> str:
        """As the per-scenario tables print it, seeds apart: "backdoor, 20%, iid"."""
        return f"{self.attack}, {self.fraction:.0%}, {self.partition}"


def run_path(config: SimulationConfig) -> Path:
    """The cache file of a configuration, named after the settings that differ from the defaults."""
    defaults = asdict(SimulationConfig())
    changed = {k: v for k, v in asdict(config).items() if v != defaults[k]}
    name = "_".join(f"{k}={v}" for k, v in sorted(changed.items())) or "default"
    return CACHE / f"{name.replace('/', '-')}.h5"


def grid(
    seeds: list[int],
    attacks: list[str] | None = None,
    partitions: list[str] | None = None,
    extra: dict[str, object] | None = None,
) -> list[Scenario]:
    """Every attack at every fraction (the clean federation once), every partition and seed; ``extra``: settings
    of every federation beside those (e.g. the number of clients)."""
    out = []
    for (label, _), partition, seed in itertools.product(ATTACKS, partitions or list(PARTITIONS), seeds):
        if attacks is not None and label not in attacks:
            continue
        for fraction in [0.0] if label == "none" else FRACTIONS:
            out.append(Scenario(label, fraction, partition, seed, tuple(sorted((extra or {}).items()))))
    return out


def _simulate(config: SimulationConfig) -> Path:
    from fedforensics.simulate import simulate

    path = run_path(config)
    if not path.exists():
        tmp = path.with_suffix(".part")
        simulate(config, tmp, overwrite=True)
        tmp.replace(path)
    return path


def ensure_configs(configs: list[SimulationConfig], jobs: int = 2) -> list[Path]:
    """The run file of every configuration, simulating those not cached yet (``jobs`` processes)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    missing = [c for c in configs if not run_path(c).exists()]
    if missing:
        print(f"simulating {len(missing)} federations into {CACHE} ({jobs} processes)", flush=True)
        with ProcessPoolExecutor(jobs) as pool:
            for i, _ in enumerate(pool.map(_simulate, missing), 1):
                print(f"  {i}/{len(missing)}", end="\r", flush=True)
    return [run_path(c) for c in configs]


def ensure(scenarios: list[Scenario], jobs: int = 2) -> list[Path]:
    """The run file of every scenario, simulating those not cached yet (``jobs`` processes)."""
    return ensure_configs([s.config for s in scenarios], jobs)


def final_metrics(path: Path) -> dict[str, float]:
    """The last round's global metrics (accuracy, attack success) of a run."""
    from fedforensics import open_run

    with open_run(path) as run:
        return run.global_metrics(run.rounds[-1])


#: The seeds of the grid's tables.
SEEDS = [0, 1, 2]


def bench_arguments(description: str, doc: Path) -> argparse.ArgumentParser:
    """The options of a benchmark over the grid: ``--seeds``, ``--jobs``, ``--print``, ``--only`` (:func:`grid_only`)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--seeds", type=int, nargs="+", default=SEEDS, help=f"default: {SEEDS}; others are printed")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--print", action="store_true", help=f"print the tables instead of writing {doc.name}")
    only_option(parser, doc, 'scenarios ("ATTACK, FRACTION%%, iid|non-iid", every seed)')
    return parser


def grid_only(scenarios: list[Scenario], patterns: list[str] | None, prog: str) -> list[Scenario]:
    """The ``scenarios`` whose :attr:`Scenario.name` a pattern of ``--only`` matches (:func:`selected`)."""
    names = set(selected(list(dict.fromkeys(s.name for s in scenarios)), patterns, prog))
    return [s for s in scenarios if s.name in names]


def listed_federations(
    description: str, runs_file: Path, out: Path, command: list[str], doc: Path, label: Callable[[str], str] = str
) -> tuple[argparse.Namespace, dict[str, list[str]], list[Path]]:
    """A red-team benchmark's start: its options (``--jobs``, ``--print``, ``--only``), the federations ``runs_file``
    lists (a name, then the script's arguments, a line each; ``#`` starts a comment line) that ``--only`` selects (on
    the name or its ``label`` in the table) and their run files, recorded where ``out`` lacks them
    (:func:`record_listed`)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--jobs", type=int, default=2, help="federations recorded and audited at once")
    parser.add_argument("--print", action="store_true", help=f"print the table instead of writing {doc.name}")
    only_option(parser, doc)
    args = parser.parse_args()
    listed = read_listed(runs_file)
    runs = {name: listed[name] for name in selected(list(listed), args.only, parser.prog, label)}
    return args, runs, record_listed(runs, out, command, args.jobs)


def only_option(parser: argparse.ArgumentParser, doc: Path, what: str = "federations") -> None:
    """``--only PATTERN ...``: a subset of a benchmark's ``what`` (:func:`selected`), whose rows are printed and
    ``doc`` left as it is (:func:`publish`)."""
    parser.add_argument(
        "--only", nargs="+", metavar="PATTERN",
        help=f"only the {what} whose name, as the tables print it, matches a PATTERN (a glob with * ? [...], else a "
        f"substring): simulates and prints those alone, {doc.name} left as it is",
    )  # fmt: skip


def group(name: str) -> str:
    """A red team's group of federations, as its table prints it: the name without its seed (``_sN``)."""
    return name.rsplit("_s", 1)[0]


def selected(names: list[str], patterns: list[str] | None, prog: str, label: Callable[[str], str] = str) -> list[str]:
    """The ``names`` (in their order) that a pattern of ``--only`` matches, on the name or its ``label`` (what the
    table prints): a glob where it has ``*``, ``?`` or ``[``, else a substring; every name without patterns. A
    pattern that matches nothing ends the script: one line naming what there is, exit code 2."""
    if not patterns:
        return names

    def matches(pattern: str, text: str) -> bool:
        return fnmatch.fnmatchcase(text, pattern) if any(c in pattern for c in "*?[") else pattern in text

    for pattern in patterns:
        if not any(matches(pattern, name) or matches(pattern, label(name)) for name in names):
            print(f"{prog}: --only {pattern!r} matches none of: {'; '.join(dict.fromkeys(map(label, names)))}", file=sys.stderr)
            raise SystemExit(2)
    return [name for name in names if any(matches(p, name) or matches(p, label(name)) for p in patterns)]


def read_listed(runs_file: Path) -> dict[str, list[str]]:
    """The federations a red team's ``runs_file`` lists: name → the script's arguments, in the file's order (a
    federation a line, its name first; ``#`` starts a comment line)."""
    lines = [line.split() for line in runs_file.read_text().splitlines() if line.strip() and not line.startswith("#")]
    return {name: arguments for name, *arguments in lines}


def record_listed(runs: dict[str, list[str]], out: Path, command: list[str], jobs: int = 2) -> list[Path]:
    """Record each federation of ``runs`` that ``out`` lacks, ``jobs`` at a time: ``command`` plus its arguments,
    where ``OUT`` in ``command`` names the file it writes (renamed to ``out/NAME.h5`` once whole)."""
    out.mkdir(parents=True, exist_ok=True)

    def record(name: str, args: list[str]) -> Path:
        path = out / f"{name}.h5"
        if not path.exists():
            partial = path.with_suffix(".partial.h5")
            subprocess.run([str(partial) if part == "OUT" else part for part in command] + args, check=True, stdout=subprocess.DEVNULL)
            partial.rename(path)
            print(f"recorded {name}: {shlex.join(args)}", file=sys.stderr)
        return path

    with ThreadPoolExecutor(jobs) as pool:  # each recording is its own process
        return list(pool.map(lambda item: record(*item), runs.items()))


def audit_listed(path: Path) -> dict[str, object]:
    """What a red-team table needs of one federation's audit (:func:`listed_table`)."""
    from fedforensics import open_run
    from fedforensics.analysis import analyze

    with open_run(path) as run:
        truth = set(run.ground_truth or [])
        report = analyze(run)
        success = run.global_metrics(run.rounds[-1]).get("attack_success") if run.rounds else None
    attackers = [v for v in report.verdicts if v.client in truth]
    honest = [v for v in report.verdicts if v.client not in truth and v.verdict != "benign"]
    return {
        "attackers": len(attackers),
        "found": sum(v.verdict != "benign" for v in attackers),
        "honest": sum(v.client not in truth for v in report.verdicts),
        "malicious": sum(v.verdict == "malicious" for v in honest),
        "suspicious": sum(v.verdict == "suspicious" for v in honest),
        "by": sorted({name for v in honest for name in v.flagged_by}),
        "success": success,
    }


def listed_table(names: list[str], paths: list[Path], jobs: int) -> str:
    """Audit the federations of a red team's list, ``jobs`` at a time, and tabulate them per group (the name
    without its seed): attackers found, honest clients flagged and the detectors that flagged them."""
    from collections import defaultdict
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(jobs) as pool:
        audits = list(pool.map(audit_listed, paths))
    groups: dict[str, list[dict[str, object]]] = defaultdict(list)
    for name, result in zip(names, audits):
        groups[group(name)].append(result)
    keys = ("attackers", "found", "honest", "malicious", "suspicious")
    # where the runs record the attack's success on held-out data (global metric "attack_success"), its final value
    measured = any(r["success"] is not None for r in audits)
    lines = [
        "| federations (seeds) | attackers found | honest clients | honest `malicious` | honest `suspicious` | detectors flagging honest clients |"
        + (" final attack success (each seed) |" if measured else ""),
        "|---|---|---|---|---|---|" + ("---|" if measured else ""),
    ]
    for name, results in groups.items():
        total = {key: sum(r[key] for r in results) for key in keys}
        found = f"{total['found']} of {total['attackers']}" if total["attackers"] else "–"
        by = ", ".join(sorted({d for r in results for d in r["by"]})) or "–"
        success = " ".join(f"{r['success']:.2f}" for r in results if r["success"] is not None) or "–"
        lines.append(
            f"| {name} ({len(results)}) | {found} | {total['honest']} | {total['malicious']} | {total['suspicious']} | {by} |"
            + (f" {success} |" if measured else "")
        )
    total = {key: sum(r[key] for r in audits) for key in keys}
    lines += [
        "",
        f"Over the {len(audits)} federations: {total['found']} of {total['attackers']} attackers found; of {total['honest']} "
        f"honest clients, {total['malicious']} `malicious` and {total['suspicious']} `suspicious`.",
    ]
    return "\n".join(lines)


def red_team_bench(description: str, script: str, runs: str, cache: str, marker: str) -> None:
    """A red-team benchmark's whole job: record what ``CACHE/cache`` lacks of the federations ``redteam/runs``
    lists, with ``redteam/script`` (its run file the first argument), audit each with the default detectors
    and rewrite the table between ``marker``'s markers of docs/detection.md (or print it)."""
    here = Path(__file__).resolve().parent
    doc = here.parent / "docs" / "detection.md"
    command = [sys.executable, str(here / "redteam" / script), "OUT"]
    args, listed, paths = listed_federations(description, here / "redteam" / runs, CACHE / cache, command, doc, group)
    publish(listed_table(list(listed), paths, args.jobs), doc, marker, args.print, "--only" if args.only else "")


def publish(tables: str, doc: Path, marker: str, print_only: bool, subset: str = "") -> None:
    """Print ``tables``, or put them between ``<!-- MARKER:start -->`` and ``<!-- MARKER:end -->``
    in ``doc``, keeping the prose around them. ``subset``: the option that made them of a part of what the marked
    table holds; they are printed then, and ``doc`` left as it is (a partial table never replaces a whole one)."""
    if print_only or subset:
        print(tables)
        if subset and not print_only:
            print(f"{subset}: a part of the table printed; {doc.name}'s {marker} table left as it is", file=sys.stderr)
        return
    start, end = f"<!-- {marker}:start -->", f"<!-- {marker}:end -->"
    block = f"{start}\n{tables}\n{end}"
    doc.write_text(re.sub(re.escape(start) + ".*?" + re.escape(end), lambda _: block, doc.read_text(), flags=re.S))
    print(f"wrote {doc}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=SEEDS)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    paths = ensure(grid(args.seeds), args.jobs)
    print(json.dumps({str(p.name): final_metrics(p) for p in paths}, indent=1))


if __name__ == "__main__":
    main()
