"""``avoidance``: updates that leave alone the coordinates the last global update changed most."""

from __future__ import annotations

import math

import numpy as np

from fedforensics import open_run
from fedforensics.analysis import analyze
from fedforensics.detectors import get_detector
from fedforensics.detectors.avoidance import top_share_folds
from synthetic import WIDE, make_run


def test_folds_against_the_round_s_median_client():
    rng = np.random.default_rng(0)
    step = rng.normal(size=5000)
    top = np.argsort(-np.abs(step))[:50]
    sample = rng.normal(size=(6, 5000))
    sample[1, top] = 0.0  # leaves the top 1 % untouched
    sample[2, top] *= 0.1  # a hundred times less energy there
    sample[3] = 0.0  # sent nothing
    folds = top_share_folds(sample, step, 0.01)
    assert math.isinf(folds[1]) and math.isnan(folds[3])
    assert 30 < folds[2] < 300
    assert all(0.3 < folds[i] < 3 for i in (0, 4, 5))
    assert np.isnan(top_share_folds(sample, np.zeros(5000), 0.01)).all()  # the global model did not move
    # on fewer than 32 coordinates compared an honest share is chance (a review flagged honest clients of a
    # 10-parameter model): no fold
    assert np.isnan(top_share_folds(sample[:, :3000], step[:3000], 0.01)).all()


def _federation(path, masked: tuple[str, ...]) -> None:
    """Ten clients on a model of 4,810 parameters; ``masked`` ones leave the top 5 % of the last global update's
    coordinates untouched from the second round (Neurotoxin's Algorithm 1)."""
    make_run(path, attackers=masked, attack="mask" if masked else "none", shapes=WIDE, seed=7)


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


def test_a_round_whose_global_model_cannot_be_read_is_left_out_and_named(tmp_path):
    """A review: one round's damaged global layer made the default audit refuse the whole run, though only this
    detector reads the global models."""
    import h5py

    from recorder import spec

    path = tmp_path / "damaged.h5"
    _federation(path, masked=("c3",))
    with h5py.File(path, "r+") as f:
        group = f[spec.ROUNDS][next(iter(f[spec.ROUNDS]))][spec.GLOBAL]  # the first round's global model
        del group[spec.layer_key(0)]
        group[spec.layer_key(0)] = np.zeros(7, np.float32)
    with open_run(path) as run:
        report = analyze(run)
    result = report.detector("avoidance")
    assert result.note.startswith("the global model of 1 round(s) could not be read (0)"), result.note
    assert result.flagged == ["c3"]  # from the rounds after it


def test_a_model_too_small_to_compare_says_so(tmp_path):
    """570 coordinates: their top 1 % holds 6, fewer than the 32 a round's comparison rests on. The note said
    'too few clients in every round, no update to compare, or no client in enough rounds' (a fresh-eyes user,
    of a 2,410-parameter MLP: none of them was the reason)."""
    with open_run(make_run(tmp_path / "small.h5", seed=2)) as run:
        small = get_detector("avoidance").score(run)
    assert not small.applicable
    assert small.note == (  # the reason alone: the usual ones came first, none of them it (a review)
        "570 coordinates are compared, and the top 1% of them (those the last global update moved most) must hold "
        "at least 32, which takes 3,101 compared: too few, a model this small (or `coordinates` set this low) is not "
        "compared"
    ), small.note
    with open_run(make_run(tmp_path / "wide.h5", shapes=WIDE, seed=2)) as run:  # 4,810: enough
        wide = get_detector("avoidance").score(run)
    assert wide.applicable and not wide.note, wide.note
    for size, too_few in ((3100, True), (3101, False)):  # the edge: a top 1 % of 31 coordinates, or of 32
        with open_run(make_run(tmp_path / f"edge{size}.h5", shapes={"w": (size,)}, seed=2)) as run:
            edge = get_detector("avoidance").score(run)
        assert ("too few" in edge.note) is too_few and edge.applicable is not too_few, (size, edge.note)
