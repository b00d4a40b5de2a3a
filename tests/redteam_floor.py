"""The quality floor of the red teams' federations: one recorded by a harness apart from fedforensics, audited."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from fedforensics import open_run
from fedforensics.analysis import analyze


def assert_attackers_found_and_honest_clients_not(harness: Path, arguments: str, path: Path, attackers: int) -> None:
    """Record ``path`` with ``harness OUT arguments``: it holds ``attackers`` attackers, every one of them judged
    malicious or suspicious, and no honest client is."""
    subprocess.run([sys.executable, str(harness), str(path), *arguments.split()], check=True, capture_output=True)
    with open_run(path) as run:
        truth = run.ground_truth
        report = analyze(run)
    judged = {v.client: v.verdict for v in report.verdicts}
    assert all(judged[c] != "benign" for c in truth), judged
    assert [c for c, v in judged.items() if v != "benign" and c not in truth] == []
    assert len(truth) == attackers


def floor_cases(found: dict[str, tuple[str, int]], missed: dict[str, tuple[str, int]]) -> list[object]:
    """A red team's cases for ``pytest.mark.parametrize``: those of ``found`` (name → the harness's arguments and the
    attackers), then those of ``missed``, each a strict xfail (each fails the suite once the detectors find it)."""
    xfail = pytest.mark.xfail(strict=True, reason="missed: docs/detection.md")
    return [*found, *(pytest.param(name, marks=xfail) for name in missed)]
