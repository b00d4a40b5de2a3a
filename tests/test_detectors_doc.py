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


def test_each_detector_section_lists_every_parameter_with_its_default():
    """A docs audit found five detectors whose parameters the page never listed (all settable with --set): each
    section's 'Parameters:' sentence names every ``__init__`` parameter as `name=default`, with the code's default."""
    import inspect

    from fedforensics.detectors import all_detectors

    text = DOC.read_text()
    for name, cls in all_detectors().items():
        section = re.search(rf"^### `{re.escape(name)}`.*?(?=^##|\Z)", text, re.S | re.M)
        assert section, f"no section for {name}"
        listed = re.search(r"Parameters:(.*?)(?:\n\n|$)", section.group(0), re.S)
        assert listed, f"{name}: no 'Parameters:' sentence"
        documented = dict(re.findall(r"`(\w+)=([^`]+)`", listed.group(1)))
        defaults = {p.name: p.default for p in list(inspect.signature(cls.__init__).parameters.values())[1:]}
        assert set(documented) == set(defaults), (name, sorted(documented), sorted(defaults))
        for param, default in defaults.items():
            shown = documented[param]
            assert (default is None and shown == "None") or (default is not None and float(shown) == default), (name, param, shown, default)


def test_the_families_of_step_4_and_the_table_of_detectors_are_the_registry():
    """Step 4 lists each family's detectors (the verdict counts families) and 'The detectors' has a row a detector:
    both as the registry has them."""
    from fedforensics.detectors import all_detectors

    text = DOC.read_text()
    step4 = " ".join(text.split("4. **Verdict**", 1)[1].split("### Thresholds", 1)[0].splitlines())
    listed: dict[str, str] = {}
    for match in re.finditer(r"`(magnitude|direction|collusion|behaviour)` \(([^)]*)\)", step4):
        for name in re.findall(r"`([a-z-]+)`", match.group(2)):
            listed.setdefault(name, match.group(1))  # the first list of each family is the one that defines it
    registry = all_detectors()
    assert listed == {name: cls.family for name, cls in registry.items()}
    table = text.split("\n## The detectors\n", 1)[1].split("\n### ", 1)[0]
    rows = [re.match(r"\| `([^`]+)`", line).group(1) for line in table.splitlines() if line.startswith("| `")]
    assert sorted(rows) == sorted(registry)


def test_the_verdict_score_holds_each_strength_within_0_and_the_cap_as_step_4_says():
    """Step 4 and the README said a verdict's score sums the strengths 'each capped at 5'; the rule also lifts a negative
    strength (a statistic on its unsuspicious side) to 0, as docs/report-schema.md says: a client 2 thresholds *below*
    on one detector and 8.6 above on another scores 5, not 3."""
    from fedforensics.detectors.base import DetectorResult
    from fedforensics.verdict import ConsensusRule

    def result(name: str, family: str, score: float) -> DetectorResult:
        return DetectorResult(name, "", {}, 3.5, {"c0": score}, ["c0"] if score >= 3.5 else [], {}, {}, [], family=family)

    (verdict,) = ConsensusRule().judge({"c0": 5}, [result("norm", "magnitude", 30.0), result("mean-copy", "collusion", -7.0)], {})
    assert verdict.strengths == {"norm": 30.0 / 3.5, "mean-copy": -2.0} and verdict.score == 5.0
    step4 = " ".join(DOC.read_text().split("4. **Verdict**", 1)[1].split("### Thresholds", 1)[0].split())
    assert "each held within [0, 5] (`cap`)" in step4
    readme = " ".join((DOC.parents[1] / "README.md").read_text().split())
    assert "each held within 0 and 5" in readme and "each capped at 5" not in readme


def test_small_federations_names_every_detector_that_judges_a_robust_z_once_per_run(tmp_path):
    """'Small federations' said no statistic is computed once per run and thresholded, while `accumulated-sybil`
    takes one robust z across the clients' histories at the end of the run (no per-round scores): each detector
    judging so is named there."""
    from fedforensics import open_run
    from fedforensics.analysis import analyze

    make_run(tmp_path / "run.h5", attackers=("c3", "c4"), attack="sybil", rounds=8)
    with open_run(tmp_path / "run.h5") as run:
        once = {d.name for d in analyze(run).detectors if d.applicable and not d.round_scores}
    paragraph = " ".join(DOC.read_text().split("**Small federations.**", 1)[1].split("\n\n", 1)[0].split())
    assert once == {"accumulated-sybil"}
    assert all(f"`{name}`" in paragraph for name in once) and "no statistic is computed once per run" not in paragraph


def test_step_3_says_what_bonferroni_gives_where_the_product_is_no_evidence():
    """Step 3 said only 'multiplied by m and turned back into a z', which for a product of p ≥ ½ gives a negative z
    (−inf from 1 on); the code gave 0 there (session 45: the z less the z where the product is ½, so that clients
    without evidence keep their order), which the step must say, and the far tail's asymptote."""
    import numpy as np
    from scipy.stats import norm

    from fedforensics.stats import bonferroni_zs

    half = float(norm.isf(0.005))  # 100 tests: the product is ½ at p = 0.005
    expected = [2.0 - half, -1.0 - half, float(np.sqrt(1600 - 2 * np.log(100)))]
    np.testing.assert_allclose(bonferroni_zs(np.array([2.0, -1.0, 40.0]), 100.0), expected)
    step3 = " ".join(DOC.read_text().split("3. **Many statistics, one threshold.**", 1)[1].split("4. **Verdict**", 1)[0].split())
    assert "A product of ½ or more is no evidence: the score is then the z less the z at which the product is ½" in step3
    assert "√(z² − 2 ln *m*)" in step3
