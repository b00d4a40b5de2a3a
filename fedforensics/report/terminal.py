"""Rich terminal rendering of run summaries and audit reports."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich import box
from rich.console import Console, Group, JustifyMethod, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from ..analysis import AuditReport
from ..detectors.accumulate import CLIP
from ..detectors.base import FIRST_FLAGGED_MEANING, ROUND_Z, ROUND_Z_MEANING, Evidence
from ..notes import listed
from ..summary import RunSummary
from ..verdict import CORROBORATES_MEANING, SCORE_MEANING, SINCE_MEANING, ConsensusRule
from .escapes import long_names, shown
from .wording import (
    TRIGGER_SUCCESS, byte_size, clean_push_said, closest_call, count, failed_id, failed_rounds, flagged_per_round, meta_value, rate,
    run_names, short,
)

if TYPE_CHECKING:  # the inversion needs torch; the terminal only draws its result
    from ..inversion import TriggerInversionReport


def plain(text: str, style: str = "") -> Text:
    """``text`` from the run (ids, names, reasons) as it is, never read as rich markup or emoji codes;
    characters that would not show as themselves written as escapes (``\\n``, ``\\x1b``, ``\\u200b``:
    :func:`~.escapes.shown`).

    Markup escaping is not enough: rich's ``escape`` guards tag-like brackets only, so ``\\[z`` was
    shown as ``[z``, a trailing backslash doubled, and ``:cat:`` as an emoji.
    """
    return Text(shown(text), style=style)


def summary_panel(summary: RunSummary, reasons: bool = True) -> Panel:
    """The run facts as a panel (``reasons``: the failed replies' recorded reasons, unless a table gives them)."""
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column(overflow="fold")  # ids wrapped, never cut to "…": cut, two long ids can read the same
    cpr = summary.clients_per_round
    rounds = (
        f"{summary.rounds} ({summary.first_round}..{summary.last_round})" if summary.rounds else "0"
    )
    facts.add_row("rounds", rounds)
    facts.add_row(
        "clients per round", f"min {cpr['min']:g} · median {cpr['median']:g} · max {cpr['max']:g}"
    )
    facts.add_row("distinct clients", str(summary.distinct_clients))
    layers = len(summary.layers)
    facts.add_row("parameters", f"{summary.parameters:,} in {layers} layer{'s' * (layers != 1)}")
    facts.add_row("size on disk", f"{byte_size(summary.file_size)} (compression: {summary.compression})")
    facts.add_row("client metrics", plain(", ".join(summary.client_metrics) or "none"))
    facts.add_row("global metrics", plain(", ".join(summary.global_metrics) or "none"))
    # "none" read as "no malicious client" (a fresh-eyes auditor): the HTML says "not recorded"
    truth = plain("not recorded" if summary.ground_truth is None else listed(summary.ground_truth, LISTED, "clients") or "(no malicious client)")
    facts.add_row("ground truth", truth)
    facts.add_row("final state", "yes" if summary.final_state else "no")
    facts.add_row("failed replies", failed_replies(summary, reasons=reasons) if summary.failures else "0")
    n_bad = len(summary.nonfinite_updates)
    facts.add_row("NaN/Inf", f"[bold red]{count(n_bad, 'client update')} {'holds' if n_bad == 1 else 'hold'} NaN/Inf[/]" if n_bad else "none found")
    if summary.attachments:
        facts.add_row("attachments", plain(", ".join(summary.attachments)))
    if summary.meta:
        facts.add_row("meta", plain(", ".join(f"{k}={meta_value(v)}" for k, v in sorted(summary.meta.items()))))
    facts.add_row("format", plain(f"v{summary.format_version}, recorder {summary.recorder_version}, created {summary.created}"))
    if summary.recovered:
        facts.add_row("[yellow]recovered[/]", "the writer stopped mid-round, or is still writing: read as of its last committed round")
    if summary.finished is False and summary.writing:
        facts.add_row("[yellow]unfinished[/]", "a recorder is still writing this file: later rounds are not in it yet")
    elif summary.finished is False:
        facts.add_row("[yellow]unfinished[/]", "the recorder never closed the file: later rounds may be missing")
    return Panel(facts, title=plain(summary.path, "bold"), title_align="left")


def layer_table(summary: RunSummary) -> Table:
    """The run's layers: name, shape, dtype, parameters, whether analysed."""
    table = Table(title="layers", title_justify="left")
    table.add_column("#", justify="right", style="dim")
    table.add_column("name", overflow="fold")
    table.add_column("shape")
    table.add_column("dtype")
    table.add_column("parameters", justify="right")
    for i, layer in enumerate(summary.layers):
        name = Text.assemble(plain(layer.name), ("" if layer.analysable else " (not analysed)", "dim"))
        table.add_row(str(i), name, str(list(layer.shape)), layer.dtype, f"{layer.parameters:,}")
    return table


#: Ids a list of the terminal shows before "and N more clients": a line per detector, not a screenful per hundred
#: flagged clients (the JSON and HTML reports list them all).
LISTED = 12


def failed_replies(summary: RunSummary, most: int = 8, reasons: bool = True) -> Text:
    """'2: c3 (round 2: timeout; round 3: timeout)', or without ``reasons`` '2: c3 (rounds 2, 3)', for the summary
    panel."""

    def when(rounds: dict[str, str]) -> str:
        return failed_rounds(rounds) if reasons else f"round{'s' * (len(rounds) > 1)} {', '.join(rounds)}"

    shown = [f"{failed_id(cid, summary.failed_nodes)} ({when(rounds)})" for cid, rounds in summary.failed_replies.items()]
    return plain(f"{summary.failures}: " + listed(shown, most, "clients"))


def render_summary(console: Console, summary: RunSummary) -> None:
    """Print what ``fedforensics inspect`` shows, names longer than a recorder writes cut (:func:`~.escapes.long_names`)."""
    with long_names(run_names(summary)):
        _render_summary(console, summary)


def _render_summary(console: Console, summary: RunSummary) -> None:
    parts = [summary_panel(summary, reasons=False), layer_table(summary)]  # the failed replies' table gives them
    if summary.nonfinite_updates:
        rows = [(key, str(values)) for key, values in summary.nonfinite_updates.items()]
        parts.append(_round_client_table("updates with NaN/Inf", "values", "right", rows))
    if summary.failed_replies:
        rows = [
            (f"{r}:{failed_id(cid, summary.failed_nodes)}", reason)
            for cid, rounds in summary.failed_replies.items()
            for r, reason in rounds.items()
        ]
        parts.append(_round_client_table("failed replies", "reason", "left", rows))
    console.print(Group(*parts))


def _round_client_table(
    title: str, column: str, justify: JustifyMethod, rows: list[tuple[str, str]], most: int = 20
) -> Table:
    """Up to ``most`` of ``rows`` under "round:client" and ``column``, the number left out in its caption: 20 of 25
    failed replies were shown as if they were all (a fresh-eyes researcher)."""
    table = Table(title=title, title_justify="left")
    table.add_column("round:client", overflow="fold")
    table.add_column(column, justify=justify, overflow="fold")
    for key, value in rows[:most]:
        table.add_row(plain(key), plain(value))
    if len(rows) > most:
        table.caption = f"and {len(rows) - most} more (--json)"
    return table


VERDICT_STYLE = {"malicious": "bold red", "suspicious": "yellow", "benign": "green"}


def _fmt(value: float | None, spec: str = ".2f") -> str:
    if value is None or value != value:
        return "–"
    return format(value, spec)


#: From this many columns on, each client's strongest evidence is a column of the verdict table; below, a line under it.
EVIDENCE_WIDTH = 110
#: Below this many columns the table keeps only id, verdict, score and rounds, borderless; the rest goes to the lines.
COMPACT_WIDTH = 70
#: Below this many columns even the localization table's headers give way to its values (at 45 they cropped them).
NARROW_WIDTH = 60
#: Clients not judged benign listed at most (a fleet of attackers would print thousands of rows); the rest are counted.
MOST_FLAGGED_ROWS = 100


def verdict_table(report: AuditReport, limit: int = 30, width: int = EVIDENCE_WIDTH) -> RenderableType:
    """Clients sorted by verdict and score, with the strongest evidence: every client not judged benign (up to
    :data:`MOST_FLAGGED_ROWS`), and benign ones up to ``limit`` rows; what is left out is counted by verdict.

    On a console narrower than :data:`EVIDENCE_WIDTH` the evidence follows the table, one wrapped line per client,
    and narrower than :data:`COMPACT_WIDTH` the detectors and the truth go there too: the id, verdict, score and
    rounds stay whole (columns of text squeezed them to nothing at 40-60 columns)."""
    compact = width < COMPACT_WIDTH
    column = width >= EVIDENCE_WIDTH
    known = report.summary.ground_truth is not None
    truth = set(report.summary.ground_truth or [])
    rows = report.verdicts[: max(limit, min(report.not_benign, MOST_FLAGGED_ROWS))]
    table = Table(title="verdicts", title_justify="left", box=None if compact else box.HEAVY_HEAD, pad_edge=not compact,
                  caption_justify="left")
    longest = max((len(shown(v.client)) for v in rows), default=6)
    # beside the columns that never wrap (their widths, 2 of padding each and the borders), the id may ask for half
    # of what is left, "flagged by" folding into the rest: a 16-wide id outgrew 80 columns where the run has ground
    # truth, and the console cropped the table's right edge, the truth column read 'attack' (a fresh-eyes auditor)
    unwrapped = sum(map(len, ("suspicious", "score", "rounds", "since"))) + (len("attacker") if known else 0)
    room = (width - unwrapped - 3 * (6 + known) - 1) // 2
    # "flagged by" in a column as narrow as that cut its names mid-word ("client-metri / cs", a fresh-eyes auditor at
    # 80 columns): where its longest name does not fit, the names go under the table with the evidence
    names = [name for v in rows for name in v.flagged_by]
    need = max([*map(len, names), len("(corroborates)") if report.corroborating & set(names) else 0], default=0)
    by_column = not compact and (column or room >= need)
    if compact:
        client_width = max(8, width - 36)
    else:
        client_width = min(16, room) if by_column else min(36, 2 * room)
    table.add_column("client", overflow="fold", min_width=min(longest, client_width))
    table.add_column("verdict", no_wrap=True, min_width=len("suspicious"))
    table.add_column("score", justify="right", no_wrap=True)
    table.add_column("rounds", justify="right", no_wrap=True)
    if not compact:
        # the round from which the verdict rule would have judged it so (a fresh-eyes user found it only in the JSON)
        table.add_column("since", justify="right", no_wrap=True)
    if by_column:
        table.add_column("flagged by", overflow="fold")
    if column:
        table.add_column("strongest evidence", overflow="fold", ratio=1)
    if known and not compact:
        table.add_column("truth", no_wrap=True)
    lines = []
    for v in rows:
        evidence = _evidence_line(v.evidence[0]) if v.evidence else Text()
        # a benign client's score of 1.49 beside "1.0: one detector at its threshold" had nothing in the terminal to
        # explain it, where the HTML names the detector nearest its threshold (a fresh-eyes auditor)
        nearest = plain(closest_call(v), "dim") if v.verdict == "benign" else evidence
        by = ", ".join(f"{name} (corroborates)" if name in report.corroborating else name for name in v.flagged_by)
        said = "[red]attacker[/]" if v.client in truth else "[dim]honest[/]"  # the HTML's words
        row = [plain(v.client), f"[{VERDICT_STYLE[v.verdict]}]{v.verdict}[/]", f"{v.score:.2f}", str(v.rounds)]
        row += [] if compact else ["–" if v.first_round is None else str(v.first_round)]
        row += [plain(by or "–")] if by_column else []
        row += [nearest] if column else []
        row += [said] if known and not compact else []
        table.add_row(*row)
        if compact and (by or v.evidence or v.client in truth):
            parts = [plain(v.client, "bold")] + ([" (", Text.from_markup(said), ")"] if known else []) + [": "]
            told = ([plain(f"flagged by {by}")] if by else []) + ([evidence] if v.evidence else [])
            lines.append(Text.assemble(*parts, Text(" — ").join(told) if told else Text("not flagged", "dim")))
        elif not column and (v.evidence or by):
            told = ([] if by_column or not by else [plain(f"flagged by {by}")]) + ([evidence] if v.evidence else [])
            lines.append(Text.assemble(plain(v.client, "bold"), ": ", Text(" — ").join(told)))
    left = report.verdicts[len(rows):]
    # "malicious since 2" read as malicious from round 2 (a fresh-eyes user): the column says what it counts
    captions = [] if compact else [f"since: {SINCE_MEANING}"]
    if any(v.verdict == "benign" and v.score >= 1 for v in rows):
        captions.append(f"score: {SCORE_MEANING}")
    # "round z = +10.8" was the one figure of an evidence line nothing explained (a fresh-eyes auditor)
    if any(v.evidence and ROUND_Z in v.evidence[0].detail for v in rows):
        captions.append(f"round z: {ROUND_Z_MEANING}")
    # "output-bias (corroborates)" was the one word of the table nothing in the terminal explained (a fresh-eyes auditor)
    if any(report.corroborating & set(v.flagged_by) for v in rows):
        captions.append(f"(corroborates): {CORROBORATES_MEANING} (docs/detectors.md, step 4)")
    if left:
        counts = ", ".join(f"{n} {verdict}" for verdict in VERDICT_STYLE if (n := sum(v.verdict == verdict for v in left)))
        captions.append(f"{len(left)} more clients ({counts}) in the JSON/HTML report")
    table.caption = "\n".join(captions) or None
    return Group(table, *lines) if lines else table


def _evidence_line(evidence: Evidence) -> Text:
    """One piece of evidence: detector, what it saw, and where (round, layer)."""
    layer = f"layer {evidence.layer}" if evidence.layer else ""  # as the HTML says it
    where = " · ".join(x for x in (f"round {evidence.round}" if evidence.round is not None else "", layer) if x)
    # the space outside plain(): a leading space is escaped there, as an id's would be (review: "\x20(round 4)");
    # the colon: piped, without the dim style, "norm update norm far from..." ran the detector into its words (a review)
    return Text.assemble(plain(evidence.detector, "dim"), ": ", plain(evidence.detail), *((" ", plain(f"({where})", "dim")) if where else ()))


def localization_table(report: AuditReport, limit: int = 8, width: int = EVIDENCE_WIDTH) -> Table | None:
    """The layer slices that separate clients most, and where the output bias ranks (Bilgin 2021)."""
    rows = report.localization
    if not rows:
        return None
    has_truth = any(row["auroc"] is not None for row in rows)
    # its caption left-aligned as the other tables' are: centred, its wrapped lines began at ragged columns (a review)
    table = Table(title="localization: layer slices that separate clients most", title_justify="left", caption_justify="left")
    table.add_column("slice", overflow="fold")
    # whole, unless the console is too narrow for the values beside it (they were cropped at 45 columns)
    table.add_column("separation", justify="right", min_width=len("separation") if width >= NARROW_WIDTH else None)
    table.add_column("peak round", justify="right")
    table.add_column("top client", overflow="fold")
    if has_truth:
        table.add_column("AUROC", justify="right")  # against the truth, as the caption says: 7 columns narrower
    for row in rows[:limit]:
        cells = [
            plain(f"{row['layer']} · {row['statistic_label']}"),
            _fmt(row["separation"], ".1f"),
            "–" if row["peak_round"] is None else str(row["peak_round"]),
            "–" if row["top_client"] is None else plain(row["top_client"]),  # it printed None in runs of 1–2 rounds (QA)
        ]
        if has_truth:
            cells.append(rate(row["auroc"]))
        table.add_row(*cells)
    placement = report.output_bias_placement
    captions = []
    if placement is not None:
        captions.append(
            f"output-layer bias {placement['layer']}: rank {placement['rank']} of {placement['of']} slices"
            + {
                "output-bias": " — the anomaly sits where Bilgin (2021) finds it",
                "elsewhere": " — the anomaly is not concentrated in the output bias",
                "none": " — no slice separates a client at the threshold: no anomaly to localize",
            }[placement["anomaly"]]
        )
    if has_truth:
        captions.append("AUROC: of each slice's client scores against the recorded ground truth")
    if len(rows) > limit:  # cut silently, the rank above could name a slice not shown (a fresh-eyes user)
        captions.append(f"the top {limit} of {len(rows)} slices; all of them in the JSON report")
    # 8 of 12 slices at 10.0 read as a measured tie, not a ceiling (a review)
    captions.append(f"separation: a client's mean round z on the slice, each round held within ±{CLIP:g}")
    table.caption = plain("; ".join(captions))
    return table


def detector_table(report: AuditReport) -> Table:
    """Each detector: the clients it flagged and the round each was first flagged."""
    # a reader compared "first in round 0" of an evidence line with "first flagged in round 5" here (README check)
    table = Table(title="detectors", title_justify="left", caption=f"first flagged: {FIRST_FLAGGED_MEANING}", caption_justify="left")
    # whole names, folded where the console is narrow: at 45 columns rich cut them to 'accumulated-s…' (a fresh-eyes user)
    table.add_column("detector", overflow="fold")
    table.add_column("flagged", overflow="fold")
    table.add_column("first flagged in round", overflow="fold")
    for d in report.detectors:
        if not d.applicable:
            flagged = plain(f"not applicable: {d.note}", "dim")
        else:
            flagged = plain(listed(d.flagged, LISTED, "clients")) if d.flagged else Text("none", "green")
        # a flag on a statistic of the whole run has no round: "run-level", as evaluate says
        first = plain(listed([f"{c}: {d.first_flagged.get(c, 'run-level')}" for c in d.flagged], LISTED, "clients") or "–")
        table.add_row(plain(d.name), flagged, first)
    return table


def audit_panel(report: AuditReport) -> Panel:
    """The verdict counts, the global model after the last round, the finding of trigger inversion and the notes."""
    counts = report.counts
    lines = [Text(" · ").join(Text(f"{counts[v]} {v}", VERDICT_STYLE[v]) for v in counts)]
    last = max(report.global_metrics) if report.global_metrics else None
    if last is not None:
        metrics = ", ".join(f"{k} {v:.3f}" for k, v in sorted(report.global_metrics[last].items()))
        lines.append(plain(f"global model after round {last}: {metrics}"))
    finding = report.model_finding
    if finding is not None:
        lines.append(plain(finding, "bold red" if report.trigger_inversion.flagged_labels else "green"))
    lines.extend(Text.assemble(("note:", "yellow"), " ", plain(n)) for n in report.notes)
    return Panel(Text("\n").join(lines), title="[bold]audit[/]", title_align="left")


def trigger_inversion_table(inversion: TriggerInversionReport, rule: ConsensusRule | None = None) -> Group:
    """Neural Cleanse per label (mask L1, held-out attack success, anomaly index, flagged), then the verdict line
    (the clean push with what ``rule``, the audit's, default ``ConsensusRule()``, makes of it; with a timeline, the
    flagged labels per inverted round), then the trigger probe."""
    model = inversion.model_named.removeprefix("the ")
    table = Table(title=f"trigger inversion: Neural Cleanse on the {model}, {inversion.samples} clean samples", title_justify="left")
    table.add_column("label", justify="right")
    table.add_column("mask L1", justify="right")
    table.add_column("attack success", justify="right")
    table.add_column("anomaly index", justify="right")
    table.add_column("flagged")
    for c in inversion.classes:
        table.add_row(
            str(c.label), _fmt(c.mask_l1, ".1f"), _fmt(c.attack_success, ".0%"),
            short(c.anomaly_index, (inversion.result.threshold,)),
            "[bold red]flagged[/]" if c.flagged else "[dim]–[/]",
        )  # fmt: skip
    probe = _probe_table(inversion)
    # the flagged label's 97% here and its recovered trigger's 98% in the probe read as one figure twice (a fresh-eyes
    # auditor): they count different samples, which the HTML's "(held out)" said and the terminal did not
    table.caption = TRIGGER_SUCCESS + ("; the probe below counts every clean sample" if probe is not None else "")
    table.caption_justify = "left"
    lines = [_inversion_verdict(inversion)]
    if inversion.result.accuracy_said:
        said = inversion.result.accuracy_said
        lines.append(f"[bold yellow]{said}[/]" if inversion.result.near_chance else f"[dim]{said}[/]")
    if inversion.clean_push is not None:
        lines.append(plain(clean_push_said(inversion.clean_push, rule if rule is not None else ConsensusRule())))
    if inversion.timeline:
        # a weak flag (anomaly index under the chance level of this many labels) marked as the final model's is (QA)
        flagged = flagged_per_round(inversion)
        lines.append(f"flagged labels per inverted round: {flagged}")
        if "(weak)" in flagged:  # a line of its own: beside the last entry it read as that label's (review)
            lines.append("(weak): its anomaly index is below the chance level of this many labels")
    return Group(table, *lines, *([probe] if probe is not None else []))


def _probe_table(inversion: TriggerInversionReport) -> Table | None:
    """Where each probed trigger (the recovered ones, the auditor's and its parts) sends the clean samples, beside
    the share the clean samples already had there (``None`` when nothing was probed)."""
    rows = [p for p in inversion.probe.sets[1:] if p.target is not None]
    if not rows:
        return None
    table = Table(title="trigger probe: share of the clean samples predicted as the label, stamped and as they are", title_justify="left")
    table.add_column("trigger")
    table.add_column("pulls to label", justify="right")
    table.add_column("stamped", justify="right")
    table.add_column("clean", justify="right")
    for p in rows:
        tied = f", tied with {', '.join(map(str, p.tied))}" if p.tied else ""  # as the HTML's histogram says it
        table.add_row(plain(p.name), f"{p.target}{tied}", f"{p.pulled:.0%}", f"{inversion.probe.clean_share(p.target):.0%}")
    return table


def _inversion_verdict(inversion: TriggerInversionReport) -> str:
    threshold = f"{inversion.result.threshold:g}"
    flagged = [inversion.classes[label] for label in inversion.flagged_labels]
    if not flagged and not inversion.result.working_triggers:
        return (
            f"[yellow]no label flagged, and no trigger found[/]: no label's recovered trigger reached "
            f"{inversion.result.min_success:.0%} attack success on held-out inputs (best "
            f"{_fmt(inversion.result.best_success, '.0%')}), so there "
            "were no triggers to compare: this says nothing of a backdoor"
        )
    if not flagged:
        return f"[green]no label flagged[/]: no label's trigger is an outlier on the small side (anomaly index > {threshold})"
    weak = inversion.result.weak_labels
    evidence = "; ".join(
        (f"{c.label}: " if len(flagged) > 1 else "")
        + f"mask L1 {_fmt(c.mask_l1, '.1f')}, anomaly index {short(c.anomaly_index, (inversion.result.threshold,))} > {threshold}"
        + (f" (weak: < {_fmt(inversion.result.chance_index)})" if c.label in weak else "")
        + f", attack success {_fmt(c.attack_success, '.0%')}"
        for c in flagged
    )
    which = ", ".join(str(c.label) for c in flagged)
    return f"[bold red]label{'s' if len(flagged) > 1 else ''} {which} flagged[/]: backdoor suspected ({evidence})"


def render_audit(console: Console, report: AuditReport, inversion_table: RenderableType | None = None) -> None:
    """Print the audit: run facts, verdicts, localization, detectors (and trigger inversion: :func:`trigger_inversion_table`),
    names longer than a recorder writes cut (:func:`~.escapes.long_names`)."""
    with long_names(run_names(report.summary, (v.client for v in report.verdicts))):
        _render_audit(console, report, inversion_table)


def _render_audit(console: Console, report: AuditReport, inversion_table: RenderableType | None) -> None:
    parts: list = [summary_panel(report.summary), audit_panel(report)]
    if report.verdicts:  # a run of no client: an empty verdict table and every detector "not applicable" (a review)
        parts.append(verdict_table(report, width=console.width))
        loc = localization_table(report, width=console.width)
        if loc is not None:
            parts.append(loc)
        parts.append(detector_table(report))
    if inversion_table is not None:
        parts.append(inversion_table)
    console.print(Group(*parts))
