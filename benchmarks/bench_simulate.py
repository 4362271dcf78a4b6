"""Benchmark of lrsweep.simulate (not a test): batched gradient descent, and flow vs exact.

1. 1000 runs of a depth-4, width-16 net on an 8 → 8 task (widths 8-16-16-16-8, which only
   admits λ = 0: λ-balanced inits with absolute scales from 1e-2 to 1), full-batch gradient
   descent for 2000 steps at η = 0.01, kernel distance S(0, t) recorded at 100 times.
   Target: the whole batch in ≤ 30 s on one core. Reports runs per second.
2. Depth 2: wall time of gradient_flow vs lrsweep.exact.qqt at matched accuracy, i.e. the
   loosest flow tolerance whose max_t ‖QQᵀ_flow − QQᵀ_exact‖_F / ‖QQᵀ_exact‖_F ≤ 1e-6.

Run: ``python benchmarks/bench_simulate.py [--runs 1000] [--steps 2000]``. BLAS is pinned to
one thread (one core of the CI machine) unless the environment already says otherwise.
Results are printed and written to ``benchmarks/out/bench_simulate.json``.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from lrsweep import metrics  # noqa: E402
from lrsweep.init import lambda_balanced_deep, layer_widths  # noqa: E402
from lrsweep.simulate import gradient_descent, gradient_flow  # noqa: E402
from lrsweep.tasks import random_regression  # noqa: E402

OUT = Path(__file__).parent / "out" / "bench_simulate.json"


def stack(runs: list[list[np.ndarray]]) -> list[np.ndarray]:
    return [np.stack([r[k] for r in runs]) for k in range(len(runs[0]))]


def bench_descent(n_runs: int, n_steps: int, n_record: int, lr: float) -> dict:
    """Deep batched gradient descent with the kernel distance recorded along the way."""
    task = random_regression(8, 8, seed=0)
    widths = layer_widths(8, 16, 8, depth=4)
    scales = np.geomspace(1e-2, 1.0, n_runs)
    seeds = np.random.SeedSequence(2025).spawn(n_runs)
    t0 = time.perf_counter()
    ws = stack(
        [lambda_balanced_deep(0.0, widths, a, seed=s) for a, s in zip(scales, seeds, strict=True)]
    )
    t_init = time.perf_counter() - t0

    per_segment = n_steps // n_record
    seg_t = per_segment * lr
    t0 = time.perf_counter()
    grams_0 = metrics.ntk_grams(ws)
    dist = np.empty((n_record + 1, n_runs))
    dist[0] = 0.0
    for i in range(1, n_record + 1):
        # advance one segment; the state at its end is the next segment's init
        ws = [w[-1] for w in gradient_descent(ws, task.sigma_yx, [seg_t], lr)]
        dist[i] = metrics.kernel_distance(grams_0, metrics.ntk_grams(ws))
    wall = time.perf_counter() - t0
    final_loss = metrics.loss(metrics.end_to_end(ws), task.sigma_yx)
    return {
        "runs": n_runs,
        "widths": widths,
        "steps": n_steps,
        "lr": lr,
        "records": n_record,
        "init_seconds": t_init,
        "wall_seconds": wall,
        "runs_per_second": n_runs / wall,
        "run_steps_per_second": n_runs * n_steps / wall,
        "target_seconds": 30.0,
        "finite": bool(np.all(np.isfinite(dist))),
        "kernel_distance_final_range": [float(dist[-1].min()), float(dist[-1].max())],
        "final_loss_median": float(np.median(final_loss)),
    }


def bench_flow_vs_exact(n_runs: int, target: float = 1e-6) -> dict:
    """Depth-2 flow vs the exact solver at matched accuracy (relative error ≤ ``target``)."""
    from lrsweep import exact

    task = random_regression(4, 4, seed=1)
    lams = np.geomspace(1e-2, 1e2, n_runs) * np.where(np.arange(n_runs) % 2, 1.0, -1.0)
    ws = stack([lambda_balanced_deep(lam, [4, 4, 4], 0.1, seed=i) for i, lam in enumerate(lams)])
    t = np.linspace(0.0, 20.0, 100)

    t0 = time.perf_counter()
    q = exact.qqt(ws[0], ws[1], task.sigma_yx, t)
    t_exact = time.perf_counter() - t0

    tried = []
    for rtol in (1e-4, 1e-5, 1e-6, 1e-7, 1e-8):
        t0 = time.perf_counter()
        (W1, W2), info = gradient_flow(ws, task.sigma_yx, t, rtol=rtol, full_output=True)
        t_flow = time.perf_counter() - t0
        Q = np.concatenate([np.swapaxes(W1, -1, -2), W2], axis=-2)
        q_sim = Q @ np.swapaxes(Q, -1, -2)
        err = float(
            np.max(np.linalg.norm(q_sim - q, axis=(-2, -1)) / np.linalg.norm(q, axis=(-2, -1)))
        )
        tried.append(
            {
                "rtol": rtol,
                "max_rel_error": err,
                "flow_seconds": t_flow,
                "max_steps": int(info.n_steps.max()),
                "mean_steps": float(info.n_steps.mean()),
            }
        )
        if err <= target:
            break
    best = tried[-1]
    return {
        "runs": n_runs,
        "times": t.size,
        "target_error": target,
        "exact_seconds": t_exact,
        "flow": best,
        "flow_over_exact": best["flow_seconds"] / t_exact,
        "tried": tried,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--records", type=int, default=100)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--flow-runs", type=int, default=100)
    parser.add_argument("--baseline-runs", type=int, default=5)
    args = parser.parse_args()

    gd = bench_descent(args.runs, args.steps, args.records, args.lr)
    print(
        f"gradient descent: {gd['runs']} runs, widths {gd['widths']}, {gd['steps']} steps, "
        f"S(0,t) at {gd['records']} times: {gd['wall_seconds']:.1f} s "
        f"(target <= {gd['target_seconds']:.0f} s), {gd['runs_per_second']:.1f} runs/s, "
        f"{gd['run_steps_per_second']:.3g} run-steps/s; init {gd['init_seconds']:.2f} s; "
        f"S(0,t_end) in [{gd['kernel_distance_final_range'][0]:.3g}, "
        f"{gd['kernel_distance_final_range'][1]:.3g}]"
    )
    # baseline in the same run: the same workload one run at a time (a per-run Python loop)
    single = [
        bench_descent(1, args.steps, args.records, args.lr) for _ in range(args.baseline_runs)
    ]
    base_rate = len(single) / sum(b["wall_seconds"] for b in single)
    gd["baseline_runs_per_second"] = base_rate
    print(
        f"baseline, one run at a time: {base_rate:.1f} runs/s; batching is "
        f"{gd['runs_per_second'] / base_rate:.0f}x faster"
    )
    fe = bench_flow_vs_exact(args.flow_runs)
    print(
        f"depth 2, {fe['runs']} runs x {fe['times']} times at matched accuracy "
        f"{fe['target_error']:g}: exact {fe['exact_seconds']:.3f} s, flow "
        f"{fe['flow']['flow_seconds']:.2f} s (rtol={fe['flow']['rtol']:g}, error "
        f"{fe['flow']['max_rel_error']:.2g}, <= {fe['flow']['max_steps']} steps): "
        f"flow/exact = {fe['flow_over_exact']:.0f}"
    )
    OUT.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "machine": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "processor": platform.processor(),
            "cpus": os.cpu_count(),
            "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
        },
        "gradient_descent": gd,
        "flow_vs_exact": fe,
    }
    OUT.write_text(json.dumps(report, indent=2))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
