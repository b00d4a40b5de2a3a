"""``free-rider``: updates that replay the server's last step instead of training."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fedforensics import open_run
from fedforensics.analysis import analyze
from fedforensics.detectors import get_detector
from fedforensics.detectors.free_rider import SENT_BACK, replay_closeness
from recorder import Recorder
from synthetic import WIDE, make_run


def test_closeness_to_the_last_step_against_the_clients_nearest_neighbours():
    rng = np.random.default_rng(0)
    step = rng.normal(size=4000)
    sample = rng.normal(size=(8, 4000)) + 0.5 * step  # trained updates: each its own way, partly along the step
    sample[1] = step  # an exact replay
    sample[2] = step * (1 + 0.1 * rng.normal(size=4000))  # disguised, ±10 % (Fraboni et al.)
    sample[3] = 0.0  # sent nothing
    closeness = replay_closeness(sample, step)
    assert math.isinf(closeness[1]) and math.isnan(closeness[3])
    assert closeness[2] > 40
    assert all(closeness[i] < 2 for i in (0, 4, 5, 6, 7))
    assert np.isnan(replay_closeness(sample, np.zeros(4000))).all()  # the server did not move
    # most clients sent one update (the step itself, or not): no scale, no finding (all five were +inf)
    assert np.isnan(replay_closeness(np.tile(step, (5, 1)), step)).all()
    assert np.isnan(replay_closeness(np.full((5, 4000), np.nan), step)).all()  # it had raised on an empty minimum


def test_a_client_replaying_the_last_global_update_is_flagged(tmp_path):
    path = make_run(tmp_path / "replay.h5", attackers=("c3",), attack="replay", shapes=WIDE, seed=7)
    with open_run(path) as run:
        result = get_detector("free-rider").score(run)
        report = analyze(run)
    assert result.flagged == ["c3"] and result.scores["c3"] >= result.threshold
    assert result.first_flagged == {"c3": 3}  # scored from round 1 (round 0 has no last step), 3 rounds
    assert max(v for c, v in result.scores.items() if c != "c3") < 2
    assert "closer to the server's last step than a client's usually is" in result.evidence[0].detail
    (judged,) = [v for v in report.verdicts if v.verdict != "benign"]
    assert judged.client == "c3" and "free-rider" in judged.flagged_by


def test_nobody_replays_in_the_other_attacks(tmp_path):
    """A boosted, flipped, noisy, copied or masked update is not the server's last step."""
    for attack in ("none", "boost", "flip", "noise", "mean", "sybil", "mask"):
        path = make_run(tmp_path / f"{attack}.h5", attackers=("c1", "c2"), attack=attack, shapes=WIDE, seed=3)
        with open_run(path) as run:
            result = get_detector("free-rider").score(run)
        assert result.flagged == [] and max(result.scores.values()) < 10, (attack, result.scores)


def test_a_client_sending_the_model_back_unchanged_is_flagged_with_what_it_did(tmp_path):
    """A plain free rider (Fraboni et al. 2021): an update of exactly zero, every round, with its 50 samples
    reported. Its direction is none and its norm, in rounds of widely spread honest norms, need not be far from
    the median's; the fact is in the evidence. It scores SENT_BACK, flagged but not strong: an honest client that
    did not train sends the same, so this alone makes it suspicious, not malicious."""
    path = make_run(tmp_path / "zero.h5", attackers=("c3",), attack="zero", shapes=WIDE, seed=7)
    with open_run(path) as run:
        result = get_detector("free-rider").score(run)
        report = analyze(run)
    assert result.flagged == ["c3"] and result.scores["c3"] == SENT_BACK
    assert result.threshold < SENT_BACK < 2 * result.threshold
    assert max(v for c, v in result.scores.items() if c != "c3") < 2
    assert all("sent back the model it was given, unchanged" in e.detail for e in result.evidence)
    alone = analyze(open_run(path), [get_detector("free-rider")])
    (judged,) = [v for v in alone.verdicts if v.verdict != "benign"]
    assert judged.client == "c3" and judged.verdict == "suspicious" and judged.flagged_by == ["free-rider"]
    (judged,) = [v for v in report.verdicts if v.verdict != "benign"]
    assert judged.client == "c3" and "free-rider" in judged.flagged_by
    # a zero update has no direction: median-cosine said it "points away from the other clients'", and FLAME's
    # clustering put it outside the majority by construction, which made it malicious beside free-rider (a
    # fresh-eyes user); neither scores it now
    assert math.isnan(report.detector("median-cosine").scores["c3"])
    assert math.isnan(report.detector("cosine-hdbscan").scores["c3"])


def _zero_senders_run(path, zero: dict[str, int], rounds: int = 6, clients: int = 8, when=None, tiny: float = 0.0):
    """FedAvg of random updates; the clients of ``zero`` send ``tiny`` (exactly zero by default) in the rounds
    ``when`` (all by default), reporting the samples given."""
    rng = np.random.default_rng(5)
    glob = {"w": np.zeros(200, np.float32)}
    with Recorder(path) as rec:
        for r in range(rounds):
            sent = {f"c{i}": rng.normal(size=200) for i in range(clients)}
            if when is None or r in when:
                sent.update({cid: np.full(200, tiny) for cid in zero})
            with rec.round(r, glob) as rnd:
                for cid, u in sent.items():
                    rnd.client(cid, {"w": u}, num_samples=zero.get(cid, 50), delta=True)
            glob = {"w": (glob["w"] + np.mean(list(sent.values()), axis=0)).astype(np.float32)}
    return path


def test_an_update_of_zero_is_no_free_ride_without_samples_or_where_half_the_clients_sent_zero(tmp_path):
    """A client reporting no samples has no share of the average to ride on; where half the clients or more sent
    nothing, training stood still (a frozen model, a learning rate of zero), which is no one client's doing (a
    review: with exactly half, the median norm was above 0 and both zero senders were malicious)."""
    with open_run(_zero_senders_run(tmp_path / "empty.h5", {"c0": 0})) as run:
        result = get_detector("free-rider").score(run)
    assert result.flagged == [] and result.scores.get("c0", 0.0) != SENT_BACK, result.scores
    with open_run(_zero_senders_run(tmp_path / "half.h5", {f"c{i}": 50 for i in range(4)})) as run:
        result = get_detector("free-rider").score(run)
    assert result.flagged == [], result.scores
    with open_run(_zero_senders_run(tmp_path / "three.h5", {f"c{i}": 50 for i in range(3)})) as run:  # under half
        result = get_detector("free-rider").score(run)
    assert result.flagged == ["c0", "c1", "c2"], result.scores
    with open_run(_zero_senders_run(tmp_path / "one.h5", {"c0": 50})) as run:  # the same run, c0 reporting samples
        result = get_detector("free-rider").score(run)
    assert result.flagged == ["c0"], result.scores


def test_an_update_of_zero_in_half_a_client_s_rounds_or_a_tiny_one_is_no_free_ride(tmp_path):
    """A client that sent nothing in half its scored rounds (a straggler now and then) is not flagged: its median
    round is one it trained in. Nor is an update whose float32 squared norm rounds to 0 but is not zero (a review:
    max |Δ| 3e-24 read 'an update of exactly zero')."""
    with open_run(_zero_senders_run(tmp_path / "some.h5", {"c0": 50}, rounds=7, when={2, 4, 6})) as run:
        result = get_detector("free-rider").score(run)  # rounds 1-6 scored, 3 of them zero
    assert result.flagged == [] and result.scores["c0"] < result.threshold, result.scores
    with open_run(_zero_senders_run(tmp_path / "tiny.h5", {"c0": 50}, tiny=1e-24)) as run:
        result = get_detector("free-rider").score(run)
    assert result.flagged == [] and result.scores.get("c0", 0.0) != SENT_BACK, result.scores


@pytest.mark.parametrize("seed", range(3))
def test_a_client_with_nothing_to_train_on_takes_no_part_in_that_round(seed, tmp_path):
    """A device without new data sends back the model it was given and claims no samples: FedAvg weighs it 0 and it
    changes nothing. Compared with the others, its zero update sat at z = -10 on `norm`, and a client with nothing to
    train on in about 4 of its 10 rounds was `suspicious` (seeds 0-2). Such replies are left out of the round's
    comparisons, a note names them, and they still count as rounds the client took part in; claiming samples for the
    same zero update is a free ride and is flagged as before."""
    rng = np.random.default_rng(seed)
    idle = {r: {f"c{i}" for i in (8, 9) if rng.random() < 0.4} for r in range(30)}
    for claimed in (0, 50):
        path = tmp_path / f"claimed{claimed}.h5"
        with Recorder(path) as rec:
            for r in range(30):
                common = rng.normal(size=400)
                with rec.round(r, {"w": np.zeros(400)}) as rnd:
                    for i in range(10):
                        cid = f"c{i}"
                        if cid in idle[r]:
                            rnd.client(cid, {"w": np.zeros(400)}, num_samples=claimed, delta=True)
                        else:
                            rnd.client(cid, {"w": common + rng.normal(size=400)}, num_samples=50, delta=True)
        with open_run(path) as run:
            report = analyze(run)
        flagged = {v.client for v in report.verdicts if v.verdict != "benign"}
        if claimed:
            assert flagged and flagged <= {"c8", "c9"} and report.detector("free-rider").flagged
            assert not any("claimed no samples" in note for note in report.notes)
            continue
        assert flagged == set(), [(v.client, v.flagged_by) for v in report.verdicts if v.verdict != "benign"]
        assert all(v.rounds == 30 for v in report.verdicts)
        (note,) = [note for note in report.notes if "claimed no samples" in note]
        replies = sum(len(ids) for ids in idle.values())
        assert note.startswith("clients c8, c9 sent back the model they were given") and f"in {replies} replies" in note


def test_median_cosine_compares_the_others_as_if_a_zero_update_were_not_there(tmp_path):
    """A review: a zero update, at cosine distance 1 from every other, moved every other client's median towards
    1; the others are now compared among themselves, as in the same federation without that client."""
    rng = np.random.default_rng(4)
    updates = [[rng.normal(size=100) + 2.0 for _ in range(7)] for _ in range(6)]
    scores = {}
    for name, zero in (("with", True), ("without", False)):
        with Recorder(tmp_path / f"{name}.h5") as rec:
            for r, sent in enumerate(updates):
                with rec.round(r, {"w": np.zeros(100)}) as rnd:
                    if zero:
                        rnd.client("z", {"w": np.zeros(100)}, num_samples=10, delta=True)
                    for i, u in enumerate(sent):
                        rnd.client(f"c{i}", {"w": u}, num_samples=10, delta=True)
        with open_run(tmp_path / f"{name}.h5") as run:
            scores[name] = get_detector("median-cosine").score(run).scores
    assert math.isnan(scores["with"].pop("z"))
    assert scores["with"] == pytest.approx(scores["without"], abs=1e-12)
