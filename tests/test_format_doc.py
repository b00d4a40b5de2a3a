"""docs/format.md promises that plain h5py reads a round: run its snippet on a recorded run."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from recorder import Recorder

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
