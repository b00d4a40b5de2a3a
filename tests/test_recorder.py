"""The recorder's public API: round trips, partial participation, bad input."""

from __future__ import annotations

import errno
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
import types
from pathlib import Path

import h5py
import numpy as np
import pytest

from fedforensics import open_run
from fedforensics.run import Run
from recorder import Recorder, RecorderError, RoundRecorder, spec


def _state(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {
        "conv.weight": rng.normal(size=(4, 1, 3, 3)).astype(np.float32),
        "conv.bias": rng.normal(size=4).astype(np.float32),
        "bn.running_mean": rng.normal(size=4).astype(np.float32),
        "bn.num_batches_tracked": np.array(7, dtype=np.int64),
        "fc.weight": rng.normal(size=(3, 16)).astype(np.float32),
    }


def test_numpy_round_trip_with_partial_participation(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "run.h5"
    expected: dict[int, dict[str, dict[str, np.ndarray]]] = {}
    globals_: dict[int, dict[str, np.ndarray]] = {}
    participants = {0: ["a", "b", "c"], 2: ["c", 7], 5: ["b"]}  # int ids, gaps, a single client
    with Recorder(path, meta={"dataset": "synthetic"}) as rec:
        for r, ids in participants.items():
            g = _state(rng)
            globals_[r] = g
            expected[r] = {}
            with rec.round(r, g) as rnd:
                for cid in ids:
                    local = _state(rng)
                    rnd.client(cid, local, num_samples=10 + len(str(cid)), metrics={"train_accuracy": 0.5, "loss": 1})
                    expected[r][str(cid)] = {k: local[k].astype(np.float32) - g[k].astype(np.float32) for k in g}
        final = _state(rng)
        rec.final(final)
        rec.ground_truth(malicious=["c", 7])
    run = open_run(path)
    assert run.rounds == [0, 2, 5]
    assert [l.name for l in run.layers] == list(_state(rng))  # order kept
    assert [l.analysable for l in run.layers] == [True, True, True, False, True]
    assert run.clients(2) == ["c", "7"]
    assert run.ground_truth == ["c", "7"]
    assert run.meta == {"dataset": "synthetic"}
    for r, clients in expected.items():
        for cid, update in clients.items():
            got = run.update(r, cid)
            for name, value in update.items():
                assert got[name].dtype == np.float32
                np.testing.assert_array_equal(got[name], value)
        for name, value in globals_[r].items():
            np.testing.assert_array_equal(run.global_state(r)[name], value)
            assert run.global_state(r)[name].dtype == value.dtype
    assert run.num_samples(0) == {"a": 11, "b": 11, "c": 11}
    assert run.metrics(5) == {"b": {"train_accuracy": 0.5, "loss": 1.0}}
    for name, value in final.items():
        np.testing.assert_array_equal(run.final_state()[name], value)
    # fast access agrees with per-client access
    matrix = run.update_matrix(0)
    analysable = run.analysable_layers
    assert matrix.shape == (3, sum(l.size for l in analysable))
    np.testing.assert_array_equal(matrix[1, :36], expected[0]["b"]["conv.weight"].ravel())
    np.testing.assert_array_equal(run.layer_updates(0, "fc.weight")[2], expected[0]["c"]["fc.weight"])


def test_delta_updates_are_stored_as_given(tmp_path):
    g = {"w": np.ones(3, np.float32)}
    with Recorder(tmp_path / "d.h5") as rec:
        with rec.round(0, g) as rnd:
            rnd.client("x", {"w": np.array([0.5, -1.0, 2.0])}, num_samples=1, delta=True)
    np.testing.assert_array_equal(open_run(tmp_path / "d.h5").update(0, "x")["w"], [0.5, -1.0, 2.0])


@pytest.mark.parametrize(
    "make, says",
    [
        (lambda torch: torch.zeros(3, 2).to_sparse(), "pass tensor.to_dense()"),
        (lambda torch: torch.quantize_per_tensor(torch.zeros(3, 2), 0.1, 0, torch.quint8), "pass tensor.dequantize()"),
        (lambda torch: torch.zeros(3, 2, device="meta"), "tensor on meta as an array"),
    ],
    ids=["sparse", "quantized", "meta"],
)
@pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor:UserWarning")  # deprecated, still made by quantized models
def test_a_tensor_without_a_numpy_array_is_refused_by_name(tmp_path, make, says):
    """Sparse, quantized and meta-device tensors escaped as raw TypeError/NotImplementedError."""
    torch = pytest.importorskip("torch")
    g = {"w": np.zeros((3, 2), np.float32)}
    with Recorder(tmp_path / "t.h5") as rec:
        with rec.round(0, g) as rnd:
            with pytest.raises(RecorderError, match=f"round 0, client 'c0', layer 'w': cannot read .*{re.escape(says)}"):
                rnd.client("c0", {"w": make(torch)}, num_samples=1)
            rnd.client("c1", g, num_samples=1)  # the round goes on
        with pytest.raises(RecorderError, match=f"attachment 'x', array 'a': cannot read .*{re.escape(says)}"):
            rec.attach("x", a=make(torch))
    assert open_run(tmp_path / "t.h5").clients(0) == ["c1"]


def test_torch_round_trip(tmp_path):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3))
    g = {k: v.clone() for k, v in model.state_dict().items()}
    with Recorder(tmp_path / "t.h5") as rec:
        with rec.round(0, g) as rnd:
            local = {k: (v + 0.25 if v.is_floating_point() else v + 3) for k, v in g.items()}
            local["0.weight"].requires_grad_(True)
            rnd.client("c0", local, num_samples=5)
    run = open_run(tmp_path / "t.h5")
    names = [l.name for l in run.layers]
    assert names == list(g)
    tracked = run.layer("1.num_batches_tracked")
    assert not tracked.analysable and tracked.dtype == np.int64
    update = run.update(0, "c0")
    np.testing.assert_allclose(update["0.weight"], np.full((3, 4), 0.25, np.float32), rtol=0, atol=1e-6)
    assert update["1.num_batches_tracked"] == 3


def test_tensors_of_types_numpy_lacks_are_stored_as_float32(tmp_path):
    """bfloat16 and the 8-bit floats have no numpy type: stored as float32, as format.md says a writer must
    (the 8-bit floats were refused as "cannot read ... as an array")."""
    torch = pytest.importorskip("torch")
    kinds = {"bf16": torch.bfloat16, **{name: getattr(torch, name) for name in ("float8_e4m3fn", "float8_e5m2") if hasattr(torch, name)}}
    g = {name: torch.zeros(3).to(kind) for name, kind in kinds.items()}
    local = {name: torch.tensor([0.5, -1.0, 2.0]).to(kind) for name, kind in kinds.items()}
    with Recorder(tmp_path / "narrow.h5") as rec, rec.round(0, g) as rnd:
        rnd.client("c0", local, num_samples=1)
    with open_run(tmp_path / "narrow.h5") as run:
        assert all(layer.dtype == np.float32 and layer.analysable for layer in run.layers)
        for name in kinds:
            np.testing.assert_array_equal(run.update(0, "c0")[name], [0.5, -1.0, 2.0])


def test_ml_dtypes_arrays_of_types_numpy_lacks_are_stored_as_float32(tmp_path):
    """JAX's bfloat16 and 8-bit floats are numpy arrays of ml_dtypes' types: stored as float32, as torch's are (they
    were refused as "not of booleans, integers or real floats", and a float8_e5m2 global state raised h5py's
    TypeError)."""
    ml_dtypes = pytest.importorskip("ml_dtypes")
    kinds = {name: getattr(ml_dtypes, name) for name in ("bfloat16", "float8_e4m3fn", "float8_e5m2")}
    g = {name: np.zeros(3).astype(kind) for name, kind in kinds.items()}
    local = {name: np.array([0.5, -1.0, 2.0]).astype(kind) for name, kind in kinds.items()}
    with Recorder(tmp_path / "narrow.h5") as rec:
        with rec.round(0, g) as rnd:
            rnd.client("c0", local, num_samples=1)
        rec.final(local)
    with open_run(tmp_path / "narrow.h5") as run:
        assert all(layer.dtype == np.float32 and layer.analysable for layer in run.layers)
        for name in kinds:
            np.testing.assert_array_equal(run.update(0, "c0")[name], [0.5, -1.0, 2.0])
            np.testing.assert_array_equal(run.final_state()[name], [0.5, -1.0, 2.0])


def test_ml_dtypes_narrow_integers_are_stored_as_byte_wide_integers(tmp_path):
    """ml_dtypes' int4, uint4, int2 and uint2 (quantized weights) were refused as "not of booleans, integers or real
    floats", integers though they are: stored as int8 / uint8, which hold each value exactly."""
    ml_dtypes = pytest.importorskip("ml_dtypes")
    kinds = {name: getattr(ml_dtypes, name) for name in ("int4", "uint4", "int2", "uint2") if hasattr(ml_dtypes, name)}
    values = {name: np.array([0, 1, 1]).astype(kind) for name, kind in kinds.items()}
    with Recorder(tmp_path / "narrow_int.h5") as rec:
        with rec.round(0, values) as rnd:
            rnd.client("c0", values, num_samples=1)
        rec.final(values)
    with open_run(tmp_path / "narrow_int.h5") as run:
        stored = {layer.name: layer.dtype for layer in run.layers}
        assert stored == {name: np.dtype("uint8" if name.startswith("u") else "int8") for name in kinds}
        for name in kinds:
            np.testing.assert_array_equal(run.final_state()[name], [0, 1, 1])


def test_nan_and_inf_are_recorded_and_flagged(tmp_path):
    g = {"w": np.zeros(4, np.float32)}
    with Recorder(tmp_path / "n.h5") as rec:
        with rec.round(0, g) as rnd:
            rnd.client("ok", {"w": np.ones(4)}, num_samples=1)
            rnd.client("bad", {"w": np.array([np.nan, np.inf, 1, 2])}, num_samples=1)
    run = open_run(tmp_path / "n.h5")
    assert run.nonfinite(0) == {"ok": 0, "bad": 2}
    w = run.update(0, "bad")["w"]
    assert np.isnan(w[0]) and np.isinf(w[1])


def test_exception_in_a_round_discards_it_and_keeps_the_file_valid(tmp_path):
    path = tmp_path / "e.h5"
    g = {"w": np.zeros(4, np.float32)}
    with Recorder(path) as rec:
        with rec.round(0, g) as rnd:
            rnd.client("a", {"w": np.ones(4)}, num_samples=1)
        size_after_round0 = path.stat().st_size
        with pytest.raises(RuntimeError):
            with rec.round(1, g) as rnd:
                rnd.client("a", {"w": np.ones(4)}, num_samples=1)
                raise RuntimeError("training crashed")
        assert path.stat().st_size == size_after_round0
        with rec.round(1, g) as rnd:  # the same round number can be recorded again
            rnd.client("b", {"w": np.full(4, 2.0)}, num_samples=1)
    run = open_run(path)
    assert run.rounds == [0, 1]
    assert run.clients(1) == ["b"]


def test_a_writer_killed_in_the_round_after_a_discarded_one_keeps_the_committed_rounds(tmp_path):
    """A review's mutant survived every test: the file reopened after a discarded round took its committed size as
    0, and a journal written from then on would have rolled the whole run back. The run and its journal are copied
    mid-round, as a writer killed there leaves them."""
    import shutil

    from recorder.journal import journal_path

    path, copy = tmp_path / "run.h5", tmp_path / "copy" / "run.h5"
    g = {"w": np.zeros(4, np.float32)}
    with Recorder(path) as rec:
        with rec.round(0, g) as rnd:
            rnd.client("a", {"w": np.ones(4)}, num_samples=1)
        with pytest.raises(RuntimeError), rec.round(1, g) as rnd:
            rnd.client("a", {"w": np.ones(4)}, num_samples=1)
            raise RuntimeError("training crashed")
        with rec.round(1, g) as rnd:
            rnd.client("b", {"w": np.full(4, 2.0)}, num_samples=1)
            copy.parent.mkdir()
            shutil.copy(path, copy)
            shutil.copy(journal_path(path), journal_path(copy))
    with open_run(copy) as run:
        assert run.recovered and run.rounds == [0] and run.clients(0) == ["a"]
        np.testing.assert_array_equal(run.update(0, "a")["w"], np.ones(4, np.float32))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts the process's descriptors in /proc")
def test_a_run_file_that_cannot_be_emptied_leaves_no_descriptor_open(tmp_path, monkeypatch):
    """A review: the descriptor of a file whose truncation failed was never closed."""
    from recorder.journal import creation_path

    path = tmp_path / "run.h5"
    creation_path(path).parent.mkdir()
    creation_path(path).write_bytes(b"what a recorder killed as it created the run wrote")
    real_truncate = os.ftruncate

    def failing(fd, size):
        if size == 0:
            raise OSError(errno.EIO, "Input/output error")
        return real_truncate(fd, size)

    monkeypatch.setattr(os, "ftruncate", failing)
    before = len(os.listdir("/proc/self/fd"))
    with pytest.raises(OSError, match="Input/output error"):
        Recorder(path, overwrite=True)
    assert len(os.listdir("/proc/self/fd")) == before


def test_a_run_that_cannot_be_created_is_named_in_the_error_not_the_file_it_is_created_as(tmp_path, monkeypatch):
    """The run is created as .<name>.new/<name> beside it: an error there (a folder that refuses files) named that,
    not the run."""
    path = tmp_path / "run.h5"
    real_mkdir = Path.mkdir

    def refused(self, *args, **kwargs):
        if self.name == ".run.h5.new":
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(self))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", refused)
    with pytest.raises(PermissionError) as info:
        Recorder(path)
    assert info.value.filename == str(path)


def test_what_is_in_the_way_of_the_run_s_creation_is_named_in_one_line(tmp_path):
    """A file where the recorder creates its folder .<name>.new, or a folder where it creates the file in it, raised
    FileExistsError or IsADirectoryError naming the run, which did not exist; a file a killed recorder left there
    is still taken over."""
    from recorder.journal import creation_path

    path = tmp_path / "run.h5"
    creating = creation_path(path)
    creating.parent.write_text("not the recorder's")
    with pytest.raises(RecorderError, match=rf"^{re.escape(str(path))}: {re.escape(str(creating.parent))} is in the way, where the recorder puts the folder"):
        Recorder(path)
    creating.parent.unlink()
    creating.mkdir(parents=True)
    with pytest.raises(RecorderError, match=rf"^{re.escape(str(path))}: {re.escape(str(creating))} is in the way, where the recorder puts the file"):
        Recorder(path)
    assert not path.exists() and creating.is_dir()
    creating.rmdir()
    creating.write_bytes(b"what a recorder killed as it created the run wrote")
    Recorder(path).close()
    assert open_run(path).finished and not creating.parent.exists()


def test_a_missing_folder_is_refused_in_one_line_that_names_it(tmp_path):
    """A fresh-eyes review: Recorder("some/missing/folder/run.h5") raised a bare FileNotFoundError naming the run,
    not the folder. The folder is not created (a misspelt one would scatter runs), as open() and h5py do not."""
    missing, afile = tmp_path / "some" / "missing", tmp_path / "notes.txt"
    afile.write_text("not a folder")
    with pytest.raises(RecorderError, match=rf"^{re.escape(str(missing / 'run.h5'))}: folder {re.escape(str(missing))} does not exist: create it first"):
        Recorder(missing / "run.h5")
    with pytest.raises(RecorderError, match=rf"^{re.escape(str(afile / 'run.h5'))}: {re.escape(str(afile))} is a file, not a folder$"):
        Recorder(afile / "run.h5")
    link = tmp_path / "run.h5"
    link.symlink_to(missing / "elsewhere.h5")  # a link into a missing folder: that folder is named
    with pytest.raises(RecorderError, match=rf"folder {re.escape(str(missing))} does not exist"):
        Recorder(link)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "run.h5"]


def test_a_first_round_that_fails_takes_its_layer_table_with_it(tmp_path):
    """The model of the first committed round defines the layers, not a discarded round's (a review's mutant: the
    layer table of a failed first round stayed and refused the next round's other model)."""
    path = tmp_path / "first.h5"
    with Recorder(path) as rec:
        with pytest.raises(RuntimeError), rec.round(0, {"w": np.zeros(4, np.float32)}) as rnd:
            rnd.client("a", {"w": np.ones(4)}, num_samples=1)
            raise RuntimeError("the wrong model was loaded")
        with rec.round(0, {"conv.weight": np.zeros((2, 3), np.float32)}) as rnd:
            rnd.client("a", {"conv.weight": np.ones((2, 3))}, num_samples=1)
    with open_run(path) as run:
        assert [(layer.name, layer.shape) for layer in run.layers] == [("conv.weight", (2, 3))]
        assert run.rounds == [0]


def test_the_run_says_whether_the_recorder_closed_it(tmp_path):
    g = {"w": np.zeros(4, np.float32)}
    with Recorder(tmp_path / "done.h5") as rec:
        with rec.round(0, g) as rnd:
            rnd.client("a", {"w": np.ones(4)}, num_samples=1)
        with open_run(tmp_path / "done.h5") as running:  # a reader while the writer is between rounds
            assert running.finished is False and running.rounds == [0]
    with open_run(tmp_path / "done.h5") as run:
        assert run.finished is True
    with pytest.raises(RuntimeError), Recorder(tmp_path / "crashed.h5") as rec:
        with rec.round(0, g) as rnd:
            rnd.client("a", {"w": np.ones(4)}, num_samples=1)
        raise RuntimeError("the federation crashed between rounds")
    with open_run(tmp_path / "crashed.h5") as run:
        assert run.finished is False and run.rounds == [0]
    with h5py.File(tmp_path / "done.h5", "r+") as f:  # a writer that does not say
        del f.attrs["finished"]
    with open_run(tmp_path / "done.h5") as run:
        assert run.finished is None


def test_closing_with_a_round_open_discards_that_round_and_keeps_the_others(tmp_path):
    path = tmp_path / "open.h5"
    g = {"w": np.zeros(4, np.float32)}
    rec = Recorder(path)
    with rec.round(0, g) as rnd:
        rnd.client("a", {"w": np.ones(4)}, num_samples=1)
    rnd = rec.round(1, g)  # never entered as a with block, so never committed
    rnd.client("a", {"w": np.ones(4)}, num_samples=1)
    with pytest.warns(RuntimeWarning, match="round 1 was still open"):
        rec.close()
    with pytest.raises(RecorderError, match="round 1 is closed"):
        rnd.client("b", {"w": np.ones(4)}, num_samples=1)
    with open_run(path) as run:
        assert run.rounds == [0] and run.finished is False
        np.testing.assert_array_equal(run.update(0, "a")["w"], np.ones(4, np.float32))


@pytest.mark.parametrize(
    "record, message",
    [
        (lambda rnd, g: rnd.client("a\x00b", g, num_samples=1), r"client id 'a\x00b' contains a NUL character"),
        (lambda rnd, g: rnd.client("a\udcff", g, num_samples=1), r"client id 'a\udcff' is not valid Unicode"),
        (lambda rnd, g: rnd.client("a", g, num_samples=1, metrics={"acc\x00": 1.0}), r"metric name 'acc\x00'"),
        (lambda rnd, g: rnd.global_metrics({"acc\udcff": 1.0}), r"metric name 'acc\udcff' is not valid Unicode"),
    ],
)
def test_text_hdf5_cannot_hold_is_refused_when_given_not_when_the_round_is_written(tmp_path, record, message):
    """Before, a NUL in an id passed ``client`` and broke the round's write at the end of its block
    (h5py's ValueError), after every client of the round had been sent."""
    g = {"w": np.zeros(3, np.float32)}
    with Recorder(tmp_path / "text.h5") as rec:
        with rec.round(0, g) as rnd:
            rnd.client("ok", g, num_samples=1)
        with pytest.raises(RecorderError, match=re.escape(message)), rec.round(1, g) as rnd:
            record(rnd, g)
        with rec.round(1, g) as rnd:
            rnd.client("b", g, num_samples=1)
            rnd.failure("c", "worker died: \x00\udcff")  # free text is kept, escaped
    with open_run(tmp_path / "text.h5") as run:
        assert run.rounds == [0, 1] and run.clients(1) == ["b"]
        assert run.failures(1) == {"c": "worker died: \\x00\\udcff"}


def test_a_round_whose_write_fails_is_rolled_back(tmp_path, monkeypatch):
    from recorder import RoundRecorder

    g = {"w": np.zeros(3, np.float32)}
    written = RoundRecorder._write_summary

    def half_then_fail(self):
        self._round_group().create_dataset("clients", data=np.array(["x"], dtype=object), dtype=h5py.string_dtype())
        raise OSError("disk full")

    with Recorder(tmp_path / "fail.h5") as rec:
        with rec.round(0, g) as rnd:
            rnd.client("a", g, num_samples=1)
        monkeypatch.setattr(RoundRecorder, "_write_summary", half_then_fail)
        with pytest.raises(OSError, match="disk full"), rec.round(1, g) as rnd:
            rnd.client("a", g, num_samples=1)
        monkeypatch.setattr(RoundRecorder, "_write_summary", written)
        with rec.round(1, g) as rnd:
            rnd.client("b", g, num_samples=1)
    with open_run(tmp_path / "fail.h5") as run:
        assert run.rounds == [0, 1] and run.clients(1) == ["b"] and run.finished


def test_an_attachment_whose_write_fails_leaves_the_previous_one(tmp_path, monkeypatch):
    g = {"w": np.zeros(3, np.float32)}
    create = h5py.Group.create_dataset

    def fail_on_y(self, name, *args, **kwargs):
        if name == "y":
            raise OSError("disk full")
        return create(self, name, *args, **kwargs)

    with Recorder(tmp_path / "attach.h5") as rec:
        with rec.round(0, g) as rnd:
            rnd.client("a", g, num_samples=1)
        rec.attach("clean_data", x=np.ones((2, 3)), y=np.array([0, 1]))
        monkeypatch.setattr(h5py.Group, "create_dataset", fail_on_y)
        with pytest.raises(OSError, match="disk full"):
            rec.attach("clean_data", x=np.zeros((5, 3)), y=np.arange(5))
        monkeypatch.setattr(h5py.Group, "create_dataset", create)
        rec.final(g)
    with open_run(tmp_path / "attach.h5") as run:
        kept = run.attachment("clean_data")
        np.testing.assert_array_equal(kept["x"], np.ones((2, 3)))
        np.testing.assert_array_equal(kept["y"], [0, 1])
        assert run.finished and run.final_state() is not None


@pytest.mark.parametrize("name, arrays", [
    ("clean_data", {"meta/source": np.zeros(1)}),  # made a nested group, which the reader then tripped over
    ("clean_data", {".": np.zeros(1)}),
    ("clean_data", {"": np.zeros(1)}),
    ("a/b", {"x": np.zeros(1)}),
    ("..", {"x": np.zeros(1)}),
    ("clean_data", {}),
])
def test_an_attachment_is_one_group_of_named_arrays(tmp_path, name, arrays):
    with Recorder(tmp_path / "a.h5") as rec:
        with pytest.raises(RecorderError, match=r"^attach"):
            rec.attach(name, **arrays)
    with open_run(tmp_path / "a.h5") as run:
        assert run.attachment("clean_data") is None and run.attachment("a") is None


def test_failures_and_global_metrics_and_attachments(tmp_path):
    g = {"w": np.zeros(2, np.float32)}
    with Recorder(tmp_path / "f.h5") as rec:
        with rec.round(0, g) as rnd:
            rnd.failure("gone", "timeout")
            rnd.global_metrics({"accuracy": 0.9, "attack_success": np.float64(0.1)})
        with rec.round(1, g) as rnd:
            rnd.client("a", g, num_samples=3)
        rec.attach("clean_data", x=np.ones((2, 1, 2, 2), np.float32), y=np.array([0, 1]))
    run = open_run(tmp_path / "f.h5")
    assert run.clients(0) == [] and run.failures(0) == {"gone": "timeout"}
    assert run.global_metrics(0) == {"accuracy": 0.9, "attack_success": 0.1}
    assert run.update_matrix(0).shape == (0, 2)
    assert run.attachment("clean_data")["x"].shape == (2, 1, 2, 2)
    assert run.attachment("nothing") is None


@pytest.mark.parametrize(
    "action, message",
    [
        (lambda rnd, g: rnd.client("a", {**g, "extra": np.ones(1)}, num_samples=1), "round 3, client 'a', layer 'extra': unknown layer"),
        (lambda rnd, g: rnd.client("a", {"w": g["w"]}, num_samples=1), "round 3, client 'a', layer 'b': missing layer"),
        (lambda rnd, g: rnd.client("a", {**g, "w": np.ones((2, 2))}, num_samples=1), "round 3, client 'a', layer 'w': shape (2, 2)"),
        (lambda rnd, g: rnd.client("a", {**g, "w": np.array(["x"] * 4)}, num_samples=1), "round 3, client 'a', layer 'w': an array of dtype <U1, not of booleans, integers or real floats"),
        (lambda rnd, g: [rnd.client("a", g, num_samples=1), rnd.client("a", g, num_samples=1)], "round 3, client 'a': already recorded as having replied in this round"),
        # a fresh-eyes user: a failure then a reply (or the reverse) said "recorded twice"
        (lambda rnd, g: [rnd.failure("a", "timeout"), rnd.client("a", g, num_samples=1)], "round 3, client 'a': already recorded as failed in this round"),
        (lambda rnd, g: [rnd.client("a", g, num_samples=1), rnd.failure("a", "timeout")], "round 3, client 'a': already recorded as having replied in this round"),
        (lambda rnd, g: [rnd.failure("a", "timeout"), rnd.failure("a", "timeout")], "round 3, client 'a': already recorded as failed in this round"),
        (lambda rnd, g: rnd.client("a", g, num_samples=-1), "round 3, client 'a': num_samples"),
        (lambda rnd, g: rnd.client("a", g, num_samples=2**63), "round 3, client 'a': num_samples is stored as int64"),
        (lambda rnd, g: rnd.client("a", g, num_samples=1, metrics={"acc": "high"}), "round 3, client 'a': metric 'acc'"),
        (lambda rnd, g: rnd.client("a", g, num_samples=1, metrics={"n": 10**400}), "round 3, client 'a': metric 'n' is too large"),
        (lambda rnd, g: rnd.global_metrics({"n": 10**400}), "round 3: metric 'n' is too large for a float64"),
        (lambda rnd, g: rnd.client(1.5, g, num_samples=1), "round 3: client id must be str or int"),
    ],
)
def test_bad_client_input_names_round_client_and_layer(tmp_path, action, message):
    g = {"w": np.zeros(4, np.float32), "b": np.zeros(2, np.float32)}
    with Recorder(tmp_path / "bad.h5") as rec:
        with rec.round(2, g) as rnd:
            rnd.client("ok", g, num_samples=1)
        with pytest.raises(RecorderError, match=message.replace("(", r"\(").replace(")", r"\)")):
            with rec.round(3, g) as rnd:
                action(rnd, g)
    assert open_run(tmp_path / "bad.h5").rounds == [2]


def test_a_count_too_large_for_the_file_is_refused_at_the_call_and_the_round_kept(tmp_path):
    """num_samples=2**63 passed ``client`` and made the round's end raise OverflowError: the round was lost."""
    g = {"w": np.zeros(4, np.float32)}
    with Recorder(tmp_path / "n.h5") as rec:
        with rec.round(0, g) as rnd:
            rnd.client("a", g, num_samples=2**63 - 1)
            with pytest.raises(RecorderError, match="num_samples is stored as int64"):
                rnd.client("b", g, num_samples=2**63)
            rnd.client("b", g, num_samples=7)
    run = open_run(tmp_path / "n.h5")
    assert run.num_samples(0) == {"a": 2**63 - 1, "b": 7}


def test_bad_round_numbers_and_global_states(tmp_path):
    g = {"w": np.zeros(4, np.float32)}
    with Recorder(tmp_path / "r.h5") as rec:
        with rec.round(5, g):
            pass
        for bad in (5, 4):
            with pytest.raises(RecorderError, match=f"round {bad}: round numbers must increase"):
                rec.round(bad, g)
        with pytest.raises(RecorderError, match="round number must be an int"):
            rec.round("6", g)
        for huge in (2**63, 2**64):  # stored as int64: h5py wrote uint64, then failed at the round's end
            with pytest.raises(RecorderError, match=f"round {huge}: round numbers are stored as int64"):
                rec.round(huge, g)
        with pytest.raises(RecorderError, match="round 6, layer 'w': shape"):
            rec.round(6, {"w": np.zeros(5)})
        with pytest.raises(RecorderError, match="round 6, layer 'v': unknown layer"):
            rec.round(6, {"w": np.zeros(4), "v": np.zeros(1)})


def test_existing_file_is_refused_unless_overwrite(tmp_path):
    path = tmp_path / "x.h5"
    path.write_bytes(b"precious")
    with pytest.raises(RecorderError, match="exists already: pass overwrite=True to replace it with a new, empty run "
                       r"\(a run cannot be appended to: record a federation resumed after a crash into a new file\)$"):
        Recorder(path)  # a researcher resuming after a crash: overwriting loses the rounds (a fresh-eyes review)
    assert path.read_bytes() == b"precious"
    with Recorder(path, overwrite=True):
        pass
    assert h5py.is_hdf5(path)


@pytest.mark.parametrize(
    "where, existing",
    [("run", None), ("creation", b""), ("creation", b"half a run" * 1000), ("run", b"an earlier run" * 1000)],
    ids=["new", "an empty creation file", "a half-created run", "an earlier run"],
)
def test_a_file_is_emptied_only_when_it_holds_something(tmp_path, monkeypatch, where, existing):
    """ext4 writes out, in the thread that closes it, a file truncated to zero ("auto_da_alloc"): the recorder
    truncated the empty file its lock had just created, and closing a 1.6 GB run recorded with fsync=False took
    0.76 s (the benchmark's no-fsync write fell to 0.46× raw h5py). Only a file holding something is emptied: the
    one a recorder killed while it created the run left; an earlier run is replaced whole, not emptied."""
    from recorder.journal import creation_path

    path = tmp_path / "run.h5"
    files = (path, creation_path(path))
    if existing is not None:
        files[where == "creation"].parent.mkdir(exist_ok=True)
        files[where == "creation"].write_bytes(existing)
    emptied = []
    real_open, real_truncate = os.open, os.ftruncate

    def opened(name, flags, *args):
        if Path(name) in files and flags & os.O_TRUNC:
            emptied.append("O_TRUNC")
        return real_open(name, flags, *args)

    def truncated(fd, size):
        if size == 0 and any(f.exists() and os.path.samestat(os.fstat(fd), os.stat(f)) for f in files):
            emptied.append("ftruncate")
        return real_truncate(fd, size)

    monkeypatch.setattr(os, "open", opened)
    monkeypatch.setattr(os, "ftruncate", truncated)
    with Recorder(path, overwrite=existing is not None) as rec:
        _two_rounds(rec, np.random.default_rng(0))
    assert emptied == (["ftruncate"] if where == "creation" and existing else [])
    with open_run(path) as run:
        assert run.rounds == [0, 1] and len(run.clients(1)) == 4


def _two_rounds(rec: Recorder, rng: np.random.Generator) -> None:
    for r in range(2):
        state = _state(rng)
        with rec.round(r, state) as rnd:
            for c in range(4):
                rnd.client(f"c{c}", {k: v + c for k, v in state.items()}, num_samples=10)


def test_a_second_writer_of_a_file_being_written_is_refused_and_changes_nothing(tmp_path):
    """QA: a second recorder with overwrite=True truncated the file under the first and both lost it."""
    path, rng = tmp_path / "run.h5", np.random.default_rng(0)
    first = Recorder(path)
    _two_rounds(first, rng)
    size = path.stat().st_size
    for overwrite in (True, False):  # without overwrite, told "exists already: pass overwrite=True", then the lock
        with pytest.raises(RecorderError, match="locked by another recorder"):
            Recorder(path, overwrite=overwrite)
    assert path.stat().st_size == size
    holder = "import sys, time; from recorder import Recorder; r = Recorder(sys.argv[1], overwrite=True)"
    other = subprocess.run([sys.executable, "-c", holder, str(path)], capture_output=True, text=True)
    assert other.returncode != 0 and "locked by another recorder" in other.stderr
    with first.round(2, _state(rng)) as rnd:  # the first writer carries on, unharmed
        rnd.client("c0", _state(rng), num_samples=1)
    first.close()
    with open_run(path) as run:
        assert run.rounds == [0, 1, 2] and run.finished
    with Recorder(path, overwrite=True):  # closed: the file is free again
        pass


def test_a_recorder_dropped_without_close_lets_go_and_leaves_its_last_commit(tmp_path):
    path, rng = tmp_path / "run.h5", np.random.default_rng(0)
    forgotten = Recorder(path)
    _two_rounds(forgotten, rng)
    del forgotten
    import gc

    gc.collect()
    assert not (tmp_path / "run.h5.journal").exists()
    with open_run(path) as run:
        assert run.rounds == [0, 1] and run.finished is False
    with Recorder(path, overwrite=True):
        pass


def test_a_recorder_alive_at_exit_leaves_no_journal(tmp_path):
    """QA: a script that never called close() left a hot journal, and inspect said the writer stopped mid-round."""
    script = (
        "import sys, numpy as np; from recorder import Recorder\n"
        "rec = Recorder(sys.argv[1])\n"
        "for r in range(3):\n"
        "    with rec.round(r, {'w': np.zeros(50, np.float32)}) as rnd:\n"
        "        rnd.client('a', {'w': np.ones(50, np.float32)}, num_samples=1)\n"
    )
    path = tmp_path / "run.h5"
    subprocess.run([sys.executable, "-c", script, str(path)], check=True)
    assert not (tmp_path / "run.h5.journal").exists()
    with open_run(path) as run:
        assert run.rounds == [0, 1, 2] and run.finished is False and not run.recovered


def test_float64_weights_keep_updates_float32_holds(tmp_path):
    """QA: float64 weights near 300 moved by 1e-6 were stored as an update of exactly 0 (float32 before subtracting)."""
    path = tmp_path / "f64.h5"
    base = np.full(8, 300.0)
    with Recorder(path) as rec, rec.round(0, {"w": base}) as rnd:
        rnd.client("a", {"w": base + 1e-6}, num_samples=1)
        rnd.client("b", {"w": base + np.arange(8) * 1e-4}, num_samples=1)
    with open_run(path) as run:
        np.testing.assert_allclose(run.update(0, "a")["w"], 1e-6, rtol=1e-4)
        np.testing.assert_allclose(run.update(0, "b")["w"], np.arange(8) * 1e-4, rtol=1e-4, atol=1e-12)


def test_a_name_too_long_for_its_journal_is_refused_before_anything_is_written(tmp_path):
    """A name of 248-255 bytes made the file, then failed with Errno 36 on its journal at the first round."""
    too_long, longest = tmp_path / ("a" * 245 + ".h5"), tmp_path / ("b" * 244 + ".h5")
    with pytest.raises(RecorderError, match="too long a file name.*at most 247 bytes"):
        Recorder(too_long)
    assert list(tmp_path.iterdir()) == []
    with Recorder(longest) as rec, rec.round(0, {"w": np.zeros(2)}) as rnd:
        rnd.client("a", {"w": np.ones(2)}, num_samples=1)
    assert [p.name for p in tmp_path.iterdir()] == [longest.name]


def test_meta_keeps_numpy_values_and_names_the_rest(tmp_path):
    """QA: meta said "JSON-serialisable" while storing any object as its repr; numpy numbers became strings."""
    from pathlib import PurePosixPath

    path = tmp_path / "meta.h5"
    meta = {"lr": np.float32(0.5), "clients": np.int64(10), "shape": np.array([2, 3]), "data": PurePosixPath("/d/x")}
    with Recorder(path, meta=meta):
        pass
    with open_run(path) as run:
        assert run.meta == {"lr": 0.5, "clients": 10, "shape": [2, 3], "data": "/d/x"}
    with pytest.raises(RecorderError, match="meta is not JSON-serialisable"):
        Recorder(tmp_path / "bad.h5", meta={(1, 2): "a", "b": 2})  # a key JSON cannot hold
    assert not (tmp_path / "bad.h5").exists()


def test_an_exit_handler_that_closes_the_recorder_still_can(tmp_path):
    """QA: the recorder's own exit hook detached the file before a trainer's atexit.register(rec.close) ran, which
    then failed. A handler registered after the recorder runs first and closes it; one registered before finds it
    closed, unfinished, and is a no-op instead of an error."""
    script = (
        "import atexit, sys, numpy as np; from recorder import Recorder\n"
        "early = []\n"
        "if sys.argv[2] == 'before': atexit.register(lambda: early[0].close())\n"
        "rec = Recorder(sys.argv[1]); early.append(rec)\n"
        "if sys.argv[2] == 'after': atexit.register(rec.close)\n"
        "with rec.round(0, {'w': np.zeros(5, np.float32)}) as rnd:\n"
        "    rnd.client('a', {'w': np.ones(5, np.float32)}, num_samples=1)\n"
    )
    for order, finished in (("after", True), ("before", False)):
        path = tmp_path / f"{order}.h5"
        done = subprocess.run([sys.executable, "-c", script, str(path), order], capture_output=True, text=True)
        assert done.returncode == 0 and done.stderr == "", done.stderr
        with open_run(path) as run:
            assert run.rounds == [0] and run.finished is finished and not run.recovered


def test_a_forked_child_does_not_keep_the_file_locked(tmp_path):
    """QA: a worker forked while recording (a multiprocessing pool) kept the lock after the recorder closed."""
    path, rng = tmp_path / "run.h5", np.random.default_rng(0)
    rec = Recorder(path)
    child = os.fork()
    if child == 0:  # the worker: outlives the recorder
        time.sleep(5)
        os._exit(0)
    try:
        _two_rounds(rec, rng)
        rec.close()
        with Recorder(path, overwrite=True):
            pass
    finally:
        os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)


def test_a_filesystem_without_locks_records_unlocked(tmp_path, monkeypatch):
    """QA: ENOLCK (NFS without lockd) or EOPNOTSUPP (some FUSE mounts) made recording impossible."""
    import fcntl

    def unsupported(fd, operation):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", unsupported)
    with Recorder(tmp_path / "run.h5") as rec:
        _two_rounds(rec, np.random.default_rng(0))
    with open_run(tmp_path / "run.h5") as run:
        assert run.rounds == [0, 1] and run.finished


def test_a_dangling_symlink_is_recorded_through_and_a_failed_start_leaves_no_file(tmp_path, monkeypatch):
    link = tmp_path / "link.h5"
    link.symlink_to(tmp_path / "target.h5")
    with Recorder(link) as rec:
        _two_rounds(rec, np.random.default_rng(0))
    assert (tmp_path / "target.h5").is_file()
    from recorder import writer

    def refuse(*args, **kwargs):
        raise OSError(errno.EMFILE, "Too many open files")

    monkeypatch.setattr(writer, "JournaledFile", refuse)
    with pytest.raises(OSError, match="Too many open files"):
        Recorder(tmp_path / "new.h5")
    assert not (tmp_path / "new.h5").exists()  # QA: an empty file was left, and a retry refused as existing


def test_a_float64_global_with_float32_clients_keeps_small_updates(tmp_path):
    """QA: a server's float64 master copy 1e-5 above a client's float32 weights was cast to float32 first: update 0."""
    base = np.full(4, 300.0) + 1e-5
    with Recorder(tmp_path / "mixed.h5") as rec, rec.round(0, {"w": base}) as rnd:
        rnd.client("a", {"w": np.full(4, 300.0, np.float32)}, num_samples=1)
    with open_run(tmp_path / "mixed.h5") as run:
        np.testing.assert_allclose(run.update(0, "a")["w"], -1e-5, rtol=1e-4)


@pytest.mark.parametrize("blocked", [True, False])
def test_recorder_works_without_torch(tmp_path, blocked):
    """With torch unimportable the recorder records; with torch installed it does not import it."""
    script = f"""
import sys
if {blocked}:
    sys.modules["torch"] = None  # any import of torch now fails
import numpy as np
from recorder import Recorder
with Recorder({str(tmp_path / 'nt.h5')!r}) as rec:
    with rec.round(0, {{"w": [1.0, 2.0]}}) as rnd:
        rnd.client(0, {{"w": [[1.5, 2.5]][0]}}, num_samples=1)
print("torch imported" if sys.modules.get("torch") is not None else "ok")
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ok"
    np.testing.assert_array_equal(open_run(tmp_path / "nt.h5").update(0, "0")["w"], [0.5, 0.5])


@pytest.mark.parametrize("compression", [None, "gzip"])
def test_an_empty_layer_is_recorded_and_read_back(tmp_path, compression):
    """A layer with a zero-length axis (HDF5 chunks must be >= 1) round-trips instead of crashing."""
    path = tmp_path / "empty.h5"
    state = {"w": np.zeros((2, 2)), "empty": np.zeros((0, 3))}
    with Recorder(path, compression=compression) as rec:
        for r in range(2):
            with rec.round(r, state) as rnd:
                rnd.client("a", {"w": np.full((2, 2), r + 1.0), "empty": np.zeros((0, 3))}, num_samples=1)
        rec.final(state)
    run = open_run(path)
    assert run.update(1, "a")["empty"].shape == (0, 3)
    assert np.array_equal(run.update(1, "a")["w"], np.full((2, 2), 2.0, np.float32))
    assert run.final_state()["empty"].shape == (0, 3)


@pytest.mark.parametrize(
    "malicious, says",
    [
        (None, "a list of client ids, not NoneType"),  # was a raw TypeError
        ("c1", "a list of client ids, not str"),
        (["c1", 7, "7"], "client '7' is named twice"),  # was accepted: 7 and "7" are one id in the file
    ],
)
def test_ground_truth_is_a_list_of_distinct_ids(tmp_path, malicious, says):
    with Recorder(tmp_path / "t.h5") as rec:
        with pytest.raises(RecorderError, match=re.escape(says)):
            rec.ground_truth(malicious)
        rec.ground_truth([])
    assert open_run(tmp_path / "t.h5").ground_truth == []


def test_a_client_id_too_long_to_name_a_client_is_refused_in_one_line(tmp_path):
    """A fresh-eyes review: a 10 MB id was recorded and `analyze` printed a report of 39 MB; an int of 5,000 digits
    raised Python's own ValueError (its limit of int to str) from client(). The round goes on without them."""
    g = {"w": np.zeros(2, np.float32)}
    with Recorder(tmp_path / "t.h5") as rec:
        with rec.round(0, g) as rnd:
            with pytest.raises(RecorderError, match=r"^round 0: client id of 1,025 characters is refused, at most 1,024: an id names a client$"):
                rnd.client("x" * 1025, g, num_samples=1)
            with pytest.raises(RecorderError, match=r"^round 0: client id of more than 4,300 digits is refused, at most 1,024"):
                rnd.failure(10**5000, "timeout")
            rnd.client("y" * 1024, g, num_samples=1)
            rnd.client(10**1023, g, num_samples=1)
        with pytest.raises(RecorderError, match="ground truth: client id of 2,000 characters is refused"):
            rec.ground_truth(["z" * 2000])
    assert open_run(tmp_path / "t.h5").clients(0) == ["y" * 1024, str(10**1023)]


def test_names_longer_than_a_name_are_refused_in_one_line_as_client_ids_are(tmp_path):
    """A review: a metric name of 10 million characters made `analyze` take 70 s and write a JSON report of 20 MB, a
    layer name as long 10 minutes and 100 MB. Metric, layer and attachment names are held to an id's limit, each
    refused in a line that quotes its beginning alone; the round goes on without them."""
    from recorder import NAME_MAX_LENGTH

    g, long = {"w": np.zeros(2, np.float32)}, "m" * 10**7
    says = rf"is refused, at most {NAME_MAX_LENGTH:,}: a name, not a text$"
    with Recorder(tmp_path / "t.h5") as rec:
        with pytest.raises(RecorderError, match=rf"^round 0: layer name 'LLLL.*'… of 1,025 characters {says}"):
            rec.round(0, {"L" * 1025: g["w"]})
        with rec.round(0, g) as rnd:
            with pytest.raises(RecorderError, match=rf"^round 0, client 'a': metric name '{'m' * 40}'… of 10,000,000 characters {says}"):
                rnd.client("a", g, num_samples=1, metrics={long: "not even a number"})
            with pytest.raises(RecorderError, match=rf"^round 0: metric name '.*'… of 10,000,000 characters {says}"):
                rnd.global_metrics({long: 0.5})
            rnd.client("a", g, num_samples=1, metrics={"m" * NAME_MAX_LENGTH: 1.0})
        for name, key in ((long, "x"), ("x", long + "/")):
            with pytest.raises(RecorderError, match=rf"^attach.*name '.*'… of 10,000,00\d characters {says}"):
                rec.attach(name, **{key: np.zeros(2)})
    with open_run(tmp_path / "t.h5") as run:
        assert run.metric_names(0) == ["m" * NAME_MAX_LENGTH] and not run.attachments


def test_a_failure_reason_too_long_to_read_keeps_its_beginning_and_end(tmp_path):
    """A review: a reason of 10 million characters took 10 MB of the file in every round it came in; refused, it would
    have cost the round. It keeps its first and last 5,000 characters (a traceback ends with its error), with a marker
    that says how much was cut; a reason of 10,000 characters is kept whole."""
    from recorder import REASON_MAX_LENGTH

    g, reason = {"w": np.zeros(2, np.float32)}, "Traceback:" + "x" * 10**7 + "ValueError: boom"
    with Recorder(tmp_path / "t.h5") as rec, rec.round(0, g) as rnd:
        rnd.client("a", g, num_samples=1)
        rnd.failure("b", reason)
        rnd.failure("c", "y" * REASON_MAX_LENGTH)
    with open_run(tmp_path / "t.h5") as run:
        kept = run.failures(0)
    half = REASON_MAX_LENGTH // 2
    assert kept["b"] == f"{reason[:half]} … [{len(reason) - REASON_MAX_LENGTH:,} characters cut] … {reason[-half:]}"
    assert kept["b"].endswith("ValueError: boom") and kept["c"] == "y" * REASON_MAX_LENGTH


def test_a_second_ground_truth_final_or_attachment_replaces_the_first(tmp_path):
    """A fresh-eyes user named attackers one call at a time and kept only the last: the docstrings now say that a
    later call replaces (the Flower adapter rewrites its node table so), and this pins it."""
    with Recorder(tmp_path / "t.h5") as rec:
        with rec.round(0, {"w": np.zeros(2, np.float32)}) as rnd:
            rnd.client("c1", {"w": np.ones(2, np.float32)}, num_samples=1)
        rec.ground_truth(["c1"])
        rec.ground_truth(["c2", "c3"])
        rec.final({"w": np.ones(2, np.float32)})
        rec.final({"w": np.full(2, 2.0, np.float32)})
        rec.attach("a", x=np.arange(3))
        rec.attach("a", y=np.arange(2))
    run = open_run(tmp_path / "t.h5")
    assert run.ground_truth == ["c2", "c3"]
    np.testing.assert_array_equal(run.final_state()["w"], [2.0, 2.0])
    assert set(run.attachment("a")) == {"y"}


def test_the_global_state_is_taken_when_the_round_opens(tmp_path):
    """A trainer that trains one model in place after opening the round (load the global state, step,
    record) changed the recorded global model and every update with it: all were stored as zeros."""
    weights = np.zeros(6, np.float32)  # one model's parameter, reused by every client
    with Recorder(tmp_path / "live.h5") as rec:
        with rec.round(0, {"w": weights}) as rnd:
            for i, cid in enumerate(("a", "b"), start=1):
                weights[:] = 0.0  # load the global state
                weights += i  # train in place
                rnd.client(cid, {"w": weights}, num_samples=1)
    run = open_run(tmp_path / "live.h5")
    np.testing.assert_array_equal(run.global_state(0)["w"], np.zeros(6))
    assert run.update(0, "a")["w"].tolist() == [1.0] * 6 and run.update(0, "b")["w"].tolist() == [2.0] * 6


def test_closing_the_recorder_inside_a_round_block_discards_the_round_quietly_on_exit(tmp_path):
    """Leaving the block after close() (from a finally or a signal handler) raised OSError: Bad file descriptor."""
    g = {"w": np.zeros(3, np.float32)}
    rec = Recorder(tmp_path / "closed.h5")
    with rec.round(0, g) as rnd:
        rnd.client("c0", g, num_samples=1)
    with pytest.warns(RuntimeWarning, match="round 1 was still open when the recorder closed and is discarded"):
        with rec.round(1, g) as rnd:
            rnd.client("c0", g, num_samples=1)
            rec.close()
    run = open_run(tmp_path / "closed.h5")
    assert run.rounds == [0] and run.finished is False


def test_the_warning_of_a_round_discarded_at_close_points_at_the_trainer_s_line(tmp_path):
    """It pointed into recorder/__init__.py instead of the trainer's close() or `with` line (a fresh-eyes user)."""
    import warnings

    g = {"w": np.zeros(3, np.float32)}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rec = Recorder(tmp_path / "close.h5")
        rec.round(0, g)
        rec.close()
        with Recorder(tmp_path / "exit.h5") as rec:
            rec.round(0, g)
    assert [w.category for w in caught] == [RuntimeWarning] * 2
    assert [w.filename for w in caught] == [__file__] * 2


def test_threads_may_share_a_recorder(tmp_path):
    """A server recording each reply from the thread that received it: 35 of 48 rows held another client's update
    or zeros, with no error, and concurrent first calls raised HDF5's 'name already exists'. Calls run one at a
    time now."""
    import threading

    path = tmp_path / "threads.h5"
    g = {"w": np.zeros((50, 20), np.float32), "b": np.zeros(20, np.float32)}
    with Recorder(path) as rec:
        for r in range(4):
            with rec.round(r, g) as rnd:

                def reply(c: int, rnd=rnd, r=r) -> None:
                    update = {k: np.full(v.shape, 100 * r + c, np.float32) for k, v in g.items()}
                    rnd.client(f"c{c}", update, num_samples=c + 1, delta=True)

                threads = [threading.Thread(target=reply, args=(c,)) for c in range(12)]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()
    with open_run(path) as run:
        for r in run.rounds:
            assert sorted(run.clients(r), key=lambda cid: int(cid[1:])) == [f"c{c}" for c in range(12)]
            samples = run.num_samples(r)
            for cid in run.clients(r):
                c = int(cid[1:])
                assert samples[cid] == c + 1
                assert all(np.all(values == 100 * r + c) for values in run.update(r, cid).values())


def test_a_closed_journaled_file_refuses_writes(tmp_path):
    """An h5py file left alive past its recorder (an interrupt between two steps of closing) flushed its caches
    through the closed file's descriptor number, by then another file's: the next run read as empty."""
    from recorder.journal import JournaledFile

    file = JournaledFile(tmp_path / "j.h5", create=True)
    file.write(b"abc")
    file.close()
    with pytest.raises(ValueError, match="write to a closed file"):
        file.write(b"more")
    with pytest.raises(ValueError, match="write to a closed file"):
        file.truncate(0)
    file.close()  # again: nothing closed twice
    assert (tmp_path / "j.h5").read_bytes() == b"abc"


def test_ctrl_c_as_the_recorder_closes_leaves_no_hdf5_file_open(tmp_path, monkeypatch):
    """A KeyboardInterrupt raised as h5py's close began (Ctrl-C lands on a Python function's entry) left the HDF5
    file open but forgotten: the recorder rolled back and closed its descriptors, and when Python freed the file,
    HDF5 flushed its caches into a closed (or reused) descriptor: a stray journal, a segfault at exit, or the next
    run's file read as empty."""
    import gc

    import h5py

    path = tmp_path / "run.h5"
    rec = _recorded(path, 3)
    monkeypatch.setattr(h5py.File, "close", _failing_once(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        rec.close()
    assert rec._h5 is None  # closed by the rollback, not dropped open
    monkeypatch.undo()
    del rec
    gc.collect()
    assert not (tmp_path / "run.h5.journal").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["run.h5"]
    with open_run(path) as run:
        assert run.rounds == [0, 1, 2] and run.finished is False


def test_meta_nested_beyond_the_format_s_depth_or_holding_itself_is_refused(tmp_path):
    """A meta that holds itself raised RecursionError; one nested hundreds deep was stored and then broke the
    JSON of every report carrying it (docs/format.md: at most spec.META_MAX_DEPTH levels)."""
    deepest: object = 1
    for _ in range(spec.META_MAX_DEPTH - 1):
        deepest = [deepest]
    with Recorder(tmp_path / "ok.h5", meta={"x": deepest}):
        pass
    with open_run(tmp_path / "ok.h5") as run:
        assert run.meta == {"x": deepest}
    looped: dict = {}
    looped["self"] = looped
    looped["again"] = looped  # each level once: walked level by level, two references had doubled every level
    proxied: object = 1
    for _ in range(spec.META_MAX_DEPTH):
        proxied = types.MappingProxyType({"k": proxied})  # any mapping, as the recorder stores it
    # an array is stored as lists as deep as its dimensions: what the reader would then refuse
    for meta in ({"x": [deepest]}, looped, {"x": proxied}, {"x": np.zeros((1,) * spec.META_MAX_DEPTH)}):
        with pytest.raises(RecorderError, match=f"meta nests more than {spec.META_MAX_DEPTH} levels deep"):
            Recorder(tmp_path / "deep.h5", meta=meta)
        assert not (tmp_path / "deep.h5").exists()


def test_meta_keys_of_mixed_types_are_stored_as_json_writes_them(tmp_path):
    """{"dataset": ..., 42: ...} is valid for json.dumps, but sorting the keys failed: "meta is not
    JSON-serialisable: '<' not supported between instances of 'int' and 'str'"."""
    path = tmp_path / "meta.h5"
    with Recorder(path, meta={"dataset": "digits", 42: "answer", "nested": {1: "a", "b": 2}}) as rec:
        with rec.round(0, {"w": np.zeros(2)}) as rnd:
            rnd.client("c0", {"w": np.ones(2)}, num_samples=1)
    with open_run(path) as run:
        assert run.meta == {"42": "answer", "dataset": "digits", "nested": {"1": "a", "b": 2}}
    with pytest.raises(RecorderError, match="meta is not JSON-serialisable"):
        Recorder(tmp_path / "tuple.h5", meta={(1, 2): "a tuple key JSON cannot hold"})


def test_a_float64_global_beyond_float32s_range_is_not_warned_about(tmp_path):
    """rec.round() cast the float64 global to float32 for the fast path and numpy warned of the overflow (an error
    under -W error), though such a state is subtracted in float64."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with Recorder(tmp_path / "big.h5") as rec:
            with rec.round(0, {"w": np.array([1e300, 1.0])}) as rnd:
                rnd.client("c0", {"w": np.array([1e300, 2.0])}, num_samples=1)
    with open_run(tmp_path / "big.h5") as run:
        assert run.update(0, "c0")["w"].tolist() == [0.0, 1.0]


def _written_by(script: str, path) -> Run:
    """The run ``script`` (``python -c``, the run's path its argument) writes in a process of its own, which must
    exit 0."""
    done = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return open_run(path)


def test_a_forked_child_that_exits_leaves_its_parents_run_alone(tmp_path):
    """A review: the exit handler a child inherits closed the recorder there, unfinished: it rolled back the
    parent's file on disk mid-round and deleted its journal, and the parent's next commit failed."""
    path = tmp_path / "fork.h5"
    script = (
        "import os, sys, numpy as np; from recorder import Recorder\n"
        "rec = Recorder(sys.argv[1])\n"
        "with rec.round(0, {'w': np.zeros(100)}) as rnd:\n"
        "    rnd.client('c0', {'w': np.ones(100)}, num_samples=1)\n"
        "rnd = rec.round(1, {'w': np.zeros(100)}).__enter__()\n"
        "rnd.client('c0', {'w': np.ones(100)}, num_samples=1)\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    sys.exit(0)  # atexit handlers run in the child\n"
        "os.waitpid(pid, 0)\n"
        "rnd.client('c1', {'w': np.ones(100)}, num_samples=1)\n"
        "rnd.__exit__(None, None, None)\n"
        "rec.close()\n"
    )
    with _written_by(script, path) as run:
        assert run.rounds == [0, 1] and run.finished is True and run.clients(1) == ["c0", "c1"]


def test_a_forked_child_leaving_an_inherited_round_block_or_recording_in_it_leaves_the_run_alone(tmp_path):
    """QA: a child that left the round block it inherited (sys.exit unwinds it) rolled the parent's file back on disk
    and truncated it: round 1 stayed 'complete' with a hole where an update was, and the parent's commit failed.
    Workers of a fork pool calling client() on the inherited round got no error, and their clients were lost."""
    path = tmp_path / "fork.h5"
    script = (
        "import os, sys, numpy as np; from recorder import Recorder, RecorderError\n"
        "S = lambda v: {'w': np.full(50000, v, np.float32)}\n"
        "with Recorder(sys.argv[1]) as rec:\n"
        "    with rec.round(0, S(0)) as rnd:\n"
        "        rnd.client('a', S(1), num_samples=1)\n"
        "    with rec.round(1, S(0)) as rnd:\n"
        "        rnd.client('a', S(2), num_samples=1)\n"
        "        for child in ('exits', 'records'):\n"
        "            pid = os.fork()\n"
        "            if pid == 0:\n"
        "                if child == 'records':\n"
        "                    try:\n"
        "                        rnd.client('w', S(7), num_samples=1)\n"
        "                    except RecorderError as exc:\n"
        "                        os._exit(0 if 'belongs to process' in str(exc) else 5)\n"
        "                    os._exit(6)\n"
        "                sys.exit(0)  # unwinds the inherited blocks\n"
        "            assert os.waitpid(pid, 0)[1] == 0, child\n"
        "        rnd.client('b', S(3), num_samples=1)\n"
        "    with rec.round(2, S(0)) as rnd:\n"
        "        rnd.client('a', S(4), num_samples=1)\n"
    )
    with _written_by(script, path) as run:
        run.validate()
        assert run.rounds == [0, 1, 2] and run.finished is True and run.clients(1) == ["a", "b"]
        assert [run.update(1, c)["w"][0] for c in ("a", "b")] == [2.0, 3.0]


def test_a_round_ends_by_commit_where_a_framework_has_no_block_around_it(tmp_path):
    """Callback-style frameworks (on_round_begin / on_round_end) could commit a round only by calling its
    __exit__, and "round 0 is still open" did not say how to close it (a fresh-eyes user)."""
    path = tmp_path / "callbacks.h5"
    g = {"w": np.zeros(2, np.float32)}
    rec = Recorder(path)
    rnd = rec.round(0, g)  # on_round_begin
    rnd.client("a", {"w": np.ones(2, np.float32)}, num_samples=1)
    with pytest.raises(RecorderError, match=re.escape("round 0 is still open: leave its `with` block, or call its commit(), first")):
        rec.round(1, g)
    rnd.commit()  # on_round_end
    with open_run(path) as run:  # durable now, with the recorder still open
        assert run.rounds == [0] and run.clients(0) == ["a"]
    closed = re.escape("round 0 is closed: committed, or discarded")
    with pytest.raises(RecorderError, match=closed):
        rnd.commit()
    with pytest.raises(RecorderError, match=closed):
        rnd.client("b", {"w": np.ones(2, np.float32)}, num_samples=1)
    with rec.round(1, g) as rnd:  # committed inside its block: leaving the block adds nothing
        rnd.client("a", {"w": np.full(2, 2, np.float32)}, num_samples=1)
        rnd.commit()
    rec.close()
    with open_run(path) as run:
        assert run.rounds == [0, 1] and run.finished and run.update(1, "a")["w"].tolist() == [2.0, 2.0]


def _record_in_worker(rnd: RoundRecorder) -> None:
    rnd.client("w", {"w": np.ones(2, np.float32)}, num_samples=1)


def test_a_recorder_or_round_handed_to_another_process_raises_the_recorder_s_error(tmp_path):
    """Handing a round to a worker of a process pool raised "TypeError: cannot pickle '_thread.RLock' object",
    where the README and the docstring promise a RecorderError saying where to record (a fresh-eyes user)."""
    import concurrent.futures
    import multiprocessing
    import pickle

    path = tmp_path / "sent.h5"
    sent = f"{path}: a recorder cannot be sent to another process: record from the process that opened it"
    with Recorder(path) as rec, rec.round(0, {"w": np.zeros(2, np.float32)}) as rnd:
        for obj in (rec, rnd):
            for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
                with pytest.raises(RecorderError, match=re.escape(sent)):
                    pickle.dumps(obj, protocol)
        with concurrent.futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            with pytest.raises(RecorderError, match=re.escape(sent)):
                pool.submit(_record_in_worker, rnd).result()
        rnd.client("a", {"w": np.ones(2, np.float32)}, num_samples=1)  # the round is still the parent's to record
    with open_run(path) as run:
        assert run.clients(0) == ["a"] and run.finished


def test_a_forked_child_exits_cleanly_while_the_parent_has_another_thread(tmp_path):
    """A review: with a recorder open and any other thread alive, a forked child that exited normally died by
    SIGSEGV (h5py closing the inherited file object at exit); the parent's run stays whole."""
    path = tmp_path / "threads.h5"
    script = (
        "import os, sys, threading, numpy as np; from recorder import Recorder\n"
        "rec = Recorder(sys.argv[1], fsync=False)\n"
        "with rec.round(0, {'w': np.zeros(10)}) as rnd:\n"
        "    rnd.client('a', {'w': np.ones(10)}, num_samples=1)\n"
        "stop = threading.Event(); thread = threading.Thread(target=lambda: stop.wait()); thread.start()\n"
        "codes = []\n"
        "for _ in range(3):\n"
        "    pid = os.fork()\n"
        "    if pid == 0:\n"
        "        sys.exit(0)\n"
        "    codes.append(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))\n"
        "stop.set(); thread.join(); rec.close()\n"
        "assert codes == [0, 0, 0], codes\n"
    )
    with _written_by(script, path) as run:
        run.validate()
        assert run.rounds == [0] and run.finished is True


def test_a_relative_path_is_the_same_file_after_the_working_directory_changes(tmp_path, monkeypatch):
    """QA: after os.chdir a failed round rolled back 'run.h5' of the new directory: FileNotFoundError and the
    recorder closed for good, or, where another run of that name lay, the rest of the run was written into it."""
    here, there = tmp_path / "a", tmp_path / "b"
    here.mkdir(), there.mkdir()
    with Recorder(there / "run.h5") as other:
        with other.round(0, {"w": np.zeros(3)}) as rnd:
            rnd.client("other", {"w": np.ones(3)}, num_samples=1)
    monkeypatch.chdir(here)
    rec = Recorder("run.h5")
    with rec.round(0, {"w": np.zeros(3)}) as rnd:
        rnd.client("a", {"w": np.ones(3)}, num_samples=1)
    monkeypatch.chdir(there)
    with pytest.raises(RecorderError, match="does not match the recorded"):  # a failed round: rolled back
        with rec.round(1, {"w": np.zeros(3)}) as rnd:
            rnd.client("a", {"w": np.ones(4)}, num_samples=1)
    with rec.round(2, {"w": np.zeros(3)}) as rnd:
        rnd.client("a", {"w": np.ones(3)}, num_samples=1)
    rec.close()
    with open_run(here / "run.h5") as mine, open_run(there / "run.h5") as theirs:
        assert (mine.rounds, mine.finished) == ([0, 2], True)
        assert (theirs.rounds, theirs.clients(0)) == ([0], ["other"])


def test_a_path_that_is_no_regular_file_is_refused_and_left_alone(tmp_path):
    """QA: Recorder('/dev/null', overwrite=True) failed its first commit (fsync of a device) and then deleted the
    path it was given: as root, the system's /dev/null."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(RecorderError, match="is not a regular file"):
        Recorder(fifo, overwrite=True)
    assert fifo.exists() and not fifo.is_file()


def test_a_folder_or_a_fifo_is_refused_without_advice_to_overwrite_it(tmp_path):
    """A fresh-eyes researcher gave Recorder() an existing folder: told "exists already: pass overwrite=True to
    replace it", then, with it, "is not a regular file"."""
    folder, fifo = tmp_path / "runs", tmp_path / "pipe"
    folder.mkdir()
    os.mkfifo(fifo)
    for overwrite in (False, True):
        with pytest.raises(RecorderError, match=r"runs is a directory: give a run file's name, e.g. .*runs/run.h5$"):
            Recorder(folder, overwrite=overwrite)
        with pytest.raises(RecorderError, match="pipe is not a regular file: a run is written to a file of its own$"):
            Recorder(fifo, overwrite=overwrite)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe", "runs"] and not any(folder.iterdir())


def test_ctrl_c_that_leaves_hdf5_unable_to_close_rolls_the_round_back_and_stays_a_keyboard_interrupt(
    tmp_path, monkeypatch
):
    """QA: Ctrl-C landing while HDF5 flushed a round left it unable to close the file (h5py: "Can't decrement id
    ref count (slist already enabled?)"), and that RuntimeError, raised while the round was rolled back, replaced
    the interrupt: a traceback and exit 1 instead of 'interrupted', and a journal left beside the file."""
    path = tmp_path / "run.h5"
    rec = _recorded(path, 2)
    broken = _failing_once(RuntimeError("Can't decrement id ref count (slist already enabled?)"))
    _interrupt_round(rec, monkeypatch, broken)
    assert broken.fired
    with rec.round(3, {"w": np.zeros(4, np.float32)}) as rnd:  # the recorder goes on from its last commit
        rnd.client("c0", {"w": np.ones(4, np.float32)}, num_samples=1)
    rec.close()
    from recorder import writer

    (held,) = writer._UNCLOSABLE  # kept, with its journaled file detached: here (close only pretended) let go of
    writer._UNCLOSABLE.clear()
    held[0].close()
    held[1].close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.h5"]
    with open_run(path) as run:
        assert run.rounds == [0, 1, 3] and run.finished is True


def _recorded(path: Path, rounds: int) -> Recorder:
    """An open recorder with ``rounds`` rounds of one client committed."""
    rec = Recorder(path)
    for r in range(rounds):
        with rec.round(r, {"w": np.zeros(4, np.float32)}) as rnd:
            rnd.client("c0", {"w": np.ones(4, np.float32)}, num_samples=1)
    return rec


def _failing_once(error: BaseException):  # type: ignore[no-untyped-def]
    """A stand-in for ``h5py.File.close`` that raises ``error`` the first time, then closes (``.fired`` once it has)."""
    import h5py

    close = h5py.File.close

    def patched(self: h5py.File) -> None:
        if not patched.fired:
            patched.fired = True
            raise error
        close(self)

    patched.fired = False
    return patched



def test_a_close_that_fails_after_hdf5_let_go_holds_nothing_back(tmp_path, monkeypatch):
    """A review: where h5py's close raised after HDF5 had let go of the file, the recorder kept (None, its journaled
    file) aside, a file that could be closed left open for good."""
    import h5py

    from recorder import writer

    path = tmp_path / "run.h5"
    rec = _recorded(path, 2)
    close = h5py.File.close

    def closes_then_raises(self: h5py.File) -> None:
        close(self)
        raise RuntimeError("an error after the close")

    _interrupt_round(rec, monkeypatch, closes_then_raises)
    assert writer._UNCLOSABLE == []
    rec.close()
    with open_run(path) as run:
        assert run.rounds == [0, 1]


def _interrupt_round(rec: Recorder, monkeypatch: pytest.MonkeyPatch, close) -> None:  # type: ignore[no-untyped-def]
    """Ctrl-C inside round 2's block, with ``close`` standing in for ``h5py.File.close`` as the round is rolled back."""
    import h5py

    with pytest.raises(KeyboardInterrupt):
        with rec.round(2, {"w": np.zeros(4, np.float32)}) as rnd:
            rnd.client("c0", {"w": np.full(4, 2.0, np.float32)}, num_samples=1)
            monkeypatch.setattr(h5py.File, "close", close)
            raise KeyboardInterrupt
    monkeypatch.undo()


@pytest.mark.parametrize("meta", [[1, 2], [("dataset", "digits")], "digits", 5])
def test_a_meta_that_is_not_a_mapping_is_refused_before_anything_is_written(tmp_path, meta):
    """QA: a list raised a raw TypeError, a string a ValueError, and a list of pairs was taken as a dict."""
    path = tmp_path / "meta.h5"
    with pytest.raises(RecorderError, match=f"meta must be a mapping of names to values \\(a dict\\), got {type(meta).__name__}"):
        Recorder(path, meta=meta)
    assert not path.exists()


def test_meta_keys_written_alike_in_json_are_refused(tmp_path):
    """QA: {1: "a", "1": "b"} stored {"1": "b"}, losing a value without a word."""
    for meta in ({1: "int key", "1": "str key"}, {"nested": {True: 1, "true": 2}}):
        with pytest.raises(RecorderError, match="meta holds two keys written alike in JSON"):
            Recorder(tmp_path / "meta.h5", meta=meta)
    assert not (tmp_path / "meta.h5").exists()


def test_a_metric_name_that_is_not_a_string_is_named_as_the_fault(tmp_path):
    """QA: metrics={1: 0.5} said "metric 1 must be a number, got 0.5", blaming the value."""
    with Recorder(tmp_path / "run.h5") as rec, rec.round(0, {"w": np.zeros(2, np.float32)}) as rnd:
        with pytest.raises(RecorderError, match="metric name 1 must be a string, got int"):
            rnd.client("a", {"w": np.ones(2, np.float32)}, num_samples=1, metrics={1: 0.5})
        with pytest.raises(RecorderError, match="metric 'acc' must be a number, got 'high'"):
            rnd.client("a", {"w": np.ones(2, np.float32)}, num_samples=1, metrics={"acc": "high"})
        rnd.client("a", {"w": np.ones(2, np.float32)}, num_samples=1, metrics={"acc": 0.5})


def test_a_recorder_dropped_mid_round_leaves_its_last_commit_and_no_journal(tmp_path):
    """QA: a round opened without `with` and the recorder dropped (a notebook cell that failed half-way) left the
    round's writes in the file and its hot journal beside it: readers said a writer stopped mid-round."""
    import gc
    import hashlib

    path, g = tmp_path / "run.h5", {"w": np.zeros((64, 64), np.float32)}
    rec = Recorder(path)
    with rec.round(0, g) as rnd:
        rnd.client("a", g, num_samples=1)
    committed = hashlib.sha256(path.read_bytes()).hexdigest()
    rnd = rec.round(1, g)
    for i in range(20):
        rnd.client(i, {"w": np.ones((64, 64), np.float32)}, num_samples=1)
    del rec, rnd
    gc.collect()
    assert not (tmp_path / "run.h5.journal").exists() and hashlib.sha256(path.read_bytes()).hexdigest() == committed
    with open_run(path) as run:
        assert run.rounds == [0] and run.finished is False and not run.recovered


def test_a_wrong_argument_is_named_by_its_type_not_its_whole_repr(tmp_path):
    """QA: rec.round(state_dict, 0) gave an error of 163,512 characters and 2,062 lines (the state dict's repr)."""
    state = {f"layer{i}": np.zeros(100, np.float32) for i in range(50)}
    with Recorder(tmp_path / "run.h5") as rec:
        with pytest.raises(RecorderError, match=r"^round number must be an int, got a dict$"):
            rec.round(state, 0)  # type: ignore[arg-type]
        with rec.round(0, state) as rnd:
            with pytest.raises(RecorderError, match=r"num_samples must be a non-negative int, got a dict$"):
                rnd.client("a", state, num_samples=state)  # type: ignore[arg-type]
            with pytest.raises(RecorderError, match=r"got -1$"):
                rnd.client("a", state, num_samples=-1)


def test_num_samples_may_be_any_integer_a_trainer_counts_in(tmp_path):
    """A fresh-eyes user's num_samples=torch.tensor(5) was refused where metrics took tensors: any integer that
    operator.index takes is a count; a float, a bool and a float tensor are not."""
    torch = pytest.importorskip("torch")
    state = {"w": np.zeros(4, np.float32)}
    with Recorder(tmp_path / "run.h5") as rec:
        with rec.round(0, state) as rnd:
            for cid, count in (("a", torch.tensor(5)), ("b", np.int32(6)), ("c", np.array(7)), ("d", 8)):
                rnd.client(cid, state, num_samples=count)
            for bad in (5.0, True, np.bool_(True), torch.tensor(True), torch.tensor(5.0), torch.tensor([1, 2])):
                with pytest.raises(RecorderError, match="num_samples must be a non-negative int"):
                    rnd.client("e", state, num_samples=bad)
    with open_run(tmp_path / "run.h5") as run:
        assert run.num_samples(0) == {"a": 5, "b": 6, "c": 7, "d": 8}


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_leaving_its_copy_does_not_roll_back_the_parent_s_round(tmp_path):
    """Review: a child forked between rounds that exits (freeing its copy of the recorder) rolled back the round
    its parent was writing: the parent's round failed and the file held a wrong update that passed validate()."""
    script = textwrap.dedent("""
        import os, sys, time, numpy as np
        from recorder import Recorder
        state = lambda v: {"w": np.full(50_000, v, np.float32)}

        def record(path):
            with Recorder(path) as rec:
                with rec.round(0, state(0)) as rnd:
                    rnd.client("a", state(1), num_samples=1)
                pid = os.fork()
                if pid == 0:
                    time.sleep(0.3)
                    sys.exit(0)  # leaves the blocks it inherited, as the contract allows
                with rec.round(1, state(0)) as rnd:
                    rnd.client("a", state(2), num_samples=1)
                    time.sleep(0.6)  # the child exits meanwhile
                    rnd.client("b", state(3), num_samples=1)
                os.waitpid(pid, 0)

        record(sys.argv[1])
    """)
    path = tmp_path / "run.h5"
    result = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    with open_run(path) as run:
        assert run.rounds == [0, 1] and run.finished
        assert float(run.update(1, "a")["w"][0]) == 2.0 and float(run.update(1, "b")["w"][0]) == 3.0


def test_an_update_that_is_not_a_mapping_is_called_an_update(tmp_path):
    """Red team: a flat vector given with delta=True was refused as 'a state'; the message names what was given."""
    with Recorder(tmp_path / "r.h5") as rec:
        with rec.round(0, {"w": np.zeros(9, np.float32)}) as rnd:
            with pytest.raises(RecorderError, match=r"client 'x': an update must be a mapping of layer name to array, not ndarray"):
                rnd.client("x", np.zeros(9), num_samples=1, delta=True)
            with pytest.raises(RecorderError, match=r"client 'x': a state must be a mapping .*, not list"):
                rnd.client("x", [0.0] * 9, num_samples=1)
            rnd.client("x", {"w": np.zeros(9, np.float32)}, num_samples=1, delta=True)


def test_the_readme_says_how_to_install_the_recorder_alone_and_it_needs_nothing_else(tmp_path):
    """A fresh-eyes user with a training machine of numpy and h5py found no way in the README to install the recorder
    without scipy, scikit-learn, matplotlib and the rest: it now says, and the recorder imports none of them."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert "python3 -m pip install numpy h5py && python3 -m pip install --no-deps -e ." in readme
    script = f"""
import sys
for name in ("torch", "scipy", "sklearn", "matplotlib", "typer", "click", "rich", "fedforensics"):
    sys.modules[name] = None  # any import of them now fails
from recorder import Recorder
with Recorder({str(tmp_path / 'alone.h5')!r}) as rec, rec.round(0, {{"w": [1.0]}}) as rnd:
    rnd.client(7, {{"w": [2.0]}}, num_samples=1)
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert out.stdout.strip() == "ok", out.stderr
