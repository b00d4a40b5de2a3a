"""Detectors judged against ground truth (``fedforensics evaluate``; schema: ``docs/report-schema.md``).

For every detector and for the consensus verdict (``malicious`` or
``suspicious`` counts as positive): the confusion counts, precision, recall,
F1, false-positive rate, the AUROC of the scores, and the round in which each
true attacker was first flagged; per run and pooled over runs (confusion
counts summed, AUROC over every client score of every run).
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from recorder import __version__

from .analysis import AuditReport, analyze
from .audit import SCANNING, AuditOptions, run_audit
from .client_ids import spelled_alike
from .errors import FedForensicsError
from .json_values import json_float
from .run import open_run
from .scan import Progress
from .settings import Settings
from .stats import auroc
from .verdict import VERDICTS

EVALUATION_FORMAT = "fedforensics-evaluation"
EVALUATION_VERSION = 1
#: The name under which the consensus verdict is judged beside the detectors.
CONSENSUS = "consensus"
#: The largest truth file read, in bytes: ids of at most 1,024 characters (recorder.NAME_MAX_LENGTH), for far more
#: clients than a federation has; ``--truth /dev/zero`` read until the kernel killed the command.
TRUTH_MAX_BYTES = 64 * 2**20
POSITIVE_VERDICTS = ("malicious", "suspicious")


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def json_rate(value: float | None) -> float | None:
    """A rate in [0, 1] for the JSON: rounded to 6 decimals, but unrounded where rounding would make an imperfect
    rate perfect or a nonzero one zero (a red-team review: a pooled AUROC of 0.999999875, one tie among 4 million
    pairs, was written 1.0 while the terminal printed 0.9999999)."""
    rounded = json_float(value)
    return value if rounded in (0.0, 1.0) and rounded != value else rounded


@dataclass
class Detection:
    """Whether one true attacker was flagged, and when first (``round`` is None: never, or flagged only on a
    statistic of the whole run, which has no round)."""

    run: int
    client: str
    round: int | None
    flagged: bool


@dataclass
class Judgement:
    """How well one detector (or the consensus) told the true attackers from the honest clients."""

    name: str
    applicable: bool
    runs: int
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0
    auroc: float | None = None
    detections: list[Detection] = field(default_factory=list)
    #: The detector's own remark on the run (``DetectorResult.note``): why it did not apply, or what it skipped.
    note: str = ""
    #: Every client's score with its truth label, kept for pooling (not written to JSON).
    samples: list[tuple[float, bool]] = field(default_factory=list, repr=False)

    @property
    def precision(self) -> float | None:
        """Flagged attackers over flagged clients; ``None`` when nothing was flagged."""
        return _ratio(self.tp, self.tp + self.fp)

    @property
    def recall(self) -> float | None:
        """Flagged attackers over attackers; ``None`` without attackers."""
        return _ratio(self.tp, self.tp + self.fn)

    @property
    def f1(self) -> float | None:
        """2·TP / (2·TP + FP + FN), the harmonic mean of precision and recall; ``None`` with no attacker and nothing flagged."""
        return _ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn)

    @property
    def fpr(self) -> float | None:
        """Flagged honest clients over honest clients; ``None`` without honest clients."""
        return _ratio(self.fp, self.fp + self.tn)

    @property
    def detected(self) -> int:
        """How many attackers were flagged."""
        return sum(d.flagged for d in self.detections)

    @property
    def scored(self) -> int:
        """How many clients it gave a score (the others rank lowest in its AUROC: a detector that could not score
        the attackers reads as one that ranks them last)."""
        return sum(not math.isnan(s) for s, _ in self.samples)

    @property
    def unscored_attackers(self) -> int:
        """How many of the clients it gave no score are true attackers."""
        return sum(truth for score, truth in self.samples if math.isnan(score))

    @property
    def median_first_round(self) -> float | None:
        """The median round at which the flagged attackers were first flagged; ``None`` when none has a round."""
        rounds = [d.round for d in self.detections if d.round is not None]
        return float(statistics.median(rounds)) if rounds else None

    def to_json(self) -> dict[str, Any]:
        """This judgement as plain JSON data (docs/report-schema.md, "Evaluation report")."""
        return {
            "name": self.name,
            "applicable": self.applicable,
            "runs": self.runs,
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
            "tn": self.tn,
            "precision": json_rate(self.precision),
            "recall": json_rate(self.recall),
            "f1": json_rate(self.f1),
            "fpr": json_rate(self.fpr),
            "auroc": json_rate(self.auroc),
            "scored": self.scored,
            "note": self.note,
            "attackers": len(self.detections),
            "detected": self.detected,
            "median_first_round": self.median_first_round,
            "first_flagged": [
                {"run": d.run, "client": d.client, "flagged": d.flagged, "round": d.round} for d in self.detections
            ],
        }


def judge(
    name: str,
    run: int,
    scores: dict[str, float],
    flagged: set[str],
    first: dict[str, int],
    clients: Sequence[str],
    attackers: set[str],
) -> Judgement:
    """Judge one set of flags and scores over ``clients`` against the true ``attackers``."""
    j = Judgement(name, True, 1)
    for cid in clients:
        positive, truth = cid in flagged, cid in attackers
        j.tp += positive and truth
        j.fp += positive and not truth
        j.fn += truth and not positive
        j.tn += not truth and not positive
        j.samples.append((scores.get(cid, math.nan), truth))
    j.auroc = _auroc(j.samples)
    j.detections = [
        Detection(run, cid, first.get(cid) if cid in flagged else None, cid in flagged) for cid in clients if cid in attackers
    ]
    return j


def _auroc(samples: list[tuple[float, bool]]) -> float | None:
    return auroc(np.array([s for s, _ in samples]), np.array([t for _, t in samples])) if samples else None


@dataclass
class RunEvaluation:
    """Every detector and the consensus, judged on one run."""

    index: int
    path: str
    truth_source: str
    clients: list[str]
    attackers: list[str]
    absent_attackers: list[str]
    judgements: list[Judgement]
    finished: bool | None = None  # False: the recorder never closed the run (later rounds may be missing)
    recovered: bool = False  # the writer stopped mid-round: read as of its last committed round
    spelled_alike: dict[str, str] = field(default_factory=dict)  # an absent truth id → the run's client spelled alike
    damaged: list[str] = field(default_factory=list)  # malformed parts of the file the audit could not read

    @property
    def cut_short(self) -> str:
        """Why the run may lack its last rounds, in words ("" when nothing says so)."""
        if self.recovered:
            return "recovered: the writer stopped mid-round; read as of its last committed round"
        if self.finished is False:
            return "unfinished: the recorder never closed it; later rounds may be missing"
        return ""

    def to_json(self) -> dict[str, Any]:
        """This run's evaluation as plain JSON data (docs/report-schema.md, "Evaluation report")."""
        return {
            "path": self.path,
            "truth_source": self.truth_source,
            "clients": len(self.clients),
            "attackers": self.attackers,
            "absent_attackers": self.absent_attackers,
            "spelled_alike": self.spelled_alike,
            "finished": self.finished,
            "recovered": self.recovered,
            "damaged": self.damaged,
            "judgements": [j.to_json() for j in self.judgements],
        }


def consensus_score(verdict: str, score: float) -> float:
    """The consensus's score of a client: its verdict first, then its score, as the report ranks clients
    (a summed score alone can put a benign client with several sub-threshold strengths above a malicious
    one). One number on one scale for every run, so that pooled runs are ranked together: a client's
    place within its own run would put a benign client of a large run above a malicious one of a small
    run. Clients of the same verdict and score tie, and ties count half. An infinite score (``--set
    verdict.cap=inf``) takes the verdict's top, not NaN (review: it ranked a malicious client lowest)."""
    within = math.copysign(0.5, score) if math.isinf(score) else 0.5 * score / (1 + abs(score))
    return (len(VERDICTS) - 1 - VERDICTS.index(verdict)) + within


def evaluate_report(report: AuditReport, truth: Sequence[str | int] | None, *, index: int = 0, truth_source: str = "run") -> RunEvaluation:
    """Judge an audit's detectors and verdicts against the true malicious client ids ``truth``
    (str or int, as the recorder takes them); ``None`` (``run.ground_truth`` of a run that records none, as the
    package's example passes it) is refused in one line, not with a TypeError (a red-team review)."""
    if truth is None:
        raise FedForensicsError(
            f"{report.summary.path} records no ground truth: give the malicious client ids (an empty list for none)"
        )
    if isinstance(truth, (str, bytes)):
        raise FedForensicsError("truth: give a list of client ids, not one string")
    truth = [str(c) for c in truth]
    clients = [v.client for v in report.verdicts]
    present = set(clients)
    attackers = {c for c in truth if c in present}
    judgements = []
    for result in report.detectors:
        if not result.applicable:
            judgements.append(Judgement(result.name, False, 0, note=result.note))
            continue
        judged = judge(result.name, index, result.scores, set(result.flagged), result.first_flagged, clients, attackers)
        judged.note = result.note
        judgements.append(judged)
    # the round the verdict rule would first have judged it so (a corroborating detector's earlier flag judges no one)
    first = {v.client: v.first_round for v in report.verdicts if v.first_round is not None}
    flagged = {v.client for v in report.verdicts if v.verdict in POSITIVE_VERDICTS}
    scores = {v.client: consensus_score(v.verdict, v.score) for v in report.verdicts}
    # a run no client took part in judges nobody: not "applicable" over 0 clients (a fresh-eyes user)
    judgements.append(
        judge(CONSENSUS, index, scores, flagged, first, clients, attackers) if clients
        else Judgement(CONSENSUS, False, 0, note="no client took part in the run")
    )
    absent = [c for c in dict.fromkeys(truth) if c not in present]
    return RunEvaluation(
        index, report.summary.path, truth_source, clients, [c for c in clients if c in attackers], absent, judgements,
        report.summary.finished, report.summary.recovered, spelled_alike(absent, [c for c in clients if c not in attackers]),
        list(report.summary.damaged),
    )


def pool(runs: Sequence[RunEvaluation]) -> list[Judgement]:
    """Each detector and the consensus pooled over ``runs``: counts summed, AUROC over all client scores."""
    names = list(dict.fromkeys(j.name for run in runs for j in run.judgements))
    pooled = []
    for name in names:
        parts = [j for run in runs for j in run.judgements if j.name == name and j.applicable]
        total = Judgement(name, bool(parts), len(parts))
        for j in parts:
            total.tp, total.fp, total.fn, total.tn = total.tp + j.tp, total.fp + j.fp, total.fn + j.fn, total.tn + j.tn
            total.samples.extend(j.samples)
            total.detections.extend(j.detections)
        total.auroc = _auroc(total.samples)
        pooled.append(total)
    return pooled


@dataclass
class Evaluation:
    """Runs judged one by one, and pooled."""

    runs: list[RunEvaluation]
    pooled: list[Judgement]
    settings: Settings = field(default_factory=Settings)
    #: The model factory each run was audited with (trigger inversion and the clean push), ``None``: without one.
    model: str | None = None

    @property
    def clients(self) -> int:
        """How many clients the runs hold together (a client of two runs counted in each)."""
        return sum(len(run.clients) for run in self.runs)

    @property
    def attackers(self) -> int:
        """How many of them are true attackers."""
        return sum(len(run.attackers) for run in self.runs)

    def to_json(self) -> dict[str, Any]:
        """The whole evaluation as plain JSON data, what `fedforensics evaluate --json` writes
        (docs/report-schema.md, "Evaluation report")."""
        return {
            "format": EVALUATION_FORMAT,
            "version": EVALUATION_VERSION,
            "fedforensics_version": __version__,
            "settings": self.settings.to_json(),
            "model": self.model,
            "runs": [run.to_json() for run in self.runs],
            "pooled": {
                "runs": len(self.runs),
                "clients": self.clients,
                "attackers": self.attackers,
                "judgements": [j.to_json() for j in self.pooled],
            },
        }


def read_truth(path: Path) -> list[str]:
    """Malicious client ids from a text file: one per line (surrounding whitespace, blank lines and a
    byte-order mark ignored), or, in a ``.json`` file, a list of ids taken exactly as written (for ids
    that begin or end with a space, or hold a line break)."""
    return _read_truth(path)[0]


def _read_truth(path: Path) -> tuple[list[str], str]:
    """:func:`read_truth`'s ids and the text they were read from (read once: ``/dev/stdin`` or a pipe has no
    second reading)."""
    try:
        with path.open("rb") as file:
            data = file.read(TRUTH_MAX_BYTES + 1)
        if len(data) > TRUTH_MAX_BYTES:
            raise FedForensicsError(f"the truth file {path} holds more than {TRUTH_MAX_BYTES >> 20} MiB: not client ids")
        text = data.decode("utf-8-sig")  # Windows editors start UTF-8 files with a BOM
        text = text.replace("\r\n", "\n").replace("\r", "\n")  # as a file read as text reads its line ends
    except FileNotFoundError as exc:  # "--truth c7" gave an id where a file goes (a fresh-eyes Flower user)
        raise FedForensicsError(
            f"cannot read the truth file {path}: {exc.strerror or exc} (--truth takes a file of malicious ids, one per "
            f"line: printf '%s\\n' ID ... > truth.txt)"
        ) from None
    except OSError as exc:
        raise FedForensicsError(f"cannot read the truth file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise FedForensicsError(f"cannot read the truth file {path}: not UTF-8 text (one client id per line)") from None
    if path.suffix.lower() != ".json":
        # lines end at \n (\r\n and \r read as \n): str.splitlines also broke them at U+2028, \x1c, \x85...
        return _distinct([line.strip() for line in text.split("\n") if line.strip()], path), text
    try:
        ids = json.loads(text)
    except ValueError as exc:
        raise FedForensicsError(f"cannot read the truth file {path}: not JSON ({exc})") from None
    if not isinstance(ids, list) or not all(isinstance(c, str) or (isinstance(c, int) and not isinstance(c, bool)) for c in ids):
        raise FedForensicsError(f"the truth file {path} is not a JSON list of client ids (strings or integers)")
    return _distinct([str(c) for c in ids], path), text


def _check_unstripped(path: Path, text: str, clients: set[str]) -> None:
    """Refuse a truth text file (its ``text``) a line of which, read without its surrounding whitespace, names
    another client than the line as written: the run has both ``c1`` and ``c1 ``, and the line ``c1 `` would mark
    the honest ``c1`` (a fresh-eyes user). A .json list is taken exactly already. Reading the file again skipped
    the check for ``--truth /dev/stdin`` (a red-team review: the honest ``c1`` was marked)."""
    if path.suffix.lower() == ".json":
        return
    for line in text.split("\n"):
        if line != line.strip() and line in clients:
            raise FedForensicsError(
                f"the truth file {path} has the line {line!r}, read as {line.strip()!r} (surrounding whitespace is "
                f"ignored), but a run has a client {line!r}: give ids that begin or end with a space in a .json list"
            )


def _distinct(ids: list[str], path: Path) -> list[str]:
    """``ids``, refused when one is listed twice (as the recorder refuses a repeated ground-truth id)."""
    seen: set[str] = set()
    for cid in ids:
        if cid in seen:
            raise FedForensicsError(f"the truth file {path} lists client {cid!r} twice")
        seen.add(cid)
    return ids


def _recorded_truth(path: Path, truth: list[str] | None) -> list[str]:
    """The ground truth recorded in the run at ``path``; an error when it has none."""
    if truth is None:
        raise FedForensicsError(
            f"{path} records no ground truth: give --truth FILE (the malicious client ids, one per line; "
            "an empty file for a federation without attackers; it replaces the recorded truth of every run given, "
            "so evaluate such a run on its own)"
        )
    return truth


def _identity(path: Path) -> object:
    """What makes two paths one file: its device and inode (a hard link or a symlink is the same run)."""
    try:
        stat = path.stat()
    except OSError:  # open_run names the problem
        return path.resolve()
    return stat.st_dev, stat.st_ino


def evaluate_runs(
    paths: Sequence[Path],
    truth_file: Path | None = None,
    progress: Progress | None = None,
    settings: Settings | None = None,
    detectors: Sequence[str] | None = None,
    model: str | None = None,
    data: Path | None = None,
) -> Evaluation:
    """Audit every run and judge it against its recorded ground truth, or against ``truth_file`` for all;
    ``settings``: the detectors' and the verdict rule's parameters (default: theirs); ``detectors``: the names of
    the detectors to run (default: every registered one; the consensus rests on them alone); ``progress``: rounds
    scanned of all the runs' rounds. ``model`` (``MODULE:CALLABLE``) audits each run as ``analyze --model`` does:
    trigger inversion on its final model, with ``data`` or the run's clean data, and the clean push toward a
    flagged label beside the verdicts (docs/detectors.md, step 5)."""
    settings = settings or Settings()
    first: dict[object, Path] = {}
    for path in map(Path, paths):
        same = _identity(path)
        if same in first:
            raise FedForensicsError(f"{path} is given twice (as {first[same]}): its clients would count twice")
        first[same] = path
    for detector in settings.build_detectors(detectors):  # refuse bad names and parameters before any run is read
        detector.check_params()
    rule = settings.build_rule()
    if model is None:
        settings.refuse_push_settings("in an evaluation without --model")
        if data is not None:
            raise FedForensicsError("--data needs --model (the clean samples are trigger inversion's)")
    options = AuditOptions(detectors=list(detectors) if detectors else None, model=model, data=data, settings=settings)
    shared, text = _read_truth(truth_file) if truth_file is not None else (None, "")
    truths, sizes, seen = [], [], set()
    for path in paths:  # every run checked before the long work
        with open_run(path) as run, run.guarded():
            sizes.append(len(run.rounds))
            truths.append((shared, str(truth_file)) if shared is not None else (_recorded_truth(path, run.ground_truth), "run"))
            seen.update(run.all_clients if shared else ())
            if model is not None:
                from .inversion.plan import plan_inversion  # torch: only with a model

                plan_inversion(run, options)  # a model or clean data unusable for this run fails before the long work
    if shared is not None:
        _check_unstripped(truth_file, text, seen)
    if shared and seen.isdisjoint(shared):
        listed = ", ".join(repr(c) for c in shared[:3]) + (f" and {len(shared) - 3} more" if len(shared) > 3 else "")
        alike = list(spelled_alike(shared[:3], sorted(seen)).items())[:1]
        hint = "".join(f" ({theirs!r} is spelled alike)" for _, theirs in alike)
        raise FedForensicsError(
            f"the truth file {truth_file} names {listed}, no client of {'any run' if len(paths) > 1 else 'the run'} given{hint}: "
            "one client id per line as the run spells it (fedforensics inspect lists them), or a .json list"
        )
    runs = []
    for i, (path, (truth, source)) in enumerate(zip(paths, truths)):
        done = sum(sizes[:i])
        scanned = (lambda r, _, done=done: progress(done + r, sum(sizes))) if progress is not None else None
        if model is not None:  # as analyze --model audits it; only the scan counts in ``progress``
            report = run_audit(path, options, lambda stage: nullcontext(scanned if stage == SCANNING else _idle))
        else:
            with open_run(path) as run, run.guarded():
                report = analyze(run, settings.build_detectors(detectors), rule, progress=scanned)
        runs.append(evaluate_report(report, truth, index=i, truth_source=source))
    return Evaluation(runs, pool(runs), settings, model)


def _idle(done: int, total: int) -> None:
    """The progress of the stages ``evaluate`` does not count (trigger inversion, the clean push)."""
