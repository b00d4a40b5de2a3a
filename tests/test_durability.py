"""A recording process killed at random moments leaves a file holding every committed round, bit for bit."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from fedforensics import RunFormatError, open_run
from recorder import Recorder
from recorder.journal import journal_path, read_journal, rollback

sys.path.insert(0, str(Path(__file__).parent))
import kill_writer  # noqa: E402

WRITER = Path(__file__).with_name("kill_writer.py")
KILLS = 30


def _check_rounds(path: Path, committed: list[int]) -> list[int]:
    """Every committed round reads back exactly; any further round is complete and exact too."""
    run = open_run(path)
    rounds = run.rounds
    assert rounds == list(range(len(rounds))), rounds
    assert set(committed) <= set(rounds)
    assert len(rounds) <= len(committed) + 1  # at most the round whose block exited as the kill came
    for r in rounds:
        g = kill_writer.global_state(r)
        for name, value in g.items():
            np.testing.assert_array_equal(run.global_state(r)[name], value)
        assert run.clients(r) == [f"c{c}" for c in range(kill_writer.CLIENTS)]
        for c in range(kill_writer.CLIENTS):
            local = kill_writer.client_state(r, c)
            update = run.update(r, f"c{c}")
            for name in g:
                np.testing.assert_array_equal(update[name], local[name] - g[name])
        assert run.num_samples(r) == {f"c{c}": c + 1 for c in range(kill_writer.CLIENTS)}
    run.close()
    return rounds


@pytest.mark.slow
def test_sigkill_at_random_moments_keeps_every_committed_round(tmp_path):
    rng = random.Random(1234)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1]), os.environ.get("PYTHONPATH", "")])}
    outcomes = {"with hot journal": 0, "clean": 0, "no file yet": 0}
    for attempt in range(KILLS):
        path = tmp_path / f"run{attempt}.h5"
        proc = subprocess.Popen(
            [sys.executable, str(WRITER), str(path), "1000"], stdout=subprocess.PIPE, text=True, env=env
        )
        committed: list[int] = []
        # Wait for a random number of committed rounds, then a random extra delay, then kill.
        target = rng.randint(0, 6)
        while len(committed) < target:
            line = proc.stdout.readline()
            assert line, "writer died on its own"
            committed.append(int(line))
        time.sleep(rng.uniform(0, 0.05))
        proc.send_signal(signal.SIGKILL)
        rest, _ = proc.communicate()
        committed += [int(x) for x in rest.split()]
        if not path.exists():
            outcomes["no file yet"] += 1
            assert not committed
            continue
        hot = read_journal(path) is not None  # a journal with its header: the writer had begun the round
        outcomes["with hot journal" if hot else "clean"] += 1
        rounds = _check_rounds(path, committed)  # read-only recovery, in memory: what opens must be whole
        if hot:
            rollback(path)  # the on-disk repair gives the same rounds
            assert not journal_path(path).exists()
            assert _check_rounds(path, committed) == rounds
    print(outcomes)
    assert outcomes["with hot journal"] > 0, outcomes  # the test did kill mid-round


#: A writer killed at the commit that creates its file, after HDF5 has written all of it.
_DIES_CREATING = """
import os, signal, sys
from recorder import Recorder, journal
journal.JournaledFile.commit = lambda self: os.kill(os.getpid(), signal.SIGKILL)
Recorder(sys.argv[1], overwrite=True)
"""


@pytest.mark.parametrize("earlier_run", [False, True])
def test_a_writer_killed_while_it_creates_the_file_leaves_no_run_or_the_one_it_was_to_replace(tmp_path, earlier_run):
    """A writer killed before its first commit left the path holding a file and a journal every reader called
    damaged, which a new recorder refused as existing; with overwrite=True the run it replaced was already emptied
    (a fresh-eyes user)."""
    path = tmp_path / "run.h5"
    if earlier_run:
        kill_writer.main(str(path), 2)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1]), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-c", _DIES_CREATING, str(path)], env=env, capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert not journal_path(path).exists()
    if earlier_run:
        assert _check_rounds(path, [0, 1]) == [0, 1]
        with open_run(path) as run:
            assert run.finished and run.meta == {"writer": "kill test"}
    else:
        assert not path.exists()
    with Recorder(path, overwrite=earlier_run):  # the next recorder of the path, as if nothing had happened
        pass
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # what the killed writer left is gone with it
    with open_run(path) as run:
        assert run.rounds == [] and run.finished


def test_a_damaged_hot_journal_is_named_as_the_likely_cause(tmp_path):
    """A journal whose last commit is 0 bytes made the reader say "Unable to synchronously open file", naming
    neither the journal nor what it did (QA)."""
    import struct

    from recorder.journal import MAGIC
    from synthetic import make_run

    path = make_run(tmp_path / "run.h5", rounds=2)
    journal_path(path).write_bytes(MAGIC + struct.pack("<Q", 0))
    with pytest.raises(RunFormatError) as info:
        open_run(path)
    assert str(info.value).startswith(f"{path}: its journal run.h5.journal (left by a writer that stopped mid-write)")
    assert str(info.value).endswith("the file or its journal is damaged")


def test_a_recovered_view_restores_a_journaled_cut_and_refuses_one_it_cannot(tmp_path):
    """Review: the view read past the file's end left whatever the caller's buffer held, where no saved page
    restored it (a file cut shorter than its last commit by someone else), and said it had read it all."""
    from recorder.journal import RecoveredFile

    path = tmp_path / "f.bin"
    path.write_bytes(b"a" * 100)  # committed 150: the writer cut the last 50 after saving them (its truncate)
    with RecoveredFile(path, 150, [(100, b"b" * 50)]) as view:
        assert view.read() == b"a" * 100 + b"b" * 50
    buffer = bytearray(b"x" * 150)
    with RecoveredFile(path, 150, [(100, b"b" * 20)]) as view, pytest.raises(OSError, match="shorter than its last commit"):
        view.readinto(buffer)


def _killed_mid_round(tmp_path: Path) -> tuple[Path, Path]:
    """A run recorded through a symbolic link by a writer killed mid-round: (the file, the link)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1]), os.environ.get("PYTHONPATH", "")])}
    (tmp_path / "runs").mkdir()
    target, link = tmp_path / "runs" / "run.h5", tmp_path / "link.h5"
    link.symlink_to(target)
    for attempt in range(60):  # until a kill lands mid-round, with the journal hot (its header written: before that
        # the writer has not touched the run, and a reader rightly reads it as it is, not recovered)
        for leftover in (target, journal_path(target), Path(str(link) + ".journal")):
            leftover.unlink(missing_ok=True)
        proc = subprocess.Popen([sys.executable, str(WRITER), str(link), "1000"], stdout=subprocess.PIPE, text=True, env=env)
        for _ in range(2):
            assert proc.stdout.readline(), "writer died on its own"
        time.sleep(random.Random(attempt).uniform(0, 0.01))
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        if read_journal(link) is not None:
            return target, link
    pytest.fail("no kill of 60 landed mid-round with the journal hot: does the recorder still journal a round?")


def test_a_run_named_through_a_link_meets_the_journal_its_writer_left(tmp_path):
    """QA: the journal was looked for beside the name given, so a run opened through a symbolic link was read
    without its hot journal (format.md: a reader MUST NOT), and `--json LINK.journal` could overwrite the undo."""
    from typer.testing import CliRunner

    from fedforensics.cli import app

    target, link = _killed_mid_round(tmp_path)
    assert journal_path(link) == journal_path(target) and not Path(str(link) + ".journal").exists()  # beside the file
    with open_run(link) as through_link, open_run(target) as direct:
        assert through_link.recovered and direct.recovered and through_link.rounds == direct.rounds
        assert len(direct.rounds) >= 2
    result = CliRunner().invoke(app, ["analyze", str(link), "--json", str(tmp_path / "runs" / "run.h5.journal")])
    assert result.exit_code == 2 and "is a file being read" in result.output
    assert journal_path(target).exists()


def test_a_run_read_through_its_journal_is_not_told_to_take_the_journal_along(tmp_path):
    """Review: a damaged, unfinished run names the journal a copy must take along; one read through that journal
    (the writer's own, unfinished, file) has it already, and the hint would send its reader looking for nothing."""
    target, _ = _killed_mid_round(tmp_path)
    with open_run(target) as run:
        assert run.recovered and run.finished is False
        assert str(run.damaged_error("a chunk did not decompress")) == f"{target}: damaged run file (a chunk did not decompress)"


def test_a_journal_an_earlier_writer_left_beside_the_link_is_still_applied(tmp_path):
    """Review: writers before the journal followed links left it beside the link; a reader given the link then
    found none and read the file unjournaled, and --json onto it was not refused."""
    from typer.testing import CliRunner

    from fedforensics.cli import app

    target, link = _killed_mid_round(tmp_path)
    with open_run(target) as direct:
        committed = direct.rounds
    old_place = Path(str(link) + ".journal")
    journal_path(target).rename(old_place)  # where the earlier recorder wrote it
    with open_run(link) as run:
        assert run.recovered and run.rounds == committed
    result = CliRunner().invoke(app, ["analyze", str(link), "--json", str(old_place)])
    assert result.exit_code == 2 and "is a file being read" in result.output
    assert rollback(link) and not old_place.exists()
    with open_run(target) as run:
        assert not run.recovered and run.rounds == committed


def test_a_journal_that_is_a_pipe_is_refused_rather_than_waited_on(tmp_path):
    """A fuzzed run: a FIFO where the journal goes made `inspect` wait for a writer of it for ever."""
    from synthetic import make_run

    path = make_run(tmp_path / "run.h5", clients=4, rounds=2)
    os.mkfifo(journal_path(path))
    command = [sys.executable, "-m", "fedforensics.cli", "inspect", str(path)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)  # a regression hangs, not passes
    assert result.returncode == 2 and result.stderr == f"error: {path}: cannot read its journal (not a regular file)\n"
