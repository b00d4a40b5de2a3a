"""``avoidance``: updates that leave alone the coordinates the last global update changed most."""

from __future__ import annotations

import math

import numpy as np

from fedforensics import open_run
from fedforensics.analysis import analyze
from fedforensics.detectors import get_detector
from fedforensics.detectors.avoidance import top_share_folds
from recorder import Recorder


def test_folds_against_the_round_s_median_client():
    rng = np.random.default_rng(0)
    step = rng.normal(size=1000)
    top = np.argsort(-np.abs(step))[:10]
    sample = rng.normal(size=(6, 1000))
    sample[1, top] = 0.0  # leaves the top 1 % untouched
    sample[2, top] *= 0.1  # a hundred times less energy there
    sample[3] = 0.0  # sent nothing
    folds = top_share_folds(sample, step, 0.01)
    assert math.isinf(folds[1]) and math.isnan(folds[3])
    assert 30 < folds[2] < 300
    assert all(0.3 < folds[i] < 3 for i in (0, 4, 5))
    assert np.isnan(top_share_folds(sample, np.zeros(1000), 0.01)).all()  # the global model did not move


def _federation(path, masked: tuple[str, ...]) -> None:
    """Ten clients whose updates follow the round's common direction; ``masked`` clients zero the top 5 % of the
    coordinates of the last global update (Neurotoxin's Algorithm 1), after the first round."""
    rng = np.random.default_rng(1)
    size = 4000
    glob = np.zeros(size, np.float32)
    last_step = None
    with Recorder(path) as rec:
        for r in range(10):
            common = rng.normal(size=size) * np.exp(-r / 10)
            updates = {}
            for i in range(10):
                cid = f"c{i}"
                u = common + 0.8 * np.exp(-r / 10) * rng.normal(size=size)
                if cid in masked and last_step is not None:
                    u[np.argsort(-np.abs(last_step))[: size // 20]] = 0.0
                updates[cid] = u.astype(np.float32)
            with rec.round(r, {"w": glob}) as rnd:
                for cid, u in updates.items():
                    rnd.client(cid, {"w": u}, num_samples=100, delta=True)
            last_step = np.mean(list(updates.values()), axis=0)
            glob = glob + last_step


def test_a_client_masking_the_last_global_update_s_top_coordinates_is_flagged(tmp_path):
    path = tmp_path / "masked.h5"
    _federation(path, masked=("c3",))
    with open_run(path) as run:
        result = get_detector("avoidance").score(run)
        report = analyze(run)
    assert result.flagged == ["c3"] and math.isinf(result.scores["c3"])
    assert result.first_flagged == {"c3": 3}  # scored from round 1 (round 0 has no last global update), 3 rounds
    assert max(v for c, v in result.scores.items() if c != "c3") < 2
    assert "left the 1% of coordinates the last global update changed most untouched" in result.evidence[0].detail
    (judged,) = [v for v in report.verdicts if v.verdict != "benign"]
    assert judged.client == "c3" and "avoidance" in judged.flagged_by


def test_nobody_is_flagged_where_nobody_masks(tmp_path):
    path = tmp_path / "clean.h5"
    _federation(path, masked=())
    with open_run(path) as run:
        result = get_detector("avoidance").score(run)
    assert result.flagged == [] and max(result.scores.values()) < 2
