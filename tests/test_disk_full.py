"""A disk that fills up while the recorder writes: a clear Python error, never a crash, every committed round kept.

Each run is written by a child process (this file run as a script), so that a crash shows
as a signal rather than killing the test session. Two ways to fill the disk, neither
needing root:

* ``fsize``: a file-size limit (``RLIMIT_FSIZE``, with ``SIGXFSZ`` ignored): a write past
  it is cut short, then fails with EFBIG, "File too large", as the kernel does;
* ``enospc``: a small disk, emulated in ``os.pwrite`` and ``os.write``: once the run file
  and its journal together would outgrow it, a write is cut short, then fails with
  ENOSPC, "No space left on device" (the journal fills the disk too).

Each child is given a series of limits, from nothing to more than the run needs, so the
disk fills up while the file is created, during a client's update, while a round's
metadata is flushed, while the journal saves a page, and at the final close.
"""

from __future__ import annotations

import errno
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import kill_writer

ROUNDS = 4
CLIENTS = 3
CHILD_ENV = {
    **os.environ,
    "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1]), os.environ.get("PYTHONPATH", "")]),
}


def global_state(r: int) -> dict[str, np.ndarray]:
    return kill_writer.global_state(r, 24, 40)


def client_state(r: int, c: int) -> dict[str, np.ndarray]:
    return kill_writer.client_state(r, c, 24, 40)


def write_run(path: Path, compression: str | None) -> None:
    """The run every child writes: prints each round once its block has exited, then ``closed``."""
    from recorder import Recorder

    with Recorder(path, meta={"writer": "disk-full test"}, compression=compression) as rec:
        for r in range(ROUNDS):
            with rec.round(r, global_state(r)) as rnd:
                for c in range(CLIENTS):
                    rnd.client(f"c{c}", client_state(r, c), num_samples=c + 1, metrics={"loss": r + c / 10})
                rnd.global_metrics({"accuracy": r / 10})
            print(r, flush=True)
        rec.final(global_state(ROUNDS))
        rec.ground_truth(["c1"])
    print("closed", flush=True)


# -- the child ------------------------------------------------------------------------
def _limit_file_size(limit: int) -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))


def _small_disk(path: Path, limit: int) -> None:
    """Make ``path`` and its journal, and the file it is created as and its journal, live on a disk of ``limit`` bytes."""
    from recorder.journal import creation_path, journal_path

    files = (path, journal_path(path), creation_path(path), journal_path(creation_path(path)))
    real_pwrite, real_write = os.pwrite, os.write

    def fitting(fd: int, offset: int, data: bytes) -> memoryview:
        view = memoryview(data).cast("B")
        size = os.fstat(fd).st_size
        free = limit - sum(os.stat(f).st_size for f in files if os.path.exists(f))
        fits = max(0, size + free - offset) if offset + len(view) > size else len(view)
        if fits == 0 and len(view):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return view[:fits]

    os.pwrite = lambda fd, data, offset: real_pwrite(fd, fitting(fd, offset, data), offset)
    os.write = lambda fd, data: real_write(fd, fitting(fd, os.lseek(fd, 0, os.SEEK_CUR), data))


def _child(path: str, how: str, limit: str, compression: str) -> None:
    import recorder  # noqa: F401  (imported before the disk shrinks)

    if how == "fsize":
        _limit_file_size(int(limit))
    elif how == "enospc":
        _small_disk(Path(path), int(limit))
    write_run(Path(path), None if compression == "none" else compression)  # an error ends the process with it


# -- the tests --------------------------------------------------------------------------
def _check_file(path: Path, committed: list[int], finished: bool) -> None:
    from fedforensics import open_run

    with open_run(path) as run:
        assert run.rounds == committed
        assert run.finished is finished
        for r in committed:
            g = global_state(r)
            for name, value in g.items():
                np.testing.assert_array_equal(run.global_state(r)[name], value)
            assert run.clients(r) == [f"c{c}" for c in range(CLIENTS)]
            for c in range(CLIENTS):
                update = run.update(r, f"c{c}")
                for name, value in client_state(r, c).items():
                    np.testing.assert_array_equal(update[name], value - g[name])
            assert run.num_samples(r) == {f"c{c}": c + 1 for c in range(CLIENTS)}
            assert run.global_metrics(r) == {"accuracy": r / 10}


def _full_size(tmp_path: Path, compression: str | None) -> int:
    path = tmp_path / "unlimited.h5"
    proc = subprocess.run(
        [sys.executable, __file__, str(path), "unlimited", "0", str(compression).lower()],
        capture_output=True, text=True, env=CHILD_ENV, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return path.stat().st_size


@pytest.mark.slow
@pytest.mark.parametrize("compression", [None, "gzip"])
@pytest.mark.parametrize("how", ["fsize", "enospc"])
def test_a_full_disk_raises_a_clear_error_and_keeps_every_committed_round(tmp_path, how, compression):
    reason = {"fsize": "File too large", "enospc": "No space left on device"}[how]
    size = _full_size(tmp_path, compression)
    limits = sorted({0, 600, 3000, *(size * k // 16 for k in range(1, 17)), size + 3000, 3 * size})
    outcomes = {"at creation": 0, "mid-run": 0, "finished": 0}
    for limit in limits:
        path = tmp_path / f"run{limit}.h5"
        proc = subprocess.run(
            [sys.executable, __file__, str(path), how, str(limit), str(compression).lower()],
            capture_output=True, text=True, env=CHILD_ENV, timeout=120,
        )  # fmt: skip
        assert proc.returncode >= 0, f"limit {limit}: killed by signal {-proc.returncode}\n{proc.stderr}"
        lines = proc.stdout.split()
        committed = [int(line) for line in lines if line.isdigit()]
        if proc.returncode == 0:
            assert lines[-1] == "closed" and committed == list(range(ROUNDS))
            outcomes["finished"] += 1
            _check_file(path, committed, finished=True)
            continue
        # The writer died of a Python exception that names the file (or its journal) and the problem.
        last = proc.stderr.strip().splitlines()[-1]
        assert proc.returncode == 1 and "closed" not in lines, f"limit {limit}: {proc.stderr}"
        assert last.startswith("OSError: ") and reason in last and str(path) in last, f"limit {limit}: {proc.stderr}"
        assert "During handling" not in proc.stderr, f"limit {limit}: {proc.stderr}"  # one error, not a cascade
        assert committed == list(range(len(committed)))
        assert not Path(str(path) + ".journal").exists()  # the recorder rolled back to its last commit itself
        if not path.exists():  # the failure came while the file was created: nothing was committed, no file left
            assert not committed
            outcomes["at creation"] += 1
            continue
        outcomes["mid-run"] += 1
        _check_file(path, committed, finished=False)
    print(outcomes)
    assert all(outcomes.values()), outcomes
    assert outcomes["mid-run"] >= 8, outcomes


@pytest.mark.slow
def test_simulate_on_a_full_disk_ends_with_one_error_line(tmp_path):
    path = tmp_path / "sim.h5"

    def small_disk() -> None:  # in the child, before it runs the command
        _limit_file_size(400_000)

    command = ["simulate", str(path), "--rounds", "10", "--clients", "5", "--model", "mlp"]
    proc = subprocess.run(
        [sys.executable, "-m", "fedforensics.cli", *command],
        capture_output=True, text=True, env=CHILD_ENV, timeout=600, preexec_fn=small_disk,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines() == [f"error: {path}: File too large"]
    from fedforensics import open_run

    with open_run(path) as run:
        assert run.rounds == list(range(len(run.rounds))) and len(run.rounds) < 10
        assert run.finished is False


if __name__ == "__main__":
    _child(*sys.argv[1:])
