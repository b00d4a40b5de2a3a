"""docs/detectors.md shows how to write a detector: its snippet runs and its detector works."""

from __future__ import annotations

import re
from pathlib import Path

from synthetic import make_run

DOC = Path(__file__).resolve().parents[1] / "docs" / "detectors.md"


def test_the_example_detector_runs_and_flags_the_boosted_client(tmp_path, monkeypatch, capsys):
    section = DOC.read_text().split("## Writing a detector", 1)[1]
    snippet = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    make_run(tmp_path / "run.h5", attackers=("c3",), attack="boost", rounds=8)
    monkeypatch.chdir(tmp_path)
    exec(compile(snippet, str(DOC), "exec"), {"__name__": "detectors_doc"})
    assert capsys.readouterr().out.startswith("['c3'] [('c3', 'malicious'), ")
