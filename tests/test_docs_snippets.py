"""The Python examples of README.md and docs/ run as written (given the names their text says the reader's loop holds)."""

from __future__ import annotations

import re
from pathlib import Path

from synthetic import make_run

ROOT = Path(__file__).resolve().parents[1]


def snippet(doc: str, after: str) -> str:
    """The first ```python block of ``doc`` (a path from the repository's root) after the text ``after``."""
    section = (ROOT / doc).read_text().split(after, 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def run_snippet(doc: str, after: str, **names: object) -> dict:
    """Run the snippet with ``names`` defined, as a reader's script would; what it defined."""
    scope = {"__name__": "docs_snippet", **names}
    exec(compile(snippet(doc, after), str(ROOT / doc), "exec"), scope)
    return scope


def test_the_evaluation_snippet_runs_both_ways(tmp_path, monkeypatch):
    """docs/html-report.md offered ``evaluate_report(report, truth)`` as a drop-in for ``evaluate_runs`` before
    ``.to_json()["pooled"]``: it returns one run's judgements, which have no "pooled" (a KeyError)."""
    make_run(tmp_path / "a.h5", attackers=("c3",), attack="boost", rounds=8)
    make_run(tmp_path / "b.h5", attackers=("c1",), attack="boost", rounds=8, seed=1)
    monkeypatch.chdir(tmp_path)
    scope = run_snippet("docs/html-report.md", "## `fedforensics evaluate")
    assert scope["pooled"][-1]["name"] == "consensus" and scope["pooled"][-1]["attackers"] == 2
    consensus = scope["judged"][-1]
    assert consensus["name"] == "consensus" and consensus["attackers"] == 1
