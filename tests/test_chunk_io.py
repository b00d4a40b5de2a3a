"""The recorder writes, and the reader reads, uncompressed update rows as raw HDF5 chunks.

Those direct chunk paths must store and return exactly what HDF5's ordinary
paths do (used for compressed files and for layouts other writers may choose).
"""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from fedforensics import open_run
from recorder import Recorder, spec


def _states(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {
        "w": rng.normal(size=(6, 5)).astype(np.float32).T,  # not C-contiguous
        "b": rng.normal(size=5),  # float64: subtracted in float64, stored as float32
        "scale": np.float32(rng.normal()),  # a scalar layer
        "steps": np.array(3, dtype=np.int64),
    }


def _record(path, rng, compression):
    expected = {}
    with Recorder(path, compression=compression) as rec:
        for r, n in enumerate([5, 1, 0, 3]):  # 5 rows outgrow the doubling (1, 2, 4, 8); 0: all failed
            g = _states(rng)
            with rec.round(r, g) as rnd:
                for c in range(n):
                    local = _states(rng)
                    rnd.client(f"c{c}", local, num_samples=1)
                    # float32 layers subtract in float32, float64 and int64 ones in float64 (docs/format.md)
                    expected[r, f"c{c}"] = {
                        k: (np.asarray(local[k], np.float64) - np.asarray(g[k], np.float64)).astype(np.float32) for k in g
                    }
                if not n:
                    rnd.failure("c0", "timeout")
    return expected


@pytest.mark.parametrize("compression", [None, "gzip"])
def test_every_read_path_returns_what_was_recorded(tmp_path, compression):
    expected = _record(tmp_path / "run.h5", np.random.default_rng(0), compression)
    with open_run(tmp_path / "run.h5") as run:
        assert run.rounds == [0, 1, 2, 3]  # every recorded round, so that the loop below checks each
        for r in run.rounds:
            clients = run.clients(r)
            assert len(clients) == [5, 1, 0, 3][r]
            for cid in clients:
                for name, value in run.update(r, cid).items():
                    assert value.dtype == np.float32
                    np.testing.assert_array_equal(value, expected[r, cid][name])
            for layer in run.layers:
                stacked = run.layer_updates(r, layer.name)
                assert stacked.shape == (len(clients), *layer.shape)
                for row, cid in enumerate(clients):
                    np.testing.assert_array_equal(stacked[row], expected[r, cid][layer.name])
            matrix = run.update_matrix(r, run.layers)
            for row, cid in enumerate(clients):
                np.testing.assert_array_equal(matrix[row], np.concatenate([v.ravel() for v in expected[r, cid].values()]))


def test_update_tables_hold_exactly_the_recorded_rows_as_one_chunk_each(tmp_path):
    _record(tmp_path / "run.h5", np.random.default_rng(1), None)
    with h5py.File(tmp_path / "run.h5", "r") as f:
        for key, n in zip(sorted(f[spec.ROUNDS]), [5, 1, 0, 3]):
            w = f[spec.ROUNDS][key][spec.UPDATES][spec.layer_key(0)]
            assert w.shape == (n, 5, 6) and w.chunks == (1, 5, 6) and w.compression is None
            assert w.id.get_num_chunks() == n  # nothing stored beyond the rows, whatever the table grew to
