"""The evaluation (detectors judged against ground truth) as rich tables and as an HTML page."""

from __future__ import annotations

import os

from rich import box
from rich.table import Table
from rich.text import Text

from ..evaluate import CONSENSUS, Detection, Evaluation, Judgement, RunEvaluation
from .escapes import long_names
from .files import write_atomic
from .page import card, esc, page, section, table
from .wording import count, median_round, plural, rate
from ..notes import listed
from .terminal import LISTED, plain

HEADERS = ["detector", "TP", "FP", "FN", "TN", "precision", "recall", "F1", "FPR", "AUROC"]


def _rates(j: Judgement) -> list[str]:
    """Precision, recall, F1, false-positive rate and AUROC as text (a dash where undefined)."""
    if not j.applicable:
        return ["–"] * 5
    return [rate(j.precision), rate(j.recall), rate(j.f1), rate(j.fpr), rate(j.auroc)]


def _counts(j: Judgement) -> list[str]:
    return [str(n) for n in (j.tp, j.fp, j.fn, j.tn)] if j.applicable else ["–"] * 4


def _first_headers(pooled: bool) -> list[str]:
    return ["found", "median round"] if pooled else ["first flagged (round)"]


def _first_flagged(j: Judgement, pooled: bool, most: int | None = None, named: bool = True) -> list[str]:
    """When the attackers were first flagged: per attacker for a run (the first ``most`` of them, then how many
    more), each named or, with ``named`` false, in the order :func:`attacker_order` gives; how many and the median
    round pooled."""
    if not j.applicable:
        return ["n/a", "–"] if pooled else ["not applicable"]
    if pooled:  # found only on statistics of whole runs: "run-level", as a run's cell says ("–" read as none found)
        when = "run-level" if j.detected and j.median_first_round is None else median_round(j.median_first_round)
        return [f"{j.detected}/{len(j.detections)}", when]
    if not j.detections:
        return ["no attacker"]
    when = [f"{d.client}: {_when(d)}" if named else _when(d) for d in j.detections]
    return [listed(when, most, "attackers") if most is not None else ", ".join(when)]


def attacker_order(run: RunEvaluation) -> str:
    """The attackers in the order the terminal's "first flagged" cells give their rounds: named once, under the
    table, not in every row (QA: at 80 columns each detector's cell broke ``hospital-A/site 3`` mid-id)."""
    detections = next((j.detections for j in run.judgements if j.detections), [])
    if not detections:
        return ""
    names = listed((_quoted(d.client) for d in detections), LISTED, "attackers")
    return f"first flagged (round): {'the attacker' if len(detections) == 1 else 'per attacker, in the order'} {names}"


def _when(d: Detection) -> str:
    if not d.flagged:
        return "never"
    return "run-level" if d.round is None else str(d.round)


def fewer_runs(judgements: list[Judgement], runs: int) -> str:
    """The pooled detectors that applied to fewer than all ``runs`` (their counts cover only those), in words;
    "" when every applicable one pooled every run (review: '0/6' read as 0 of the title's 8 attackers)."""
    fewer = [f"{j.name} {j.runs} of {runs}" for j in judgements if j.applicable and j.runs < runs]
    return f"pooled over fewer runs (not applicable to the others): {', '.join(fewer)}" if fewer else ""


def unscored(judgements: list[Judgement]) -> str:
    """The applicable detectors that left clients without a score (each ranks them lowest in its AUROC), grouped by
    how many clients and attackers, in words; "" when each scored every client. A red-team review: a 4-round run of
    8 clients, 5 a round, had norm score 3 of them (min_rounds), and its recall 0.50 and AUROC 0.67 read as a
    detector that scored the other attacker low, where it never scored it; only the JSON's ``scored`` said so."""
    groups: dict[tuple[int, int, int], list[str]] = {}
    for j in judgements:
        missing = len(j.samples) - j.scored
        if j.applicable and missing:
            groups.setdefault((missing, j.unscored_attackers, len(j.samples)), []).append(j.name)
    said = [f"{n} of {count(total, 'client')} ({count(attackers, 'attacker')}) by {listed(names, LISTED, 'detectors')}"
            for (n, attackers, total), names in groups.items()]
    return f"unscored, so ranked lowest by the AUROC: {'; '.join(said)}" if said else ""


def judgement_table(title: str, judgements: list[Judgement], pooled: bool, *captions: str) -> Table:
    """One row per detector and one for the consensus (which comes last); the non-empty ``captions`` under it, a line each."""
    table_ = Table(
        title=plain(title), title_justify="left", caption=Text("\n").join(plain(c) for c in captions if c) or None, caption_justify="left",
        box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True,
    )
    table_.add_column("detector", no_wrap=True)
    table_.add_column("TP/FP/FN/TN", justify="right", no_wrap=True)
    for header in ("prec", "recall", "F1", "FPR", "AUROC"):
        table_.add_column(header, justify="right", no_wrap=True)
    # pooled: "found" and "median round", numbers kept whole (QA: '539/' '85'), the header on two lines (review: on
    # one it squeezed the rates to '1.…' at 80 columns, a pipe's width)
    for header in _first_headers(pooled):
        table_.add_column(header.replace(" ", "\n") if pooled else header, justify="right" if pooled else "left", overflow="fold", no_wrap=pooled)
    for i, j in enumerate(judgements):
        first = _first_flagged(j, pooled, LISTED, named=False)
        # pooled, "run-level" on two lines as its header is: on one, at 80 columns, the 9-wide cell of a detector that
        # found attackers only on statistics of whole runs squeezed 'F1' to '0.…' and itself to 'run-leve' (review)
        shown = [Text("run-\nlevel") if pooled and cell == "run-level" else plain(cell) for cell in first]
        cells = [plain(j.name), "/".join(_counts(j)), *_rates(j), *shown]
        style = "bold" if j.name == CONSENSUS else ("dim" if not j.applicable else None)
        table_.add_row(*cells, style=style, end_section=i == len(judgements) - 2)
    return table_


def _quoted(cid: str) -> str:
    """An id between quotes, so that 'c1 ' is not read as c1; escaped once, by the renderer (``repr`` escaped it
    twice, and an absent literal ``c\\u200b1`` read as the escaped id of the table below: review)."""
    return f"'{cid}'"


def _alike(run: RunEvaluation) -> str:
    """The run's clients spelled like absent truth ids, as a hint."""
    pairs = list(run.spelled_alike.items())
    if not pairs:
        return ""
    said = listed((f"{_quoted(theirs)} for {_quoted(ours)}" for ours, theirs in pairs), LISTED, "ids")
    return f" (the run has {said}, spelled alike)"


#: How a run's damaged parts are introduced: the detectors that read them skipped them, which moves their figures.
DAMAGED = "damaged parts the audit could not read (the detectors that need them skipped them)"


def run_title(run: RunEvaluation) -> str:
    """One run's table title: its clients, attackers, where the truth came from, absent truth ids and whether it is cut short."""
    truth = "recorded ground truth" if run.truth_source == "run" else f"truth from {run.truth_source}"
    title = f"{run.path}: {count(len(run.clients), 'client')}, {count(len(run.attackers), 'attacker')} ({truth})"
    if run.absent_attackers:
        title += f"; not in the run: {listed(map(_quoted, run.absent_attackers), LISTED, 'ids')}{_alike(run)}"
    if run.cut_short:
        title += f"; {run.cut_short}"
    if run.damaged:
        title += f"; {DAMAGED}: {listed(run.damaged, 2, 'parts')}"
    return title


def evaluation_names(evaluation: Evaluation) -> list[str]:
    """The client ids the evaluation's reports show (the truth's absent ids too): what
    :func:`~.escapes.long_names` is given, to show those of another writer's run that are too long cut."""
    return [name for run in evaluation.runs for name in (*run.clients, *run.absent_attackers, *run.spelled_alike.values())]


def evaluation_tables(evaluation: Evaluation) -> list[Table]:
    """A table per run, then the pooled one (when there is more than one run)."""
    with long_names(evaluation_names(evaluation)):
        return _evaluation_tables(evaluation)


def _evaluation_tables(evaluation: Evaluation) -> list[Table]:
    tables = [judgement_table(run_title(run), run.judgements, False, attacker_order(run), unscored(run.judgements))
              for run in evaluation.runs]
    if len(evaluation.runs) > 1:
        title = (f"pooled over {len(evaluation.runs)} runs: {count(evaluation.clients, 'client')}, "
                 f"{count(evaluation.attackers, 'attacker')}")
        tables.append(judgement_table(title, evaluation.pooled, True, fewer_runs(evaluation.pooled, len(evaluation.runs)),
                                      unscored(evaluation.pooled)))
    return tables


def _note(text: str) -> str:
    """``text`` as an HTML note, a sentence ("" for none)."""
    return f'<div class="note">{esc(text[0].upper() + text[1:])}.</div>' if text else ""


def _html_table(judgements: list[Judgement], pooled: bool) -> str:
    rows, classes = [], []
    for j in judgements:
        name = f"<b>{esc(j.name)}</b>" if j.name == CONSENSUS else esc(j.name)
        cells = [name, *_counts(j), *_rates(j), *map(esc, _first_flagged(j, pooled))]
        rows.append(cells)
        classes.append("muted" if not j.applicable else "")
    headers = HEADERS + _first_headers(pooled)
    return table(headers, rows, numeric=tuple(range(1, len(headers) if pooled else 10)), row_classes=classes)


def render_evaluation_html(evaluation: Evaluation) -> str:
    """The evaluation as one self-contained HTML page."""
    with long_names(evaluation_names(evaluation)):
        return _evaluation_html(evaluation)


def _evaluation_html(evaluation: Evaluation) -> str:
    runs = evaluation.runs
    attackers, clients = evaluation.attackers, evaluation.clients
    consensus = next(j for j in evaluation.pooled if j.name == CONSENSUS)
    cards = (
        card(len(runs), plural(len(runs), "run")) + card(clients, plural(clients, "client"))
        + card(attackers, plural(attackers, "true attacker"))
        + card(rate(consensus.f1), "consensus F1") + card(rate(consensus.fpr), "consensus false-positive rate")
    )
    lead = (
        "Positive: a client the detector flagged (for the consensus: a <b>malicious</b> or <b>suspicious</b> "
        "verdict). Precision, recall, F1 and false-positive rate count clients; AUROC ranks them by score (ties "
        "count half). Pooled: confusion counts summed over runs, AUROC over every client score of every run. "
        "A dash: undefined (e.g. precision when nothing was flagged). "
        + (f"Parameters set: <b>{esc(given)}</b>; the others are the defaults."
           if (given := evaluation.settings.describe()) else "Every detector and the verdict rule ran with their default parameters.")
        + (f" Each run was audited with <b>--model {esc(evaluation.model)}</b>: trigger inversion on its final model and, "
           "where it flags a label, the clients' clean push toward it beside the verdicts." if evaluation.model else "")
    )
    sections = [("pooled", "Pooled", section("pooled", "Pooled over runs" if len(runs) > 1 else "Summary",
                                              f'<div class="cards">{cards}</div>' + _html_table(evaluation.pooled, True)
                                              + _note(fewer_runs(evaluation.pooled, len(runs))) + _note(unscored(evaluation.pooled)), lead))]
    for run in runs:
        anchor = f"run-{run.index}"
        body = _html_table(run.judgements, False) + _note(unscored(run.judgements))
        if run.absent_attackers:
            absent = listed(map(_quoted, run.absent_attackers), 50, "ids")
            body = f'<div class="note">In the truth but not in the run: {esc(absent + _alike(run))}</div>' + body
        if run.cut_short:
            body = f'<div class="note">{esc(run.cut_short[0].upper() + run.cut_short[1:])}.</div>' + body
        if run.damaged:
            body = f'<div class="note">{esc(DAMAGED.capitalize())}: {esc(listed(run.damaged, 50, "parts"))}.</div>' + body
        title = f"Run {run.index + 1}: {run.path}"
        detail = esc(
            f"{count(len(run.clients), 'client')}, {count(len(run.attackers), 'true attacker')} "
            + ("(recorded ground truth)" if run.truth_source == "run" else f"(truth from {run.truth_source})")
        )
        sections.append((anchor, f"Run {run.index + 1}", section(anchor, title, body, detail)))
    subtitle = esc(f"{count(len(runs), 'run')} · {count(clients, 'client')} · {count(attackers, 'true attacker')}")
    return page("Detectors judged against ground truth", subtitle, sections, "fedforensics evaluation")


def write_evaluation_html(evaluation: Evaluation, path: str | os.PathLike[str]) -> None:
    """Write the evaluation's HTML page to ``path`` atomically."""
    write_atomic(path, render_evaluation_html(evaluation))
