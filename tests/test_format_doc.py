"""docs/format.md promises that plain h5py reads a round (its snippet runs on a recorded run), and names every part
of a run file."""

from __future__ import annotations

import re
from pathlib import Path

import h5py
import numpy as np

from recorder import Recorder, spec

DOC = Path(__file__).resolve().parents[1] / "docs" / "format.md"


def _snippet() -> str:
    section = DOC.read_text().split("## Reading a round without fedforensics", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_plain_h5py_snippet_reads_a_round(tmp_path, monkeypatch, capsys):
    rng = np.random.default_rng(0)
    g = {"conv/1.weight": rng.normal(size=(4, 3)).astype(np.float32), "bn.steps": np.array(2)}
    expected = {}
    with Recorder(tmp_path / "run.h5") as rec:
        for r in (0, 3):  # round 3 after a gap
            with rec.round(r, g) as rnd:
                for cid in ("a", 7):
                    local = {k: v + rng.normal(size=v.shape) for k, v in g.items()}
                    rnd.client(cid, local, num_samples=10)
                    # local is float64 (float32 + float64 noise): subtracted in float64, stored as float32
                    expected[str(cid)] = {k: (np.float64(local[k]) - np.float64(g[k])).astype(np.float32) for k in g}
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(_snippet(), str(DOC), "exec"), scope)
    assert scope["clients"] == ["a", "7"]
    assert scope["num_samples"] == {"a": 10, "7": 10}
    for name in g:
        assert scope["updates"][name].dtype == np.float32
        np.testing.assert_array_equal(scope["updates"][name], np.stack([expected[c][name] for c in ("a", "7")]))
        np.testing.assert_array_equal(scope["global_state"][name], g[name])
    np.testing.assert_array_equal(scope["one_layer"], scope["updates"]["conv/1.weight"])
    assert "round 3: 2 clients" in capsys.readouterr().out


def _rows(section: str) -> set[str]:
    """The names in the first column of the tables of ``section`` (a heading of format.md, to the next ``## ``)."""
    text = DOC.read_text().split(section, 1)[1].split("\n## ", 1)[0]
    return {re.search(r"`([^`]+)`", line).group(1) for line in text.splitlines() if line.startswith("| `")}


def _datasets(group: h5py.Group) -> set[str]:
    """The datasets below ``group``, a layer's key or an attachment's name and key written as format.md writes them."""
    found: list[str] = []
    group.visititems(lambda name, item: found.append(name) if isinstance(item, h5py.Dataset) else None)
    return {re.sub(r"^attachments/[^/]+/[^/]+$", "attachments/<name>/<key>", re.sub(r"/\d{4}$", "/<i>", p)) for p in found}


def test_the_tables_name_every_part_a_recorded_run_holds(tmp_path):
    """Every attribute, group and dataset the recorder writes (every optional part recorded) is a row of format.md's
    tables, or a section of its own, under the same name; and every row and section is written."""
    g = {"fc.weight": np.zeros((2, 3), np.float32), "fc.bias": np.zeros(2, np.float32)}
    with Recorder(tmp_path / "run.h5") as rec:
        with rec.round(0, g) as rnd:
            rnd.client("a", g, num_samples=1, metrics={"loss": 0.5})
            rnd.failure("b", "timeout")
            rnd.global_metrics({"accuracy": 0.9})
        rec.final(g)
        rec.ground_truth(malicious=["a"])
        rec.attach("clean_data", x=np.zeros((2, 1)), y=np.zeros(2))
    with h5py.File(tmp_path / "run.h5", "r") as f:
        assert set(f.attrs) == _rows("## Root group") and set(f["layers"]) == _rows("## Layer table")
        rnd = f["rounds/0000000000"]
        assert set(rnd.attrs) | _datasets(rnd) == _rows("## Rounds")
        outside = {p for p in _datasets(f) if not p.startswith(("rounds/", "layers/"))}
    sections = set(re.findall(r"^## [^`\n]*`/([^`]+)`$", DOC.read_text(), re.M))
    assert outside == sections - {"", "layers", "rounds/<R>"}


def test_the_layer_order_the_output_layer_is_found_by_is_the_one_format_md_asks_of_writers(tmp_path):
    """A fresh-eyes writer in another framework: format.md said the order was the first state's, not that the analyses
    take the last weight and the fitting layer after it for the output layer. Written as a sorted JAX pytree
    (bias before kernel) the output bias is not found; in the order format.md now asks for, it is."""
    from fedforensics import open_run
    from fedforensics.output_layer import find_output_layer

    text = " ".join(DOC.read_text().split())
    assert "SHOULD write the layers in the order the model applies them, each weight before its bias" in text
    found = {}
    for order in (("Dense_0/bias", "Dense_0/kernel"), ("Dense_0/kernel", "Dense_0/bias")):
        shapes = {"Dense_0/kernel": (8, 10), "Dense_0/bias": (10,)}
        g = {name: np.zeros(shapes[name], np.float32) for name in order}
        path = tmp_path / f"{order[0].rsplit('/', 1)[1]}_first.h5"
        with Recorder(path) as rec, rec.round(0, g) as rnd:
            rnd.client("a", g, num_samples=1)
        with open_run(path) as run:
            out = find_output_layer(run)
            found[order[0]] = (out.weight.name, out.bias and out.bias.name)
    assert found == {"Dense_0/bias": ("Dense_0/kernel", None), "Dense_0/kernel": ("Dense_0/kernel", "Dense_0/bias")}


def test_the_key_of_a_layer_past_the_ten_thousandth_is_the_one_format_md_gives(tmp_path):
    """format.md gave a layer's key as its index zero-padded to 4 digits and did not say what a model of more than
    10,000 tensors (a mixture of experts) gets; the recorder and the reader use as many digits as the index needs."""
    from fedforensics import open_run

    assert "an index of 10⁴ or more has as many digits as it needs (`10000`" in " ".join(DOC.read_text().split())
    assert spec.layer_key(10_000) == "10000"
    g = {f"e{i}.w": np.zeros(1, np.float32) for i in range(10_001)}
    with Recorder(tmp_path / "wide.h5", fsync=False) as rec, rec.round(0, g) as rnd:
        rnd.client("a", g, num_samples=1)
    with h5py.File(tmp_path / "wide.h5", "r") as f:
        assert "10000" in f["rounds/0000000000/updates"] and "10000" in f["rounds/0000000000/global"]
    with open_run(tmp_path / "wide.h5") as run:
        assert run.layers[10_000].name == "e10000.w" and run.update(0, "a")["e10000.w"].shape == (1,)


def test_a_numeric_attribute_written_as_an_array_of_one_element_is_read_as_format_md_says(tmp_path):
    """MATLAB's h5writeatt and some HDF5 wrappers store a scalar as an array of shape (1,): format.md said "scalar",
    and the reader refused `format_version = [1]` ("an array of shape (1,), not an integer"); format.md now says it is
    read as its element, and a writer SHOULD still write a scalar."""
    from fedforensics import open_run

    text = " ".join(DOC.read_text().split())
    assert "Writers SHOULD write a scalar; fedforensics also reads a numeric or text attribute" in text
    assert "stored as an array of exactly one element" in text
    g = {"w": np.zeros(2, np.float32)}
    with Recorder(tmp_path / "run.h5") as rec, rec.round(0, g) as rnd:
        rnd.client("a", g, num_samples=1)
    with h5py.File(tmp_path / "run.h5", "r+") as f:
        f.attrs[spec.ATTR_VERSION] = np.array([spec.FORMAT_VERSION])
    with open_run(tmp_path / "run.h5") as run:
        assert run.format_version == spec.FORMAT_VERSION and run.rounds == [0]


def test_a_layer_dtype_is_one_the_recorder_writes_and_the_reader_refuses_any_other(tmp_path):
    """format.md said a layer's dtype is numpy's `dtype.str` and refused raw bytes only: a layer of complex numbers,
    text or times written by hand, marked not analysable, was accepted and left out of every analysis. format.md now
    names the dtypes (booleans, integers, real floats), as the recorder writes them and the reader refuses the rest."""
    import pytest

    from fedforensics import RunFormatError, open_run
    from recorder import RecorderError

    text = " ".join(DOC.read_text().split())
    assert "a dtype of booleans, integers or real floats (numpy's kinds `b`, `i`, `u`, `f`;" in text
    with Recorder(tmp_path / "c.h5") as rec, pytest.raises(RecorderError, match="not of booleans, integers or real floats"):
        rec.round(0, {"w": np.zeros(2, np.complex64)})
    g = {"w": np.zeros(2, np.float32), "b": np.zeros(2, np.float32)}
    with Recorder(tmp_path / "run.h5") as rec, rec.round(0, g) as rnd:
        rnd.client("a", g, num_samples=1)
    for dtype in ("<c8", "|S4", "<M8[s]"):
        with h5py.File(tmp_path / "run.h5", "r+") as f:
            f["layers/dtype"][0] = dtype
            f["layers/analysable"][0] = False
        with pytest.raises(RunFormatError, match=re.escape(f"layer 0 of the layer table ('w') has dtype {dtype!r}, not")):
            open_run(tmp_path / "run.h5")
