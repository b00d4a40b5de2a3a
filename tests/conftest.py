"""Session fixtures: the simulated runs of ``fixtures/make_fixtures.py``, each made once per session."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "fixtures"))


@pytest.fixture(scope="session")
def fixture_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fixtures")


def _fixture(name: str, folder: Path) -> Path:
    import make_fixtures  # imports torch: only for the tests that simulate

    return make_fixtures.make(name, folder)


@pytest.fixture(scope="session")
def demo_run(fixture_dir: Path) -> Path:
    """The demo's backdoor federation (c0 and c1 attack), cut to ``make_fixtures.ROUNDS`` rounds."""
    return _fixture("demo", fixture_dir)


@pytest.fixture(scope="session")
def clean_run(fixture_dir: Path) -> Path:
    """The demo's federation with no attacker: same seed, same partition, same honest training."""
    return _fixture("clean", fixture_dir)


@pytest.fixture(scope="session")
def late_backdoor_run(fixture_dir: Path) -> Path:
    """The demo's federation whose attackers start in round 2."""
    return _fixture("late-backdoor", fixture_dir)
