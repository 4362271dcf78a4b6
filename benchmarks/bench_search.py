"""λ* by search against λ* read off a grid: solver evaluations and wall time (issue 12).

Workload: 1,000 lines of funnel 8–4–4 nets (exact solver, a random task, 121 log-spaced saved
times to t_max = 30): 10 init scales (log-spaced 0.01–10) × 100 seeds, the λ > 0 side (the
one that turns lazy), S(0, t_max) crossing 0.01. (A square net's λ* would be the same on
every line: its K_0 is isotropic, so at this horizon λ* depends on the task alone.)

- **search**: ``grid.lambda: {search: {min: 0.01, max: 100, per_side: 8, sides: positive,
  rtol: 1e-6}}`` through :func:`lrsweep.search.search_shard`, the pipeline's shard function;
  evaluations are the rows of its runs table.
- **grid**: a uniform λ grid on [0.01, 100] (linear spacing, and log spacing as the stronger
  baseline) with the pipeline's interpolation (:func:`lrsweep.results` boundary: linear in
  log|λ| between neighbours). Its density is the smallest that gives every line of a probe
  subset λ* to 1e-2 relative (judged against the searched λ*); then the whole grid is solved
  for all lines through :func:`lrsweep.solve.solve_points` and its interpolated λ* is checked.

Reported: evaluations and wall time of each, their ratios (grid / search), and the worst
relative error of each against the other. One thread, same process, same run.

``--default-grid`` instead measures how far the boundary read off the default ``phase``
sweep's λ grid (config.yaml: 10 log-spaced |λ| per side on [0.01, 100]) lies from the searched
λ*, line by line (architecture × scale × seed × side), both sides.

Run:  python benchmarks/bench_search.py [--lines 1000] [--probe 100]
      python benchmarks/bench_search.py --default-grid
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lrsweep.grid import plan, point_ids  # noqa: E402
from lrsweep.results import _crossing  # noqa: E402
from lrsweep.search import search_shard  # noqa: E402
from lrsweep.solve import solve_points  # noqa: E402

THRESHOLD, RTOL, TARGET = 0.01, 1e-6, 1e-2
LAM_MIN, LAM_MAX = 0.01, 100.0


def sweep(n_lines: int) -> dict:
    n_scales = 10
    return {
        "solver": "exact",
        "regime_threshold": THRESHOLD,
        "max_points": 10**8,
        "shard_size": n_lines,
        "time": {"t_max": 30.0, "n_points": 121, "spacing": "log"},
        "grid": {
            "n_in": [8], "n_out": [4], "width": [4],
            "scale": {"logspace": {"start": 0.01, "stop": 10.0, "num": n_scales}},
            "seed": {"range": {"start": 0, "stop": max(1, n_lines // n_scales)}},
            "lambda": {"search": {"min": LAM_MIN, "max": LAM_MAX, "per_side": 8,
                                  "sides": "positive", "rtol": RTOL}},
        },
    }  # fmt: skip


def measure(specs: list, line: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """S(0, t_max) of lines ``line`` (indices into the shards' lines, in order) at ``lam``,
    solved shard by shard as the pipeline solves a grid."""
    sizes = np.cumsum([0] + [s.points["lambda"].size for s in specs])
    out = np.empty(lam.size)
    for k, spec in enumerate(specs):
        sel = (line >= sizes[k]) & (line < sizes[k + 1])
        if sel.any():
            out[sel] = _measure(spec, spec.points, line[sel] - sizes[k], lam[sel])
    return out


def _measure(spec, lines: dict, line: np.ndarray, lam: np.ndarray) -> np.ndarray:
    n = lam.size
    cols = {"lambda": lam, "scale": lines["scale"][line], "seed": lines["seed"][line]}
    shape = {a: np.full(n, getattr(spec.shape, a), np.int64) for a in ("n_in", "n_out",
                                                                      "width", "depth")}
    cols["point_id"] = point_ids({**shape, **cols})
    table, _ = solve_points(spec.with_points(cols))
    ok = np.asarray(table.column("status").to_pylist(), dtype=object) == "ok"
    return np.where(ok, table.column("kernel_distance").to_numpy(zero_copy_only=False), np.nan)


def interpolated(specs, idx: np.ndarray, lams: np.ndarray) -> tuple[np.ndarray, float]:
    """λ* of lines ``idx`` read off the grid ``lams`` (pipeline interpolation), and the wall
    time of solving that grid."""
    line = np.repeat(idx, lams.size)
    start = time.perf_counter()
    m = measure(specs, line, np.tile(lams, idx.size)).reshape(idx.size, lams.size)
    wall = time.perf_counter() - start
    return np.array([_crossing(lams, row, THRESHOLD) for row in m]), wall


def grid(kind: str, n: int) -> np.ndarray:
    if kind == "linear":
        return np.linspace(LAM_MIN, LAM_MAX, n)
    return np.geomspace(LAM_MIN, LAM_MAX, n)


def densest_needed(specs, probe: np.ndarray, star: np.ndarray, kind: str,
                   target: float = TARGET) -> int:
    """Smallest grid size (doubling, then bisection to 2 %) with every probe line's error
    ≤ ``target``."""
    def worst(n: int) -> float:
        est, _ = interpolated(specs, probe, grid(kind, n))
        return float(np.nanmax(np.abs(est / star[probe] - 1)) if np.isfinite(est).all()
                     else np.inf)

    lo, hi = 2, 16
    while worst(hi) > target:
        lo, hi = hi, hi * 2
    while hi - lo > max(1, hi // 50):
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if worst(mid) <= target else (mid, hi)
    return hi


def default_grid_error() -> None:
    """Interpolation error of the default phase sweep's boundary against the searched λ*."""
    import yaml

    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    grid_plan = plan({"sweeps": {"phase": config["sweeps"]["phase"]}})["phase"]
    lams = np.unique(grid_plan.values("lambda"))
    sweep_ = {**config["sweeps"]["phase"], "max_points": 10**8}
    sweep_["grid"] = {**sweep_["grid"], "lambda": {"search": {
        "min": LAM_MIN, "max": LAM_MAX, "per_side": 8, "rtol": RTOL}}}  # fmt: skip
    p = plan({"sweeps": {"phase": sweep_}})["phase"]
    rows = []
    for spec in (p.shard_spec(s) for s in p.shards):
        _, _, crossings = search_shard(spec)
        c = crossings.to_pandas()
        c = c[(c["status"] == "converged") & (c["crossing"] == 0)]
        for side, sign in (("positive", 1.0), ("negative", -1.0)):
            side_lams = lams[np.sign(lams) == sign] if sign < 0 else lams[lams >= 0]
            sub = c[c["side"] == side]
            if sub.empty:
                continue
            lines = spec.points
            idx = np.array([np.flatnonzero((lines["scale"] == r.scale) & (lines["seed"] == r.seed)
                                           & (np.sign(lines["lambda"]) == sign))[0]
                            for r in sub.itertuples()])  # fmt: skip
            line = np.repeat(idx, side_lams.size)
            m = _measure(spec, lines, line, np.tile(side_lams, idx.size))
            m = m.reshape(idx.size, side_lams.size)
            est = np.array([_crossing(side_lams, row, THRESHOLD) for row in m])
            rows.append(pd.DataFrame({"arch": f"{spec.shape.n_in}-{spec.shape.width}-"
                                      f"{spec.shape.n_out}", "side": side, "scale": sub["scale"],
                                      "err": np.abs(est / sub["lambda_star"].to_numpy() - 1)}))
    df = pd.concat(rows, ignore_index=True)
    step = np.exp(np.mean(np.diff(np.log(lams[lams > 0]))))
    print(f"default phase grid: {lams[lams > 0].size} |λ| per side, ratio {step:.3g} between "
          f"neighbours; {len(df)} line-sides that cross")
    print(df.groupby(["arch", "side"])["err"].describe()[["count", "50%", "max"]]
          .to_string(float_format=lambda v: f"{v:.2g}"))
    print(f"all: median {df['err'].median():.2g}, max {df['err'].max():.2g}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=1000)
    ap.add_argument("--probe", type=int, default=100, help="lines that set the grid density")
    ap.add_argument("--default-grid", action="store_true",
                    help="the default phase sweep's interpolation error instead")
    args = ap.parse_args()
    if args.default_grid:
        default_grid_error()
        return

    p = plan({"sweeps": {"b": sweep(args.lines)}})["b"]
    specs = [p.shard_spec(s) for s in p.shards]
    n_lines = sum(s.points["lambda"].size for s in specs)

    start = time.perf_counter()
    shards = [search_shard(spec) for spec in specs]  # each shard's lines in one batch
    search_wall = time.perf_counter() - start
    search_evals = sum(runs.num_rows for runs, _, _ in shards)
    c = pd.concat([cr.to_pandas() for _, _, cr in shards], ignore_index=True)
    assert (c["status"] == "converged").all() and (c["crossing"] == 0).all(), c["status"]
    star = c["lambda_star"].to_numpy()

    rng = np.random.default_rng(0)
    probe = np.sort(rng.choice(n_lines, size=min(args.probe, n_lines), replace=False))
    print(f"{n_lines} lines in {len(specs)} shards, λ > 0, S(0, 30) = {THRESHOLD}; λ* in "
          f"[{star.min():.4g}, {star.max():.4g}]")
    print(f"search to rtol {RTOL:g}: {search_evals} evaluations "
          f"({search_evals / n_lines:.1f} per line), {search_wall:.1f} s")
    for kind in ("linear", "log"):
        n = densest_needed(specs, probe, star, kind)
        est, wall = interpolated(specs, np.arange(n_lines), grid(kind, n))
        err = np.abs(est / star - 1)
        evals = n * n_lines
        print(
            f"{kind} grid of {n} λ values for {TARGET:g} by interpolation: {evals} evaluations, "
            f"{wall:.1f} s; worst error on all lines {np.nanmax(err):.2g} (median "
            f"{np.nanmedian(err):.2g}); ratio grid / search: {evals / search_evals:.1f}× "
            f"evaluations, {wall / search_wall:.1f}× wall time"
        )
        # equal precision: the interpolation error falls like n^-p (p ≈ 2); fit p on the
        # probe lines from the sizes needed for 1e-2 and 1e-4, extrapolate to rtol
        n4 = densest_needed(specs, probe, star, kind, target=1e-4)
        power = np.log(TARGET / 1e-4) / np.log(n4 / n)
        n6 = n4 * (1e-4 / RTOL) ** (1 / power)
        print(
            f"  for 1e-4: {n4} λ values (error ∝ n^-{power:.2f}); for rtol {RTOL:g} "
            f"≈ {n6:.3g} λ values per line: {n6 * n_lines / search_evals:.0f}× the search's "
            f"evaluations"
        )


if __name__ == "__main__":
    main()
