"""The JSON report (schema: ``docs/report-schema.md``)."""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import os
from typing import Any

import numpy as np

from ..analysis import AuditReport
from ..detectors.base import DetectorResult
from ..detectors.round_table import DeferredJSON, rounds_json
from ..json_values import setting_json
from .files import write_atomic

REPORT_FORMAT = "fedforensics-report"
REPORT_VERSION = 1


def finite(value: Any) -> Any:
    """Plain JSON data: NaN and infinities (not valid JSON) become ``null`` and numpy values Python
    ones (a custom detector's extras are naturally numpy), recursively."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    elif isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def report_to_json(report: AuditReport, deferred: bool = False) -> dict[str, Any]:
    """The report as plain JSON-serialisable data. With ``deferred``, each per-round table (detectors' per-round
    scores, norms, timeline, client metrics: most of a long run's report) is a :class:`DeferredJSON` that makes
    its data, for :func:`write_json` to expand one at a time."""
    inversion = report.trigger_inversion

    return finite({
        "format": REPORT_FORMAT,
        "version": REPORT_VERSION,
        "audited": report.audited,
        "fedforensics_version": report.tool_version,
        "run": report.summary.to_json(),
        "verdict_counts": report.counts,
        "rule": {field.name: setting_json(getattr(report.rule, field.name)) for field in dataclasses.fields(report.rule)},
        "settings": report.settings.to_json(),
        "persistence": report.persistence,
        "batchnorm_head": report.batchnorm_head,
        "clients": [v.to_json() for v in report.verdicts],
        "detectors": [_detector_json(report, d, deferred) for d in report.detectors],
        "layers": [
            {
                "name": row["slice"],
                "layer": row["layer"],
                "statistic": row["statistic"],
                "statistic_label": row["statistic_label"],
                "separation": row["separation"],
                "peak_round": row["peak_round"],
                "top_client": row["top_client"],
                "auroc": row["auroc"],
            }
            for row in report.localization
        ],
        "participation": report.participation,
        "global_metrics": {str(r): m for r, m in report.global_metrics.items()},
        "client_metrics": {name: rounds_json(table, deferred) for name, table in report.client_metrics.items()},
        "notes": report.notes,
        "trigger_inversion": inversion.to_json() if inversion is not None else None,
    })


def _detector_json(report: AuditReport, result: DetectorResult, deferred: bool) -> dict[str, Any]:
    """One detector's result; ``layer-deviation``'s localization rows as the report holds them, each with its
    ``auroc`` against the run's truth (docs/report-schema.md: the detector itself never reads the truth)."""
    data = result.to_json(deferred)
    if result.name == "layer-deviation" and "localization" in data["extras"]:
        data["extras"]["localization"] = report.localization
    return data


def write_json(report: AuditReport, path: str | os.PathLike[str]) -> None:
    """Write the JSON report to ``path``, piece by piece: the per-round tables are expanded one at a time
    and never held as one string (at 800 rounds of 200 clients, the report as one string and its
    dictionaries took 500 MB more than the analysis)."""
    encoder = json.JSONEncoder(indent=2, allow_nan=False, default=_expand)
    write_atomic(path, itertools.chain(encoder.iterencode(report_to_json(report, deferred=True)), ["\n"]))


def _expand(deferred: Any) -> Any:
    """A deferred table's data (:func:`report_to_json`), when the encoder reaches it."""
    if not isinstance(deferred, DeferredJSON):
        raise TypeError(f"Object of type {type(deferred).__name__} is not JSON serializable")
    return finite(deferred.make())
