"""run_audit without --model: the run's named model is suggested, never imported."""

from __future__ import annotations

import sys

import h5py
import numpy as np
import pytest

from fedforensics import open_run
from fedforensics.analysis import analyze
from fedforensics.audit import AuditOptions, run_audit
from recorder import Recorder


def test_a_model_named_in_the_run_is_suggested_not_imported(tmp_path):
    path = tmp_path / "named.h5"
    module = "module_named_by_an_untrusted_run_xyz"
    with Recorder(path, meta={"model_factory": f"{module}:build"}) as rec:
        with rec.round(0, {"w": np.zeros(4)}) as rnd:
            for i in range(5):
                rnd.client(f"c{i}", {"w": np.full(4, float(i))}, num_samples=10)
    report = run_audit(path, AuditOptions())
    assert module not in sys.modules
    (hint,) = [n for n in report.notes if "trigger inversion was not run" in n]
    assert f"--model {module}:build --data CLEAN.npz" in hint


def test_the_hint_is_safe_to_paste_into_a_shell(tmp_path):
    """A QA check recorded meta model_factory="$(touch PWNED):x": the note printed it in a ready-to-paste command,
    and pasting it ran the command; a path with a space broke the line. A factory that is not MODULE:CALLABLE is
    not suggested, and the run's path is quoted."""
    folder = tmp_path / "with space"
    folder.mkdir()
    for factory, hinted in [("$(touch PWNED):x", False), ("os:system; rm -rf ~", False), ("pkg.models:Net.build", True)]:
        path = folder / "named.h5"
        with Recorder(path, meta={"model_factory": factory}, overwrite=True) as rec:
            with rec.round(0, {"w": np.zeros(4)}) as rnd:
                for i in range(5):
                    rnd.client(f"c{i}", {"w": np.full(4, float(i))}, num_samples=10)
        hints = [n for n in run_audit(path, AuditOptions()).notes if "trigger inversion was not run" in n]
        assert bool(hints) == hinted
    assert f"fedforensics analyze '{path}' --model pkg.models:Net.build --data CLEAN.npz" in hints[0]


def test_no_hint_without_a_named_model_or_a_classifier(tmp_path):
    path = tmp_path / "plain.h5"
    with Recorder(path) as rec:
        with rec.round(0, {"w": np.zeros(4)}) as rnd:
            rnd.client("a", {"w": np.ones(4)}, num_samples=1)
    assert not any("trigger inversion" in n for n in run_audit(path, AuditOptions()).notes)


def test_a_classifier_not_named_gets_the_hint_s_form(tmp_path):
    """A fresh-eyes user's two backdoor attackers among label-skewed clients were all benign, and nothing in the
    report pointed at the model, where trigger inversion named the target."""
    path = tmp_path / "plain classifier.h5"
    state = {"fc.weight": np.zeros((10, 12), np.float32), "fc.bias": np.zeros(10, np.float32)}
    with Recorder(path) as rec:
        with rec.round(0, state) as rnd:
            for i in range(5):
                rnd.client(f"c{i}", {k: np.full(v.shape, float(i)) for k, v in state.items()}, num_samples=10, delta=True)
    (hint,) = [n for n in run_audit(path, AuditOptions()).notes if "trigger inversion was not run" in n]
    assert "the update statistics can miss a backdoor planted by several attackers together" in hint
    assert hint.endswith(f"fedforensics analyze '{path}' --model MODULE:FACTORY --data CLEAN.npz"), hint


def test_direction_memory_bounds_the_accumulated_directions(tmp_path):
    """``--direction-memory`` reaches the scan: below what clients × parameters take, the report says
    the directions went through a sketch; with room to spare it says nothing."""
    from typer.testing import CliRunner

    from fedforensics.cli import app

    path = tmp_path / "wide.h5"
    rng = np.random.default_rng(0)
    with Recorder(path) as rec:
        for r in range(3):
            with rec.round(r, {"w": np.zeros(400_000, np.float32)}) as rnd:
                for i in range(5):
                    rnd.client(f"c{i}", {"w": rng.normal(size=400_000).astype(np.float32)}, num_samples=10, delta=True)
    tight = run_audit(path, AuditOptions(direction_memory=5 * 4 * 4096))
    assert any("4,096-wide count sketch" in n and n.endswith("(cosine-hdbscan compares them)") for n in tight.notes)
    assert not any("count sketch" in n for n in run_audit(path, AuditOptions()).notes)
    out = tmp_path / "report.json"
    result = CliRunner().invoke(app, ["analyze", str(path), "--direction-memory", "1", "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "count sketch" in out.read_text()
    assert CliRunner().invoke(app, ["analyze", str(path), "--direction-memory", "0"]).exit_code == 2


def test_a_sketch_is_used_only_where_it_saves_memory():
    """The sketch's hash and work arrays take 16 bytes per parameter: for a few clients of a large model a
    sketch under a small budget took more memory than the whole directions (759 MB against 740)."""
    from fedforensics.detectors.history import DirectionHistory

    few = DirectionHistory(capacity=10, memory=64 * 2**20)
    few.add([f"c{i}" for i in range(10)], [np.ones((10, 2_000_000), np.float32)], np.full(10, 1414.2))
    assert few.sketch_width is None  # 80 MB whole against 64 MB of rows + 32 MB of hash
    fleet = DirectionHistory(capacity=1000, memory=64 * 2**20)
    fleet.add(["c0"], [np.ones((1, 200_000), np.float32)], np.array([447.2]))
    assert fleet.sketch_width == 16_777  # 800 MB whole against 64 MB + 3 MB


def test_control_characters_in_ids_cannot_forge_report_lines(tmp_path, monkeypatch):
    """An id 'a\\nb' drew two rows (a client 'b' that does not exist); an ANSI escape reached the terminal raw."""
    from typer.testing import CliRunner

    from fedforensics.cli import app
    from fedforensics.cli.app import console
    from synthetic import make_run

    path = make_run(tmp_path / "ctl.h5", ids=["a\nb", "\x1b[31mred\x1b[0m", "c2", "c3", "c4"], rounds=4)
    # wide enough for the escaped ids: COLUMNS is read once, when the console is made (a worker of
    # pytest -n 2 made it at 80 columns, and the table cut the ids short)
    monkeypatch.setattr(console, "_width", 200)  # restored as it was (the width setter would pin it)
    result = CliRunner().invoke(app, ["analyze", str(path)])
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output
    assert "a\\nb" in result.output and "\\x1b[31mred\\x1b[0m" in result.output


#: Ids rich markup mangles: rich's escape guards only tag-like brackets, so '\\[z' was shown as '[z';
#: a trailing backslash was doubled; ':cat:' could become an emoji; '[b]x' styles if unescaped.
_MARKUP_IDS = ["\\[z", "a\\", ":cat:", "[b]x", "q]", "x[y", "\\\\[b]", "[/]"]


def test_ids_are_shown_as_they_are_in_every_terminal_table(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from fedforensics.cli import app
    from fedforensics.cli.app import console
    from synthetic import make_run

    path = make_run(tmp_path / "ids.h5", ids=[*_MARKUP_IDS, "c8", "c9"], rounds=4, attackers=("\\[z", "a\\"), attack="boost")
    with h5py.File(path, "r+") as f:  # the summary panel's ground-truth row and the detectors' flagged lists
        assert list(f["ground_truth/malicious"].asstr()[()]) == ["\\[z", "a\\"]
    monkeypatch.setattr(console, "_width", 250)
    result = CliRunner().invoke(app, ["analyze", str(path)])
    assert result.exit_code == 0, result.output
    rows = {line.split("│")[1].strip() for line in result.output.splitlines() if line.count("│") > 4}
    from fedforensics.report.escapes import shown

    # the verdict table's client column, each id exactly (two backslashes read as an escape: shown doubled)
    assert {shown(cid) for cid in _MARKUP_IDS} <= rows and shown("\\\\[b]") == "\\\\\\\\[b]", rows
    assert "ground truth       \\[z, a\\" in result.output
    evaluation = CliRunner().invoke(app, ["evaluate", str(path)])
    assert evaluation.exit_code == 0 and "in the order '\\[z', 'a\\'" in evaluation.output


def test_bidirectional_controls_in_an_id_are_shown_not_obeyed(tmp_path, monkeypatch):
    """An id ending in U+202E (right-to-left override) reversed the text after it: in the HTML a score of
    5.52 read 25.5 and other ids came out backwards; the terminal printed the character raw. QA: an id ending in a
    zero-width space (or another invisible character) read exactly as the honest id in the row beside it."""
    from typer.testing import CliRunner

    from fedforensics.cli import app
    from fedforensics.cli.app import console
    from synthetic import make_run

    # each read as its honest twin; "cafe" and a combining accent as the precomposed "café" (QA), the Kelvin sign
    # as a K (review)
    hidden = ["c1\u200b", "c2\ufeff", "c3\u00ad", "c4\u2028", "c5\x07", "c6\u200e", "cafe\u0301", "\u212a1"]
    ids = ["mallory\u202e", "c1", "c2", "c3", "c4\u2066", "c5", "c6", "caf\u00e9", "K1", *hidden]
    path = make_run(tmp_path / "bidi.h5", ids=ids, rounds=4, attackers=("mallory\u202e", "c1\u200b"), attack="boost")
    monkeypatch.setattr(console, "_width", 200)
    result = CliRunner().invoke(app, ["analyze", str(path), "--html", str(tmp_path / "r.html")])
    assert result.exit_code == 0, result.output
    page = (tmp_path / "r.html").read_text()
    for text in (result.output, page):
        assert not any(c in text for c in "\u202e\u2066\u200b\ufeff\u00ad\u2028\x07\u200e")
        assert "mallory\\u202e" in text and "c4\\u2066" in text
        assert all(c.encode("unicode_escape").decode() in text for c in hidden)
        assert "caf\u00e9" in text  # the precomposed id, as typed, keeps its accent
    from fedforensics.report.figures import short

    assert short("c1\u200b") == "c1\\u200b"  # the figures' labels likewise


def test_the_verdict_table_lists_every_client_not_judged_benign(tmp_path):
    """With 35 of 100 clients malicious the table showed 30 and said the other 70 were 'all benign'."""
    from rich.console import Console

    from fedforensics.report.terminal import verdict_table
    from synthetic import make_run

    attackers = tuple(f"c{i}" for i in range(35))
    path = make_run(tmp_path / "many.h5", clients=100, rounds=4, attackers=attackers, attack="boost")
    report = analyze(open_run(path))
    flagged = [v.client for v in report.verdicts if v.verdict != "benign"]
    assert len(flagged) > 30
    console = Console(record=True, width=250)
    console.print(verdict_table(report))
    shown = console.export_text()
    assert all(f"│ {cid} " in shown for cid in flagged)
    assert f"{100 - len(flagged)} more clients ({100 - len(flagged)} benign) in the JSON/HTML report" in shown


@pytest.mark.parametrize("width", [40, 50, 60, 80, 140])
def test_a_narrow_terminal_keeps_the_verdicts_whole_and_moves_the_evidence_under_the_table(tmp_path, width):
    """QA: at 40-60 columns the table cut the verdict and score ("mali…", "6.…") and wrapped detector names
    mid-word, while the evidence column kept its share; then (review) fixed widths left the id no room at all."""
    from rich.console import Console

    from fedforensics.report.terminal import COMPACT_WIDTH, EVIDENCE_WIDTH, render_audit
    from synthetic import make_run

    path = make_run(tmp_path / "boost.h5", clients=8, rounds=4, attackers=("c1",), attack="boost")
    report = analyze(open_run(path))
    (attacker,) = [v for v in report.verdicts if v.client == "c1"]
    assert attacker.verdict == "malicious" and attacker.evidence
    console = Console(record=True, width=width)
    render_audit(console, report)
    shown = console.export_text()
    detector, first_word = attacker.evidence[0].detector, attacker.evidence[0].detail.split()[0]
    if width < COMPACT_WIDTH:  # borderless: id, verdict, score, rounds; the rest in a line under the table
        row = next(line for line in shown.splitlines() if line.startswith("c1 "))
        assert row.split() == ["c1", "malicious", f"{attacker.score:.2f}", "4"], row
        assert "c1 (attacker): flagged by " in shown and f"— {detector}: {first_word}" in " ".join(shown.split()), shown
    else:
        row = next(line for line in shown.splitlines() if line.startswith("│ c1 "))
        assert f"│ malicious  │ {attacker.score:5.2f} │      4 │" in row, row
        text = " ".join(shown.split())
        # detector names whole: at 80 columns "flagged by" was too narrow for them ("client-metri / cs", a fresh-eyes
        # auditor), and they go under the table with the evidence
        by = ", ".join(attacker.flagged_by)
        if width < EVIDENCE_WIDTH:
            assert "┃ flagged by" not in shown and f"c1: flagged by {by} — {detector}: {first_word}" in text, shown
        else:
            assert "┃ flagged by" in shown and f"c1: {detector}" not in shown, shown


@pytest.mark.parametrize("width", [70, 75, 80, 90])
def test_long_ids_and_ground_truth_keep_the_verdict_table_within_the_console(tmp_path, width):
    """A fresh-eyes auditor: at 80 columns a run of UUID ids with ground truth printed a verdict table wider than the
    console, which cropped its right edge: the truth column read 'attack' and 'hones'."""
    from rich.console import Console

    from fedforensics.report.terminal import verdict_table
    from synthetic import make_run

    ids = [f"27621255-0000-0000-0000-0000000000{i:02d}" for i in range(8)]
    path = make_run(tmp_path / "uuid.h5", clients=8, rounds=4, ids=ids, attackers=(ids[1],), attack="boost")
    report = analyze(open_run(path))
    console = Console(record=True, width=width, color_system=None)
    console.print(verdict_table(report, width=width))
    lines = console.export_text().splitlines()
    assert all(len(line) <= width for line in lines)
    table = [line for line in lines if line[:1] in "┏┃┡│└"]
    assert table and all(line[-1] in "┓┃┩│┘" for line in table), "\n".join(table)
    assert sum("│ attacker │" in line for line in table) == 1 and sum("│ honest   │" in line for line in table) == 7


def test_a_narrow_terminal_wraps_long_ids_in_the_run_panel_rather_than_cutting_them(tmp_path):
    """A fresh-eyes user at 60 columns: the run panel cut both attackers' ids to one and the same
    "hospital-north-east-region-client-00…"; the localization table's header to "separati…"."""
    from rich.console import Console

    from fedforensics.report.terminal import render_audit
    from synthetic import make_run

    ids = [f"hospital-north-east-region-client-{i:04d}" for i in range(8)]
    path = make_run(tmp_path / "long.h5", clients=8, rounds=4, ids=ids, attackers=(ids[2], ids[5]), attack="boost")
    console = Console(record=True, width=60)
    render_audit(console, analyze(open_run(path)))
    shown = console.export_text()
    panel = shown.split("final state")[0].split("ground truth")[1]
    assert "…" not in panel
    assert "".join(line.strip(" │") for line in panel.splitlines()) == f"{ids[2]},{ids[5]}"  # the wrap eats the space
    assert "separation" in shown


def test_a_narrow_terminal_says_an_unflagged_attacker_was_not_flagged(tmp_path):
    """Review: under 70 columns an attacker with no flag and no evidence got a line ending in ': '."""
    from rich.console import Console

    from fedforensics.report.terminal import render_audit
    from synthetic import make_run

    path = make_run(tmp_path / "quiet.h5", clients=8, rounds=4, attackers=("c5",), attack="none")
    report = analyze(open_run(path))
    (attacker,) = [v for v in report.verdicts if v.client == "c5"]
    assert attacker.verdict == "benign" and not attacker.evidence and not attacker.flagged_by
    console = Console(record=True, width=50)
    render_audit(console, report)
    lines = [line.rstrip() for line in console.export_text().splitlines()]
    assert "c5 (attacker): not flagged" in lines, lines
    assert not any(line.endswith(":") for line in lines if line.startswith("c5")), lines


def test_terminal_lists_of_clients_are_cut_with_a_count(tmp_path, monkeypatch):
    """With 100 flagged attackers analyze printed 789 lines and evaluate 2,409 (every attacker on every row)."""
    from typer.testing import CliRunner

    from fedforensics.cli import app
    from fedforensics.cli.app import console
    from synthetic import make_run

    attackers = tuple(f"c{i}" for i in range(40))
    path = make_run(tmp_path / "many.h5", clients=120, rounds=4, attackers=attackers, attack="boost")
    monkeypatch.setattr(console, "_width", 200)
    analyzed = CliRunner().invoke(app, ["analyze", str(path)])
    assert analyzed.exit_code == 0 and "and 28 more clients" in analyzed.output  # ground truth, flagged lists
    evaluated = CliRunner().invoke(app, ["evaluate", str(path)])
    assert evaluated.exit_code == 0 and "and 28 more attackers" in evaluated.output
    assert len(evaluated.output.splitlines()) < 60, len(evaluated.output.splitlines())


def test_a_flag_of_the_whole_run_is_first_flagged_run_level_as_evaluate_says(tmp_path):
    """QA: accumulated-sybil's flags (a statistic of the whole run) showed '–' under "first flagged" in the terminal
    and the HTML, next to the clients it flagged, where evaluate says 'run-level'."""
    from rich.console import Console

    from fedforensics.report.html import render_html
    from fedforensics.report.terminal import detector_table
    from synthetic import make_run

    report = analyze(open_run(make_run(tmp_path / "s.h5", attackers=("c1", "c4"), attack="sybil", seed=2)))
    result = report.detector("accumulated-sybil")
    assert result.flagged == ["c1", "c4"] and result.first_flagged == {}
    console = Console(record=True, width=200)
    console.print(detector_table(report))
    text = console.export_text()
    row = next(line for line in text.splitlines() if "accumulated-sybil" in line)
    assert "c1: run-level, c4: run-level" in row, row
    assert '<span class="id">c1</span>: run-level, <span class="id">c4</span>: run-level' in render_html(report)
    # a newcomer read "first in round 0" of an evidence line against "first flagged in round 5": the table says what it means
    assert "first flagged: the first round by which the client's evidence, accumulated" in " ".join(text.split())


def test_characters_that_compose_with_a_neighbour_are_escaped():
    """A review: Hangul's conjoining jamo U+1100 U+1161 passed through (each is unchanged by composition alone) and
    read as the precomposed syllable U+AC00 another client may hold."""
    from fedforensics.report.escapes import shown

    assert shown("\u1100\u1161") == "\\u1100\\u1161"  # reads as 가
    assert shown("\uac00\u11a8") == "\\uac00\\u11a8"  # 가 + a final consonant: reads as 각
    assert shown("\uac00") == "\uac00" and shown("x\u1100\u1161") == "x\\u1100\\u1161"
    assert shown("cafe\u0301") == "cafe\\u0301"  # an ASCII letter stays itself even where it composes


def test_the_reports_own_spaces_are_not_escaped(tmp_path, monkeypatch):
    """Review: an evidence line's "(round N)" was built with a leading space inside the id-escaping text, so every
    terminal evidence line with a round read "...\\x20(round 4)"."""
    from typer.testing import CliRunner

    from fedforensics.cli import app
    from fedforensics.cli.app import console
    from fedforensics.report.html import render_html
    from synthetic import make_run

    path = make_run(tmp_path / "boost.h5", rounds=6, attackers=("c0",), attack="boost")
    monkeypatch.setattr(console, "_width", 250)
    result = CliRunner().invoke(app, ["analyze", str(path)])
    assert result.exit_code == 0 and "(round " in result.output and "\\x20" not in result.output, result.output
    with open_run(path) as run:
        assert "\\x20" not in render_html(analyze(run))


@pytest.mark.parametrize(
    ("hidden", "seen"),
    [("c3\u034f", "c3"), ("c2\ufe0f", "c2"), ("\u3164", ""), ("c\u2800", "c"), ("c4 ", "c4"), (" ", ""), ("a  b", "a b")],
)
def test_characters_and_spaces_that_show_as_nothing_are_escaped(hidden, seen):
    """QA (HTML report): the combining grapheme joiner, a variation selector, the Hangul filler, the Braille blank
    and a trailing space are printable, so ``c3`` + U+034F was shown exactly as the honest ``c3``, and an id of one
    space was an empty cell; two spaces in a row cannot be counted."""
    from fedforensics.report.escapes import shown

    assert shown(hidden) != shown(seen) and shown(hidden).isascii() and shown(hidden).strip() == shown(hidden)
    assert shown("c\u00e9 a b") == "c\u00e9 a b"  # an inner single space and an accent stay as they are


@pytest.mark.parametrize(
    ("one", "other"),
    [("c\u200b1", "c\\u200b1"), ("\\\u200b", "\\u200b"), ("a\nb", "a\\nb"), ("\\\\", "\\\\\\")],
)
def test_an_id_holding_a_backslash_escape_is_not_shown_as_the_id_it_spells(one, other):
    """QA: the eight characters c\\u200b1 were shown exactly as the id c + U+200B + 1 beside it, one malicious and
    one benign, in the terminal and the HTML."""
    from fedforensics.report.escapes import shown

    assert shown(one) != shown(other)
    assert shown("c\\u200b1") == "c\\\\u200b1" and shown("DOMAIN\\user") == "DOMAIN\\user"


def test_a_fleet_of_flagged_clients_is_listed_up_to_a_hundred_and_the_rest_counted_by_verdict(tmp_path):
    """QA: with 450 of 1,000 clients malicious the terminal printed 2,352 lines: every client not judged benign was
    listed (the caption had once lied that the rest were benign; now it counts them by verdict)."""
    from rich.console import Console

    from fedforensics.report.terminal import MOST_FLAGGED_ROWS, verdict_table
    from synthetic import make_run

    attackers = tuple(f"c{i}" for i in range(120))
    path = make_run(tmp_path / "fleet.h5", clients=300, rounds=4, attackers=attackers, attack="boost")
    report = analyze(open_run(path))
    flagged = [v for v in report.verdicts if v.verdict != "benign"]
    assert len(flagged) > MOST_FLAGGED_ROWS
    console = Console(record=True, width=140)
    console.print(verdict_table(report, width=140))
    shown = console.export_text()
    assert sum(line.startswith("│ c") for line in shown.splitlines()) == MOST_FLAGGED_ROWS
    left = report.verdicts[MOST_FLAGGED_ROWS:]
    malicious = sum(v.verdict == "malicious" for v in left)
    assert f"{len(left)} more clients ({malicious} malicious" in " ".join(shown.split())


def test_ground_truth_naming_clients_that_never_took_part_is_noted(tmp_path):
    """A fresh-eyes user's ground_truth(["c1", "C2", "ghost"]) showed in the run box with no word that two of
    them never took part: only `fedforensics evaluate` said so."""
    path = tmp_path / "truth.h5"
    with Recorder(path) as rec:
        for r in range(3):
            with rec.round(r, {"w": np.zeros(4)}) as rnd:
                for i in range(5):
                    rnd.client(f"c{i}", {"w": np.full(4, float(i + r))}, num_samples=10, delta=True)
        rec.ground_truth(["c1", "C1", "C2", "ghost"])
    with open_run(path) as run:
        notes = analyze(run).notes
    (note,) = [n for n in notes if "ground truth" in n]
    assert note == (  # 'C1' is spelled as 'c1', which the truth names already: no hint (a review's mutant)
        "the run's ground truth names 3 clients of which the run holds no update: 'C1', 'C2' ('c2' is spelled "
        "alike), 'ghost'; the comparisons with the ground truth leave them out"
    )
    clean = tmp_path / "clean.h5"
    with Recorder(clean) as rec:
        with rec.round(0, {"w": np.zeros(4)}) as rnd:
            for i in range(5):
                rnd.client(f"c{i}", {"w": np.full(4, float(i))}, num_samples=10, delta=True)
        rec.ground_truth(["c1"])
    with open_run(clean) as run:
        assert not [n for n in analyze(run).notes if "ground truth" in n]


def test_the_summary_panel_tells_a_run_without_ground_truth_from_one_without_attackers(tmp_path):
    """A fresh-eyes auditor read "ground truth  none" (a killed writer's run, which never recorded it) as "no
    malicious client", which is what a recorded empty list says; the HTML said "not recorded"."""
    from rich.console import Console

    from fedforensics.report.terminal import summary_panel
    from fedforensics.summary import summarize
    from synthetic import make_run

    said = {}
    for name, recorded in (("empty", True), ("unknown", False)):
        path = make_run(tmp_path / f"{name}.h5", rounds=3)
        if not recorded:
            with h5py.File(path, "r+") as f:
                del f["ground_truth"]
        console = Console(record=True, width=100)
        with open_run(path) as run:
            console.print(summary_panel(summarize(run)))
        said[name] = next(line for line in console.export_text().splitlines() if "ground truth" in line)
    assert "(no malicious client)" in said["empty"] and "not recorded" in said["unknown"], said
