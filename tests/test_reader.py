"""open_run and `fedforensics inspect` on good and bad files."""

from __future__ import annotations

import json
import os
import re
import subprocess
import struct
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from fedforensics.detectors import get_detector
from fedforensics import FedForensicsError, RunFormatError, open_run
from fedforensics.analysis import analyze
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
    # QA: the schema tells consumers to check format and version; min and max are counts
    assert (summary["format"], summary["version"]) == ("fedforensics-run-summary", 1)
    assert summary["clients_per_round"] == {"min": 2, "median": 3.0, "max": 4}
    assert all(isinstance(summary["clients_per_round"][k], int) for k in ("min", "max"))


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
    for name, message in _SPEC_BREAKS.items():
        (tmp_path / name).write_bytes(data)
        with h5py.File(tmp_path / name, "r+") as f:
            _break(name, f)
    return {
        **_SPEC_BREAKS,
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


#: Valid HDF5 files that break the spec in what open_run checks (attributes, membership, the layer
#: table): analyze crashed on them with a traceback (or lost a round), and inspect called them valid.
_SPEC_BREAKS = {
    "dup_layer.h5": "the layer table names 'fc.weight' twice (layers 0 and 1)",
    "neg_shape.h5": "layer 1 of the layer table ('fc.bias') has shape [-3], not a list of integers ≥ 0",
    "float_shape.h5": "layer 0 of the layer table ('fc.weight') has shape [3.0, 4.0], not a list of integers ≥ 0",
    # a fresh-eyes writer of files by hand: "damaged run file (type object 'str' has no attribute 'byteorder')"
    "text_shape.h5": "'/layers': 'shape' holds strings, not lists of integers ≥ 0",
    "bytes_shape.h5": "'/layers': 'shape' holds strings, not lists of integers ≥ 0",
    "empty_layer_name.h5": "layer 1 of the layer table has an empty name",
    "bad_layer_dtype.h5": "layer 0 of the layer table ('fc.weight') has dtype 'float-ish', not a numpy dtype",
    # bfloat16 stored as raw bytes by another writer, marked not analysable: accepted, and left out of every analysis
    "void_layer_dtype.h5": "layer 0 of the layer table ('fc.weight') has dtype '<V2', raw bytes, not numbers (bfloat16 "
    "or an 8-bit float stored as it is?): store it as float32 ('<f4'), which holds each of their values exactly (docs/format.md)",
    # complex numbers, text and times marked not analysable, as void was: accepted, and left out of every analysis
    **{
        f"{kind}_layer_dtype.h5": f"layer 0 of the layer table ('fc.weight') has dtype {dtype!r}, not booleans, integers "
        "or real floats (docs/format.md)"
        for kind, dtype in (("complex", "<c8"), ("text", "|S4"), ("time", "<M8[s]"))
    },
    "dup_round.h5": "round groups 0000000001 and 0000000002 both hold round 1",
    "no_round_attr.h5": "round group 0000000002 has no 'round' attribute (a round number ≥ 0)",
    "negative_round.h5": "round group 0000000000 has -1 as its 'round' attribute (a round number ≥ 0)",
    "str_version.h5": "'format_version' is '1', not an integer",
    "zero_version.h5": "unknown format version 0 (this fedforensics reads 1)",
}


def _replace(f, name, data, **kwargs):
    del f[name]
    f.create_dataset(name, data=data, **kwargs)


def _break(name, f):
    """Make ``f`` (a copy of small_run) the spec break ``name`` of :data:`_SPEC_BREAKS`."""
    strings = h5py.string_dtype("utf-8")
    if name == "dup_layer.h5":
        _replace(f, "layers/name", ["fc.weight", "fc.weight"], dtype=strings)
    elif name == "empty_layer_name.h5":
        _replace(f, "layers/name", ["fc.weight", ""], dtype=strings)
    elif name == "bad_layer_dtype.h5":
        _replace(f, "layers/dtype", ["float-ish", "<f4"], dtype=strings)
    elif name.endswith("_layer_dtype.h5") and name != "bad_layer_dtype.h5":
        dtype = {"void": "<V2", "complex": "<c8", "text": "|S4", "time": "<M8[s]"}[name.split("_")[0]]
        _replace(f, "layers/dtype", [dtype, "<f4"], dtype=strings)
        _replace(f, "layers/analysable", np.array([False, True]))
    elif name in ("neg_shape.h5", "float_shape.h5"):
        shapes = [np.array([3, 4]), np.array([-3])] if name == "neg_shape.h5" else [np.array([3.0, 4.0]), np.array([3.0])]
        del f["layers/shape"]
        column = f.create_dataset("layers/shape", (2,), dtype=h5py.vlen_dtype(shapes[0].dtype))
        for i, dims in enumerate(shapes):
            column[i] = dims
    elif name == "text_shape.h5":
        _replace(f, "layers/shape", ["3,4", "3"], dtype=strings)
    elif name == "bytes_shape.h5":
        _replace(f, "layers/shape", [b"3,4", b"3"])
    elif name == "dup_round.h5":
        f["rounds/0000000002"].attrs[spec.ATTR_ROUND] = 1
    elif name == "no_round_attr.h5":
        del f["rounds/0000000002"].attrs[spec.ATTR_ROUND]
    elif name == "negative_round.h5":
        f["rounds/0000000000"].attrs[spec.ATTR_ROUND] = -1
    elif name == "str_version.h5":
        f.attrs[spec.ATTR_VERSION] = "1"
    elif name == "zero_version.h5":
        f.attrs[spec.ATTR_VERSION] = np.int64(0)
    else:
        raise AssertionError(name)


def test_open_run_refuses_bad_files_with_one_clear_line(small_run, tmp_path):
    for name, message in _bad_files(tmp_path, small_run).items():
        with pytest.raises(RunFormatError, match=re.escape(message)) as info:
            open_run(tmp_path / name)
        assert "\n" not in str(info.value)


def test_the_update_of_a_failed_reply_is_refused_with_its_failure(tmp_path):
    """A client recorded with ``rnd.failure`` was said to have not taken part in the round."""
    g = {"w": np.zeros(3, np.float32)}
    with Recorder(tmp_path / "failed.h5") as rec, rec.round(0, g) as rnd:
        rnd.client("c0", g, num_samples=1)
        rnd.failure("c9", "timeout")
    with open_run(tmp_path / "failed.h5") as run:
        with pytest.raises(KeyError, match=r"client 'c9' failed in round 0 \(timeout\): no update was recorded"):
            run.update(0, "c9")
        with pytest.raises(KeyError, match="client 'c5' did not take part in round 0"):
            run.update(0, "c5")


def test_a_closed_run_says_it_is_closed(small_run):
    """A notebook's read after ``with open_run(...)`` ended raised ``TypeError: 'NoneType' object is not subscriptable``."""
    with open_run(small_run) as run:
        pass
    for read in (lambda: run.update(0, "c0"), lambda: run.clients(0), lambda: run.global_state(0), lambda: run.finished):
        with pytest.raises(FedForensicsError, match=r"small\.h5: this Run is closed; open the file again with open_run"):
            read()
    run.close()  # twice is harmless


def test_a_run_held_open_by_h5py_in_the_same_process_is_named_so(small_run):
    """A fresh-eyes user's notebook held the run open with h5py: open_run said only "Unable to synchronously open
    file", HDF5's reason (its file-locking settings differ from the open handle's) cut off."""
    with h5py.File(small_run, "r"):
        with pytest.raises(RunFormatError) as info:
            open_run(small_run)
    assert str(info.value) == (
        f"{small_run}: it is open already in this process, with other file-locking settings (an h5py.File of it left "
        "open?): close that first, or open it there with h5py.File(path, 'r', locking=False)"
    )
    with h5py.File(small_run, "r", locking=False), open_run(small_run) as run:  # as the message says
        assert run.rounds


def test_inspect_exits_2_with_one_line_and_no_traceback(small_run, tmp_path):
    for name, message in _bad_files(tmp_path, small_run).items():
        out = _inspect(tmp_path / name)
        assert out.returncode == 2, (name, out)
        assert message in out.stderr and "Traceback" not in out.stderr
        assert len(out.stderr.strip().splitlines()) == 1, out.stderr


def _cli(command, *args):
    return subprocess.run([sys.executable, "-m", "fedforensics.cli", command, *map(str, args)], capture_output=True, text=True)


def _refused(out, line):
    """``out`` (a finished CLI command) exited 2 printing exactly ``error: <line>``, no traceback."""
    assert out.returncode == 2 and "Traceback" not in out.stderr, out
    assert out.stderr.strip().splitlines() == [f"error: {line}"], out.stderr


@pytest.mark.parametrize("name", _SPEC_BREAKS)
def test_analyze_refuses_a_file_that_breaks_the_spec_with_one_line(small_run, tmp_path, name):
    """analyze crashed on these with `cannot reshape`, `out must be`, `negative dimensions` (exit 1), or
    analysed a run one of whose rounds had silently disappeared behind another with its number."""
    message = _bad_files(tmp_path, small_run)[name]
    _refused(_cli("analyze", tmp_path / name), f"{tmp_path / name}: {message}")


def test_format_version_is_an_integer_attribute_printed_as_one(small_run, tmp_path):
    """A string "1" was accepted, and an unknown version printed as `np.int64(0)`."""
    path = tmp_path / "v.h5"
    path.write_bytes(small_run.read_bytes())
    for value, message in (
        ("1", "'format_version' is '1', not an integer"),
        (np.float64(1.0), "'format_version' is 1.0, not an integer"),
        (np.array([1, 1]), "'format_version' is an array of shape (2,), not an integer"),
        (True, "'format_version' is True, not an integer"),
        (np.int32(1), None),
        (np.array([1]), None),  # MATLAB's h5writeatt: refused as "an array of shape (1,)"
        (np.array([[1]], np.int32), None),
        (np.int64(-2), "unknown format version -2 (this fedforensics reads 1)"),
    ):
        with h5py.File(path, "r+") as f:
            f.attrs[spec.ATTR_VERSION] = value
        if message is None:
            assert open_run(path).format_version == 1
            continue
        with pytest.raises(RunFormatError) as info:
            open_run(path)
        assert str(info.value) == f"{path}: {message}"


@pytest.mark.parametrize(
    "value, said",
    [
        ("fedforensics-run2", "'format' is 'fedforensics-run2'"),
        (np.bytes_(b"fedforensics-run\xe9"), "'format' is b'fedforensics-run\\xe9'"),  # not UTF-8: "damaged run file"
        ("run\n\x1b[31m" + "x" * 300, "'format' is 'run\\n\\x1b[31m" + "x" * 191 + "'… (309 characters)"),
        (np.int64(1), "'format' is 1"),
        (np.array(["fedforensics-run", "x"], dtype=h5py.string_dtype()), "'format' is an array of shape (2,)"),
    ],
    ids=["another name", "bytes not UTF-8", "long, with controls", "a number", "an array"],
)
def test_a_format_attribute_that_is_not_the_format_s_name_is_named_with_what_it_holds(small_run, tmp_path, value, said):
    """A wrong 'format' was said to be missing ("no 'format' attribute = 'fedforensics-run'"), and bytes that are not
    UTF-8 or an array of texts made a "damaged run file"; now the line says what it holds, escaped and cut."""
    path = _edited(small_run, tmp_path / "other.h5", _attr(spec.ATTR_FORMAT, value))
    _refused(_cli("inspect", path), f"{path}: not a fedforensics run ({said}, not 'fedforensics-run')")


def test_round_attributes_and_finished_stored_as_arrays_of_one_element_are_read_as_scalars(full_run, tmp_path):
    """A writer in another language (MATLAB's h5writeatt) stores scalars as arrays of shape (1,) or (1, 1): such a
    file was refused ("'round' ... an array of shape (1,)"); format.md now says they are read, as their element."""
    def edit(f):
        f.attrs[spec.ATTR_FINISHED] = np.array([[True]])
        for group in f[spec.ROUNDS].values():
            group.attrs[spec.ATTR_ROUND] = np.array([group.attrs[spec.ATTR_ROUND]])
            group.attrs[spec.ATTR_COMPLETE] = np.array([1], np.int8)

    path = _edited(full_run, tmp_path / "arrays.h5", edit)
    with open_run(path) as run:
        run.validate()
        assert run.finished is True and run.rounds == [0, 1]
    with h5py.File(path, "r+") as f:
        f["rounds/0000000000"].attrs[spec.ATTR_COMPLETE] = np.array([False])
    with pytest.raises(RunFormatError, match="round group 0000000000 is incomplete"):
        open_run(path)
    with h5py.File(path, "r+") as f:
        f["rounds/0000000000"].attrs[spec.ATTR_COMPLETE] = True
        f["rounds/0000000000"].attrs[spec.ATTR_ROUND] = np.array([0, 0])
    with pytest.raises(RunFormatError, match=re.escape("has an array of shape (2,) as its 'round' attribute")):
        open_run(path)


def test_text_attributes_stored_as_arrays_of_one_element_are_read_as_their_text(full_run, tmp_path):
    """Numeric attributes stored as arrays of one element were read as their element, text ones refused ("'created'
    is an array of shape (1,), not a string"; 'format' so stored was "not a fedforensics run"): read as their text."""
    texts = {
        spec.ATTR_FORMAT: "fedforensics-run", spec.ATTR_RECORDER_VERSION: "other-writer 2.1",
        spec.ATTR_CREATED: "2026-11-22T18:59:34Z", spec.ATTR_META: '{"dataset": "toy"}',
    }

    def edit(f):
        for name, text in texts.items():
            f.attrs[name] = np.array([text], dtype=h5py.string_dtype())
        f.attrs[spec.ATTR_CREATED] = np.array([[texts[spec.ATTR_CREATED].encode()]])  # fixed-length, shape (1, 1)

    path = _edited(full_run, tmp_path / "arrays.h5", edit)
    with open_run(path) as run:
        run.validate()
        assert (run.recorder_version, run.created, run.meta) == (*list(texts.values())[1:3], {"dataset": "toy"})
    with h5py.File(path, "r+") as f:
        f.attrs[spec.ATTR_CREATED] = np.array(["2026-11-22T18:59:34Z"] * 2, dtype=h5py.string_dtype())
    with open_run(path) as run, pytest.raises(RunFormatError, match=re.escape("'created' is an array of shape (2,), not")):
        run.validate()


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
        _refused(_cli(command, path), f"{path}: round 1: '{name}' has 2 rows for 3 clients")


def _rewrite(path, name, data, **kwargs):
    with h5py.File(path, "r+") as f:
        _replace(f, name, data, **kwargs)


def _move(path, group, old, new):
    with h5py.File(path, "r+") as f:
        f[group].move(old, new)


def _odd_chunk(values: int):
    """Round 1's weight table with c2's row stored as ``values`` float32 of its 12 (HDF5 lets a writer store a chunk
    of any size; its direct chunk read returns the first bytes of a short one and leaves the rest of the caller's
    array alone)."""

    def rewrite(path):
        with h5py.File(path, "r+") as f:
            del f["rounds/0000000001/updates/0000"]
            table = f.create_dataset("rounds/0000000001/updates/0000", shape=(3, 3, 4), chunks=(1, 3, 4), dtype=np.float32)
            for row in range(3):
                table.id.write_direct_chunk((row, 0, 0), np.ones(12 if row < 2 else values, np.float32).tobytes())

    return rewrite


#: Round 1 of small_run (clients c0, c1, c2; layers fc.weight (3, 4), fc.bias (3,)) broken in a way only
#: its datasets' shapes show: found when the round is first read (checking every round at open is slow).
_ROUND_BREAKS = {
    "wrong trailing shape": (
        lambda p: _rewrite(p, "rounds/0000000001/updates/0000", np.zeros((3, 3, 3), np.float32)),
        "'updates/0000' has shape (3, 3, 3), not (3, 3, 4) (3 clients × layer 'fc.weight' of shape (3, 4))",
    ),
    "same size, other shape": (  # read without complaint before, as scrambled rows
        lambda p: _rewrite(p, "rounds/0000000001/updates/0000", np.zeros((3, 4, 3), np.float32), chunks=(1, 4, 3)),
        "'updates/0000' has shape (3, 4, 3), not (3, 3, 4) (3 clients × layer 'fc.weight' of shape (3, 4))",
    ),
    "flattened rows": (
        lambda p: _rewrite(p, "rounds/0000000001/updates/0000", np.zeros((3, 12), np.float32)),
        "'updates/0000' has shape (3, 12), not (3, 3, 4)",
    ),
    "update table of strings": (
        lambda p: _rewrite(p, "rounds/0000000001/updates/0001", [["a"] * 3] * 3, dtype=h5py.string_dtype()),
        "'updates/0001' holds object, not floating-point numbers",
    ),
    "update table under another key": (
        lambda p: _move(p, "rounds/0000000001/updates", "0001", "0009"),
        "'updates' lacks '0001' (layer 'fc.bias')",
    ),
    "a row's chunk cut short": (
        _odd_chunk(2),
        "'updates/0000' (layer 'fc.weight'): row 2 is stored as 8 bytes, not the 48 of its shape",
    ),
    "a row's chunk too long": (
        _odd_chunk(13),
        "'updates/0000' (layer 'fc.weight'): row 2 is stored as 52 bytes, not the 48 of its shape",
    ),
    "duplicate client ids": (
        lambda p: _rewrite(p, "rounds/0000000001/clients", ["c0", "c1", "c0"], dtype=h5py.string_dtype("utf-8")),
        "client 'c0' appears 2 times in 'clients' (ids are unique within a round)",
    ),
    "empty client id": (
        lambda p: _rewrite(p, "rounds/0000000001/clients", ["c0", "", "c2"], dtype=h5py.string_dtype("utf-8")),
        "'clients' holds an empty client id",
    ),
    "a metric column too many": (
        lambda p: _rewrite(p, "rounds/0000000001/metrics", np.zeros((3, 2))),
        "'metrics' has shape (3, 2), not (3, 1)",
    ),
    "num_samples as a column": (
        lambda p: _rewrite(p, "rounds/0000000001/num_samples", np.full((3, 1), 5)),
        "'num_samples' has shape (3, 1), not (3,)",
    ),
    "negative num_samples": (
        lambda p: _rewrite(p, "rounds/0000000001/num_samples", [5, -5, 5]),
        "'num_samples' holds -5, not counts (integers ≥ 0)",
    ),
    "nonfinite as text": (
        lambda p: _rewrite(p, "rounds/0000000001/nonfinite", ["0", "0", "x"], dtype=h5py.string_dtype()),
        "'nonfinite' holds object, not counts (integers ≥ 0)",
    ),
}


@pytest.mark.parametrize("case", _ROUND_BREAKS)
def test_a_round_that_breaks_the_spec_is_refused_when_read(small_run, tmp_path, case, monkeypatch):
    """A wrong trailing shape crashed analyze (`cannot reshape`) or, of the same size, was read as
    scrambled rows; duplicate client ids made one client's rows unreachable."""
    path = tmp_path / "broken.h5"
    path.write_bytes(small_run.read_bytes())
    rewrite, message = _ROUND_BREAKS[case]
    rewrite(path)
    with open_run(path) as run:
        run.update_matrix(0)
        with pytest.raises(RunFormatError) as info:  # what analyze reads of a round
            run.clients(1), run.num_samples(1), run.nonfinite(1), run.metrics(1), run.update_matrix(1, run.layers)
        assert str(info.value).startswith(f"{path}: round 1: ") and "\n" not in str(info.value)
        assert message in str(info.value)
        if "'updates" in message:  # every way of reading updates checks the table
            with pytest.raises(RunFormatError, match=re.escape(message)):
                for layer in run.layers:
                    run.layer_updates(1, layer.name)
            with pytest.raises(RunFormatError, match=re.escape(message)):
                run.update(1, "c2")
    if "'updates" in message:  # and so does HDF5's direct chunk read, where rows are not read at their offsets
        with monkeypatch.context() as patch:
            patch.delattr(os, "preadv")
            with open_run(path) as run:
                with pytest.raises(RunFormatError, match=re.escape(message)):
                    for layer in run.layers:
                        run.layer_updates(1, layer.name)
                with pytest.raises(RunFormatError, match=re.escape(message)):
                    run.update(1, "c2")
    with open_run(path) as run:  # and what inspect checks: a file it accepts is one analyze reads to the end
        with pytest.raises(RunFormatError, match=re.escape(message)):
            run.validate()
    out = _cli("analyze", path)
    _refused(out, str(info.value))


TINY_MODEL = """
import torch


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(x.flatten(1))
"""


def _broken_state(path, case):
    """small_run with a final state (round 2's global model), then broken as ``case`` says."""
    with h5py.File(path, "r+") as f:
        f.copy("rounds/0000000002/global", spec.FINAL)
        if case == "final lacks a layer":
            del f["final/0001"]
        elif case == "final layer of another shape":
            _replace(f, "final/0000", np.zeros((4, 3), np.float32))
        elif case == "global lacks a layer":
            f["rounds/0000000002/global"].move("0001", "0002")
        elif case == "global layer of another shape":
            _replace(f, "rounds/0000000002/global/0000", np.zeros(12, np.float32))
        elif case == "final layer of complex numbers":  # was read, its imaginary part dropped
            _replace(f, "final/0000", np.zeros((3, 4), np.complex64))


_STATE_BREAKS = {
    "final lacks a layer": "'/final' lacks '0001' (layer 'fc.bias')",
    "final layer of another shape": "'/final': '0000' (layer 'fc.weight') has shape (4, 3), not (3, 4)",
    "global lacks a layer": "round 2: 'global' lacks '0001' (layer 'fc.bias')",
    "global layer of another shape": "round 2: 'global': '0000' (layer 'fc.weight') has shape (12,), not (3, 4)",
    "final layer of complex numbers": "'/final': '0000' (layer 'fc.weight') holds complex64, not booleans, integers or real floats",
}


_CONSEQUENCE = {
    "global lacks a layer": ", but",  # small_run is too small for the detectors that read the global models
    "final lacks a layer": ", but trigger inversion cannot use the final state, and",
    "final layer of another shape": ", but trigger inversion cannot use the final state, and",
    "attachment not a group": ", but trigger inversion cannot use the attachments, and",
    "attachments a dataset": ", but trigger inversion cannot use the attachments, and",
    # a fresh-eyes writer by hand: format.md says an attachment holds no complex numbers (nor text), inspect took them
    "attachment of complex numbers": ", but trigger inversion cannot use the attachments, and",
    "no created": ", but",
    "created with an offset": ", but",
    "meta not JSON": ", but",
}


@pytest.mark.parametrize("case", list(_CONSEQUENCE))
def test_an_audit_names_the_damaged_parts_no_verdict_rests_on_which_inspect_refuses(small_run, tmp_path, case):
    """inspect refused these files while analyze audited them without a word and showed "final state: yes".
    A run naming its model (as simulate's do) had the CLI's inversion hint read the damaged clean data and refuse
    the audit after it ran; /attachments as a dataset refused the summary. A run without its 'created' attribute
    and a round's malformed global model were audited without a report-level word."""
    path = tmp_path / "state.h5"
    path.write_bytes(small_run.read_bytes())
    if case == "no created":
        with h5py.File(path, "r+") as f:
            del f.attrs[spec.ATTR_CREATED]
        line = f"{path}: no '{spec.ATTR_CREATED}' attribute (docs/format.md: every run has one)"
    elif case == "created with an offset":
        with h5py.File(path, "r+") as f:
            f.attrs[spec.ATTR_CREATED] = "2026-11-22T18:59:34+05:00"
        line = (
            f"{path}: 'created' is '2026-11-22T18:59:34+05:00', not a time in UTC to the second in ISO 8601 "
            "(2026-11-22T18:59:34+00:00)"
        )
    elif case == "meta not JSON":  # a review: analyze refused it (exit 2), though format.md lists it as audited past
        with h5py.File(path, "r+") as f:
            f.attrs[spec.ATTR_META] = "{not json"
        line = f"{path}: the '{spec.ATTR_META}' attribute is not JSON"
    elif case == "attachment not a group":
        with h5py.File(path, "r+") as f:
            f.create_group(spec.ATTACHMENTS)["clean_data"] = np.zeros(3)
            f.attrs[spec.ATTR_META] = json.dumps({"model_factory": "fedforensics.zoo:digits_cnn"})
        line = f"{path}: '/{spec.ATTACHMENTS}': 'clean_data' is not a group"
    elif case == "attachments a dataset":
        with h5py.File(path, "r+") as f:
            f[spec.ATTACHMENTS] = np.zeros(3)
        line = f"{path}: '{spec.ATTACHMENTS}' is not a group"
    elif case == "attachment of complex numbers":
        with h5py.File(path, "r+") as f:
            f.create_dataset(f"{spec.ATTACHMENTS}/clean_data/x", data=np.zeros((2, 8, 8), np.complex64))
            f.create_dataset(f"{spec.ATTACHMENTS}/clean_data/y", data=np.zeros(2, np.int64))
        line = f"{path}: '/{spec.ATTACHMENTS}/clean_data': 'x' holds complex64, not booleans, integers or real floats"
    else:
        _broken_state(path, case)
        line = f"{path}: {_STATE_BREAKS[case]}"
    with open_run(path) as run:
        assert list(run.damaged_parts().values()) == [line]
        report = analyze(run)
    assert report.summary.damaged == [line]
    assert report.summary.final_state is (case == "global lacks a layer")  # small_run has no final state of its own
    assert [note for note in report.notes if "malformed in parts" in note] == [
        f"the file is malformed in parts no verdict rests on ({line}): the verdicts stand{_CONSEQUENCE[case]} "
        "`fedforensics inspect` refuses the file"
    ]
    cli = [sys.executable, "-m", "fedforensics.cli"]
    audited = subprocess.run([*cli, "analyze", str(path), "--json", str(tmp_path / "r.json")], capture_output=True, text=True)
    assert audited.returncode == 0, audited.stderr
    assert json.loads((tmp_path / "r.json").read_text())["run"]["damaged"] == [line]
    _refused(subprocess.run([*cli, "inspect", str(path)], capture_output=True, text=True), line)


def test_a_malformed_global_model_is_said_to_cost_the_detectors_that_ran_and_read_it(tmp_path):
    """The note named `avoidance` and `free-rider` whatever ran, and where neither applied (a run of 2–4 clients)."""
    rng = np.random.default_rng(0)
    path = tmp_path / "big.h5"
    g = {"fc.weight": np.zeros((3, 1200), np.float32), "fc.bias": np.zeros(3, np.float32)}  # avoidance: 1 % ≥ 32 coordinates
    with Recorder(path) as rec:
        for r in range(8):
            with rec.round(r, g) as rnd:
                updates = [{k: 1.0 + rng.normal(size=v.shape) for k, v in g.items()} for _ in range(8)]
                for c, update in enumerate(updates):
                    rnd.client(f"c{c}", update, num_samples=5, delta=True)
            g = {k: (v + np.mean([u[k] for u in updates], axis=0)).astype(np.float32) for k, v in g.items()}  # FedAvg
    _broken_state(path, "global lacks a layer")
    notes = {}
    with open_run(path) as run:
        for names in (["free-rider"], ["avoidance", "free-rider"], ["norm"]):
            (notes[len(names), names[0]],) = [
                n for n in analyze(run, [get_detector(name) for name in names]).notes if "malformed in parts" in n
            ]
    assert ", but `free-rider` leaves out the rounds whose global model it cannot read, and" in notes[1, "free-rider"]
    assert ", but `avoidance` and `free-rider` leave out the rounds whose global model they cannot read, and" in notes[2, "avoidance"]
    assert notes[1, "norm"].endswith("the verdicts stand, but `fedforensics inspect` refuses the file")


def test_a_sound_run_has_no_damaged_parts(small_run):
    with open_run(small_run) as run:
        assert run.damaged_parts() == {}


@pytest.mark.parametrize("case", _STATE_BREAKS)
def test_a_state_missing_a_layer_or_of_another_shape_is_refused(small_run, tmp_path, case):
    """final_state() returned a state that crashed trigger inversion later (KeyError, size mismatch);
    global_state(r) the same. Only analyze --model reads them (after the scan, which is left intact)."""
    path = tmp_path / "state.h5"
    path.write_bytes(small_run.read_bytes())
    _broken_state(path, case)
    line = f"{path}: {_STATE_BREAKS[case]}"
    with open_run(path) as run:
        with pytest.raises(RunFormatError) as info:
            run.final_state() if case.startswith("final") else run.global_state(2)
        assert str(info.value) == line
        assert set(run.global_state(1)) == {"fc.weight", "fc.bias"}
    (tmp_path / "tiny_model.py").write_text(TINY_MODEL)
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "clean.npz", x=rng.normal(size=(8, 1, 2, 2)).astype(np.float32), y=np.arange(8) % 3)
    args = ["--model", "tiny_model:Tiny", "--data", tmp_path / "clean.npz"]
    out = subprocess.run(
        [sys.executable, "-m", "fedforensics.cli", "analyze", str(path), *map(str, args), *(["--round", "2"] if "global" in case else [])],
        capture_output=True, text=True, cwd=tmp_path,
    )
    _refused(out, line)


@pytest.mark.parametrize(
    "rounds, asked, said",
    [
        ((0, 5), 3, "it has rounds 0 and 5"),
        ((), 0, "it has no rounds"),
        ((4,), 0, "it has round 4 only"),
        (range(30), 30, "it has rounds 0, 1, …, 29 (30 rounds)"),
    ],
)
def test_a_round_not_in_the_run_is_refused_naming_the_rounds_it_has(tmp_path, rounds, asked, said):
    """A run of rounds 0 and 5 said "rounds [0]..[5]" (as if 0 to 5), and one without rounds "rounds []..[]"
    (a fresh-eyes user)."""
    from recorder import Recorder

    path = tmp_path / "rounds.h5"
    with Recorder(path) as rec:
        for r in rounds:
            with rec.round(r, {"w": np.zeros(2, np.float32)}) as rnd:
                rnd.client("a", {"w": np.ones(2, np.float32)}, num_samples=1)
    with open_run(path) as run, pytest.raises(KeyError) as info:
        run.clients(asked)
    assert info.value.args[0] == f"round {asked} is not in this run: {said}"


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
        malformed = f"{path}: round 448: 'updates' lacks '0001' (layer 'fc.bias')"
        with pytest.raises(RunFormatError, match=re.escape(malformed)), run.guarded():
            raise RunFormatError(malformed)
        stat = path.stat()
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))  # a writer committed a round
        with pytest.raises(RunFormatError, match="the file changed while it was being read"), run.guarded():
            raise KeyError("object '0000000448' doesn't exist")
        with pytest.raises(RunFormatError, match="the file changed while it was being read"), run.guarded():
            raise RunFormatError(malformed)  # a round the writer was still writing can look malformed


def test_a_failure_while_a_writer_holds_the_file_is_named_as_such(small_run, tmp_path):
    """`inspect` on a file a recorder was still writing gave a traceback, or called a round it caught half written
    "not a round group", when the writer's last change had not yet moved the file's size or time: a writer's lock
    on the file says as much."""
    from recorder.lock import WriterLock, writer_holds

    path = tmp_path / "live.h5"
    path.write_bytes(small_run.read_bytes())
    with open_run(path) as run:
        assert not writer_holds(path) and not run.changed()
        lock = WriterLock(path)  # as a recorder holds it from start to close
        try:
            assert writer_holds(path) and run.changed()
            # the failure itself is named too: the lock says a writer is there, not that it caused this
            said = "the file changed while it was being read .* \\(reading failed with KeyError: \"object '0000000280' doesn't exist\"\\)"
            with pytest.raises(RunFormatError, match=said), run.guarded():
                raise KeyError("object '0000000280' doesn't exist")
        finally:
            lock.release()
        assert not run.changed()


def test_inspect_says_a_recorder_is_still_writing_a_file_it_holds(tmp_path):
    """`inspect` on a file a recorder was writing right then said only that the recorder never closed it and that
    later rounds may be missing (a fresh-eyes user): the writer's lock says it is at work."""
    from rich.console import Console

    from fedforensics.notes import coverage_notes
    from fedforensics.report.terminal import render_summary
    from fedforensics.summary import summarize
    from recorder import Recorder

    def said(path: Path) -> tuple[bool, str, list[str]]:
        console = Console(record=True, width=200)
        with open_run(path) as run:
            summary = summarize(run)
            render_summary(console, summary)
            return summary.writing, " ".join(console.export_text().split()), coverage_notes(run, [], [], {})

    path = tmp_path / "live.h5"
    with pytest.raises(RuntimeError, match="crashed"), Recorder(path) as rec:
        with rec.round(0, {"w": np.zeros(2, np.float32)}) as rnd:
            rnd.client("a", {"w": np.ones(2, np.float32)}, num_samples=1)
        writing, text, notes = said(path)
        assert writing and "unfinished a recorder is still writing this file: later rounds are not in it yet" in text
        assert notes[0] == "a recorder is still writing live.h5: rounds after the last one here are not in it yet"
        raise RuntimeError("the federation crashed")  # the run left unfinished, its lock released
    writing, text, notes = said(path)
    assert not writing and "unfinished the recorder never closed the file: later rounds may be missing" in text
    assert notes[0].startswith("the recorder never closed live.h5")


@pytest.mark.parametrize("pair, read", [("failures/reasons", "failures"), ("global_metrics/values", "global_metrics")])
def test_optional_pairs_of_unequal_length_are_refused(tmp_path, pair, read):
    """zip() cut the longer side short: a failed client or a global metric vanished without a word."""
    path = tmp_path / "pairs.h5"
    g = {"w": np.zeros(4, np.float32)}
    with Recorder(path) as rec:
        with rec.round(0, g) as rnd:
            rnd.client("c0", g, num_samples=1)
            rnd.failure("c1", "timeout")
            rnd.failure("c2", "timeout")
            rnd.global_metrics({"accuracy": 0.9, "loss": 0.3})
    with h5py.File(path, "r+") as f:
        values = f[f"rounds/0000000000/{pair}"][()][:1]
        del f[f"rounds/0000000000/{pair}"]
        f[f"rounds/0000000000/{pair}"] = values
    with open_run(path) as run, pytest.raises(RunFormatError, match=f"round 0: '{pair.split('/')[0]}' pairs 2 names with 1 values"):
        getattr(run, read)(0)


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



def test_a_failed_id_is_paired_with_a_client_only_where_it_is_a_flower_node_s(tmp_path):
    """The run facts' failed_nodes, from the Flower adapter's node tables as it writes them (docs/flower.md): a node
    id, or node-<node id>, with what that node reported; an id a client reported itself ("5", which node 3 reported)
    is no node's, though node 5 reported another, nor is a number the adapter never writes ("0042")."""
    from fedforensics.summary import summarize

    path = tmp_path / "nodes.h5"
    g = {"w": np.zeros(2, np.float32)}
    with Recorder(path) as rec:
        with rec.round(1, g) as rnd:
            rnd.client("c0", g, num_samples=1)
            for cid in ("5", "node-5", "0042", "99", "42"):
                rnd.failure(cid, "error reply")
        rec.attach(spec.FLOWER_NODE_TABLE, client_id=np.array([5, 7], np.int64), node_id=np.array([3, 5], np.uint64))
        rows = np.zeros((1, 6), np.uint8)
        rows[0] = np.frombuffer(b"site-a", np.uint8)
        rec.attach(spec.FLOWER_NODE_NAME_TABLE, client_id=rows, node_id=np.array([99], np.uint64))
    with open_run(path) as run:
        assert summarize(run).failed_nodes == {"node-5": ["7"], "99": ["site-a"]}


def test_one_client_past_a_list_is_one_more_client():
    """A fresh-eyes researcher's inspect: "failed replies 13: client-0 (round 0), ... and 1 more clients"."""
    from fedforensics.notes import listed

    assert listed(["a", "b", "c"], 2, "clients") == "a, b and 1 more client"
    assert listed(["a", "b", "c", "d"], 2, "clients") == "a, b and 2 more clients"
    assert listed(["a", "b", "c"], 2) == "a, b and 1 more"

def test_inspect_says_how_many_failed_replies_and_nan_updates_its_tables_leave_out(tmp_path):
    """A fresh-eyes researcher's 25 dropouts: inspect listed 20 of them in its table and said nothing of the other 5
    (nor of NaN/Inf updates past 20)."""
    path = tmp_path / "dropouts.h5"
    g, bad = {"w": np.zeros(4, np.float32)}, {"w": np.full(4, np.nan, np.float32)}
    with Recorder(path) as rec:
        for r in range(25):
            with rec.round(r, g) as rnd:
                rnd.client("c0", g, num_samples=1)
                rnd.client("c1", bad if r < 22 else g, num_samples=1)
                rnd.failure("c9", "timeout")
    text = " ".join(_inspect(path).stdout.split())
    assert "24:c9" not in text and "19:c9 │ timeout │ └──────────────┴─────────┘ and 5 more (--json)" in text
    assert "21:c1" not in text and "19:c1 │ 4 │ └──────────────┴────────┘ and 2 more (--json)" in text

@pytest.fixture()
def full_run(tmp_path):
    """A run with every optional part: failures, global metrics, final state, ground truth, attachment."""
    path = tmp_path / "full.h5"
    g = {"fc.weight": np.zeros((3, 4), np.float32), "fc.bias": np.zeros(3, np.float32)}
    with Recorder(path) as rec:
        for r in range(2):
            with rec.round(r, g) as rnd:
                for c in range(3):
                    rnd.client(f"c{c}", {k: v + c for k, v in g.items()}, num_samples=5, metrics={"train_accuracy": 0.9})
                rnd.failure("c9", "timeout")
                rnd.global_metrics({"accuracy": 0.5})
        rec.final(g)
        rec.ground_truth(["c1"])
        rec.attach("clean_data", x=np.zeros((4, 2)), y=np.zeros(4, int))
    return path


def _as(kind):
    """A rewrite that puts a ``kind`` where the named part was."""

    def put(f, name):
        del f[name]
        if kind == "group":
            f.create_group(name)
        elif kind == "table":
            f.create_dataset(name, data=np.zeros((2, 2)))
        elif kind == "texts":
            f.create_dataset(name, data=["a", "b"], dtype=h5py.string_dtype())
        elif kind == "dataset":
            f.create_dataset(name, data=3)
        elif kind != "nothing":
            raise AssertionError(kind)

    return put


#: Parts of full_run, replaced by something of another kind: each crashed inspect, analyze or
#: evaluate with a traceback (`'Group' object has no attribute 'shape'`, `Field names only allowed
#: for compound types`, `'Dataset' object has no attribute 'items'`) or was called valid by inspect.
_PART_BREAKS = {
    ("rounds/0000000001/metrics", "group"): "round 1: 'metrics' is not a dataset",
    ("rounds/0000000001/updates", "table"): "round 1: 'updates' is not a group",
    ("rounds/0000000001/clients", "table"): "round 1: 'clients' has shape (2, 2), not a list",
    ("rounds/0000000001/metric_names", "group"): "round 1: 'metric_names' is not a dataset",
    ("rounds/0000000001/failures", "dataset"): "round 1: 'failures' is not a group",
    ("rounds/0000000001/failures/reasons", "nothing"): "round 1: 'failures' lacks 'reasons'",
    ("rounds/0000000001/global_metrics/values", "texts"): "round 1: 'global_metrics': 'values' holds object, not numbers",
    ("rounds/0000000001/global", "dataset"): "round 1: 'global' is not a group",
    ("layers/analysable", "texts"): "'/layers': 'analysable' holds object, not booleans",
    ("layers/shape", "group"): "'/layers': 'shape' is not a dataset",
    ("layers", "dataset"): "'layers' is not a group",
    ("ground_truth", "dataset"): "'ground_truth' is not a group",
    ("ground_truth/malicious", "table"): "'/ground_truth': 'malicious' has shape (2, 2), not a list",
    ("attachments", "dataset"): "'attachments' is not a group",
    ("attachments/clean_data", "dataset"): "'/attachments': 'clean_data' is not a group",
    ("attachments/clean_data/x", "group"): "'/attachments/clean_data': 'x' is not a dataset",
    ("final/0000", "table"): "'/final': '0000' (layer 'fc.weight') has shape (2, 2), not (3, 4)",
}


@pytest.mark.parametrize("part, kind", _PART_BREAKS)
def test_a_part_of_the_wrong_kind_is_refused_in_one_line(full_run, tmp_path, part, kind):
    path = tmp_path / "broken.h5"
    path.write_bytes(full_run.read_bytes())
    with h5py.File(path, "r+") as f:
        _as(kind)(f, part)
    line = f"{path}: {_PART_BREAKS[part, kind]}"
    with pytest.raises(RunFormatError) as info:
        with open_run(path) as run:
            run.validate()
    assert str(info.value) == line
    _refused(_cli("inspect", path), line)


def test_a_valid_run_with_every_optional_part_validates(full_run):
    with open_run(full_run) as run:
        run.validate()
        assert run.attachment("clean_data")["x"].shape == (4, 2) and run.failures(1) == {"c9": "timeout"}


def test_analyze_and_evaluate_refuse_a_round_of_the_wrong_kind_in_one_line(full_run, tmp_path):
    path = tmp_path / "broken.h5"
    path.write_bytes(full_run.read_bytes())
    with h5py.File(path, "r+") as f:
        _as("group")(f, "rounds/0000000001/metrics")
    for command in ("analyze", "evaluate"):
        _refused(_cli(command, path), f"{path}: round 1: 'metrics' is not a dataset")


def test_the_finished_attribute_is_a_boolean(full_run, tmp_path):
    path = _edited(full_run, tmp_path / "finished.h5", lambda f: f.attrs.__setitem__(spec.ATTR_FINISHED, "yes"))
    with pytest.raises(RunFormatError, match="'finished' is 'yes', not a boolean"):
        open_run(path).validate()


def test_a_layer_table_declaring_a_huge_layer_is_refused_before_memory_is_set_aside(small_run, tmp_path):
    """A layer table damaged to say (3, 2**40) made analyze allocate 200 TiB for the round: a traceback
    (MemoryError) before the round's tables were checked against it."""
    from fedforensics.analysis import analyze

    path = tmp_path / "huge.h5"
    path.write_bytes(small_run.read_bytes())
    with h5py.File(path, "r+") as f:
        f["layers/shape"][0] = np.array([3, 2**40])
    with open_run(path) as run, pytest.raises(RunFormatError, match=r"'updates/0000' has shape \(\d+, 3, 4\), not"):
        analyze(run)


def _edited(source, path, edit):
    """A copy of the run file ``source`` at ``path``, changed by ``edit(h5py.File)``."""
    path.write_bytes(source.read_bytes())
    with h5py.File(path, "r+") as f:
        edit(f)
    return path


_TYPE_BREAKS = {
    "analysable of other integers": (
        lambda f: _replace(f, "layers/analysable", np.array([1, 2])),
        "'/layers': 'analysable' holds integers other than 0 and 1, not booleans",
    ),
    "client ids as integers": (
        lambda f: _replace(f, "rounds/0000000001/clients", np.array([0, 1, 2])),
        "round 1: 'clients' holds int64, not strings",
    ),
    "ground truth as integers": (
        lambda f: _replace(f, "ground_truth/malicious", np.array([1])),
        "'/ground_truth': 'malicious' holds int64, not strings",
    ),
    "ground truth naming a client twice": (
        lambda f: _replace(f, "ground_truth/malicious", ["c1", "c1"], dtype=h5py.string_dtype("utf-8")),
        "'/ground_truth': 'malicious' names 'c1' twice (each malicious id appears once)",
    ),
    "client ids of bytes that are not UTF-8": (
        lambda f: _replace(f, "rounds/0000000001/clients", np.array([b"c0", b"c\xff", b"c2"], dtype="S3")),
        "round 1: 'clients' holds bytes that are not UTF-8 text",
    ),
    "client id with a NUL inside a fixed-length string": (  # numpy strips trailing NULs only: read as 'c\x001'
        lambda f: _replace(f, "rounds/0000000001/clients", np.array([b"c0", b"c\x001", b"c2"], dtype="S3")),
        "round 1: 'clients' holds a string with a NUL character inside it",
    ),
    "meta a JSON list": (
        lambda f: f.attrs.__setitem__(spec.ATTR_META, "[1, 2]"),
        "the 'meta' attribute is JSON but not an object (list)",
    ),
    "meta of bytes that are not UTF-8": (  # Latin-1 from another writer: was "not JSON"
        lambda f: f.attrs.__setitem__(spec.ATTR_META, np.bytes_('{"place": "café"}'.encode("latin-1"))),
        "the 'meta' attribute holds bytes that are not UTF-8 text",
    ),
    **{  # recorder_version was accepted and shown with U+FFFD; created was called no time
        f"{name} of bytes that are not UTF-8": (
            lambda f, name=name: f.attrs.__setitem__(name, np.bytes_(b"2026-11-22T18:59:34+00:00 caf\xe9")),
            f"the '{name}' attribute holds bytes that are not UTF-8 text",
        )
        for name in (spec.ATTR_RECORDER_VERSION, spec.ATTR_CREATED)
    },
    "meta nested deeper than the format allows": (  # was audited, and broke the report's JSON with --json
        lambda f: f.attrs.__setitem__(spec.ATTR_META, '{"x": ' + "[" * spec.META_MAX_DEPTH + "]" * spec.META_MAX_DEPTH + "}"),
        f"the 'meta' attribute nests more than {spec.META_MAX_DEPTH} levels deep",
    ),
    "meta nested deeper than Python's parser goes": (
        lambda f: f.attrs.__setitem__(spec.ATTR_META, '{"x": ' + "[" * 100_000 + "]" * 100_000 + "}"),
        f"the 'meta' attribute nests more than {spec.META_MAX_DEPTH} levels deep",
    ),
    "updates of integers": (
        lambda f: _replace(f, "rounds/0000000001/updates/0001", np.zeros((3, 3), np.int32)),
        "round 1: 'updates/0001' holds int32, not floating-point numbers",
    ),
}


@pytest.mark.parametrize("case", _TYPE_BREAKS)
def test_parts_of_the_wrong_type_are_refused_as_format_md_says(small_run, tmp_path, case):
    """inspect and analyze accepted these (QA): integer client ids read as "7", an analysable column of 2s, a
    meta list wrapped as {"value": [...]}, integer updates, a malicious id listed twice."""
    def edit(f):
        if "ground truth" in case and "ground_truth" not in f:
            f.create_dataset("ground_truth/malicious", data=["c1"], dtype=h5py.string_dtype("utf-8"))
        _TYPE_BREAKS[case][0](f)

    path = _edited(small_run, tmp_path / "typed.h5", edit)
    line = f"{path}: {_TYPE_BREAKS[case][1]}"
    _refused(_cli("inspect", path), line)
    if case.startswith(("meta", spec.ATTR_RECORDER_VERSION, spec.ATTR_CREATED)):  # no verdict rests on it: analyze
        # audits past it and names it (format.md)
        with open_run(path) as run:
            assert run.damaged_parts() == {"header": line}
    else:
        _refused(_cli("analyze", path), line)


def test_an_analysable_column_of_zeros_and_ones_is_read_as_booleans(small_run, tmp_path):
    def edit(f):
        _replace(f, "layers/analysable", np.array([1, 0]))
        _texts("layers/dtype", ["<f4", "<i8"])(f)  # an integer layer, as analysable says

    path = _edited(small_run, tmp_path / "ints.h5", edit)
    with open_run(path) as run:
        assert [layer.analysable for layer in run.layers] == [True, False]


def test_an_empty_list_of_strings_written_without_a_type_is_read(small_run, tmp_path):
    """h5py stores `data=[]` as float64: a clean run's empty ground truth so written was refused as "not strings"."""
    def edit(f):
        if "ground_truth" in f:
            del f["ground_truth"]
        f.create_dataset("ground_truth/malicious", data=[])
        _replace(f, "rounds/0000000001/metric_names", [])
        _replace(f, "rounds/0000000001/metrics", np.zeros((3, 0)))

    path = _edited(small_run, tmp_path / "empty.h5", edit)
    with open_run(path) as run:
        run.validate()
        assert run.ground_truth == [] and run.metric_names(1) == []


def _attr(name, value, where="/"):
    def edit(f):
        f[where].attrs[name] = value
    return edit


def _del_attr(name):
    def edit(f):
        del f.attrs[name]
    return edit


def _texts(name, values):
    return lambda f: _replace(f, name, values, dtype=h5py.string_dtype("utf-8"))


#: Files that break docs/format.md which inspect called valid (QA, session 27); the first five also crashed analyze
#: (exit 3, OverflowError) or had it read an incomplete round, or a round under another number than its name.
_CONTRACT_BREAKS = {
    "complete as text": (
        _attr(spec.ATTR_COMPLETE, "no", "rounds/0000000000"),
        "round group 0000000000 has 'no' as its 'complete' attribute, not a boolean",
    ),
    "complete as an array": (
        _attr(spec.ATTR_COMPLETE, np.array([1, 1]), "rounds/0000000000"),
        "round group 0000000000 has an array of shape (2,) as its 'complete' attribute, not a boolean",
    ),
    "round number beyond int64": (
        _attr(spec.ATTR_ROUND, np.uint64(2**64 - 1), "rounds/0000000000"),
        f"round group 0000000000 has {2**64 - 1} as its 'round' attribute (a round number ≥ 0)",
    ),
    "round held under another number's name": (
        _attr(spec.ATTR_ROUND, 7, "rounds/0000000000"),
        "round group 0000000000 holds round 7: its name must be '0000000007' (the round number, zero-padded to 10 digits)",
    ),
    "counts beyond int64": (
        lambda f: _replace(f, "rounds/0000000001/num_samples", np.full(3, 2**64 - 1, np.uint64)),
        f"round 1: 'num_samples' holds {2**64 - 1}, beyond the format's int64",
    ),
    "finished as 2": (_attr(spec.ATTR_FINISHED, 2), "'finished' is 2, not a boolean"),
    "rounds as a dataset": (lambda f: _as("dataset")(f, "rounds"), "'rounds' is not a group"),
    "a failed client that also replied": (
        _texts("rounds/0000000001/failures/clients", ["c1"]),
        "round 1: 'failures': client 'c1' both failed and replied in round 1",
    ),
    "a failed client named twice": (
        lambda f: (_texts("rounds/0000000001/failures/clients", ["c9", "c9"])(f),
                   _texts("rounds/0000000001/failures/reasons", ["timeout", "crash"])(f)),
        "round 1: 'failures': 'clients' names 'c9' twice",
    ),
    "an empty failed client": (
        _texts("rounds/0000000001/failures/clients", [""]), "round 1: 'failures': 'clients' holds an empty string"
    ),
    "a global metric named twice": (
        lambda f: (_texts("rounds/0000000001/global_metrics/names", ["accuracy", "accuracy"])(f),
                   _replace(f, "rounds/0000000001/global_metrics/values", np.array([0.5, 0.6]))),
        "round 1: 'global_metrics': 'names' names 'accuracy' twice",
    ),
    "a client metric named twice": (
        lambda f: (_texts("rounds/0000000001/metric_names", ["loss", "loss"])(f),
                   _replace(f, "rounds/0000000001/metrics", np.zeros((3, 2)))),
        "round 1: 'metric_names' names 'loss' twice",
    ),
    "an empty malicious id": (
        _texts("ground_truth/malicious", ["c1", ""]), "'/ground_truth': 'malicious' holds an empty client id"
    ),
    **{
        f"no {name}": (_del_attr(name), f"no '{name}' attribute (docs/format.md: every run has one)")
        for name in (spec.ATTR_CREATED, spec.ATTR_RECORDER_VERSION, spec.ATTR_META)
    },
    "created as a number": (_attr(spec.ATTR_CREATED, 2026), "'created' is 2026, not a string"),
    **{
        f"created as {text}": (
            _attr(spec.ATTR_CREATED, text),
            f"'created' is {text!r}, not a time in UTC to the second in ISO 8601 (2026-11-22T18:59:34+00:00)",
        )
        for text in (
            "yesterday afternoon", "2026-11-22T18:59:34+05:00", "2026-11-22T18:59:34.5+00:00", "2026-11-22",
            "2026-11-22T18+00:00", "2026-11-22T18:59+00:00", "2026-13-22T18:59:34+00:00",  # review: hour or minute
        )
    },
    "float layers marked not analysable": (  # a writer by hand: audited as 'no floating-point layer', all benign
        lambda f: _replace(f, "layers/analysable", np.zeros(2, bool)),
        "layer 0 of the layer table ('fc.weight') has dtype '<f4' but is marked not analysable "
        "(the floating-point layers are analysable, the others not)",
    ),
    "an integer layer marked analysable": (
        _texts("layers/dtype", ["<f4", "<i8"]),
        "layer 1 of the layer table ('fc.bias') has dtype '<i8' but is marked analysable "
        "(the floating-point layers are analysable, the others not)",
    ),
    "a final state with a member past the layers": (  # QA: refused in global/ and updates/, accepted in final/
        lambda f: f.create_dataset("final/0002", data=np.zeros(3)), "'/final' holds '0002', which is no layer of the layer table"
    ),
}


@pytest.mark.parametrize("case", _CONTRACT_BREAKS)
def test_inspect_refuses_what_breaks_the_format_document(full_run, tmp_path, case):
    edit, message = _CONTRACT_BREAKS[case]
    path = _edited(full_run, tmp_path / "broken.h5", edit)
    with pytest.raises(RunFormatError) as info:
        with open_run(path) as run:
            run.validate()
    assert str(info.value) == f"{path}: {message}"
    if case in list(_CONTRACT_BREAKS)[:5]:  # analyze reads these parts: it refuses them too, in one line
        _refused(_cli("analyze", path), f"{path}: {message}")


_BIG = "x" * 10_000_000
_CUT = f"{_BIG[:200]!r}… (10,000,000 characters)"

#: Texts of the file that a message quotes, 10 MB long: the line quoted them whole (a 10 MB error line).
_LONG_TEXTS = {
    "created": (_attr(spec.ATTR_CREATED, _BIG), f"'created' is {_CUT}, not a time in UTC to the second in ISO 8601"),
    "client id twice": (
        _texts("rounds/0000000000/clients", [_BIG, _BIG]),
        f"round 0: client {_CUT} appears 2 times in 'clients' (ids are unique within a round)",
    ),
    "failed client that replied": (
        lambda f: (_texts("rounds/0000000000/clients", ["c0", _BIG])(f),
                   f.create_dataset("rounds/0000000000/failures/clients", data=[_BIG], dtype=h5py.string_dtype()),
                   f.create_dataset("rounds/0000000000/failures/reasons", data=["timeout"], dtype=h5py.string_dtype())),
        f"round 0: 'failures': client {_CUT} both failed and replied in round 0",
    ),
    "layer name": (
        lambda f: (_texts("layers/name", [_BIG, "fc.bias"])(f), _texts("layers/dtype", ["<c8", "<f4"])(f)),
        f"layer 0 of the layer table ({_CUT}) has dtype '<c8', not booleans",
    ),
    "round group name": (
        lambda f: f.create_dataset(f"rounds/0000000000\n{_BIG}", data=0),
        f"/rounds/{('0000000000' + chr(10) + _BIG)[:200]!r}… (10,000,011 characters) is not a round group",
    ),
}


@pytest.mark.parametrize("case", _LONG_TEXTS)
def test_a_long_text_of_the_file_is_cut_in_the_line_that_names_it(small_run, tmp_path, case):
    """A 10 MB 'created', client id, layer name or round group's name was printed whole, in a 10 MB error line: cut
    past 200 characters, escaped as repr escapes it (a newline in a name made two lines), as 'format' already was."""
    edit, said = _LONG_TEXTS[case]
    path = _edited(small_run, tmp_path / "long.h5", edit)
    with pytest.raises(RunFormatError) as info:
        with open_run(path) as run:
            run.validate()
    assert said in str(info.value) and len(str(info.value)) < 1000 and "\n" not in str(info.value)


def test_a_round_group_hdf5_cannot_open_is_called_damage_not_a_wrong_layout(small_run, tmp_path):
    """A fresh-eyes auditor's run with a few bytes overwritten was refused as "/rounds/0000000001 is not a round
    group", a writer's mistake: h5py's items() gives None for an object whose header HDF5 cannot read."""
    path = tmp_path / "header.h5"
    path.write_bytes(small_run.read_bytes())
    with h5py.File(path, "r") as f:
        header = h5py.h5o.get_info(f["rounds/0000000001"].id).addr
    with open(path, "r+b") as raw:
        raw.seek(header)
        raw.write(b"\xff" * 8)
    for command in ("inspect", "analyze"):
        out = _cli(command, path)
        assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1, out
        assert out.stderr.strip().startswith(f"error: {path}: damaged run file (/rounds/0000000001: Unable to "), out.stderr


def test_a_chunk_that_no_longer_decompresses_is_named_with_its_file(tmp_path):
    """QA: analyze and evaluate printed HDF5's "Can't synchronously read data (filter returned failure during
    read)" alone: with several runs, no word of which one was damaged."""
    path = tmp_path / "gz.h5"
    g = {"w": np.zeros((8, 64), np.float32)}
    with Recorder(path, compression="gzip") as rec:
        for r in range(4):
            with rec.round(r, g) as rnd:
                for c in range(5):
                    rnd.client(f"c{c}", {"w": np.random.default_rng(r * 10 + c).normal(size=(8, 64)).astype(np.float32)}, num_samples=3)
    with h5py.File(path, "r") as f:
        chunk = f["rounds/0000000002/updates/0000"].id.get_chunk_info(1)
    with open(path, "r+b") as raw:
        raw.seek(chunk.byte_offset + 8)
        raw.write(bytes(40))
    for command in ("analyze", "evaluate"):
        out = _cli(command, path, *(["--truth", "/dev/null"] if command == "evaluate" else []))
        assert out.returncode == 2 and "Traceback" not in out.stderr, out
        assert out.stderr.strip().startswith(f"error: {path}: damaged run file ("), out.stderr
        assert "journal" not in out.stderr, out.stderr  # its writer finished it: no journal to look for
    with h5py.File(path, "r+") as f:  # as a killed writer leaves it (a fresh-eyes user's copy taken without the journal)
        f.attrs["finished"] = False
    out = _cli("analyze", path)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1, out
    assert out.stderr.strip().endswith(
        f"; its writer did not finish it: a killed writer's run is read through the journal it left beside it "
        f"({path.name}.journal), which a copy of the run must take along"
    ), out.stderr


def test_a_detector_that_could_not_read_a_global_model_says_so(tmp_path):
    """QA: with round 1's global model malformed, avoidance and free-rider said "too few clients in every round,
    or no update to compare" (base.result replaced their own note)."""
    from synthetic import WIDE, make_run

    path = make_run(tmp_path / "run.h5", rounds=3, shapes=WIDE)  # wide enough for avoidance to compare
    with h5py.File(path, "r+") as f:
        _replace(f, "rounds/0000000001/global/0000", np.zeros(3, np.float32))
    out = tmp_path / "report.json"
    result = _cli("analyze", path, "-q", "--json", out)
    assert result.returncode == 0, result.stderr
    detectors = {d["name"]: d for d in json.loads(out.read_text())["detectors"]}
    for name in ("avoidance", "free-rider"):
        assert not detectors[name]["applicable"]
        assert detectors[name]["note"] == (
            "no client could be scored (too few clients in every round, no update to compare, or no client in "
            "enough rounds for the detector's minimum); "
            "the global model of 1 round(s) could not be read (1): not compared"
        )


def test_a_client_metric_near_float64s_limit_is_audited_without_a_warning(tmp_path):
    """A fresh-eyes user: a client reporting a loss of 1e308 printed numpy's and matplotlib's "RuntimeWarning: overflow
    encountered" and their source lines to stderr 22 times (its robust z, and the HTML's metric plot, overflow)."""
    from synthetic import make_run

    path = make_run(tmp_path / "run.h5", rounds=4)
    with h5py.File(path, "r+") as f:
        for group in f["rounds"].values():
            group["metrics"][0, 0] = 1e308
    result = _cli("analyze", path, "-q", "--json", tmp_path / "report.json", "--html", tmp_path / "report.html")
    assert result.returncode == 0 and result.stderr == "", result.stderr
    # nor is the client set aside: a z that overflows to Inf counts as the farthest there is (it was unscored)
    metrics = next(d for d in json.loads((tmp_path / "report.json").read_text())["detectors"] if d["name"] == "client-metrics")
    assert metrics["flagged"] == ["c0"], metrics["scores"]


def test_a_reported_infinite_loss_is_the_farthest_value_not_an_unscored_one(tmp_path):
    """A fresh-eyes user: a client reporting a loss of Inf in every round was left unscored by client-metrics (its z
    was skipped as not finite), while docs/format.md reads only NaN as "not reported"."""
    from synthetic import make_run

    path = make_run(tmp_path / "run.h5", rounds=4)
    with h5py.File(path, "r+") as f:
        for group in f["rounds"].values():
            group["metrics"][0, 0] = np.inf
    with open_run(path) as run:
        result = analyze(run).detector("client-metrics")
    assert result.flagged == ["c0"] and result.scores["c0"] >= result.threshold


def test_a_float64_update_beyond_float32_is_set_apart_without_a_warning(tmp_path):
    """QA: a float64 update table holding 1e300 printed numpy's "RuntimeWarning: overflow encountered in cast"
    and a source line to stderr."""
    from synthetic import make_run

    path = make_run(tmp_path / "run.h5", rounds=4)
    with h5py.File(path, "r+") as f:
        wide = f["rounds/0000000001/updates/0000"][()].astype(np.float64)
        wide[0].flat[0] = 1e300
        _replace(f, "rounds/0000000001/updates/0000", wide)
    out = tmp_path / "report.json"
    result = _cli("analyze", path, "-q", "--json", out)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    report = json.loads(out.read_text())
    assert report["run"]["nonfinite_updates"] == {}  # the file holds no NaN/Inf: its facts say so
    # and the note on the mismatch names the value's range as a cause, not only a change of the file (review)
    assert any("float64 values beyond float32's range" in n for n in report["notes"]), report["notes"]


@pytest.mark.parametrize("dtype", ["<f8", ">f4", "<f2"])
def test_a_client_update_reads_as_float32_whatever_the_table_stores(tmp_path, dtype):
    """A fresh-eyes writer of run files by hand: Run.update returned a float64 (or big-endian) table's rows in its
    own dtype, not the float32 its docstring and layer_updates give, so the two reads of one update differed."""
    from synthetic import make_run

    path = make_run(tmp_path / "run.h5", rounds=3)
    with h5py.File(path, "r+") as f:
        _replace(f, "rounds/0000000001/updates/0000", f["rounds/0000000001/updates/0000"][()].astype(dtype))
    with open_run(path) as run:
        layer = run.layers[0]
        for row, cid in enumerate(run.clients(1)):
            update = run.update(1, cid)[layer.name]
            assert update.dtype == np.float32 and update.dtype.isnative
            np.testing.assert_array_equal(update, run.layer_updates(1, layer.name)[row])


def test_metric_names_in_any_order_and_an_empty_one_are_read(tmp_path):
    """Review: the validator refused an empty metric name, which the recorder writes (and Flower's records take:
    a client could make its own run unauditable), and names sorted otherwise than by code point."""
    path = tmp_path / "names.h5"
    g = {"w": np.zeros(4, np.float32)}
    with Recorder(path) as rec:
        for r in range(3):
            with rec.round(r, g) as rnd:
                for c in range(4):
                    rnd.client(f"c{c}", {"w": np.full(4, c, np.float32)}, num_samples=2, metrics={"": 0.5, "loss": 1.0})
                rnd.global_metrics({"": 0.9})
    with h5py.File(path, "r+") as f:
        _texts("rounds/0000000001/metric_names", ["loss", ""])(f)
    with open_run(path) as run:
        run.validate()
        assert run.metrics(0)["c0"] == {"": 0.5, "loss": 1.0} and run.global_metrics(0) == {"": 0.9}
        assert run.metrics(1)["c0"] == {"loss": 0.5, "": 1.0}  # the columns as the file names them
    assert _cli("analyze", path).returncode == 0


def test_a_layer_table_of_big_endian_shapes_is_read_in_its_byte_order(small_run, tmp_path):
    """QA (a writer apart from the recorder): format.md asks readers to honour the byte order the file declares; h5py
    returns a big-endian variable-length column's integers unswapped, so (3, 4) read as (216172782113783808, ...)
    and a legal file was refused."""
    def edit(f):
        shapes = [np.asarray(s) for s in f["layers/shape"][()]]
        del f["layers/shape"]
        column = f.create_dataset("layers/shape", (len(shapes),), dtype=h5py.vlen_dtype(np.dtype(">i8")))
        for i, dims in enumerate(shapes):
            column[i] = dims.astype(">i8")

    path = _edited(small_run, tmp_path / "big_endian.h5", edit)
    with open_run(small_run) as little, open_run(path) as big:
        big.validate()
        assert [layer.shape for layer in big.layers] == [layer.shape for layer in little.layers]
    assert _cli("analyze", path).returncode == 0


@pytest.mark.parametrize("created", ["2026-11-22T18:59:34+00:00", "2026-11-22T18:59:34Z", np.bytes_(b"2026-11-22T18:59:34+00:00")])
def test_a_creation_time_in_utc_to_the_second_validates(full_run, tmp_path, created):
    """(a fixed-length string attribute reads as bytes: it was shown, and checked, as "b'2026-...'")"""
    path = _edited(full_run, tmp_path / "created.h5", _attr(spec.ATTR_CREATED, created))
    with open_run(path) as run:
        run.validate()
        assert run.created == "2026-11-22T18:59:34" + ("Z" if str(created).endswith("Z") else "+00:00")


def test_a_ground_truth_group_without_its_list_is_unknown_truth(full_run, tmp_path):
    """QA: format.md says the dataset absent means unknown; a group without it (created early, or holding only a
    dataset a later version adds) was refused."""
    def edit(f):
        del f["ground_truth/malicious"]
        f.create_dataset("ground_truth/notes", data=["red team 3"], dtype=h5py.string_dtype("utf-8"))

    path = _edited(full_run, tmp_path / "truthless.h5", edit)
    with open_run(path) as run:
        run.validate()
        assert run.ground_truth is None


def test_a_malformed_global_model_beside_a_nan_update_is_named_not_refused(tmp_path):
    """A review: the scan reads a round's global model to tell whether the client or the model broke when an update
    holds NaN; a malformed one refused the whole audit there, though a run without the NaN was audited with the
    damage named."""
    from synthetic import make_run

    path = make_run(tmp_path / "g.h5", rounds=6, nan_client="c2")
    with h5py.File(path, "r+") as f:
        for key in f[spec.ROUNDS]:
            _replace(f, f"{spec.ROUNDS}/{key}/{spec.GLOBAL}/0000", np.zeros(2, np.float32))
    with open_run(path) as run:
        report = analyze(run)
    assert any(note.startswith("the file is malformed in parts no verdict rests on") for note in report.notes)
    (c2,) = [v for v in report.verdicts if v.client == "c2"]
    assert c2.verdict != "benign" and c2.evidence[0].detector == "integrity"


def test_the_recovered_file_is_closed_whatever_ends_the_open(small_run, monkeypatch):
    """A review: only an OSError from h5py closed the file object a hot journal is read through; anything else
    (an interrupt, a ValueError) left its descriptor open."""
    import fedforensics.run as run_module

    closed = []

    class Recovered:
        def __init__(self, path, *journal):
            pass

        def close(self):
            closed.append(True)

    def refuse(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(run_module, "read_journal", lambda path: (0, []))
    monkeypatch.setattr(run_module, "RecoveredFile", Recovered)
    monkeypatch.setattr(run_module.h5py, "File", refuse)
    with pytest.raises(KeyboardInterrupt):
        open_run(small_run)
    assert closed == [True]


def test_every_update_nan_with_the_global_model_malformed_is_the_model_s_fault_not_the_clients(tmp_path):
    """A review: with the round's global model unreadable, every client of a round whose updates FedAvg's NaN had
    broken was judged suspicious, while the note said no verdict rests on the global models. A broken model
    breaks every update (local - global); a client breaks only its own."""
    from recorder import Recorder

    rng = np.random.default_rng(0)
    path = tmp_path / "spread.h5"
    with Recorder(path) as rec:
        for r in range(6):
            broken = r >= 3
            state = {"a": np.full(20, np.nan if broken else 0.0), "b": np.full(5, np.nan if broken else 0.0)}
            with rec.round(r, state) as rnd:
                for i in range(6):
                    update = {"a": rng.normal(size=20), "b": rng.normal(size=5)}
                    rnd.client(f"c{i}", {k: v * np.nan if broken else v for k, v in update.items()}, num_samples=10, delta=True)
    with h5py.File(path, "r+") as f:
        f[f"{spec.ROUNDS}/{spec.round_key(3)}/{spec.GLOBAL}"].move("0001", "0002")
    with open_run(path) as run:
        report = analyze(run)
    assert report.counts["benign"] == 6, [(v.client, v.verdict) for v in report.verdicts]
    assert any(note.startswith("the global model held NaN/Inf from round 3 on") for note in report.notes)


def test_a_pipe_is_refused_as_not_a_regular_file_rather_than_waited_on(tmp_path):
    """QA: `analyze FIFO` waited for a writer for ever, and `analyze <(cat run.h5)` said the HDF5 file was not one."""
    fifo = tmp_path / "run.fifo"
    os.mkfifo(fifo)
    with pytest.raises(RunFormatError, match="is not a regular file"):
        open_run(fifo)
    command = [sys.executable, "-m", "fedforensics.cli", "inspect", str(fifo)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)  # a regression hangs, not passes
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "not a regular file" in result.stderr


def test_a_round_missing_a_layer_names_the_group_and_the_layer(tmp_path):
    """A fresh-eyes user deleted one layer of a round's global model: "round 3 does not hold every layer" said neither
    that it was the global model nor which layer."""
    from synthetic import make_run

    path = make_run(tmp_path / "r.h5", clients=4, rounds=4)
    with h5py.File(path, "r+") as f:
        del f[spec.ROUNDS][spec.round_key(2)][spec.GLOBAL][spec.layer_key(1)]
    with pytest.raises(RunFormatError, match=r"round 2: its 'global' group holds 3 of the 4 layers; missing 0001 \('fc1.bias'\)"):
        open_run(path)


def test_per_client_datasets_of_other_numeric_dtypes_are_read_converted_as_format_md_says(tmp_path):
    """A fresh-eyes writer of run files found int32 counts and float32 metrics accepted where format.md names int64 and
    float64 and says nothing of others: they are read converted (documented now), and audited alike."""
    from synthetic import make_run

    path = make_run(tmp_path / "run.h5", rounds=4, attackers=("c0",), attack="boost")
    with open_run(path) as run:
        before = {v.client: v.verdict for v in analyze(run).verdicts}
    with h5py.File(path, "r+") as f:
        for group in f["rounds"].values():
            for name, dtype in (("num_samples", np.int32), ("nonfinite", np.int16), ("metrics", np.float32)):
                data = group[name][()]
                del group[name]
                group.create_dataset(name, data=data.astype(dtype))
    with open_run(path) as run:
        run.validate()
        assert run.num_samples(0)["c1"] == 50 and isinstance(run.num_samples(0)["c1"], int)
        assert {v.client: v.verdict for v in analyze(run).verdicts} == before


def _rows_left_unwritten(f, layout):
    """Rewrite round 1's update table of layer 0 as another writer may leave it: created for every client, the last
    client's row never written (``"rows"``: chunked by row, HDF5's fill value 7; ``"contiguous"``: no row written)."""
    key = f"rounds/{spec.round_key(1)}/updates/{spec.layer_key(0)}"
    table = f[key][()]
    del f[key]
    if layout == "rows":
        rows = f.create_dataset(key, shape=table.shape, dtype=np.float32, chunks=(1, *table.shape[1:]), fillvalue=7.0)
        rows[:-1] = table[:-1]
    else:
        f.create_dataset(key, shape=table.shape, dtype=np.float32)


@pytest.mark.parametrize(
    "layout, said",
    [
        ("rows", "row 9 (client 'c9') was never written"),
        ("contiguous", "nothing of it was written"),
    ],
)
def test_an_update_row_never_written_is_refused_not_read_as_the_fill_value(tmp_path, layout, said):
    """A fresh-eyes writer of run files by hand created a round's update table for every client asked, then one
    reply never came: inspect called the file valid and analyze audited HDF5's fill value (zeros, or the 7 the
    table declared) as that client's update, an update nobody sent, evidence against it."""
    from synthetic import make_run

    path = make_run(tmp_path / "run.h5", rounds=3)
    with h5py.File(path, "r+") as f:
        _rows_left_unwritten(f, layout)
    line = f"{path}: round 1: 'updates/0000' (layer 'fc1.weight'): {said} (HDF5 reads what was never written as the table's fill value)"
    with open_run(path) as run:
        with pytest.raises(RunFormatError) as info:
            run.validate()
        assert str(info.value) == line
        with pytest.raises(RunFormatError):
            run.update_matrix(1)
    for command in ("inspect", "analyze"):
        _refused(_cli(command, path), line)


def test_a_state_never_written_is_a_damaged_part_not_a_model_of_zeros(tmp_path):
    """The same writer's final state, created and never written, read as a model of zeros: inspect called it valid."""
    from synthetic import make_run

    path = make_run(tmp_path / "run.h5", rounds=3)
    with h5py.File(path, "r+") as f:
        f.create_dataset(f"{spec.FINAL}/{spec.layer_key(0)}", shape=(16, 24), dtype=np.float32)
        for i, layer in enumerate(f["layers/shape"][1:], start=1):
            f.create_dataset(f"{spec.FINAL}/{spec.layer_key(i)}", data=np.zeros(layer, np.float32))
    line = f"{path}: '/final': '0000' (layer 'fc1.weight'): nothing of it was written (HDF5 would read its fill value)"
    with open_run(path) as run:
        assert run.damaged_parts() == {"final": line}
    _refused(_cli("inspect", path), line)


def test_a_failure_reason_and_a_layer_shape_of_another_writer_are_cut_in_messages(tmp_path):
    """A format review: a reader must take a failure reason of any length, and Run.update named a 10-million-character
    one whole in its KeyError; a layer table's shape of a million numbers was printed whole in the refusal."""
    from synthetic import make_run

    path = make_run(tmp_path / "r.h5", clients=4, rounds=2)
    with h5py.File(path, "r+") as f:
        group = f["rounds"][sorted(f["rounds"])[0]].create_group("failures")
        group.create_dataset("clients", data=["x"], dtype=h5py.string_dtype())
        group.create_dataset("reasons", data=["r" * 10_000_000], dtype=h5py.string_dtype())
    with open_run(path) as run, pytest.raises(KeyError) as failed:
        run.update(0, "x")
    assert len(str(failed.value)) < 1_000 and "10,000,000 characters" in str(failed.value)
    with h5py.File(path, "r+") as f:
        shapes = f["layers/shape"]
        shapes[0] = np.full(1_000_000, -1)
    with pytest.raises(RunFormatError) as refused:
        open_run(path)
    assert len(str(refused.value)) < 1_000 and "characters)" in str(refused.value)


def _unfindable_by_name(path, group):
    """Damage ``group``'s index of names (an old-style group of one member) so that HDF5 lists its member but does not
    find it by name: the B-tree's last key, the greatest name below it, is set to the heap's empty name."""
    with h5py.File(path, "r") as f:
        header = h5py.h5o.get_info(f[group].id).addr
    raw = bytearray(path.read_bytes())
    position = header + 16  # a version 1 object header's messages: type, size, flags, 3 reserved bytes, the data
    for _ in range(struct.unpack_from("<H", raw, header + 2)[0]):
        kind, size = struct.unpack_from("<HH", raw, position)
        if kind == 0x11:  # the symbol table message: the B-tree's address, then the heap's
            btree = struct.unpack_from("<Q", raw, position + 8)[0]
            break
        position += 8 + size
    assert raw[btree : btree + 4] == b"TREE"
    struct.pack_into("<Q", raw, btree + 40, 0)  # signature, type, level, entries, two siblings, key 0, child 0: key 1
    path.write_bytes(raw)


@pytest.mark.parametrize("part", ["ground_truth/malicious", "final", "listed only"])
def test_an_optional_part_hdf5_cannot_open_is_damage_not_a_part_never_recorded(tmp_path, part):
    """A fuzzed run, a few bytes of the ground truth's header (or of its group's index of names) overwritten: HDF5
    could not open it, `in` said it was not there, and inspect said "ground truth: not recorded", evaluate "records no
    ground truth: give --truth FILE"."""
    from synthetic import make_run

    path = make_run(tmp_path / "run.h5", clients=4, rounds=3, attackers=("c1",), attack="boost")
    with h5py.File(path, "r+") as f:
        f.create_group("final")
        for i in range(4):
            f["final"][spec.layer_key(i)] = f["rounds/0000000002/global"][spec.layer_key(i)][()]
    if part == "listed only":
        _unfindable_by_name(path, "ground_truth")
        with h5py.File(path, "r") as f:
            assert list(f["ground_truth"]) == ["malicious"] and "malicious" not in f["ground_truth"]
    else:
        with h5py.File(path, "r") as f:
            header = h5py.h5o.get_info(f[part].id).addr
        with open(path, "r+b") as raw:
            raw.seek(header)
            raw.write(b"\xff" * 8)
    with open_run(path) as run, pytest.raises(RunFormatError, match="cannot be opened, damaged run file \\(Unable to "):
        run.final_state() if part == "final" else run.ground_truth
    for command in ("inspect",) if part == "final" else ("inspect", "evaluate"):  # analyze notes a final state's damage
        out = _cli(command, path)
        assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1, out
        assert "cannot be opened, damaged run file" in out.stderr, out.stderr


def test_a_list_of_ids_whose_type_a_flipped_bit_made_a_sequence_is_refused_unread(tmp_path):
    """A fuzzed run: one byte of a round's `clients` datatype changed (its kind of variable-length value, string, to
    an unknown one) and inspect died of a segmentation fault reading it, exit -11 and no line."""
    from synthetic import make_run

    path = make_run(tmp_path / "run.h5", clients=4, rounds=2)
    with h5py.File(path, "r") as f:
        header = h5py.h5o.get_info(f["rounds/0000000001/clients"].id).addr
    raw = bytearray(path.read_bytes())
    assert raw[header] == 1  # a version 1 object header: its messages (type, size, flags, 3 bytes, data) after 16 bytes
    position = header + 16
    while struct.unpack_from("<H", raw, position)[0] != 3:  # the datatype message
        position += 8 + struct.unpack_from("<H", raw, position + 2)[0]
    assert raw[position + 8] & 0x0F == 9 and raw[position + 9] & 0x0F == 1  # variable-length, a string
    raw[position + 9] = 0x7B
    path.write_bytes(raw)
    out = _cli("inspect", path)
    _refused(out, f"{path}: round 1: 'clients' holds object, not strings")
