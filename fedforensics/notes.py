"""The report's notes: what the verdicts cannot say, and the facts beside them that no detector judges.

Each function returns one sentence (or ``None`` when it has nothing to say) from what the
audit already computed; :func:`fedforensics.analysis.analyze` collects them into
``AuditReport.notes`` and the renderers print them as they are.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Collection, Iterable, Mapping

from .client_ids import spelled_alike
from .data_size import LARGE_DATA
from .detectors import DetectorResult
from .detectors.accumulate import EVIDENCE_ROUNDS
from .persistence import DeviationPersistence
from .run import Run
from .normalization import HEAD_SHARE
from .stats import REFERENCE_CLIENTS, in_most_rounds
from .verdict import VERDICTS, ClientVerdict, ConsensusRule


def broken_model_note(round_number: int, nonfinite: dict[str, list[int]]) -> str:
    """Where NaN/Inf entered the global model, and what that means for the clients' NaN/Inf updates."""
    first = min((rounds[0] for rounds in nonfinite.values()), default=None)
    source = (
        f" (the first NaN/Inf updates came from {', '.join(sorted(c for c, r in nonfinite.items() if r[0] == first))} "
        f"in round {first})"
        if first is not None
        else " (no client's update before it held NaN/Inf: it came from the server or from before the recording)"
    )
    return (
        f"the global model held NaN/Inf from round {round_number} on{source}: every update sent from then on "
        "inherits it, so those updates are not held against their clients and no statistic could compare them"
    )


def diverged_rounds_note(diverged: dict[int, tuple[int, int]]) -> str | None:
    """The rounds whose updates mostly held NaN/Inf (round → how many, of how many: :func:`~.verdict.most_diverged`)
    while the global model they were sent did not, whose NaN/Inf no verdict holds against a client."""
    if not diverged:
        return None
    rounds = listed([f"{r} ({bad} of {n})" for r, (bad, n) in sorted(diverged.items())], what="rounds")
    return (
        f"most clients' updates held NaN/Inf in round{'s' * (len(diverged) > 1)} {rounds}, though the global model they "
        "were sent did not: that model broke their training (weights that training blows up, as a scaled attack "
        "leaves them), so those updates are not held against their clients; the updates of the rounds before show who "
        "sent the model there"
    )


def sketch_note(run: Run, width: int, readers: list[str]) -> str:
    """What comparing the accumulated directions through a sketch costs in precision (``readers``: the detectors
    that compare them)."""
    size = sum(layer.size for layer in run.analysable_layers)
    return (
        f"the {len(run.all_clients)} clients' accumulated update directions ({size:,} parameters each) were compared "
        f"through a {width:,}-wide count sketch to bound memory: their cosines are off by about "
        f"{math.sqrt(2 / width):.3f} ({joined(readers)} {'compares' if len(readers) == 1 else 'compare'} them)"
    )


#: How many items a note names before it counts the rest (a fleet's hundreds of clients are no sentence).
NOTE_ITEMS = 10


def listed(items: Iterable[str], most: int = NOTE_ITEMS, what: str = "") -> str:
    """``items`` comma-separated; past ``most`` of them, how many more (of ``what``, a plural: "1 more client")."""
    items = list(items)
    more = len(items) - most
    what = what[:-1] if more == 1 and what.endswith("s") else what
    return ", ".join(items[:most]) + (f" and {more} more{' ' + what if what else ''}" if more > 0 else "")


def clients_listed(ids: Iterable[str]) -> str:
    """``listed`` client ids as a sentence's subject, "client c3", "clients c3, c5": a bare id read as a count
    ("1 is suspicious on cosine-hdbscan alone", a fresh-eyes auditor)."""
    ids = list(ids)
    return f"client{'s' * (len(ids) > 1)} {listed(ids)}"


def joined(names: list[str], word: str = "and") -> str:
    """Names for a sentence: "a", "a and b", "a, b and c" (or ``word``)."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} {word} {names[-1]}"


def flagged_only_by(
    verdicts: list[ClientVerdict], detectors: set[str], nonfinite: dict[str, list[int]]
) -> list[ClientVerdict]:
    """The non-benign verdicts whose every flag comes from ``detectors`` (none for a NaN/Inf update, nor for a client
    its clean push made suspicious: its flags left it benign, and the notes read them as its verdict's grounds)."""
    return [
        v for v in verdicts
        if v.verdict != "benign" and v.flagged_by and set(v.flagged_by) <= detectors and not nonfinite.get(v.client)
        and not v.made_by_push
    ]


def in_words(verdicts: list[ClientVerdict]) -> str:
    """The verdicts among ``verdicts``, for a sentence: "suspicious", "malicious or suspicious"."""
    return " or ".join(sorted({v.verdict for v in verdicts}, key=VERDICTS.index))


def persistence_note(
    persistence: DeviationPersistence, verdicts: list[ClientVerdict], results: list[DetectorResult], rule: ConsensusRule
) -> str | None:
    """Say so when the clients repeat their differences round after round (:mod:`fedforensics.persistence`): there,
    honest differences do not average out, the verdict rule sets aside one family's flags below ``strong``, and the
    note names the clients it kept benign so and those still flagged."""
    median = persistence.median
    if not rule.persists(median):
        return None
    standalone = {r.name for r in results if r.applicable and r.standalone}
    set_aside = [v for v in verdicts if v.verdict == "benign" and standalone & set(v.flagged_by)]
    # a client suspicious only for a NaN/Inf update has no flag to read as "unlike the others" (review), nor has one
    # its clean push made suspicious: its verdict rests on the push beside flags this rule had set aside (a review)
    flagged = [v.client for v in verdicts if v.verdict != "benign" and v.flagged_by and not v.made_by_push]
    if not set_aside and not flagged:
        return None
    # the label-mix rule only where a detector it concerns ran (it named cosine-hdbscan in an audit without it)
    label_mix = sorted(r.name for r in results if r.applicable and r.standalone and r.label_mix)
    same_data = sorted(r.name for r in results if r.applicable and r.standalone and r.same_data)
    text = (
        f"the clients' differences persist in this run: a client's deviation from the round's median points the same "
        f"way from one round to the next (median cosine {median:.3f} over {persistence.pairs} pairs, "
        # the comparison in words: "at most 0.90, median 0.75, in the demo grid the thresholds were set on" and "the
        # label mix repeated" below were the author's shorthand, which a fresh-eyes auditor could not parse
        f"at least {rule.persistence:g}, where in the demo federations the thresholds were set on it was at most 0.90, "
        "median 0.75), "
        "as when clients train on a few dozen samples each (nearly full-batch) or on strongly skewed label mixes with "
        "few local steps. Honest differences then do not "
        f"average out over the rounds, so {rule.fewer_families} of evidence below {rule.strong:g}× its threshold "
        "is no verdict here"
        + (
            f", and a flag of {joined(label_mix, 'or')}, which an unusual label mix raises every round, counts as no "
            "family: beside another "
            "flag it leaves a client suspicious"
            if label_mix
            else ""
        )
        + (
            f"; a flag of {joined(same_data, 'or')} (near-identical updates, which two honest clients with the same "
            "data, trained near full-batch, send every round too) is not strong alone: without another family it "
            "leaves a client suspicious"
            if same_data
            else ""
        )
        + " (docs/detection.md, 'Tiny shards')"
    )
    if set_aside:
        detectors = sorted({name for v in set_aside for name in v.flagged_by if name in standalone})
        one = len(set_aside) == 1
        text += (
            f": {clients_listed(v.client for v in set_aside)} {'is' if one else 'are'} benign though flagged by "
            f"{joined(detectors, 'or')}"
        )
    if flagged:
        text += (
            # "still": "flagged on more than that" had no referent where no client was left benign (a fresh-eyes auditor)
            f"; {clients_listed(flagged)} {'is' if len(flagged) == 1 else 'are'} still flagged, but an honest client "
            "steadily unlike the others can be too: read the flags as 'unlike the others'"
            + (f" (of {joined(same_data, 'and')}: 'alike another', as the same data make two clients)" if same_data else "")
            + " unless the evidence names an attack"
        )
    return text


def large_data_note(
    verdicts: list[ClientVerdict],
    results: list[DetectorResult],
    nonfinite: dict[str, list[int]],
    large_data: Counter[str],
    participation: dict[str, list[int]],
) -> str | None:
    """Which flagged clients rest only on flags far more data would raise, where their sample counts say they had it.

    With a fixed number of local epochs, a client with k times the data takes k times the SGD steps: a longer
    update, and less SGD noise, so an update nearer the others' mean (quantity skew: docs/detection.md, 'Quantity
    skew'). `norm` and `layer-deviation` compare clients as at the round's median count where most counts differ
    (:mod:`fedforensics.data_size`), which clears most such flags but not all (counts that differ in too few
    clients to give a slope, ``mean-copy``'s nearness to the mean); the auditor is told where the counts and the
    update agree (:func:`large_data_clients`) in more than half of the client's rounds, knowing that a client
    reports its own count.
    """
    explained = {r.name for r in results if r.applicable and r.large_data}
    sized = in_most_rounds(large_data, participation)
    only = [v for v in flagged_only_by(verdicts, explained, nonfinite) if v.client in sized]
    if not only:
        return None
    names = sorted({name for v in only for name in v.flagged_by})
    one = len(only) == 1
    shown = clients_listed(f"{v.client} ({large_data[v.client]} of its {len(participation[v.client])} rounds)" for v in only)
    norm = "its update's norm" if one else "their updates' norms"
    return (
        f"{shown} {'is' if one else 'are'} {in_words(only)} on {joined(names)} alone, "
        f"{'a flag' if len(names) == 1 else 'flags'} a client with far more data than the others raises too, and, in "
        f"the rounds counted, reported at least {LARGE_DATA:g}× the round's median sample count, more times the median "
        f"than {norm}, itself at least the median: with a fixed number of local epochs more data means "
        "more SGD steps, a longer update, and less SGD noise, an update nearer the others' mean, which may be all the "
        "flags show; the counts are the clients' own report (docs/detection.md, 'Quantity skew')"
    )


def normalization_note(
    verdicts: list[ClientVerdict],
    results: list[DetectorResult],
    nonfinite: dict[str, list[int]],
    normalized: Counter[str],
    participation: dict[str, list[int]],
    head: list[str],
) -> str | None:
    """Which flagged clients rest only on magnitude flags where, in most of their rounds, their update was long while
    the layers after the model's last BatchNorm were not (:mod:`fedforensics.normalization`): a step the
    normalization absorbs, which an honest client's last batch of a few samples takes, not a scaled update."""
    magnitude = {r.name for r in results if r.applicable and r.family == "magnitude"}
    only = [v for v in flagged_only_by(verdicts, magnitude, nonfinite) if v.client in in_most_rounds(normalized, participation)]
    if not only:
        return None
    one = len(only) == 1
    shown = clients_listed(f"{v.client} ({normalized[v.client]} of its {len(participation[v.client])} rounds)" for v in only)
    return (
        f"{shown} {'is' if one else 'are'} {in_words(only)} on {joined(sorted({n for v in only for n in v.flagged_by}))} "
        # k defined where it is used: "k > 1 times the round's median length ... at most 0.5·k times theirs" left a
        # reader to guess k and whose "theirs" (a fresh-eyes auditor)
        f"alone, and in the rounds counted {'its update was' if one else 'their updates were'} longer than the "
        f"round's median update, k times its length, while {'its' if one else 'their'} layers after the model's last "
        f"BatchNorm ({listed(head, what='layers')}) were at most {HEAD_SHARE:g}·k times the median length of those "
        "layers: the excess lies in layers a BatchNorm rescales, where an honest client whose last local batch "
        "holds a few samples takes a far longer step, while a scaled update lengthens every layer alike; such flags "
        "make no client malicious alone (docs/detectors.md, step 4)"
    )


def majority_weight_note(
    majority_weight: dict[str, list[float]], participation: dict[str, list[int]], as_reported: list[str]
) -> str | None:
    """Which clients outweighed all the others together in some rounds, on sample counts no detector judges (the
    detectors ``as_reported``, which compare clients as at the round's median count, take them as reported:
    :mod:`fedforensics.data_size`)."""
    if not majority_weight:
        return None
    shown = clients_listed(
        f"{cid} ({len(shares)} of its {len(participation[cid])} rounds, up to {max(shares):.0%})"
        for cid, shares in sorted(majority_weight.items(), key=lambda item: (-len(item[1]), item[0]))
    )
    one = len(majority_weight) == 1
    return (
        f"{shown} carried more than half of the FedAvg weight (the sample count {'it' if one else 'each'} reported, "
        f"against the round's total): there {'its' if one else 'their'} update outweighed all the others together. "
        "Clients report their counts themselves and no detector checks them"
        + (
            f"; {joined(as_reported)} {'takes' if len(as_reported) == 1 else 'take'} them as reported, which excuses "
            "part of a large claimant's update"
            if as_reported
            else ""
        )
        + " (docs/detection.md, 'Weight inflation')"
    )


def label_mix_note(
    verdicts: list[ClientVerdict], results: list[DetectorResult], nonfinite: dict[str, list[int]]
) -> str | None:
    """Which flagged clients rest only on evidence an honest client with an unusual label mix produces too.

    ``cosine-hdbscan`` and ``output-bias`` flag such a client by construction (docs/detectors.md, step 4);
    the verdict rule counts them as one family, and the auditor should know which verdicts stand on it alone.
    ``cosine-hdbscan`` also flagged the smallest honest clients of IID federations with unequal shards (a
    QA check: 3 of 15, with 52–63 % of the median sample count): fewer SGD steps leave a noisier direction; and
    IID clients of equal shards once the model fit the task (session 32: 2 of 60 in six synthetic federations).
    """
    raised_by_mix = {r.name for r in results if r.applicable and r.label_mix}
    # a corroborating flag beside them (training metrics) is set by the same data: the verdict rule counts it with them
    with_corroborating = raised_by_mix | {r.name for r in results if r.applicable and not r.standalone}
    only = [v for v in flagged_only_by(verdicts, with_corroborating, nonfinite) if raised_by_mix & set(v.flagged_by)]
    if not only:
        return None
    names = sorted({name for v in only for name in v.flagged_by})
    one = len(only) == 1
    return (
        f"{clients_listed(v.client for v in only)} {'is' if one else 'are'} {in_words(only)} on {joined(names)} alone, "
        f"{'a flag' if len(names) == 1 else 'flags'} an honest client also reaches when its data hold an unusual mix of "
        "labels (label skew), far fewer samples than the others' (a noisier update) or quirks its updates repeat "
        "round after round once the model fits its task (IID clients of equal shards were so flagged): "
        f"{'its' if one else 'their'} data's label mix and size can confirm or clear {'it' if one else 'them'}, "
        "the rest is evidence to weigh, not proof (docs/detectors.md, step 4; docs/detection.md, 'Where it fails')"
    )


def coverage_notes(
    run: Run, verdicts: list[ClientVerdict], results: list[DetectorResult], round_sizes: dict[int, int],
    still: Collection[int] = (), idle: Mapping[int, int] | None = None,
) -> list[str]:
    """What the verdicts cannot say: an unfinished run, a run without rounds, benign clients no detector
    scored or saw too rarely, rounds too small for any detector to compare or for the thresholds' scale.

    ``benign`` means "below every threshold"; for a client no statistic could compare with
    the others, or seen in too few rounds to accumulate evidence, that is no evidence
    either way, and the report says so. ``round_sizes``: the rounds with an update to compare (the scan
    skips rounds without an update; a round whose every update held NaN or Inf has none) and how many
    clients each could compare; ``still``: the rounds of them in which no update moved (all zero); ``idle``: round →
    its replies of a zero update and no samples, which the scan leaves out (:attr:`~.detectors.round_data.RoundData.idle`).
    """
    unfinished = (
        [
            f"a recorder is still writing {run.path.name}: rounds after the last one here are not in it yet"
            if run.being_written
            else f"the recorder never closed {run.path.name} (the federation crashed, was stopped, or is still running): "
            "rounds after the last one here may be missing"
        ]
        if run.finished is False
        else []
    )
    if not run.rounds:
        return [f"{run.path.name} holds no rounds: there is nothing to audit", *unfinished]
    if not run.analysable_layers:
        return [
            *unfinished,
            f"the model has no floating-point layer (its {len(run.layers)} layer{'s' * (len(run.layers) != 1)} hold "
            "integers only): there are no updates to compare, so 'benign' is no evidence either way",
        ]
    notes = list(unfinished)
    empty: dict[str, list[int]] = {}  # why -> rounds without an update to compare
    idle = idle or {}
    for r in (r for r in run.rounds if r not in round_sizes):
        replies = len(run.clients(r))
        why = (
            "no client was recorded" if not replies and not run.failures(r)
            else "every reply failed" if not replies
            else "every reply sent back the model it was given and claimed no samples" if idle.get(r, 0) == replies
            else "every update held NaN or Inf or came back unchanged with no samples claimed" if idle.get(r)
            else "every update held NaN or Inf"
        )
        empty.setdefault(why, []).append(r)
    for why, rounds in empty.items():
        shown = listed(map(str, rounds))
        notes.append(f"round{'s' * (len(rounds) > 1)} {shown}: {why}, so there was nothing to compare")
    standalone = [r for r in results if r.standalone]  # applicable or not: one that scored no client is not
    if results and not standalone:
        only = listed(r.name for r in results)
        notes.append(
            f"only corroborating detectors were run ({only}): their flags never make a client suspicious alone, so "
            "no verdict rests on them (only an update holding NaN/Inf makes a client suspicious, and none is "
            "malicious); add a standalone detector"
        )
    scored = {r for result in results if result.applicable for r in result.round_scores}
    # rounds of fewer clients than any detector compares
    unseen = sorted(r for r in round_sizes if r not in scored and r not in still)
    if unseen:
        sizes = sorted({round_sizes[r] for r in unseen})
        fewest = min((r.params.get("min_clients", 2) for r in standalone), default=sizes[-1] + 1)
        how = (
            f"; --set norm.min_clients={sizes[0]} and the like compare them, with the heavier tail of a robust z among so few"
            if sizes[0] >= 3 else ""  # a round of one has no other to compare with, two are always one scale apart
        )
        notes.append(
            f"round{'s' * (len(unseen) > 1)} {listed(map(str, unseen))} compared too few clients "
            f"({sizes[0]}{'–' + str(sizes[-1]) if len(sizes) > 1 else ''}; the detectors need at least their "
            f"min_clients, {fewest} here), so no detector scored {'them' if len(unseen) > 1 else 'it'}: what a client "
            f"sent there, however extreme, is no evidence either way{how}"
        )
        if not scored:  # every client's reason: what is said of clients seen too rarely or unscored would mislead
            return notes
    benign = [v for v in verdicts if v.verdict == "benign"]
    # seen in fewer than EVIDENCE_ROUNDS rounds: no mean yet (a detector leaves such a client unscored), so that
    # is the reason, whatever else kept it unscored
    rare = [v for v in benign if v.rounds < EVIDENCE_ROUNDS]
    unscored = [
        v for v in benign
        if v.rounds >= EVIDENCE_ROUNDS and standalone
        and not any(not math.isnan(r.scores.get(v.client, math.nan)) for r in standalone)
    ]
    if unscored:
        moved = set(round_sizes) - set(still)
        why = (
            "each round they took part in had too few clients to compare" if moved
            else "no update moved in any round (see the note on zero updates)" if round_sizes
            else "no round held an update to compare (see the note on the rounds)"
        )
        notes.append(f"{_subject(unscored, verdicts)} could not be scored: {why}, so 'benign' is no evidence either way")
    if rare:
        # a detector's single-round term (its `spike` parameter) is the only evidence one round can give
        spikes = {r.name: r.params.get("spike") for r in results if r.applicable}
        spiking = [f"{name} (spike={spike:g})" for name, spike in spikes.items() if spike is not None and math.isfinite(spike)]
        # never one set; what the value means, so that a reader lowers it to catch more (a fresh-eyes user raised it)
        example = (
            " (e.g. --set norm.spike=20: one round of z 20 or more then flags a client; lower flags more)"
            if "norm" in spikes and spikes["norm"] is None else ""
        )
        one_round = (
            (f"only {listed(spiking)} can flag a client on a single round" if spiking else "no single round, however extreme, flags a client")
            + f", and no other detector unless its spike parameter is set{example} or its min_rounds lowered"
        )
        notes.append(
            f"{_subject(rare, verdicts)} took part in fewer than {EVIDENCE_ROUNDS} rounds, too few to accumulate "
            f"evidence, so 'benign' says little about them: {one_round}"
        )
    small = sorted(n for r, n in round_sizes.items() if r in scored and n < REFERENCE_CLIENTS)
    if small:
        share = f"all {len(small)}" if len(small) == len(scored) else f"{len(small)} of the {len(scored)}"
        notes.append(
            f"{share} rounds compared fewer than {REFERENCE_CLIENTS} clients (as few as "
            f"{small[0]}): a robust z among few clients has a heavier tail, so the z-scores of those rounds are on the "
            f"{REFERENCE_CLIENTS}-client scale the thresholds were set on, and a client there must stand out further to "
            "be flagged (docs/detectors.md, 'Small federations')"
        )
    return notes


def nonfinite_mismatch_note(
    found: dict[str, list[int]], recorded: dict[str, int], broken_from: int | None, every_layer_read: bool
) -> str | None:
    """Updates whose NaN/Inf the run's recorded counts (``"round:client"`` → count, what the run's facts show) do not
    match: found where the counts say none, or counted where none is found (rounds from ``broken_from`` on, whose
    global model held NaN/Inf, aside; and only when ``every_layer_read``: the counts cover the layers the analysis
    leaves out too). The recorder counts them as it writes, so the update changed afterwards (bit rot, an edit, a
    writer other than the recorder), or, for values found, a float64 value beyond float32's range, which the
    analysis reads as ±Inf. The verdicts read the updates themselves."""
    unrecorded = [f"{cid} in round {r}" for cid, rounds in found.items() for r in rounds if f"{r}:{cid}" not in recorded]
    unfound = []
    for key in recorded if every_layer_read else ():
        r, cid = key.split(":", 1)  # a round number, then the id (which may hold ':')
        if (broken_from is None or int(r) < broken_from) and int(r) not in found.get(cid, ()):
            unfound.append(f"{cid} in round {r}")
    parts = []
    if unrecorded:
        parts.append(
            f"the update{'s' * (len(unrecorded) > 1)} of {listed(unrecorded)} hold{'s' * (len(unrecorded) == 1)} NaN/Inf that "
            "the run's recorded counts do not (or float64 values beyond float32's range, which the analysis reads as ±Inf)"
        )
    if unfound:
        parts.append(
            f"the run's recorded counts give NaN/Inf to the update{'s' * (len(unfound) > 1)} of {listed(unfound)}, which "
            f"hold{'s' * (len(unfound) == 1)} none"
        )
    if not parts:
        return None
    return (
        f"{'; '.join(parts)} (the run's facts show those counts): the file changed after it was written, or was written by "
        "another program; the verdicts read the updates as they are"
    )


def damaged_parts_note(damaged: dict[str, str], global_readers: list[str]) -> str | None:
    """Malformed parts of the file no verdict rests on (``Run.damaged_parts``; the run's facts list them too);
    ``global_readers``: the detectors that ran and read the rounds' global models."""
    if not damaged:
        return None
    one = len(global_readers) == 1
    skipped = (
        f"{joined([f'`{name}`' for name in global_readers])} {'leaves' if one else 'leave'} out the rounds whose "
        f"global model {'it' if one else 'they'} cannot read"
        if global_readers
        else ""  # no detector that ran reads them
    )
    unusable = [
        what for part, what in (
            ("global", skipped),
            ("final", "trigger inversion cannot use the final state"),
            ("attachments", "trigger inversion cannot use the attachments"),
        ) if part in damaged and what
    ]
    return (
        f"the file is malformed in parts no verdict rests on ({'; '.join(damaged.values())}): the verdicts stand"
        + "".join(f", but {what}" if i == 0 else f", {what}" for i, what in enumerate(unusable))
        + (", and" if unusable else ", but")
        + " `fedforensics inspect` refuses the file"
    )


def zero_updates_note(still: list[int], compared: int) -> str | None:
    """Rounds in which every compared update was zero (``compared``: the rounds with an update to compare).

    A zero update is what a client sends when it returns the model it was given, or what the trainer
    records when it passes the global model as the client's: no detector can tell such clients apart.
    """
    if not still:
        return None
    if len(still) == compared:
        return (
            "every client update of every round is zero (did the clients return the model they were sent, or the "
            "trainer record the global model as theirs?): there is nothing to compare, so 'benign' is no evidence either way"
        )
    return f"in round{'s' * (len(still) > 1)} {listed(map(str, still))} every client update is zero: nothing to compare there"


def idle_note(idle: dict[str, list[int]]) -> str | None:
    """The clients that sent back the model they were given and claimed no samples (client → those rounds), whom the
    scan leaves out of the rounds' comparisons (:attr:`~.detectors.round_data.RoundData.idle`)."""
    if not idle:
        return None
    replies = sum(len(rounds) for rounds in idle.values())
    return (
        f"{clients_listed(sorted(idle))} sent back the model {'it was' if len(idle) == 1 else 'they were'} given (a zero "
        f"update) and claimed no samples in {replies} repl{'ies' if replies > 1 else 'y'}: nothing to train on, no "
        "change to the model (FedAvg weighs such a reply 0), so those replies were left out of their rounds' comparisons"
    )


def absent_truth_note(truth: list[str] | None, clients: list[str]) -> str | None:
    """The ids the run's recorded ground truth names of which the run holds no update (``clients``: the run's; a
    client recorded only as a failed reply has none), with the client each is spelled alike to: ``fedforensics
    evaluate`` says so, the audit's own truth column did not (a fresh-eyes user's ``["c1", "C2", "ghost"]``)."""
    present, named_by_truth = set(clients), set(truth or [])
    absent = [cid for cid in truth or [] if cid not in present]
    if not absent:
        return None
    alike = spelled_alike(absent, [c for c in clients if c not in named_by_truth])
    named = listed(f"{cid!r}" + (f" ({alike[cid]!r} is spelled alike)" if cid in alike else "") for cid in absent)
    return (
        f"the run's ground truth names {len(absent)} client{'s' * (len(absent) > 1)} of which the run holds no update: "
        f"{named}; the comparisons with the ground truth leave them out"
    )


def copies_note(results: list[DetectorResult]) -> str | None:
    """The groups of clients whose updates pointed the same way in every round (``accumulated-sybil``'s ``copies``:
    copies, or copies rescaled, since directions are compared): all but
    one of each copied, and the one may be an honest client whose update the others copy (the mimic attack,
    Karimireddy et al. 2022), which the log cannot tell from its copiers (a red team's victim was malicious)."""
    groups = next((r.extras.get("copies") for r in results if r.applicable and r.extras.get("copies")), None)
    if not groups:
        return None
    said = "; ".join(listed(group) for group in groups[:NOTE_ITEMS])
    more = f" and {len(groups) - NOTE_ITEMS} more groups" if len(groups) > NOTE_ITEMS else ""
    return (
        f"these clients sent updates of the same direction in every round, copies or rescaled copies of each other, "
        f"group by group: {said}{more}. All but one of each group "
        "copied another's: sybils, or a mimic attack on an honest client whose update the others send (Karimireddy "
        "et al. 2022); which one trained, the updates cannot say, so one member of a group may be judged with copiers "
        "it did not choose (the clients' own records can tell)"
    )


def _subject(some: list[ClientVerdict], every: list[ClientVerdict]) -> str:
    if len(some) == len(every):
        return {1: "the only client", 2: "both clients"}.get(len(some), f"all {len(some)} clients")
    return f"{len(some)} of the {len(every)} clients ({listed(v.client for v in some)}; judged benign)"
