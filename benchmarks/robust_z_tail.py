"""The upper tail of one client's robust z among n clients, by Monte Carlo.

    python benchmarks/robust_z_tail.py      # ~30 s; prints the table fedforensics/stats.py holds

Under a Gaussian null the robust z ``(x − median) / (c(n) · MAD)`` of one of n values has a
distribution that depends on n alone (location and scale cancel), with a tail far heavier
than a Gaussian's when n is small. The detectors' thresholds were set on 10-client rounds;
:func:`fedforensics.stats.on_reference_scale` moves a z of a smaller round to the z with the
same tail probability among 10, through this table. Each row: the |z| exceeded with one-sided
probability p (two-sided share 2p), from 4·10⁷ values per n (every value of 4·10⁶+ rows, which
are exchangeable), seed fixed.
"""

from __future__ import annotations

import argparse

import numpy as np

from fedforensics.stats import ROBUST_Z_TAIL, TAIL_PROBABILITIES, mad_factor

VALUES_PER_N = 40_000_000
ROWS_PER_CHUNK = 1_000_000


def tail_quantiles(n: int, rng: np.random.Generator) -> list[float]:
    """|z| exceeded with one-sided probability p, for every p of TAIL_PROBABILITIES."""
    kept, total = [], 0
    while total < VALUES_PER_N:
        x = rng.standard_normal((ROWS_PER_CHUNK, n))
        median = np.median(x, axis=1, keepdims=True)
        scale = mad_factor(n) * np.median(np.abs(x - median), axis=1, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.abs((x - median) / scale).ravel()
        z = z[np.isfinite(z)]
        kept.append(np.sort(z)[-len(z) // 4 :])  # the top quarter holds every quantile below
        total += z.size
    tail = np.sort(np.concatenate(kept))
    return [float(tail[len(tail) - int(2 * p * total)]) for p in TAIL_PROBABILITIES]


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    rng = np.random.default_rng(20261123)
    print("n | " + " | ".join(f"p = {p:g}" for p in TAIL_PROBABILITIES))
    for n in sorted(ROBUST_Z_TAIL):
        measured = tail_quantiles(n, rng)
        print(f"{n} | " + " | ".join(f"{q:.3f}" for q in measured))
        held = ROBUST_Z_TAIL[n]
        worst = max(abs(np.log(q / h)) for q, h in zip(measured, held))
        print(f"   largest relative difference from fedforensics.stats: {np.expm1(worst):.1%}")


if __name__ == "__main__":
    main()
