"""The examples run as documented and record what they say they record."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from fedforensics import open_run

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _run(script: str, cwd: Path, *args: str) -> None:
    subprocess.run([sys.executable, str(EXAMPLES / script), *args], cwd=cwd, check=True, capture_output=True)


def test_pytorch_loop_records_every_round(tmp_path):
    pytest.importorskip("torch")
    _run("pytorch_loop.py", tmp_path)
    with open_run(tmp_path / "pytorch_loop.h5") as run:
        assert run.rounds == list(range(10))
        assert run.all_clients == [f"client{i}" for i in range(8)]
        assert run.global_metrics(9)["accuracy"] > 0.5
        assert run.has_final_state


def test_flower_digits_records_the_attack_and_the_truth(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("flwr")
    _run("flower_digits.py", tmp_path, "--rounds", "3", "--clients", "4", "--attackers", "1", "--no-analyze")
    with open_run(tmp_path / "flower_digits.h5") as run:
        assert run.rounds == [1, 2, 3]
        assert all(run.clients(r) == ["0", "1", "2", "3"] for r in run.rounds)
        assert len(run.ground_truth) == 1 and run.ground_truth[0] in run.clients(1)
        assert set(run.global_metrics(3)) == {"accuracy", "attack_success"}
        assert run.attachment("clean_data")["x"].shape[1:] == (1, 8, 8)
        assert run.has_final_state
