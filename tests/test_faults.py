"""Extreme inputs through the shard solver: every `ok` row is right, every other row says why.

A matrix of sweeps at the edges of scale (1e-12 … 1e20 and beyond float64's range), λ
(0, ±1e-12 … ±1e6 and beyond), horizon, depth and learning rate goes through
:func:`lrsweep.solve.solve_points` as the pipeline runs it (theory §7). For every row:

- ``ok``: its final loss and S(0, t_max) agree, within the stated tolerance, with an
  independent reference that represents the point: the Radau integration of the weights
  (`tests/ode_reference.py`) when float64 weights carry λ (ε·w ≤ 1e-10·max(|λ|, s̃)); the
  per-mode scalar ODE of a task-aligned init, solved by quadrature (it carries λ exactly, at
  any scale); the
  converged closed form (§3.4) written out here, for runs that have converged; or plain
  gradient-descent steps for ``gd``. An ``ok`` row that none of them can check fails the test.
- anything else: a non-empty reason (and for the out-of-domain points, the limit).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from ode_reference import gradient_flow_reference
from scipy.integrate import quad
from scipy.optimize import brentq

from lrsweep import grid, solve
from lrsweep.init import lambda_balanced_deep

EPS = np.finfo(float).eps
#: Agreement required of an ok row: exact vs references, and simulators (≤ 1e-7 on QQᵀ).
TOL = {"exact": 1e-8, "flow": 1e-6, "gd": 1e-9}


def sweep(solver: str, grid_: dict, *, t_max: float = 30.0, **extra) -> dict:
    return {
        "solver": solver,
        "time": {"t_max": t_max, "n_points": 41, "spacing": "log"},
        "grid": grid_,
        **extra,
    }


MATRIX = {
    # non-aligned inits where float64 weights carry λ: checked against the weight ODE
    "exact_moderate": sweep(
        "exact",
        {
            "lambda": [0.0, 1e-12, -2.0, 1e3, -1e3],
            "scale": [1e-12, 1e4],
            "n_in": [3, 6],
            "n_out": [3],
            "width": [3],
        },
    ),
    "exact_antifunnel": sweep(
        "exact",
        {"lambda": [0.0, -1e-12, 2.0, -1e3], "scale": [1e-12, 1e4], "n_out": [6], "width": [3],
         "n_in": [3]},
    ),
    "exact_stiff": sweep(
        "exact", {"lambda": [-1e6, 1e6], "scale": [1.0], "n_in": [3], "n_out": [3, 6], "width": [3]}
    ),
    "exact_saddle": sweep(
        "exact", {"lambda": [0.0], "scale": [1.0], "width": [3], "n_in": [3], "n_out": [3],
                  "seed": [0, 1, 2, 3]},
    ),
    # scales where only the exact λ is right: converged closed form
    "exact_huge": sweep(
        "exact",
        {"lambda": [-2.0, 2.0, -1e3, 1e3], "scale": [1e12, 1e20], "n_in": [3], "n_out": [3],
         "width": [3], "seed": [0, 1]},
    ),
    # task-aligned inits at any scale: the per-mode scalar ODE carries λ exactly
    # (t_max = 0.5: mid-way, the smaller modes are still learning)
    "exact_aligned": sweep(
        "exact",
        {"lambda": [0.0, -2.0, 2.0, 1e3], "scale": [1e-12, 1.0, 1e12, 1e20, 1e50], "width": [4]},
        init={"aligned": True},
        t_max=0.5,
    ),
    # beyond float64's range: failed with the limit
    "exact_out": sweep(
        "exact", {"lambda": [0.0, -1e-300, 1e120], "scale": [1e-300, 1e150], "width": [4]}
    ),
    # W = 0 is a fixed point: nothing is learnt and the initial NTK is zero
    "exact_zero": sweep("exact", {"lambda": [0.0], "scale": [0.0]}),
    "exact_tiny_task": sweep(
        "exact", {"lambda": [0.0], "scale": [0.1]}, task={"kind": "random", "target_scale": 1e-150}
    ),
    # horizons: nothing learnt yet, and very long
    "exact_short": sweep("exact", {"lambda": [0.0, 1.0], "scale": [0.01]}, t_max=1e-3),
    "exact_long": sweep("exact", {"lambda": [0.0, -1.0, 1.0], "scale": [0.01]}, t_max=1e3),
    # simulators: depth 2 and 3, scales up to where the weights no longer resolve λ
    "flow": sweep(
        "flow",
        {
            "lambda": [0.0, 1.0, -30.0],
            "scale": [1e-6, 1.0, 1e12],
            "depth": [2, 3],
            "width": [3],
            "n_in": [3],
            "n_out": [3],
        },
        t_max=20.0,
    ),
    "flow_tiny_deep": sweep(
        "flow", {"lambda": [0.0], "scale": [1e-12], "depth": [3], "width": [3], "n_in": [3],
                 "n_out": [3]}, t_max=20.0,
    ),
    "gd": {
        "solver": "gd",
        "lr": 0.01,
        "time": {"t_max": 4.0, "n_points": 5},
        "grid": {"lambda": [0.0, 1.0], "scale": [0.1], "depth": [2, 3], "width": [3],
                 "n_in": [3], "n_out": [3]},
    },
    "gd_diverging": {
        "solver": "gd",
        "lr": 5.0,
        "time": {"t_max": 100.0, "n_points": 5},
        "grid": {"lambda": [0.0, 1.0], "scale": [1.0], "width": [3], "n_in": [3], "n_out": [3]},
    },
}


@pytest.fixture(scope="module")
def solved() -> dict[str, tuple[grid.SweepPlan, pd.DataFrame]]:
    plans = grid.plan({"sweeps": MATRIX})
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for name, p in plans.items():
            frames = [solve.solve_points(p.shard_spec(s))[0].to_pandas() for s in p.shards]
            out[name] = (p, pd.concat(frames, ignore_index=True))
    return out


# ------------------------------------------------------------------------- references


def weights_of(p: grid.SweepPlan, row: pd.Series) -> list[np.ndarray]:
    """The init of a row, drawn as the shard draws it (same seed sequence)."""
    shape = (int(row.n_in), int(row.n_out), int(row.width), int(row.depth))
    seq = grid.point_seed(p.settings["seed"], int(row.seed), *shape)
    widths = [shape[0], *[shape[2]] * (shape[3] - 1), shape[1]]
    spec = p.shard_spec(row.shard)
    aligned = spec.task.build(shape[0], shape[1]) if p.settings["init"]["aligned"] else None
    return lambda_balanced_deep(
        row["lambda"], widths, row.scale, seed=np.random.default_rng(seq), aligned=aligned
    )


def ntk(ws: list[np.ndarray]) -> np.ndarray:
    """Explicit NTK K = Σ_l (A_lA_lᵀ) ⊗ (B_lᵀB_l) on whitened inputs (theory §4)."""
    n_in, n_out = ws[0].shape[1], ws[-1].shape[0]
    K = np.zeros((n_out * n_in, n_out * n_in))
    for layer in range(len(ws)):
        A, B = np.eye(n_out), np.eye(n_in)
        for w in ws[layer + 1 :][::-1]:
            A = A @ w
        for w in ws[:layer]:
            B = w @ B
        K += np.kron(A @ A.T, B.T @ B)
    return K


def kernel_distance(K0: np.ndarray, K1: np.ndarray) -> float:
    """S = 1 − cos(K0, K1) as ½‖K1/‖K1‖ − K0/‖K0‖‖²; NaN if a kernel is zero."""
    n0, n1 = np.linalg.norm(K0), np.linalg.norm(K1)
    if n0 == 0 or n1 == 0:
        return float("nan")
    return float(0.5 * np.linalg.norm(K1 / n1 - K0 / n0) ** 2)


def end_to_end(ws: list[np.ndarray]) -> np.ndarray:
    W = ws[0]
    for w in ws[1:]:
        W = w @ W
    return W


def represents_lambda(ws: list[np.ndarray], lam: float, sigma: np.ndarray) -> bool:
    """Float64 weights carry λ to ≈ ε·(‖W_l‖² + ‖W_{l+1}‖²); the dynamics respond on the
    scale max(|λ|, s̃_max)."""
    w = max(np.sum(a**2) + np.sum(b**2) for a, b in zip(ws[:-1], ws[1:], strict=False))
    return EPS * w <= 1e-10 * max(abs(lam), np.linalg.norm(sigma, 2))


def from_weight_ode(ws, sigma, t_max):
    """(final loss, S(0, t_max)) of the Radau integration of the weights."""
    t = np.array([0.0, t_max])
    wt = [w[-1] for w in gradient_flow_reference(ws, sigma, t, rtol=1e-10)]
    return 0.5 * np.sum((end_to_end(wt) - sigma) ** 2), kernel_distance(ntk(ws), ntk(wt))


def aligned_mode(a0: float, s: float, lam: float, t: float) -> float:
    """a(t) of τ da/dt = √(λ²+4a²)(s̃ − a) from a0 > s̃ (§3.5), by quadrature: with
    a = s̃ + eˣ, dt = −dx/√(λ²+4a²), so t = ∫ from x_t to x_0 of dx/√(λ²+4(s̃ + eˣ)²).
    The integrand is smooth and ≤ 1/√(λ²+4s̃²), whatever the scale of a0."""
    x0 = np.log(a0 - s)

    def elapsed(x: float) -> float:
        return quad(lambda u: 1 / np.hypot(lam, 2 * (s + np.exp(u))), x, x0, limit=400,
                    epsabs=1e-14, epsrel=1e-13)[0]

    lo = x0 - np.hypot(lam, 2 * s) * t - 1
    while elapsed(lo) < t:
        lo -= np.hypot(lam, 2 * s) * t + 1
    return s + np.exp(brentq(lambda x: elapsed(x) - t, lo, x0, xtol=1e-14, rtol=1e-14))


def from_aligned_odes(ws, sigma, lam, t_max):
    """(final loss, S(0, t_max)) of a task-aligned init from its modes (:func:`aligned_mode`)
    and the balanced layer factors they determine."""
    U, s, Vt = np.linalg.svd(sigma)
    a0 = np.diag(U.T @ end_to_end(ws) @ Vt.T)
    a_end = np.array([aligned_mode(a, st, lam, t_max) for a, st in zip(a0, s, strict=True)])

    def factors(a):  # W1 = diag(s1) Vᵀ, W2 = U diag(s2) with s2² − s1² = λ, s1 s2 = a
        big = np.hypot(lam, 2 * a) / 2 + abs(lam) / 2
        small = a * (a / big)
        s1, s2 = (np.sqrt(small), np.sqrt(big)) if lam >= 0 else (np.sqrt(big), np.sqrt(small))
        return [np.diag(s1) @ Vt, U @ np.diag(s2)]

    loss = 0.5 * np.sum((a_end - s) ** 2)
    return loss, kernel_distance(ntk(factors(a0)), ntk(factors(a_end)))


def from_converged_state(ws, sigma, lam):
    """S(0, ∞) from the converged state of §3.4, written out: W2W1 = Σyx,
    W1ᵀW1 = Ṽ diag(s1²)Ṽᵀ, W2W2ᵀ = Ũ diag(s2²)Ũᵀ with s2² − s1² = λ, s1 s2 = s̃."""
    U, s, Vt = np.linalg.svd(sigma, full_matrices=False)
    big = np.hypot(lam, 2 * s) / 2 + abs(lam) / 2
    small = s * (s / big)
    s1sq, s2sq = (small, big) if lam >= 0 else (big, small)
    C = Vt.T @ np.diag(s1sq) @ Vt  # W1ᵀW1
    O = U @ np.diag(s2sq) @ U.T  # W2W2ᵀ
    n_in, n_out = sigma.shape[1], sigma.shape[0]
    K_inf = np.kron(np.eye(n_out), C) + np.kron(O, np.eye(n_in))
    return kernel_distance(ntk(ws), K_inf)


def from_descent(ws, sigma, lr, t_max):
    """(final loss, S) after round(t_max/lr) plain gradient-descent steps."""
    ws = [w.copy() for w in ws]
    w0 = [w.copy() for w in ws]
    for _ in range(round(t_max / lr)):
        E = sigma - end_to_end(ws)
        grads = []
        for layer in range(len(ws)):
            A = np.eye(sigma.shape[0])
            for w in ws[layer + 1 :][::-1]:
                A = A @ w
            B = np.eye(sigma.shape[1])
            for w in ws[:layer]:
                B = w @ B
            grads.append(A.T @ E @ B.T)
        ws = [w + lr * g for w, g in zip(ws, grads, strict=True)]
    return 0.5 * np.sum((end_to_end(ws) - sigma) ** 2), kernel_distance(ntk(w0), ntk(ws))


def reference(p: grid.SweepPlan, row: pd.Series) -> tuple[str, float, float] | None:
    """(which reference, final loss, S(0, t_max)) for an ok row, or None if none applies."""
    ws = weights_of(p, row)
    spec = p.shard_spec(row.shard)
    sigma = spec.task.build(int(row.n_in), int(row.n_out)).sigma_yx
    t_max, lam = spec.time.t_max, float(row["lambda"])
    if spec.solver == "gd":
        return ("gradient descent", *from_descent(ws, sigma, spec.lr, t_max))
    if represents_lambda(ws, lam, sigma):
        return ("weight ODE", *from_weight_ode(ws, sigma, t_max))
    if spec.init.aligned:
        return ("aligned ODEs", *from_aligned_odes(ws, sigma, lam, t_max))
    # square nets only: with N_o ≠ N_i the large layer's extra directions relax at the slower
    # rate S_λ − |λ|/2 (§3.4), long after the loss has converged
    square = int(row.n_in) == int(row.width) == int(row.n_out)
    if row.final_loss <= 1e-20 * row.initial_loss and square and int(row.depth) == 2:
        return ("converged state", 0.0, from_converged_state(ws, sigma, lam))
    return None


# ------------------------------------------------------------------------------ tests


def test_every_row_is_right_or_says_why(solved):
    checked = {}
    for name, (p, df) in solved.items():
        for _, row in df.iterrows():
            where = f"{name}: {row.solver} λ={row['lambda']:g} scale={row.scale:g} " \
                    f"{row.n_in}-{row.width}-{row.n_out} L={row.depth} seed={row.seed}"
            if row.status != "ok":
                assert row.reason, f"{where}: status {row.status} without a reason"
                continue
            ref = reference(p, row)
            assert ref is not None, f"{where}: an ok row that no reference can check"
            kind, loss, S = ref
            tol = TOL[row.solver]
            if np.isnan(S):  # zero initial kernel: S is undefined for both
                assert np.isnan(row.kernel_distance), f"{where}: S should be undefined"
            else:
                assert abs(row.kernel_distance - S) <= tol * (1 + S), (
                    f"{where}: S(0, t_max) = {row.kernel_distance:.10g}, {kind} gives {S:.10g}"
                )
            if kind != "converged state":
                assert abs(row.final_loss - loss) <= tol * row.initial_loss + 1e-12, (
                    f"{where}: final loss {row.final_loss:.6g}, {kind} gives {loss:.6g}"
                )
            checked[kind] = checked.get(kind, 0) + 1
    # every kind of reference was exercised
    assert set(checked) == {"weight ODE", "aligned ODEs", "converged state", "gradient descent"}


def test_exact_solution_is_scale_free_with_the_exact_lambda(solved):
    _, df = solved["exact_huge"]
    _, mod = solved["exact_moderate"]
    # converged S(0, ∞) of an isotropic square init depends on λ and the task only (§6), so
    # a 3-3-3 net at scale 1e12 and 1e20 must give what it gives at 1e4
    for lam in (-2.0,):
        huge = df[(df["lambda"] == lam) & (df.seed == 0)]
        small = mod[(mod["lambda"] == lam) & (mod.n_in == 3) & (mod.scale == 1e4)]
        assert (huge.status == "ok").all() and len(huge) == 2
        np.testing.assert_allclose(huge.kernel_distance, small.kernel_distance.iloc[0], rtol=1e-7)


def test_out_of_range_points_fail_with_the_limit(solved):
    _, df = solved["exact_out"]
    assert (df.status == "failed").all()
    # a huge scale or a huge λ (which makes one layer ~√λ) overflows; a tiny scale underflows
    big = df[(df.scale == 1e150) | (df["lambda"] == 1e120)].reason
    limit = r"outside the solvers' float64 domain: weight scale .* is above 1e\+100"
    assert big.str.contains(limit).all()
    tiny = df[(df.scale == 1e-300) & (df["lambda"] != 1e120)].reason
    assert tiny.str.contains("is below 1e-200").all()
    _, task = solved["exact_tiny_task"]
    assert task.reason.str.contains("task's largest singular value .* is below 1e-100").all()


def test_simulators_refuse_scales_whose_weights_lose_lambda(solved):
    _, df = solved["flow"]
    lost = df[df.scale == 1e12]
    assert (lost.status == "failed").all()
    # depth 2: λ is lost in the weights' round-off; depth 3 (s² ~ 1e8 per layer) is also
    # too stiff for float64 (NTK ~ 1e16): the integrator fails with a reason
    assert lost[lost.depth == 2].reason.str.contains("lambda is not resolved by float64").all()
    assert lost[lost.depth == 3].reason.str.len().gt(0).all()
    assert (df[df.scale <= 1.0].status == "ok").all()


def test_runs_that_did_not_learn_are_stalled_not_lazy(solved):
    from lrsweep.metrics import regime

    def labels(df):
        return regime(df.kernel_distance, fit_fraction=df.fit_fraction)

    _, deep = solved["flow_tiny_deep"]  # depth 3 from 1e-12: the loss never moves
    assert (deep.status == "ok").all()
    np.testing.assert_allclose(deep.final_loss, deep.initial_loss, rtol=1e-9)
    assert (labels(deep) == "stalled").all()
    _, short = solved["exact_short"]  # t_max = 1e-3: nothing learnt yet
    assert (labels(short) == "stalled").all()
    _, zero = solved["exact_zero"]  # W = 0 stays 0: stalled, not "undefined"
    assert (zero.status == "ok").all() and (labels(zero) == "stalled").all()
    _, seeds = solved["exact_saddle"]  # λ = 0 saddle seeds never leave the saddle
    saddle = seeds[seeds.final_loss > 1e-3]  # stuck at ½ s̃_min² with ~98 % of the decrease
    assert 0 < len(saddle) < len(seeds) and (labels(saddle) == "stalled").all()
    assert (labels(seeds[seeds.final_loss <= 1e-3]) == "rich").all()


def test_diverging_gradient_descent_fails_every_point(solved):
    _, df = solved["gd_diverging"]
    assert (df.status == "failed").all()
    assert df.reason.str.contains("gradient descent diverged").all()


def test_the_closed_form_losing_digits_is_caught_by_its_residual():
    """An anti-funnel at λ = 1e6 over t = 1e3 is off by 1e-8 against the ODE (theory §7):
    its Riccati residual exceeds the tolerance and the row is failed, not ok."""
    cfg = sweep("exact", {"lambda": [1e6], "scale": [1.0], "n_in": [4], "n_out": [8],
                          "width": [4]}, t_max=1e3, task={"kind": "random", "seed": 1})
    p = grid.plan({"sweeps": {"s": cfg}})["s"]
    df = solve.solve_points(p.shard_spec(p.shards[0]))[0].to_pandas()
    (row,) = df.itertuples()
    assert row.status == "failed"
    assert "diagnostic `riccati_residual`" in row.reason
    assert "above its tolerance 1e-06" in row.reason
