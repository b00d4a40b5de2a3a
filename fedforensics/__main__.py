"""``python -m fedforensics``: the same command line as ``fedforensics``."""

from .cli import main

main()
