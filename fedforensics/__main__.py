"""``python -m fedforensics``: the same command line as ``fedforensics``."""

from .cli import main

if __name__ == "__main__":
    main()
