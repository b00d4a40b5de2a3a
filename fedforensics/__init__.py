"""fedforensics: audit a recorded federated-learning run for malicious clients.

>>> from fedforensics import open_run
>>> run = open_run("run.h5")                # doctest: +SKIP
"""

from __future__ import annotations

from recorder import __version__

from .errors import FedForensicsError, RunFormatError
from .run import Layer, Run, open_run

__all__ = ["FedForensicsError", "Layer", "Run", "RunFormatError", "__version__", "open_run"]
