"""docs/detection.md's re-run commands remake the tables they stand beside."""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "detection.md"
BENCH = "python3 benchmarks/detection_bench.py"
DEFAULT_MARKER = "detection-bench"


def default_seeds() -> list[int]:
    """The seeds ``detection_bench.py`` simulates without ``--seeds``."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from scenarios import SEEDS
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    return list(SEEDS)


def commands(text: str) -> dict[str, list[int]]:
    """Each marker a ``detection_bench.py`` command of the text's inline code writes (its ``--marker``, else the
    default), with the seeds it simulates; a span naming a marker that is not a whole command is kept as ``[]``."""
    out: dict[str, list[int]] = {}
    for span in re.findall(r"`([^`]*)`", text):
        words = shlex.split(" ".join(span.split()))
        if span.startswith(BENCH):
            args = words[2:]
        elif "--marker" in words:
            out[words[words.index("--marker") + 1]] = []
            continue
        else:
            continue
        marker = args[args.index("--marker") + 1] if "--marker" in args else DEFAULT_MARKER
        if "--only" in args:  # a subset, printed: it writes no table
            continue
        seeds = []
        if "--seeds" in args:
            for word in args[args.index("--seeds") + 1 :]:
                if word.startswith("--"):
                    break
                seeds.append(int(word))
        out.setdefault(marker, seeds or default_seeds())
    return out


def table_seeds(block: str) -> tuple[set[int], set[int]]:
    """The seeds a marked block's clean-federation table lists, and the per-scenario table's seed counts."""
    clean = block.split("### Clean federations", 1)[1].split("###", 1)[0] if "### Clean federations" in block else ""
    seeds = {int(m) for m in re.findall(r"^\| (?:iid|non-iid) \| (\d+) \|", clean, flags=re.M)}
    scenario = block.split("### Per scenario", 1)[1].split("###", 1)[0]
    counts = {int(m) for m in re.findall(r"^\| [^|]+ \| \d+% \| (?:iid|non-iid) \| (\d+) \|", scenario, flags=re.M)}
    return seeds, counts


def test_every_detection_bench_table_names_the_command_that_remakes_it_with_its_seeds():
    """The twenty-client control (seeds 300-302) was given as `--clients 20 --marker detection-bench-twenty`: run as
    written, the bench simulates seeds 0-2 and writes them into that table."""
    text = DOC.read_text()
    blocks = dict(re.findall(r"<!-- (detection-bench[\w-]*):start -->(.*?)<!-- \1:end -->", text, flags=re.S))
    assert len(blocks) >= 5 and DEFAULT_MARKER in blocks
    given = commands(text)
    wrong = {}
    for marker, block in blocks.items():
        seeds, counts = table_seeds(block)
        if not given.get(marker):
            wrong[marker] = "no whole re-run command names it"
        elif (seeds and seeds != set(given[marker])) or counts != {len(given[marker])}:
            wrong[marker] = f"the command simulates seeds {given[marker]}, the tables hold {sorted(seeds) or counts}"
    assert wrong == {}
