"""Facts about a run that every report starts with (what ``fedforensics inspect`` shows)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from recorder import spec

from .errors import RunFormatError
from .run import Run

SUMMARY_FORMAT = "fedforensics-run-summary"
"""The ``format`` of ``fedforensics inspect --json`` (docs/report-schema.md)."""
SUMMARY_VERSION = 1


@dataclass
class LayerFacts:
    """One layer as the run file declares it (``parameters``: its size; ``analysable``: whether the detectors read it)."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    parameters: int
    analysable: bool


@dataclass
class RunSummary:
    """What a run holds, computed from the file alone (no analysis)."""

    path: str
    format_version: int
    recorder_version: str
    created: str
    meta: dict[str, Any]
    rounds: int
    first_round: int | None
    last_round: int | None
    clients_per_round: dict[str, float]  # min, max (integers), median
    distinct_clients: int
    layers: list[LayerFacts]
    parameters: int
    file_size: int
    compression: str
    client_metrics: list[str]
    global_metrics: list[str]
    ground_truth: list[str] | None
    failures: int
    nonfinite_updates: dict[str, int] = field(default_factory=dict)  # "round:client" -> NaN/Inf count
    final_state: bool = False
    attachments: list[str] = field(default_factory=list)
    recovered: bool = False
    finished: bool | None = None
    writing: bool = False  # a writer held the file as it was summarised: a run still being recorded
    failed_replies: dict[str, dict[str, str]] = field(default_factory=dict)  # client -> round -> reason, on one line
    #: failed id that is a Flower node's (it failed before its client named itself) -> the client id(s) it reported
    failed_nodes: dict[str, list[str]] = field(default_factory=dict)
    damaged: list[str] = field(default_factory=list)  # malformed parts an audit does not read (Run.damaged_parts)

    def to_json(self) -> dict[str, Any]:
        """The facts, as the audit report's ``run`` field holds them."""
        return asdict(self)

    def to_document(self) -> dict[str, Any]:
        """The facts as a report of their own (``inspect --json``): with its ``format`` and ``version``."""
        return {"format": SUMMARY_FORMAT, "version": SUMMARY_VERSION, **self.to_json()}


def summarize(run: Run) -> RunSummary:
    """Collect the facts of ``run``; reads only ids, counts and metric names (no updates)."""
    sizes: list[int] = []
    client_metrics: set[str] = set()
    global_metrics: set[str] = set()
    nonfinite: dict[str, int] = {}
    failures = 0
    failed: dict[str, dict[str, str]] = {}
    for r in run.rounds:
        sizes.append(len(run.clients(r)))
        client_metrics.update(run.metric_names(r))
        global_metrics.update(run.global_metrics(r))
        for cid, reason in run.failures(r).items():
            failures += 1
            failed.setdefault(cid, {})[str(r)] = _one_line(reason)
        for cid, count in run.nonfinite(r).items():
            if count:
                nonfinite[f"{r}:{cid}"] = count
    damaged = run.damaged_parts()
    return RunSummary(
        path=str(run.path),
        format_version=run.format_version,
        recorder_version=run.recorder_version,
        created=run.created,
        meta=run.sound_meta,
        rounds=len(run.rounds),
        first_round=run.rounds[0] if run.rounds else None,
        last_round=run.rounds[-1] if run.rounds else None,
        clients_per_round={
            "min": min(sizes, default=0),
            "median": float(np.median(sizes)) if sizes else 0.0,
            "max": max(sizes, default=0),
        },
        distinct_clients=len(run.all_clients),
        layers=[LayerFacts(l.name, l.shape, str(l.dtype), l.size, l.analysable) for l in run.layers],
        parameters=sum(l.size for l in run.layers),
        file_size=run.file_size,
        compression=run.compression,
        client_metrics=sorted(client_metrics),
        global_metrics=sorted(global_metrics),
        ground_truth=run.ground_truth,
        failures=failures,
        nonfinite_updates=nonfinite,
        final_state=run.has_final_state and "final" not in damaged,
        attachments=_attachments(run),
        recovered=run.recovered,
        finished=run.finished,
        writing=run.being_written,
        failed_replies=failed,
        failed_nodes=_failed_nodes(run, failed) if failed and "attachments" not in damaged else {},
        damaged=list(damaged.values()),
    )


def _attachments(run: Run) -> list[str]:
    """The attachments' names; none when ``/attachments`` is no group (``damaged`` names it)."""
    try:
        return run.attachments
    except RunFormatError:
        return []


def _failed_nodes(run: Run, failed: Iterable[str]) -> dict[str, list[str]]:
    """The failed ids that name a Flower node (its node id, or ``node-<node id>``) whose client reported an id of its
    own, each with the id(s) it reported, from the adapter's node tables (docs/flower.md): a client that fails before
    it names itself is recorded under its node id, and the reports showed that bare number. An id a client reported
    itself is not a node's: the adapter gives a node whose id another node reported ``node-<node id>``."""
    reported: dict[int, list[str]] = {}
    for name in (spec.FLOWER_NODE_TABLE, spec.FLOWER_NODE_NAME_TABLE):
        for node, cid in _node_pairs(run, name):
            reported.setdefault(node, []).append(cid)
    named = {cid for ids in reported.values() for cid in ids}
    nodes = {}
    for cid in failed:
        digits = cid.removeprefix("node-")
        if digits.isascii() and digits.isdigit() and str(int(digits)) == digits and (cid != digits or cid not in named):
            ids = [other for other in reported.get(int(digits), []) if other != cid]
            if ids:
                nodes[cid] = ids
    return nodes


def _node_pairs(run: Run, name: str) -> list[tuple[int, str]]:
    """(node id, client id) of the Flower node table ``name`` (numbered ids, or named ones as NUL-padded UTF-8 rows);
    none when the run has no such table or it is not one (a display aid: a malformed table is left unread)."""
    try:
        table = run.attachment(name)
    except (RunFormatError, OSError):
        return []
    if table is None or set(table) != {"client_id", "node_id"}:
        return []
    nodes, ids = table["node_id"], table["client_id"]
    if nodes.ndim != 1 or nodes.dtype.kind not in "iu" or len(ids) != len(nodes) or ids.dtype.kind not in "iu":
        return []
    if ids.ndim == 1 and name == spec.FLOWER_NODE_TABLE:
        return [(int(node), str(int(cid))) for node, cid in zip(nodes, ids)]
    if ids.ndim == 2 and ids.dtype == np.uint8 and name == spec.FLOWER_NODE_NAME_TABLE:
        return [(int(node), bytes(row).rstrip(b"\0").decode("utf-8", "replace")) for node, row in zip(nodes, ids)]
    return []


def _one_line(reason: str, limit: int = 240) -> str:
    """A failure reason as one line (frameworks wrap the client's error in newlines), at most ``limit`` characters."""
    line = " ".join(reason.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"
