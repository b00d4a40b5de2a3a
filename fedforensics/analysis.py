"""The audit: one pass over the run feeding every detector, then the verdicts."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from recorder import __version__

from .detectors import Detector, DetectorResult, all_detectors
from .detectors.base import FAMILIES, UpdateMotion
from .detectors.history import DIRECTION_MEMORY
from .detectors.round_table import RoundTable
from .data_size import large_data_clients, majority_holder
from .errors import FedForensicsError
from .notes import (
    absent_truth_note,
    broken_model_note,
    copies_note,
    coverage_notes,
    damaged_parts_note,
    diverged_rounds_note,
    idle_note,
    label_mix_note,
    large_data_note,
    majority_weight_note,
    nonfinite_mismatch_note,
    normalization_note,
    persistence_note,
    sketch_note,
    zero_updates_note,
)
from .normalization import after_last_batchnorm, normalized_excess_clients
from .persistence import DeviationPersistence
from .run import Run
from .scan import Progress, scan
from .settings import Settings
from .stats import auroc, in_most_rounds
from .summary import RunSummary, summarize
from .verdict import VERDICTS, ClientVerdict, ConsensusRule, most_diverged

if TYPE_CHECKING:  # torch: only an audit with a model computes one
    from .inversion.attribution import CleanPush


@dataclass
class AuditReport:
    """Everything an audit found; the renderers draw it and compute nothing."""

    summary: RunSummary
    detectors: list[DetectorResult]
    verdicts: list[ClientVerdict]
    rule: ConsensusRule
    participation: dict[str, list[int]]
    global_metrics: dict[int, dict[str, float]]
    client_metrics: dict[str, RoundTable] = field(default_factory=dict)  # metric -> {round: {client: value}}
    trigger_inversion: Any | None = None
    notes: list[str] = field(default_factory=list)
    persistence: float | None = None  # the run's median cosine of DeviationPersistence (None: unmeasured)
    #: The layers after the model's last BatchNorm, whose excess the verdict rule's BatchNorm clause compares (none:
    #: the model has no BatchNorm, and the clause cannot apply).
    batchnorm_head: list[str] = field(default_factory=list)
    settings: Settings = field(default_factory=Settings)  # the parameters that differ from the defaults
    #: When the audit ran (UTC, ISO 8601, to the second) and with which fedforensics: what evidence is dated by.
    audited: str = ""
    tool_version: str = ""

    @property
    def counts(self) -> dict[str, int]:
        """How many clients each verdict has, every verdict present (0 when none)."""
        found = Counter(v.verdict for v in self.verdicts)
        return {verdict: found.get(verdict, 0) for verdict in VERDICTS}

    @property
    def not_benign(self) -> int:
        """How many clients were judged other than benign (suspicious or malicious): those the reports show first."""
        return len(self.verdicts) - self.counts["benign"]

    def detector(self, name: str) -> DetectorResult | None:
        """The result of the detector named ``name``, or ``None`` when it did not run."""
        return next((d for d in self.detectors if d.name == name), None)

    @property
    def corroborating(self) -> set[str]:
        """Detectors whose flags only corroborate: alone they leave a client benign (``Detector.standalone``)."""
        return {d.name for d in self.detectors if not d.standalone}

    @cached_property
    def localization(self) -> list[dict[str, Any]]:
        """Layer slices ranked by how strongly they separate clients (from ``layer-deviation``), each with the
        ``auroc`` of its client scores against the ground truth the run records (``None`` without it).

        The detector never reads the truth: the AUROC is the audit's comparison of its scores with it."""
        result = self.detector("layer-deviation")
        rows = result.extras.get("localization", []) if result is not None else []
        truth = set(self.summary.ground_truth or [])
        return [{**row, "auroc": _slice_auroc(result.statistic_scores[row["slice"]], truth)} for row in rows]

    @property
    def model_finding(self) -> str | None:
        """What trigger inversion concluded about the global model, as one sentence (``None`` if it did not run).

        The verdicts judge clients by their updates; this is the one finding about the model itself,
        so the summaries state it beside the verdict counts: a backdoored model whose every client
        looks benign is the case where it matters most.
        """
        inversion = self.trigger_inversion
        if inversion is None:
            return None
        model = inversion.model_named
        labels = inversion.flagged_labels
        if not labels:
            return f"trigger inversion flags no label of {model}"
        result = inversion.result
        shown = ", ".join(
            f"{label} (anomaly index {inversion.classes[label].anomaly_index:.2f}"
            + (f"; weak: {result.weak_meaning})" if label in result.weak_labels else ")")
            for label in labels
        )  # fmt: skip
        finding = f"trigger inversion suspects a backdoor in {model} toward label{'s' * (len(labels) > 1)} {shown}"
        if all(v.verdict == "benign" for v in self.verdicts):
            finding += "; no client's updates stood out, so who planted it is not identified"
        return finding

    @property
    def output_bias_placement(self) -> dict[str, Any] | None:
        """Where the output layer's bias ranks in the localization table."""
        result = self.detector("layer-deviation")
        return result.extras.get("output_bias") if result is not None else None


def _slice_auroc(scores: Mapping[str, float], truth: set[str]) -> float | None:
    """The AUROC of a layer slice's client scores against ``truth``; ``None`` without truth or when no
    client was scored (a run of 1–2 rounds: all NaN tied would read 0.5, a ranking that is not there)."""
    values = np.array(list(scores.values()), dtype=float)
    if not truth or np.isnan(values).all():
        return None
    return auroc(values, np.array([cid in truth for cid in scores]))


def default_detectors() -> list[Detector]:
    """One instance of every registered detector, with its default parameters."""
    return [cls() for cls in all_detectors().values()]


def analyze(
    run: Run,
    detectors: Iterable[Detector] | None = None,
    rule: ConsensusRule | None = None,
    progress: Progress | None = None,
    direction_memory: int = DIRECTION_MEMORY,
    clean_push: CleanPush | None = None,
) -> AuditReport:
    """Audit ``run``: read each round once, score it with every detector, judge every client.

    ``detectors``: instances to run (default: every registered one at its defaults, :func:`default_detectors`;
    ``[get_detector("norm", threshold=4.5)]`` for some); ``rule``: the verdict rule's parameters (default
    :class:`~fedforensics.verdict.ConsensusRule`); ``progress``: called as ``progress(done, total)`` after each
    round scanned. ``direction_memory`` bounds the bytes the clients' accumulated update
    directions may take; beyond it they are compared through a sketch
    (:class:`~fedforensics.detectors.history.DirectionHistory`), and the report says so. ``clean_push``: each
    client's push toward the label trigger inversion flagged (:func:`~fedforensics.inversion.attribution.clean_push`),
    which can make a benign client suspicious (:meth:`~fedforensics.verdict.ConsensusRule.corroborate`).
    """
    if isinstance(detectors, (str, Detector)):  # one detector, not a list of them: a name would be read letter by letter
        raise FedForensicsError(f"analyze takes a list of detectors: analyze(run, [{detectors!r}]), not one alone")
    # a list of its own: a generator checked below would be spent, and no detector would run (every client benign)
    detectors = default_detectors() if detectors is None else list(detectors)
    rule = ConsensusRule() if rule is None else rule
    if not isinstance(rule, ConsensusRule):  # failed late, as "'str' object has no attribute 'judge'", after the scan
        raise FedForensicsError(f"analyze's rule is a ConsensusRule (ConsensusRule(strong=3)), not {type(rule).__name__}")
    check_inputs(run, detectors)
    for detector in detectors:
        detector.check_params()
    for detector in detectors:
        detector.start(run)
    participation: dict[str, list[int]] = {}
    nonfinite: dict[str, list[int]] = {}
    idle: dict[str, list[int]] = {}  # client -> rounds in which it sent a zero update and claimed no samples
    broken_from: int | None = None  # the first round whose global model held NaN/Inf
    diverged: dict[int, tuple[int, int]] = {}  # rounds whose updates mostly held NaN/Inf → (how many, of how many)
    client_metrics: dict[str, RoundTable] = {}
    sketch_width: int | None = None
    motion = UpdateMotion(run)
    majority_weight: dict[str, list[float]] = {}  # client -> its FedAvg weight share in the rounds it held over half
    large_data: Counter[str] = Counter()  # client -> rounds in which its sample count could explain its update's size
    head = after_last_batchnorm(run.analysable_layers)
    normalized: Counter[str] = Counter()  # client -> rounds in which its update's excess lay before the last BatchNorm
    persistence = DeviationPersistence(run.analysable_layers)
    for data in scan(
        run, progress, direction_memory, directions=any(d.uses_directions for d in detectors),
        max_abs=any(d.reads_max_abs for d in detectors),
    ):
        motion.observe(data)
        holder = majority_holder(data.clients, data.num_samples)
        if holder is not None:
            majority_weight.setdefault(holder[0], []).append(holder[1])
        large_data.update(large_data_clients(data.clients, data.num_samples, data.norms))
        if head:
            normalized.update(
                normalized_excess_clients(data.clients, data.norms, sum(data.layer_sq_norms[name] for name in head))
            )
        for cid in data.clients + data.nonfinite + data.idle:
            participation.setdefault(cid, []).append(data.round)
        for cid in data.idle:
            idle.setdefault(cid, []).append(data.round)
        if data.global_nonfinite:
            broken_from = data.round if broken_from is None else broken_from
        else:
            for cid in data.nonfinite:
                nonfinite.setdefault(cid, []).append(data.round)
            sent = (len(data.nonfinite), len(data.clients) + len(data.nonfinite))  # NaN/Inf updates, of all
            if most_diverged(*sent):
                diverged[data.round] = sent
        for detector in detectors:
            detector.observe(data)
        persistence.observe(data)
        for name, values in data.metrics.items():
            client_metrics.setdefault(name, RoundTable(run.all_clients)).add(data.round, data.index, values)
        sketch_width = data.history.sketch_width if data.history is not None else None
    # every round's, those whose clients all failed included (the scan yields no such round: review)
    global_metrics = {r: metrics for r in run.rounds if (metrics := run.global_metrics(r))}
    results = [motion.judged(detector, detector.finish()) for detector in detectors]
    round_sizes, still = motion.compared, motion.still
    clients = {cid: len(rounds) for cid, rounds in participation.items()}
    # the NaN/Inf updates held against their clients: not those of a round whose updates mostly held them, where the
    # global model they were sent broke their training (PoisonedFL's honest clients were suspicious: a review)
    held = {cid: kept for cid, rounds in nonfinite.items() if (kept := [r for r in rounds if r not in diverged])}
    verdicts = rule.judge(
        clients, results, held, persistence.median, in_most_rounds(large_data, participation),
        in_most_rounds(normalized, participation),
    )
    if clean_push is not None:
        label_mix = {result.name for result in results if result.label_mix}
        verdicts = rule.corroborate(verdicts, clean_push.scores, clean_push.label, label_mix)
    report = AuditReport(
        summarize(run), results, verdicts, rule, participation, global_metrics, client_metrics,
        persistence=persistence.median, batchnorm_head=head, settings=Settings.of(detectors, rule),
        audited=datetime.now(timezone.utc).isoformat(timespec="seconds"), tool_version=__version__,
    )
    idle_replies = Counter(r for rounds in idle.values() for r in rounds)  # round -> its replies left out so
    report.notes.extend(coverage_notes(run, verdicts, results, round_sizes, still, idle_replies))
    for note in (
        label_mix_note(verdicts, results, held),
        large_data_note(verdicts, results, held, large_data, participation),
        normalization_note(verdicts, results, held, normalized, participation, head),
        diverged_rounds_note(diverged),
        majority_weight_note(majority_weight, participation, [
            d.name for d, r in zip(detectors, results) if getattr(d, "grows_with_data", False) and r.applicable
        ]),
        persistence_note(persistence, verdicts, results, rule),
        zero_updates_note(still, len(round_sizes)),
        idle_note(idle),
        copies_note(results),
        absent_truth_note(report.summary.ground_truth, run.all_clients),
        nonfinite_mismatch_note(
            nonfinite, report.summary.nonfinite_updates, broken_from, all(layer.analysable for layer in run.layers)
        ),
        damaged_parts_note(
            run.damaged_parts(), [d.name for d, r in zip(detectors, results) if d.reads_global_model and r.applicable]
        ),
    ):
        if note:
            report.notes.append(note)
    if broken_from is not None:
        report.notes.append(broken_model_note(broken_from, nonfinite))
    if sketch_width is not None:
        report.notes.append(sketch_note(run, sketch_width, [d.name for d in detectors if d.uses_directions]))
    return report


def check_inputs(run: Run, detectors: list[Detector]) -> None:
    """Refuse, with what to give instead, what ``analyze`` cannot take (a notebook's usual slips)."""
    if not isinstance(run, Run):
        raise FedForensicsError(f"analyze takes a Run (fedforensics.open_run(path)), not {type(run).__name__}")
    if not detectors:  # no verdict could rest on anything: every client would read benign
        raise FedForensicsError("no detectors: analyze(run) runs them all, analyze(run, [get_detector(name)]) some")
    seen: set[str] = set()
    for detector in detectors:
        if isinstance(detector, type) and issubclass(detector, Detector):  # the class itself, not an instance of it
            raise FedForensicsError(f"analyze takes Detector instances: {detector.__name__}(), not the class {detector.__name__}")
        if not isinstance(detector, Detector):
            raise FedForensicsError(
                f"analyze takes Detector instances (get_detector({detector!r}) for a registered one), "
                f"not {type(detector).__name__}"
            )
        missing = [a for a in ("name", "reference", "summary", "family") if not isinstance(getattr(detector, a, None), str)]
        if missing:
            raise FedForensicsError(
                f"{type(detector).__name__} lacks the class attribute{'s' * (len(missing) > 1)} {', '.join(missing)} "
                "(docs/detectors.md, 'Writing a detector')"
            )
        if detector.family not in FAMILIES:
            raise FedForensicsError(
                f"{type(detector).__name__}: family {detector.family!r} is none of {', '.join(FAMILIES)}: a verdict "
                "counts each family as independent evidence (docs/detectors.md, step 4)"
            )
        if detector.name in seen:
            raise FedForensicsError(f"two detectors are named {detector.name!r}: a verdict keeps one strength per name")
        seen.add(detector.name)
