"""The benchmark scripts still start: their figures in docs/ can only be re-made while they import."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"

#: Imports every benchmark module (each runs its work under ``if __name__ == "__main__"`` only) and prints those
#: that fail, one per line. In a process of its own: the red-team scripts put modules named ``data`` and ``models``
#: on the path.
IMPORT_ALL = """
import importlib, sys
sys.path.insert(0, sys.argv[1])
for name in sys.argv[2:]:
    try:
        importlib.import_module(name)
    except BaseException as exc:
        print(f"{name}: {type(exc).__name__}: {exc}")
"""


def test_every_benchmark_script_imports():
    names = sorted(path.stem for path in BENCHMARKS.glob("*.py"))
    assert "redteam_inversion" in names and len(names) > 20
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_ALL, str(BENCHMARKS), *names], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "", f"benchmarks that no longer import:\n{done.stdout}"
