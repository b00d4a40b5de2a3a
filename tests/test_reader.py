"""open_run and `fedforensics inspect` on good and bad files."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import h5py
import numpy as np
import pytest

from fedforensics import RunFormatError, open_run
from recorder import Recorder, spec


@pytest.fixture()
def small_run(tmp_path):
    path = tmp_path / "small.h5"
    g = {"fc.weight": np.zeros((3, 4), np.float32), "fc.bias": np.zeros(3, np.float32)}
    with Recorder(path, meta={"dataset": "toy"}) as rec:
        for r in range(3):
            with rec.round(r, g) as rnd:
                for c in range(2 + r):
                    rnd.client(f"c{c}", {k: v + c for k, v in g.items()}, num_samples=5, metrics={"train_accuracy": 0.9})
        rec.ground_truth(["c1"])
    return path


def _inspect(*args):
    return subprocess.run([sys.executable, "-m", "fedforensics.cli", "inspect", *map(str, args)], capture_output=True, text=True)


def test_inspect_summarises_a_valid_run(small_run, tmp_path):
    out = _inspect(small_run, "--json", tmp_path / "s.json")
    assert out.returncode == 0, out.stderr
    for fact in ("3 (0..2)", "min 2 · median 3 · max 4", "fc.weight", "train_accuracy", "c1", "compression: none"):
        assert fact in out.stdout
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["distinct_clients"] == 4 and summary["parameters"] == 15 and summary["nonfinite_updates"] == {}


def _bad_files(tmp_path, small_run):
    data = small_run.read_bytes()
    (tmp_path / "truncated.h5").write_bytes(data[: len(data) // 2])
    (tmp_path / "garbage.h5").write_bytes(bytes(range(256)) * 40)
    (tmp_path / "empty.h5").write_bytes(b"")
    with h5py.File(tmp_path / "foreign.h5", "w") as f:
        f.create_dataset("x", data=[1, 2])
    newer = tmp_path / "newer.h5"
    newer.write_bytes(data)
    with h5py.File(newer, "r+") as f:
        f.attrs[spec.ATTR_VERSION] = spec.FORMAT_VERSION + 1
    missing = tmp_path / "missing.h5"
    missing.write_bytes(data)
    with h5py.File(missing, "r+") as f:
        del f["rounds/0000000001/updates"]
    no_nonfinite = tmp_path / "nononfinite.h5"
    no_nonfinite.write_bytes(data)
    with h5py.File(no_nonfinite, "r+") as f:
        del f["rounds/0000000002/nonfinite"]
    no_layers = tmp_path / "nolayers.h5"
    no_layers.write_bytes(data)
    with h5py.File(no_layers, "r+") as f:
        del f["layers"]
    return {
        "truncated.h5": "truncated",
        "garbage.h5": "not an HDF5 file",
        "empty.h5": "not an HDF5 file",
        "foreign.h5": "not a fedforensics run",
        "newer.h5": "newer than this fedforensics reads",
        "missing.h5": "round 1 lacks 'updates'",
        "nononfinite.h5": "round 2 lacks 'nonfinite'",
        "nolayers.h5": "missing required group /layers",
        "absent.h5": "no such file",
    }


def test_open_run_refuses_bad_files_with_one_clear_line(small_run, tmp_path):
    for name, message in _bad_files(tmp_path, small_run).items():
        with pytest.raises(RunFormatError, match=message) as info:
            open_run(tmp_path / name)
        assert "\n" not in str(info.value)


def test_inspect_exits_2_with_one_line_and_no_traceback(small_run, tmp_path):
    for name, message in _bad_files(tmp_path, small_run).items():
        out = _inspect(tmp_path / name)
        assert out.returncode == 2, (name, out)
        assert message in out.stderr and "Traceback" not in out.stderr
        assert len(out.stderr.strip().splitlines()) == 1, out.stderr


def _short_rows(path, name):
    """Round 1 with one row fewer in dataset ``name`` than it has clients."""
    with h5py.File(path, "r+") as f:
        group = f["rounds/0000000001"]
        rows = group[name][()][:-1]
        del group[name]
        group.create_dataset(name, data=rows)


@pytest.mark.parametrize("name", ["num_samples", "nonfinite", "metrics", "updates/0001"])
def test_a_round_whose_tables_miss_a_client_row_is_refused_when_read(small_run, tmp_path, name):
    """Rows are checked when a round is first read, not at open (which it made 3.5 times slower):
    zip() over clients and a short table silently dropped the last client's samples or metrics."""
    path = tmp_path / "short.h5"
    path.write_bytes(small_run.read_bytes())
    _short_rows(path, name)
    run = open_run(path)
    run.clients(0)
    with pytest.raises(RunFormatError, match=f"round 1: '{name}' has 2 rows for 3 clients"):
        run.clients(1) and run.update_matrix(1)
    for command in ("inspect", "analyze") if name != "updates/0001" else ("analyze",):  # inspect reads no update
        out = subprocess.run([sys.executable, "-m", "fedforensics.cli", command, str(path)], capture_output=True, text=True)
        assert out.returncode == 2 and "Traceback" not in out.stderr, out
        assert out.stderr.strip().splitlines() == [f"error: {path}: round 1: '{name}' has 2 rows for 3 clients"], out.stderr


def test_reader_names_unknown_rounds_and_clients(small_run):
    run = open_run(small_run)
    assert run.rounds == [0, 1, 2]
    assert run.all_clients == ["c0", "c1", "c2", "c3"]
    with pytest.raises(KeyError, match="round 9 is not in this run"):
        run.clients(9)
    with pytest.raises(KeyError, match="client 'c3' did not take part in round 0"):
        run.update(0, "c3")


def test_a_file_changed_under_the_reader_is_named_as_such(small_run, tmp_path):
    """HDF5 gives a reader no isolation from a writer: what it raises then (KeyError, RuntimeError, a
    NoneType attribute...) reached the user as a traceback. A failure after the file changed is said
    to be that; the same failure on an unchanged file passes through."""
    path = tmp_path / "live.h5"
    path.write_bytes(small_run.read_bytes())
    with open_run(path) as run:
        with pytest.raises(KeyError), run.guarded():
            raise KeyError("object '0000000448' doesn't exist")
        stat = path.stat()
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))  # a writer committed a round
        with pytest.raises(RunFormatError, match="the file changed while it was being read"), run.guarded():
            raise KeyError("object '0000000448' doesn't exist")


def test_failed_replies_are_named_with_their_round_and_reason(tmp_path):
    """Only their count reached the reports; who failed, when and why was left in the file."""
    path = tmp_path / "failed.h5"
    g = {"w": np.zeros(4, np.float32)}
    with Recorder(path) as rec:
        for r in range(3):
            with rec.round(r, g) as rnd:
                rnd.client("c0", g, num_samples=1)
                if r:
                    rnd.failure("c3", "error reply (code 2):<'\nException occurred. Message: boom'>")
    out = tmp_path / "summary.json"
    result = _inspect(path, "--json", out)
    assert result.returncode == 0, result.stderr
    assert json.loads(out.read_text())["failed_replies"] == {
        "c3": {"1": "error reply (code 2):<' Exception occurred. Message: boom'>", "2": "error reply (code 2):<' Exception occurred. Message: boom'>"}
    }
    assert "2: c3 (rounds 1, 2)" in result.stdout and "2:c3" in result.stdout
