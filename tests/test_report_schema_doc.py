"""docs/report-schema.md names every field the three JSON reports write, and no field they do not write."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

from fedforensics import open_run
from fedforensics.analysis import analyze
from fedforensics.evaluate import evaluate_runs
from fedforensics.report.json import report_to_json
from fedforensics.summary import summarize

from synthetic import make_run
from test_html import fake_inversion

DOC = (Path(__file__).resolve().parents[1] / "docs" / "report-schema.md").read_text()


def _between(start: str, end: str) -> str:
    return DOC.split(start, 1)[1].split(end, 1)[0]


def _fields(text: str) -> list[str]:
    """The names in the first cell of each table row of ``text`` (`runs[].path`, or two names in one cell)."""
    cells = [line.split("|")[1] for line in text.splitlines() if line.startswith("| `")]
    return [name for cell in cells for name in re.findall(r"`([^`]+)`", cell)]


def _listed(text: str) -> set[str]:
    """The names a sentence lists in backticks, leaving out what its parentheses say of each."""
    while (plain := re.sub(r"\([^()]*\)", "", text)) != text:
        text = plain
    return set(re.findall(r"`([^`]+)`", text))


def _members(names: list[str], prefix: str) -> set[str]:
    return {name.removeprefix(prefix) for name in names if name.startswith(prefix)}


def test_the_audit_and_summary_fields_are_the_documented_ones(tmp_path):
    make_run(tmp_path / "run.h5", attackers=("c3",), attack="boost", rounds=8)
    with open_run(tmp_path / "run.h5") as run:
        report = dataclasses.replace(analyze(run), trigger_inversion=fake_inversion())
        summary = summarize(run).to_document()
    written = json.loads(json.dumps(report_to_json(report)))
    assert set(written) == {"format", "version", *_fields(_between("## Audit report", "### `clients[]`"))}
    run_row = next(line for line in DOC.splitlines() if line.startswith("| `run` |"))
    assert set(written["run"]) == _listed(run_row.split("writes them:", 1)[1])
    assert set(summary) == {"format", "version"} | _listed(_between("at the top level:", "\n\n"))
    clients = _between("### `clients[]`", "### `detectors[]`")
    assert set(written["clients"][0]) == set(_fields(clients))
    evidence_row = next(line for line in clients.splitlines() if line.startswith("| `evidence` |"))
    assert set(written["clients"][0]["evidence"][0]) == set(re.findall(r'"(\w+)"', evidence_row.split("}")[0]))
    assert set(written["detectors"][0]) == set(_fields(_between("### `detectors[]`", "### `trigger_inversion`")))
    inversion = written["trigger_inversion"]
    assert set(inversion) == set(_fields(_between("### `trigger_inversion`", "`classes[]`:")))
    assert set(inversion["classes"][0]) == set(_fields(_between("`classes[]`:", "## Evaluation report")))


def test_the_evaluation_fields_are_the_documented_ones(tmp_path):
    paths = [make_run(tmp_path / f"run{seed}.h5", attackers=("c3",), attack="boost", rounds=8, seed=seed) for seed in (0, 1)]
    written = evaluate_runs(paths).to_json()
    names = _fields(_between("## Evaluation report", "### `judgements[]`"))
    assert set(written) == {"format", "version"} | {name.split(".")[0].removesuffix("[]") for name in names}
    assert set(written["runs"][0]) == _members(names, "runs[].")
    assert set(written["pooled"]) == _members(names, "pooled.")
    judgements = set(_fields(_between("### `judgements[]`", "`--html PATH`")))
    assert set(written["runs"][0]["judgements"][0]) == set(written["pooled"]["judgements"][-1]) == judgements
