"""``evaluate``: detectors and the consensus judged against ground truth, per run and pooled."""

from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from fedforensics import open_run
from fedforensics.analysis import analyze
from fedforensics.cli import app
from fedforensics.detectors import DetectorResult
from fedforensics.errors import FedForensicsError
from fedforensics.evaluate import CONSENSUS, evaluate_report, evaluate_runs, pool, read_truth
from fedforensics.verdict import ClientVerdict
from recorder import Recorder
from synthetic import make_crashed_run, make_run

NAN = math.nan


def result(name: str, scores: dict[str, float], flagged: list[str], first: dict[str, int], applicable: bool = True):
    return DetectorResult(name, "ref", {}, 1.0, scores, flagged, {}, first, [], applicable=applicable)


def verdict(cid: str, kind: str, score: float, flagged_by: list[str], first_round: int | None = None) -> ClientVerdict:
    return ClientVerdict(cid, kind, score, flagged_by, {}, first_round=first_round)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """An audit of five clients with hand-set detector results and verdicts."""
    path = make_run(tmp_path_factory.mktemp("eval") / "tiny.h5", clients=5, rounds=2)
    with open_run(path) as run:
        report = analyze(run)
    detectors = [
        result("a", {"c0": 5.0, "c1": 1.0, "c2": 3.0, "c3": 0.0, "c4": NAN}, ["c0", "c2"], {"c0": 2, "c2": 4}),
        result("b", {"c0": 2.0, "c1": 2.0, "c2": 0.5, "c3": 0.1, "c4": 0.2}, ["c0", "c1"], {"c0": 1, "c1": 3}),
        result("c", {}, [], {}, applicable=False),
    ]
    verdicts = [  # in the report's order: verdict first, then score
        verdict("c0", "malicious", 9.0, ["a", "b"], first_round=2),
        verdict("c2", "suspicious", 3.0, ["a"], first_round=4),
        verdict("c1", "suspicious", 2.0, ["b"], first_round=3),
        verdict("c3", "benign", 2.5, []),
        verdict("c4", "benign", 0.2, []),
    ]
    return dataclasses.replace(report, detectors=detectors, verdicts=verdicts)


def by_name(judgements):
    return {j.name: j for j in judgements}


def test_a_truth_id_the_run_spells_otherwise_is_pointed_out(tmp_path):
    """Red team: a recorded truth naming 'site3' where the run has 'site 3' scored the attacked run as clean with
    no hint but "not in the run: 'site3'"; a truth file naming it was refused without one."""
    from synthetic import make_run

    ids = [f"site {i}" for i in range(10)]
    path = make_run(tmp_path / "s.h5", ids=ids, rounds=4)
    with h5py.File(path, "r+") as f:  # as a recorder given ground_truth(["Site-3", "zz"]) writes it
        del f["ground_truth/malicious"]
        f["ground_truth"].create_dataset("malicious", data=["Site-3", "zz"], dtype=h5py.string_dtype())
    result = CliRunner().invoke(app, ["evaluate", str(path), "--json", str(tmp_path / "e.json")])
    assert result.exit_code == 0, result.output
    assert "not in the run: 'Site-3', 'zz' (the run has 'site 3' for 'Site-3', spelled alike)" in " ".join(result.output.split())
    assert json.loads((tmp_path / "e.json").read_text())["runs"][0]["spelled_alike"] == {"Site-3": "site 3"}
    (tmp_path / "t.txt").write_text("site3\n")
    refused = CliRunner().invoke(app, ["evaluate", str(path), "--truth", str(tmp_path / "t.txt")])
    assert refused.exit_code == 2 and "names 'site3', no client of the run given ('site 3' is spelled alike)" in refused.output
    from fedforensics.client_ids import spelled_alike

    assert spelled_alike(["★", "-"], ["☆", "_"]) == {}  # no letter or digit: nothing to spell alike (review)
    # a decomposed 'ü' (macOS) and full-width digits spell the run's 'ü' and '007' (a fresh-eyes user)
    assert spelled_alike(["u\u0308", "\uff10\uff10\uff17"], ["\u00fc", "007"]) == {"u\u0308": "\u00fc", "\uff10\uff10\uff17": "007"}
    with open_run(path) as run:  # a truth naming 'site 3' already: 'Site-3' is not it again
        both = evaluate_report(analyze(run), ["site 3", "Site-3"])
    assert both.attackers == ["site 3"] and both.spelled_alike == {}


def test_a_run_table_names_the_attackers_once_and_keeps_its_rounds_whole_at_80_columns(tmp_path, monkeypatch):
    """Red team: at 80 columns each detector's "first flagged" cell broke ``hospital-A/site 3`` mid-id over two
    lines; the ids now come once, under the table, and each cell gives the rounds in that order."""
    from fedforensics.cli.app import console

    ids = [f"hospital-{chr(65 + i)}/site {i}" for i in range(10)]
    path = make_run(tmp_path / "h.h5", ids=ids, rounds=6, attackers=(ids[3], ids[7]), attack="boost")
    monkeypatch.setattr(console, "_width", 80)
    result = CliRunner().invoke(app, ["evaluate", str(path)])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "first flagged (round): per attacker, in the order 'hospital-" in text
    assert "'hospital-D/site 3'" in text and "'hospital-H/site 7'" in text
    rows = [line for line in result.output.splitlines() if line.lstrip().startswith("norm ")]
    assert len(rows) == 1 and rows[0].rstrip().endswith(("0, 0", "1, 1", "2, 2")), rows
    assert "hospital-D" not in result.output.split("first flagged (round):")[0].split("(round)")[1]


def test_metrics_of_a_hand_built_case(tiny):
    ev = evaluate_report(tiny, ["c0", "c1"])
    j = by_name(ev.judgements)
    a = j["a"]
    assert (a.tp, a.fp, a.fn, a.tn) == (1, 1, 1, 2)
    assert (a.precision, a.recall, a.f1) == (0.5, 0.5, 0.5)
    assert a.fpr == pytest.approx(1 / 3)
    # positives {5, 1} against negatives {3, 0, NaN as lowest}: 5 beats all three, 1 beats two
    assert a.auroc == pytest.approx(5 / 6)
    assert [(d.client, d.round) for d in a.detections] == [("c0", 2), ("c1", None)]
    assert a.scored == 4 and a.to_json()["scored"] == 4  # c4 unscored: it ranks lowest (a fresh-eyes user)
    b = j["b"]
    assert (b.tp, b.fp, b.fn, b.tn, b.precision, b.recall, b.f1, b.fpr, b.auroc) == (2, 0, 0, 3, 1.0, 1.0, 1.0, 0.0, 1.0)
    consensus = j[CONSENSUS]
    assert list(j)[-1] == CONSENSUS
    # c0, c1 (true) and c2 (honest) are malicious or suspicious
    assert (consensus.tp, consensus.fp, consensus.fn, consensus.tn) == (2, 1, 0, 2)
    assert (consensus.precision, consensus.recall, consensus.f1) == (pytest.approx(2 / 3), 1.0, 0.8)
    assert consensus.fpr == pytest.approx(1 / 3)
    # ranked as the report ranks (verdict first, then score): c0 > c2 > c1 > c3 > c4, so suspicious c1
    # comes before benign c3 although its summed score (2) is below c3's (2.5); c0 beats the three honest
    # clients, c1 two of them
    assert consensus.auroc == pytest.approx(5 / 6)
    # the round from which the verdict rule judged each attacker so (ClientVerdict.first_round), not the earliest
    # detector's flag (b's round 1 of c0)
    assert [(d.client, d.round) for d in consensus.detections] == [("c0", 2), ("c1", 3)]
    c = j["c"]
    assert not c.applicable and c.to_json()["f1"] is None and c.to_json()["auroc"] is None


def test_a_flag_without_a_round_still_counts_as_detected(tiny):
    """A flag from a statistic of the whole run (a custom detector's) has no first round; it was
    counted as never detected, so `found` fell below the true positives."""
    run_level = result("d", {"c0": 9.0, "c1": 0.0, "c2": 0.0, "c3": 0.0, "c4": 0.0}, ["c0"], {})
    ev = evaluate_report(dataclasses.replace(tiny, detectors=[*tiny.detectors, run_level]), ["c0", "c1"])
    d = by_name(ev.judgements)["d"]
    assert d.tp == d.detected == 1 and d.median_first_round is None
    assert d.to_json()["first_flagged"] == [
        {"run": 0, "client": "c0", "flagged": True, "round": None},
        {"run": 0, "client": "c1", "flagged": False, "round": None},
    ]


def test_undefined_ratios_are_null_and_absent_attackers_listed(tiny):
    ev = evaluate_report(tiny, ["zz"])  # no true attacker took part
    assert ev.attackers == [] and ev.absent_attackers == ["zz"]
    a = by_name(ev.judgements)["a"].to_json()
    assert (a["precision"], a["recall"], a["f1"], a["auroc"]) == (0.0, None, 0.0, None)
    assert a["fpr"] == pytest.approx(0.4)


def test_pooling_sums_counts_and_ranks_all_scores(tiny):
    first = evaluate_report(tiny, ["c0", "c1"], index=0)
    second = evaluate_report(tiny, ["c2"], index=1)
    pooled = by_name(pool([first, second]))
    a = pooled["a"]
    assert (a.tp, a.fp, a.fn, a.tn, a.runs) == (2, 2, 1, 5, 2)
    assert a.f1 == pytest.approx(4 / 7)
    # positives {5, 1, 3} against negatives {3, 0, NaN, 5, 1, 0, NaN}:
    # 5 -> 6.5 of 7, 1 -> 4.5, 3 -> 5.5 (ties count half)
    assert a.auroc == pytest.approx(16.5 / 21)
    assert [(d.run, d.client, d.round) for d in a.detections] == [(0, "c0", 2), (0, "c1", None), (1, "c2", 4)]
    assert (a.detected, a.median_first_round) == (2, 3.0)
    assert not pooled["c"].applicable and pooled["c"].runs == 0


def test_truth_file_lines(tmp_path):
    truth = tmp_path / "truth.txt"
    truth.write_text("c1\n\n  c7 \r\n", encoding="utf-8")
    assert read_truth(truth) == ["c1", "c7"]
    for name, text in (("twice.txt", "c1\nc7\n c1\n"), ("twice.json", '["c5", "c5"]')):  # QA: as the recorder refuses
        (tmp_path / name).write_text(text, encoding="utf-8")
        with pytest.raises(FedForensicsError, match=f"{name} lists client '(c1|c5)' twice"):
            read_truth(tmp_path / name)
    with pytest.raises(FedForensicsError, match=r"cannot read the truth file .*missing.txt: No such file or directory \(--truth takes a file of malicious ids, one per line: printf '%s\\n' ID \.\.\. > truth.txt\)$"):
        read_truth(tmp_path / "missing.txt")
    binary = tmp_path / "truth.bin"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(FedForensicsError, match="not UTF-8 text"):
        read_truth(binary)
    odd = tmp_path / "odd.txt"  # QA: a line holding U+2028 or \x1c was read as two ids
    odd.write_text("ok1\u2028ok2\nx\x1cy\rz\n", encoding="utf-8")
    assert read_truth(odd) == ["ok1\u2028ok2", "x\x1cy", "z"]
    bom = tmp_path / "bom.txt"  # as Notepad saves UTF-8: the mark stuck to the first id, which then matched no client
    bom.write_bytes("c1\r\nc7\r\n".encode("utf-8-sig"))
    assert read_truth(bom) == ["c1", "c7"]


def test_a_json_truth_file_names_ids_exactly(tmp_path):
    """Lines are stripped, so an id ' c5' (or one holding a line break) could not be named at all."""
    exact = tmp_path / "truth.json"
    exact.write_text(json.dumps([" c5", "a\nb", 7]), encoding="utf-8-sig")
    assert read_truth(exact) == [" c5", "a\nb", "7"]
    for text, message in (("[1, ", "not JSON"), ('{"c1": 1}', "not a JSON list of client ids"), ("[true]", "not a JSON list")):
        exact.write_text(text, encoding="utf-8")
        with pytest.raises(FedForensicsError, match=message):
            read_truth(exact)
    path = make_run(tmp_path / "spaced.h5", ids=[" c5", "c5", "c6", "c7", "c8"], rounds=3)
    exact.write_text(json.dumps([" c5"]), encoding="utf-8")
    result = CliRunner().invoke(app, ["evaluate", str(path), "--truth", str(exact), "--json", str(tmp_path / "e.json")])
    assert result.exit_code == 0, result.output
    run = json.loads((tmp_path / "e.json").read_text())["runs"][0]
    assert run["attackers"] == [" c5"] and run["absent_attackers"] == []


def no_truth_run(path):
    with Recorder(path) as rec:
        for r in range(2):
            with rec.round(r, {"w": [0.0, 0.0]}) as rnd:
                for c in range(4):
                    rnd.client(f"c{c}", {"w": [c, 1.0]}, num_samples=1, delta=True)
    return path


def test_a_run_without_ground_truth_needs_a_truth_file(tmp_path):
    bare = no_truth_run(tmp_path / "bare.h5")
    with pytest.raises(FedForensicsError, match="records no ground truth"):
        evaluate_runs([bare])
    result = CliRunner().invoke(app, ["evaluate", str(bare)])
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and result.output.startswith("error:") and "--truth" in result.output
    truth = tmp_path / "truth.txt"
    truth.write_text("c3\n", encoding="utf-8")
    assert evaluate_runs([bare], truth).runs[0].attackers == ["c3"]


def test_a_truth_file_that_names_no_client_of_the_runs_is_refused(tmp_path):
    """`c0,c1` on one line matched no client: both runs were scored as attacker-free, a recorded attacker counted as
    a false positive, and only a header line that -q hides said so. One id that matches is enough (a truth file
    shared by runs of different clients); an empty file is a federation without attackers."""
    bare = no_truth_run(tmp_path / "bare.h5")
    truth = tmp_path / "truth.txt"
    truth.write_text("c0,c1\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["evaluate", str(bare), "--truth", str(truth), "-q"])
    assert result.exit_code == 2 and result.output.count("\n") == 1
    assert "names 'c0,c1', no client of the run given: one client id per line as the run spells it" in result.output
    truth.write_text("c0,c1\nc3\n", encoding="utf-8")
    assert evaluate_runs([bare], truth).runs[0].attackers == ["c3"]
    truth.write_text("", encoding="utf-8")
    assert evaluate_runs([bare], truth).runs[0].attackers == []


def test_cli_writes_json_and_html(tmp_path):
    boost = make_run(tmp_path / "boost.h5", attackers=("c3",), attack="boost", rounds=6)
    clean = make_run(tmp_path / "clean.h5", rounds=6, seed=1)
    out, page = tmp_path / "eval.json", tmp_path / "eval.html"
    result = CliRunner().invoke(app, ["evaluate", str(boost), str(clean), "--json", str(out), "--html", str(page)])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert out.read_text().endswith("}\n")  # a text file, as analyze's JSON
    assert (data["format"], data["version"]) == ("fedforensics-evaluation", 1)
    assert [run["attackers"] for run in data["runs"]] == [["c3"], []]
    pooled = {j["name"]: j for j in data["pooled"]["judgements"]}
    assert (data["pooled"]["runs"], data["pooled"]["clients"], data["pooled"]["attackers"]) == (2, 20, 1)
    assert pooled[CONSENSUS]["tp"] == 1 and pooled[CONSENSUS]["first_flagged"][0]["client"] == "c3"
    assert pooled["norm"]["auroc"] == 1.0
    html = page.read_text()
    assert html.startswith("<!DOCTYPE html>") and html.count("<section id=") == 3
    assert "pooled over 2 runs" in result.output
    assert '<div class="l">true attacker</div>' in html  # QA: a card read "1 runs"
    one = tmp_path / "one.html"
    assert CliRunner().invoke(app, ["evaluate", str(boost), "--html", str(one)]).exit_code == 0
    assert '<div class="n">1</div><div class="l">run</div>' in one.read_text()


def test_a_run_given_twice_is_refused(tmp_path):
    """`evaluate base.h5 ./base.h5` pooled 2 runs: every client and attacker counted twice."""
    boost = make_run(tmp_path / "boost.h5", attackers=("c3",), attack="boost", rounds=4)
    truth = tmp_path / "truth.txt"
    truth.write_text("c3\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["evaluate", str(boost), str(tmp_path / "." / "boost.h5"), "--truth", str(truth)])
    assert result.exit_code == 2 and "is given twice" in result.output and result.output.count("\n") == 1


def test_an_attacker_found_by_its_nan_update_is_first_flagged_in_that_round(tmp_path):
    """QA: the consensus took first rounds from the flagging detectors only, so an attacker found by the NaN in
    its update alone (the integrity evidence, round 0) read "run-level" and had no first round."""
    path = make_run(tmp_path / "nan.h5", clients=8, rounds=4, nan_client="c3")
    with open_run(path) as run:
        report = analyze(run)
    (verdict,) = [v for v in report.verdicts if v.client == "c3"]
    assert verdict.verdict == "suspicious" and not verdict.flagged_by
    consensus = by_name(evaluate_report(report, ["c3"]).judgements)[CONSENSUS]
    assert [(d.client, d.flagged, d.round) for d in consensus.detections] == [("c3", True, 0)]


def test_truth_ids_are_taken_as_the_recorder_takes_them(tiny):
    """Integer ids (a Flower partition id) found no attacker: ids are stored as strings."""
    numbered = dataclasses.replace(tiny, verdicts=[dataclasses.replace(v, client=v.client[1:]) for v in tiny.verdicts])
    assert evaluate_report(numbered, [0, 1]).attackers == ["0", "1"]
    with pytest.raises(FedForensicsError, match="a list of client ids, not one string"):
        evaluate_report(tiny, "c0")


@pytest.mark.parametrize("attacker", ["a", "z"])
def test_clients_the_report_cannot_tell_apart_tie_in_the_consensus_auroc(tmp_path, attacker):
    """The consensus ranked clients by their place in the report, so five clients sending the same
    update gave AUROC 1.0 when the attacker's id sorted first and 0.0 when it sorted last."""
    path = tmp_path / "same.h5"
    g = {"w": np.zeros((4, 4), np.float32), "b": np.zeros(4, np.float32)}
    with Recorder(path) as rec:
        for r in range(3):
            with rec.round(r, g) as rnd:
                for cid in ("a", "f", "m", "t", "z"):
                    rnd.client(cid, {k: np.ones_like(v) for k, v in g.items()}, num_samples=10)
    with open_run(path) as run:
        report = analyze(run)
    judgements = {j.name: j for j in evaluate_report(report, [attacker]).judgements}
    assert judgements[CONSENSUS].auroc == 0.5 and judgements["norm"].auroc == 0.5


def test_the_pooled_consensus_ranks_every_runs_clients_on_one_scale(tiny):
    """Each run's consensus score was the client's place within its run: pooled, the benign clients of a
    larger run outranked the one malicious client of a smaller run (AUROC 0.47 for a perfect verdict)."""
    flagged = [verdict("c0", "malicious", 2.0, ["a", "b"])] + [verdict(f"c{i}", "benign", 0.5, []) for i in range(1, 5)]
    honest = [verdict(f"c{i}", "benign", 3.0 - 0.5 * i, []) for i in range(5)]
    first = evaluate_report(dataclasses.replace(tiny, verdicts=flagged), ["c0"], index=0)
    second = evaluate_report(dataclasses.replace(tiny, verdicts=honest), [], index=1)
    consensus = by_name(pool([first, second]))[CONSENSUS]
    assert (consensus.tp, consensus.fp) == (1, 0) and consensus.auroc == 1.0


def test_a_detector_that_scored_no_client_is_not_counted_as_missing_the_attacker(tmp_path):
    """Three clients are too few to compare: every score was null, yet norm was judged applicable with the
    attacker a false negative (recall 0), which halved the pooled recall of every detector."""
    path = make_run(tmp_path / "three.h5", clients=3, rounds=4, attackers=("c0",), attack="boost")
    with open_run(path) as run:
        report = analyze(run)
    judgements = by_name(evaluate_report(report, ["c0"]).judgements)
    norm = judgements["norm"]
    assert not norm.applicable and (norm.fn, norm.recall, norm.auroc) == (0, None, None)
    assert norm.to_json()["applicable"] is False


def test_progress_counts_the_rounds_of_every_run(tmp_path):
    """The bar stood at 0 for the whole analysis of each run: it moved only when a run was done."""
    paths = [make_run(tmp_path / f"r{i}.h5", rounds=rounds, attackers=("c0",), attack="boost") for i, rounds in enumerate((3, 5))]
    seen = []
    evaluate_runs(paths, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(done, 8) for done in range(1, 9)]


def test_a_run_given_twice_through_a_link_is_refused(tmp_path):
    """Given twice by one path it was refused; through a hard link its clients counted twice."""
    path = make_run(tmp_path / "run.h5", rounds=3, attackers=("c0",), attack="boost")
    os.link(path, tmp_path / "same.h5")
    with pytest.raises(FedForensicsError, match=r"same.h5 is given twice \(as .*run.h5\): its clients would count twice"):
        evaluate_runs([path, tmp_path / "same.h5"])


def test_evaluate_says_when_a_run_may_lack_its_last_rounds(tmp_path):
    """analyze and inspect said so; evaluate judged an unfinished run as if it were whole (QA)."""
    path = make_crashed_run(tmp_path / "crashed.h5", rounds=4)
    out = tmp_path / "eval.json"
    result = CliRunner().invoke(app, ["evaluate", str(path), "--truth", "/dev/null", "--json", str(out), "--html", str(tmp_path / "e.html")])
    assert result.exit_code == 0, result.output
    assert "unfinished: the recorder never closed it" in " ".join(result.stdout.split())
    run = json.loads(out.read_text())["runs"][0]
    assert run["finished"] is False and run["recovered"] is False
    assert "Unfinished: the recorder never closed it" in (tmp_path / "e.html").read_text()
    complete = evaluate_runs([make_run(tmp_path / "whole.h5")]).runs[0]
    assert complete.finished is True and complete.cut_short == ""


def test_absent_attackers_are_cut_with_a_count(tmp_path):
    """QA: a truth file of 5,000 ids against a run of 2,000 printed all 3,000 absent ids before the first table;
    every other list is cut with a count."""
    bare = no_truth_run(tmp_path / "bare.h5")
    truth = tmp_path / "truth.txt"
    truth.write_text("c3\n" + "".join(f"gone-{i}\n" for i in range(40)), encoding="utf-8")
    page = tmp_path / "e.html"
    result = CliRunner().invoke(app, ["evaluate", str(bare), "--truth", str(truth), "--html", str(page)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "'gone-11' and 28 more ids" in " ".join(result.output.split()) and "gone-12" not in result.output
    html = page.read_text()
    assert "gone-39" in html and " more ids" not in html  # the page lists up to 50
    assert evaluate_runs([bare], truth).runs[0].absent_attackers == [f"gone-{i}" for i in range(40)]  # the JSON: all


def test_an_infinite_score_ranks_highest_and_a_missing_one_lowest(tiny):
    """avoidance scores +inf a client that leaves every compared coordinate alone, and flags it: the AUROC ranked
    +inf with the missing scores, lowest, and gave a perfect detector of Neurotoxin's attackers 0.0 (review)."""
    certain = dataclasses.replace(
        tiny, detectors=[result("a", {"c0": math.inf, "c1": 1.0, "c2": NAN, "c3": 0.5, "c4": -math.inf}, ["c0"], {}), *tiny.detectors[1:]]
    )
    assert by_name(evaluate_report(certain, ["c0"]).judgements)["a"].auroc == 1.0
    # a missing score ranks lowest, tied with -inf (half a point of the pair c2/c4 against the attacker c4)
    assert by_name(evaluate_report(certain, ["c4"]).judgements)["a"].auroc == pytest.approx(0.5 / 4)


def test_an_infinite_consensus_score_keeps_its_verdict_on_top(tiny):
    """With --set verdict.cap=inf a client's score can be +inf: 0.5·inf/(1 + inf) is NaN, which ranked the only
    malicious client below every benign one (consensus AUROC 0.0 for a perfect verdict; review)."""
    verdicts = [verdict("c0", "malicious", math.inf, ["a", "b"])] + [verdict(f"c{i}", "benign", 0.5 * i, []) for i in range(1, 5)]
    consensus = by_name(evaluate_report(dataclasses.replace(tiny, verdicts=verdicts), ["c0"]).judgements)[CONSENSUS]
    assert consensus.auroc == 1.0


def test_the_pooled_table_keeps_every_rate_whole_at_80_columns(tmp_path):
    """80 columns is a pipe's width: the one-line 'median round' header squeezed the rates to '1.…' (review)."""
    from rich.console import Console

    from fedforensics.report.evaluation import judgement_table

    path = make_run(tmp_path / "boost.h5", attackers=("c0",), attack="boost")
    with open_run(path) as run:
        report = analyze(run)
    pooled = pool([evaluate_report(report, ["c0"], index=0), evaluate_report(report, ["c0"], index=1)])
    # a detector that found attackers only on statistics of whole runs: its 9-wide "run-level" cut 'F1' to '0.…' and
    # itself to 'run-leve' (a library user's review)
    pooled = [dataclasses.replace(j, detections=[dataclasses.replace(d, round=None) for d in j.detections])
              if j.name == "norm" else j for j in pooled]
    assert by_name(pooled)["norm"].detected and by_name(pooled)["norm"].median_first_round is None
    console = Console(width=80, record=True, color_system=None)
    console.print(judgement_table("pooled", pooled, pooled=True))
    text = console.export_text()
    assert "…" not in text and "accumulated-sybil" in text and "median" in text
    assert "run-\n" in text.replace(" ", "") and "level" in text


@pytest.mark.parametrize(("median", "shown"), [(4.5, "4.5"), (2.0, "2"), (1234562.5, "1234562.5"), (None, "–"), (math.nan, "–")])
def test_a_median_round_is_shown_whole_or_with_its_half(median, shown):
    """'.0f' rounded the table's 4.5 to 4 (half to even) and 'g' wrote round 1234563 as 1.23456e+06 (review)."""
    from fedforensics.report.wording import median_round

    assert median_round(median) == shown


def test_ids_missing_from_the_run_are_quoted_so_whitespace_shows(tiny):
    """A truth id 'c1 ' read 'not in the run: c1' beside a run that has c1 (review)."""
    from fedforensics.report.evaluation import run_title

    title = run_title(evaluate_report(tiny, ["c1 ", "zz", "c\\u200b1"]))
    # escaped once, by the renderer (review); the run's c1 named as spelled like 'c1 ' (red team)
    assert title.endswith("not in the run: 'c1 ', 'zz', 'c\\u200b1' (the run has 'c1' for 'c1 ', spelled alike)")


def test_the_pooled_table_names_detectors_pooled_over_fewer_runs(tmp_path):
    """client-metrics applies only to runs with metrics: its pooled counts sat under a title counting every run's
    clients with nothing saying they covered one run of two (review)."""
    from fedforensics.report.evaluation import evaluation_tables, render_evaluation_html

    with_metrics = make_run(tmp_path / "metrics.h5", clients=8, rounds=5, attackers=("c0",), attack="boost")
    without = tmp_path / "without.h5"
    rng = np.random.default_rng(0)
    with Recorder(without) as rec:
        for r in range(5):
            with rec.round(r, {"w": np.zeros(64, np.float32)}) as rnd:
                for c in range(8):
                    rnd.client(f"c{c}", {"w": rng.normal(size=64).astype(np.float32)}, num_samples=10, delta=True)
    truth = tmp_path / "truth.txt"
    truth.write_text("c0\n", encoding="utf-8")
    caption = str(evaluation_tables(evaluate_runs([with_metrics, without], truth))[-1].caption)
    assert "client-metrics 1 of 2" in caption and "norm" not in caption
    assert "client-metrics 1 of 2" in render_evaluation_html(evaluate_runs([with_metrics, without], truth))
    again = tmp_path / "again.h5"
    again.write_bytes(with_metrics.read_bytes())
    assert evaluation_tables(evaluate_runs([with_metrics, again], truth))[-1].caption is None


def test_a_detection_has_a_round_only_when_flagged_and_the_first_rounds_median_is_a_median():
    """A review's mutants survived: an attacker a detector scored early but never flagged got that round, and the
    median of first rounds was checked only on two values, where it is the mean."""
    from fedforensics.evaluate import judge

    clients = ["a", "b", "c", "d", "h"]
    j = judge("norm", 0, {c: 1.0 for c in clients}, {"a", "b", "c"}, {"a": 1, "b": 2, "c": 9, "d": 3}, clients,
              {"a", "b", "c", "d"})
    assert {d.client: d.round for d in j.detections} == {"a": 1, "b": 2, "c": 9, "d": None}
    assert j.median_first_round == 2.0 and (j.tp, j.fn, j.tn) == (3, 1, 1)


def test_an_imperfect_rate_never_reads_as_a_perfect_one():
    """A fresh-eyes user: 299 of 300 attackers and 1 false positive in 700 printed precision, recall and F1 1.00
    and a false-positive rate 0.00, in the terminal and the HTML cards."""
    from fedforensics.evaluate import Judgement
    from fedforensics.report.evaluation import _rates
    from fedforensics.report.wording import rate

    j = Judgement("norm", True, 1, tp=299, fp=1, fn=1, tn=699)
    assert _rates(j)[:4] == ["0.997", "0.997", "0.997", "0.001"]
    assert [rate(v) for v in (1.0, 0.0, 0.5, 2 / 3, 1 - 1e-8, None)] == ["1.00", "0.00", "0.50", "0.67", "0.99999999", "–"]


def test_evaluate_help_says_what_each_figure_means():
    """A fresh-eyes user: the help named precision, recall and the rest but not what counts as flagged, how the
    consensus ranks, or what 'never' and 'run-level' mean."""
    text = " ".join(CliRunner().invoke(app, ["evaluate", "--help"], terminal_width=200).output.split())
    for phrase in ("judged malicious or suspicious", "ties count half", "ranks by verdict, then score", '"run-level"',
                   "would first have judged"):
        assert phrase in text, phrase


def test_a_damaged_run_is_said_to_be_damaged_in_every_evaluation_output(tmp_path):
    """A fresh-eyes user: a run whose round-2 global model was damaged changed avoidance's and free-rider's figures
    (both skip that round) while evaluate said nothing in the terminal, JSON or HTML; nor did it carry the detectors'
    notes. It exits 0 still (the audit ran), and says so; the JSON names its version."""
    from recorder import spec

    path = make_run(tmp_path / "d.h5", clients=8, rounds=5, attackers=("c0",), attack="boost")
    with h5py.File(path, "r+") as f:
        group = f[spec.ROUNDS][sorted(f[spec.ROUNDS])[2]][spec.GLOBAL]
        del group[spec.layer_key(0)]
        group[spec.layer_key(0)] = np.zeros(1, np.float32)
    out = CliRunner().invoke(app, ["evaluate", str(path), "--json", str(tmp_path / "e.json"), "--html", str(tmp_path / "e.html")],
                             terminal_width=300)
    assert out.exit_code == 0, out.output
    assert "damaged parts the audit could not read" in " ".join(out.output.split())
    saved = json.loads((tmp_path / "e.json").read_text())
    assert saved["fedforensics_version"] and len(saved["runs"][0]["damaged"]) == 1
    notes = {j["name"]: j["note"] for j in saved["runs"][0]["judgements"]}
    assert "the global model of 1 round(s) could not be read (2)" in notes["avoidance"], notes
    assert "Damaged parts the audit could not read" in (tmp_path / "e.html").read_text()


def test_a_truth_line_whose_spaces_name_another_client_is_refused(tmp_path):
    """A fresh-eyes user: in a run with clients 'c1' and 'c1 ', the truth line 'c1 ' was read as 'c1' and scored
    the honest client as the attacker (1 false positive, 1 false negative, no hint)."""
    ids = ["c1", "c1 ", "n1", "n2", "n3", "n4", "n5", "n6"]
    path = make_run(tmp_path / "ws.h5", ids=ids, rounds=4)
    (tmp_path / "t.txt").write_text("c1 \n")
    refused = CliRunner().invoke(app, ["evaluate", str(path), "--truth", str(tmp_path / "t.txt")], terminal_width=300)
    assert refused.exit_code == 2 and "has the line 'c1 ', read as 'c1'" in refused.output, refused.output
    (tmp_path / "t.json").write_text('["c1 "]')  # as the message says: taken exactly
    assert CliRunner().invoke(app, ["evaluate", str(path), "--truth", str(tmp_path / "t.json")]).exit_code == 0
    (tmp_path / "plain.txt").write_text("  n1  \n")  # stripping that names no other client is as documented
    assert CliRunner().invoke(app, ["evaluate", str(path), "--truth", str(tmp_path / "plain.txt")]).exit_code == 0


def test_a_run_no_client_took_part_in_has_no_applicable_consensus(tmp_path):
    """A fresh-eyes user: a run without rounds had its consensus "applicable" over 0 clients."""
    path = tmp_path / "empty.h5"
    with Recorder(path) as rec:
        rec.ground_truth([])
    with open_run(path) as run:
        consensus = by_name(evaluate_report(analyze(run), []).judgements)[CONSENSUS]
    assert not consensus.applicable and consensus.note == "no client took part in the run"


def test_an_imperfect_rate_is_not_written_as_a_perfect_one_in_the_json():
    """A red-team review: pooled over 1,000 attackers and 4,000 honest clients, one honest client tied with one
    attacker gives an AUROC of 0.999999875; the terminal printed 0.9999999, the JSON (rounded to 6 decimals) 1.0."""
    from fedforensics.evaluate import Judgement, _auroc

    samples = [(10.0, True)] * 999 + [(1.0, True), (1.0, False)] + [(0.0, False)] * 3999
    j = Judgement("norm", True, 50, tp=1000, fn=0, fp=1, tn=3_999_999, samples=samples)
    j.auroc = _auroc(samples)
    written = j.to_json()
    assert written["auroc"] == j.auroc < 1.0 and 0.0 < written["fpr"] == j.fpr
    assert written["precision"] == round(j.precision, 6) and written["recall"] == 1.0  # others rounded as before


def test_the_terminal_and_html_say_which_detectors_left_clients_unscored(tmp_path):
    """A red-team review: in a 4-round run of 8 clients, 5 a round, norm scored 3 (too few rounds for the others):
    its recall 0.50 and AUROC 0.67 read as norm ranking the unscored attacker low, and only the JSON's ``scored``
    said it never scored it."""
    from fedforensics.report.evaluation import evaluation_tables, render_evaluation_html

    path = make_run(tmp_path / "sparse.h5", clients=8, rounds=4, participation=0.6, attackers=("c0", "c1"), attack="boost",
                    seed=1)
    evaluation = evaluate_runs([path])
    norm = by_name(evaluation.runs[0].judgements)["norm"]
    missing = [c for c, (score, _) in zip(evaluation.runs[0].clients, norm.samples) if math.isnan(score)]
    assert 0 < len(missing) < 8, missing
    attackers = sum(c in ("c0", "c1") for c in missing)
    said = f"{len(missing)} of 8 clients ({attackers} attacker{'s' * (attackers != 1)}) by "
    caption = " ".join(str(evaluation_tables(evaluation)[0].caption).split())
    assert "unscored, so ranked lowest by the AUROC: " in caption and said in caption, caption
    assert said in caption.split("norm")[0].rsplit(";", 1)[-1], caption  # norm is in the group of its count
    assert "Unscored, so ranked lowest by the AUROC: " in render_evaluation_html(evaluation)


def test_a_run_without_ground_truth_passed_to_evaluate_report_is_refused_in_one_line(tmp_path):
    """A red-team review: the package's example, ``evaluate_report(report, run.ground_truth)``, on a run that records
    no ground truth raised "TypeError: 'NoneType' object is not iterable"."""
    path = no_truth_run(tmp_path / "nt.h5")
    with open_run(path) as run:
        report = analyze(run)
        assert run.ground_truth is None
        with pytest.raises(FedForensicsError, match="records no ground truth: give the malicious client ids"):
            evaluate_report(report, run.ground_truth)


def test_a_truth_read_from_a_pipe_is_checked_for_lines_whose_spaces_name_another_client(tmp_path):
    """A red-team review: ``printf 'c1 \\n' | fedforensics evaluate ws.h5 --truth /dev/stdin`` judged the honest
    'c1' the attacker with exit 0, where the same line in a file is refused: the check read the file a second
    time, and a pipe gave it nothing."""
    path = make_run(tmp_path / "ws.h5", ids=["c1", "c1 ", "n1", "n2", "n3", "n4", "n5", "n6"], rounds=4)
    read, write = os.pipe()
    os.write(write, b"c1 \n")
    os.close(write)
    try:
        with pytest.raises(FedForensicsError, match="has the line 'c1 ', read as 'c1'"):
            evaluate_runs([path], Path(f"/dev/fd/{read}"))
    finally:
        os.close(read)


def test_pooled_attackers_found_only_on_whole_run_statistics_read_run_level_not_a_dash():
    """A fresh-eyes review: a pooled row 'found 2/2' beside a median round of '–' read as nothing found, where the
    per-run cells say 'run-level' (flagged on a statistic of the whole run, which has no round)."""
    from fedforensics.evaluate import Detection, Judgement
    from fedforensics.report.evaluation import _first_flagged

    run_level = Judgement("accumulated-sybil", True, 2, tp=2, detections=[Detection(0, "c0", None, True), Detection(1, "c1", None, True)])
    assert _first_flagged(run_level, pooled=True) == ["2/2", "run-level"]
    missed = Judgement("norm", True, 2, fn=2, detections=[Detection(0, "c0", None, False), Detection(1, "c1", None, False)])
    assert _first_flagged(missed, pooled=True) == ["0/2", "–"]
    timed = Judgement("norm", True, 2, tp=2, detections=[Detection(0, "c0", 3, True), Detection(1, "c1", 6, True)])
    assert _first_flagged(timed, pooled=True) == ["2/2", "4.5"]


def test_evaluate_runs_only_the_detectors_chosen_and_refuses_an_unknown_one(tmp_path):
    """`evaluate` ran every registered detector, installed plugins included: one broken plugin stopped every
    evaluation, and a detector could not be judged alone (a library user's review). `-d` chooses, as for analyze."""
    from synthetic import make_run

    path = make_run(tmp_path / "b.h5", attackers=("c3",), attack="boost", rounds=6)
    result = CliRunner().invoke(app, ["evaluate", str(path), "-d", "norm", "-d", "median-cosine", "--json", str(tmp_path / "e.json")])
    assert result.exit_code == 0, result.output
    names = [j["name"] for j in json.loads((tmp_path / "e.json").read_text())["runs"][0]["judgements"]]
    assert names == ["norm", "median-cosine", CONSENSUS]  # in the order given, as analyze's
    assert "layer-deviation" not in result.output and "norm" in result.output
    refused = CliRunner().invoke(app, ["evaluate", str(path), "-d", "nrom"])
    assert refused.exit_code == 2 and "nrom" in refused.output and "Traceback" not in refused.output
    refused = CliRunner().invoke(app, ["evaluate", str(path), "-d", "norm", "--set", "sybil.threshold=2"])
    assert refused.exit_code == 2 and "not among the detectors chosen" in refused.output


def test_evaluate_shows_names_longer_than_a_recorder_writes_cut(tmp_path):
    """A review: analyze came to cut a 100,000-character id of another writer's run, but evaluate printed it in
    every row naming the attacker and put 13 whole copies in its HTML page (1.3 MB); the JSON keeps it whole."""
    from synthetic import make_long_named_run

    from fedforensics.report.escapes import cut_name

    path, cid, _, _ = make_long_named_run(tmp_path / "long.h5")
    result = CliRunner().invoke(app, ["evaluate", str(path), "--html", str(tmp_path / "e.html"), "--json", str(tmp_path / "e.json")])
    assert result.exit_code == 0, result.output
    page = (tmp_path / "e.html").read_text()
    digest = cut_name(cid).split("sha256 ")[1].split("…")[0]
    assert cid not in page and digest in page and result.output.count("C") < len(cid)
    assert json.loads((tmp_path / "e.json").read_text())["runs"][0]["attackers"] == [cid]


def test_a_truth_file_without_end_is_refused_not_read_until_memory_runs_out(tmp_path):
    """Fuzzing the command line: `evaluate RUN --truth /dev/zero` read until the kernel killed it (exit 137), no line
    said why; a truth file is read up to a bound far above any federation's ids."""
    import re
    import resource
    import subprocess
    import sys

    path = make_run(tmp_path / "run.h5", clients=4, rounds=2, attackers=("c1",), attack="boost")

    def bounded():  # a regression's MemoryError, not this machine's memory
        resource.setrlimit(resource.RLIMIT_AS, (3 * 2**30, 3 * 2**30))

    command = [sys.executable, "-m", "fedforensics.cli", "evaluate", str(path), "--truth", "/dev/zero", "-q"]
    out = subprocess.run(command, capture_output=True, text=True, timeout=120, preexec_fn=bounded)
    assert out.returncode == 2 and re.fullmatch(r"error: the truth file /dev/zero holds more than \d+ MiB: not client ids\n", out.stderr), out
    crlf = tmp_path / "truth.txt"
    crlf.write_bytes(b"\xef\xbb\xbfc1\r\nc2\r")  # a BOM and Windows' and old Macs' line ends, read as before
    assert read_truth(crlf) == ["c1", "c2"]
