"""The detectors' formulas of docs/detectors.md, recomputed apart: each statistic, scale and score from the recorded
updates with plain numpy/scipy, on random runs of several seeds, and the edge cases a statistic meets (ties, a zero
MAD, zero or identical updates, rounds of 2–3 clients, clients of one round, values near float32's limits)."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import brentq
from scipy.stats import binom, norm, rankdata

from fedforensics import open_run
from fedforensics.analysis import analyze
from fedforensics.detectors import all_detectors, get_detector
from fedforensics.detectors.history import CountSketch, DirectionHistory
from fedforensics.stats import ROBUST_Z_TAIL, auroc, bonferroni_zs, on_reference_scale, robust_z
from recorder import Recorder

DOC = Path(__file__).resolve().parents[1] / "docs" / "detectors.md"
SHAPES = {"a.weight": (8, 12), "a.bias": (8,), "b.weight": (5, 8), "b.bias": (5,)}
SIZE = sum(int(np.prod(s)) for s in SHAPES.values())
#: Croux & Rousseeuw (1992), Table 1: the MAD's small-sample factors b_n, n/(n − 0.8) beyond 9.
CROUX_ROUSSEEUW = {2: 1.196, 3: 1.495, 4: 1.363, 5: 1.206, 6: 1.200, 7: 1.140, 8: 1.129, 9: 1.107}


def _state(flat: np.ndarray) -> dict[str, np.ndarray]:
    """A flat vector of SIZE values as the model's layers (float32)."""
    bounds = np.cumsum([0] + [int(np.prod(s)) for s in SHAPES.values()])
    return {name: np.asarray(flat[a:b], np.float32).reshape(shape) for (name, shape), a, b in zip(SHAPES.items(), bounds, bounds[1:])}


def _write(path: Path, rounds: list[dict[str, np.ndarray]], metrics: dict | None = None, truth: tuple[str, ...] = ()) -> Path:
    """A run of ``rounds`` (client -> flat update, SIZE values), equal sample counts, FedAvg global models."""
    model = np.zeros(SIZE, np.float32)
    with Recorder(path, meta={}, overwrite=True) as rec:
        for r, updates in enumerate(rounds):
            with rec.round(r, _state(model)) as rnd:
                for cid, u in updates.items():
                    rnd.client(cid, _state(u), num_samples=50, metrics=(metrics or {}).get((r, cid), {}), delta=True)
            model = (model + np.mean(list(updates.values()), axis=0)).astype(np.float32)
        rec.ground_truth(list(truth))
    return path


def _random_rounds(seed: int, clients: int, rounds: int, participation: float) -> list[dict[str, np.ndarray]]:
    """Updates around a common direction per round, each client's own noise and length."""
    rng = np.random.default_rng(seed)
    ids = [f"c{i}" for i in range(clients)]
    out = []
    for _ in range(rounds):
        common = rng.normal(size=SIZE)
        chosen = [c for c in ids if rng.random() < participation]
        out.append({c: (common + rng.normal(size=SIZE) * rng.uniform(0.3, 2.0)) * rng.uniform(0.5, 2.0) for c in chosen})
    return out


def _z(values: np.ndarray, rel_floor: float = 0.0, abs_floor: float = 1e-12) -> np.ndarray:
    """Step 1's robust z, as the doc writes it: (x − median) / max(c(n)·MAD, rel_floor·median|x|, abs_floor)."""
    n = values.size
    median = np.median(values)
    c = 1.4826 * (CROUX_ROUSSEEUW[n] if n in CROUX_ROUSSEEUW else n / (n - 0.8))
    return (values - median) / max(c * np.median(np.abs(values - median)), rel_floor * np.median(np.abs(values)), abs_floor)


def _on_ten(z: np.ndarray, n: int) -> np.ndarray:
    """The 10-client scale by log-log interpolation of the tail table, the nearest end's ratio outside it, never larger."""
    if n >= 10 or n not in ROBUST_Z_TAIL:
        return z
    source, target = np.log(ROBUST_Z_TAIL[n]), np.log(ROBUST_Z_TAIL[10])
    out = []
    for value in z:
        size = abs(value)
        if not 0 < size < np.inf:
            out.append(value)
            continue
        at = np.log(size)
        if at < source[0]:
            moved = at + target[0] - source[0]
        elif at > source[-1]:
            moved = at + target[-1] - source[-1]
        else:
            k = int(np.searchsorted(source, at, side="right")) - 1
            k = min(k, len(source) - 2)
            moved = target[k] + (at - source[k]) * (target[k + 1] - target[k]) / (source[k + 1] - source[k])
        out.append(np.sign(value) * min(np.exp(moved), size))
    return np.array(out)


def _mean_scores(rounds, statistic, side: str, rel_floor=0.0, abs_floor=1e-12, extreme=None, term=3.5) -> dict[str, float]:
    """Steps 1–2 from the updates: per round of 4+ clients the statistic's robust z, on the 10-client scale below ten,
    winsorised at ±10, its mean over 3+ rounds, oriented; with ``extreme``, the share of rounds at ±10 (3 or more)."""
    per: dict[str, list[float]] = {}
    for updates in rounds:
        if len(updates) < 4:
            continue
        ids = list(updates)
        values = statistic(np.array([np.asarray(updates[c], np.float32).astype(np.float64) for c in ids]))
        finite = np.isfinite(values)
        z = np.full(len(ids), np.nan)
        z[finite] = _on_ten(_z(values[finite], rel_floor, abs_floor), int(finite.sum()))
        for cid, value in zip(ids, z):
            if np.isfinite(value):
                per.setdefault(cid, []).append(value)
    orient = {"two-sided": np.abs, "greater": lambda v: v, "less": lambda v: -v}[side]
    scores = {}
    for cid, zs in per.items():
        zs = np.array(zs)
        score = float(orient(np.mean(np.clip(zs, -10, 10)))) if zs.size >= 3 else np.nan
        if extreme is not None and (orient(zs) >= 10).sum() >= 3:
            score = np.fmax(score, (orient(zs) >= 10).sum() / zs.size / extreme * term)
        scores[cid] = score
    return scores


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _median_cosine(x: np.ndarray) -> np.ndarray:
    d = 1 - _unit(x) @ _unit(x).T
    return np.array([np.median(np.delete(d[i], i)) for i in range(len(x))])


def _log_nearest(x: np.ndarray) -> np.ndarray:
    d = 1 - _unit(x) @ _unit(x).T
    np.fill_diagonal(d, np.inf)
    return np.log(np.maximum(d.min(axis=1), 1e-12))


def _mean_copy(x: np.ndarray) -> np.ndarray:
    others = x.sum(axis=0) - x
    return (x * others).sum(axis=1) / (np.linalg.norm(x, axis=1) * np.linalg.norm(others, axis=1))


def _spread_shift(x: np.ndarray) -> np.ndarray:
    median = np.median(x, axis=0)
    spread = np.median(np.abs(x - median), axis=0)
    return (x - median) @ spread / (np.linalg.norm(x - median, axis=1) * np.linalg.norm(spread))


PER_ROUND = {  # name: (statistic, side, rel_floor, abs_floor, extreme_share)
    "norm": (lambda x: np.linalg.norm(x, axis=1), "two-sided", 0.1, 1e-12, 0.25),
    "median-cosine": (_median_cosine, "greater", 0.0, 0.01, None),
    "sybil": (_log_nearest, "less", 0.0, 0.3, None),
    "mean-copy": (_mean_copy, "greater", 0.0, 0.02, None),
    "spread-shift": (_spread_shift, "two-sided", 0.0, 0.01, None),
}


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("name", sorted(PER_ROUND))
def test_a_per_round_detector_scores_the_mean_of_its_doc_formula(tmp_path, name, seed):
    """Rounds of 4–14 clients (most below ten: the scale's move), clients in 1–12 rounds (some unscored), and a
    client boosted ×40 in one seed (the extreme rounds of `norm`): every score as steps 1–2 compute it apart."""
    rounds = _random_rounds(seed, clients=6 + 4 * seed, rounds=12, participation=0.6 + 0.1 * seed)
    if seed == 2:
        for updates in rounds:
            if "c1" in updates:
                updates["c1"] = updates["c1"] * 40
    path = _write(tmp_path / "run.h5", rounds)
    statistic, side, rel_floor, abs_floor, extreme = PER_ROUND[name]
    detector = get_detector(name, **({"spike": None} if name == "sybil" else {}))
    with open_run(path) as run:
        result = detector.score(run)
    expected = _mean_scores(rounds, statistic, side, rel_floor, abs_floor, extreme, detector.default_threshold)
    assert set(expected) == set(result.scores)
    for cid, value in expected.items():
        assert result.scores[cid] == pytest.approx(value, rel=1e-4, abs=1e-4, nan_ok=True), cid


@pytest.mark.parametrize("seed", [0, 1])
def test_layer_deviation_takes_the_strongest_slice_bonferroni_corrected_with_its_noise_floor(tmp_path, seed):
    """Per slice max |Δ| and L2 norm, scale floored at noise_floor · median‖u‖ · √(k/P) (L2) or /√P (max), and the
    best slice's mean z Bonferroni-corrected over the 2 × slices statistics (continued below no evidence)."""
    rounds = _random_rounds(10 + seed, clients=5 + 4 * seed, rounds=10, participation=0.8)
    path = _write(tmp_path / "run.h5", rounds)
    with open_run(path) as run:
        result = get_detector("layer-deviation").score(run)
    sizes = [int(np.prod(s)) for s in SHAPES.values()]
    per: dict[str, dict[str, list[float]]] = {}
    for updates in rounds:
        if len(updates) < 4:
            continue
        x = np.array([np.asarray(u, np.float32).astype(np.float64) for u in updates.values()])
        even = 1e-3 * np.median(np.linalg.norm(x, axis=1)) / np.sqrt(SIZE)
        col = 0
        for name, k in zip(SHAPES, sizes):
            block, col = x[:, col : col + k], col + k
            for stat, values, floor in (("max", np.abs(block).max(axis=1), even), ("l2", np.linalg.norm(block, axis=1), even * np.sqrt(k))):
                z = _on_ten(_z(values, 0.1, max(1e-12, floor)), len(x))
                for cid, value in zip(updates, z):
                    per.setdefault(cid, {}).setdefault(f"{name}|{stat}", []).append(value)
    for cid, slices in per.items():
        means = [abs(np.mean(np.clip(z, -10, 10))) if len(z) >= 3 else np.nan for z in slices.values()]
        best = np.nanmax(means) if np.isfinite(means).any() else np.nan
        m = len(means)  # a product of ½ or more: the z less the z where it is ½ (docs/detectors.md, step 3)
        expected = np.nan if np.isnan(best) else float(norm.isf(norm.sf(best) * m) if norm.sf(best) * m < 0.5 else best - norm.isf(0.5 / m))
        assert result.scores[cid] == pytest.approx(expected, abs=1e-4, nan_ok=True), cid


def test_client_metrics_scores_each_reported_metric_with_its_floor(tmp_path):
    """Every numeric metric a robust z (absolute floor 0.05), NaN where unreported, an infinite loss at ±10."""
    rng = np.random.default_rng(5)
    rounds = _random_rounds(5, clients=7, rounds=8, participation=1.0)
    metrics = {}
    for r, updates in enumerate(rounds):
        for i, cid in enumerate(updates):
            loss = float(np.inf) if (r, cid) == (2, "c3") else float(rng.normal(1.0, 0.3))
            metrics[r, cid] = {"loss": loss} if (r + i) % 4 else {"loss": loss, "acc": float(rng.normal(0.9, 0.02))}
    path = _write(tmp_path / "run.h5", rounds, metrics)
    with open_run(path) as run:
        result = get_detector("client-metrics").score(run)
    per: dict[str, dict[str, list[float]]] = {}
    for r, updates in enumerate(rounds):
        for key in ("loss", "acc"):
            values = np.array([metrics[r, c].get(key, np.nan) for c in updates])
            finite = np.isfinite(values)
            if finite.sum() < 4:
                continue
            z = np.where(np.isinf(values), np.sign(values) * 10, np.nan)
            z[finite] = _on_ten(_z(values[finite], 0.0, 0.05), int(finite.sum()))
            for cid, value in zip(updates, z):
                if not np.isnan(value):
                    per.setdefault(cid, {}).setdefault(key, []).append(value)
    for cid, keys in per.items():
        means = [abs(np.mean(np.clip(z, -10, 10))) if len(z) >= 3 else np.nan for z in keys.values()]
        best = np.nanmax(means)
        expected = best if len(means) == 1 else float(norm.isf(min(0.5, norm.sf(best) * len(means))))
        assert result.scores[cid] == pytest.approx(expected, abs=1e-6), cid


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_robust_z_and_the_10_client_scale_are_step_1s_formulas(seed):
    """Ties, NaN (left out), ±Inf (kept), each floor; then the move of a round of fewer than 10 clients."""
    rng = np.random.default_rng(seed)
    for n in range(1, 25):
        x = rng.normal(size=n) * rng.uniform(0.01, 100) + rng.uniform(-5, 5)
        if seed == 1:
            x = np.round(x)  # ties, often a MAD of 0
        if n > 3:
            x[0], x[1] = np.nan, np.inf
        finite = np.isfinite(x)
        for rel_floor, abs_floor in ((0.0, 1e-12), (0.1, 1e-12), (0.0, 0.3)):
            got = robust_z(x, rel_floor=rel_floor, abs_floor=abs_floor)
            expected = np.where(np.isnan(x), np.nan, x)
            expected[finite] = _z(x[finite], rel_floor, abs_floor)
            assert np.allclose(got, expected, rtol=1e-12, atol=0, equal_nan=True), (n, rel_floor)
            m = int(finite.sum())
            assert np.allclose(on_reference_scale(got, m), _on_ten(got, m), rtol=1e-9, equal_nan=True), (n, m)


@pytest.mark.parametrize("n", [2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 20])
def test_the_mad_factor_makes_the_scale_unbiased_for_gaussian_rounds(n):
    """c(n)·MAD estimates σ: the mean over 100,000 Gaussian rounds is within 2 % of 1 (the published factors are
    themselves simulated to about 1 %)."""
    from fedforensics.stats import mad_factor

    x = np.random.default_rng(n).standard_normal((100_000, n))
    mad = np.median(np.abs(x - np.median(x, axis=1, keepdims=True)), axis=1)
    assert abs(mad_factor(n) * mad.mean() - 1) < 0.02


def test_the_small_federation_figures_of_the_doc_are_the_code_s():
    """'Small federations': the table's quantiles are ROBUST_Z_TAIL's, and the share of Gaussian rounds whose
    largest robust z reaches 5 is the one the doc states (20,000 draws each, as it says; within 4 standard errors)."""
    text = DOC.read_text()
    table = text.split("**Small federations.**", 1)[1].split("\n\n", 2)[1]
    for line in table.splitlines():
        match = re.match(r"\| (\d+)(?: \(reference\))? \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \|", line)
        if match:
            n, *quantiles = match.groups()
            row = dict(zip((1e-1, 3e-2, 1e-2, 3e-3, 1e-3, 3e-4, 1e-4), ROBUST_Z_TAIL[int(n)]))
            assert [float(q) for q in quantiles] == [round(row[p], 2 if row[p] < 10 else 1) for p in (1e-2, 1e-3, 1e-4)], n
    stated = re.search(r"reaches 5 in ([\d.]+) %, ([\d.]+) %, ([\d.]+) %, ([\d.]+) % and ([\d.]+) % of draws", text)
    rng = np.random.default_rng(0)
    for n, share in zip((4, 5, 6, 10, 20), map(float, stated.groups())):
        largest = np.array([robust_z(row).max() for row in rng.standard_normal((20_000, n))])
        p = share / 100
        assert abs(np.mean(largest >= 5) - p) < 4 * np.sqrt(p * (1 - p) / 20_000), n


def test_bonferroni_is_the_quantile_of_the_multiplied_p_value_in_the_far_tail_too():
    """Step 3 beyond z = 30, where the code takes z² − 2 log m: within 10⁻³ of the exact quantile (solved on log p)."""
    for z in (30.0, 35.0, 45.0, 100.0):
        for tests in (2.0, 100.0, 1e6):
            target = norm.logsf(z) + np.log(tests)
            exact = brentq(lambda x: norm.logsf(x) - target, 0.0, z)
            assert abs(float(bonferroni_zs(np.array([z]), tests)[0]) - exact) < 1e-3, (z, tests)


@pytest.mark.parametrize("seed", range(4))
def test_auroc_counts_ties_half_and_missing_scores_lowest(seed):
    """The Mann–Whitney statistic from mid-ranks, NaN taken as −∞ (tied with it), +∞ highest."""
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, 6, 300).astype(float)
    scores[rng.random(300) < 0.1] = np.nan
    scores[rng.random(300) < 0.05] = np.inf
    scores[rng.random(300) < 0.05] = -np.inf
    positives = rng.random(300) < 0.3
    ranks = rankdata(np.where(np.isnan(scores), -np.inf, scores))
    k, m = positives.sum(), (~positives).sum()
    assert auroc(scores, positives) == pytest.approx((ranks[positives].sum() - k * (k + 1) / 2) / (k * m), rel=1e-12)


@pytest.mark.parametrize("seed", [0, 1])
def test_cosine_hdbscan_votes_its_binomial_share_and_its_accumulated_cluster(tmp_path, seed):
    """Per round FLAME's HDBSCAN (n//2 + 1, min_samples 1, a single cluster allowed) on the moved clients' cosine
    distances; score 0.5 · share (where P(Bin(n, p̂) ≥ k) ≤ α/N and n ≥ 3) + 0.5 · outlier of the accumulated
    directions (sums of unit updates) of the clients clustered in 3+ rounds."""
    from sklearn.cluster import HDBSCAN

    def outliers(distances: np.ndarray) -> np.ndarray:
        labels = HDBSCAN(
            metric="precomputed", min_cluster_size=len(distances) // 2 + 1, min_samples=1, allow_single_cluster=True, copy=True
        ).fit(distances).labels_
        kept = labels[labels >= 0]
        return labels != np.bincount(kept).argmax() if kept.size else np.ones(len(labels), bool)

    rounds = _random_rounds(20 + seed, clients=9, rounds=10, participation=0.7)
    for updates in rounds:  # a client reversed in every round, one sending nothing now and then
        if "c0" in updates:
            updates["c0"] = -updates["c0"]
        if "c1" in updates and seed:
            updates["c1"] = np.zeros(SIZE)
    path = _write(tmp_path / "run.h5", rounds)
    with open_run(path) as run:
        result = get_detector("cosine-hdbscan").score(run)
    hits: dict[str, int] = {}
    seen: dict[str, int] = {}
    sums: dict[str, np.ndarray] = {}
    for updates in rounds:
        moved = {c: np.asarray(u, np.float32).astype(np.float64) for c, u in updates.items() if np.any(u)}
        for cid, u in moved.items():
            sums[cid] = sums.get(cid, 0.0) + u / np.linalg.norm(u)
        if len(moved) < 4:
            continue
        x = _unit(np.array(list(moved.values())))
        for cid, out in zip(moved, outliers(np.clip(1 - x @ x.T, 0, None) * (1 - np.eye(len(x))))):
            hits[cid] = hits.get(cid, 0) + int(out)
            seen[cid] = seen.get(cid, 0) + 1
    voters = [c for c in seen if seen[c] >= 3]
    pooled = sum(hits.values()) / sum(seen.values())
    x = _unit(np.array([sums[c] for c in voters]))
    accumulated = dict(zip(voters, outliers(np.clip(1 - x @ x.T, 0, None) * (1 - np.eye(len(x))))))
    for cid in voters:
        votes = binom.sf(hits[cid] - 1, seen[cid], pooled) <= 0.05 / len(seen)
        expected = 0.5 * (hits[cid] / seen[cid] if votes else 0.0) + 0.5 * accumulated[cid]
        assert result.scores[cid] == pytest.approx(expected, abs=1e-12), cid
    assert all(np.isnan(v) for c, v in result.scores.items() if c not in voters)
    assert result.flagged == ["c0"]


@pytest.mark.parametrize("seed", [0, 1])
def test_accumulated_sybil_is_its_sections_formula(tmp_path, seed):
    """Mean over its moved rounds of (unit update − round's coordinate-wise median unit update), less the clients'
    median of these; log of the cosine distance to the nearest; robust z (floor 0.3), −z on the 10-client scale,
    Bonferroni for one test per ten clients. Two colluders share a hidden direction."""
    rng = np.random.default_rng(seed)
    rounds = _random_rounds(30 + seed, clients=8 + 6 * seed, rounds=12, participation=0.8)
    hidden = rng.normal(size=SIZE) * 0.8
    for updates in rounds:
        for cid in ("c2", "c5"):
            if cid in updates:
                updates[cid] = updates[cid] + hidden * np.linalg.norm(updates[cid]) / np.linalg.norm(hidden)
    path = _write(tmp_path / "run.h5", rounds)
    with open_run(path) as run:
        result = get_detector("accumulated-sybil").score(run)
    total: dict[str, np.ndarray] = {}
    count: dict[str, int] = {}
    for updates in rounds:
        if len(updates) < 4:
            continue
        x = np.array([np.asarray(u, np.float32).astype(np.float64) for u in updates.values()])
        units = _unit(x)
        for cid, departure in zip(updates, units - np.median(units, axis=0)):
            total[cid] = total.get(cid, 0.0) + departure
            count[cid] = count.get(cid, 0) + 1
    kept = [c for c in total if count[c] >= 3]
    history = np.array([total[c] / count[c] for c in kept])
    history -= np.median(history, axis=0)
    z = -_on_ten(_z(_log_nearest(history), 0.0, 0.3), len(kept))
    expected = bonferroni_zs(z, max(1.0, len(kept) / 10))
    for cid, value in zip(kept, expected):
        assert result.scores[cid] == pytest.approx(value, rel=1e-6, abs=1e-6), cid
    assert {"c2", "c5"} <= set(result.flagged)


def test_accumulated_directions_keep_their_cosines_over_a_thousand_rounds_in_float32():
    """The directions are float32 sums: after 1,000 rounds their cosine distances are those of float64 sums to 10⁻⁵
    (typical distance 10⁻²: what the clustering sees is unchanged)."""
    rng = np.random.default_rng(0)
    n, size = 12, 4000
    history, exact = DirectionHistory(n), np.zeros((n, size))
    drift = rng.normal(size=size)
    ids = [f"c{i}" for i in range(n)]
    for _ in range(1000):
        x = (drift + 3 * rng.normal(size=(n, size))).astype(np.float32)
        norms = np.linalg.norm(x.astype(np.float64), axis=1)
        history.add(ids, [x[:, :2500], x[:, 2500:]], norms)
        exact += x / norms[:, None]
    _, distances = history.cosine_distances()
    reference = 1 - _unit(exact) @ _unit(exact).T
    np.fill_diagonal(reference, 0.0)
    assert np.abs(distances - reference).max() < 1e-5


def test_the_count_sketch_keeps_inner_products_unbiased_and_cosines_within_its_stated_error():
    """Charikar et al.'s sketch at the narrowest width: the inner product is unbiased over hashes, and a cosine
    through it is off by less than √(2/w) in standard deviation."""
    rng = np.random.default_rng(1)
    size, width = 17_258, 4096
    x = rng.normal(size=size)
    y = 0.5 * x + rng.normal(size=size)
    true = x @ y / np.linalg.norm(x) / np.linalg.norm(y)
    ratios, errors = [], []
    for seed in range(200):
        sketch = CountSketch(size, width, seed=seed)
        a, b = (sketch([v.astype(np.float32)]).astype(np.float64) for v in (x, y))
        ratios.append(a @ b / (x @ y))
        errors.append(a @ b / np.linalg.norm(a) / np.linalg.norm(b) - true)
    assert abs(np.mean(ratios) - 1) < 4 * np.std(ratios) / np.sqrt(len(ratios))
    assert np.std(errors) < np.sqrt(2 / width)


def test_the_localization_table_s_separation_and_auroc_are_its_slices_scores(tmp_path):
    """Each slice's separation is the largest run-level score of a client on it, the rows are ordered by it, and its
    AUROC is the Mann–Whitney statistic of those scores against the recorded truth."""
    rounds = _random_rounds(40, clients=8, rounds=8, participation=1.0)
    for updates in rounds:
        updates["c3"] = updates["c3"].copy()
        updates["c3"][SIZE - 2] += 30.0  # b.bias, class 3
    path = _write(tmp_path / "run.h5", rounds, truth=("c3",))
    with open_run(path) as run:
        report = analyze(run, [get_detector("layer-deviation")])
    result = report.detector("layer-deviation")
    rows = report.localization
    assert [r["separation"] for r in rows] == sorted((r["separation"] for r in rows), reverse=True)
    for row in rows:
        scores = result.statistic_scores[row["slice"]]
        assert row["separation"] == max(scores.values())
        truth = np.array([c == "c3" for c in scores])
        values = np.array(list(scores.values()))
        ranks = rankdata(values)
        assert row["auroc"] == pytest.approx((ranks[truth].sum() - 1) / (truth.size - 1))
    assert rows[0]["slice"] == "b.bias|max" and rows[0]["top_client"] == "c3"


EDGES = {
    "identical": lambda rng: [{f"c{i}": np.full(SIZE, 0.25) for i in range(6)} for _ in range(6)],
    "one client sends zero": lambda rng: [
        {f"c{i}": (np.zeros(SIZE) if i == 0 else rng.normal(size=SIZE)) for i in range(8)} for _ in range(6)
    ],
    "every update zero": lambda rng: [{f"c{i}": np.zeros(SIZE) for i in range(6)} for _ in range(5)],
    "clients of one round": lambda rng: [{f"r{r}c{i}": rng.normal(size=SIZE) for i in range(6)} for r in range(6)],
    "a ×1e30 update": lambda rng: [
        {f"c{i}": rng.normal(size=SIZE) * (1e30 if i == 2 else 1.0) for i in range(8)} for _ in range(6)
    ],
    "an update whose squares underflow float32": lambda rng: [
        {f"c{i}": rng.normal(size=SIZE) * (1e-25 if i == 2 else 1.0) for i in range(8)} for _ in range(6)
    ],
}


@pytest.mark.parametrize("case", sorted(EDGES))
@pytest.mark.parametrize("clients", [None, 2])
def test_edge_cases_score_without_warnings_and_leave_no_unscored_round_behind(tmp_path, case, clients):
    """Every registered detector (and, with ``clients``, every ``min_clients`` at 2, so that rounds of 2–3 clients are
    scored) on runs of identical, zero, single-round and extreme updates: no error, no numpy warning, scores finite or
    NaN (never a stray ±inf but avoidance's and free-rider's), and nothing flagged where every update is alike."""
    import inspect

    rounds = EDGES[case](np.random.default_rng(0))
    if clients:
        rounds = [{c: u for c, u in list(updates.items())[: 2 + r % 2]} for r, updates in enumerate(rounds)]
    path = _write(tmp_path / "run.h5", rounds)
    detectors = [
        get_detector(name, **({"min_clients": clients} if clients and "min_clients" in inspect.signature(cls).parameters else {}))
        for name, cls in all_detectors().items()
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with open_run(path) as run:
            report = analyze(run, detectors)
    for result in report.detectors:
        for cid, score in result.scores.items():
            assert not np.isinf(score) or result.name in ("avoidance", "free-rider"), (result.name, cid, score)
    if case in ("identical", "every update zero"):
        assert all(v.verdict == "benign" for v in report.verdicts)
