"""The HTML report: every section drawn, every run-file string escaped, nothing fetched."""

from __future__ import annotations

import base64
import dataclasses
import math
import re
import warnings

import numpy as np
import pytest

from fedforensics import open_run
from fedforensics.analysis import analyze
from fedforensics.detectors import get_detector
from fedforensics.report.html import render_html, write_html
from recorder import Recorder
from synthetic import make_run

XSS = "<img src=x onerror=alert(1)>"
LAYERS = {"fc1<i>.weight": (12, 8), "fc2.weight": (5, 12), "fc2<b>.bias": (5,)}
SECTIONS = ("summary", "verdicts", "localization", "timeline", "norms", "similarity", "metrics", "detectors")


def hostile_run(path, rounds: int = 6):
    """A run whose client ids, layer names and metadata are all markup, with a boosted attacker."""
    rng = np.random.default_rng(1)
    ids = [XSS, "$x^$", 'quote"s', "c3", "c4", "c5", "c6", "c7"]
    glob = {name: np.zeros(shape, np.float32) for name, shape in LAYERS.items()}
    with Recorder(path, meta={"<script>alert(2)</script>": "<b>meta</b>"}) as rec:
        for r in range(rounds):
            common = {name: rng.normal(size=shape) for name, shape in LAYERS.items()}
            with rec.round(r, glob) as rnd:
                for cid in ids:
                    scale = 6.0 if cid == XSS else 1.0
                    update = {n: scale * (c + 0.5 * rng.normal(size=c.shape)) for n, c in common.items()}
                    rnd.client(cid, update, num_samples=10, delta=True, metrics={"<u>acc</u>": 0.9 + 0.01 * rng.normal()})
                rnd.global_metrics({"accuracy": 0.5 + r / 20})
        rec.ground_truth([XSS])
    return path


def missing(page: str, *texts: str) -> list[str]:
    """The ``texts`` absent from ``page`` (compared as a list: pytest's diff of a 400 kB page takes minutes)."""
    return [t for t in texts if t not in page]


def present(page: str, *texts: str) -> list[str]:
    """The ``texts`` found in ``page``."""
    return [t for t in texts if t in page]


def audit(path, **kwargs):
    with open_run(path) as run:
        return analyze(run, **kwargs)


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    report = audit(hostile_run(tmp_path_factory.mktemp("html") / "hostile.h5"))
    return report, render_html(report)


def test_run_file_strings_are_escaped(hostile):
    report, page = hostile
    assert report.verdicts[0].client == XSS and report.verdicts[0].verdict == "malicious"
    assert present(page, XSS, "<script", "alert(2)</script>", "<i>", "<b>meta", 'quote"s') == []
    assert missing(
        page,
        "&lt;img src=x onerror=alert(1)&gt;",
        "&lt;script&gt;alert(2)&lt;/script&gt;",
        "&lt;b&gt;meta&lt;/b&gt;",
        "fc1&lt;i&gt;.weight",
        "quote&quot;s",
    ) == []


def test_the_page_dates_the_audit_and_says_how_each_detector_counts(tmp_path):
    """QA: no audit date anywhere, no size of the run file, the final global metrics only as a figure, no family per
    detector (a client "flagged by 2 detectors" was suspicious: both direction), the run's persistence and the
    large-data exception missing from the rule the verdicts follow."""
    from datetime import datetime

    from fedforensics import __version__
    from fedforensics.report.json import report_to_json

    report = audit(make_run(tmp_path / "run.h5", rounds=6, attackers=("c0",), attack="boost"))
    page = render_html(report)
    when = datetime.fromisoformat(report.audited)
    assert when.tzinfo is not None and abs((datetime.now(when.tzinfo) - when).total_seconds()) < 600
    assert f"<tr><th>audited</th><td>{report.audited} by fedforensics {__version__}</td></tr>" in page
    assert f"{report.summary.file_size:,} bytes" in page and "Global model after round" not in page  # no metric recorded
    assert re.search(r"<td><b>norm</b><br>.*?</td><td>magnitude<br><span class=\"muted\">large data</span></td>", page)
    assert "<td>behaviour<br><span class=\"muted\">corroborates only</span></td>" in page
    assert "count as one family (data size), and none of them makes it <b>malicious</b> by reaching 2× its threshold" in page
    assert "mean-copy or norm or opposition count as one family" in page and "output-bias count" not in page  # no family (review)
    one = render_html(dataclasses.replace(report, rule=dataclasses.replace(report.rule, agree=1)))
    assert "count as one family (data size)." in one  # one family is a verdict then (review: it said never)
    assert "BatchNorm" not in page  # this model has none: the rule's BatchNorm clause cannot apply (a review)
    normed = render_html(dataclasses.replace(report, batchnorm_head=["fc.weight"]))
    assert "last BatchNorm were not, in most of its rounds (a step the normalization absorbs), flags of layer-deviation or norm make it <b>malicious</b> only beside another family" in normed
    assert "last BatchNorm" not in render_html(dataclasses.replace(report, batchnorm_head=["fc.weight"], rule=dataclasses.replace(report.rule, agree=1)))
    assert f"This run's persistence: <b>{report.persistence:.3f}</b>" in page
    data = report_to_json(report)
    assert data["audited"] == report.audited and data["fedforensics_version"] == __version__
    rng = np.random.default_rng(0)
    with Recorder(tmp_path / "metrics.h5") as rec:
        for r in range(3):
            with rec.round(r, {"w": np.zeros(8, np.float32)}) as rnd:
                for c in range(4):
                    rnd.client(f"c{c}", {"w": rng.normal(size=8).astype(np.float32)}, num_samples=5, delta=True)
                rnd.global_metrics({"accuracy": 0.5 + r / 10, "attack_success": 0.25})
    assert "Global model after round 2: accuracy 0.700, attack_success 0.250." in render_html(audit(tmp_path / "metrics.h5"))


def test_every_section_and_figure_is_present(hostile):
    report, page = hostile
    assert missing(page, *(f'<section id="{a}">' for a in SECTIONS), *(f'href="#{a}"' for a in SECTIONS)) == []
    figures = re.findall(r'<img src="data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)"', page)
    # heatmap, timeline, norms, distance matrix, embedding, client metrics, global metrics
    assert len(figures) == 7
    for encoded in figures:
        svg = base64.b64decode(encoded).decode()
        assert svg.lstrip().startswith("<?xml") and "<script" not in svg
    placement = report.output_bias_placement
    assert placement["layer"] == "fc2<b>.bias"
    assert missing(page, f"ranks {placement['rank']} of {placement['of']} slices", "known attacker") == []


def test_nothing_is_fetched_or_run(hostile):
    _, page = hostile
    for attribute, value in re.findall(r'\b(src|href|action|srcset|poster|data)\s*=\s*"([^"]*)"', page):
        assert value.startswith(("data:", "#")), (attribute, value[:60])
    assert re.findall(r"https?://", page) == []
    assert present(page.lower(), "<script", "@import", "url(", "<link rel=\"stylesheet") == []
    assert missing(page, 'http-equiv="Content-Security-Policy" content="default-src &#x27;none&#x27;;') == []


def test_missing_detectors_leave_explained_gaps(tmp_path):
    path = make_run(tmp_path / "run.h5", attackers=("c2",), attack="boost", rounds=5)
    page = render_html(audit(path, detectors=[get_detector("norm")]))
    assert missing(page, *(f'<section id="{a}">' for a in SECTIONS)) == []
    assert missing(page, "No timeline: the layer-deviation detector was not selected.", "the cosine-hdbscan detector was not selected") == []
    # one client: the detectors ran but could score nobody, which the page said was "did not run" (QA)
    with Recorder(tmp_path / "one.h5") as rec:
        for r in range(3):
            with rec.round(r, {"w": np.zeros(4)}) as rnd:
                rnd.client("only", {"w": np.ones(4)}, num_samples=1, delta=True)
    alone = render_html(audit(tmp_path / "one.h5"))
    assert "No update norms: norm: no client could be scored (too few clients" in alone and "did not run" not in alone
    assert page.count("data:image/svg+xml") == 2  # norms and client metrics


def test_clean_run_names_no_suspect(tmp_path):
    page = render_html(audit(make_run(tmp_path / "clean.h5", rounds=6)))
    assert missing(page, "No client reached a suspicious or malicious verdict.", "no malicious client") == []


def test_ids_in_scripts_the_plot_font_lacks_raise_no_warning(tmp_path):
    path = make_run(tmp_path / "cjk.h5", ids=["病院-東京", "医院-北京", "c2", "c3", "c4", "😀"], rounds=4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        page = render_html(audit(path))
    assert missing(page, "病院-東京", "医院-北京") == []


def test_a_fleet_caption_names_twenty_outliers_and_counts_the_rest(tmp_path):
    report = audit(make_run(tmp_path / "fleet.h5", clients=60, rounds=6, seed=2))
    outside = report.detector("cosine-hdbscan").extras["accumulated_outliers"]
    assert len(outside) > 20
    caption = re.search(r"Outside the majority cluster: (.*?)\. Being outside", render_html(report)).group(1)
    assert caption.count('class="id"') == 20 and caption.endswith(f" and {len(outside) - 20} more")
    page = render_html(report)
    assert "<summary>the other 10 clients, all benign</summary>" in page  # 60 verdict rows: 50 shown


def test_clip_factors_are_listed_largest_first_and_the_rest_counted(tmp_path):
    """QA: "Largest clip factors" listed eight of twenty flagged clients in the order flagged, the rest unsaid."""
    from fedforensics.report.html import CAPTION_LISTED

    attackers = tuple(f"c{i}" for i in range(12))
    report = audit(make_run(tmp_path / "boost.h5", clients=40, rounds=4, attackers=attackers, attack="boost"),
                   detectors=[get_detector("norm")])
    norm = report.detector("norm")
    assert len(norm.flagged) > CAPTION_LISTED
    caption = re.search(r"Largest clip factor of each flagged client, largest first: (.*?)\.</", render_html(report)).group(1)
    factors = [float(x) for x in re.findall(r"×([0-9.]+)", caption)]
    assert len(factors) == CAPTION_LISTED and factors == sorted(factors, reverse=True)
    assert caption.endswith(f" and {len(norm.flagged) - CAPTION_LISTED} more")


def test_a_fleet_beyond_the_view_limit_gets_no_distance_matrix(tmp_path, monkeypatch):
    """The matrix grows with the square of the clients (4,000 made a 325 MB JSON report), its MDS with
    the cube: beyond ``view_clients`` the detector keeps neither, and the page says why."""
    from fedforensics.detectors.cosine_hdbscan import CosineHDBSCANDetector

    monkeypatch.setattr(CosineHDBSCANDetector, "view_clients", 8)
    report = audit(make_run(tmp_path / "fleet.h5", clients=9, rounds=5))
    extras = report.detector("cosine-hdbscan").extras
    assert extras["distance_matrix"] is None and extras["embedding"] == {} and len(extras["distance_clients"]) == 9
    assert extras["view_omitted"] == "9 clients are too many for a readable distance matrix (more than 8)"
    assert "No similarity view: 9 clients are too many for a readable distance matrix (more than 8)." in render_html(report)
    monkeypatch.setattr(CosineHDBSCANDetector, "view_clients", 9)
    extras = audit(tmp_path / "fleet.h5").detector("cosine-hdbscan").extras
    assert len(extras["distance_matrix"]) == len(extras["embedding"]) == 9 and extras["view_omitted"] is None


def test_write_html_writes_the_rendered_page(tmp_path, hostile):
    report, page = hostile
    target = tmp_path / "report.html"
    write_html(report, target)
    assert hash(target.read_text(encoding="utf-8")) == hash(page)
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]


def fake_inversion(labels: int = 10, target: int = 6):
    """A trigger inversion result as Neural Cleanse returns it, with a small "+" trigger for ``target``."""
    inversion = pytest.importorskip("fedforensics.inversion", reason="trigger inversion needs torch")
    rng = np.random.default_rng(0)
    masks = rng.uniform(0, 1, (labels, 8, 8)).astype(np.float32) ** 3
    masks[target] = 0
    masks[target, 6, 5:8] = masks[target, 5:8, 6] = 1
    patterns = rng.uniform(0, 16, (labels, 1, 8, 8)).astype(np.float32)
    classes = [
        inversion.LabelTrigger(k, float(masks[k].sum()), 0.9, 3.0 if k == target else 0.5, k == target) for k in range(labels)
    ]
    result = inversion.NeuralCleanseResult(classes, masks, patterns, np.full(labels, 10))
    counts = [2] * labels
    counts[target] = 160
    probe = inversion.TriggerProbe([
        inversion.ProbeSet("clean", [18] * labels, None, 0.0),
        inversion.ProbeSet(f"recovered {target}", counts, target, 160 / 178),
    ])
    timeline = [inversion.RoundInversion(r, result) for r in (0, 3)]
    return inversion.TriggerInversionReport(5, "final", result, probe, timeline, 180, 1.0)


def test_trigger_inversion_section(hostile):
    report, page = hostile
    assert '<section id="inversion">' not in page
    with_inversion = dataclasses.replace(report, trigger_inversion=fake_inversion())
    page = render_html(with_inversion)
    assert missing(page, '<section id="inversion">', 'href="#inversion"', "Backdoor suspected: label 6", "after round 5") == []
    # what the flag measured, not "far smaller than any other label needs" (a fresh-eyes user's flag sat at 9.0 of mask
    # against 10.2 for the next label: an outlier of a narrow spread)
    assert "is an outlier on the small side of the labels' trigger sizes (anomaly index 3.00, flagged above 2)" in page
    # scores, trigger images, probe histograms and the timeline, besides the seven figures of the audit
    assert page.count("data:image/svg+xml") == 7 + 4
    # two labels: each beside its own index, strongest first (a fresh-eyes user: labels 6, 4 were given 4's and 6's
    # indices, which were listed in label order), and the lead names the model inverted
    inversion = fake_inversion()
    inversion.result.classes[4] = dataclasses.replace(inversion.result.classes[4], anomaly_index=2.64, flagged=True)
    inversion.result.classes[6] = dataclasses.replace(inversion.result.classes[6], anomaly_index=4.04)
    two = render_html(dataclasses.replace(report, trigger_inversion=inversion))
    assert "Backdoor suspected: labels 6, 4" in two and "(anomaly index 6: 4.04, 4: 2.64, flagged above 2)" in two
    assert "their triggers, which send held-out inputs there, are outliers" in two
    assert "Neural Cleanse (Wang et al. 2019) on the final model (after round 5)" in two


def test_a_probe_histogram_of_two_labels_tied_colours_both_and_says_it(hostile):
    """A review: under a trigger whose predictions grew alike for labels 8 and 9, the histogram coloured 8 alone as
    the label pulled to; both are red now, and the caption and the terminal say it is a tie."""
    from rich.console import Console

    from fedforensics.report.terminal import trigger_inversion_table

    report, _ = hostile
    inversion = fake_inversion()
    tie = dataclasses.replace(inversion.probe.sets[1], name="trigger", histogram=[10] * 8 + [40, 40], target=8,
                              pulled=40 / 180, tied=(9,))
    for tied, red in ((tie, 2), (dataclasses.replace(tie, tied=()), 1)):
        inversion.probe.sets[1:] = [tied]
        page = render_html(dataclasses.replace(report, trigger_inversion=inversion))
        probe = base64.b64decode(re.findall(r'src="data:image/svg\+xml;base64,([^"]+)" alt="prediction histograms', page)[0])
        assert probe.decode().count("fill: #c62828") == red
        assert ("a tie, which the title names, pulls to no one of them" in page) == (red == 2)
    console = Console(record=True, width=120)
    inversion.probe.sets[1:] = [tie]
    console.print(trigger_inversion_table(inversion))
    assert "8, tied with 9" in console.export_text()


def test_the_summary_states_what_trigger_inversion_found(hostile):
    """Beside the verdict counts: the backdoor it suspects (and that no client was identified, when
    every client is benign), or that it flagged no label; nothing when it did not run."""
    report, page = hostile
    assert "Trigger inversion" not in page.split('<section id="verdicts"')[0]
    assert report.model_finding is None
    found = dataclasses.replace(report, trigger_inversion=fake_inversion())
    summary = render_html(found).split('<section id="verdicts"')[0]
    expected = "Trigger inversion suspects a backdoor in the final model (after round 5) toward label 6 (anomaly index 3.00)"
    assert expected in summary
    assert any(v.verdict != "benign" for v in report.verdicts)
    assert "who planted it is not identified" not in summary
    all_benign = [dataclasses.replace(v, verdict="benign") for v in report.verdicts]
    unidentified = render_html(dataclasses.replace(found, verdicts=all_benign)).split('<section id="verdicts"')[0]
    assert expected in unidentified and "stood out, so who planted it is not identified" in unidentified
    weak = fake_inversion()
    weak.result.classes[6] = dataclasses.replace(weak.result.classes[6], anomaly_index=2.2)
    assert weak.result.weak_labels == [6] and fake_inversion().result.weak_labels == []
    assert "Weak for label 6: an anomaly index below 2.58" in render_html(dataclasses.replace(report, trigger_inversion=weak))
    assert "Weak for label" not in render_html(found)
    # QA: the timeline drew a weak flag as a strong one and had no text of the flags per round
    early = fake_inversion()
    early.result.classes[6] = dataclasses.replace(early.result.classes[6], anomaly_index=2.2)
    dated = fake_inversion()
    dated.timeline[0] = dataclasses.replace(dated.timeline[0], result=early.result)
    caption = render_html(dataclasses.replace(report, trigger_inversion=dated))
    assert "Flagged labels per inverted round: 0: 6 (weak) · 3: 6." in caption
    assert "A weak flag (hollow) has an anomaly index below 2.58" in caption
    assert dataclasses.replace(report, trigger_inversion=weak).model_finding.startswith(
        "trigger inversion suspects a backdoor in the final model (after round 5) toward label 6 (anomaly index 2.20; weak: below 2.58, "
        "which any of a clean model's 10 labels passes by chance only one time in 20)"
    )
    nothing = fake_inversion()
    nothing.result.classes[:] = [dataclasses.replace(c, flagged=False) for c in nothing.result.classes]
    none_flagged = dataclasses.replace(report, trigger_inversion=nothing)
    assert none_flagged.model_finding == "trigger inversion flags no label of the final model (after round 5)"
    assert "Trigger inversion flags no label of the final model (after round 5)." in render_html(none_flagged)


def test_the_rule_text_says_a_clean_push_can_make_a_client_suspicious(hostile):
    """A client the clean push made suspicious had no flag, beside a rule text that said "suspicious when flagged by
    one family or when an update held NaN/Inf; otherwise benign"; with the push switched off it says nothing."""
    from fedforensics.inversion.attribution import CleanPush
    from fedforensics.verdict import ConsensusRule

    report, _ = hostile
    inversion = fake_inversion()
    inversion.clean_push = CleanPush(6, {"c0": 2.0}, {"c0": 6}, 100)
    said = (
        "Trigger inversion flagged label 6: a client otherwise <b>benign</b> whose clean push toward it reaches 1.5 while "
        "its score without cosine-hdbscan or output-bias reaches 1.5 is <b>suspicious</b> (docs/detectors.md, step 5)."
    )
    assert said in render_html(dataclasses.replace(report, trigger_inversion=inversion))
    assert "clean push toward it" not in render_html(dataclasses.replace(report, trigger_inversion=fake_inversion()))
    off = dataclasses.replace(report, trigger_inversion=inversion, rule=ConsensusRule(push=math.inf))
    assert "clean push toward it" not in render_html(off)


def test_the_clean_push_line_says_what_the_audits_rule_makes_of_it(hostile):
    """Both reports said "a high push makes a benign client suspicious" under --set verdict.push=inf too, where no
    push makes anyone suspicious; they give the rule's cut-offs now, or say it takes no push."""
    from rich.console import Console

    from fedforensics.inversion.attribution import CleanPush
    from fedforensics.report.terminal import trigger_inversion_table
    from fedforensics.verdict import ConsensusRule

    report, _ = hostile
    inversion = fake_inversion()
    inversion.clean_push = CleanPush(6, {"c0": 2.0}, {"c0": 6}, 100)
    taken = "A client otherwise benign whose push reaches 1.5 while its score without the label-mix detectors reaches 1.5 is suspicious"
    off = "The verdict rule takes no push here (push inf, push_score 1.5)"
    for rule, says, not_said in ((ConsensusRule(), taken, off), (ConsensusRule(push=math.inf), off, taken)):
        page = render_html(dataclasses.replace(report, trigger_inversion=inversion, rule=rule))
        console = Console(record=True, width=400)
        console.print(trigger_inversion_table(inversion, rule))
        for text in (page, console.export_text()):
            assert f"c0 2.00. {says}" in text and not_said not in text


def test_a_corroborating_flag_alone_is_shown_as_such(tmp_path):
    """A client whose reported metric alone is odd stays benign, and both reports say why."""
    from rich.console import Console

    from fedforensics.report.terminal import verdict_table

    rng = np.random.default_rng(3)
    shape = (6, 4)
    with Recorder(tmp_path / "metric.h5") as rec:
        for r in range(6):
            common = rng.normal(size=shape)
            with rec.round(r, {"w": np.zeros(shape, np.float32)}) as rnd:
                for i in range(8):
                    accuracy = 0.2 if i == 3 else 0.9 + 0.01 * rng.normal()
                    rnd.client(f"c{i}", {"w": common + 0.3 * rng.normal(size=shape)}, num_samples=10, delta=True, metrics={"acc": accuracy})
    report = audit(tmp_path / "metric.h5")
    verdict = next(v for v in report.verdicts if v.client == "c3")
    assert verdict.flagged_by == ["client-metrics"] and verdict.verdict == "benign"
    assert "corroborates only)" in render_html(report)
    console = Console(record=True, width=200)
    console.print(verdict_table(report))
    text = " ".join(console.export_text().split())
    assert "client-metrics (corroborates)" in text
    # the word explained under the table, as the HTML's legend explains it (a fresh-eyes auditor found it unexplained)
    assert "(corroborates): its flag alone leaves a client benign (docs/detectors.md, step 4)" in text


@pytest.mark.parametrize(
    "agree, says",
    [
        (1, "at least 1 family of evidence (magnitude, direction, collusion, behaviour) or by one standalone detector at 2× its threshold; "
            "<b>suspicious</b> when an update held NaN/Inf; otherwise <b>benign</b>."),
        (2, "<b>suspicious</b> when flagged by one family or when an update held NaN/Inf"),
        (3, "<b>suspicious</b> when flagged by fewer than 3 families or when an update held NaN/Inf"),
    ],
)
def test_the_rule_text_follows_the_rules_parameters(tmp_path, agree, says):
    """With --set verdict.agree=3 the page still said 'suspicious when flagged by one family'."""
    from fedforensics.verdict import ConsensusRule

    report = analyze(open_run(make_run(tmp_path / "r.h5", rounds=4)), rule=ConsensusRule(agree=agree))
    assert says in render_html(report)
    # one sentence per kind of non-standalone detector, which the page said twice, contradicting itself (QA)
    html = render_html(report)
    assert "A flag of client-metrics (set by a client's own data under label skew) counts as its family only beside" in html
    assert "Beside flags of the data size or magnitude families alone, a flag of client-metrics counts as none: one cause raises both" in html
    assert "A flag of output-bias (a client's label histogram) is listed as evidence but counts as no family." in render_html(report)


def test_an_infinite_threshold_and_cap_read_as_such(tmp_path):
    """QA: `--set norm.threshold=inf --set verdict.cap=inf` showed the threshold as '–' (elsewhere 'none') while the
    JSON said "inf", and the rule said 'capped at inf'."""
    from fedforensics.verdict import ConsensusRule

    run = open_run(make_run(tmp_path / "r.h5", rounds=4))
    report = analyze(run, [get_detector("norm", threshold=float("inf"))], rule=ConsensusRule(cap=float("inf")))
    html = render_html(report)
    row = re.search(r"<tr><td><b>norm</b>.*?</tr>", html, re.S)
    assert row is not None and '<td class="num">∞</td>' in row.group(0), row
    assert "The score sums each detector's score ÷ threshold." in html and "capped at inf" not in html


def test_figure_labels_of_long_ids_are_cut_in_the_middle():
    """QA: ids of 200 characters that differ in their tail were cut at the end: twelve identical legend entries."""
    from fedforensics.report.figures import short

    a, b = short("x" * 200 + "01"), short("x" * 200 + "02")
    assert a != b and len(a) == len(b) == 24 and a.endswith("01") and "…" in a
    assert short("c3") == "c3"


def test_figure_labels_keep_apart_the_ids_the_tables_keep_apart():
    """QA: a label collapsed its spaces before escaping (``c`` + U+00A0 + ``6`` drew as the honest ``c 6``, ``c4 ``
    as ``c4``) and ids differing in the middle were cut to one label (``client-0001@eu-west-1…``)."""
    from fedforensics.report.figures import ClientStyles, distinct_labels

    ids = ["c 6", "c\xa06", "c\t6", "c4", "c4 ", *(f"client-000{i}@eu-west-1.fl.example.com" for i in (1, 2))]
    for limit in (12, 14, 18, 24):
        labels = distinct_labels(ids, limit)
        assert len(set(labels.values())) == len(ids), labels
    assert distinct_labels(["x" * 40, "c1"], 12) == {"x" * 40: "xxxxx…xxxxxx", "c1": "c1"}  # no collision: cut as ever
    styles = ClientStyles({c: "benign" for c in ids}, frozenset({"c4 "}))
    assert styles.name("c\xa06", 12) == "c\\xa06" and styles.label("c4 ") == "c4\\x20 (benign, known attacker)"


def test_nested_metadata_is_shown_as_stored_and_an_empty_run_says_it_has_no_client(tmp_path):
    """QA: nested metadata read as Python's repr (None, single quotes); a run without updates had a verdict table of
    headers only."""
    with Recorder(tmp_path / "empty.h5", meta={"split": {"alpha": None, "seeds": ["a", 1]}, "name": "x"}):
        pass
    page = render_html(audit(tmp_path / "empty.h5"))
    assert 'split = {&quot;alpha&quot;: null, &quot;seeds&quot;: [&quot;a&quot;, 1]}' in page and "name = x" in page
    assert "No client sent an update in any round: there is nothing to judge." in page


def test_a_long_metadata_value_is_shown_cut_and_kept_whole_in_the_json(tmp_path):
    """A review: a 10 MB string in a run's meta was printed whole in the terminal and the HTML; both now show its
    beginning and say how much is left out, and the JSON report keeps it as the run holds it."""
    from rich.console import Console

    from fedforensics.report.json import report_to_json
    from fedforensics.report.wording import META_SHOWN
    from fedforensics.report.terminal import render_summary

    note = "n" * (META_SHOWN + 5_000)
    with Recorder(tmp_path / "long.h5", meta={"note": note, "name": "x"}):
        pass
    report = audit(tmp_path / "long.h5")
    told = "… [5,000 more characters: the JSON report and the run file hold it whole]"
    assert f"note = {'n' * META_SHOWN}{told}" in render_html(report) and note not in render_html(report)
    console = Console(record=True, width=200)
    render_summary(console, report.summary)
    text = "".join(console.export_text().split())
    assert "".join(told.split()) in text and note not in text and "name=x" in text
    assert report_to_json(report)["run"]["meta"]["note"] == note


def test_names_longer_than_a_recorder_writes_are_shown_cut_and_kept_whole_in_the_json(tmp_path):
    """A review: a run of another writer (plain h5py) with a client id, a layer name and a metric name of 100,000
    characters each printed 58,000 lines in the terminal and 2.8 MB of the HTML. The format says a reader MUST read
    them: the reports show each name's first NAME_SHOWN characters and how many are left out, the JSON keeps it."""
    from rich.console import Console
    from synthetic import make_long_named_run

    from fedforensics.report.escapes import NAME_SHOWN, cut_name
    from fedforensics.report.json import report_to_json
    from fedforensics.report.terminal import render_audit, render_summary

    path, cid, layer, metric = make_long_named_run(tmp_path / "long.h5")
    report = audit(path)
    assert report.verdicts[0].client == cid  # the boosted client stands out as before
    page = render_html(report)
    console = Console(record=True, width=200)
    render_audit(console, report)
    render_summary(console, report.summary)
    text = console.export_text()
    for name in (cid, layer, metric):
        told = cut_name(name)
        assert told.startswith(name[:NAME_SHOWN] + "… [98,976 more characters, sha256 ") and told in page
        assert name[0] * (NAME_SHOWN + 1) not in page
        # folded in table cells, a name is no one string of the terminal: its digest is, and it is never there whole
        assert told.split("sha256 ")[1].split("…")[0] in text and text.count(name[0]) < len(name)
    data = report_to_json(report)
    assert data["clients"][0]["id"] == cid and data["run"]["layers"][0]["name"] == layer
    assert data["run"]["client_metrics"] == [metric]


def test_two_long_names_that_begin_alike_are_not_shown_alike():
    """Cut to their beginnings, two ids of another writer's run that differ only past it would read the same."""
    from fedforensics.report.escapes import NAME_SHOWN, long_names, shown

    a, b = "c" * NAME_SHOWN + "a", "c" * NAME_SHOWN + "b"
    with long_names([a, b, "short"]):
        assert shown(a) != shown(b) and shown(f"{a}, {b}") == f"{shown(a)}, {shown(b)}" and shown("short") == "short"
    assert shown(a) == a


def test_many_background_lines_are_drawn_as_one_image():
    """QA: 1,000 clients over 150 rounds made each per-client chart 5.6 MB of SVG paths (17 MB of HTML); beyond
    RASTER_LINES benign clients their lines are one embedded image, the highlighted clients still vectors."""
    from fedforensics.report.figures import RASTER_LINES, ClientStyles, client_timelines

    def svg(clients: int) -> str:
        rng = np.random.default_rng(0)
        by_round = {str(r): {f"c{i}": float(rng.normal()) for i in range(clients)} for r in range(100)}
        styles = ClientStyles({f"c{i}": "malicious" if i == 0 else "benign" for i in range(clients)}, frozenset())
        uri = client_timelines(by_round, styles, "t", "y")
        return base64.b64decode(uri.split(",", 1)[1]).decode()

    few, many = svg(RASTER_LINES), svg(400)
    assert "<image" not in few and "<image" in many
    assert len(many) < 2 * len(few), (len(few), len(many))  # 400 lines cost about what 60 do
    assert many.count("<path") < few.count("<path")


def test_a_fleet_of_flagged_clients_gets_labels_for_the_first_twelve_only():
    """QA: 212 flagged clients of a churned fleet drew 212 overlapping labels on each timeline."""
    from matplotlib.figure import Figure

    from fedforensics.report.figures import LEGEND_LIMIT, ClientStyles, _client_lines, embedding

    ids = [f"c{i:03d}" for i in range(200)]
    styles = ClientStyles(verdicts={c: "malicious" if i < 150 else "benign" for i, c in enumerate(ids)}, attackers=frozenset())
    ax = Figure().add_subplot()
    _client_lines(ax, {"0": {c: float(i) for i, c in enumerate(ids)}, "1": {c: float(i) for i, c in enumerate(ids)}}, styles)
    assert len(ax.texts) == LEGEND_LIMIT
    assert embedding({c: (float(i), float(i % 7)) for i, c in enumerate(ids)}, styles).startswith("data:image/svg+xml;base64,")


def test_no_figure_is_rounded_onto_a_boundary_it_did_not_reach_and_a_cut_table_says_so(hostile, tmp_path):
    """A fresh-eyes user: a benign client at 0.996× a threshold read "nearest: spread-shift at 1.00× its threshold"
    (a flag the verdict ignored, it seemed), an AUROC of 0.9957 read 1.00, and the localization table showed 8 (terminal)
    and 10 (HTML) of 12 slices without saying so."""
    from rich.console import Console

    from fedforensics.report.wording import short
    from fedforensics.report.terminal import localization_table

    assert [short(0.996, (1.0,)), short(0.9957, (0.0, 1.0)), short(1.996, (2.0,)), short(0.5, (1.0,))] == [
        "0.996", "0.996", "1.996", "0.50"
    ]
    report, _ = hostile
    benign = next(v for v in report.verdicts if v.verdict == "benign")
    near = dataclasses.replace(benign, strengths={**benign.strengths, "norm": 0.996})
    page = render_html(dataclasses.replace(report, verdicts=[near if v is benign else v for v in report.verdicts]))
    assert "nearest: norm at 0.996× its threshold" in page
    assert "The top 10 of" not in page  # 6 slices: none cut
    from synthetic import make_run

    layered = audit(make_run(tmp_path / "seven.h5", shapes={f"l{i}.weight": (6, 5) for i in range(7)}, rounds=5))
    slices = len(layered.localization)
    assert slices == 14, slices
    console = Console(width=200, record=True, color_system=None)
    console.print(localization_table(layered))
    assert "the top 8 of 14 slices; all of them in the JSON report" in " ".join(console.export_text().split())
    assert "The top 10 of 14 slices; all of them in the JSON report." in render_html(layered)


def test_the_nearest_call_of_a_client_few_detectors_scored_says_so(hostile):
    """A fresh-eyes auditor: a client of 2 rounds that only sybil could score read "below every threshold; nearest:
    sybil at -0.03× its threshold", as if all 13 detectors had found it below theirs, and a negative strength as a
    distance to the threshold."""
    report, _ = hostile
    benign = next(v for v in report.verdicts if v.verdict == "benign")
    unscored = {name: float("nan") for name in benign.strengths}
    few = dataclasses.replace(benign, strengths={**unscored, "sybil": -0.0294})
    page = render_html(dataclasses.replace(report, verdicts=[few if v is benign else v for v in report.verdicts]))
    total = len(benign.strengths)
    assert (f"nearest: sybil at −0.03× its threshold (the unsuspicious side); {total - 1} of {total} detectors could not "
            "score it") in page
    assert "could not score it" not in render_html(dataclasses.replace(report, verdicts=[
        dataclasses.replace(benign, strengths={name: 0.5 for name in benign.strengths}) if v is benign else v
        for v in report.verdicts]))


def test_the_localization_caption_is_left_aligned_as_the_other_tables_are(hostile):
    """A review at 80 columns: the localization table's caption was centred under it, its wrapped lines starting at
    ragged columns (" output-layer bias ...", "  against the recorded ground truth; ..."), unlike every other caption."""
    from rich.console import Console

    from fedforensics.report.terminal import localization_table

    report, _ = hostile
    console = Console(width=80, record=True, color_system=None)
    console.print(localization_table(report, width=80))
    lines = console.export_text().splitlines()
    caption = lines[next(i for i, line in enumerate(lines) if line.startswith("└")) + 1:]
    assert caption and caption[0].startswith("output-layer bias"), caption
    assert not [line for line in caption if line.startswith(" ")], caption
    # 8 of 12 slices at 10.0 read as a measured tie, not the ceiling it is (a review)
    said = " ".join(" ".join(line.split()) for line in caption)
    assert "separation: a client's mean round z on the slice, each round held within ±10" in said, caption


def test_the_verdict_tables_say_what_a_round_z_is(hostile, tmp_path):
    """A fresh-eyes auditor: "(round z = +10.8)" was the one figure of an evidence line that neither report explained;
    a run whose evidence quotes none says nothing of it."""
    from rich.console import Console

    from fedforensics.detectors.base import ROUND_Z_MEANING
    from fedforensics.report.page import esc
    from fedforensics.report.terminal import verdict_table

    report, page = hostile
    assert "round z = " in report.verdicts[0].evidence[0].detail
    assert f"Round z: {esc(ROUND_Z_MEANING)}." in page
    for width in (80, 200):
        console = Console(width=width, record=True, color_system=None)
        console.print(verdict_table(report, width=width))
        assert f"round z: {ROUND_Z_MEANING}" in " ".join(console.export_text().split())
    clean = audit(make_run(tmp_path / "clean.h5", rounds=5))
    assert not any(e for v in clean.verdicts for e in v.evidence)
    assert "Round z:" not in render_html(clean)


def test_the_similarity_caption_says_being_outside_the_majority_is_no_flag(hostile):
    """A fresh-eyes auditor: "Outside the majority cluster: c0, c12, c15, c16, c19, c2, c4" beside no client that
    cosine-hdbscan flagged read as seven suspects."""
    _, page = hostile
    assert "Being outside it is no flag by itself: the Detectors table names whom cosine-hdbscan flagged." in page


def test_the_verdict_tables_say_since_which_round_a_client_is_judged_so(hostile):
    """A fresh-eyes user: `first_round`, what an auditor asks first, was only in the JSON."""
    from rich.console import Console

    from fedforensics.report.terminal import verdict_table

    report, page = hostile
    top = report.verdicts[0]
    assert top.verdict == "malicious" and top.first_round is not None
    assert '<th class="num">since round</th>' in page
    assert f'malicious</span></td><td class="num">{top.score:.2f}</td><td class="num">{top.rounds}</td><td class="num">{top.first_round}</td>' in page
    console = Console(width=200, record=True, color_system=None)
    console.print(verdict_table(report, width=200))
    text = console.export_text()
    row = next(line for line in text.splitlines() if " malicious " in line)
    assert f"│     {top.first_round} │" in row and "since" in text


def test_the_verdict_tables_say_what_since_counts(hostile):
    """A fresh-eyes user read the demo's "c1 malicious since 2" as malicious from round 2; it was suspicious then and
    malicious from round 5, when its second family's flag came: both reports say what the round is."""
    from rich.console import Console

    from fedforensics.report.terminal import verdict_table

    report, page = hostile
    said = "the first round by which the verdict rule would have judged the client malicious or suspicious"
    assert f"Since round: {said}" in page
    console = Console(width=200, record=True, color_system=None)
    console.print(verdict_table(report, width=200))
    assert f"since: {said}" in " ".join(console.export_text().split())
    narrow = Console(width=60, record=True, color_system=None)
    narrow.print(verdict_table(report, width=60))  # no since column there, so no word of it
    assert "since:" not in narrow.export_text()


def test_failed_replies_carry_their_reasons_and_a_nan_client_is_not_flagged_by_zero_detectors(tmp_path):
    """A fresh-eyes user: the audit's reports gave a failed reply's round without its recorded reason (only inspect
    and the JSON had it), the terminal said "1 client updates hold NaN/Inf", and the HTML's top suspects said
    "flagged by 0 detectors" of a client suspicious for its NaN update alone."""
    from rich.console import Console

    from fedforensics.report.terminal import summary_panel
    from synthetic import make_run

    path = make_run(tmp_path / "nan.h5", clients=8, rounds=5, nan_client="c2")
    with Recorder(tmp_path / "failed.h5") as rec:
        glob = {"w": np.zeros(6, np.float32)}
        rng = np.random.default_rng(0)
        for r in range(4):
            with rec.round(r, glob) as rnd:
                for c in range(6):
                    rnd.client(f"c{c}", {"w": rng.normal(size=6).astype(np.float32)}, num_samples=5, delta=True)
                if r == 3:
                    rnd.failure("c9", "timeout after 30s")
    failed = audit(tmp_path / "failed.h5")
    assert '<span class="id">c9</span> (round 3: timeout after 30s)' in render_html(failed)
    console = Console(width=200, record=True, color_system=None)
    console.print(summary_panel(failed.summary))
    assert "1: c9 (round 3: timeout after 30s)" in console.export_text()
    broken = audit(path)
    assert any(v.client == "c2" and v.verdict == "suspicious" and not v.flagged_by for v in broken.verdicts)
    page = render_html(broken)
    assert "flagged by 0 detectors" not in page
    console.print(summary_panel(dataclasses.replace(broken.summary, nonfinite_updates={"1:c2": 3})))
    assert "1 client update holds NaN/Inf" in console.export_text()


def test_narrow_consoles_crop_no_value_of_the_localization_and_detector_tables(tmp_path):
    """A fresh-eyes user at 60 and 45 columns: the localization table's border and its AUROC values ('1.' for 1.00)
    were cropped, and detector names cut to 'accumulated-s…'."""
    from rich.console import Console

    from fedforensics.report.wording import rate
    from fedforensics.report.terminal import detector_table, localization_table
    from synthetic import make_run

    report = audit(make_run(tmp_path / "boost.h5", clients=8, rounds=6, attackers=("c0",), attack="boost"))
    for width in (45, 60):
        console = Console(width=width, record=True, color_system=None)
        console.print(localization_table(report, width=width))
        console.print(detector_table(report))
        text = console.export_text()
        shown = [rate(row["auroc"]) for row in report.localization[:8]]
        cells = text.replace("│", " ").split()
        assert set(shown) <= set(cells) and "1." not in cells, (width, shown, text)
        framed = [line.rstrip() for line in text.splitlines() if line.startswith(("│", "┃"))]
        assert framed and all(line.endswith(("│", "┃")) for line in framed), text  # no right border cropped
        assert "…" not in text.split("detectors")[-1], text  # names folded, not cut


def test_a_model_near_chance_on_the_clean_data_is_said_to_be_so_beside_its_triggers(hostile):
    """A fresh-eyes user: uint8 images fed unscaled, and a round-0 model, were inverted without a word about how badly
    the model read the clean data; its accuracy is now given, and a warning near chance."""
    from rich.console import Console

    from fedforensics.report.terminal import trigger_inversion_table

    report, _ = hostile
    for accuracy, expected in ((0.12, "close to chance (10%): the clean data may be scaled or laid out otherwise"),
                               (0.96, "the model classifies 96% of the held-out clean samples correctly (the "
                                      "clean data given to the inversion, not the test set the run recorded)")):
        inversion = fake_inversion()
        inversion = dataclasses.replace(inversion, result=dataclasses.replace(inversion.result, clean_accuracy=accuracy))
        assert expected in " ".join(render_html(dataclasses.replace(report, trigger_inversion=inversion)).lower().split())
        console = Console(width=250, record=True, color_system=None)
        console.print(trigger_inversion_table(inversion))
        assert expected in " ".join(console.export_text().split())
        assert ("chance" in inversion.result.accuracy_said) == (accuracy < 0.2)


def test_the_localization_heatmap_puts_the_threshold_at_most_halfway_up_its_scale():
    """A review: scaled to the threshold itself, a clean 300-client run's chance maxima near it (4-5 of 5) were all
    dark red beside the caption 'there is no anomaly to localize'."""
    from matplotlib import colors

    from fedforensics.report.figures import heatmap_scale

    clean = heatmap_scale(4.6, 5.0)
    assert clean(5.0) == 0.5 and clean(4.6) < 0.5  # below the threshold: the lower half of the colours
    assert heatmap_scale(8.0, 5.0)(8.0) == 0.8 and heatmap_scale(12.0, 5.0)(12.0) == 1.0
    assert isinstance(heatmap_scale(300.0, 5.0), colors.LogNorm)  # a boost's z of hundreds, on a log scale
    assert heatmap_scale(0.2, None).vmax == 1.0


def test_the_similarity_view_names_the_clients_it_leaves_out(tmp_path):
    """A review: the distance matrix left out the clients clustered in fewer than min_rounds rounds without a word."""
    from synthetic import make_run

    report = analyze(open_run(make_run(tmp_path / "sparse.h5", clients=16, rounds=6, participation=0.4, seed=3)))
    result = report.detector("cosine-hdbscan")
    extras, rare = result.extras, result.extras["too_few_rounds"]
    clustered = {v.client: sum(v.client in scores for scores in result.round_scores.values()) for v in report.verdicts}
    assert sorted(rare) == sorted(c for c in clustered if clustered[c] < 3) and rare, clustered  # a small round is unclustered
    assert set(rare) | set(extras["distance_clients"]) == set(clustered) and not set(rare) & set(extras["distance_clients"])
    assert extras["distance_matrix"], "no view drawn"
    page = render_html(report)
    assert "Not shown, clustered in fewer than 3 rounds: " + ", ".join(f'<span class="id">{c}</span>' for c in rare[:20]) in page


def test_the_terminal_names_a_benign_clients_nearest_detector_and_both_reports_say_what_a_score_sums(hostile):
    """A fresh-eyes auditor saw a benign client score 1.49 in the terminal beside the README's "1.0: one detector at
    its threshold", with nothing to explain it: the evidence column names the detector nearest its threshold (the
    HTML's words) and a caption says what a score sums, where a benign client's passes 1."""
    from rich.console import Console

    from fedforensics.report.terminal import verdict_table
    from fedforensics.verdict import SCORE_MEANING

    report, _ = hostile
    benign = next(v for v in report.verdicts if v.verdict == "benign")
    name, value = benign.nearest
    assert value == max(s for s in benign.strengths.values() if s == s)
    console = Console(record=True, width=200)
    lifted = dataclasses.replace(report, verdicts=[dataclasses.replace(benign, score=1.49)])
    console.print(verdict_table(lifted))
    text = " ".join(console.export_text().split())
    assert f"below every threshold; nearest: {name} at " in text
    assert f"score: {SCORE_MEANING}" in text
    console = Console(record=True, width=200)
    console.print(verdict_table(dataclasses.replace(report, verdicts=[dataclasses.replace(benign, score=0.5)])))
    assert "score: " not in console.export_text()  # said where a benign score passes 1, not on every table
    assert f"Score: {SCORE_MEANING}" in render_html(report).replace("&#x27;", "'")


def test_a_printed_report_starts_on_its_first_page_and_keeps_its_verdict_colours(hostile):
    """A fresh-eyes auditor printed the demo's report: page 1 held the title alone (no section would break across
    pages, and the summary is taller than what was left), its subtitle light grey on white, and with a browser's
    default of no background graphics every verdict badge faded to grey text. Now figures and table rows keep whole,
    the header reads dark on white and the badges keep their colours."""
    _, page = hostile
    printed = page.split("@media print", 1)[1].split("</style>", 1)[0]
    assert "avoid-page" not in printed and "section {" not in printed
    assert re.search(r"figure, tr[^{]*\{ break-inside:avoid; \}", printed)
    assert re.search(r"\.badge[^{]*\{[^}]*[^-]print-color-adjust:exact", printed)
    assert re.search(r"header\.top \.sub \{ color:var\(--muted\); \}", printed)


def test_a_phone_lays_the_page_out_at_its_own_width(hostile):
    """A fresh-eyes auditor's 390-px phone window laid the demo's report out 763 px wide, every paragraph zoomed out
    with it: the contents' links had no space between them to wrap at, and the verdict and detector tables widened the
    page. Now the links wrap and each table scrolls in its own box."""
    _, page = hostile
    toc = re.search(r'<nav class="toc"><div class="wrap">(.*?)</div></nav>', page).group(1)
    assert "</a><a" not in toc and toc.count("</a> <a ") == toc.count("<a ") - 1 > 0
    assert page.count("<table>") == page.count('<div class="scroll"><table>') > 0
    assert ".scroll { overflow-x:auto; }" in page


def test_two_suspects_of_one_verdict_are_told_apart_on_the_per_client_lines():
    """A fresh-eyes auditor could not tell the label-flip run's two malicious clients apart on its timelines: both red
    and dashed with the same dots, their legend entries alike, and as both norms ended near 4.6 their ids were drawn
    on top of each other. Now each highlighted client has its own marker, the same in the legend, and the ids at the
    lines' ends keep apart."""
    from matplotlib.figure import Figure

    from fedforensics.report.figures import ClientStyles, _client_lines, spread

    ids = ["c1", "c9", "c2", "c3", "c4"]
    styles = ClientStyles({c: "malicious" if c in ("c1", "c9") else "benign" for c in ids}, frozenset({"c1", "c9"}))
    fig = Figure(figsize=(10, 3.8), layout="constrained")
    ax = fig.add_subplot()
    ends = {"c1": 4.6, "c9": 4.58, "c2": 1.0, "c3": 1.2, "c4": 0.9}
    _client_lines(ax, {str(r): {c: end + 0.1 * (2 - r) for c, end in ends.items()} for r in range(3)}, styles)
    fig.draw_without_rendering()
    first, second = (text.get_window_extent() for text in ax.texts)
    assert not first.overlaps(second), (first, second)
    suspects = [line for line in ax.lines if line.get_color() == styles.colour("c1")]
    assert len({line.get_marker() for line in suspects}) == 2
    legend = {handle.get_label(): handle.get_marker() for handle in ax.get_legend().legend_handles}
    assert legend["c1 (malicious, known attacker)"] == styles.marker("c1") != legend["c9 (malicious, known attacker)"]
    assert spread([0.5, 0.1, 0.5], 0.1) == pytest.approx([0.45, 0.1, 0.55])


def test_the_anomaly_index_chart_draws_the_threshold_it_is_flagged_above(hostile):
    """A fresh-eyes auditor read the demo's anomaly indices (label 6 at 7.58, label 1 at 1.74) with no mark of where
    flagging starts: the bars now have the threshold as a dashed line, and the caption points to it."""
    from fedforensics.report.figures import inversion_scores

    def svg(threshold: float) -> str:
        uri = inversion_scores([0, 1, 2], [9.0, 8.0, 2.0], [0.1, 0.6, 3.0], [False, False, True], threshold)
        return base64.b64decode(uri.split(",", 1)[1]).decode()

    assert "stroke-dasharray" in svg(2.0) and "stroke-dasharray" not in svg(float("inf"))
    report, _ = hostile
    page = render_html(dataclasses.replace(report, trigger_inversion=fake_inversion()))
    assert "an anomaly index above 2 on the small side (dashed line). Red: flagged." in page


def test_the_trigger_table_says_what_its_attack_success_counts(hostile):
    """Every label's recovered trigger had 96-99% attack success in the demo's table, which a fresh-eyes auditor read as
    the attack succeeding on every label; the terminal's caption said what the share counts, the HTML did not."""
    report, _ = hostile
    page = render_html(dataclasses.replace(report, trigger_inversion=fake_inversion()))
    table_end = page.index("</table>", page.index("attack success (held out)"))
    assert page[table_end:].startswith(
        '</table></div><p class="muted">Attack success: the share of the held-out half of the clean samples, those of '
        "the other labels, that the label&#x27;s trigger sends to it. A trigger is recovered for every label"
    )
    assert "a backdoor's stands out by its small mask (its anomaly index), not by this share." in page


def test_the_timeline_caption_says_where_this_runs_anomaly_peaks_beside_bilgins_finding(hostile):
    """A review: the caption always said Bilgin (2021) finds the anomaly strongest in the first rounds, beside a label
    flipper's anomaly that grew over the run, as if the figure showed it; it now says where this run's peaks."""
    report, page = hostile
    best = report.detector("layer-deviation").extras["most_separating"]
    row = next(row for row in report.localization if row["slice"] == best)
    said = " ".join(page.split())
    assert "Bilgin (2021) finds the anomaly strongest in an attack's first rounds, fading once the backdoor is in; " \
        f"in this run the slice's largest |robust z| peaks in round {row['peak_round']} (rounds 0–5)." in said


def test_a_clients_line_breaks_at_the_rounds_it_missed():
    """A visual review: with 10 of 40 clients a round, a client's line ran straight from round 1 to round 8, as if it
    had values in between; the line now breaks there (a benign line's points get dots, so that a round between two
    missed ones still shows), and a client of every round is drawn as before."""
    from matplotlib.figure import Figure

    from fedforensics.report.figures import ClientStyles, _client_lines

    by_round = {"0": {"a": 1.0, "b": 1.0, "c": 2.0}, "1": {"a": 1.5, "b": 1.2}, "2": {"b": 1.3}, "3": {"a": 2.0, "b": 1.1, "c": 2.5}}
    styles = ClientStyles({"a": "malicious", "b": "benign", "c": "benign"}, frozenset())
    ax = Figure().add_subplot()
    _client_lines(ax, by_round, styles)
    drawn = {tuple("gap" if x != x else int(x) for x in line.get_xdata()): line for line in ax.lines}
    assert set(drawn) == {(0, 1, "gap", 3), (0, 1, 2, 3), (0, "gap", 3)}
    assert drawn[0, 1, 2, 3].get_marker() in ("None", None, "")  # b took part in every round: no break, no dots
    assert drawn[0, "gap", 3].get_marker() == "."  # a benign client's points, where its line breaks
    assert drawn[0, 1, "gap", 3].get_marker() == styles.marker("a")
