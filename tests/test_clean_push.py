"""The clean push: which clients pushed the model toward the label trigger inversion flags, and what it adds to the
verdicts (``fedforensics.inversion.attribution``, ``ConsensusRule.corroborate``)."""

from __future__ import annotations

import math
import re
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

torch = pytest.importorskip("torch")

from fedforensics import open_run  # noqa: E402
from fedforensics.analysis import analyze  # noqa: E402
from fedforensics.audit import AuditOptions, run_audit  # noqa: E402
from fedforensics.cli import app  # noqa: E402
from fedforensics.errors import FedForensicsError, RunFormatError  # noqa: E402
from fedforensics.evaluate import evaluate_runs  # noqa: E402
from fedforensics.detectors.base import DetectorResult, Evidence  # noqa: E402
from fedforensics.inversion.attribution import clean_push  # noqa: E402
from fedforensics.notes import label_mix_note, persistence_note  # noqa: E402
from fedforensics.report.json import report_to_json  # noqa: E402
from fedforensics.settings import parse_settings  # noqa: E402
from fedforensics.simulate import SimulationConfig, simulate  # noqa: E402
from fedforensics.verdict import CLEAN_PUSH, ClientVerdict, ConsensusRule  # noqa: E402
from fedforensics.zoo import digits_cnn  # noqa: E402
from recorder import Recorder  # noqa: E402

torch.set_num_threads(1)

CNN = "fedforensics.zoo:digits_cnn"
TARGET = 6


def _verdict(cid: str, strengths: dict[str, float], verdict: str = "benign") -> ClientVerdict:
    return ClientVerdict(cid, verdict, sum(max(0.0, s) for s in strengths.values()), [], strengths, rounds=30)


def test_a_benign_client_is_suspicious_when_its_push_and_its_unmixed_score_both_reach_the_rule():
    rule = ConsensusRule()
    verdicts = [
        _verdict("both", {"norm": 0.9, "layer-deviation": 0.7}),  # unmixed 1.6 >= 1.5, push 1.6
        _verdict("push only", {"norm": 0.3}),
        _verdict("score only", {"norm": 0.9, "layer-deviation": 0.9}),
        # a score of 2.4, but 1.5 of it from output-bias, which the same label mix as the push raises
        _verdict("label mix", {"output-bias": 1.5, "norm": 0.9}),
        _verdict("flagged", {"norm": 2.5}, "malicious"),
        _verdict("unscored", {"norm": 0.9, "layer-deviation": 0.9}),
    ]
    push = {"both": 1.6, "push only": 4.0, "score only": 1.2, "label mix": 3.0, "flagged": 5.0}
    judged = {v.client: v for v in rule.corroborate(verdicts, push, TARGET, label_mix={"output-bias"})}
    assert judged["both"].verdict == "suspicious"
    evidence = judged["both"].evidence[0]
    assert (evidence.detector, evidence.client, evidence.round, evidence.value) == (CLEAN_PUSH, "both", None, 1.6)
    assert f"label {TARGET}" in evidence.detail and "1.60" in evidence.detail
    assert judged["both"].first_round is None  # a mean over the run has no round
    assert {cid for cid, v in judged.items() if v.verdict == "benign"} == {"push only", "score only", "label mix", "unscored"}
    assert judged["flagged"].verdict == "malicious" and judged["flagged"].evidence == []  # only benign clients change
    assert [v.client for v in rule.corroborate(verdicts, push, TARGET)][:3] == ["flagged", "label mix", "both"]
    # without the label-mix detectors named, output-bias counts, and its client is suspicious
    assert rule.unmixed_score(verdicts[3], {"output-bias"}) == pytest.approx(0.9)
    assert rule.unmixed_score(verdicts[3], ()) == pytest.approx(2.4)
    # the cut-offs are the rule's parameters; --set verdict.push=inf switches the push off
    assert [v.verdict for v in ConsensusRule(push=math.inf).corroborate(verdicts, push, TARGET)] == [
        "malicious", *["benign"] * 5,
    ]  # fmt: skip
    looser = ConsensusRule(push=1.0, push_score=1.0)
    assert {v.client for v in looser.corroborate(verdicts, push, TARGET) if v.verdict == "suspicious"} == {
        "both", "score only", "label mix",
    }  # fmt: skip


def _flagging(name: str, scores: dict[str, float], family: str, standalone: bool = True, label_mix: bool = False):
    """A detector's result of threshold 1 that flags the clients scoring 1 or more."""
    flagged = [c for c, s in scores.items() if s >= 1]
    evidence = [Evidence(name, c, 1, None, s, "x") for c, s in scores.items() if c in flagged]
    return DetectorResult(
        name, "ref", {}, 1.0, scores, flagged, {}, {}, evidence, family=family, standalone=standalone, label_mix=label_mix
    )  # fmt: skip


def test_no_note_reads_a_clients_flags_as_the_grounds_of_a_verdict_its_push_made():
    """A label-skewed client's output-bias flag left it benign; its push beside norm and median-cosine made it
    suspicious, and the label-mix note said it "is suspicious on output-bias alone, a flag an honest client also
    reaches when its data hold an unusual mix of labels"."""
    results = [
        _flagging("output-bias", {"skewed": 1.7, "mixed": 1.7}, "magnitude", standalone=False, label_mix=True),
        _flagging("cosine-hdbscan", {"skewed": 0.2, "mixed": 1.1}, "direction", label_mix=True),
        _flagging("norm", {"skewed": 0.8, "mixed": 0.1}, "magnitude"),
        _flagging("median-cosine", {"skewed": 0.8, "mixed": 0.1}, "direction"),
    ]
    rule = ConsensusRule()
    verdicts = rule.judge({"skewed": 5, "mixed": 5}, results, {})
    assert [(v.client, v.verdict) for v in verdicts] == [("mixed", "suspicious"), ("skewed", "benign")]
    pushed = rule.corroborate(verdicts, {"skewed": 2.0}, TARGET, {"output-bias", "cosine-hdbscan"})
    assert {v.client: v.verdict for v in pushed} == {"skewed": "suspicious", "mixed": "suspicious"}
    note = label_mix_note(pushed, results, {})
    assert note is not None and note.startswith("client mixed is suspicious on cosine-hdbscan and output-bias alone"), note


def test_the_persistence_note_does_not_read_a_pushed_clients_set_aside_flags_as_still_standing():
    """Where the clients' differences persist, one family's flag below `strong` leaves a client benign; the push
    beside it made the client suspicious, and the note listed it as "still flagged ... read the flags as 'unlike the
    others'", though its verdict rests on the push."""
    results = [
        _flagging("norm", {"steady": 1.2, "other": 0.1, "third": 0.2}, "magnitude"),
        _flagging("median-cosine", {"steady": 0.4, "other": 0.1, "third": 0.1}, "direction"),
    ]
    rule = ConsensusRule()
    verdicts = rule.judge({"steady": 5, "other": 5, "third": 5}, results, {}, persistence=0.99)
    assert all(v.verdict == "benign" for v in verdicts)
    pushed = rule.corroborate(verdicts, {"steady": 2.0}, TARGET)
    assert pushed[0].client == "steady" and pushed[0].verdict == "suspicious" and pushed[0].made_by_push
    persistence = SimpleNamespace(median=0.99, pairs=40)
    assert "still flagged" not in (persistence_note(persistence, pushed, results, rule) or "")
    # a client its flags alone left suspicious there is still named
    alike = rule.judge({"steady": 5, "other": 5, "third": 5}, results, {}, persistence=0.5)
    assert "still flagged" in persistence_note(persistence, [replace(alike[0], verdict="suspicious")], results, rule)


def test_the_push_is_the_first_evidence_of_the_verdict_it_made():
    """The reports show a suspect's first evidence as its grounds: a flag that had left the client benign
    (output-bias's, "corroborates only") stood there for a verdict the push made."""
    flag = Evidence("output-bias", "skewed", 3, None, 1.7, "output bias far from the round's median")
    skewed = ClientVerdict("skewed", "benign", 3.3, ["output-bias"], {"output-bias": 1.7, "norm": 1.6}, [flag], 30)
    [judged] = ConsensusRule().corroborate([skewed], {"skewed": 2.0}, TARGET, {"output-bias"})
    assert judged.verdict == "suspicious" and [e.detector for e in judged.evidence] == [CLEAN_PUSH, "output-bias"]


@pytest.mark.parametrize("name", ["push", "push_score"])
def test_the_push_cut_offs_must_be_positive(name):
    with pytest.raises(FedForensicsError, match=f"{name}=0"):
        ConsensusRule(**{name: 0})
    with pytest.raises(FedForensicsError, match="is not a number"):
        ConsensusRule(**{name: "1.5"})


def _state(model: torch.nn.Module) -> dict[str, np.ndarray]:
    return {k: v.numpy().copy() for k, v in model.state_dict().items()}


def _record_pushes(
    path: Path, rounds: int = 6, clean: bool = True, compression: str | None = None
) -> tuple[Path, np.ndarray, np.ndarray]:
    """A run of the digits CNN in which client ``evil`` raises the output bias of ``TARGET`` every round (the others
    send small noise), ``late`` takes part from round 4 on (2 rounds), and round 2 holds three clients only; with
    clean data of every label."""
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    state = _state(digits_cnn())
    bias = [k for k in state if k.endswith("bias")][-1]
    x = rng.random((200, 1, 8, 8), dtype=np.float32)
    y = np.arange(200) % 10
    with Recorder(path, compression=compression) as rec:
        for r in range(rounds):
            ids = ["a", "b", "c"] if r == 2 else ["evil", "a", "b", "c", "d", "e"] + (["late"] if r >= 4 else [])
            with rec.round(r, state) as rnd:
                for cid in ids:
                    local = {k: v + 0.01 * rng.standard_normal(v.shape).astype(v.dtype) for k, v in state.items()}
                    if cid == "evil":
                        local[bias] = local[bias] + 0.5 * (np.arange(10) == TARGET)
                    if cid == "e" and r == 1:
                        local[bias] = local[bias] * np.nan  # a broken update: NaN in its round, left out of its mean
                    rnd.client(cid, local, num_samples=50)
        if clean:
            rec.attach("clean_data", x=x, y=y)
    return path, x, y


def test_the_client_that_raises_the_label_pushes_toward_it_and_no_one_else_does(tmp_path):
    path, x, y = _record_pushes(tmp_path / "run.h5")
    seen = []
    with open_run(path) as run:
        push = clean_push(run, digits_cnn, x, y, TARGET, progress=lambda done, total: seen.append((done, total)))
    assert push.label == TARGET and push.samples == int((y != TARGET).sum())
    assert push.scores["evil"] > 5  # most rounds at the winsorising clip, 10
    honest = {cid: s for cid, s in push.scores.items() if cid != "evil"}
    assert set(honest) == {"a", "b", "c", "d", "e"} and max(abs(s) for s in honest.values()) < 1.5, honest
    # round 2 (three clients) is not compared; "late" (2 rounds) is too rarely seen; "e"'s NaN round is left out
    assert push.rounds == {"evil": 5, "a": 5, "b": 5, "c": 5, "d": 5, "e": 4, "late": 2}
    assert "late" not in push.scores
    assert seen == [(i, 5) for i in range(1, 6)]
    assert push.strongest(2)[0] == ("evil", push.scores["evil"])
    assert push.to_json()["scores"]["evil"] == pytest.approx(push.scores["evil"], abs=1e-4)
    # at most max_samples inputs, a seeded draw
    with open_run(path) as run:
        assert clean_push(run, digits_cnn, x, y, TARGET, max_samples=50).samples == 50


def test_a_round_of_too_few_finite_pushes_scores_no_one(tmp_path):
    """Three of six clients' updates hold NaN in round 1: the three left were compared on a spread of three values
    (one of them could reach the clip, 10), where no detector compares fewer than 4 clients."""
    rng = np.random.default_rng(1)
    state = _state(digits_cnn())
    path = tmp_path / "nan.h5"
    with Recorder(path) as rec:
        for r in range(4):
            with rec.round(r, state) as rnd:
                for i in range(6):
                    local = {k: v + 0.01 * rng.standard_normal(v.shape).astype(v.dtype) for k, v in state.items()}
                    rnd.client(f"c{i}", {k: v * np.nan for k, v in local.items()} if r == 1 and i >= 3 else local, num_samples=50)
    x = rng.random((100, 1, 8, 8), dtype=np.float32)
    with open_run(path) as run:
        push = clean_push(run, digits_cnn, x, np.arange(100) % 10, TARGET)
    assert push.rounds == {f"c{i}": 3 for i in range(6)}


def test_the_models_see_the_clean_inputs_in_batches(tmp_path):
    """A thousand inputs went through the model at once, where the checks before the inversion feed it 512 at most:
    a large model's activations could outgrow the memory those checks found enough."""
    path, x, y = _record_pushes(tmp_path / "run.h5")
    seen: list[int] = []

    def factory() -> torch.nn.Module:
        model = digits_cnn()
        model.register_forward_pre_hook(lambda module, args: seen.append(len(args[0])))
        return model

    with open_run(path) as run:
        push = clean_push(run, factory, np.tile(x, (6, 1, 1, 1)), np.tile(y, 6), TARGET)
    assert push.samples == 1000 and set(seen) == {512, 488}


class _Strict(torch.nn.Module):
    """The digits CNN, whose forward refuses weights that hold NaN (as a model with its own checks does)."""

    def __init__(self) -> None:
        super().__init__()
        self.net = digits_cnn()

    def state_dict(self, *args, **kwargs):
        return self.net.state_dict(*args, **kwargs)

    def load_state_dict(self, state, *args, **kwargs):
        return self.net.load_state_dict(state, *args, **kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not all(bool(torch.isfinite(p).all()) for p in self.net.parameters()):
            raise RuntimeError("weights hold NaN")
        return self.net(x)


def test_a_model_that_fails_on_a_clients_weights_is_one_line_of_bad_input(tmp_path):
    """Client ``e``'s round-1 update holds NaN; a model whose forward refuses such weights passed every check before
    the inversion (they load the global model only) and ended the audit as "internal error", exit 3."""
    path, x, y = _record_pushes(tmp_path / "run.h5")
    with open_run(path) as run, pytest.raises(FedForensicsError) as info:
        clean_push(run, _Strict, x, y, TARGET)
    assert str(info.value) == "the model failed on client e's model of round 1 measuring the clean push: weights hold NaN"


def _flag_target(monkeypatch: pytest.MonkeyPatch) -> None:
    """Trigger inversion replaced by its result: it flags ``TARGET``."""

    class Flagged:
        flagged_labels = [TARGET]
        clean_push = None

    monkeypatch.setattr("fedforensics.inversion.plan.invert_run", lambda *args, **kwargs: Flagged())


def _recording_stages() -> tuple[list[str], object]:
    """A progress factory for ``run_audit`` that records the stages' descriptions, in order, in the list."""
    stages: list[str] = []

    def progress(description: str):
        stages.append(description)
        return nullcontext(lambda done, total: None)

    return stages, progress


def test_analyze_with_a_model_measures_the_push_toward_the_flagged_label(tmp_path, monkeypatch):
    """Through the audit: the push is measured toward the label Neural Cleanse flags, written to the JSON, and the
    verdicts take it (the inversion itself is replaced by its result here; the quality test below runs it)."""
    path, _, _ = _record_pushes(tmp_path / "run.h5", rounds=8)
    _flag_target(monkeypatch)
    stages, progress = _recording_stages()
    report = run_audit(path, AuditOptions(model=CNN), progress)
    assert stages == ["trigger inversion (search epochs)", f"clean push toward label {TARGET} (rounds)", "scanning rounds"]
    assert report.trigger_inversion.clean_push.strongest(1)[0][0] == "evil"
    evil = next(v for v in report.verdicts if v.client == "evil")
    # the raised bias shows in the update statistics too: its verdict, whatever it is, is not benign
    assert evil.verdict != "benign"


def test_a_push_switched_off_is_not_measured(tmp_path, monkeypatch):
    path, _, _ = _record_pushes(tmp_path / "run.h5", rounds=8)
    _flag_target(monkeypatch)
    stages, progress = _recording_stages()
    report = run_audit(path, AuditOptions(model=CNN, settings=parse_settings(["verdict.push=inf"])), progress)
    assert stages == ["trigger inversion (search epochs)", "scanning rounds"]
    assert report.trigger_inversion.clean_push is None


def test_evaluate_with_a_model_refuses_bad_input_before_the_long_work(tmp_path):
    path, _, _ = _record_pushes(tmp_path / "run.h5", rounds=4)
    bare, _, _ = _record_pushes(tmp_path / "bare.h5", rounds=4, clean=False)
    truth = tmp_path / "truth.txt"
    truth.write_text("evil\n")
    for args, message in (
        ([str(path), "--data", str(path)], "--data needs --model"),
        ([str(path), str(bare), "--model", CNN], "trigger inversion needs clean data"),
        ([str(path), "--model", "no_such_module:build"], "no_such_module"),
    ):
        result = CliRunner().invoke(app, ["evaluate", *args, "--truth", str(truth)])
        assert result.exit_code == 2 and message in result.output, result.output
        assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1, result.output


@pytest.mark.parametrize("command", ["analyze", "evaluate"])
def test_push_settings_where_no_push_is_measured_are_refused(tmp_path, command):
    """Without --model (and in `evaluate`, which audits without one) the push is never measured: a --set of its
    cut-offs would change nothing, silently."""
    path, _, _ = _record_pushes(tmp_path / "run.h5", rounds=4)
    result = CliRunner().invoke(app, [command, str(path), "--set", "verdict.push=1"])
    assert result.exit_code == 2, result.output
    assert "--set verdict.push: the clean push is measured only by trigger inversion" in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1


def test_a_damaged_update_the_push_reads_is_named_with_its_file(tmp_path, monkeypatch):
    """The push reads every update before the scan does: a chunk that no longer decompresses was HDF5's bare
    "Can't synchronously read data" (the scan's reads say which file is damaged)."""
    path, _, _ = _record_pushes(tmp_path / "gz.h5", compression="gzip")
    with h5py.File(path, "r") as f:
        chunk = f["rounds/0000000001/updates/0002"].id.get_chunk_info(1)
    with open(path, "r+b") as raw:
        raw.seek(chunk.byte_offset + 8)
        raw.write(bytes(40))
    _flag_target(monkeypatch)
    with pytest.raises(RunFormatError, match=f"^{re.escape(str(path))}: damaged run file \\("):
        run_audit(path, AuditOptions(model=CNN))


def _simulated(tmp_path: Path, config: SimulationConfig) -> Path:
    path = tmp_path / "run.h5"
    simulate(config, path)
    return path


# PyOD-style floors on simulated federations (docs/detection.md, "Trigger inversion's clean push"): seeded runs,
# each audited as `fedforensics analyze RUN --model fedforensics.zoo:digits_cnn` audits it
QUALITY = {
    # two bounded backdoor attackers among label-skewed clients: the update statistics leave both benign
    "bounded-backdoor-noniid-seed505": (
        SimulationConfig(rounds=30, seed=505, attack="bounded-backdoor", partition="dirichlet", alpha=0.5), True,
    ),
    # clean, label-skewed: Neural Cleanse flags label 5 by chance; no client may be flagged for it
    "clean-noniid-seed0": (
        SimulationConfig(rounds=30, attack="none", malicious_fraction=0.0, partition="dirichlet", alpha=0.5), False,
    ),
    # clean, 10 of 20 label-skewed clients a round: an honest client pushes toward the label flagged by chance
    "clean-partial-noniid-seed301": (
        SimulationConfig(
            rounds=30, seed=301, clients=20, clients_per_round=10, attack="none", malicious_fraction=0.0,
            partition="dirichlet", alpha=0.5,
        ), False,
    ),
}


@pytest.mark.parametrize("case", list(QUALITY))
def test_the_push_finds_attackers_the_update_statistics_miss_and_flags_no_honest_client(case, tmp_path):
    config, attacked = QUALITY[case]
    path = _simulated(tmp_path, config)
    report = run_audit(path, AuditOptions(model=CNN))
    with open_run(path) as run:
        truth = set(run.ground_truth or [])
        without = {v.client: v.verdict for v in analyze(run).verdicts}
    flagged = {v.client for v in report.verdicts if v.verdict != "benign"}
    assert not flagged - truth, f"honest clients flagged: {flagged - truth}"
    push = report.trigger_inversion.clean_push
    assert push is not None and push.label == report.trigger_inversion.flagged_labels[0]
    if attacked:
        assert all(without[cid] == "benign" for cid in truth)  # what the push is for
        assert flagged == truth
        # `fedforensics evaluate --model` judges the same verdicts
        consensus = next(j for j in evaluate_runs([path], model=CNN).pooled if j.name == "consensus")
        assert (consensus.recall, consensus.precision) == (1.0, 1.0)
        assert all(v.evidence[0].detector == CLEAN_PUSH for v in report.verdicts if v.client in truth)
        written = report_to_json(report)
        assert set(written["trigger_inversion"]["clean_push"]["scores"]) == set(without)
    else:
        assert not flagged and not truth
        assert math.isfinite(max(push.scores.values()))
