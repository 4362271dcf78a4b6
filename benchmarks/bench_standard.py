"""Benchmark (not a test): a Gaussian-init sweep, batched vs a Kunin-style per-run loop.

The sweep: ``--points`` (default 10⁴) two-layer Gaussian inits 4-16-4 (Xavier × a multiplier
from 0.1 to 2, layer ratio 0.5 … 2, one seed per point; :mod:`lrsweep.standard`) on a 4 → 4
regression task with whitened inputs, gradient flow to t/τ = 30, saved at t/τ = 0, 1, 3, 10, 30.

1. **Batched** (lrsweep): :func:`lrsweep.simulate.gradient_flow` on shards of ``--chunk`` points
   (the pipeline's flow shard size, 200) in this one process — every shard's runs advance in
   stacked arrays. Also :func:`lrsweep.simulate.gradient_descent` (η = 0.01, 3000 steps) for
   context: cheaper per step, but O(η) off the flow.
2. **Per-run loop** (as in Kunin et al.'s code): one run per task, ``scipy.integrate.solve_ivp``
   (RK45, rtol 1e-8, atol 1e-12 — the flow's default tolerances) in a ``multiprocessing`` pool of
   2 workers, on the first ``--loop-points`` (200) points, extrapolated per point; and the same
   with ``maxtasksperchild=1`` (a fresh process for every run).

3. **Stiff subset** (context): ``--stiff-points`` (200) inits with multipliers 10 … 30 (λ_eff up
   to ~10³), batched flow vs the same per-run loop: the regime the batched L-stable solver is
   built for, where an explicit per-run integrator needs steps ∝ |λ|·t.

Times are wall clock and CPU seconds (``time.process_time`` of this process, ``os.times`` of the
reaped pool workers): points per CPU second compare the methods per core even when other jobs
load the machine. Both see the same inits and times on the same machine in the same run; the
loop's weights are compared with the batched flow's (max relative ‖ΔQQᵀ‖ at the saved times) to
show they compute the same trajectories. BLAS is pinned to one thread per process.

Run: ``python benchmarks/bench_standard.py [--points 10000] [--chunk 200] [--loop-points 200]``.
Results are printed and written to ``benchmarks/out/bench_standard.json``.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import multiprocessing as mp  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from ode_reference import two_layer_flow_explicit  # noqa: E402

from lrsweep import standard as sd  # noqa: E402
from lrsweep.simulate import gradient_descent, gradient_flow  # noqa: E402
from lrsweep.tasks import random_regression  # noqa: E402

OUT = Path(__file__).parent / "out" / "bench_standard.json"
WIDTHS = [4, 16, 4]
T = np.array([0.0, 1.0, 3.0, 10.0, 30.0])


def sweep_inits(
    n_points: int, lo: float = 0.1, hi: float = 2.0
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Multiplier × ratio × seed grid of Xavier inits, one SeedSequence per point."""
    n_ratio = 5
    mult = np.repeat(np.geomspace(lo, hi, max(n_points // n_ratio, 1)), n_ratio)[:n_points]
    ratio = np.tile(np.geomspace(0.5, 2.0, n_ratio), n_points)[:n_points]
    sig = sd.preset_sigmas("xavier", WIDTHS, mult, ratio)
    seeds = [np.random.SeedSequence([2025, k]) for k in range(n_points)]
    return sig, sd.gaussian_init(WIDTHS, sig, seeds)


def _one_run(args: tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
    """One run of the per-run loop: two-layer gradient flow with solve_ivp (RK45)."""
    W1, W2, syx = args
    w1, w2 = two_layer_flow_explicit(W1, W2, syx, T, method="RK45", rtol=1e-8, atol=1e-12)
    return np.concatenate([w1.reshape(T.size, -1), w2.reshape(T.size, -1)], axis=1)


def _children_cpu() -> float:
    t = os.times()
    return t.children_user + t.children_system


def per_run_loop(ws: list[np.ndarray], syx: np.ndarray, n: int, fresh: bool) -> tuple:
    """Wall seconds, CPU seconds of the workers, and the weights (n_t, n, size)."""
    jobs = [(ws[0][b], ws[1][b], syx) for b in range(n)]
    c0 = _children_cpu()
    t0 = time.perf_counter()
    pool = mp.get_context("fork").Pool(2, maxtasksperchild=1 if fresh else None)
    ys = pool.map(_one_run, jobs, chunksize=1)
    pool.close()
    pool.join()  # reap the workers so that their CPU time is counted
    return time.perf_counter() - t0, _children_cpu() - c0, np.stack(ys, axis=1)


def batched_flow(ws: list[np.ndarray], syx: np.ndarray, n: int, chunk: int, progress: bool):
    """lrsweep's flow shard by shard: wall s, CPU s, weights, steps per run."""
    outs, steps = [], []
    c0, t0 = time.process_time(), time.perf_counter()
    for lo in range(0, n, chunk):
        hi = min(lo + chunk, n)
        w, info = gradient_flow([x[lo:hi] for x in ws], syx, T, full_output=True)
        outs.append(w)
        steps.append(info.n_steps)
        if progress and (lo // chunk) % 10 == 0:
            rate = hi / (time.perf_counter() - t0)
            print(f"  flow: {hi}/{n} points, {rate:.2f} points/s (wall)", flush=True)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    weights = [np.concatenate([o[k] for o in outs], axis=1) for k in range(2)]
    return wall, cpu, weights, np.concatenate(steps)


def gram(w1: np.ndarray, w2: np.ndarray) -> np.ndarray:
    Q = np.concatenate([np.swapaxes(w1, -1, -2), w2], axis=-2)
    return Q @ np.swapaxes(Q, -1, -2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--points", type=int, default=10_000)
    ap.add_argument("--chunk", type=int, default=200)
    ap.add_argument("--loop-points", type=int, default=200)
    ap.add_argument("--flow-points", type=int, default=None, help="batched flow on a subset")
    ap.add_argument("--stiff-points", type=int, default=200)
    args = ap.parse_args()
    syx = random_regression(4, 4, seed=0).sigma_yx
    t0 = time.perf_counter()
    _, ws = sweep_inits(args.points)
    t_init = time.perf_counter() - t0
    n_flow = args.points if args.flow_points is None else min(args.flow_points, args.points)
    print(
        f"{args.points} Gaussian inits {'-'.join(map(str, WIDTHS))} drawn in {t_init:.2f} s; "
        f"batched flow on {n_flow} of them in shards of {args.chunk}",
        flush=True,
    )

    # 1. batched flow, shard by shard in this process; batched GD for context
    t_flow, c_flow, flow_w, steps = batched_flow(ws, syx, n_flow, args.chunk, progress=True)
    c0, t0 = time.process_time(), time.perf_counter()
    gradient_descent(ws, syx, T, 0.01)
    t_gd, c_gd = time.perf_counter() - t0, time.process_time() - c0

    # 2. per-run loop in a pool of 2 (reused workers, then a fresh process per run)
    n_loop = min(args.loop_points, n_flow)
    t_loop, c_loop, ys = per_run_loop(ws, syx, n_loop, fresh=False)
    t_fresh, c_fresh, _ = per_run_loop(ws, syx, n_loop, fresh=True)
    n1 = ws[0][0].size
    loop_w1 = ys[..., :n1].reshape(T.size, n_loop, *ws[0].shape[1:])
    loop_w2 = ys[..., n1:].reshape(T.size, n_loop, *ws[1].shape[1:])
    q_flow = gram(flow_w[0][:, :n_loop], flow_w[1][:, :n_loop])
    q_loop = gram(loop_w1, loop_w2)
    dev = np.max(
        np.linalg.norm(q_flow - q_loop, axis=(-2, -1)) / np.linalg.norm(q_flow, axis=(-2, -1))
    )

    # 3. stiff subset: large multipliers, same two methods
    stiff = {}
    if args.stiff_points > 0:
        _, ws_s = sweep_inits(args.stiff_points, 10.0, 30.0)
        _, c_sf, _, steps_s = batched_flow(ws_s, syx, args.stiff_points, args.chunk, False)
        _, c_sl, _ = per_run_loop(ws_s, syx, args.stiff_points, fresh=False)
        lam = sd.imbalance_summary(ws_s).lam_eff[:, 0]
        stiff = {
            "points": args.stiff_points,
            "lambda_eff_abs_max": float(np.abs(lam).max()),
            "flow_steps_mean": float(steps_s.mean()),
            "batched_flow_per_cpu_s": args.stiff_points / c_sf,
            "loop_per_cpu_s": args.stiff_points / c_sl,
        }

    rates = {  # points per wall-clock second
        "batched_flow": n_flow / t_flow,
        "batched_gd": args.points / t_gd,
        "loop_pool2": n_loop / t_loop,
        "loop_pool2_fresh_process": n_loop / t_fresh,
    }
    per_cpu = {  # points per CPU second (one core)
        "batched_flow": n_flow / c_flow,
        "batched_gd": args.points / c_gd,
        "loop": n_loop / c_loop,
        "loop_fresh_process": n_loop / c_fresh,
    }
    result = {
        "machine": platform.platform(),
        "processor": platform.processor(),
        "cpus": os.cpu_count(),
        "load_average_at_end": os.getloadavg(),
        "points": args.points,
        "flow_points": n_flow,
        "loop_points": n_loop,
        "chunk": args.chunk,
        "widths": WIDTHS,
        "t": T.tolist(),
        "seconds": {"init": t_init, "flow": t_flow, "gd": t_gd, "loop": t_loop, "fresh": t_fresh},
        "cpu_seconds": {"flow": c_flow, "gd": c_gd, "loop": c_loop, "fresh": c_fresh},
        "points_per_second": rates,
        "points_per_cpu_second": per_cpu,
        "flow_steps_mean": float(steps.mean()),
        "flow_steps_max": int(steps.max()),
        "max_rel_dev_flow_vs_loop": float(dev),
        "ratio_batched_flow_over_loop": rates["batched_flow"] / rates["loop_pool2"],
        "ratio_per_cpu_batched_flow_over_loop": per_cpu["batched_flow"] / per_cpu["loop"],
        "stiff": stiff,
        "extrapolated_seconds_for_all_points": {k: args.points / v for k, v in rates.items()},
    }
    print("points per second, wall clock (per CPU second):")
    print(
        f"batched flow    : {rates['batched_flow']:9.2f} ({per_cpu['batched_flow']:.2f})  "
        f"{n_flow} points, {t_flow:.1f} s; {steps.mean():.0f} steps/run, max {steps.max()}"
    )
    print(
        f"batched GD      : {rates['batched_gd']:9.2f} ({per_cpu['batched_gd']:.2f})  "
        "η = 0.01, 3000 steps (O(η) off the flow)"
    )
    print(
        f"per-run loop    : {rates['loop_pool2']:9.2f} ({per_cpu['loop']:.2f})  pool of 2, "
        f"{n_loop} runs, {t_loop:.1f} s -> {args.points / rates['loop_pool2']:.0f} s for "
        f"{args.points}"
    )
    print(
        f"  fresh process : {rates['loop_pool2_fresh_process']:9.2f} "
        f"({per_cpu['loop_fresh_process']:.2f})"
    )
    print(
        f"ratio batched flow / per-run loop: {result['ratio_batched_flow_over_loop']:.3g} wall, "
        f"{result['ratio_per_cpu_batched_flow_over_loop']:.3g} per CPU second"
    )
    print(f"max relative QQᵀ deviation flow vs loop: {dev:.2e}")
    if stiff:
        print(
            f"stiff subset ({stiff['points']} points, |λ_eff| ≤ {stiff['lambda_eff_abs_max']:.3g}),"
            f" per CPU second: batched flow {stiff['batched_flow_per_cpu_s']:.2f}, per-run loop "
            f"{stiff['loop_per_cpu_s']:.2f}, ratio "
            f"{stiff['batched_flow_per_cpu_s'] / stiff['loop_per_cpu_s']:.3g}"
        )
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=1))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
