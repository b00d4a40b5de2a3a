"""Record every round of a federation into one HDF5 file, durably.

Needs only numpy and h5py; torch tensors are accepted when torch is installed.

>>> from recorder import Recorder
>>> with Recorder("run.h5", meta={"dataset": "digits"}) as rec:        # doctest: +SKIP
...     for r in range(num_rounds):
...         with rec.round(r, global_state) as rnd:
...             for cid, state, n, metrics in results:
...                 rnd.client(cid, state, num_samples=n, metrics=metrics)
...     rec.final(global_state)
...     rec.ground_truth(malicious=["c3", "c7"])

A round is durable when its ``with`` block exits (or its ``commit()`` returns): a process killed at any moment
leaves a file that opens and holds every round whose block had exited, bit for
bit (see :mod:`recorder.journal`). The file takes its path whole at its creation
commit: killed before it, the recorder leaves no run there, or the run it was to
replace as it was. The layout is documented in ``docs/format.md``
and in :mod:`recorder.spec`.
"""

from __future__ import annotations

__version__ = "0.1.0"  # first: recorder.writer imports it from the package as it loads

from .checks import CLIENT_ID_MAX_LENGTH, NAME_MAX_LENGTH, RecorderError
from .writer import REASON_MAX_LENGTH, Recorder, RoundRecorder

__all__ = [
    "Recorder", "RoundRecorder", "RecorderError", "NAME_MAX_LENGTH", "CLIENT_ID_MAX_LENGTH", "REASON_MAX_LENGTH",
    "__version__",
]
