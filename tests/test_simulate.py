"""``fedforensics simulate``: reproducible federations whose attacks really do what their papers say."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.stats import norm
from typer.testing import CliRunner

from fedforensics import open_run, zoo
from fedforensics.cli import app
from fedforensics.cli.simulate import Attack as CliAttack
from fedforensics.errors import FedForensicsError
from fedforensics.simulate import (
    ATTACKS, Dataset, SimulationConfig, load_dataset, make_attack, make_trigger, partition, plan, simulate, train_test_split,
)  # fmt: skip
from fedforensics.simulate.attacks import SETTINGS
from fedforensics.simulate.federation import client_id

torch.set_num_threads(1)

SHORT = {"clients": 5, "rounds": 3}  # two attackers (one for label flipping) and three honest clients
DIGITS = load_dataset("digits")


def snapshot(path: Path) -> dict[str, object]:
    """Everything a run records but its creation time, keyed by where it is."""
    with open_run(path) as run:
        out: dict[str, object] = {"meta": run.meta, "truth": run.ground_truth, "final": run.final_state()}
        for name in run.attachments:
            out[f"attachment {name}"] = run.attachment(name)
        for r in run.rounds:
            out[f"{r} clients"] = run.clients(r)
            out[f"{r} updates"] = run.update_matrix(r, run.layers)
            out[f"{r} global"] = run.global_state(r)
            out[f"{r} samples"] = run.num_samples(r)
            out[f"{r} metrics"] = run.metrics(r)
            out[f"{r} global metrics"] = run.global_metrics(r)
    return out


def identical(a: object, b: object) -> bool:
    """Equal to the bit, through dicts, lists and arrays."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(identical(a[k], b[k]) for k in a)
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.asarray(a).dtype == np.asarray(b).dtype and np.array_equal(a, b)
    return a == b


def updates(run, r: int) -> dict[str, np.ndarray]:  # type: ignore[no-untyped-def]
    """Round ``r``'s updates, one flat vector per client."""
    return dict(zip(run.clients(r), run.update_matrix(r, run.layers)))


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def split(vectors: dict[str, np.ndarray], attackers: list[str]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(attackers' updates, honest updates)."""
    return [vectors[c] for c in attackers], [v for c, v in vectors.items() if c not in attackers]


# -- (a) reproducibility -------------------------------------------------------------------


def test_same_seed_same_run_bit_for_bit_other_seed_differs(tmp_path, demo_run):
    from make_fixtures import FIXTURES

    again = simulate(FIXTURES["demo"], tmp_path / "again.h5")
    first, second = snapshot(demo_run), snapshot(again.path)
    assert [k for k in first if not identical(first[k], second.get(k))] == []
    assert first["0 updates"].std() > 0  # type: ignore[union-attr]

    other = snapshot(simulate(SimulationConfig(rounds=1, seed=1), tmp_path / "seed1.h5").path)
    assert not identical(first["0 updates"], other["0 updates"])
    assert not identical(first["0 global"], other["0 global"])
    assert not identical(first["0 metrics"], other["0 metrics"])


# -- (b) every attack leaves its mark ------------------------------------------------------


@pytest.fixture(scope="module")
def short_runs(tmp_path_factory):
    """Every attack on the same short federation (same seed, so the same shards and honest clients)."""
    folder = tmp_path_factory.mktemp("attacks")
    runs = {}
    for name in ATTACKS:
        fraction = 0.2 if name == "label-flip" else 0.4
        runs[name] = simulate(SimulationConfig(attack=name, malicious_fraction=fraction, **SHORT), folder / f"{name}.h5")
    return runs


@pytest.mark.parametrize("name", list(ATTACKS))
def test_ground_truth_is_the_malicious_clients(short_runs, name):
    result = short_runs[name]
    expected = {"none": 0, "label-flip": 1}.get(name, 2)
    assert len(result.malicious) == expected
    with open_run(result.path) as run:
        assert run.ground_truth == result.malicious == run.meta["malicious"]
        assert run.meta["config"]["attack"] == name
        targeted = ATTACKS[name].backdoor or name == "class-flip"
        assert ("attack_success" in run.global_metrics(run.rounds[-1])) == targeted
        assert ("trigger" in run.attachments) == ATTACKS[name].backdoor
        clean = run.attachment("clean_data")
        assert len(clean["y"]) == 299 and set(clean["y"].tolist()) == set(range(10))


def test_attacks_leave_honest_clients_alone(short_runs):
    """Round 0 starts from one model: every honest client sends what it sends in the clean run."""
    with open_run(short_runs["none"].path) as run:
        clean = updates(run, 0)
    for name, result in short_runs.items():
        with open_run(result.path) as run:
            for cid, update in updates(run, 0).items():
                assert np.array_equal(update, clean[cid]) != (cid in result.malicious), (name, cid)


def test_scaling_boosts_the_backdoor_update(short_runs):
    boost = SimulationConfig().boost
    with open_run(short_runs["backdoor"].path) as plain, open_run(short_runs["scaling"].path) as scaled:
        assert scaled.ground_truth == plain.ground_truth
        for cid in scaled.ground_truth:
            np.testing.assert_allclose(updates(scaled, 0)[cid], boost * updates(plain, 0)[cid], rtol=1e-6)
        for r in scaled.rounds:  # later rounds start from another model, and stay ~boost times an honest norm
            attackers, honest = split(updates(scaled, r), scaled.ground_truth)
            ratio = min(np.linalg.norm(a) for a in attackers) / np.median([np.linalg.norm(h) for h in honest])
            assert boost / 2 < ratio < boost * 2


def test_bounded_backdoor_is_the_backdoor_at_the_honest_median_norm(short_runs):
    with open_run(short_runs["backdoor"].path) as plain, open_run(short_runs["bounded-backdoor"].path) as bounded:
        assert bounded.ground_truth == plain.ground_truth
        for cid in bounded.ground_truth:  # round 0: the plain backdoor's update, rescaled
            assert cosine(updates(bounded, 0)[cid], updates(plain, 0)[cid]) > 0.9999
        for r in bounded.rounds:
            attackers, honest = split(updates(bounded, r), bounded.ground_truth)
            median = np.median([np.linalg.norm(h.astype(np.float64)) for h in honest])
            assert all(np.linalg.norm(a.astype(np.float64)) == pytest.approx(median, rel=1e-5) for a in attackers)


def test_noise_has_an_honest_norm_and_no_direction(short_runs):
    with open_run(short_runs["noise"].path) as run, open_run(short_runs["none"].path) as clean:
        for cid in run.ground_truth:  # round 0: the norm of what the attacker trained, honestly
            assert np.linalg.norm(updates(run, 0)[cid]) == pytest.approx(np.linalg.norm(updates(clean, 0)[cid]), rel=1e-4)
        for r in run.rounds:
            attackers, honest = split(updates(run, r), run.ground_truth)
            mean = np.mean(honest, axis=0)
            assert all(abs(cosine(a, mean)) < 0.05 for a in attackers)
            assert all(cosine(h, mean) > 0.5 for h in honest)
            norms = [np.linalg.norm(h) for h in honest]
            assert all(0.5 * min(norms) < np.linalg.norm(a) < 2 * max(norms) for a in attackers)


def test_sign_flippers_send_what_they_trained_reversed(short_runs):
    with open_run(short_runs["sign-flip"].path) as run, open_run(short_runs["none"].path) as clean:
        for cid in run.ground_truth:  # round 0 starts from the clean run's model: the clean update, negated
            np.testing.assert_allclose(updates(run, 0)[cid], -updates(clean, 0)[cid], rtol=1e-5, atol=1e-8)
        for r in run.rounds:
            attackers, honest = split(updates(run, r), run.ground_truth)
            mean = np.mean(honest, axis=0)
            assert all(cosine(a, mean) < -0.3 for a in attackers) and all(cosine(h, mean) > 0.3 for h in honest)


def test_sybils_send_near_identical_updates(short_runs):
    with open_run(short_runs["sybil"].path) as run:
        for r in run.rounds:
            (a, b), honest = split(updates(run, r), run.ground_truth)
            assert cosine(a, b) > 0.99 and not np.array_equal(a, b)
            assert max(cosine(h, g) for i, h in enumerate(honest) for g in honest[i + 1 :]) < 0.99


def test_alie_sends_the_mean_shifted_by_z_deviations(short_runs):
    n, m = SHORT["clients"], 2
    z = norm.ppf((n - (n // 2 + 1 - m)) / n)
    with open_run(short_runs["alie"].path) as run:
        for r in run.rounds:
            (a, b), honest = split(updates(run, r), run.ground_truth)
            assert np.array_equal(a, b)
            h = np.array(honest, np.float64)
            np.testing.assert_allclose(a, h.mean(0) - z * h.std(0), rtol=1e-5, atol=1e-7)


def test_min_max_stays_within_the_honest_spread(short_runs):
    with open_run(short_runs["min-max"].path) as run:
        for r in run.rounds:
            (a, b), honest = split(updates(run, r), run.ground_truth)
            assert np.array_equal(a, b)
            h = np.array(honest, np.float64)
            spread = max(np.linalg.norm(x - y) for x in h for y in h)
            distances = np.linalg.norm(h - a, axis=1)
            assert distances.max() <= spread * (1 + 1e-5)
            assert distances.max() > 0.9 * spread  # pushed to the bound, not left at the mean
            assert np.linalg.norm(a - h.mean(0)) > 0.1 * spread


def predictions(run, r: int, cid: str) -> np.ndarray:  # type: ignore[no-untyped-def]
    """What client ``cid``'s local model of round ``r`` predicts on the held-out split."""
    model = zoo.digits_cnn()
    update, base = run.update(r, cid), run.global_state(r)
    model.load_state_dict({k: torch.from_numpy(base[k] + update[k]) for k in base})
    with torch.no_grad():
        return model(torch.from_numpy(run.attachment("clean_data")["x"])).argmax(1).numpy()


def test_label_flippers_learn_nine_minus_y(short_runs):
    with open_run(short_runs["label-flip"].path) as run:
        (flipper,) = run.ground_truth
        last = run.rounds[-1]
        accuracy = {c: m["train_accuracy"] for c, m in run.metrics(last).items()}
        assert accuracy[flipper] < min(a for c, a in accuracy.items() if c != flipper) - 0.05
        y = run.attachment("clean_data")["y"]
        for cid in run.clients(last):
            p = predictions(run, last, cid)
            if cid == flipper:
                assert (p == 9 - y).mean() > 0.4 and (p == y).mean() < 0.3
            else:
                assert (p == 9 - y).mean() < 0.15 and (p == y).mean() > 0.6


# -- (c) backdoor poisoning ----------------------------------------------------------------


@pytest.mark.parametrize("rate", [0.1, 1 / 3, 1.0])
def test_backdoor_poisons_a_share_with_trigger_and_target(rate):
    trigger, target = make_trigger("plus", DIGITS.image_shape), 6
    x, y = DIGITS.x[:300], DIGITS.y[:300]
    attack = make_attack("backdoor", trigger=trigger, target=target, num_classes=10, poison_rate=rate)
    px, py = attack.poison(x, y, np.random.default_rng(0))
    changed = np.flatnonzero(py != y)
    assert len(changed) == min(round(rate * len(y)), int((y != target).sum()))
    assert (py[changed] == target).all()
    assert np.array_equal(px[changed], trigger.stamp(x[changed]))
    kept = np.setdiff1d(np.arange(len(y)), changed)
    assert np.array_equal(px[kept], x[kept]) and np.array_equal(py[kept], y[kept])
    assert trigger.mask.sum() == 5 and (x[changed] != px[changed]).any(axis=(1, 2, 3)).mean() > 0.9


def test_target_class_flavour_stamps_the_target_images_only():
    trigger, target = make_trigger("plus", DIGITS.image_shape), 6
    x, y = DIGITS.x[:300], DIGITS.y[:300]
    attack = make_attack("backdoor", trigger=trigger, target=target, num_classes=10, flavour="target-class")
    px, py = attack.poison(x, y, np.random.default_rng(0))
    assert np.array_equal(py, y)
    stamped = (px != x).any(axis=(1, 2, 3))
    assert stamped.sum() > 20 and np.array_equal(stamped, y == target)
    assert np.array_equal(px[y == target], trigger.stamp(x[y == target]))


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"poison_rate": 0.0}, "--poison-rate must be in"),
        ({"flavour": "both"}, "unknown backdoor flavour"),
        ({"target": 10}, "--target 10 is not a label"),
        ({"boost": 0.0, "name": "scaling"}, "--boost must be positive"),
        ({"name": "trojan"}, "unknown attack 'trojan'"),
    ],
)
def test_bad_attack_parameters_are_refused(settings, message):
    kwargs = {"name": "backdoor", "trigger": make_trigger("plus", DIGITS.image_shape), "target": 6, "num_classes": 10}
    with pytest.raises(FedForensicsError, match=message):
        make_attack(**(kwargs | settings))


def test_a_flavour_is_checked_whatever_the_attack():
    """An unknown flavour was refused only by the backdoor itself: under another attack it was recorded as given."""
    with pytest.raises(FedForensicsError, match="unknown backdoor flavour 'both'"):
        SimulationConfig(attack="label-flip", flavour="both").check()
    SimulationConfig(attack="label-flip", flavour="target-class").check()  # no backdoor to misread it


# -- (d) partition ------------------------------------------------------------------------


def label_skew(y: np.ndarray, shards: list[np.ndarray]) -> float:
    """Mean total-variation distance between a shard's label distribution and the whole's."""
    whole = np.bincount(y, minlength=10) / len(y)
    return float(np.mean([0.5 * np.abs(np.bincount(y[s], minlength=10) / len(s) - whole).sum() for s in shards]))


def test_partitions_use_every_sample_once_iid_balanced_dirichlet_skewed():
    train, test = train_test_split(DIGITS, 1 / 6, np.random.default_rng(0))
    assert len(train.y) + len(test.y) == len(DIGITS.y) and set(test.y.tolist()) == set(range(10))
    skews = {}
    for alpha in (None, 0.5, 0.1):
        shards = partition(train.y, 10, np.random.default_rng(0), alpha)
        assert np.array_equal(np.sort(np.concatenate(shards)), np.arange(len(train.y)))
        sizes = [len(s) for s in shards]
        assert min(sizes) >= 10
        skews[alpha] = label_skew(train.y, shards)
        if alpha is None:
            assert max(sizes) - min(sizes) <= 1
        else:
            assert max(sizes) > 1.5 * min(sizes)
    assert skews[None] < 0.15 < 0.3 < skews[0.5] < skews[0.1]


def test_dirichlet_redraws_until_every_client_has_min_size():
    y = train_test_split(DIGITS, 1 / 6, np.random.default_rng(0))[0].y
    assert min(len(s) for s in partition(y, 10, np.random.default_rng(1), 0.1)) < 50  # the first draw is smaller
    assert min(len(s) for s in partition(y, 10, np.random.default_rng(1), 0.1, min_size=50)) >= 50
    with pytest.raises(FedForensicsError, match="raise --alpha"):
        partition(y, 10, np.random.default_rng(1), 0.1, min_size=140)
    with pytest.raises(FedForensicsError, match="too few for 200 clients"):
        partition(y, 200, np.random.default_rng(1))


# -- (e) partial participation and late attackers ------------------------------------------


def test_partial_participation_samples_clients_and_fedavg_aggregates(tmp_path):
    result = simulate(SimulationConfig(clients=6, clients_per_round=3, rounds=5, malicious_fraction=1 / 3), tmp_path / "p.h5")
    with open_run(result.path) as run:
        chosen = [tuple(run.clients(r)) for r in run.rounds]
        assert all(len(c) == 3 for c in chosen) and len(set(chosen)) > 1
        assert len(set().union(*chosen)) > 3
        states = [run.global_state(r) for r in run.rounds] + [run.final_state()]
        for r in run.rounds:
            weights = np.array([run.num_samples(r)[c] for c in run.clients(r)], np.float64)
            step = (weights / weights.sum()) @ run.update_matrix(r, run.layers).astype(np.float64)
            before = np.concatenate([v.ravel() for v in states[r].values()])
            after = np.concatenate([v.ravel() for v in states[r + 1].values()])
            np.testing.assert_allclose(after, before + step, atol=1e-6)


def test_plan_is_the_set_up_the_simulation_ran(tmp_path):
    """A benchmark reads what each client held from plan(); it must be what simulate() drew, not a lookalike."""
    config = SimulationConfig(clients=6, clients_per_round=4, rounds=3, partition="dirichlet", alpha=0.5, malicious_fraction=1 / 3, seed=5)
    setup = plan(config)
    result = simulate(config, tmp_path / "p.h5")
    assert result.malicious == [client_id(i) for i in setup.malicious] and len(setup.malicious) == 2
    assert len({len(s) for s in setup.shards}) > 1  # skewed: the sizes tell the shards apart
    sizes = {client_id(i): len(shard) for i, shard in enumerate(setup.shards)}
    with open_run(result.path) as run:
        for r in run.rounds:
            assert run.num_samples(r) == {c: sizes[c] for c in run.clients(r)}


def test_attackers_are_honest_before_the_start_round(late_backdoor_run, clean_run):
    with open_run(late_backdoor_run) as late, open_run(clean_run) as clean:
        start = late.meta["config"]["attack_start_round"]
        assert start == 2 and len(late.ground_truth) == 2
        for r in late.rounds:  # the same until the attack starts; then the global models part
            for cid, update in updates(late, r).items():
                same = r < start or (r == start and cid not in late.ground_truth)
                assert np.array_equal(update, updates(clean, r)[cid]) == same, (r, cid)


def test_attackers_that_never_attacked_are_named(tmp_path):
    """A review for researchers: an attacker never sampled, or a class flipper without an image of the source class,
    was recorded as malicious without a word, and evaluate then counted it as an attacker every detector missed."""
    sampled = simulate(SimulationConfig(clients=10, clients_per_round=2, rounds=3, malicious_fraction=0.1), tmp_path / "s.h5")
    with open_run(sampled.path) as run:
        present = set().union(*(run.clients(r) for r in run.rounds))
    assert sampled.idle == {c: "not sampled in any round" for c in sampled.malicious if c not in present} != {}

    config = SimulationConfig(attack="class-flip", partition="dirichlet", alpha=0.1, seed=3, rounds=1)
    setup = plan(config)
    sources = {client_id(i): int((setup.train.y[setup.shards[i]] == config.source).sum()) for i in setup.malicious}
    flipped = simulate(config, tmp_path / "f.h5")
    assert sorted(flipped.idle) == sorted(c for c, n in sources.items() if n == 0) != []
    assert all("changed none of its" in why for why in flipped.idle.values())
    with open_run(flipped.path) as run:
        assert run.meta["poisoned_samples"] == sources and run.ground_truth == flipped.malicious  # still the truth

    result = invoke("simulate", tmp_path / "cli.h5", "--clients", 10, "--clients-per-round", 2, "--rounds", 3, "--malicious-fraction", 0.1)
    assert result.exit_code == 0 and f"note: {sampled.malicious[0]} is in the ground truth but never attacked" in result.output


# -- (f) data loading ---------------------------------------------------------------------


def write_idx(path: Path, array: np.ndarray) -> Path:
    """``array`` (uint8) as an IDX file, gzipped when ``path`` ends in .gz."""
    raw = bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.astype(np.uint8).tobytes()
    with (gzip.open if path.suffix == ".gz" else open)(path, "wb") as f:  # type: ignore[operator]
        f.write(raw)
    return path


def small_images(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 12, 12), dtype=np.uint8), rng.integers(0, 10, n).astype(np.uint8)


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_load_an_mnist_idx_folder(tmp_path, suffix):
    x, y = small_images(40)
    write_idx(tmp_path / f"train-images-idx3-ubyte{suffix}", x[:30])
    write_idx(tmp_path / f"train-labels-idx1-ubyte{suffix}", y[:30])
    assert len(load_dataset(str(tmp_path)).y) == 30  # the t10k files are optional
    write_idx(tmp_path / f"t10k-images-idx3-ubyte{suffix}", x[30:])
    write_idx(tmp_path / f"t10k-labels-idx1-ubyte{suffix}", y[30:])
    data = load_dataset(str(tmp_path))
    assert data.x.shape == (40, 1, 12, 12) and data.x.dtype == np.float32 and data.image_shape == (1, 12, 12)
    np.testing.assert_allclose(data.x[:, 0], x / 255.0, rtol=1e-6)
    assert np.array_equal(data.y, y) and data.y.dtype == np.int64


def test_simulate_on_an_npz_dataset(tmp_path):
    x = np.kron(DIGITS.x[:, 0], np.ones((2, 2), np.float32))  # 16x16 digits
    np.savez(tmp_path / "big.npz", x=x, y=DIGITS.y)
    data = load_dataset(str(tmp_path / "big.npz"))
    assert data.name == "big" and data.image_shape == (1, 16, 16) and data.num_classes == 10
    config = SimulationConfig(dataset=str(tmp_path / "big.npz"), model="mlp", clients=4, rounds=2, malicious_fraction=0.25)
    result = simulate(config, tmp_path / "run.h5")
    with open_run(result.path) as run:
        assert run.meta["image_shape"] == [1, 16, 16] and run.meta["model_factory"] is None
        assert run.layer("1.weight").shape == (64, 256)
    assert result.accuracy > 0.5


def bad_dataset(tmp_path: Path, kind: str, n: int = 10) -> Path:
    """A dataset of ``n`` images, file or folder, broken in the way ``kind`` names."""
    x, y = small_images(n)
    huge = {"uint64 label": 2**64 - 1, "label over the class bound": 20_000, "more classes than images": n}
    if kind == "no labels in npz":
        np.savez(tmp_path / "d.npz", x=x)
    elif kind == "label count":
        np.savez(tmp_path / "d.npz", x=x, y=y[:5])
    elif kind == "flat images":
        np.savez(tmp_path / "d.npz", x=x.reshape(10, -1), y=y)
    elif kind == "not a zip":
        (tmp_path / "d.npz").write_text("hello")
    elif kind == "one array":
        with open(tmp_path / "d.npz", "wb") as f:
            np.save(f, x)
    elif kind == "empty":
        np.savez(tmp_path / "d.npz", x=x[:0], y=y[:0])
    elif kind == "truncated idx":
        path = write_idx(tmp_path / "train-images-idx3-ubyte", x)
        path.write_bytes(path.read_bytes()[:-7])
        write_idx(tmp_path / "train-labels-idx1-ubyte", y)
    elif kind == "not idx":
        (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(b"\x00\x00\x0d\x03 float data"))
        write_idx(tmp_path / "train-labels-idx1-ubyte", y)
    elif kind == "not gzip":
        (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(b"plain bytes")
        write_idx(tmp_path / "train-labels-idx1-ubyte", y)
    elif kind == "missing labels":
        write_idx(tmp_path / "train-images-idx3-ubyte", x)
    elif kind == "truncated gzip":
        path = write_idx(tmp_path / "train-images-idx3-ubyte.gz", x)
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
        write_idx(tmp_path / "train-labels-idx1-ubyte.gz", y)
    elif kind == "short idx header":  # three dimensions announced, one and a half given
        (tmp_path / "train-images-idx3-ubyte").write_bytes(bytes([0, 0, 8, 3]) + struct.pack(">I", n) + b"\x00\x00")
        write_idx(tmp_path / "train-labels-idx1-ubyte", y)
    elif kind.startswith("t10k"):
        write_idx(tmp_path / "train-images-idx3-ubyte", x)
        write_idx(tmp_path / "train-labels-idx1-ubyte", y)
        write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((5, 28, 28)) if kind == "t10k image size" else x[:5])
        if kind != "t10k labels missing":
            write_idx(tmp_path / "t10k-labels-idx1-ubyte", y[:4] if kind == "t10k label count" else y[:5])
    elif kind == "no channels":
        np.savez(tmp_path / "d.npz", x=x[:, None][:, :0], y=y)
    elif kind == "integer images beyond 255":  # were scaled to values above 1 without a word
        np.savez(tmp_path / "d.npz", x=x.astype(np.int64) * 1000, y=y)
    elif kind == "complex images":
        np.savez(tmp_path / "d.npz", x=x / 255 + 1j, y=y)
    elif kind in huge:
        labels = y.astype(np.uint64 if kind == "uint64 label" else np.int64)
        labels[0] = huge[kind]
        np.savez(tmp_path / "d.npz", x=x, y=labels)
    return tmp_path / "d.npz" if (tmp_path / "d.npz").exists() else tmp_path


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("no labels in npz", "no array y \\(it holds x\\)"),
        ("label count", r"labels have shape \(5,\); expected \(10,\)"),
        ("flat images", "images must be \\(N, H, W\\)"),
        ("not a zip", "not an .npz file \\(write one with np.savez"),
        ("one array", "one array \\(np.save\\), not an .npz archive"),
        ("empty", "no images"),
        ("truncated idx", "truncated"),
        ("not idx", "not an IDX file of unsigned bytes"),
        ("not gzip", "cannot read"),
        ("missing labels", "no train-labels-idx1-ubyte\\[.gz\\]"),
        ("t10k label count", r"t10k-labels-idx1-ubyte: labels have shape \(4,\); expected \(5,\)"),
        ("integer images beyond 255", "integer images are read as grey levels 0..255, but these run from 0 to "),
    ],
)
def test_bad_dataset_files_are_refused_clearly(tmp_path, kind, message):
    with pytest.raises(FedForensicsError, match=message):
        load_dataset(str(bad_dataset(tmp_path, kind)))


def by_scanning_each_class(y: np.ndarray, test_fraction: float, rng: np.random.Generator) -> np.ndarray:
    """The held-out indices as ``train_test_split`` chose them before it sorted once: one scan of ``y`` per class."""
    scans = (rng.permutation(np.flatnonzero(y == c)) for c in range(int(y.max()) + 1))
    return np.sort(np.concatenate([idx[: max(1, round(test_fraction * len(idx)))] for idx in scans if len(idx)]))


def test_the_split_sorts_once_and_holds_out_the_same_samples():
    """Labels with gaps and many classes: every class present is held out, the same samples as the
    per-class scan chose (a seed keeps its split), in one sort rather than a pass per class."""
    y = np.random.default_rng(0).choice([0, 3, 9_999], 3000)
    data = Dataset("gaps", np.arange(len(y), dtype=np.float32).reshape(-1, 1, 1, 1), y)  # each image is its index
    train, test = train_test_split(data, 0.1, np.random.default_rng(5))
    assert set(test.y.tolist()) == {0, 3, 9_999} and len(train.y) + len(test.y) == len(y)
    assert np.array_equal(test.x.ravel(), by_scanning_each_class(y, 0.1, np.random.default_rng(5)))
    digits_test = train_test_split(DIGITS, 1 / 6, np.random.default_rng(3))[1]
    assert np.array_equal(digits_test.x, DIGITS.x[by_scanning_each_class(DIGITS.y, 1 / 6, np.random.default_rng(3))])


def test_unknown_dataset_is_refused(tmp_path):
    with pytest.raises(FedForensicsError, match="give 'digits', an .npz file"):
        load_dataset(str(tmp_path / "digits.csv"))


# -- (g) the CLI --------------------------------------------------------------------------


def invoke(*args: object):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, [str(a) for a in args])


def test_cli_simulates_a_run_inspect_accepts(tmp_path):
    out = tmp_path / "run.h5"
    result = invoke("simulate", out, "--attack", "sybil", "--clients", 4, "--rounds", 2, "--malicious-fraction", 0.5, "--seed", 3)
    assert result.exit_code == 0, result.output
    assert "backdoor attack success" in result.output
    with open_run(out) as run:
        truth = run.ground_truth
        assert run.rounds == [0, 1] and len(truth) == 2 and run.meta["config"]["seed"] == 3
    inspected = invoke("inspect", out)
    assert inspected.exit_code == 0, inspected.output
    assert f"malicious (sybil): {', '.join(truth)}" in result.output
    assert f"ground truth       {', '.join(truth)}" in inspected.output and "accuracy, attack_success" in inspected.output

    again = invoke("simulate", out, "--rounds", 1)
    assert again.exit_code == 2 and "exists already" in again.output and "--overwrite" in again.output
    assert again.output.strip().count("\n") == 0 and "Traceback" not in again.output
    assert invoke("simulate", out, "--rounds", 1, "--overwrite").exit_code == 0
    with open_run(out) as run:
        assert run.rounds == [0]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--clients", "0"], "--clients must be at least 1"),
        (["--clients-per-round", "11"], "--clients-per-round must be between 1 and --clients"),
        (["--malicious-fraction", "0.01"], "is no attacker"),
        (["--malicious-fraction", "1"], "--malicious-fraction must be in"),
        # QA: 0.8 of 2 clients rounded to 2 attackers, a federation without an honest client
        (["--clients", "2", "--malicious-fraction", "0.8"], "makes every client an attacker (2 of 2"),
        (["--target", "12"], "--target 12 is not a label"),
        (["--poison-rate", "2"], "--poison-rate must be in"),
        # a fresh-eyes user: values an attack or partition does not use were accepted, those of another refused
        (["--attack", "none", "--poison-rate", "2"], "--poison-rate must be in (0, 1], got 2.0"),
        (["--alpha", "-5"], "--alpha must be a positive, finite number, got -5"),  # under --partition iid
        (["--partition", "dirichlet", "--alpha", "inf"], "--alpha must be a positive, finite number, got inf"),
        (["--dataset", "nowhere.npz"], "dataset 'nowhere.npz': no such file"),
        (["--partition", "dirichlet", "--alpha", "0"], "--alpha must be a positive, finite number"),
        (["--attack", "trojan"], "trojan"),
        (["--model", "resnet"], "resnet"),
        (["--lr", "nan"], "--lr must be a positive, finite number, got nan"),
        (["--attack", "scaling", "--boost", "nan"], "--boost must be a positive, finite number, got nan"),  # was accepted
        (["--attack", "scaling", "--boost", "inf"], "--boost must be a positive, finite number, got inf"),
        (["--boost", "-1"], "--boost must be a positive, finite number, got -1"),
        (["--momentum", "1"], "--momentum must be in [0, 1)"),
        (["--seed", "-1"], "--seed must be 0 or more"),
        (["--seed", str(2**80)], "--seed must be 0 or more and below 2**63"),  # was torch's OverflowError
        (["--rounds", str(10**20)], "--rounds must be at least 1 and below 2**63"),  # was run until the disk filled
        (["--attack-start-round", "5"], "--attack-start-round 5 is not one of the rounds 0..0"),
        (["--attack-start-round", "-1"], "--attack-start-round must be 0 or more (the first round), got -1"),
        # a review: the other backdoors ran the labels flavour, their meta saying target-class
        (["--attack", "scaling", "--flavour", "target-class"], "a flavour of --attack backdoor only: scaling relabels"),
        (["--attack", "dba", "--flavour", "target-class"], "a flavour of --attack backdoor only: dba relabels"),
    ],
)
def test_cli_bad_options_exit_2_in_one_line(tmp_path, options, message):
    result = invoke("simulate", tmp_path / "run.h5", "--rounds", 1, *options)
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "run.h5").exists()


@pytest.mark.parametrize(
    ("kind", "words"),
    [
        ("truncated gzip", ["train-images-idx3-ubyte.gz", "truncated or damaged"]),
        ("short idx header", ["train-images-idx3-ubyte", "truncated header", "3 dimensions need 16"]),
        ("t10k image size", ["t10k-images-idx3-ubyte holds images of 1×28×28", "train-images-idx3-ubyte of 1×12×12"]),
        ("t10k labels missing", ["no t10k-labels-idx1-ubyte[.gz]", "needs both"]),
        ("no channels", ["images of 0×12×12", "empty"]),
        ("complex images", ["images must be real numbers", "complex128"]),
        ("uint64 label", [f"label {2**64 - 1} is too large", "class labels run from 0"]),
        ("label over the class bound", ["label 20000 is too large", "at most 10,000 classes"]),  # 10**9 hung: a scan per class
        ("more classes than images", ["labels up to 40 make 41 classes for 40 images", "cannot be more classes than images"]),
    ],
)
def test_cli_bad_dataset_exits_2_in_one_line_leaving_out_untouched(tmp_path, kind, words):
    """Refused before the run file is opened: OUT is not created, and an earlier run is kept under --overwrite."""
    folder = tmp_path / "data"
    folder.mkdir()
    dataset = bad_dataset(folder, kind, n=40)  # enough for 2 clients: the data alone is at fault
    out, kept = tmp_path / "run.h5", tmp_path / "kept.h5"
    kept.write_bytes(b"an earlier run")
    options = ("--rounds", 1, "--clients", 2, "--malicious-fraction", 0.5, "--local-epochs", 1, "--dataset", dataset)
    for target, extra in ((out, []), (kept, ["--overwrite"])):
        result = invoke("simulate", target, *options, *extra)
        assert result.exit_code == 2, result.output
        assert result.output.startswith("error: ") and result.output.strip().count("\n") == 0, result.output
        assert all(word in result.output for word in words) and "Traceback" not in result.output, result.output
    assert not out.exists() and kept.read_bytes() == b"an earlier run"


def test_overwrite_replaces_the_earlier_run_only_once_the_new_one_is_complete(tmp_path):
    """--overwrite had truncated the earlier run at the start: a simulation interrupted or failing part way
    lost it and left a partial run in its place."""
    out = tmp_path / "run.h5"
    simulate(SimulationConfig(**SHORT, seed=1), out)
    earlier = out.read_bytes()

    def interrupt(done: int, total: int) -> None:
        assert (tmp_path / ".run.h5.simulating").exists() and out.read_bytes() == earlier  # not touched meanwhile
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        simulate(SimulationConfig(**SHORT, seed=2), out, overwrite=True, progress=interrupt)
    assert out.read_bytes() == earlier and sorted(p.name for p in tmp_path.iterdir()) == ["run.h5"]

    out.chmod(0o600)  # a run holds every client's update: kept private, it stays so
    simulate(SimulationConfig(**SHORT, seed=2), out, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.h5"] and out.stat().st_mode & 0o777 == 0o600
    with open_run(out) as run:
        assert run.meta["config"]["seed"] == 2 and run.finished


def test_overwrite_through_a_symbolic_link_replaces_the_file_it_names(tmp_path):
    """As the recorder writes through a link: the link stays, the run it points to is the new one."""
    (tmp_path / "runs").mkdir()
    real, link = tmp_path / "runs" / "run.h5", tmp_path / "latest.h5"
    simulate(SimulationConfig(**SHORT, seed=1), real)
    link.symlink_to(real)
    simulate(SimulationConfig(**SHORT, seed=2), link, overwrite=True)
    assert link.is_symlink() and link.resolve() == real.resolve()
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["run.h5"]
    with open_run(real) as run:
        assert run.meta["config"]["seed"] == 2


def test_overwrite_of_a_run_with_a_long_name_stages_under_a_short_one(tmp_path):
    """The sibling ``.NAME.simulating`` and its journal passed the file system's 255 bytes for names of
    236-247 bytes, which the recorder itself can write: it failed with Errno 36 at the first round."""
    out = tmp_path / ("r" * 244 + ".h5")
    simulate(SimulationConfig(**SHORT, seed=1), out)
    simulate(SimulationConfig(**SHORT, seed=2), out, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]
    with open_run(out) as run:
        assert run.meta["config"]["seed"] == 2 and run.finished


def test_overwrite_refuses_a_run_another_writer_holds(tmp_path):
    from recorder import Recorder, RecorderError

    out = tmp_path / "run.h5"
    with Recorder(out) as held:
        with pytest.raises(RecorderError, match="locked by another"):
            simulate(SimulationConfig(**SHORT), out, overwrite=True)
        assert held.path == out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.h5"]


def test_cli_offers_every_attack():
    assert [a.value for a in CliAttack] == list(ATTACKS)


# -- (h) quality floor and the zoo ---------------------------------------------------------


def test_default_backdoor_takes_hold_invisibly(tmp_path):
    result = simulate(SimulationConfig(), tmp_path / "default.h5")
    assert result.malicious == ["c0", "c1"]
    assert result.accuracy >= 0.9
    assert result.attack_success is not None and result.attack_success >= 0.8


def test_the_trigger_alone_does_not_fool_a_clean_model(clean_run):
    """Attack success measures the backdoor: the clean federation's model ignores the "+"."""
    trigger = make_trigger("plus", DIGITS.image_shape)
    with open_run(clean_run) as run:
        model = zoo.digits_cnn()
        model.load_state_dict({k: torch.from_numpy(v) for k, v in run.final_state().items()})
        clean = run.attachment("clean_data")
        others = clean["x"][clean["y"] != 6]
        with torch.no_grad():
            predicted = model(torch.from_numpy(trigger.stamp(others))).argmax(1).numpy()
        assert run.global_metrics(run.rounds[-1])["accuracy"] > 0.8
        assert (predicted == 6).mean() < 0.1


def test_zoo_model_loads_the_recorded_states(demo_run):
    with open_run(demo_run) as run:
        module, name = run.meta["model_factory"].split(":")
        assert (module, name) == ("fedforensics.zoo", "digits_cnn")
        model = getattr(zoo, name)()
        assert list(model.state_dict()) == [layer.name for layer in run.layers]
        model.load_state_dict({k: torch.from_numpy(v) for k, v in run.final_state().items()})
        clean = run.attachment("clean_data")
        with torch.no_grad():
            accuracy = (model(torch.from_numpy(clean["x"])).argmax(1).numpy() == clean["y"]).mean()
        assert accuracy == pytest.approx(run.global_metrics(run.rounds[-1])["accuracy"], abs=1e-6)


def test_dba_gives_each_attacker_its_own_part_of_the_trigger():
    """DBA (Xie et al. 2020): the parts are disjoint and make up the trigger; the k-th attacker's
    poisoned images differ from its clean ones only inside part k, relabelled to the target."""
    from fedforensics.simulate.attacks import make_attack
    from fedforensics.simulate.triggers import make_trigger

    trigger = make_trigger("plus", (1, 8, 8))
    attack = make_attack("dba", trigger=trigger, target=6, num_classes=10, attackers=2)
    parts = attack.local_triggers
    assert len(parts) == 2
    assert np.array_equal(parts[0].mask + parts[1].mask, trigger.mask)
    assert not np.any(parts[0].mask * parts[1].mask)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 0.5, (30, 1, 8, 8)).astype(np.float32)
    y = np.arange(30) % 10
    for part in parts:  # dealt in turn, one per attacker
        px, py = attack.poison(x, y, rng)
        changed = np.any(px != x, axis=(0, 1))
        assert changed.any() and np.array_equal(changed, part.mask > 0)
        assert set(py[np.any(px != x, axis=(1, 2, 3))].tolist()) == {6}
    assert len(make_attack("dba", trigger=trigger, target=6, num_classes=10, attackers=9).local_triggers) == 5


def test_class_flip_relabels_the_source_class_only():
    """Tolpegin et al. 2020: the source class's images are labelled as the target; nothing else changes.
    Its attack success is measured on the held-out images of the source class."""
    from fedforensics.simulate.attacks import make_attack
    from fedforensics.simulate.triggers import make_trigger

    trigger = make_trigger("plus", (1, 8, 8))
    attack = make_attack("class-flip", trigger=trigger, target=1, num_classes=10, source=7)
    x = np.zeros((20, 1, 8, 8), np.float32)
    y = np.arange(20) % 10
    px, py = attack.poison(x, y, np.random.default_rng(0))
    assert px is x and np.array_equal(py, np.where(y == 7, 1, y))
    probe, target = attack.success_probe(x, y)
    assert target == 1 and len(probe) == 2
    with pytest.raises(FedForensicsError, match="--source and --target are both 1"):
        make_attack("class-flip", trigger=trigger, target=1, num_classes=10, source=1)
    with pytest.raises(FedForensicsError, match="--source 12 is not a label"):
        make_attack("class-flip", trigger=trigger, target=1, num_classes=10, source=12)


def test_an_interrupted_simulation_leaves_no_partial_run_at_a_new_path(tmp_path):
    """QA: interrupted, a simulation into a new OUT left a partial, unfinished run there, and the same command run
    again was refused ("exists already"). Interrupted, the new run goes (an error such as a full disk keeps the
    rounds recorded: tests/test_disk_full.py)."""
    out = tmp_path / "run.h5"

    def interrupt(done: int, total: int) -> None:
        assert out.exists()  # recorded in place, round by round
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        simulate(SimulationConfig(**SHORT), out, progress=interrupt)
    assert list(tmp_path.iterdir()) == []
    simulate(SimulationConfig(**SHORT), out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.h5"]
    with open_run(out) as run:
        assert run.finished


def test_a_ctrl_c_dropped_during_the_last_round_leaves_no_finished_run(tmp_path):
    """Review: a Ctrl-C Python drops where it lands (a weak reference's callback) still let the run be finished and
    left in place while the command exited 130."""
    import signal

    from fedforensics.interrupts import recording_interrupts

    out = tmp_path / "run.h5"

    def dropped(done: int, total: int) -> None:
        if done == total:
            try:
                signal.getsignal(signal.SIGINT)(signal.SIGINT, None)  # the handler in place, its exception lost
            except KeyboardInterrupt:
                pass

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with recording_interrupts(), pytest.raises(KeyboardInterrupt):
            simulate(SimulationConfig(**SHORT), out, progress=dropped)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert list(tmp_path.iterdir()) == []


def test_an_interrupted_simulation_through_a_link_removes_the_run_not_the_link(tmp_path):
    """Review: OUT a symbolic link to a run yet to be made: interrupted, the link went and the partial run stayed."""
    (tmp_path / "runs").mkdir()
    link = tmp_path / "latest.h5"
    link.symlink_to(tmp_path / "runs" / "run.h5")

    def interrupt(done: int, total: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        simulate(SimulationConfig(**SHORT), link, progress=interrupt)
    assert link.is_symlink() and list((tmp_path / "runs").iterdir()) == []


def test_progress_knows_the_number_of_rounds_before_the_first_ends(tmp_path):
    """The bar read '0/?' through the first round, the longest wait on a large dataset."""
    calls: list[tuple[int, int]] = []
    simulate(SimulationConfig(**SHORT), tmp_path / "run.h5", progress=lambda done, total: calls.append((done, total)))
    assert calls == [(0, 3), (1, 3), (2, 3), (3, 3)]


@pytest.mark.parametrize("name", list(ATTACKS))
def test_a_run_records_the_settings_its_attack_takes_and_no_other(short_runs, name):
    """A review: `simulate --attack noise --target 55` recorded target 55 in the run's config, as if the noise had a
    target; the attack's own settings that it does not take are left out (a typo there is accepted, as before)."""
    backdoor = {"poison_rate", "target", "trigger", "flavour"} if ATTACKS[name].backdoor else set()
    takes = {"scaling": backdoor | {"boost"}, "class-flip": {"source", "target"}}.get(name, backdoor)
    with open_run(short_runs[name].path) as run:
        config = run.meta["config"]
    assert SETTINGS & set(config) == takes and config["seed"] == 0 and config["attack"] == name
    # a clean run recorded the default 0.2 of malicious clients and an attack start round it never had
    assert ({"malicious_fraction", "attack_start_round"} <= set(config)) == (name != "none")


def test_a_target_class_backdoor_records_no_poison_rate_nor_noise_a_target(tmp_path):
    """The target-class flavour stamps every target image: no share of the data is drawn, whatever --poison-rate says."""
    for attack, flavour, target in (("backdoor", "target-class", 6), ("noise", "labels", 55)):
        config = SimulationConfig(attack=attack, flavour=flavour, target=target, malicious_fraction=0.4, **SHORT)
        with open_run(simulate(config, tmp_path / f"{attack}.h5").path) as run:
            recorded = run.meta["config"]
        assert "poison_rate" not in recorded and recorded.get("target") == (6 if attack == "backdoor" else None)


def test_a_run_records_its_package_versions_and_a_hash_of_its_data(short_runs, tmp_path):
    """A review: a simulated run said nothing of the fedforensics, torch and numpy that made it, nor which data it was
    trained on. Its meta holds their installed versions and the SHA-256 of the dataset's arrays as loaded."""
    import hashlib
    import importlib.metadata

    x, y = DIGITS.x, DIGITS.y
    with open_run(short_runs["none"].path) as run:
        meta = run.meta
    assert meta["data_sha256"] == hashlib.sha256(x.astype("<f4").tobytes() + y.astype("<i8").tobytes()).hexdigest()
    assert meta["versions"] == {name: importlib.metadata.version(name) for name in ("fedforensics", "torch", "numpy")}
    np.savez(tmp_path / "other.npz", x=x, y=np.roll(y, 1))  # the same images, other labels: other data
    config = SimulationConfig(attack="none", dataset=str(tmp_path / "other.npz"), **SHORT)
    with open_run(simulate(config, tmp_path / "other.h5").path) as run:
        assert run.meta["data_sha256"] not in (None, meta["data_sha256"])


def test_attacks_doc_names_every_meta_key_and_setting_a_run_records(short_runs):
    """docs/attacks.md's 'What the run records' table: a key written but not in it is a key a researcher cannot read."""
    doc = (Path(__file__).resolve().parents[1] / "docs" / "attacks.md").read_text().split("## What the run records", 1)[1]
    table = doc.split("\n## ", 1)[0]
    with open_run(short_runs["class-flip"].path) as run:
        meta = run.meta
    assert [key for key in meta if f"| `{key}` |" not in table] == []
    assert [name for name in meta["config"] if f"`{name}`" not in table] == []


def test_the_help_of_each_backdoor_option_names_every_attack_it_applies_to():
    """A review for researchers: --poison-rate and --trigger said 'Backdoor', leaving open whether dba or sybil took them."""
    import typer.main

    options = {p.name: p.help for p in typer.main.get_command(app).commands["simulate"].params}  # type: ignore[attr-defined]
    backdoors = [name for name, attack in ATTACKS.items() if attack.backdoor]
    for option in ("poison_rate", "trigger"):
        assert all(name in options[option] for name in backdoors), (option, options[option])
    assert "rounded to the nearest" in options["malicious_fraction"]


def test_the_command_line_offers_every_registered_attack_trigger_and_model():
    """Review: the CLI lists the attacks, triggers and models by hand (its imports must not load torch, which the
    simulator's package does): a new one would be unreachable from `fedforensics simulate` until listed there."""
    from fedforensics import zoo
    from fedforensics.cli import simulate as cli
    from fedforensics.simulate import ATTACKS, TRIGGERS

    assert [a.value for a in cli.Attack] == list(ATTACKS)
    assert [t.value for t in cli.TriggerShape] == list(TRIGGERS)
    assert [m.value for m in cli.Model] == list(zoo.MODELS)


def test_a_dataset_of_its_own_gets_a_trigger_at_its_brightest_and_is_read_as_the_user_meant(tmp_path):
    """A fresh-eyes user: on digits saved as floats 0..16 the "full intensity" trigger was a literal 1.0 (attack success
    56 % against 96 % on the built-in digits); (N, 32, 32, 3) images were refused as 'too small for a 3x3 trigger';
    DATA.NPZ was not taken for an .npz, and a missing folder got the generic message."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    np.savez(tmp_path / "d16.npz", x=digits.images[:300], y=digits.target[:300])
    config = SimulationConfig(clients=4, rounds=1, local_epochs=1, attack="backdoor", malicious_fraction=0.25, dataset=str(tmp_path / "d16.npz"))
    simulate(config, tmp_path / "d16.h5")
    with open_run(tmp_path / "d16.h5") as run:
        assert float(np.asarray(run.attachment("trigger")["pattern"]).max()) == 16.0
    np.savez(tmp_path / "rgb.npz", x=np.zeros((20, 32, 32, 3), np.uint8), y=np.arange(20) % 2)
    with pytest.raises(FedForensicsError, match=r"look channels-last \(N, H, W, C\)"):
        load_dataset(str(tmp_path / "rgb.npz"))
    (tmp_path / "d16.npz").rename(tmp_path / "UP.NPZ")
    assert load_dataset(str(tmp_path / "UP.NPZ")).x.shape == (300, 1, 8, 8)
    with pytest.raises(FedForensicsError, match="no such folder"):
        load_dataset(str(tmp_path / "missing") + "/")
