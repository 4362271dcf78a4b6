"""Measurement (not a test): error of the λ_eff-balanced prediction for Gaussian inits vs width.

For two-layer Gaussian inits (Xavier × ``--multiplier``, layer ratio ``--ratio``; theory §6.2)
on a rank-2 task s̃ = (3, 2) with whitened inputs, the simulated gradient flow (DOP853 on the
weights, rtol 1e-10; an independent integrator) is compared with the prediction of
:func:`lrsweep.standard.predicted_measures` (the exact solution from the λ_eff-balanced pair with
the same W2W1(0)). Per seed it records

- ``off``: ‖D − λ_eff I‖_F/‖D‖_F of the init (:func:`lrsweep.standard.imbalance_summary`);
- ``traj``: max_t ‖QQᵀ_pred − QQᵀ_sim‖_F / max_t ‖QQᵀ_sim‖_F (trajectory error);
- ``dS``: |S_pred(0, t_max) − S_sim(0, t_max)| (kernel distance error);
- ``dT``: |t90_pred − t90_sim| (time to 90 % of the loss decrease);

and fits each against width by least squares on log–log over all seeds (slope ± SE from the
residuals). Three sweeps: ``outer`` (N_i = N_o = n grows, N_h fixed), ``hidden`` (N_h grows at
fixed N_i = N_o) and ``square`` (N_i = N_h = N_o = n, imbalance only: the flow is not needed).

Run: ``python benchmarks/standard_width.py [--seeds 32] [--max-outer 512]``; prints a table
and writes ``benchmarks/out/standard_width.json``.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from ode_reference import two_layer_flow_explicit  # noqa: E402

from lrsweep import fitting, metrics  # noqa: E402
from lrsweep import standard as sd  # noqa: E402
from lrsweep.exact import stack_q  # noqa: E402
from lrsweep.tasks import haar_orthogonal  # noqa: E402

OUT = Path(__file__).parent / "out" / "standard_width.json"
T = np.array([0.0, 0.5, 1.0, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0, 40.0])


def task(n_i: int, n_o: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    S = np.zeros((n_o, n_i))
    S[0, 0], S[1, 1] = 3.0, 2.0
    return haar_orthogonal(n_o, rng) @ S @ haar_orthogonal(n_i, rng).T


def flow(W1: np.ndarray, W2: np.ndarray, syx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The reference flow of the tests (DOP853, rtol 1e-10) on the weights."""
    return two_layer_flow_explicit(W1, W2, syx, T)


def errors(n_i: int, n_h: int, n_o: int, n_seeds: int, mult: float, ratio: float) -> dict:
    widths = [n_i, n_h, n_o]
    sig = sd.preset_sigmas("xavier", widths, mult, ratio)
    seeds = [np.random.SeedSequence([7, s, n_i, n_h]) for s in range(n_seeds)]
    ws = sd.gaussian_init(widths, sig, seeds)
    syx = task(n_i, n_o)
    runs = [flow(ws[0][b], ws[1][b], syx) for b in range(n_seeds)]
    w1, w2 = np.stack([r[0] for r in runs], 1), np.stack([r[1] for r in runs], 1)
    g = metrics.ntk_grams([w1, w2])
    S = metrics.kernel_distance(metrics.KernelGrams(g.out_grams[0], g.in_grams[0]), g)
    L = fitting.loss(w2 @ w1, syx)
    t90 = fitting.time_to_fit(T, L, 0.9, final_loss=0.0)
    pm = sd.predicted_measures(ws[0], ws[1], syx, T, fractions=(0.9,))
    p = pm.prediction
    out = {
        "off": sd.imbalance_summary(ws).off_balance[:, 0],
        "lam_eff": p.lam,
        "admissible": p.admissible,
        "S_sim": S[-1],
    }
    traj = np.full(n_seeds, np.nan)
    ok = p.admissible
    if ok.any():
        q_pred = sd.qqt_with_rates(p.W1[ok], p.W2[ok], syx, T, [1.0, 1.0], lam=p.lam[ok])
        Q = stack_q(w1[:, ok], w2[:, ok])
        q_sim = Q @ np.swapaxes(Q, -1, -2)
        num = np.max(np.linalg.norm(q_pred - q_sim, axis=(-2, -1)), axis=0)
        traj[ok] = num / np.max(np.linalg.norm(q_sim, axis=(-2, -1)), axis=0)
    out["traj"] = traj
    out["dS"] = np.abs(pm.kernel_distance - S[-1])
    out["dT"] = np.abs(pm.time_to_fit[0] - t90)
    return out


def fit(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    keep = np.isfinite(y) & (y > 0)
    x, y = np.log(x[keep]), np.log(y[keep])
    X = np.c_[np.ones(x.size), x]
    coef, *_ = np.linalg.lstsq(X, y, rcond=None)
    r = y - X @ coef
    cov = r @ r / (x.size - 2) * np.linalg.inv(X.T @ X)
    return float(coef[1]), float(np.sqrt(cov[1, 1]))


def sweep(name: str, shapes: list[tuple[int, int, int]], key: int, args, flow_needed=True):
    rows = []
    for n_i, n_h, n_o in shapes:
        t0 = time.perf_counter()
        if flow_needed:
            e = errors(n_i, n_h, n_o, args.seeds, args.multiplier, args.ratio)
        else:
            widths = [n_i, n_h, n_o]
            sig = sd.preset_sigmas("xavier", widths, args.multiplier, args.ratio)
            ws = sd.gaussian_init(widths, sig, list(range(args.seeds)))
            e = {"off": sd.imbalance_summary(ws).off_balance[:, 0]}
            e["admissible"] = sd.balanced_prediction(*ws).admissible
        e["width"] = (n_i, n_h, n_o)[key]
        rows.append(e)
        cols = "  ".join(
            f"{k}={np.nanmean(e[k]):.3g}" for k in ("off", "traj", "dS", "dT", "S_sim") if k in e
        )
        print(
            f"{name:6s} {n_i}-{n_h}-{n_o}: admissible {np.mean(e['admissible']):.2f}  {cols}  "
            f"({time.perf_counter() - t0:.1f} s)",
            flush=True,
        )
    return rows


def fits_of(name: str, rows: list[dict], n_seeds: int) -> dict:
    fits = {}
    x = np.concatenate([np.full(n_seeds, r["width"], dtype=float) for r in rows])
    for k in ("off", "traj", "dS", "dT"):
        if k in rows[0]:
            fits[k] = fit(x, np.concatenate([r[k] for r in rows]))
            print(f"    {name}: {k} ∝ width^({fits[k][0]:+.2f} ± {fits[k][1]:.2f})")
    return fits


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=32)
    ap.add_argument("--multiplier", type=float, default=1.0)
    ap.add_argument("--ratio", type=float, default=2.0)
    ap.add_argument("--hidden", type=int, default=2, help="N_h of the outer sweep")
    ap.add_argument("--io", type=int, default=32, help="N_i = N_o of the hidden sweep")
    ap.add_argument("--max-outer", type=int, default=512)
    args = ap.parse_args()
    outer = [n for n in (4, 8, 16, 32, 64, 128, 256, 512, 1024) if n <= args.max_outer]
    result = {"args": vars(args), "t": T.tolist()}
    rows = sweep("outer", [(n, args.hidden, n) for n in outer], 0, args)
    result["outer"] = {
        "widths": outer,
        "fits": fits_of("outer", rows, args.seeds),
        "fits_from_32": fits_of("outer n>=32", [r for r in rows if r["width"] >= 32], args.seeds),
    }
    hidden = [h for h in (2, 4, 8, 16, 32) if h <= args.io]
    rows = sweep("hidden", [(args.io, h, args.io) for h in hidden], 1, args)
    result["hidden"] = {"widths": hidden, "fits": fits_of("hidden", rows, args.seeds)}
    square = [4, 8, 16, 32, 64, 128]
    rows = sweep("square", [(n, n, n) for n in square], 0, args, flow_needed=False)
    result["square"] = {
        "widths": square,
        "off_mean": [float(np.mean(r["off"])) for r in rows],
        "fits": fits_of("square", rows, args.seeds),
    }
    small = [4, 8, 16, 32, 64, 128]
    rows = sweep("4-h-4", [(4, h, 4) for h in small], 1, args, flow_needed=False)
    result["fixed_4_4"] = {
        "widths": small,
        "admissible": [float(np.mean(r["admissible"])) for r in rows],
        "off_mean": [float(np.mean(r["off"])) for r in rows],
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=1, default=lambda o: np.asarray(o).tolist()))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
