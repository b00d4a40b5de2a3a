"""An update's excess before the model's last BatchNorm (fedforensics/normalization.py) and what the verdict makes of it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fedforensics import open_run
from fedforensics.analysis import analyze
from fedforensics.normalization import after_last_batchnorm, normalized_excess_clients
from fedforensics.report.html import render_html
from fedforensics.report.json import report_to_json
from fedforensics.run import Layer
from recorder import Recorder

#: A BatchNorm model's state in PyTorch's order; as in a fresh-eyes auditor's CNN, the head after the BatchNorm holds
#: a small share of an update's length (there 330 of 4,600 parameters), so that its direction is the other layers'.
BN_MODEL = {
    "0.weight": (64, 32), "0.bias": (64,), "1.weight": (64,), "1.bias": (64,), "1.running_mean": (64,),
    "1.running_var": (64,), "1.num_batches_tracked": (), "2.weight": (10, 64), "2.bias": (10,),
}  # fmt: skip
HEAD = ("2.weight", "2.bias")


def _layers(names: list[str], analysable: bool = True) -> list[Layer]:
    return [Layer(i, name, (4,), np.dtype("float32"), analysable) for i, name in enumerate(names)]


def test_the_layers_after_the_last_batchnorm_are_found_by_its_running_statistics():
    names = list(BN_MODEL)
    assert after_last_batchnorm(_layers(names)) == list(HEAD)
    two = ["conv.weight", "bn1.running_mean", "bn1.running_var", "fc1.weight", "bn2.running_var", "fc.weight", "fc.bias"]
    assert after_last_batchnorm(_layers(two)) == ["fc.weight", "fc.bias"]
    assert after_last_batchnorm(_layers(["fc1.weight", "ln.weight", "ln.bias", "fc2.weight"])) == []  # no running stats
    assert after_last_batchnorm(_layers(["fc.weight", "bn.running_mean", "bn.running_var"])) == []  # nothing after it
    layers = _layers(names)
    layers[-1] = Layer(8, "2.bias", (10,), np.dtype("float32"), False)
    assert after_last_batchnorm(layers) == ["2.weight"]  # not analysable: not compared


def test_an_excess_before_the_last_batchnorm_is_told_from_a_scaled_update():
    clients = ["a", "b", "c", "d", "long-step", "scaled"]
    norms = np.array([1.0, 1.1, 0.9, 1.0, 6.0, 6.0])
    head = np.array([1.0, 1.0, 1.1, 0.9, 1.2, 6.1]) ** 2  # squared: as RoundData.layer_sq_norms holds them
    assert normalized_excess_clients(clients, norms, head) == ["long-step"]
    assert normalized_excess_clients(clients[:2], norms[:2], head[:2]) == []  # two are no round
    assert normalized_excess_clients(clients, norms, np.zeros(6)) == []  # a head nobody moved says nothing
    shorter = np.array([1.0, 1.1, 0.9, 1.0, 0.5, 1.0])  # a short update with a still shorter head: no excess
    assert "long-step" not in normalized_excess_clients(clients, shorter, (head * 0.01))


def _bn_run(
    path: Path, shapes: dict[str, tuple[int, ...]], rounds: int = 12, seed: int = 0, factors: dict[str, float] | None = None
) -> Path:
    """Ten clients of a BatchNorm model, the head (:data:`HEAD`) moving a tenth as much as the other layers:
    ``long-step`` (honest) sends 8× updates in the layers before the BatchNorm and an ordinary head, every round, as
    a last batch of two samples makes; ``scaled`` sends its whole update 8×. ``factors``: instead, layer name ->
    the factor by which ``long-step`` alone moves that layer."""
    rng = np.random.default_rng(seed)
    ids = [f"c{i}" for i in range(8)] + ["long-step", "scaled"]
    glob = {k: np.zeros(s, np.int64 if k.endswith("num_batches_tracked") else np.float32) for k, s in shapes.items()}
    floats = [k for k in shapes if not k.endswith("num_batches_tracked")]
    with Recorder(path, overwrite=True) as rec:
        for r in range(rounds):
            common = {k: rng.normal(size=shapes[k]) for k in floats}
            with rec.round(r, glob) as rnd:
                for cid in ids:
                    state = {}
                    for k in shapes:
                        if k not in common:
                            state[k] = np.array(10, np.int64)
                            continue
                        u = (common[k] + 0.6 * rng.normal(size=shapes[k])) * (0.1 if k in HEAD else 1.0)
                        if factors is not None:
                            u *= factors.get(k, 1.0) if cid == "long-step" else 1.0
                        elif cid == "scaled" or (cid == "long-step" and k not in HEAD):
                            u *= 8.0
                        state[k] = u.astype(np.float32)
                    rnd.client(cid, state, num_samples=50, delta=True)
        rec.ground_truth(["scaled"])
    return path


def test_an_honest_long_step_before_a_batchnorm_is_suspicious_and_a_scaled_update_malicious(tmp_path):
    """Four honest clients whose last local batch held 2–3 samples were malicious on `norm` and `layer-deviation`
    (one family, strong) in a fresh-eyes auditor's BatchNorm CNN federations: their excess lay before the last
    BatchNorm, the output layer ordinary. Such flags are not strong alone; a scaled update, longer in every layer,
    still is. The same update in a model without BatchNorm is judged as before."""
    with open_run(_bn_run(tmp_path / "bn.h5", BN_MODEL)) as run:
        report = analyze(run)
    verdicts = {v.client: v for v in report.verdicts}
    assert verdicts["long-step"].verdict == "suspicious"
    assert {"norm", "layer-deviation"} <= set(verdicts["long-step"].flagged_by)
    assert verdicts["long-step"].strengths["norm"] >= 2.0  # strong: malicious but for the BatchNorm
    assert verdicts["scaled"].verdict == "malicious"
    assert all(v.verdict == "benign" for cid, v in verdicts.items() if cid.startswith("c"))
    (note,) = [n for n in report.notes if "BatchNorm" in n]
    assert note.startswith("client long-step (12 of its 12 rounds) is suspicious on") and "(2.weight, 2.bias)" in note
    assert "scaled (" not in note  # its head was as long as the rest
    # k is defined, and "theirs" is not left to guess (a fresh-eyes auditor)
    assert "longer than the round's median update, k times its length, while its layers after the model's last BatchNorm" in note
    assert "were at most 0.5·k times the median length of those layers" in note and "theirs" not in note
    # the reports say which layers the rule compared, and state the rule's BatchNorm clause only for such a model
    assert report_to_json(report)["batchnorm_head"] == ["2.weight", "2.bias"]
    assert "the layers after the model's last BatchNorm were not" in render_html(report)

    plain = {k.replace("running_", "stat_"): s for k, s in BN_MODEL.items()}  # no BatchNorm to be recognized
    with open_run(_bn_run(tmp_path / "plain.h5", plain)) as run:
        report = analyze(run)
    assert {v.client: v.verdict for v in report.verdicts}["long-step"] == "malicious"
    assert not [n for n in report.notes if "BatchNorm" in n]
    # a review: the HTML stated the BatchNorm clause for every model, one without BatchNorm too
    assert report_to_json(report)["batchnorm_head"] == [] and "BatchNorm" not in render_html(report)


def test_running_statistics_are_no_slices_of_layer_deviation(tmp_path):
    """A BatchNorm's running statistics are not trained: their change is set by the number of batches a client took
    (tiny honest clients of a fresh-eyes engineer's BatchNorm CNN were suspicious on them alone, and they topped
    the localization table of a red team's backdoor). A client whose running statistics alone move 10x is not
    flagged by layer-deviation, nor are they rows of the localization table."""
    factors = {"1.running_mean": 10.0, "1.running_var": 10.0}
    with open_run(_bn_run(tmp_path / "stats.h5", BN_MODEL, factors=factors)) as run:
        result = analyze(run).detector("layer-deviation")
    assert not result.flagged
    assert {row["layer"] for row in result.extras["localization"]} == {"0.weight", "0.bias", "1.weight", "1.bias", *HEAD}
