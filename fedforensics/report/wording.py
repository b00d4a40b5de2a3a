"""The wording the terminal, HTML and evaluation reports share: numbers, counts, sizes and the reports' sentences
about a run (its failed replies, a client's closest call, trigger inversion's flags), each written one way for all.

Plain text in, plain text out: each renderer escapes it as its medium needs (:func:`~.page.esc` for the HTML).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..inversion import TriggerInversionReport
    from ..inversion.attribution import CleanPush
    from ..summary import RunSummary
    from ..verdict import ClientVerdict, ConsensusRule

#: What a trigger's attack success in trigger inversion's table counts, as both reports say it.
TRIGGER_SUCCESS = (
    "attack success: the share of the held-out half of the clean samples, those of the other labels, that the "
    "label's trigger sends to it"
)


def failed_rounds(rounds: dict[str, str]) -> str:
    """A client's failed replies, round by round with the recorded reason: "round 3: timeout after 30s" (the
    audit's reports gave the rounds alone, the reasons only in ``inspect`` and the JSON: a fresh-eyes user)."""
    return "; ".join(f"round {r}: {reason}" if reason else f"round {r}" for r, reason in rounds.items())


def closest_call(v: ClientVerdict) -> str:
    """For a client no detector flagged: the detector that came nearest to its threshold, as both reports say it."""
    if v.nearest is None:
        return "no detector could score this client"
    name, value = v.nearest
    # "nearest: sybil at -0.03×" for a client of 2 rounds that 12 of 13 detectors could not score read as if all 13
    # had found it far below their thresholds (a fresh-eyes auditor): a negative strength is the unsuspicious side
    side = " (the unsuspicious side)" if value < 0 else ""
    unscored = sum(s != s for s in v.strengths.values())
    told = f"; {unscored} of {count(len(v.strengths), 'detector')} could not score it" if unscored else ""
    return f"below every threshold; nearest: {name} at {short(value, (1.0,)).replace('-', '−')}× its threshold{side}{told}"


def flagged_per_round(inversion: TriggerInversionReport) -> str:
    """The labels trigger inversion flagged in each inverted round of its timeline, a weak flag marked, as both
    reports say it: "3: none · 5: 7 (weak) · 7: 7"."""
    return " · ".join(
        f"{t.round}: "
        + (", ".join(f"{label} (weak)" if label in t.result.weak_labels else str(label) for label in t.result.flagged_labels) or "none")
        for t in inversion.timeline
    )


def clean_push_said(push: CleanPush, rule: ConsensusRule) -> str:
    """Which clients pushed clean inputs toward the flagged label, strongest first, and what ``rule`` makes of it, as
    both reports say it."""
    shown = ", ".join(f"{cid} {num(value)}" for cid, value in push.strongest())
    more = f" (of {len(push.scores)})" if len(push.scores) > len(push.strongest()) else ""
    # the cut-offs, or that they are off: "a high push makes a benign client suspicious" stood under
    # --set verdict.push=inf too (a review)
    judged = (
        f"A client otherwise benign whose push reaches {rule.push:g} while its score without the label-mix detectors "
        f"reaches {rule.push_score:g} is suspicious"
        if rule.judges_push
        else f"The verdict rule takes no push here (push {rule.push:g}, push_score {rule.push_score:g})"
    )
    return (
        f"clean push toward label {push.label}: each client's models on {push.samples} clean inputs of the other labels "
        f"against the global model's, a mean robust z over its rounds; strongest first{more}: {shown or 'no client scored'}. "
        f"{judged}"
    )


def failed_id(cid: str, nodes: dict[str, list[str]]) -> str:
    """A failed reply's id with the client its Flower node named itself as later, where ``nodes`` (the run facts'
    ``failed_nodes``) says: "1720…3 (Flower node of client 1)" (the reports showed the bare node id)."""
    return f"{cid} (Flower node of client {' or '.join(nodes[cid])})" if cid in nodes else cid


def count(n: int, noun: str) -> str:
    """``n`` and ``noun``, plural unless ``n`` is 1 (nouns of this report take an s)."""
    return f"{n:,} {plural(n, noun)}"


def plural(n: int, noun: str) -> str:
    """``noun`` for ``n`` of it: plural unless ``n`` is 1."""
    return f"{noun}{'s' * (n != 1)}"


def num(value: float | None, spec: str = ".2f") -> str:
    """A number for a table cell; an en dash for a missing or NaN one, ∞ for an infinite one (a threshold set to
    never flag, a custom detector's certainty), as the JSON's "inf"."""
    if value is None or math.isnan(value):
        return "–"
    if math.isinf(value):
        return "∞" if value > 0 else "−∞"
    return format(value, spec)


def short(value: float | None, edges: tuple[float, ...] = (), digits: int = 2) -> str:
    """``value`` to ``digits`` decimals, more where fewer would round it onto one of ``edges`` it is not: a
    strength of 0.996 against a threshold at 1 reads 0.996, not 1.00 (a benign client read as flagged), an AUROC
    of 0.9957 not 1.00 (a fresh-eyes user). An en dash for a missing or NaN value, ∞ for an infinite one."""
    text = num(value, f".{digits}f")
    if value is None or not math.isfinite(value):
        return text
    for places in range(digits, 10):
        text = format(value, f".{places}f")
        if all((float(text) == edge) == (value == edge) for edge in edges):
            break
    return text


def rate(value: float | None) -> str:
    """A rate in [0, 1] for a table cell: never an imperfect rate as a perfect one or a small one as none
    (0.997, not 1.00; 0.001, not 0.00: a fresh-eyes user's 1 false positive in 700)."""
    return short(value, (0.0, 1.0))


#: The longest metadata value a page shows whole: a 10 MB string in a run's meta was printed whole in the terminal
#: and the HTML (a review); the JSON report keeps the value as the run holds it.
META_SHOWN = 2_000


def meta_value(value: object, limit: int = META_SHOWN) -> str:
    """A metadata value as the run stores it: a string as it is, anything else as JSON (``null``, ``["a", 1]``,
    not Python's ``None`` and ``['a', 1]``: QA); beyond ``limit`` characters its beginning, and how much is left out."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… [{len(text) - limit:,} more characters: the JSON report and the run file hold it whole]"


def run_names(summary: RunSummary, clients: Iterable[str] = ()) -> list[str]:
    """The names a report of ``summary`` shows (``clients`` and the ids the summary names, its layers, metrics and
    attachments): what :func:`~.escapes.long_names` is given, to show those of another writer's run that are too long
    cut."""
    ids = [key.partition(":")[2] for key in summary.nonfinite_updates]
    ids += [*summary.failed_replies, *(c for named in summary.failed_nodes.values() for c in named)]
    return [*clients, *ids, *(summary.ground_truth or ()), *(layer.name for layer in summary.layers),
            *summary.client_metrics, *summary.global_metrics, *summary.attachments]


def byte_size(n: int) -> str:
    """A file's size for a reader: ``1.4 MiB``."""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(n)


def median_round(value: float | None) -> str:
    """A median of round numbers: whole, or with its half (4.5, not 4 as ``.0f`` rounds it, nor ``1.23456e+06``
    as ``g`` writes a round of a long run); an en dash when there is none."""
    return "–" if value is None or math.isnan(value) else f"{value:.1f}".removesuffix(".0")
