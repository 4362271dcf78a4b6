"""Throughput of the batched exact solver: QQᵀ evaluations per second.

Workload (issue 2): an (N_i, N_h, N_o) = (8, 8, 8) network, 1000 runs (λ from −5 to 5, random
inits) × 200 times in [0, 20τ]. Target: ≥ 1e5 evaluations/s on one core.

Baseline, measured in the same run: the literal generic formula (theory §3.3) evaluated by a
Python loop over runs and times with scipy's expm — what a notebook would do (and which loses
accuracy at long times, so it is timed on the same t grid but not used for results).

Run:  OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/bench_exact.py
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy.linalg import expm

from lrsweep.exact import qqt
from lrsweep.init import lambda_balanced
from lrsweep.tasks import random_regression


def literal_qqt(W1: np.ndarray, W2: np.ndarray, sigma_yx: np.ndarray, t: float) -> np.ndarray:
    """QQᵀ(t) = e^{Ft}Q0[I + Q0ᵀ(∫e^{2Fu}du)Q0]⁻¹Q0ᵀe^{Ft}, evaluated literally."""
    lam = np.trace(W2.T @ W2 - W1 @ W1.T) / W1.shape[0]
    n_o, n_i = sigma_yx.shape
    F = np.block([[-lam / 2 * np.eye(n_i), sigma_yx.T], [sigma_yx, lam / 2 * np.eye(n_o)]])
    mu, O = np.linalg.eigh(F)
    integral = (
        O
        @ np.diag(np.where(mu != 0, np.expm1(2 * mu * t) / (2 * np.where(mu != 0, mu, 1)), t))
        @ O.T
    )
    Q0 = np.vstack([W1.T, W2])
    eFt = expm(F * t)
    inner = np.eye(Q0.shape[1]) + Q0.T @ integral @ Q0
    return eFt @ Q0 @ np.linalg.solve(inner, Q0.T @ eFt)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--times", type=int, default=200)
    parser.add_argument("--baseline-runs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    n = 8
    task = random_regression(n, n, seed=1)
    lams = np.linspace(-5, 5, args.runs)
    pairs = [lambda_balanced(lam, n, n, n, 0.1, seed=i) for i, lam in enumerate(lams)]
    W1 = np.stack([p[0] for p in pairs])
    W2 = np.stack([p[1] for p in pairs])
    t = np.linspace(0, 20, args.times)

    best = np.inf
    for _ in range(args.repeats):
        start = time.perf_counter()
        q = qqt(W1, W2, task.sigma_yx, t)
        best = min(best, time.perf_counter() - start)
    n_eval = args.runs * args.times
    rate = n_eval / best
    assert np.all(np.isfinite(q))

    start = time.perf_counter()
    failed = 0
    for i in range(args.baseline_runs):
        for tt in t:
            try:
                literal_qqt(W1[i], W2[i], task.sigma_yx, tt)
            except np.linalg.LinAlgError:
                failed += 1
    base_rate = args.baseline_runs * args.times / (time.perf_counter() - start)

    print(f"workload: (8,8,8), {args.runs} runs x {args.times} times = {n_eval} QQ^T evaluations")
    print(
        f"lrsweep.exact.qqt (batched): {best:.2f} s, {rate:,.0f} evaluations/s "
        f"(target >= 100,000: {'met' if rate >= 1e5 else 'NOT met'})"
    )
    print(
        f"baseline (literal formula, loop + expm): {base_rate:,.0f} evaluations/s "
        f"({failed} of {args.baseline_runs * args.times} evaluations singular/overflowed)"
    )
    print(f"speed-up vs baseline: {rate / base_rate:.1f}x")


if __name__ == "__main__":
    main()
