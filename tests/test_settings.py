"""``--set DETECTOR.PARAMETER=VALUE``: thresholds and rule parameters from the command line."""

from __future__ import annotations

import json
import math

import pytest
from typer.testing import CliRunner

from fedforensics.cli import app
from fedforensics.errors import FedForensicsError
from fedforensics.settings import parse_settings
from synthetic import make_run


@pytest.fixture(scope="module")
def boost(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("settings") / "boost.h5", attackers=("c3",), attack="boost", rounds=8)


def test_values_are_typed_by_the_parameter_they_set():
    settings = parse_settings(
        ["norm.threshold=4", "norm.spike=none", "cosine-hdbscan.min_rounds=5", "cosine-hdbscan.alpha=inf", "verdict.strong=3"]
    )
    assert settings.detectors == {
        "norm": {"threshold": 4.0, "spike": None},
        "cosine-hdbscan": {"min_rounds": 5, "alpha": float("inf")},
    }
    assert isinstance(settings.detectors["cosine-hdbscan"]["min_rounds"], int)
    assert settings.build_rule().strong == 3.0
    assert settings.to_json()["cosine-hdbscan"]["alpha"] == "inf"
    built = {d.name: d for d in settings.build_detectors()}
    assert built["norm"].threshold == 4.0 and built["cosine-hdbscan"].min_rounds == 5
    assert built["median-cosine"].get_params() == type(built["median-cosine"])().get_params()


@pytest.mark.parametrize(
    "item, message",
    [
        ("norm=4", "write DETECTOR.PARAMETER=VALUE"),
        ("norm.threshold=", "write DETECTOR.PARAMETER=VALUE"),
        ("nrm.threshold=4", "no detector 'nrm'; known: accumulated-sybil, avoidance, client-metrics,"),
        ("norm.thresh=4", "norm has no parameter 'thresh'; its parameters: threshold, spike, min_clients"),
        ("verdict.agreed=2", "verdict has no parameter 'agreed'; its parameters: agree, strong, cap"),
        ("norm.threshold=high", "'high' is not a number"),
        ("norm.threshold=3_0", "'3_0' is not a number"),  # QA: Python's float() reads it as 30
        ("norm.threshold=nan", "NaN is not a usable value"),
        ("norm.threshold=none", "this parameter needs a number"),
        ("norm.min_clients=2.5", "this parameter takes a whole number"),
        ("norm.threshold=0", "norm: threshold=0.0 must be positive"),
        ("norm.threshold=-1", "norm: threshold=-1.0 must be positive"),
        ("norm.spike=0", "norm: spike=0.0 must be positive, or none"),
        ("norm.extreme_share=1.5", "norm: extreme_share=1.5 must be a share in (0, 1], or none"),
        ("median-cosine.extreme_share=0.25", "median-cosine has no parameter 'extreme_share'"),  # norm's alone
        ("mean-copy.extreme_share=0.25", "mean-copy has no parameter 'extreme_share'"),  # (it leaked through the base)
        ("sybil.min_clients=1", "sybil: min_clients=1 must be at least 2"),
        ("cosine-hdbscan.alpha=5", "cosine-hdbscan: alpha=5.0 must be a level in (0, 1], or inf"),
        ("cosine-hdbscan.threshold=1.5", "cosine-hdbscan: threshold=1.5 must be in (0, 1] (the score is at most 1)"),
        ("cosine-hdbscan.threshold=0", "cosine-hdbscan: threshold=0.0 must be in (0, 1]"),
        ("layer-deviation.noise_floor=-1", "layer-deviation: noise_floor=-1.0 must be 0 or more"),
        ("verdict.agree=0", "verdict: agree=0 must be at least 1"),
        ("verdict.cap=-1", "verdict: cap=-1.0 must be positive"),
    ],
)
def test_a_bad_setting_is_one_line_naming_it(item, message, boost, tmp_path):
    out = tmp_path / "report.json"
    result = CliRunner().invoke(app, ["analyze", str(boost), "--set", item, "--json", str(out)])
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and message in result.output and "Traceback" not in result.output
    assert not out.exists()


def test_a_parameter_set_twice_to_different_values_is_refused():
    with pytest.raises(FedForensicsError, match=r"--set norm.threshold=5: norm.threshold is set twice, to 4.0 and 5.0"):
        parse_settings(["norm.threshold=4", "norm.threshold=5"])
    assert parse_settings(["norm.threshold=4", "norm.threshold=4.0"]).detectors == {"norm": {"threshold": 4.0}}


def test_parameters_are_checked_in_python_too(boost):
    """A value outside its meaning divided by zero (threshold=0) or flagged everyone (threshold<0)."""
    from fedforensics import open_run
    from fedforensics.analysis import analyze
    from fedforensics.detectors import get_detector
    from fedforensics.verdict import ConsensusRule

    with pytest.raises(FedForensicsError, match="norm: threshold=0 must be positive"):
        analyze(open_run(boost), [get_detector("norm", threshold=0)])
    with pytest.raises(FedForensicsError, match="verdict: strong=-1 must be positive"):
        ConsensusRule(strong=-1)
    with pytest.raises(FedForensicsError, match=r"opposition: min_agreement=nan must be a number \(-inf scores every round"):
        analyze(open_run(boost), [get_detector("opposition", min_agreement=math.nan)])


def test_a_detector_named_twice_runs_once():
    assert [d.name for d in parse_settings([]).build_detectors(["norm", "sybil", "norm"])] == ["norm", "sybil"]


def test_a_setting_for_a_detector_left_out_is_refused(boost):
    result = CliRunner().invoke(app, ["analyze", str(boost), "-d", "norm", "--set", "sybil.threshold=2"])
    assert result.exit_code == 2
    assert "sybil is not among the detectors chosen with --detector (norm)" in result.output


def test_settings_change_the_audit_and_the_report_records_them(boost, tmp_path):
    """Each report says which parameters were set (QA: the HTML did not, and the JSON only per detector)."""
    default, raised, page = tmp_path / "default.json", tmp_path / "raised.json", tmp_path / "raised.html"
    assert CliRunner().invoke(app, ["analyze", str(boost), "--json", str(default)]).exit_code == 0
    result = CliRunner().invoke(
        app, ["analyze", str(boost), "--set", "norm.threshold=1000", "--set", "verdict.agree=3", "--json", str(raised),
              "--html", str(page)],
    )
    assert result.exit_code == 0, result.output
    assert "parameters set: norm.threshold=1000, verdict.agree=3 (the others are the defaults)" in " ".join(result.output.split())
    assert "Parameters set: norm.threshold=1000, verdict.agree=3 (the others are the defaults" in page.read_text()
    before, after = json.loads(default.read_text()), json.loads(raised.read_text())
    assert before["settings"] == {} and after["settings"] == {"norm": {"threshold": 1000.0}, "verdict": {"agree": 3}}
    norm_before = next(d for d in before["detectors"] if d["name"] == "norm")
    norm_after = next(d for d in after["detectors"] if d["name"] == "norm")
    assert norm_before["flagged"] == ["c3"] and norm_after["flagged"] == []
    assert norm_after["params"]["threshold"] == 1000.0 and norm_after["threshold"] == 1000.0
    assert after["rule"]["agree"] == 3
    c3_before = next(c for c in before["clients"] if c["id"] == "c3")
    c3_after = next(c for c in after["clients"] if c["id"] == "c3")
    assert "norm" in c3_before["flagged_by"] and "norm" not in c3_after["flagged_by"]


def test_a_report_made_in_python_records_the_parameters_that_differ_from_the_defaults(boost):
    """Review: the report's settings were filled by the command line only, and shown rounded (4.12346)."""
    from fedforensics import open_run
    from fedforensics.analysis import analyze
    from fedforensics.detectors import get_detector
    from fedforensics.report.json import report_to_json
    from fedforensics.verdict import ConsensusRule

    detectors = [get_detector("norm", threshold=4.1234567, spike=None), get_detector("opposition", min_agreement=math.inf),
                 get_detector("sybil", threshold=get_detector("sybil").threshold)]  # its default: no change
    report = analyze(open_run(boost), detectors, ConsensusRule(agree=3))
    assert report.settings.describe() == "norm.threshold=4.1234567, opposition.min_agreement=inf, verdict.agree=3"
    assert report_to_json(report)["settings"] == {
        "norm": {"threshold": 4.1234567}, "opposition": {"min_agreement": "inf"}, "verdict": {"agree": 3},
    }
    assert analyze(open_run(boost)).settings.describe() == ""


def test_evaluate_applies_and_records_settings(boost, tmp_path):
    out = tmp_path / "eval.json"
    result = CliRunner().invoke(app, ["evaluate", str(boost), "--set", "norm.threshold=1000", "--json", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["settings"] == {"norm": {"threshold": 1000.0}}
    assert "parameters set: norm.threshold=1000 (the others are the defaults)" in result.output
    norm = next(j for j in data["runs"][0]["judgements"] if j["name"] == "norm")
    assert norm["tp"] == 0 and norm["fn"] == 1
    bad = CliRunner().invoke(app, ["evaluate", str(boost), "--set", "norm.thresh=1"])
    assert bad.exit_code == 2 and bad.output.startswith("error: --set norm.thresh=1")


def test_an_infinite_setting_reads_the_same_in_every_report(boost, tmp_path):
    """JSON has no infinity: analyze's report writes one as "inf", as evaluate's settings do (null means "off")."""
    analyzed, evaluated = tmp_path / "analyze.json", tmp_path / "evaluate.json"
    settings = ["--set", "norm.threshold=inf", "--set", "cosine-hdbscan.alpha=inf", "--set", "verdict.strong=inf"]
    assert CliRunner().invoke(app, ["analyze", str(boost), *settings, "--json", str(analyzed)]).exit_code == 0
    assert CliRunner().invoke(app, ["evaluate", str(boost), *settings, "--json", str(evaluated)]).exit_code == 0
    report = json.loads(analyzed.read_text())
    norm = next(d for d in report["detectors"] if d["name"] == "norm")
    cosine = next(d for d in report["detectors"] if d["name"] == "cosine-hdbscan")
    assert norm["threshold"] == "inf" and norm["params"]["threshold"] == "inf" and norm["flagged"] == []
    assert cosine["params"]["alpha"] == "inf" and norm["params"]["spike"] is None  # a parameter that is off stays null
    assert report["rule"]["strong"] == "inf"
    assert json.loads(evaluated.read_text())["settings"] == {
        "norm": {"threshold": "inf"}, "cosine-hdbscan": {"alpha": "inf"}, "verdict": {"strong": "inf"}
    }


def test_a_parameter_on_by_default_can_be_switched_off_with_none():
    """norm.extreme_share is 0.25 by default and takes None (its annotation says so): "none" was refused with
    "this parameter needs a number", as it is for a threshold."""
    settings = parse_settings(["norm.extreme_share=none", "norm.spike=none"])
    assert settings.detectors == {"norm": {"extreme_share": None, "spike": None}}
    assert [d.extreme_share for d in settings.build_detectors(["norm"])] == [None]
    with pytest.raises(FedForensicsError, match="norm.threshold=none: this parameter needs a number"):
        parse_settings(["norm.threshold=none"])


def test_a_custom_detectors_text_and_switch_parameters_are_set_as_text_and_switches(monkeypatch):
    """A fresh-eyes user's detector took a text parameter: --set made every value a float, and the audit ended in an
    internal error (exit 3) inside the detector. A parameter is typed by its default, or else by its annotation."""
    import numpy as np

    import fedforensics.detectors as registry
    import fedforensics.settings as settings_module
    from fedforensics.detectors.statistic import RoundStatisticDetector

    class Prefixed(RoundStatisticDetector):
        name = "prefixed"
        reference = "a test"
        summary = "norm of the layers whose name starts with a prefix"
        family = "magnitude"

        def __init__(
            self, *, prefix: str = "", squared: bool = False, label: str | None = None, threshold: float = 3.5, **kwargs
        ) -> None:
            super().__init__(threshold=threshold, **kwargs)
            self.prefix, self.squared, self.label = prefix, squared, label

        def statistics(self, data):
            assert isinstance(self.prefix, str) and isinstance(self.squared, bool)
            norms = sum(data.layer_sq_norms[layer.name] for layer in data.layers if layer.name.startswith(self.prefix))
            return {"l2": norms if self.squared else np.sqrt(norms)}

        def explain(self, key):
            return "moves the chosen layers more than the others"

    known = {**registry.all_detectors(), "prefixed": Prefixed}
    monkeypatch.setattr(registry, "all_detectors", lambda: known)
    monkeypatch.setattr(settings_module, "all_detectors", lambda: known)
    settings = parse_settings(["prefixed.prefix=2.", "prefixed.squared=yes", "prefixed.label=none", "prefixed.threshold=4"])
    assert settings.detectors == {"prefixed": {"prefix": "2.", "squared": True, "label": None, "threshold": 4.0}}
    assert settings.describe() == "prefixed.prefix=2., prefixed.squared=true, prefixed.label=none, prefixed.threshold=4"
    assert parse_settings(["prefixed.label=none of these"]).detectors == {"prefixed": {"label": "none of these"}}
    (built,) = settings.build_detectors(["prefixed"])
    assert (built.prefix, built.squared, built.threshold) == ("2.", True, 4.0)
    with pytest.raises(FedForensicsError, match=r"^--set prefixed.squared=maybe: 'maybe' is not a switch \(true or false\)$"):
        parse_settings(["prefixed.squared=maybe"])
    with pytest.raises(FedForensicsError, match=r"^--set prefixed.prefix=none: this parameter needs a value$"):
        parse_settings(["prefixed.prefix=none"])
    with pytest.raises(FedForensicsError) as info:  # min_clients goes to the base class unnamed
        parse_settings(["prefixed.min_clients=3"])
    assert str(info.value) == (
        "--set prefixed.min_clients=3: prefixed has no parameter 'min_clients'; its parameters: prefix, squared, label, "
        "threshold (parameters passed on through **kwargs cannot be set: name them in __init__, scikit-learn's convention)"
    )
