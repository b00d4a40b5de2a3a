"""The audit report as one self-contained HTML page (``fedforensics analyze --html``).

It draws what :class:`~fedforensics.analysis.AuditReport` holds and computes
nothing; every string from the run file is escaped (see :mod:`.page`).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING

from ..analysis import AuditReport
from ..detectors.accumulate import CLIP
from ..detectors.base import FIRST_FLAGGED_MEANING, ROUND_Z, ROUND_Z_MEANING, DetectorResult, Evidence
from ..verdict import CORROBORATES_MEANING, SCORE_MEANING, SINCE_MEANING, VERDICTS, ConsensusRule
from . import figures
from .escapes import long_names
from .files import write_atomic
from .page import VERDICT_COLOURS, badge, card, esc, facts, figure, page, section, table
from .wording import (
    TRIGGER_SUCCESS, byte_size, clean_push_said, closest_call, count, failed_id, failed_rounds, flagged_per_round, meta_value,
    num, rate,
    run_names, short,
)

if TYPE_CHECKING:  # the inversion needs torch; the page only draws its result
    from ..inversion import TriggerInversionReport

#: How many suspects the summary names.
TOP_SUSPECTS = 5
#: Verdict rows shown before the rest (benign, by score) fold away: a fleet's 300 rows were 14,000 px tall.
VERDICT_ROWS = 50
#: How many labels' recovered triggers are drawn (flagged ones first, then the smallest masks).
TRIGGER_IMAGES = 12


def _styles(report: AuditReport) -> figures.ClientStyles:
    return figures.ClientStyles(
        {v.client: v.verdict for v in report.verdicts}, frozenset(report.summary.ground_truth or ())
    )


#: Ids a cell or a fact lists at most (the JSON holds them all): a fleet's 450 flagged clients are no table cell.
HTML_LISTED = 50
#: Clients named in a figure's caption; past them, how many more.
CAPTION_LISTED = 8


def _ids(ids: list[str], most: int | None = None) -> str:
    """Client ids for a sentence; past ``most`` of them, how many more (a fleet's 146 outliers are no caption)."""
    shown = ids if most is None else ids[:most]
    text = ", ".join(f'<span class="id">{esc(c)}</span>' for c in shown)
    return text + (f" and {len(ids) - len(shown)} more" if len(ids) > len(shown) else "")


def _evidence_line(e: Evidence, corroborating: set[str] | None = None) -> str:
    where = " · ".join(w for w in (f"round {e.round}" if e.round is not None else "", f"layer {e.layer}" if e.layer else "") if w)
    if corroborating and e.detector in corroborating:
        where = " · ".join(w for w in (where, "corroborates only") if w)
    return f'<span class="det">{esc(e.detector)}</span> {esc(e.detail)}' + (
        f' <span class="muted">({esc(where)})</span>' if where else ""
    )


#: The localization table's rows on the page (the heatmap above it draws more; the JSON holds every slice).
LOCALIZATION_ROWS = 10


def _truth_tag(report: AuditReport, cid: str) -> str:
    if report.summary.ground_truth is None:
        return ""
    return ' <span class="truth">known attacker</span>' if cid in report.summary.ground_truth else ""


def _summary(report: AuditReport) -> str:
    s = report.summary
    counts = report.counts
    cards = "".join(card(counts[v], v, VERDICT_COLOURS[v]) for v in VERDICTS)
    cards += card(s.distinct_clients, "clients audited") + card(s.rounds, "rounds")
    suspects = [v for v in report.verdicts if v.verdict != "benign"][:TOP_SUSPECTS]
    if suspects:
        items = []
        for v in suspects:
            reason = _evidence_line(v.evidence[0], report.corroborating) if v.evidence else '<span class="muted">no evidence recorded</span>'
            items.append(
                f'<li style="--c:{VERDICT_COLOURS[v.verdict]}"><span class="id"><b>{esc(v.client)}</b></span> '
                f"{badge(v.verdict)}{_truth_tag(report, v.client)} "
                f'<span class="muted">score {num(v.score)}'
                # a client suspicious for a NaN/Inf update alone was "flagged by 0 detectors" (a fresh-eyes user)
                + (f' · flagged by {count(len(v.flagged_by), "detector")}' if v.flagged_by else "") + "</span>"
                f"<br>{reason}</li>"
            )
        more = report.not_benign - len(suspects)
        tail = f'<p class="muted">and {more} more in the verdict table.</p>' if more > 0 else ""
        top = f'<h3>Top suspects</h3><ul class="suspects">{"".join(items)}</ul>{tail}'
    else:
        top = '<h3>Top suspects</h3><p class="empty">No client reached a suspicious or malicious verdict.</p>'
    notes = "".join(f'<div class="note">{esc(n)}</div>' for n in report.notes)
    finding = report.model_finding
    if finding is not None:
        text = esc(finding[0].upper() + finding[1:]) + "."
        notes = (f'<div class="note"><b>{text}</b></div>' if report.trigger_inversion.flagged_labels else f'<p class="muted">{text}</p>') + notes
    if s.recovered:
        notes += '<div class="note">The writer stopped mid-round, or is still writing: the run is read as of its last committed round.</div>'
    cpr = s.clients_per_round
    truth = (
        '<span class="muted">not recorded</span>'
        if s.ground_truth is None
        else (_ids(s.ground_truth, most=HTML_LISTED) if s.ground_truth else "no malicious client")
    )
    rows = [
        ("run file", f'<span class="id">{esc(s.path)}</span>'),
        ("rounds", esc(f"{s.rounds} ({s.first_round}–{s.last_round})" if s.rounds else "0")),
        ("clients per round", esc(f"min {cpr['min']:g} · median {cpr['median']:g} · max {cpr['max']:g}")),
        ("model", esc(f"{count(s.parameters, 'parameter')} in {count(len(s.layers), 'layer')}")),
        ("client metrics", esc(", ".join(s.client_metrics) or "none recorded")),
        ("global metrics", esc(", ".join(s.global_metrics) or "none recorded")),
        ("ground truth", truth),
        ("failed replies", esc(s.failures) + (": " + ", ".join(
            f'<span class="id">{esc(failed_id(cid, s.failed_nodes))}</span> ({esc(failed_rounds(rounds))})'
            for cid, rounds in s.failed_replies.items()
        ) if s.failed_replies else "")),
        ("updates with NaN/Inf", esc(len(s.nonfinite_updates))),
        ("size on disk", esc(f"{byte_size(s.file_size)} ({s.file_size:,} bytes; compression: {s.compression})")),
        ("final state", "recorded" if s.final_state else '<span class="muted">not recorded</span>'),
        ("recorded", esc(f"{s.created} by recorder {s.recorder_version} (format v{s.format_version})")),
        ("audited", esc(f"{report.audited} by fedforensics {report.tool_version}") if report.audited else "–"),
    ]
    if s.attachments:
        rows.append(("attachments", ", ".join(f'<span class="id">{esc(a)}</span>' for a in s.attachments)))
    if s.meta:
        rows.append(("metadata", "<br>".join(f'<span class="id">{esc(k)} = {esc(meta_value(v))}</span>' for k, v in sorted(s.meta.items()))))
    r = report.rule
    corroborating = [d for d in report.detectors if not d.standalone and d.adds_family]
    no_family = [d.name for d in report.detectors if not d.adds_family]
    only_beside = (
        f" A flag of {' or '.join(esc(d.name) for d in corroborating)} (set by a client's own data under label skew) "
        "counts as its family only beside a flag of a standalone detector that an unusual label mix does not raise."
        if corroborating
        else ""
    )
    for d in corroborating:
        if d.explained_by:
            only_beside += (
                f" Beside flags of the {esc(' or '.join(sorted(d.explained_by)))} famil{'ies' if len(d.explained_by) > 1 else 'y'} "
                f"alone, a flag of {esc(d.name)} counts as none: one cause raises both (docs/detectors.md, step 4)."
            )
    if no_family:
        only_beside += (
            f" A flag of {' or '.join(esc(n) for n in no_family)} (a client's label histogram) is listed as evidence "
            "but counts as no family."
        )
    fewer = r.fewer_families  # agree is a parameter (--set verdict.agree)
    persistent = (
        f" In a run whose clients repeat their differences from round to round (median persistence cosine at least "
        f"{r.persistence:g}), flags of {fewer} below {r.strong:g}× its threshold leave a client <b>benign</b>, "
        "unless a label-mix detector's flag stands beside a standalone flag of another kind, or a flag its data size explains "
        f"reaches {r.strong:g}×: then <b>suspicious</b>."
        if r.agree > 1
        else ""
    )
    sized = [d.name for d in report.detectors if d.large_data and d.adds_family]
    if sized:
        alone = f", and none of them makes it <b>malicious</b> by reaching {r.strong:g}× its threshold" if r.agree > 1 else ""
        only_beside += (
            f" For a client whose reported sample counts explain its update's length in most of its rounds, flags of "
            f"{' or '.join(esc(n) for n in sized)} count as one family (data size){alone}."
        )
    magnitude = [d.name for d in report.detectors if d.family == "magnitude" and d.standalone]
    if magnitude and r.agree > 1 and report.batchnorm_head:  # told of a model without BatchNorm, it misled (a review)
        only_beside += (
            " For a client whose update was long while the layers after the model's last BatchNorm were not, in most "
            f"of its rounds (a step the normalization absorbs), flags of {' or '.join(esc(n) for n in magnitude)} make "
            "it <b>malicious</b> only beside another family, and <b>suspicious</b> otherwise."
        )
    push = getattr(report.trigger_inversion, "clean_push", None)
    if push is not None and r.judges_push:  # its suspects had no flag, against a rule that named none (a review)
        mix = [esc(d.name) for d in report.detectors if d.label_mix]
        without = f" without {' or '.join(mix)}" if mix else ""
        only_beside += (
            f" Trigger inversion flagged label {esc(push.label)}: a client otherwise <b>benign</b> whose clean push toward it "
            f"reaches {r.push:g} while its score{without} reaches {r.push_score:g} is <b>suspicious</b> (docs/detectors.md, "
            "step 5)."
        )
    if r.agree > 1 and report.persistence is not None:
        applies = r.persists(report.persistence)
        persistent += (
            f" This run's persistence: <b>{report.persistence:.3f}</b> ({'at least' if applies else 'below'} {r.persistence:g}: "
            f"{'this exception applies' if applies else 'the exception does not apply'})."
        )
    rule = (
        f'<p class="muted">Verdict rule: <b>malicious</b> when flagged by detectors of at least {r.agree} {"family" if r.agree == 1 else "families"} of '
        f"evidence (magnitude, direction, collusion, behaviour) or by one standalone detector at {r.strong:g}× its threshold; "
        f"<b>suspicious</b> when {f'flagged by {fewer} or when ' if r.agree > 1 else ''}an update held NaN/Inf; "
        f"otherwise <b>benign</b>.{persistent}{only_beside} The score sums each detector's score ÷ threshold{f', capped at {r.cap:g}' if math.isfinite(r.cap) else ''}.</p>"
    )
    last = max(report.global_metrics) if report.global_metrics else None
    final = (
        f'<p class="muted">Global model after round {esc(last)}: '
        + esc(", ".join(f"{k} {num(v, '.3f')}" for k, v in sorted(report.global_metrics[last].items()))) + ".</p>"
        if last is not None
        else ""
    )
    return f'<div class="cards">{cards}</div>{final}{notes}{top}{rule}<h3>Run</h3>{facts(rows)}'


def _verdicts(report: AuditReport) -> str:
    known = report.summary.ground_truth is not None
    headers = ["client", "verdict", "score", "rounds", "since round", "evidence (strongest detector first)"] + (
        ["ground truth"] if known else []
    )
    rows, classes = [], []
    for v in report.verdicts:
        firsts: dict[str, Evidence] = {}
        for e in v.evidence:
            firsts.setdefault(e.detector, e)
        lines = "".join(f"<li>{_evidence_line(e, report.corroborating)}</li>" for e in firsts.values())
        evidence = f'<ul class="evidence">{lines}</ul>' if lines else f'<span class="muted">{esc(closest_call(v))}</span>'
        if len(v.evidence) > len(firsts):
            rest = "".join(f"<li>{_evidence_line(e, report.corroborating)}</li>" for e in v.evidence)
            evidence += f'<details><summary>all {len(v.evidence)} facts</summary><ul class="evidence">{rest}</ul></details>'
        row = [f'<span class="id">{esc(v.client)}</span>', badge(v.verdict), num(v.score), esc(v.rounds), _or_dash(v.first_round),
               evidence]
        if known:
            row.append('<span class="truth">attacker</span>' if v.client in (report.summary.ground_truth or []) else '<span class="muted">honest</span>')
        rows.append(row)
        classes.append(f"v-{v.verdict}")
    if not rows:
        return _unavailable("No client sent an update in any round: there is nothing to judge.")
    shown = max(VERDICT_ROWS, report.not_benign)
    page = f'<p class="muted">Score: {esc(SCORE_MEANING)}. Since round: {esc(SINCE_MEANING)}.'
    # "round z = +10.8" was the one figure of an evidence line nothing explained (a fresh-eyes auditor)
    if any(ROUND_Z in e.detail for v in report.verdicts for e in v.evidence):
        page += f" Round z: {esc(ROUND_Z_MEANING)}."
    page += "</p>"
    page += table(headers, rows[:shown], numeric=(2, 3, 4), row_classes=classes[:shown])
    if len(rows) > shown:
        rest = table(headers, rows[shown:], numeric=(2, 3, 4), row_classes=classes[shown:])
        page += f"<details><summary>the other {len(rows) - shown} clients, all benign</summary>{rest}</details>"
    return page


def _or_dash(value: object, cls: str = "") -> str:
    if value is None:
        return '<span class="muted">–</span>'
    return f'<span class="{cls}">{esc(value)}</span>' if cls else esc(value)


def _unavailable(what: str) -> str:
    return f'<p class="empty">{esc(what)}</p>'


def _not_drawn(report: AuditReport, what: str, name: str, otherwise: str) -> str:
    """Why ``what`` is not drawn: the detector ``name`` was not selected, was not applicable to the run (its note
    says why), or ``otherwise``."""
    result = report.detector(name)
    if result is None:
        why = f"the {name} detector was not selected"
    elif not result.applicable:
        why = f"{name}: {result.note or 'no client could be scored'}"
    else:
        why = otherwise
    return _unavailable(f"No {what}: {why}.")


def _localization(report: AuditReport, deviation: DetectorResult | None) -> str:
    rows = report.localization
    if not rows:
        return _not_drawn(report, "localization", "layer-deviation", "no layer slice to compare")
    placement = report.output_bias_placement
    caption = (
        "Rows: layer slices, most separating first. Separation: the largest run-level score a client reaches on the "
        f"slice, its mean per-round robust z with each round held within ±{CLIP:g} (so at most {CLIP:g}; ties there go to "
        "the slice whose rounds' largest |z| is larger). Colour: in each round, the largest |robust z| any client reaches on the slice"
    )
    if deviation is not None:
        caption += f" (black mark on the scale: the detector's threshold, {deviation.threshold:g})"
    caption += "."
    if placement is not None:
        where = {
            "output-bias": "— the anomaly sits where Bilgin (2021) finds it.",
            "elsewhere": "— in this run the anomaly is not concentrated in the output bias.",
            "none": "— no slice separates a client at the detector's threshold: there is no anomaly to localize.",
        }[placement["anomaly"]]
        caption += (
            f" <b>The output layer's bias <span class=\"id\">{esc(placement['layer'])}</span> ranks "
            f"{esc(placement['rank'])} of {esc(placement['of'])} slices</b> {where}"
        )
    else:
        caption += " The model has no one-dimensional output bias to place."
    uri = figures.localization_heatmap(rows, placement["layer"] if placement else None,
                                       deviation.threshold if deviation is not None else None)
    has_truth = any(row["auroc"] is not None for row in rows)
    headers = ["slice", "separation", "peak round", "top client"] + (["AUROC vs truth"] if has_truth else [])
    body = []
    for row in rows[:LOCALIZATION_ROWS]:
        cells = [f'<span class="id">{esc(row["layer"])}</span> · {esc(row["statistic_label"])}',
                 num(row["separation"], ".1f"), _or_dash(row["peak_round"]), _or_dash(row["top_client"], "id")]
        if has_truth:
            cells.append(rate(row["auroc"]))
        body.append(cells)
    cut = (
        f'<p class="muted">The top {LOCALIZATION_ROWS} of {len(rows)} slices; all of them in the JSON report.</p>'
        if len(rows) > LOCALIZATION_ROWS else ""
    )
    return figure(uri, "heatmap of layer slices by round", caption) + table(headers, body, numeric=(1, 2, 4)) + cut


def _timeline(report: AuditReport, deviation: DetectorResult | None) -> str:
    extras = deviation.extras if deviation is not None else {}
    best, timeline = extras.get("most_separating"), extras.get("timeline")
    if not best or not timeline:
        return _not_drawn(report, "timeline", "layer-deviation", "no layer slice separated the clients in any round")
    row = next(row for row in report.localization if row["slice"] == best)
    label = f"{row['layer']} · {row['statistic_label']}"
    uri = figures.client_timelines(timeline, _styles(report), f"{label} of each client's update", row["statistic_label"])
    caption = (
        f'The most separating slice, <span class="id">{esc(label)}</span>, per client and round. '
        "Red: malicious, amber: suspicious, green-grey: benign"
        + ("; dashed: known attackers (ground truth)." if report.summary.ground_truth else ".")
        + " Bilgin (2021) finds the anomaly strongest in an attack's first rounds, fading once the backdoor is in"
        # said beside a label flipper's anomaly that grew over the run, the paper's finding read as this figure's (a
        # review): the run's own peak says which way it went here
        + (f"; in this run the slice's largest |robust z| peaks in round {row['peak_round']} (rounds {report.summary.first_round}–"
           f"{report.summary.last_round})." if row.get("peak_round") is not None else ".")
    )
    return figure(uri, f"per-client timeline of {label}", caption)


def _norms(report: AuditReport) -> str:
    result = report.detector("norm")
    norms = result.extras.get("norms") if result is not None else None
    if not norms:
        return _not_drawn(report, "update norms", "norm", "no update's norm was recorded")
    uri = figures.update_norms(norms, result.extras.get("clip_bound", {}), _styles(report))
    clipped = result.extras.get("max_clip_factor", {})
    # largest first, as the caption says (QA: it listed them in the order flagged)
    flagged = sorted(result.flagged, key=lambda c: -(clipped.get(c) or 0.0))
    caption = (
        "The dashed black line is each round's median norm: the bound that norm clipping (Sun et al. 2019) and FLAME "
        "would have applied. A boosted model-replacement update (Bagdasaryan et al. 2020) stands far above it."
    )
    if flagged:
        listed = flagged[:CAPTION_LISTED]
        more = f" and {len(flagged) - len(listed)} more" if len(flagged) > len(listed) else ""
        caption += " Largest clip factor of each flagged client, largest first: " + ", ".join(
            f'<span class="id">{esc(c)}</span> ×{num(clipped.get(c), ".1f")}' for c in listed
        ) + more + "."
    return figure(uri, "update norms per round per client", caption)


def _similarity(report: AuditReport) -> str:
    result = report.detector("cosine-hdbscan")
    extras = result.extras if result is not None else {}
    if not extras.get("distance_matrix"):
        if extras.get("view_omitted"):
            return _unavailable(f"No similarity view: {extras['view_omitted']}.")
        return _not_drawn(report, "similarity view", "cosine-hdbscan", "too few clients to compare")
    clients = extras["distance_clients"]
    outliers = set(extras.get("accumulated_outliers", []))
    styles = _styles(report)
    matrix = figures.distance_matrix(clients, extras["distance_matrix"], len(clients) - len(outliers), styles)
    points = figures.embedding(extras["embedding"], styles)
    outside = _ids([c for c in clients if c in outliers], most=20) or "none"
    rare = extras.get("too_few_rounds", [])
    left_out = (f" Not shown, clustered in fewer than {result.params['min_rounds']} rounds: {_ids(rare, most=20)}."
                if rare else "")
    return (
        '<div class="grid2">'
        + figure(matrix, "cosine distance matrix ordered by cluster",
                 "Clients ordered by cluster: the majority cluster first, then the clients outside it "
                 f"(white lines). Outside the majority cluster: {outside}. "
                 # 7 of 20 outside and none flagged read as 7 suspects (a fresh-eyes auditor)
                 "Being outside it is no flag by itself: the Detectors table names whom cosine-hdbscan flagged."
                 + left_out)
        + figure(points, "two-dimensional embedding of accumulated updates",
                 "Classical MDS of the same distances: close points sent similar updates over the run.")
        + "</div>"
    )


def _metrics(report: AuditReport) -> str:
    parts = []
    if report.client_metrics:
        parts.append(figure(figures.client_metrics(report.client_metrics, _styles(report)), "client metrics over rounds",
                            "What each client reported after local training. Where clients report their training "
                            "accuracy, a label-flipping client's stays below the others': it cannot fit its flipped labels."))
    if report.global_metrics:
        parts.append(figure(figures.global_metrics(report.global_metrics), "global model metrics over rounds",
                            "The trainer's evaluation of the aggregated model after each round."))
    return "".join(parts) or _unavailable("The recorder stored no client or global metrics for this run.")


def _inversion(inversion: TriggerInversionReport, rule: ConsensusRule | None = None) -> str:
    """The trigger inversion section: the verdict on the model, the clean push with what ``rule`` (the audit's,
    default ``ConsensusRule()``) makes of it, the triggers, the probe and the timeline."""
    classes = inversion.classes
    flagged = inversion.flagged_labels
    weak = inversion.result.weak_labels
    model = inversion.model_named
    several = len(flagged) > 1
    # each label beside its own index, strongest first (they were listed in label order beside labels strongest first)
    index = {c.label: c.anomaly_index for c in classes}
    indices = [(f"{label}: " if several else "") + short(index[label], (inversion.result.threshold,)) for label in flagged]
    verdict = (
        f'<div class="note"><b>Backdoor suspected: label{"s" if several else ""} '
        f'{esc(", ".join(map(str, flagged)))}</b> — {"their triggers, which send" if several else "its trigger, which sends"} '
        "held-out inputs there, "
        f"{'are outliers' if several else 'is an outlier'} on the small side of the labels' trigger sizes (anomaly index "
        f'{esc(", ".join(indices))}, flagged above {inversion.result.threshold:g}).'
        + (
            f" Weak for label{'s' if len(weak) > 1 else ''} {esc(', '.join(map(str, weak)))}: an anomaly index "
            f"{esc(inversion.result.weak_meaning)}."
            if weak
            else ""
        )
        + "</div>"
        if flagged
        else '<p class="muted">No label stands out: every label needs a trigger of similar size.</p>'
        if inversion.result.working_triggers
        else f'<div class="note"><b>No trigger found</b>: no label\'s recovered trigger reached '
        f"{inversion.result.min_success:.0%} attack success on held-out inputs, so there were no triggers to compare: "
        "this says nothing of a backdoor.</div>"
    )
    if inversion.clean_push is not None:
        said = clean_push_said(inversion.clean_push, rule if rule is not None else ConsensusRule())
        verdict += f"<p>{esc(said[0].upper() + said[1:])}.</p>"
    if said := inversion.result.accuracy_said:
        sentence = esc(said[0].upper() + said[1:])
        verdict += f'<div class="note">{sentence}.</div>' if inversion.result.near_chance else f'<p class="muted">{sentence}.</p>'
    parts = [verdict, figure(
        figures.inversion_scores([c.label for c in classes], [c.mask_l1 for c in classes],
                                 [c.anomaly_index for c in classes], [c.flagged for c in classes],
                                 inversion.result.threshold),
        "mask norm and anomaly index per label",
        f"Neural Cleanse on {esc(model)}, {esc(inversion.samples)} clean samples (half to optimise, half to check). "
        "A backdoor target needs a much smaller mask than the other labels: an anomaly index above "
        f"{inversion.result.threshold:g} on the small side (dashed line). Red: flagged.",
    )]
    shown = sorted(classes, key=lambda c: (not c.flagged, c.mask_l1))[:TRIGGER_IMAGES]
    shown.sort(key=lambda c: c.label)
    triggers = [inversion.result.trigger(c.label) for c in shown]
    parts.append(figure(
        figures.trigger_images([c.label for c in shown], [m for m, _ in triggers], [p for _, p in triggers],
                               [c.flagged for c in shown]),
        "recovered trigger masks and patterns",
        "The trigger recovered for each label: where it stamps (mask, white = fully replaced) and what (pattern, "
        "scaled to its own range)." + (f" The {TRIGGER_IMAGES} smallest masks are shown." if len(classes) > TRIGGER_IMAGES else ""),
    ))
    sets = inversion.probe.sets
    parts.append(figure(
        figures.probe_histograms([(p.name, p.histogram, p.target, p.pulled, p.tied) for p in sets]),
        "prediction histograms under each trigger",
        "The model's predictions on the clean samples, then on the same samples stamped with each trigger (the recovered "
        "ones, and the auditor's with its partial variants when given). Red: the label the trigger pulls towards (a "
        "recovered trigger's own label, else the one whose count grew most)"
        + ("; where several grew alike, all of them: a tie, which the title names, pulls to no one of them."
           if any(p.tied for p in sets) else "."),
    ))
    if inversion.timeline:
        points = {
            t.round: [(c.label, c.anomaly_index, c.flagged, c.label in t.result.weak_labels) for c in t.result.classes]
            for t in inversion.timeline
        }
        parts.append(figure(
            figures.inversion_timeline(points), "anomaly index per inverted round",
            "Neural Cleanse on earlier global models: the round from which a label is flagged, and not weakly, dates the "
            f"backdoor. A weak flag (hollow) has an anomaly index {esc(inversion.result.weak_meaning)}: chance can raise it. "
            f"Flagged labels per inverted round: {esc(flagged_per_round(inversion))}.",
        ))
    rows = [[esc(c.label), num(c.mask_l1, ".1f"), num(c.attack_success, ".0%"), short(c.anomaly_index, (inversion.result.threshold,)),
             '<span class="truth">flagged</span>' if c.flagged else '<span class="muted">–</span>'] for c in classes]
    parts.append(table(["label", "mask L1", "attack success (held out)", "anomaly index", "verdict"], rows, numeric=(1, 2, 3)))
    # every label near 100% read as the attack succeeding on every label (a fresh-eyes auditor; the terminal said it)
    parts.append(f'<p class="muted">{esc(TRIGGER_SUCCESS[0].upper() + TRIGGER_SUCCESS[1:])}. A trigger is recovered for '
                 "every label, and each can send most inputs to its label: a backdoor's stands out by its small mask "
                 "(its anomaly index), not by this share.</p>")
    return "".join(parts)


def _detectors(report: AuditReport) -> str:
    rows = []
    for d in report.detectors:
        what = esc(d.summary)
        if not d.applicable:
            flagged = f'<span class="muted">not applicable: {esc(d.note)}</span>'
        else:
            flagged = _ids(d.flagged, most=HTML_LISTED) or '<span class="muted">none</span>'
        first = ", ".join(
            f'<span class="id">{esc(c)}</span>: {esc(d.first_flagged.get(c, "run-level"))}' for c in d.flagged[:HTML_LISTED]
        ) + (f" and {len(d.flagged) - HTML_LISTED} more" if len(d.flagged) > HTML_LISTED else "") or "–"
        kind = [("corroborates only" if not d.standalone else ""), ("label mix" if d.label_mix else ""),
                ("large data" if d.large_data else "")]
        tags = ", ".join(k for k in kind if k)
        family = esc(d.family or d.name) + (f'<br><span class="muted">{esc(tags)}</span>' if tags else "")
        rows.append([f"<b>{esc(d.name)}</b><br><span class=\"muted\">{what}</span>", family, esc(d.reference),
                     num(d.threshold, "g"), flagged, first])
    given = report.settings.describe()
    told = f"<p>Parameters set: {esc(given)} (the others are the defaults: docs/detectors.md).</p>" if given else ""
    legend = (
        f"<p class=\"muted\">First flagged: {esc(FIRST_FLAGGED_MEANING)}. "
        'Family: the kind of evidence; the verdict counts agreeing families, not detectors. '
        f"<em>corroborates only</em>: {CORROBORATES_MEANING}; <em>label mix</em>: an honest client with an "
        "unusual mix of labels reaches it too; <em>large data</em>: so does one with far more data than the others "
        "(the verdict rule in the summary says how each counts).</p>"
    )
    return told + legend + table(["detector", "family", "source", "threshold", "flagged", "first flagged (round)"], rows, numeric=(3,))


def render_html(report: AuditReport) -> str:
    """The audit report as one self-contained HTML document; names longer than a recorder writes, cut
    (:func:`~.escapes.long_names`)."""
    with long_names(run_names(report.summary, (v.client for v in report.verdicts))):
        return _render_html(report)


def _render_html(report: AuditReport) -> str:
    deviation = report.detector("layer-deviation")
    parts = [
        ("summary", "Summary", "Summary", _summary(report),
         "What the audit concluded, and the run it looked at."),
        ("verdicts", "Verdicts", "Verdicts and evidence", _verdicts(report),
         "Every client, strongest suspects first, with what each detector that flagged it saw, where and when."),
        ("localization", "Localization", "Where the anomaly lives, and when", _localization(report, deviation),
         "Bilgin (2021): how strongly each layer slice (weights and bias, max |Δ| and L2 norm) separates clients, round by round."),
        ("timeline", "Timeline", "The most separating slice, per client", _timeline(report, deviation), ""),
        ("norms", "Norms", "Update norms", _norms(report), "The L2 norm of every client's update, round by round."),
        ("similarity", "Similarity", "Who sent similar updates", _similarity(report),
         "FLAME (Nguyen et al. 2022): cosine distances between the clients' updates accumulated over the run."),
        ("metrics", "Metrics", "Metrics over rounds", _metrics(report), ""),
        *(
            [("inversion", "Trigger inversion", "Trigger inversion", _inversion(report.trigger_inversion, report.rule),
              f"Neural Cleanse (Wang et al. 2019) on {report.trigger_inversion.model_named}: for every label, the smallest trigger that "
              "sends clean inputs of other labels to it.")]
            if report.trigger_inversion is not None
            else []
        ),
        ("detectors", "Detectors", "Detectors", _detectors(report),
         "Each detector's source, threshold, the clients it flagged and the first round at which it could have."),
    ]
    sections = [(anchor, toc, section(anchor, title, body, lead)) for anchor, toc, title, body, lead in parts]
    counts = report.counts
    subtitle = esc(
        f"{report.summary.rounds} rounds · {report.summary.distinct_clients} clients · "
        f"{counts['malicious']} malicious · {counts['suspicious']} suspicious · {counts['benign']} benign"
    )
    return page(f"Audit of {Path(report.summary.path).name}", subtitle, sections, "fedforensics audit report")


def write_html(report: AuditReport, path: str | os.PathLike[str]) -> None:
    """Write the HTML report to ``path`` (complete or absent, never half-written)."""
    write_atomic(path, render_html(report))
