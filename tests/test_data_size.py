"""Magnitudes compared as at the round's median sample count (fedforensics/data_size.py)."""

from __future__ import annotations

import numpy as np
import pytest

from fedforensics import open_run
from fedforensics.analysis import analyze
from fedforensics.data_size import at_median_count, count_exponents, count_offsets, small_count_offsets, small_counts_lifted
from fedforensics.detectors.norm import NormDetector
from fedforensics.scan import scan
from recorder import Recorder


@pytest.mark.parametrize("clients", [20, 500])  # 500: from a fixed sample of the 124,750 pairs
def test_the_exponent_is_found_from_the_round_itself(clients):
    rng = np.random.default_rng(0)
    counts = np.round(100 * rng.lognormal(0, 1.0, clients)).astype(int) + 5
    norms = counts**0.45 * rng.lognormal(0, 0.1, clients)
    offsets = count_offsets(counts)
    (exponent,) = count_exponents(norms[None], offsets)
    assert exponent == pytest.approx(0.45, abs=0.08)
    rescaled = at_median_count(norms[None], offsets)[0]
    spread = lambda v: np.median(np.abs(np.log(v) - np.median(np.log(v))))  # noqa: E731
    assert spread(rescaled) < spread(norms) / 4


def test_equal_counts_are_not_rescaled():
    assert count_offsets(np.array([50, 50, 50, 50])) is None


def test_a_minority_claiming_large_counts_excuses_nothing():
    """Among equal shards, one or a few clients claiming more data (an attacker excusing a boosted update) do not
    make the slope: the counts differ only where more than half the clients are away from the median count."""
    assert count_offsets(np.array([50] * 7 + [400] * 3)) is None
    assert count_offsets(np.array([50, 400])) is None  # two clients are no round


def test_a_client_reporting_no_samples_is_compared_as_it_is_and_does_not_switch_the_others_off():
    """QA: one zero count had turned the comparison off for the whole round (a switch any client holds)."""
    counts = np.array([0, 20, 50, 100, 400, 800])
    offsets = count_offsets(counts)
    assert offsets is not None and np.isnan(offsets[0])
    values = np.array([[5.0, 1.0, 1.6, 2.2, 4.5, 6.3]])
    rescaled = at_median_count(values, offsets)
    assert rescaled[0, 0] == 5.0 and rescaled[0, 5] < values[0, 5]


def test_a_count_beyond_the_others_spread_is_believed_only_up_to_it():
    """QA: clients claiming ~2⁶³ samples had their boosted updates divided into nothing. Tukey's far-out fences
    (3 interquartile ranges beyond the quartiles of the log counts) hold a claim at the spread of the counts."""
    rng = np.random.default_rng(1)
    honest = np.round(100 * rng.lognormal(0, 1.0, 17)).astype(int)
    counts = np.concatenate([honest, [2**62] * 3])
    offsets = count_offsets(counts)
    q1, q3 = np.percentile(np.log(counts), [25, 75])
    assert offsets[-1] == pytest.approx(q3 + 3 * (q3 - q1) - np.median(np.log(counts)))
    assert np.exp(offsets[-1]) < 1000  # some hundred times the median at most, not 10¹⁶


def test_the_exponent_stays_between_none_and_in_proportion():
    counts = np.array([10, 20, 40, 80, 160, 320])
    offsets = count_offsets(counts)
    assert count_exponents(np.array([counts**2.0]), offsets)[0] == 1.0  # never more than in proportion
    assert count_exponents(np.array([1.0 / counts]), offsets)[0] == 0.0  # more steps never shorten an update
    assert count_exponents(np.zeros((1, 6)), offsets)[0] == 0.0  # no magnitude, no slope


def _quantity_skewed_run(path, boosted: dict[str, tuple[float, int]]) -> None:
    """Twelve IID clients with lognormal sample counts, each update as long as count ** 0.5 (more SGD steps);
    ``boosted`` clients multiply their update by a factor and report a count of their choosing (not their own)."""
    rng = np.random.default_rng(3)
    counts = {f"c{i}": int(c) for i, c in enumerate(np.round(60 * rng.lognormal(0, 1.2, 12)) + 5)}
    with Recorder(path) as rec:
        for r in range(10):
            common = rng.normal(size=300)
            with rec.round(r, {"w": np.zeros(300)}) as rnd:
                for cid, count in counts.items():
                    factor, claimed = boosted.get(cid, (1.0, count))
                    update = factor * np.sqrt(count / 60) * (common + 0.5 * rng.normal(size=300))
                    rnd.client(cid, {"w": update}, num_samples=claimed, delta=True)


def test_sites_with_more_data_are_not_flagged_for_longer_updates_and_a_boosted_one_still_is(tmp_path):
    """Quantity skew (QA of the numpy red team: 40 IID silos, lognormal counts, the largest 9 `malicious` on
    norm and mean-copy): compared as at the median count, the honest sites' norms agree, and a ×6 update is
    found whether its client reports its own count or one near the median."""
    path = tmp_path / "silos.h5"
    _quantity_skewed_run(path, {})
    with open_run(path) as run:
        counts = run.num_samples(0)
        largest = max(counts.values()) / float(np.median(list(counts.values())))
        assert largest > 5  # the skew is real
        plain = _norm_scores(run, rescaled=False)
        report = analyze(run)
    assert max(plain.values()) >= 3.5  # compared as they are, the largest sites stand out on norm
    assert [v.client for v in report.verdicts if v.verdict != "benign"] == []

    for claimed in (counts["c5"], 60):  # its own count, and a claim near the median
        path = tmp_path / f"boosted_{claimed}.h5"
        _quantity_skewed_run(path, {"c5": (6.0, claimed)})
        with open_run(path) as run:
            report = analyze(run)
        judged = {v.client: v for v in report.verdicts if v.verdict != "benign"}
        assert list(judged) == ["c5"] and "norm" in judged["c5"].flagged_by, judged
        details = [e.detail for e in judged["c5"].evidence if e.detector == "norm"]
        assert details and all("sizes rescaled to the round's median sample count" in d for d in details), details


def test_a_client_claiming_absurdly_much_data_is_named_by_the_weight_it_takes(tmp_path):
    """The limit of the comparison (docs/detectors.md, step 1): a ×50 update claiming 2⁶² samples is believed up to
    Tukey's far-out fence of the others' counts, and that, with the spread of these silos' norms, hides it from
    `norm` (QA: a ×6 update claiming the largest honest count is hidden too, and nothing names it). What the report
    does say is that its claim carried the FedAvg average."""
    path = tmp_path / "claim.h5"
    _quantity_skewed_run(path, {"c5": (50.0, 2**62)})
    with open_run(path) as run:
        report = analyze(run)
    (note,) = [n for n in report.notes if "carried more than half of the FedAvg weight" in n]
    assert note.startswith("client c5 (10 of its 10 rounds"), note


def _norm_scores(run, *, rescaled: bool) -> dict[str, float]:
    """``norm``'s run-level scores, with or without the comparison at the median count."""
    detector = type("Norm", (NormDetector,), {"grows_with_data": rescaled})()
    detector.start(run)
    for data in scan(run):
        detector.observe(data)
    return detector.finish().scores


def _mixed_batch_run(path, *, report_steps: bool, boosted: str | None = None) -> None:
    """Sixteen clients of equal shards at batch 8, 16, 32 or 64 (24, 12, 6 and 3 steps a round; most at 32): each
    update as long as steps ** 1.2 (smaller batches take longer steps too: the engineer's batch-8 clients sent 6.4-7.1x
    the median's length at 2.7x its steps); a ``boosted`` client (at 6 steps) sends its update ×6. With
    ``report_steps`` every client reports its steps as the ``local_steps`` metric."""
    rng = np.random.default_rng(5)
    steps = dict(zip([f"c{i:02d}" for i in range(16)], [24] * 3 + [12] * 3 + [6] * 7 + [3] * 3))
    with Recorder(path) as rec:
        for r in range(10):
            common = rng.normal(size=300)
            with rec.round(r, {"w": np.zeros(300)}) as rnd:
                for cid, k in steps.items():
                    update = (6.0 if cid == boosted else 1.0) * (k / 6) ** 1.2 * (common + 0.5 * rng.normal(size=300))
                    metrics = {"local_steps": float(k)} if report_steps else {}
                    rnd.client(cid, {"w": update}, num_samples=50, metrics=metrics, delta=True)


def test_clients_that_report_their_steps_are_compared_as_at_the_median_step_count(tmp_path):
    """A fresh-eyes engineer's clean federation (equal shards, batches of 8 to 64) made every batch-8 client
    `malicious`: 4x the median's steps, an update 6-7x as long in every layer, as a boost is. Where every client of
    a round reports `local_steps`, the magnitudes are compared as at the round's median step count, as they are at
    the median sample count; the step count is not itself a client metric to compare, and a boost still shows."""
    _mixed_batch_run(tmp_path / "plain.h5", report_steps=False)
    with open_run(tmp_path / "plain.h5") as run:
        assert {"c00", "c01", "c02"} <= set(analyze(run).detector("norm").flagged)  # the batch-8 clients
    _mixed_batch_run(tmp_path / "steps.h5", report_steps=True)
    with open_run(tmp_path / "steps.h5") as run:
        report = analyze(run)
    assert [v.client for v in report.verdicts if v.verdict != "benign"] == []
    assert not report.detector("client-metrics").scores or not report.detector("client-metrics").flagged
    _mixed_batch_run(tmp_path / "boosted.h5", report_steps=True, boosted="c08")
    with open_run(tmp_path / "boosted.h5") as run:
        judged = {v.client: v for v in analyze(run).verdicts if v.verdict != "benign"}
    assert list(judged) == ["c08"] and "norm" in judged["c08"].flagged_by, judged
    details = [e.detail for e in judged["c08"].evidence if e.detector == "norm"]
    assert details and all("sizes rescaled to the round's median step count" in d for d in details), details


def test_a_few_small_clients_among_equal_shards_are_lifted_towards_the_median_never_past_it():
    """Counts that differ in too few clients for a slope of their own (4 tiny clients among 16 equal shards) still
    excuse the tiny clients' short updates, by the slope of their pairs with the others, up to the round's median
    value at most; a claim of more data than the median is taken as the median (it excuses nothing)."""
    counts = np.array([75] * 16 + [20, 25, 30, 35, 750])
    assert count_offsets(counts) is None
    offsets = small_count_offsets(counts)
    assert np.all(offsets[:16] == 0) and offsets[-1] == 0 and np.all(offsets[16:20] < 0)
    norms = np.array([[1.0] * 16 + [0.27, 0.33, 0.4, 0.47, 9.0], [1.0] * 16 + [3.0, 0.33, 0.05, 2.0, 9.0]])
    lifted = small_counts_lifted(norms, offsets)
    np.testing.assert_allclose(lifted[0], [1.0] * 16 + [1.0, 1.0, 1.0, 1.0, 9.0], rtol=0.05)  # count explains them
    assert lifted[1, 16] == 3.0 and lifted[1, 19] == 2.0  # long updates are not lifted, nor lowered
    assert 0.05 < lifted[1, 18] <= 1.0 and lifted[1, 20] == 9.0  # lifted at most to the median; the large claim as is
    assert small_count_offsets(np.array([50] * 7 + [400] * 3)) is None  # no small client: nothing to lift
    assert small_count_offsets(np.array([50, 10])) is None  # two clients are no round


def _tiny_clients_run(path, *, changed: dict[str, float]) -> None:
    """Sixteen clients of 75 samples and four of 20-35 (c16-c19), one local epoch at batch 32: one SGD step beside
    three, an update about a third as long (the engineer's tiny BatchNorm clients were 0.35x the median);
    ``changed`` clients multiply their update by a factor."""
    rng = np.random.default_rng(7)
    counts = dict(zip([f"c{i:02d}" for i in range(20)], [75] * 16 + [20, 25, 30, 35]))
    with Recorder(path) as rec:
        for r in range(10):
            common = rng.normal(size=300)
            with rec.round(r, {"w": np.zeros(300)}) as rnd:
                for cid, n in counts.items():
                    length = changed.get(cid, 1.0) * (1.0 if n == 75 else 0.35)
                    rnd.client(cid, {"w": length * (common + 0.5 * rng.normal(size=300))}, num_samples=n, delta=True)


def test_tiny_honest_clients_are_not_flagged_for_short_updates_and_a_boost_or_a_short_update_still_is(tmp_path):
    """A fresh-eyes engineer's clean federation (17_cnnbn_tiny, docs/detection.md "A thirteenth check"): 3 tiny
    clients `suspicious` on `norm` alone, their updates a third as long for a third of the steps."""
    _tiny_clients_run(tmp_path / "tiny.h5", changed={})
    with open_run(tmp_path / "tiny.h5") as run:
        plain = _norm_scores(run, rescaled=False)
        report = analyze(run)
    assert {"c16", "c17", "c18", "c19"} <= {cid for cid, z in plain.items() if z >= 3.5}  # as they are, they stand out
    assert [v.client for v in report.verdicts if v.verdict != "benign"] == []
    _tiny_clients_run(tmp_path / "changed.h5", changed={"c17": 6.0, "c03": 0.3})
    with open_run(tmp_path / "changed.h5") as run:
        judged = {v.client: v for v in analyze(run).verdicts if v.verdict != "benign"}
    assert set(judged) == {"c17", "c03"} and all("norm" in v.flagged_by for v in judged.values()), judged
    details = [e.detail for e in judged["c17"].evidence if e.detector == "norm"]
    assert details and all("lifted towards it" in d for d in details), details
