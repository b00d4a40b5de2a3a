"""Neural Cleanse: how long (batched vs. the one-label-at-a-time loop) and how well (anomaly indices over seeds).

Models: the digits CNN and MLP, trained on scikit-learn's bundled digits (no
download), clean or with a "+" backdoor towards 6; clean data: 300 held-out digits
(half to optimise, half to check).

* speed (default): batched (every label and restart one row of a single search) against
  the per-label loop (one label at a time, its restarts together); both run the same
  algorithm with the same seeds and give the same masks (checked); wall-clock seconds,
  the best of ``--repeats``. Target (issue 5):
  the CNN, 10 labels, ~300 clean samples, within 60 s on a 2-core CPU.
* ``--quality SEEDS``: per model, backdoor and seed, the target's anomaly index, the
  largest index of any other label, and what was flagged.
* ``--clean-sizes N ...``: the backdoored CNN inverted with N clean samples (the 300 held-out
  digits repeated, each copy with its own noise of 0.02), an epoch drawing at most
  ``--epoch-samples`` (default: the default cap, 1,000) of the optimisation half against every one of
  them: seconds, epochs, the target's anomaly index and what was flagged (``--seeds``).

Run: ``python benchmarks/trigger_bench.py [--repeats 3] [--quality 0 1 2 3 4 5] [--clean-sizes 300 1200 4800] [--json out.json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from fedforensics.inversion import NeuralCleanse, NeuralCleanseResult

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from backdoor import TARGET, attack_success, trained  # noqa: E402  (the tests' digits models, shared)

MODELS = {"CNN": "cnn", "MLP": "mlp"}


def timed(run, repeats: int) -> tuple[float, NeuralCleanseResult]:
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - start)
    return best, result  # type: ignore[return-value]


def speed(repeats: int) -> list[dict]:
    nc = NeuralCleanse(seed=0)
    rows = []
    for name, kind in MODELS.items():
        model, x, y = trained(kind, 0, True)
        batched_s, batched = timed(lambda: nc.invert(model, x, y), repeats)
        loop_s, looped = timed(lambda: nc.invert_per_label(model, x, y), repeats)
        assert np.allclose(batched.masks, looped.masks, atol=1e-5), "the two ways must compute the same search"
        labels = len(batched.classes)
        rows.append({
            "model": name,
            "labels": labels,
            "restarts": nc.restarts,
            "samples": len(y),
            "epochs": int(batched.epochs.sum()),
            "batched_s": round(batched_s, 2),
            "loop_s": round(loop_s, 2),
            "ratio": round(loop_s / batched_s, 2),
            "batched_s_per_label": round(batched_s / labels, 2),
            "loop_s_per_label": round(loop_s / labels, 2),
            "flagged": batched.flagged_labels,
        })  # fmt: skip
    print(f"machine: {machine()}, torch {torch.__version__}, 1 thread, best of {repeats}")
    print("| model | labels × restarts | clean samples | epochs (all labels) | batched | per-label loop | loop / batched | per label, batched | per label, loop | flagged |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['model']} | {r['labels']} × {r['restarts']} | {r['samples']} | {r['epochs']} | {r['batched_s']:.1f} s | {r['loop_s']:.1f} s "
            f"| {r['ratio']:.1f}× | {r['batched_s_per_label']:.2f} s | {r['loop_s_per_label']:.2f} s | {r['flagged']} |"
        )
    return rows


def quality(seeds: list[int]) -> list[dict]:
    rows = []
    print("| model | backdoor | seed | attack success | target index | target held-out success | largest other index (label) | flagged |")
    print("|---|---|---|---|---|---|---|---|")
    for name, kind in MODELS.items():
        for backdoor in (False, True):
            for seed in seeds:
                model, x, y = trained(kind, seed, backdoor)
                result = NeuralCleanse(seed=seed).invert(model, x, y)
                others = [c for c in result.classes if c.label != TARGET or not backdoor]
                worst = max(others, key=lambda c: c.anomaly_index if c.mask_l1 < np.median([k.mask_l1 for k in result.classes]) else -1)
                target = result.classes[TARGET]
                row = {
                    "model": name, "backdoor": backdoor, "seed": seed, "attack_success": round(attack_success(model, x, y), 3),
                    "target_index": round(target.anomaly_index, 2) if backdoor else None,
                    "target_held_out_success": round(target.attack_success, 3) if backdoor else None,
                    "worst_other_index": round(worst.anomaly_index, 2), "worst_other_label": worst.label,
                    "flagged": result.flagged_labels,
                }  # fmt: skip
                rows.append(row)
                print(
                    f"| {name} | {'yes' if backdoor else 'no'} | {seed} | {row['attack_success']:.2f} | {row['target_index'] or '–'} "
                    f"| {row['target_held_out_success'] or '–'} | {row['worst_other_index']:.2f} ({worst.label}) | {row['flagged']} |",
                    flush=True,
                )
    return rows


def clean_sizes(sizes: list[int], seeds: list[int], caps: list[int]) -> list[dict]:
    rows = []
    print(f"machine: {machine()}, torch {torch.__version__}, 1 thread")
    print("| seed | clean samples | epoch draws | seconds | epochs (all labels) | target index | target held-out success | flagged |")
    print("|---|---|---|---|---|---|---|---|")
    for seed, size in ((seed, size) for seed in seeds for size in sizes):
        model, x, y = trained("cnn", seed, True)
        noise = np.random.default_rng(seed)
        copies = -(-size // len(y))
        xs = np.clip(np.tile(x, (copies, 1, 1, 1))[:size] + noise.normal(0, 0.02, (copies * len(y), *x.shape[1:]))[:size], 0, 1)
        ys = np.tile(y, copies)[:size]
        for cap in (*caps, None):
            nc = NeuralCleanse(seed=seed, epoch_samples=cap or size)
            seconds, result = timed(lambda: nc.invert(model, xs.astype(np.float32), ys), 1)
            target = result.classes[TARGET]
            row = {
                "seed": seed, "samples": size, "epoch_samples": cap, "seconds": round(seconds, 1), "epochs": int(result.epochs.sum()),
                "target_index": round(target.anomaly_index, 2), "target_held_out_success": round(target.attack_success, 3),
                "flagged": result.flagged_labels,
            }  # fmt: skip
            rows.append(row)
            print(
                f"| {seed} | {size} | {cap or 'all'} | {seconds:.1f} s | {row['epochs']} | {row['target_index']:.2f} "
                f"| {row['target_held_out_success']:.2f} | {row['flagged']} |",
                flush=True,
            )
    return rows


def machine() -> str:
    """CPU model (from /proc/cpuinfo where there is one) and core count."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            name = next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    except (OSError, StopIteration):
        name = platform.processor() or platform.machine()
    return f"{name}, {os.cpu_count()} cores"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quality", type=int, nargs="+", metavar="SEED", help="measure detection over these seeds instead of speed")
    parser.add_argument("--clean-sizes", type=int, nargs="+", metavar="N", help="time the CNN's inversion on N clean samples, capped epochs against whole ones")
    parser.add_argument("--epoch-samples", type=int, nargs="+", default=[NeuralCleanse().epoch_samples], metavar="K", help="with --clean-sizes: the caps to compare with whole epochs (default: the default cap)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="with --clean-sizes: the seeds (default 0)")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.clean_sizes:
        rows = clean_sizes(args.clean_sizes, args.seeds, args.epoch_samples)
    else:
        rows = quality(args.quality) if args.quality else speed(args.repeats)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(rows, handle, indent=2)


if __name__ == "__main__":
    main()
