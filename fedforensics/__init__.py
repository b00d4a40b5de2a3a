"""fedforensics: audit a recorded federated-learning run for malicious clients.

>>> from fedforensics import open_run
>>> from fedforensics.analysis import analyze                       # every detector, then the verdicts
>>> from fedforensics.evaluate import evaluate_report               # detectors and verdicts against the truth
>>> from fedforensics.report.json import report_to_json             # the JSON of `fedforensics analyze --json`
>>> with open_run("run.h5") as run:                                 # doctest: +SKIP
...     report = analyze(run)                                       # report.verdicts, report.detector("norm")
...     evaluation = evaluate_report(report, run.ground_truth)      # .judgements: precision, recall, f1, auroc
>>> data = report_to_json(report)                                   # doctest: +SKIP

The audit the command line runs (its notes on trigger inversion too) is ``fedforensics.audit.run_audit``; the
reader's methods are in ``help(fedforensics.run.Run)``, writing a detector in docs/detectors.md.

The names below are loaded on first use (PEP 562): importing the package costs nothing, so that the command
line can take Ctrl-C from its first moment (h5py and numpy load in its own guarded imports).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .errors import FedForensicsError, RunFormatError
    from .run import Layer, Run, open_run

__all__ = ["FedForensicsError", "Layer", "Run", "RunFormatError", "__version__", "open_run"]


def __getattr__(name: str) -> Any:
    if name in ("Layer", "Run", "open_run"):
        from . import run

        return getattr(run, name)
    if name in ("FedForensicsError", "RunFormatError"):
        from . import errors

        return getattr(errors, name)
    if name == "__version__":
        from recorder import __version__

        return __version__
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
