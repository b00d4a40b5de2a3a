"""``fedforensics analyze --model``: trigger inversion through the command line, and its bad inputs.

One backdoored digits CNN (``tests/backdoor.py``) is trained for the whole module and
recorded as the global model of a small run, with its held-out digits attached as clean data.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from rich.console import Console
from typer.testing import CliRunner

from fedforensics import audit, open_run  # noqa: F401  (audit: the module, patched below)
from fedforensics.audit import AuditOptions
from fedforensics.cli import app
from fedforensics.inversion.plan import plan_inversion
from fedforensics.report.terminal import trigger_inversion_table
from fedforensics.zoo import digits_cnn
from recorder import Recorder

from backdoor import TARGET, plus_trigger, trained
from test_html import fake_inversion

torch.set_num_threads(1)

CNN = "fedforensics.zoo:digits_cnn"


def record(path: Path, state: dict[str, np.ndarray], clean_data: tuple[np.ndarray, np.ndarray] | None) -> Path:
    """Two rounds of four clients around ``state`` (the global model of round 1 and the final one)."""
    rng = np.random.default_rng(0)
    with Recorder(path) as rec:
        for r, global_state in enumerate([{k: v.numpy() for k, v in digits_cnn().state_dict().items()}, state]):
            with rec.round(r, global_state) as rnd:
                for c in range(4):
                    local = {k: v + 0.01 * rng.standard_normal(v.shape).astype(np.float32) for k, v in global_state.items()}
                    rnd.client(f"c{c}", local, num_samples=50)
        rec.final(state)
        if clean_data is not None:
            rec.attach("clean_data", x=clean_data[0], y=clean_data[1])
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """The backdoored run (with clean data attached), the same without it, and input files good and bad."""
    folder = tmp_path_factory.mktemp("analyze_inversion")
    model, x, y = trained("cnn", 0, True)
    state = {k: v.numpy() for k, v in model.state_dict().items()}
    mask, pattern = plus_trigger()
    files = {
        "run": record(folder / "backdoored.h5", state, (x, y)),
        "bare": record(folder / "bare.h5", state, None),
        "clean": folder / "clean.npz",
        "no_y": folder / "no_y.npz",
        "flat": folder / "flat.npz",
        "small": folder / "small.npz",
        "trigger": folder / "trigger.npz",
        "bad_trigger": folder / "bad_trigger.npz",
        "complex_trigger": folder / "complex_trigger.npz",
        "empty_trigger": folder / "empty_trigger.npz",
    }
    np.savez(files["clean"], x=x[:240].astype(np.float64), y=y[:240])  # fewer than attached: shows which was used
    np.savez(files["no_y"], x=x)
    np.savez(files["flat"], x=x.reshape(len(x), -1), y=y)
    np.savez(files["small"], x=x[:, :, :4, :4], y=y)
    np.savez(files["trigger"], mask=mask, pattern=pattern)
    np.savez(files["bad_trigger"], mask=mask[:4, :4], pattern=pattern)
    np.savez(files["complex_trigger"], mask=mask + 1j, pattern=pattern)  # the imaginary part was dropped
    np.savez(files["empty_trigger"], mask=np.zeros_like(mask), pattern=pattern)  # probed as "pulls to label 0" (a tie)
    return files


def analyze(*args: object):
    return CliRunner().invoke(app, ["analyze", *map(str, args)])


def test_analyze_inverts_the_final_model_with_the_attached_clean_data(runs, tmp_path):
    out, page = tmp_path / "out.json", tmp_path / "out.html"
    result = analyze(runs["run"], "--model", CNN, "--json", out, "--html", page)
    assert result.exit_code == 0, result.output
    inversion = json.loads(out.read_text())["trigger_inversion"]
    assert (inversion["round"], inversion["model"], inversion["samples"]) == (1, "final", 300)
    assert inversion["flagged_labels"] == [TARGET] and inversion["threshold"] == 2.0
    assert [c["label"] for c in inversion["classes"] if c["flagged"]] == [TARGET]
    target = inversion["classes"][TARGET]
    assert target["anomaly_index"] > 2 and target["attack_success"] >= 0.9
    printed = " ".join(result.stdout.split())  # the terminal wraps the table's title and verdict
    assert "trigger inversion: Neural Cleanse on the final model (after round 1), 300 clean samples" in printed
    assert f"label {TARGET} flagged: backdoor suspected (mask L1" in printed
    panel = " ".join(result.stdout.replace("│", " ").split())  # the audit panel wraps inside its border
    assert f"trigger inversion suspects a backdoor in the final model (after round 1) toward label {TARGET} (anomaly index" in panel
    assert '<section id="inversion">' in page.read_text()


def test_analyze_takes_clean_data_and_a_probe_trigger_from_files(runs, tmp_path):
    out = tmp_path / "out.json"
    result = analyze(runs["run"], "--model", CNN, "--data", runs["clean"], "--probe-trigger", runs["trigger"], "--json", out)
    assert result.exit_code == 0, result.output
    inversion = json.loads(out.read_text())["trigger_inversion"]
    assert inversion["samples"] == 240 and inversion["flagged_labels"] == [TARGET]
    probe = {s["name"]: s for s in inversion["probe"]["sets"]}
    assert probe["trigger"]["target"] == TARGET and probe["trigger"]["pulled"] >= 0.8
    # the terminal says it too (a fresh-eyes user saw --probe-trigger change nothing there)
    shown = " ".join(result.stdout.split())
    assert "trigger probe: share of the clean samples predicted as the label, stamped and as they are" in shown, shown
    clean = probe["clean"]["histogram"][TARGET] / sum(probe["clean"]["histogram"])
    assert f"│ trigger │ {TARGET} │ {probe['trigger']['pulled']:.0%} │ {clean:.0%} │" in shown, shown


@pytest.fixture
def no_scan(monkeypatch):
    """Fail the test if the detectors' scan starts: bad inversion input must be refused before it."""

    def scan(*args: object, **kwargs: object) -> None:
        raise AssertionError("the scan started before the inputs were checked")

    monkeypatch.setattr(audit, "analyze", scan)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "no_such_module_xyz:build"], "cannot import no_such_module_xyz"),
        (["--model", "fedforensics.zoo:no_such_model"], "has no attribute 'no_such_model'"),
        (["--model", "fedforensics.zoo:digits_mlp"], "the model does not match the run {run}"),
        (["--model", CNN, "--data", "no_y"], "no array y"),
        (["--model", CNN, "--data", "flat"], r"x has shape (300, 64); expected (N, C, H, W) or (N, H, W): the trigger is stamped on "
         "images; for a model of flat inputs give x as (N, 1, H, W) and make the factory's module flatten them itself"),
        (["--model", CNN, "--data", "small"], "the model cannot take the clean data's inputs of shape (1, 4, 4)"),
        (["--model", CNN, "--data", "missing"], "no such file"),
        (["--model", CNN, "--round", "7"], "round 7 is not in {run} (rounds 0..1)"),
        (["--model", CNN, "--round", "last"], "--round 'last': expected a round number of {run}"),
        (["--model", CNN, "--rounds", "some"], "--rounds 'some': the only value is 'all'"),
        (["--model", CNN, "--probe-trigger", "bad_trigger"], "mask has shape (4, 4)"),
        (["--model", CNN, "--probe-trigger", "complex_trigger"], "complex_trigger.npz: mask holds complex numbers"),
        (["--model", CNN, "--probe-trigger", "empty_trigger"], "empty_trigger.npz: the mask is all zero, so the trigger stamps nothing"),
        (["--data", "clean"], "--data, --round, --rounds and --probe-trigger need --model"),
        (["--model", CNN, "--every", "2"], "--every needs --rounds all"),  # was silently ignored
    ],
)
def test_bad_input_is_one_line_and_exit_2_before_the_scan(runs, tmp_path, no_scan, args, message):
    out = tmp_path / "out.json"
    files = {"no_y", "flat", "small", "clean", "bad_trigger", "complex_trigger", "empty_trigger"}
    args = [runs[a] if a in files else tmp_path / "missing.npz" if a == "missing" else a for a in args]
    assert_refused(analyze(runs["run"], *args, "--json", out), message.replace("{run}", str(runs["run"])), out)


def assert_refused(result, message: str, out: Path) -> None:
    """Exit 2 with one line holding ``message``, no traceback and no report written."""
    assert result.exit_code == 2, result.output
    assert result.stdout == "" and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert message in result.stderr
    assert not out.exists()


def one_per_label(y: np.ndarray, labels: int) -> np.ndarray:
    """Indices of the first sample of each of the first ``labels`` labels."""
    return np.array([np.flatnonzero(y == k)[0] for k in range(labels)])


TOO_FEW = "trigger inversion needs at least 2 samples of each of 2 labels"
BAD_DATA = {  # file name: (its arrays from the good clean data x (float64), y; the words of the refusal)
    "labels_1e30": (lambda x, y: {"x": x, "y": np.full(len(y), 1e30)}, "labels_1e30.npz: label 1e+30 is too large"),
    "labels_uint64_max": (lambda x, y: {"x": x, "y": np.full(len(y), 2**64 - 1, np.uint64)}, "label 18446744073709551615 is too large"),
    "labels_text": (lambda x, y: {"x": x, "y": y.astype(str)},  # said "labels must be class indices ..., got <U21"
                    "labels_text.npz: labels are text (the first is '6'), not class indices: give each sample's class as "
                    "the model numbers it, a whole number ≥ 0 (y.astype(int) for numbers stored as text)"),
    "x_beyond_float32": (lambda x, y: {"x": np.where(np.arange(x.size).reshape(x.shape) == 0, 1e300, x), "y": y},
                         "x_beyond_float32.npz: x holds 1e+300, beyond float32's range"),
    "x_complex": (lambda x, y: {"x": x + 1j, "y": y}, "x_complex.npz: x holds complex numbers"),
    "x_huge_in_float32": (lambda x, y: {"x": (x + 1) * 1e38, "y": y},  # was blamed on the model's averaged weights
                          "x_huge_in_float32.npz: the final model gives NaN or Inf class scores on these inputs, which run from 1e+38 to 2e+38, "
                          "and finite ones on them scaled to [-1, 1]"),
    "three": (lambda x, y: {"x": x[:3], "y": np.array([0, 0, 1])}, f"three.npz: 3 samples, one label with 2 or more; {TOO_FEW}"),
    "four_labels": (lambda x, y: {"x": x[one_per_label(y, 4)], "y": y[one_per_label(y, 4)]}, f"4 samples, no label with 2 or more; {TOO_FEW}"),
    "one_per_label": (lambda x, y: {"x": x[one_per_label(y, 10)], "y": y[one_per_label(y, 10)]}, f"10 samples, no label with 2 or more; {TOO_FEW}"),
    "one_label": (lambda x, y: {"x": x, "y": np.zeros_like(y)}, f"240 samples, one label with 2 or more; {TOO_FEW}"),
}  # fmt: skip


@pytest.mark.filterwarnings("error")  # a cast that overflows or drops an imaginary part warns: fail on it
@pytest.mark.parametrize("name", list(BAD_DATA))
def test_bad_clean_data_is_refused_on_its_own_dtype_before_the_scan(runs, tmp_path, no_scan, name):
    """Labels 1e30 or 2**64 - 1 wrapped to negative int64 and passed; a float64 pixel beyond float32 became Inf and
    was blamed on the model; a complex x lost its imaginary part; 4 to 10 samples failed after the scan."""
    make, message = BAD_DATA[name]
    with np.load(runs["clean"]) as clean:
        np.savez(tmp_path / f"{name}.npz", **make(clean["x"], clean["y"]))
    out = tmp_path / "out.json"
    assert_refused(analyze(runs["run"], "--model", CNN, "--data", tmp_path / f"{name}.npz", "--json", out), message, out)


BAD_MODELS = """
import torch

from fedforensics.zoo import digits_cnn


def flat_mlp():  # examples/pytorch_loop.py's model: it flattens its inputs itself, the model takes (N, 64)
    return torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))


def wrapped(change):
    model = digits_cnn()
    forward = model.forward
    model.forward = lambda x: change(forward(x), x)
    return model


def tuple_out():
    return wrapped(lambda scores, x: (scores, None))


def detached():
    return wrapped(lambda scores, x: scores.detach())


def integer_scores():
    return wrapped(lambda scores, x: scores.argmax(1, keepdim=True).expand(-1, 10))


def one_class():
    return wrapped(lambda scores, x: scores[:, :1])


def one_row():
    return wrapped(lambda scores, x: scores[:1])


def fails_on_many():
    def change(scores, x):
        if len(x) > 2:
            raise RuntimeError("too many inputs")
        return scores
    return wrapped(change)


def fails_midway():
    calls = []
    def change(scores, x):
        calls.append(len(x))
        if len(calls) > 30:  # past every check before the search: it fails in the search itself
            raise RuntimeError("my model gave up")
        return scores
    return wrapped(change)


def refuses_states():
    model = digits_cnn()
    def load_state_dict(*args, **kwargs):
        raise RuntimeError("no loading")
    model.load_state_dict = load_state_dict
    return model
"""


@pytest.fixture(scope="module")
def bad_models(tmp_path_factory) -> Path:
    """A folder holding ``inversion_bad_models.py``: digits CNNs whose output trigger inversion cannot use."""
    folder = tmp_path_factory.mktemp("bad_models")
    (folder / "inversion_bad_models.py").write_text(BAD_MODELS)
    (folder / "inversion_raises_on_import.py").write_text("raise RuntimeError('config file missing')\n")
    (folder / "inversion_imports_a_missing_package.py").write_text("import no_such_package_xyz\n")
    return folder


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        ("tuple_out", "the model returns a tuple; trigger inversion needs a tensor of class scores (N, classes)"),
        ("detached", "the model's class scores are not differentiable with respect to its input"),
        ("integer_scores", "the model returns torch.int64 class scores; trigger inversion needs floating-point scores"),
        ("one_class", "the model returns 1 class score per input; trigger inversion needs 2 classes or more"),
        ("one_row", "the model returns shape (1, 10) for 2 inputs; trigger inversion needs class scores (2, classes)"),
        ("fails_on_many", "the model fails on the clean data: too many inputs"),
        ("refuses_states", "the model cannot load the final model: no loading"),
    ],
)
def test_a_model_whose_output_cannot_be_inverted_is_refused_before_the_scan(runs, tmp_path, bad_models, no_scan, monkeypatch, factory, message):
    """A tuple output was an AttributeError traceback, a detached one an autograd error after the scan, both exit 1
    (the --fail-on code)."""
    monkeypatch.syspath_prepend(str(bad_models))
    out = tmp_path / "out.json"
    assert_refused(analyze(runs["run"], "--model", f"inversion_bad_models:{factory}", "--json", out), message, out)


def test_a_model_that_fails_midway_through_the_search_is_bad_input_not_a_defect(runs, tmp_path, bad_models, monkeypatch):
    """A fresh-eyes user's model raised on its 51st call, after every check: 'internal error ... a defect of
    fedforensics', exit 3. An error out of the model's forward pass is the model's; the audit ends with exit 2."""
    monkeypatch.syspath_prepend(str(bad_models))
    out = tmp_path / "out.json"
    result = analyze(runs["run"], "--model", "inversion_bad_models:fails_midway", "--json", out)
    assert_refused(result, "error: the model failed during trigger inversion: my model gave up", out)


@pytest.mark.parametrize(
    ("module", "message"),
    [
        ("inversion_raises_on_import", "importing inversion_raises_on_import failed (config file missing)"),
        ("inversion_imports_a_missing_package", "importing inversion_imports_a_missing_package failed (No module named 'no_such_package_xyz')"),
        ("no_such_module_xyz", "cannot import no_such_module_xyz from the current folder or the Python path"),
        ("no_such_package_xyz.model", "cannot import no_such_package_xyz.model from the current folder or the Python path"),
    ],
)
def test_a_model_module_that_fails_as_it_imports_is_told_from_one_not_found(tmp_path, bad_models, no_scan, runs, monkeypatch, module, message):
    """A fresh-eyes user's module raised while importing and was said not to be found ("cannot import ... from the
    current folder or the Python path")."""
    monkeypatch.syspath_prepend(str(bad_models))
    out = tmp_path / "out.json"
    assert_refused(analyze(runs["run"], "--model", f"{module}:build", "--json", out), message, out)


def test_a_model_of_flat_inputs_is_told_how_to_take_images(runs, tmp_path, bad_models, no_scan, monkeypatch):
    """A fresh-eyes user tried examples/pytorch_loop.py's MLP (flat inputs) with images and with flat data: neither
    refusal said what to do."""
    monkeypatch.syspath_prepend(str(bad_models))
    from inversion_bad_models import flat_mlp

    state = {k: v.detach().numpy() for k, v in flat_mlp().state_dict().items()}
    with Recorder(tmp_path / "flat.h5") as rec:
        for r in range(2):
            with rec.round(r, state) as rnd:
                for c in range(4):
                    rnd.client(f"c{c}", {k: v + 0.01 * c for k, v in state.items()}, num_samples=50)
    out = tmp_path / "out.json"
    result = analyze(tmp_path / "flat.h5", "--model", "inversion_bad_models:flat_mlp", "--data", runs["clean"], "--json", out)
    assert_refused(result, "(for a model of flat inputs give x as (N, 1, H, W) and make the factory's module flatten them itself", out)


def test_a_model_holding_nan_is_refused_before_the_scan(runs, tmp_path, no_scan):
    """A final model FedAvg spread a NaN into gave 'no label flagged': an all-clear for nothing inverted."""
    state = {k: v.numpy() for k, v in digits_cnn().state_dict().items()}
    state[next(iter(state))][0] = np.nan
    broken = record(tmp_path / "broken.h5", state, None)
    result = analyze(broken, "--model", CNN, "--data", runs["clean"])
    assert result.exit_code == 2, result.output
    assert "the final model holds NaN or Inf (in 0.weight): there is nothing to invert" in result.output


def test_a_model_whose_scores_are_not_finite_is_refused_before_the_scan(runs, tmp_path, no_scan):
    """Finite weights can still give NaN scores (a red-team CNN's BatchNorm variance went negative after averaging):
    Neural Cleanse then recovered NaN masks for every label and the report said 'no label flagged'."""
    state = {k: v.numpy() for k, v in digits_cnn().state_dict().items()}
    state["4.bias"][:] = np.float32(3e38)  # finite, but the classifier's sum of 64 such units overflows
    state["6.weight"][:] = 1.0
    assert all(np.isfinite(v).all() for v in state.values())
    broken = record(tmp_path / "overflowing.h5", state, None)
    result = analyze(broken, "--model", CNN, "--data", runs["clean"])
    assert result.exit_code == 2, result.output
    assert "the final model gives NaN or Inf class scores on the clean data although its weights are finite" in result.output


def test_a_run_without_clean_data_asks_for_data(runs, tmp_path, no_scan):
    result = analyze(runs["bare"], "--model", CNN, "--json", tmp_path / "out.json")
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    assert "trigger inversion needs clean data: pass --data CLEAN.npz" in result.stderr
    assert f"{runs['bare']} has no 'clean_data' attachment" in result.stderr
    assert not (tmp_path / "out.json").exists()


@pytest.mark.parametrize(
    ("arrays", "said"),
    [
        ({"x": np.zeros((4, 1, 8, 8), np.float32), "y": np.array([0, 1, -3, 1])},
         ", attachment 'clean_data': labels must be class indices (whole numbers ≥ 0), got -3"),
        ({"x": np.zeros((4, 1, 8, 8), np.float32)}, ": attachment 'clean_data' has no array y; pass --data CLEAN.npz"),
    ],
    ids=["negative label", "no y"],
)
def test_bad_attached_clean_data_is_named_with_the_run_s_path_as_given(runs, tmp_path, no_scan, arrays, said):
    """The attachment's errors named the run without its folder ("run.h5, attachment 'clean_data': ..."), where every
    other error about a run (and --data's about its file) gives the path as the user typed it."""
    path = tmp_path / "sub" / "run.h5"
    path.parent.mkdir()
    path.write_bytes(runs["bare"].read_bytes())
    with h5py.File(path, "r+") as f:
        for key, values in arrays.items():
            f.create_dataset(f"attachments/clean_data/{key}", data=values)
    out = tmp_path / "out.json"
    assert_refused(analyze(path, "--model", CNN, "--json", out), f"error: {path}{said}", out)


def test_rounds_all_plans_the_timeline_every_k_rounds(runs):
    with open_run(runs["run"]) as run:
        plan = plan_inversion(run, AuditOptions(model=CNN, round="0", rounds="all", every=2))
        assert (plan.round, plan.every, plan.probe_trigger, plan.x.shape) == (0, 2, None, (300, 1, 8, 8))
        assert plan_inversion(run, AuditOptions(model=CNN)).every is None


def test_terminal_says_when_no_label_is_flagged():
    inversion = fake_inversion()  # its timeline shares the result: no round flags a label either
    inversion.result.classes[:] = [dataclasses.replace(c, flagged=False) for c in inversion.result.classes]
    console = Console(record=True, width=200)
    console.print(trigger_inversion_table(inversion))
    text = console.export_text()
    assert "no label flagged: no label's trigger is an outlier on the small side (anomaly index > 2)" in text
    assert "flagged labels per inverted round: 0: none · 3: none" in text


def test_terminal_says_which_samples_attack_success_counts():
    """A fresh-eyes auditor read label 6's 97% attack success and its recovered trigger's 98% in the probe as one
    figure printed twice: the first counts the held-out half's samples of other labels (the HTML says "held out")."""
    console = Console(record=True, width=300)
    console.print(trigger_inversion_table(fake_inversion()))
    text = " ".join(console.export_text().split())  # the caption wraps at the table's width
    assert "attack success: the share of the held-out half of the clean samples, those of the other labels, that the label's trigger sends to it; the probe below counts every clean sample" in text


def test_terminal_marks_a_flag_below_the_chance_index_weak():
    """The demo's final model flags label 9 at index 2.03 beside the target at 11.83: both read alike."""
    inversion = fake_inversion()
    classes = inversion.result.classes
    classes[9] = dataclasses.replace(classes[9], anomaly_index=2.03, flagged=True)
    console = Console(record=True, width=300)
    console.print(trigger_inversion_table(inversion))
    text = console.export_text()
    assert "6: mask L1" in text and "anomaly index 3.00 > 2, attack success" in text  # 3.00 is above 2.58: not weak
    assert "anomaly index 2.03 > 2 (weak: < 2.58), attack success" in text


def test_the_terminal_timeline_marks_a_weak_flag_as_the_final_model_line_does():
    """QA: the final model's line said '(weak: < 2.58)' while the timeline printed round 0's weak flag of label 2
    exactly as a strong one."""
    from rich.console import Console

    from fedforensics.inversion.invert import RoundInversion, TriggerInversionReport
    from fedforensics.inversion.neural_cleanse import LabelTrigger, NeuralCleanseResult
    from fedforensics.inversion.probe import TriggerProbe
    from fedforensics.report.terminal import trigger_inversion_table

    def result(indices: dict[int, float]) -> NeuralCleanseResult:
        classes = [LabelTrigger(k, 10.0, 0.9, indices.get(k, 0.0), k in indices) for k in range(10)]
        empty = np.zeros((10, 1, 1), np.float32)
        return NeuralCleanseResult(classes, empty, empty[:, None], np.zeros(10))

    weak, strong = result({2: 2.1}), result({6: 5.0})
    assert weak.weak_labels == [2] and strong.weak_labels == []
    report = TriggerInversionReport(30, "final", strong, TriggerProbe([]), [RoundInversion(0, weak), RoundInversion(10, strong)], 100)
    console = Console(width=200, record=True, color_system=None)
    console.print(trigger_inversion_table(report))
    text = console.export_text()
    assert "flagged labels per inverted round: 0: 2 (weak) · 10: 6\n(weak): its anomaly index is below the chance level" in text


def test_a_search_that_found_no_working_trigger_says_so_rather_than_no_label_flagged():
    """A fresh-eyes user's model (logits ×1e30) gave every label's recovered trigger 0–8 % attack success, and the
    report said "no label flagged: no label's trigger is an outlier", as after a search that worked."""
    from rich.console import Console

    from fedforensics.inversion.invert import TriggerInversionReport
    from fedforensics.inversion.neural_cleanse import LabelTrigger, NeuralCleanseResult
    from fedforensics.inversion.probe import ProbeSet, TriggerProbe
    from fedforensics.report.html import _inversion
    from fedforensics.report.terminal import trigger_inversion_table

    def report(success: float) -> TriggerInversionReport:
        classes = [LabelTrigger(k, 10.0 + k, success * k / 9, 0.5, False) for k in range(10)]
        empty = np.zeros((10, 1, 1), np.float32)
        result = NeuralCleanseResult(classes, empty, empty[:, None], np.zeros(10))
        return TriggerInversionReport(30, "final", result, TriggerProbe([ProbeSet("clean", [10] * 10, None, 0.0)]), [], 100)

    def terminal(inversion: TriggerInversionReport) -> str:
        console = Console(width=300, record=True, color_system=None)
        console.print(trigger_inversion_table(inversion))
        return console.export_text()

    failed, worked = report(0.08), report(0.95)  # the best label's trigger: 8 % and 95 %
    assert not failed.result.working_triggers and worked.result.working_triggers
    assert (
        "no label flagged, and no trigger found: no label's recovered trigger reached 90% attack success on held-out "
        "inputs (best 8%), so there were no triggers to compare: this says nothing of a backdoor"
    ) in terminal(failed)
    assert "no label flagged: no label's trigger is an outlier on the small side" in terminal(worked)
    assert "<b>No trigger found</b>" in _inversion(failed) and "No label stands out" in _inversion(worked)
    assert failed.result.to_json()["min_success"] == 0.9
