"""The ``fedforensics`` command line: one typer app, one module per command."""

from __future__ import annotations

from .app import app

# Each module registers its command on ``app`` when imported.
from . import analyze, demo, evaluate, inspect, simulate  # noqa: E402,F401


def main() -> None:
    """Entry point of the ``fedforensics`` console script."""
    app()
