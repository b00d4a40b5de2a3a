"""Quality floors on a third red team's federations: benchmarks/redteam/torch_archs.py, a plain-PyTorch FedAvg on
architectures the thresholds never saw (BatchNorm CNN, LayerNorm residual MLP, wide-and-deep).

The cases are rows of docs/detection.md's "A third check" table where the detectors do their job; the table also
lists where they do not (label flippers of the sequence models under label skew).
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch")

from redteam_floor import assert_attackers_found_and_honest_clients_not  # noqa: E402

HARNESS = Path(__file__).resolve().parents[1] / "benchmarks" / "redteam" / "torch_archs.py"
CASES = {
    # sign flippers among a CNN's BatchNorm buffers, label-skewed shards
    "bncnn-signflip": "bncnn dir0.3 signflip 2",
    # label flippers of a residual MLP with LayerNorm, label-skewed shards
    "resln-labelflip": "resln dir0.3 labelflip 4",
    # inner-product manipulation on a wide-and-deep model whose head comes first in its state dict
    "wide-ipm": "wide iid ipm 5",
    # no attacker: Dirichlet 0.1, 8 of 12 clients a round
    "bncnn-clean-skew": "bncnn dir0.1 none 1 --per-round 8",
}


@pytest.mark.parametrize("name", list(CASES))
def test_every_attacker_found_and_no_honest_client_flagged(name, tmp_path):
    attackers = 0 if "clean" in name else 2
    assert_attackers_found_and_honest_clients_not(HARNESS, CASES[name], tmp_path / f"{name}.h5", attackers)
