"""Every formula and claim of docs/theory.md, checked numerically against an independent reference.

References: the Radau integration of gradient flow on the weights (tests/ode_reference.py, the
ground truth); a DOP853 integrator of the same definition written here (``_flow``, also with
per-layer learning rates for theory §6.1) and checked against the Radau reference; central
finite differences; explicit Jacobians JJᵀ; Decimal arithmetic with enough digits to hold
e^{2μt}; Monte Carlo with tolerances derived from the sample. Formulas are evaluated literally in
numpy here; expected values never come from the lrsweep function under test (where lrsweep
implements a formula, it is compared with the reference as well).

Map (section → tests here; existing independent tests referenced instead of duplicated):

- §1 whitening, loss decomposition, gradient, t/τ = kη: test_s1_*;
  tests/test_metrics.py::test_loss_matches_sample_sum (lrsweep.metrics.loss vs the sample sum),
  tests/test_simulate.py::test_loss_gradient_matches_finite_differences (loss_gradient).
- §2 conservation, admissibility, safe s1/s2, construction, deep chains: test_s2_*;
  tests/test_tasks_init.py::test_lambda_balanced_is_exact,
  tests/test_init_deep.py::test_admissibility_rule_is_exactly_the_constructible_set,
  tests/test_init_deep.py::test_lambda_balanced_deep_balances_every_pair,
  tests/test_simulate.py::test_deep_flow_conserves_imbalance_of_unbalanced_inits_with_general_inputs.
- §3 Riccati equation: test_s3_*. §3.1 eigenpairs, B/C/D blocks: test_s31_*.
- §3.2 closed form, limits, long times, singular B: test_s32_*;
  tests/test_exact.py::test_fixed_pivot_fast_path_equals_graded_elimination.
- §3.3 generic form, Q0Q0ᵀ only, literal breakdown, graded elimination: test_s33_*;
  tests/test_exact.py::test_matches_ode_moderate / ::test_matches_ode_extreme_lambda_long_times
  (qqt ≤ 1e-9 vs the ODE for t/τ ≤ 1e3, |λ| ≤ 1e3), ::test_saddle_* (saddles).
- §3.4 converged state, rates, limits, N_h > m: test_s34_*;
  tests/test_exact.py::test_converged_state_is_the_long_time_limit.
- §3.5 aligned modes, closed form, plateau, exponential limit, sigmoid criterion, reversal,
  depth L: test_s35_*; tests/test_exact.py::test_aligned_singular_values_match_scalar_ode,
  tests/test_simulate.py::test_aligned_deep_flow_follows_the_scalar_mode_odes.
- §4 NTK (depth L vs Jacobian): tests/test_metrics.py::test_ntk_matches_jacobian,
  ::test_ntk_index_order_and_two_layer_formula, ::test_kernel_distance_property_random_shapes,
  ::test_lowest_loss_is_the_best_rank_r_approximation, ::test_time_to_fit_exponential_decay;
  NTK from QQᵀ, function-space flow, inner products, S scaling, isotropic inits, transposition
  symmetry, funnel limit and timescale, weight-change caveat, time to fit, bottleneck: test_s4_*.
- §5 figures: test_s5_*; tests/test_simulate.py::test_depth2_gradient_descent_converges_to_flow_
  at_first_order (exact vs GD, O(η)), tests/test_applications.py::test_chain_matches_gradient_
  flow_through_the_sequence, ::test_continual_forgetting_is_the_same_for_every_lambda,
  ::test_reversal_lambda_zero_sits_on_the_saddle.
- §6.1 per-layer rates: test_s61_*. §6.2 Gaussian inits: test_s62_*.
- Citations: test_every_cited_theory_section_exists, test_theory_headings_are_strict.
"""

from __future__ import annotations

import re
from decimal import Decimal, localcontext
from pathlib import Path

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from ode_reference import gradient_flow_reference, rel_err
from scipy.integrate import solve_ivp
from scipy.linalg import expm
from scipy.optimize import brentq

from lrsweep import metrics
from lrsweep.exact import converged, qqt, riccati_eigenbasis
from lrsweep.init import (
    balanced_singular_values,
    deep_balanced_singular_values,
    gaussian_deep,
    imbalance_report,
)
from lrsweep.tasks import semantic_hierarchy, whiten

EPS = np.finfo(float).eps
ROOT = Path(__file__).resolve().parents[1]
THEORY = ROOT / "docs" / "theory.md"


# ======================================================================== helpers


def _haar(n: int, rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return q * np.sign(np.diag(r))


def _task(n_i: int, n_o: int, s, rng: np.random.Generator) -> np.ndarray:
    """Σyx = Ũ diag(s) Ṽᵀ with Haar-random Ũ, Ṽ."""
    m = min(n_i, n_o)
    S = np.zeros((n_o, n_i))
    S[np.arange(m), np.arange(m)] = s
    return _haar(n_o, rng) @ S @ _haar(n_i, rng).T


def _lam(W1: np.ndarray, W2: np.ndarray) -> float:
    return float(np.trace(W2.T @ W2 - W1 @ W1.T) / W1.shape[0])


def _pair(lam: float, a):
    """§2: (s1, s2) with s2² − s1² = λ, s1·s2 = a, from hypot (no squares, no cancellation)."""
    a = np.asarray(a, dtype=float)
    big = np.sqrt(np.hypot(lam / 2, a) + abs(lam) / 2)
    small = np.divide(a, big, out=np.zeros(np.shape(big)), where=big > 0)
    return (small, big) if lam >= 0 else (big, small)


def _balanced(lam, n_i, n_h, n_o, a, rng, *, U=None, V=None, R=None):
    """§2 construction W1 = R S1 Vᵀ, W2 = U S2 Rᵀ; a has r = min(N_i, N_h, N_o) entries."""
    r = min(n_i, n_h, n_o)
    a = np.broadcast_to(np.asarray(a, dtype=float), (r,))
    s1, s2 = np.zeros(n_h), np.zeros(n_h)
    s1[:r], s2[:r] = _pair(lam, a)
    for k in range(r, n_h):
        if n_i <= k < n_o:
            s2[k] = np.sqrt(lam)  # output side only: λ ≥ 0
        elif n_o <= k < n_i:
            s1[k] = np.sqrt(-lam)  # input side only: λ ≤ 0
    S1, S2 = np.zeros((n_h, n_i)), np.zeros((n_o, n_h))
    k1, k2 = min(n_h, n_i), min(n_o, n_h)
    S1[np.arange(k1), np.arange(k1)] = s1[:k1]
    S2[np.arange(k2), np.arange(k2)] = s2[:k2]
    U = _haar(n_o, rng) if U is None else U
    V = _haar(n_i, rng) if V is None else V
    R = _haar(n_h, rng) if R is None else R
    return R @ S1 @ V.T, U @ S2 @ R.T


def _admissible(lam, n_i, n_h, n_o) -> bool:
    return not ((lam > 0 and n_h > n_o) or (lam < 0 and n_h > n_i))


def _velocity(ws, syx, sxx=None, rates=None) -> list[np.ndarray]:
    """η_l·(−∂ℒ/∂W_l) = η_l A_lᵀ (Σyx − WΣxx) B_lᵀ (§1), written out."""
    n_i = ws[0].shape[1]
    sxx = np.eye(n_i) if sxx is None else sxx
    rates = np.ones(len(ws)) if rates is None else rates
    B = [np.eye(n_i)]
    for w in ws:
        B.append(w @ B[-1])
    resid = syx - B[-1] @ sxx
    out: list = [None] * len(ws)
    A = np.eye(ws[-1].shape[0])
    for layer in reversed(range(len(ws))):
        out[layer] = rates[layer] * A.T @ resid @ B[layer].T
        A = A @ ws[layer]
    return out


def _flow(ws, syx, t, *, sxx=None, rates=None, rtol=1e-12) -> list[np.ndarray]:
    """dW_l/dt = η_l A_lᵀ(Σyx − WΣxx)B_lᵀ by DOP853 (non-stiff problems); arrays (n_t, ...)."""
    shapes = [w.shape for w in ws]
    splits = np.cumsum([w.size for w in ws])[:-1]

    def unpack(y):
        return [p.reshape(s) for p, s in zip(np.split(y, splits), shapes, strict=True)]

    def rhs(_t, y):
        return np.concatenate([v.ravel() for v in _velocity(unpack(y), syx, sxx, rates)])

    y0 = np.concatenate([w.ravel() for w in ws])
    atol = rtol * 1e-3 * max(float(np.abs(y0).max()), 1e-300)
    t = np.asarray(t, dtype=float)
    sol = solve_ivp(rhs, (0.0, float(t[-1])), y0, method="DOP853", t_eval=t, rtol=rtol, atol=atol)
    assert sol.success, sol.message
    per_time = [unpack(y) for y in sol.y.T]
    return [np.stack([p[layer] for p in per_time]) for layer in range(len(ws))]


def _gram(w1: np.ndarray, w2: np.ndarray) -> np.ndarray:
    """QQᵀ with Q = [W1ᵀ; W2] (batched over leading axes)."""
    Q = np.concatenate([np.swapaxes(w1, -1, -2), w2], axis=-2)
    return Q @ np.swapaxes(Q, -1, -2)


def _flow_qqt(W1, W2, syx, t, **kw) -> np.ndarray:
    return _gram(*_flow([W1, W2], syx, t, **kw))


def _F(syx: np.ndarray, lam: float) -> np.ndarray:
    n_o, n_i = syx.shape
    return np.block([[-lam / 2 * np.eye(n_i), syx.T], [syx, lam / 2 * np.eye(n_o)]])


def _eigenbasis(syx: np.ndarray, lam: float):
    """§3.1 literally: O (columns +S_λ modes, −S_λ modes, complementary) and μ."""
    n_o, n_i = syx.shape
    m, n = min(n_i, n_o), n_i + n_o
    U, s, Vt = np.linalg.svd(syx)
    V = Vt.T
    S = np.sqrt(s**2 + lam**2 / 4)
    den = np.hypot(lam, 2 * s) + 2 * s
    H = np.divide(lam, den, out=np.zeros(m), where=den > 0)
    G = 1 / np.sqrt(1 + H**2)
    al, be = G * (1 - H) / np.sqrt(2), G * (1 + H) / np.sqrt(2)
    O = np.zeros((n, n))
    O[:n_i, :m], O[n_i:, :m] = V[:, :m] * al, U[:, :m] * be
    O[:n_i, m : 2 * m], O[n_i:, m : 2 * m] = -V[:, :m] * be, U[:, :m] * al
    if n_i > n_o:
        O[:n_i, 2 * m :] = V[:, m:]
    elif n_o > n_i:
        O[n_i:, 2 * m :] = U[:, m:]
    mu = np.concatenate([S, -S, np.full(abs(n_o - n_i), np.sign(n_o - n_i) * lam / 2)])
    return O, mu, (U, s, V, S, H, G)


def _bcd(W1, W2, syx, lam):
    """§3.1 initial-condition matrices B, C (N_h × m) and D."""
    n_o, n_i = syx.shape
    m = min(n_i, n_o)
    _, _, (U, _, V, _, H, G) = _eigenbasis(syx, lam)
    Um, Vm = U[:, :m], V[:, :m]
    B = W2.T @ Um * (G + H * G) + W1 @ Vm * (G - H * G)
    C = W2.T @ Um * (G - H * G) - W1 @ Vm * (G + H * G)
    D = W1 @ V[:, m:] if n_i > n_o else W2.T @ U[:, m:]
    return B, C, D


def _closed_form(W1, W2, syx, t) -> np.ndarray:
    """§3.2 literally: QQᵀ(t) = Z A⁻¹ Zᵀ (N_h = m, B invertible), exponents combined ≤ 0."""
    n_o, n_i = syx.shape
    m = min(n_i, n_o)
    lam = _lam(W1, W2)
    _, _, (U, _, V, S, H, G) = _eigenbasis(syx, lam)
    Um, Vm = U[:, :m], V[:, :m]
    B, C, D = _bcd(W1, W2, syx, lam)
    Binv = np.linalg.inv(B)
    mu = np.sign(n_o - n_i) * lam / 2
    CB, BiBt, BC, BD = C.T @ Binv.T, Binv @ Binv.T, Binv @ C, Binv @ D
    out = []
    for tt in np.atleast_1d(t):
        E = np.exp(-S * tt)
        mid = E[:, None] * CB * E[None, :]
        Z = np.vstack(
            [
                Vm * (G - H * G) - (Vm * (G + H * G)) @ mid,
                Um * (G + H * G) + (Um * (G - H * G)) @ mid,
            ]
        )
        gam = np.where(S > 0, -np.expm1(-2 * S * tt) / np.where(S > 0, S, 1.0), 2 * tt)
        X = E[:, None] * BC
        A = 4 * E[:, None] * BiBt * E[None, :] + np.diag(gam) + (X * gam) @ X.T
        if n_i != n_o:
            grow = np.exp((mu - S) * tt)  # e^{μt}E: exponent ≤ 0
            comp = 2 * (D.T @ Binv.T) * grow[None, :]
            if n_i > n_o:
                Z[:n_i] += V[:, m:] @ comp
            else:
                Z[n_i:] += U[:, m:] @ comp
            if mu > 0:  # E φ_c E = e^{(2μ−S_i−S_j)t}(1 − e^{−2μt})/(2μ)
                Y, phi = grow[:, None] * BD, -np.expm1(-2 * mu * tt) / (2 * mu)
            else:
                Y, phi = E[:, None] * BD, (np.expm1(2 * mu * tt) / (2 * mu) if mu < 0 else tt)
            A += 4 * phi * Y @ Y.T
        out.append(Z @ np.linalg.solve(A, Z.T))
    return np.array(out)


def _generic_literal(W1, W2, syx, t) -> np.ndarray:
    """§3.3 evaluated literally in float64 (expm and one solve)."""
    lam = _lam(W1, W2)
    F = _F(syx, lam)
    O, mu, _ = _eigenbasis(syx, lam)
    Q0 = np.vstack([W1.T, W2])
    out = []
    for tt in np.atleast_1d(t):
        with np.errstate(all="ignore"):
            e = expm(F * tt)
            d = np.where(mu != 0, np.expm1(2 * mu * tt) / np.where(mu != 0, 2 * mu, 1.0), tt)
            K = np.eye(Q0.shape[1]) + Q0.T @ (O * d) @ O.T @ Q0
            try:
                out.append(e @ Q0 @ np.linalg.solve(K, Q0.T @ e))
            except np.linalg.LinAlgError:
                out.append(np.full(F.shape, np.nan))
    return np.array(out)


def _dsolve(A: list, B: list) -> list:
    """Solve A X = B in Decimal (Gaussian elimination, partial pivoting); B: list of rows."""
    n = len(A)
    M = [list(A[i]) + list(B[i]) for i in range(n)]
    for k in range(n):
        p = max(range(k, n), key=lambda i: abs(M[i][k]))
        M[k], M[p] = M[p], M[k]
        for i in range(k + 1, n):
            f = M[i][k] / M[k][k]
            M[i] = [x - f * y for x, y in zip(M[i], M[k], strict=True)]
    X = [None] * n
    for i in reversed(range(n)):
        row = M[i][n:]
        for j in range(i + 1, n):
            row = [x - M[i][j] * y for x, y in zip(row, X[j], strict=True)]
        X[i] = [x / M[i][i] for x in row]
    return X


def _decimal_generic(O: np.ndarray, mu: np.ndarray, Q0: np.ndarray, t: float) -> np.ndarray:
    """§3.3 in the eigenbasis, O·Y K⁻¹ Yᵀ·Oᵀ, in Decimal with digits for e^{2 max|μ| t}."""
    P = O.T @ Q0
    n, h = P.shape
    with localcontext() as ctx:
        ctx.prec = int(2 * np.max(np.abs(mu)) * t / np.log(10)) + 40
        ctx.Emax, ctx.Emin = 10**8, -(10**8)
        Pd = [[Decimal(float(x)) for x in row] for row in P]
        td = Decimal(float(t))
        mud = [Decimal(float(x)) for x in mu]
        e = [(x * td).exp() for x in mud]
        phi = [((2 * x * td).exp() - 1) / (2 * x) if x != 0 else td for x in mud]
        Y = [[e[i] * Pd[i][k] for k in range(h)] for i in range(n)]
        K = [
            [
                Decimal(int(j == k)) + sum(Pd[i][j] * phi[i] * Pd[i][k] for i in range(n))
                for k in range(h)
            ]
            for j in range(h)
        ]
        Z = _dsolve(K, [[Y[i][k] for i in range(n)] for k in range(h)])  # K Z = Yᵀ
        Me = [[sum(Y[i][k] * Z[k][j] for k in range(h)) for j in range(n)] for i in range(n)]
        Od = [[Decimal(float(x)) for x in row] for row in O]
        OM = [[sum(Od[i][k] * Me[k][j] for k in range(n)) for j in range(n)] for i in range(n)]
        M = [[sum(OM[i][k] * Od[j][k] for k in range(n)) for j in range(n)] for i in range(n)]
        return np.array([[float(x) for x in row] for row in M])


def _graded(P: np.ndarray, mu: np.ndarray, t: float, tol: float = 1e-12):
    """§3.3 steps 2–3 as described: returns QQᵀ in the eigenbasis, Λ, R and L."""
    n, h = P.shape
    work = P.copy()
    L, U, c = np.zeros((n, h)), np.zeros((h, h)), np.zeros(h)
    active = np.ones(n, dtype=bool)
    size = np.linalg.norm(P, axis=0)
    mt = mu * t
    for k in range(h):
        col = work[:, k]
        ok = active & (np.abs(col) > tol * size[k])
        if not ok.any():
            U[k, k] = 1.0  # exact zero column: nothing grows along it
            continue
        score = np.where(ok, np.log(np.abs(np.where(ok, col, 1.0))) + mt, -np.inf)
        p = int(np.argmax(score))
        mult = np.where(ok, col / col[p], 0.0)
        U[k, k:] = work[p, k:]
        work[:, k + 1 :] -= np.outer(mult, work[p, k + 1 :])
        L[:, k] = mult
        active[p] = False
        c[k] = max(mt[p], 0.0)
    with np.errstate(over="ignore", invalid="ignore"):
        Lam = np.where(L != 0, L * np.exp(np.minimum(mt[:, None] - c[None, :], 700)), 0.0)
        R = np.where(L != 0, L * np.exp(np.minimum(np.maximum(mt, 0)[:, None] - c, 700)), 0.0)
    amu = np.abs(mu)
    phi = np.where(amu > 0, -np.expm1(-2 * amu * t) / np.where(amu > 0, 2 * amu, 1.0), t)
    T = np.linalg.solve(U, np.diag(np.exp(-c)))  # U⁻¹ e^{−c}
    K = T.T @ T + R.T @ (phi[:, None] * R)
    return Lam @ np.linalg.solve(K, Lam.T), Lam, R, L


def _converged_literal(syx: np.ndarray, lam: float) -> np.ndarray:
    """§3.4: W2W1 = Σyx, W1ᵀW1 = Ṽ diag(s1²) Ṽᵀ, W2W2ᵀ = Ũ diag(s2²) Ũᵀ (thin bases)."""
    n_o, n_i = syx.shape
    U, s, Vt = np.linalg.svd(syx, full_matrices=False)
    s1, s2 = _pair(lam, s)
    M = np.zeros((n_i + n_o, n_i + n_o))
    M[:n_i, :n_i] = (Vt.T * s1**2) @ Vt
    M[n_i:, n_i:] = (U * s2**2) @ U.T
    M[n_i:, :n_i], M[:n_i, n_i:] = syx, syx.T
    return M


def _aligned(a0: float, s: float, lam: float, t) -> np.ndarray:
    """§3.5 closed form (λ ≠ 0: y-substitution; λ = 0: logistic, a0 > 0)."""
    t = np.asarray(t, dtype=float)
    lam = abs(lam)
    if lam == 0:
        return s / (1 + (s / a0 - 1) * np.exp(-2 * s * t))
    K = np.sqrt(lam**2 + 4 * s**2)
    yp, ym = 2 * s / (K + lam), -(lam + K) / (2 * s)  # yp = (−|λ| + K)/(2s̃) without cancellation
    y0 = 2 * a0 / (lam + np.sqrt(lam**2 + 4 * a0**2))
    c = (y0 - yp) / (y0 - ym)
    e = np.exp(-K * t)
    y = (yp - c * ym * e) / (1 - c * e)
    return lam * y / (1 - y**2)


def _level_time(a0: float, a_star: float, s: float, lam: float) -> float:
    """§3.5: t_* = (τ/K) ln(c(y0)/c(y_*)), c(y) = (y − y₊)/(y − y₋)."""
    lam = abs(lam)
    K = np.sqrt(lam**2 + 4 * s**2)
    yp, ym = 2 * s / (K + lam), -(lam + K) / (2 * s)

    def y(a):
        return 2 * a / (lam + np.sqrt(lam**2 + 4 * a**2))

    def c(v):
        return (v - yp) / (v - ym)

    return float(np.log(c(y(a0)) / c(y(a_star))) / K)


def _scalar_ode(a0, s, lam, t, **events):
    """τ da/dt = √(λ² + 4a²)(s̃ − a), integrated by DOP853."""
    sol = solve_ivp(
        lambda _t, a: np.hypot(lam, 2 * a) * (s - a),
        (0.0, float(np.max(t))),
        [a0],
        method="DOP853",
        t_eval=np.asarray(t, dtype=float),
        rtol=1e-12,
        atol=1e-14 * max(1.0, s, abs(a0)),
        **events,
    )
    assert sol.success
    return sol


def _jacobian(ws, X) -> np.ndarray:
    """J[(a,n), θ] = ∂ŷ_{an}/∂θ by central differences (exact: ŷ is affine in each entry)."""
    cols = []
    for layer, w in enumerate(ws):
        for idx in np.ndindex(w.shape):
            plus = [x.copy() for x in ws]
            minus = [x.copy() for x in ws]
            plus[layer][idx] += 1.0
            minus[layer][idx] -= 1.0
            y_p = metrics.end_to_end(plus) @ X
            y_m = metrics.end_to_end(minus) @ X
            cols.append(((y_p - y_m) / 2).ravel())  # row-major: index a·P + n
    return np.stack(cols, axis=1)


def _whitened_inputs(n_i: int, P: int, rng) -> np.ndarray:
    Q, _ = np.linalg.qr(rng.standard_normal((P, n_i)))
    return np.sqrt(P) * Q.T


def _s_whitened(A0, B0, A1, B1) -> float:
    """Kernel distance from §4's whitened per-sample inner product (A = W1ᵀW1, B = W2W2ᵀ)."""
    n_i, n_o = A0.shape[0], B0.shape[0]

    def inner(A, B, C, D):
        return (
            n_o * np.sum(A * C)
            + np.trace(D) * np.trace(A)
            + np.trace(B) * np.trace(C)
            + (n_i * np.sum(B * D))
        )

    return 1 - inner(A0, B0, A1, B1) / np.sqrt(inner(A0, B0, A0, B0) * inner(A1, B1, A1, B1))


def _excess(W, syx) -> np.ndarray:
    return 0.5 * np.sum((W - syx) ** 2, axis=(-2, -1))


# ======================================================================== §1 setup


@given(n_i=st.integers(1, 6), extra=st.integers(0, 5), seed=st.integers(0, 2**20))
def test_s1_whitened_inputs(n_i, extra, seed):
    rng = np.random.default_rng(seed)
    P = n_i + extra
    X = _whitened_inputs(n_i, P, rng)  # X = √P·Qᵀ, QᵀQ = I
    np.testing.assert_allclose(X @ X.T / P, np.eye(n_i), atol=1e-13)
    X = rng.standard_normal((n_i, P)) + 0.3
    assume(np.linalg.cond(X) < 1e6)
    Xw = whiten(X)  # Σxx^{-1/2} X (lrsweep.tasks.whiten); round-off grows like cond(X)²
    np.testing.assert_allclose(Xw @ Xw.T / P, np.eye(n_i), atol=100 * EPS * np.linalg.cond(X) ** 2)


@given(
    n_i=st.integers(1, 5),
    n_o=st.integers(1, 4),
    P=st.integers(1, 8),
    whitened=st.booleans(),
    seed=st.integers(0, 2**20),
)
def test_s1_loss_decomposition(n_i, n_o, P, whitened, seed):
    rng = np.random.default_rng(seed)
    assume(not whitened or P >= n_i)
    X = _whitened_inputs(n_i, P, rng) if whitened else rng.standard_normal((n_i, P))
    Y, W = rng.standard_normal((n_o, P)), rng.standard_normal((n_o, n_i))
    sample = np.sum((Y - W @ X) ** 2) / (2 * P)
    sxx, syx, syy = X @ X.T / P, Y @ X.T / P, Y @ Y.T / P
    w_star = syx @ np.linalg.pinv(sxx)
    np.testing.assert_allclose(w_star @ sxx, syx, atol=1e-9 * (1 + np.abs(syx).max()))
    E = W - w_star
    irreducible = 0.5 * (np.trace(syy) - np.trace(syx @ np.linalg.pinv(sxx) @ syx.T))
    np.testing.assert_allclose(irreducible + 0.5 * np.trace(E @ sxx @ E.T), sample, rtol=1e-9)
    if whitened:
        lit = _excess(W, syx) + 0.5 * (np.trace(syy) - np.sum(syx**2))
        np.testing.assert_allclose(lit, sample, rtol=1e-10)
    np.testing.assert_allclose(metrics.loss(W, syx, sxx, syy), sample, rtol=1e-9, atol=1e-12)


@given(
    widths=st.lists(st.integers(1, 4), min_size=2, max_size=5),
    P=st.integers(1, 5),
    seed=st.integers(0, 2**20),
)
def test_s1_gradient_matches_finite_differences(widths, P, seed):
    rng = np.random.default_rng(seed)
    ws = [rng.standard_normal((b, a)) for a, b in zip(widths[:-1], widths[1:], strict=True)]
    X, Y = rng.standard_normal((widths[0], P)), rng.standard_normal((widths[-1], P))
    vel = _velocity(ws, Y @ X.T / P, X @ X.T / P)  # −∂ℒ/∂W_l = A_lᵀ R B_lᵀ

    def sample_loss(w):
        return np.sum((Y - metrics.end_to_end(w) @ X) ** 2) / (2 * P)

    h = 1e-4
    for layer, w in enumerate(ws):
        fd = np.zeros_like(w)
        for idx in np.ndindex(w.shape):
            up, dn = [x.copy() for x in ws], [x.copy() for x in ws]
            up[layer][idx] += h
            dn[layer][idx] -= h
            fd[idx] = (sample_loss(up) - sample_loss(dn)) / (2 * h)  # exact for a quadratic
        np.testing.assert_allclose(-vel[layer], fd, atol=1e-6 * (1 + np.abs(fd).max()))


def test_s1_gradient_descent_step_k_is_time_k_eta():
    rng = np.random.default_rng(1)
    syx = _task(3, 2, [2.0, 0.7], rng)
    ws = [0.3 * rng.standard_normal((3, 3)), 0.3 * rng.standard_normal((2, 3))]
    tau, T = 2.0, 3.0  # compare at t = kητ with t/τ = T
    ref = _flow([w.copy() for w in ws], syx, np.array([0.0, T * tau]), rates=[1 / tau] * 2)
    errs = []
    for eta in (0.02, 0.01, 0.005):
        w = [x.copy() for x in ws]
        for _ in range(round(T / eta)):
            v = _velocity(w, syx)
            w = [x + eta * dx for x, dx in zip(w, v, strict=True)]
        errs.append(max(np.abs(a - r[-1]).max() for a, r in zip(w, ref, strict=True)))
    ratios = np.array(errs[:-1]) / np.array(errs[1:])
    np.testing.assert_allclose(ratios, 2.0, rtol=0.05)  # O(η): Euler with Δt = ητ


# ======================================================================== §2 λ-balance


@given(
    widths=st.lists(st.integers(1, 4), min_size=3, max_size=5),
    P=st.integers(1, 5),
    seed=st.integers(0, 2**20),
)
def test_s2_imbalances_are_conserved(widths, P, seed):
    rng = np.random.default_rng(seed)
    ws = [rng.standard_normal((b, a)) for a, b in zip(widths[:-1], widths[1:], strict=True)]
    X, Y = rng.standard_normal((widths[0], P)), rng.standard_normal((widths[-1], P))
    vel = _velocity(ws, Y @ X.T / P, X @ X.T / P)  # any Σxx
    for layer in range(len(ws) - 1):
        w, dw, w2, dw2 = ws[layer], vel[layer], ws[layer + 1], vel[layer + 1]
        X1 = w2.T @ dw2
        np.testing.assert_allclose(X1, dw @ w.T, atol=1e-10 * (1 + np.abs(X1).max()))
        dD = X1 + X1.T - dw @ w.T - w @ dw.T
        np.testing.assert_allclose(dD, 0.0, atol=1e-10 * (1 + np.abs(X1).max()))


def test_s2_conservation_along_the_reference_flow_and_flow_helper():
    # the Radau ground truth: D_l conserved (general Σxx, unbalanced depth 3); _flow agrees
    rng = np.random.default_rng(2)
    ws = [0.6 * rng.standard_normal(s) for s in [(3, 2), (2, 3), (2, 2)]]
    X, Y = rng.standard_normal((2, 5)), rng.standard_normal((2, 5))
    syx, sxx = Y @ X.T / 5, X @ X.T / 5
    t = np.array([0.0, 1.0, 3.0])
    ref = gradient_flow_reference(ws, syx, t, sigma_xx=sxx, rtol=1e-10)
    for layer in range(2):
        d = np.swapaxes(ref[layer + 1], 1, 2) @ ref[layer + 1]
        d = d - ref[layer] @ np.swapaxes(ref[layer], 1, 2)
        np.testing.assert_allclose(d, np.broadcast_to(d[0], d.shape), atol=1e-8)
    mine = _flow(ws, syx, t, sxx=sxx)
    for a, b in zip(mine, ref, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-8)


@given(
    n_i=st.integers(1, 5),
    n_h=st.integers(1, 6),
    n_o=st.integers(1, 5),
    seed=st.integers(0, 2**20),
)
def test_s2_admissibility_from_inertia(n_i, n_h, n_o, seed):
    rng = np.random.default_rng(seed)
    W1, W2 = rng.standard_normal((n_h, n_i)), rng.standard_normal((n_o, n_h))
    ev = np.linalg.eigvalsh(W2.T @ W2 - W1 @ W1.T)
    tol = 1e-10 * (1 + np.abs(ev).max())
    assert np.sum(ev > tol) <= n_o  # so λI with λ > 0 needs N_h ≤ N_o
    assert np.sum(ev < -tol) <= n_i  # and λ < 0 needs N_h ≤ N_i


def _decimal_pair(lam: float, a: float) -> tuple[float, float]:
    with localcontext() as ctx:
        ctx.prec = 1400  # the literal (cancelling) form needs (a/λ)² ≥ 1e-1200 to resolve
        lam_d, a_d = Decimal(lam), Decimal(a)
        root = (lam_d * lam_d + 4 * a_d * a_d).sqrt()
        big, small = ((root + abs(lam_d)) / 2).sqrt(), ((root - abs(lam_d)) / 2).sqrt()
        return (float(small), float(big)) if lam >= 0 else (float(big), float(small))


_MAG = st.one_of(st.just(0.0), st.floats(-300, 300).map(lambda e: 10.0**e))


@given(lam=_MAG, sign=st.sampled_from([-1.0, 1.0]), a=_MAG)
def test_s2_safe_singular_values_over_the_float_range(lam, sign, a):
    lam = sign * lam
    ref = _decimal_pair(lam, a)
    got = _pair(lam, a)
    for g, r in zip(got, ref, strict=True):
        if r < 1e-290:  # the true value itself underflows
            assert g < 1e-290
        else:
            assert abs(g - r) <= 8 * EPS * r, (lam, a, got, ref)
    # lrsweep.init.balanced_singular_values inside its documented range: λ², a² and
    # s_small² = a²/s_big² all normal floats
    if all(x == 0 or 1e-150 <= x <= 1e150 for x in (abs(lam), a)) and min(ref) ** 2 >= 1e-300:
        impl = balanced_singular_values(lam, np.array([a]))
        for g, r in zip(impl, ref, strict=True):
            assert abs(float(g[0]) - r) <= 8 * EPS * r + 1e-300


@given(
    lam=st.one_of(st.just(0.0), st.floats(-20, 20)),
    n_i=st.integers(1, 5),
    n_h=st.integers(1, 6),
    n_o=st.integers(1, 5),
    a=st.lists(st.floats(0, 5), min_size=5, max_size=5),
    seed=st.integers(0, 2**20),
)
def test_s2_construction_is_exactly_balanced(lam, n_i, n_h, n_o, a, seed):
    assume(_admissible(lam, n_i, n_h, n_o))
    r = min(n_i, n_h, n_o)
    W1, W2 = _balanced(lam, n_i, n_h, n_o, a[:r], np.random.default_rng(seed))
    scale = 1 + abs(lam) + max(a)
    np.testing.assert_allclose(W2.T @ W2 - W1 @ W1.T, lam * np.eye(n_h), atol=1e-12 * scale)
    sv = np.linalg.svd(W2 @ W1, compute_uv=False)
    np.testing.assert_allclose(np.sort(sv)[::-1][:r], np.sort(a[:r])[::-1], atol=1e-10 * scale)
    assert np.all(np.sort(sv)[::-1][r:] <= 1e-10 * scale)


@given(
    lam=st.one_of(st.just(0.0), st.floats(-5, 5)),
    a=st.one_of(st.just(0.0), st.floats(1e-6, 10)),
    depth=st.integers(2, 5),
)
def test_s2_deep_chain_squares_and_product(lam, a, depth):
    mag = abs(lam)
    if a > 0:  # u: unique root of g(u) = ∏_{j<L} (u + j|λ|) = a² on [0, a^{2/L}]
        u = brentq(
            lambda x: np.prod(x + np.arange(depth) * mag) - a**2,
            0.0,
            2 * a ** (2 / depth),
            xtol=1e-300,
            rtol=4 * EPS,
        )
    else:
        u = 0.0
    sq = u + np.arange(depth) * mag  # increasing towards the output for λ ≥ 0
    if lam < 0:
        sq = sq[::-1]
    s = np.sqrt(sq)
    np.testing.assert_allclose(np.diff(sq), lam, atol=1e-12 * (1 + sq.max()))
    assert np.prod(s) == pytest.approx(a, rel=1e-12, abs=1e-300)
    impl = deep_balanced_singular_values(lam, np.array([a]), depth)[:, 0]
    np.testing.assert_allclose(impl, s, rtol=1e-10, atol=1e-14)
    # the chain W_l = R_l S_l R_{l−1}ᵀ with these values is λ-balanced, product U diag(a) Vᵀ
    rng = np.random.default_rng(depth)
    Rs = [_haar(2, rng) for _ in range(depth + 1)]
    ws = [Rs[l + 1] @ np.diag([s[l], s[l]]) @ Rs[l].T for l in range(depth)]  # noqa: E741
    for l in range(depth - 1):  # noqa: E741
        D = ws[l + 1].T @ ws[l + 1] - ws[l] @ ws[l].T
        np.testing.assert_allclose(D, lam * np.eye(2), atol=1e-10 * (1 + sq.max()))
    np.testing.assert_allclose(metrics.end_to_end(ws), a * Rs[-1] @ Rs[0].T, atol=1e-10 * (1 + a))


# ======================================================================== §3 Riccati


@given(
    lam=st.one_of(st.just(0.0), st.floats(-10, 10)),
    n_i=st.integers(1, 4),
    n_h=st.integers(1, 5),
    n_o=st.integers(1, 4),
    seed=st.integers(0, 2**20),
)
def test_s3_riccati_equation_of_balanced_nets(lam, n_i, n_h, n_o, seed):
    assume(_admissible(lam, n_i, n_h, n_o))
    rng = np.random.default_rng(seed)
    r = min(n_i, n_h, n_o)
    W1, W2 = _balanced(lam, n_i, n_h, n_o, rng.uniform(0, 2, r), rng)
    syx = _task(n_i, n_o, rng.uniform(0, 3, min(n_i, n_o)), rng)
    dW1, dW2 = _velocity([W1, W2], syx)
    Q, dQ = np.vstack([W1.T, W2]), np.vstack([dW1.T, dW2])
    F = _F(syx, lam)
    scale = 1 + np.abs(Q).max() ** 3 + np.abs(F).max() * np.abs(Q).max()
    np.testing.assert_allclose(dQ, F @ Q - 0.5 * Q @ (Q.T @ Q), atol=1e-11 * scale)
    M, dM = Q @ Q.T, dQ @ Q.T + Q @ dQ.T
    np.testing.assert_allclose(
        dM, F @ M + M @ F - M @ M, atol=1e-11 * scale * (1 + np.abs(Q).max())
    )


# ======================================================================== §3.1 spectral pieces


@given(
    n_i=st.integers(1, 5),
    n_o=st.integers(1, 5),
    lam=st.one_of(st.just(0.0), st.floats(-50, 50)),
    rank=st.integers(0, 5),
    seed=st.integers(0, 2**20),
)
def test_s31_eigenpairs_of_F(n_i, n_o, lam, rank, seed):
    rng = np.random.default_rng(seed)
    m = min(n_i, n_o)
    s = np.sort(rng.uniform(0.1, 3, m))[::-1] * (np.arange(m) < rank)  # zeros allowed
    syx = _task(n_i, n_o, s, rng)
    F = _F(syx, lam)
    O, mu, (_, sv, _, S, H, _) = _eigenbasis(syx, lam)
    scale = 1 + np.abs(F).max()
    np.testing.assert_allclose(F @ O, O * mu, atol=1e-12 * scale)
    np.testing.assert_allclose(O.T @ O, np.eye(n_i + n_o), atol=1e-12)
    np.testing.assert_allclose(np.sort(mu), np.linalg.eigvalsh(F), atol=1e-11 * scale)
    assert np.all(S >= abs(lam) / 2 - 1e-12) and np.all(abs(lam) / 2 >= mu[2 * m :] - 1e-15)
    if lam != 0:  # the stable H equals the paper's (√(λ²+4s̃²) − 2s̃)/λ, in high precision
        with localcontext() as ctx:
            ctx.prec = 1400  # the paper's form cancels: (√(λ²+4s̃²) − 2s̃) ~ λ²/(4s̃)
            for h_k, s_k in zip(H, sv[:m], strict=True):
                lam_d, s_d = Decimal(lam), Decimal(float(s_k))
                ref = float(((lam_d**2 + 4 * s_d**2).sqrt() - 2 * s_d) / lam_d)
                assert abs(h_k - ref) <= 4 * EPS * max(abs(ref), 1e-300)
    # lrsweep.exact.riccati_eigenbasis: an orthonormal eigenbasis with the same ordering
    O_impl, mu_impl = riccati_eigenbasis(syx, np.asarray(lam))
    np.testing.assert_allclose(mu_impl, mu, atol=1e-12 * scale)
    np.testing.assert_allclose(F @ O_impl, O_impl * mu_impl, atol=1e-12 * scale)
    np.testing.assert_allclose(O_impl.T @ O_impl, np.eye(n_i + n_o), atol=1e-12)


@given(
    n_i=st.integers(1, 4),
    n_o=st.integers(1, 4),
    extra=st.integers(0, 2),
    lam=st.floats(-5, 5),
    seed=st.integers(0, 2**20),
)
def test_s31_initial_condition_blocks(n_i, n_o, extra, lam, seed):
    m = min(n_i, n_o)
    n_h = m + extra
    assume(_admissible(lam, n_i, n_h, n_o))
    rng = np.random.default_rng(seed)
    W1, W2 = _balanced(lam, n_i, n_h, n_o, rng.uniform(0, 2, min(n_i, n_h, n_o)), rng)
    syx = _task(n_i, n_o, rng.uniform(0.1, 3, m), rng)
    O, _, _ = _eigenbasis(syx, lam)
    P = O.T @ np.vstack([W1.T, W2])
    B, C, D = _bcd(W1, W2, syx, lam)
    np.testing.assert_allclose(P[:m], B.T / np.sqrt(2), atol=1e-12 * (1 + abs(lam)))
    np.testing.assert_allclose(P[m : 2 * m], C.T / np.sqrt(2), atol=1e-12 * (1 + abs(lam)))
    np.testing.assert_allclose(P[2 * m :], D.T, atol=1e-12 * (1 + abs(lam)))


# ======================================================================== §3.2 closed form

CLOSED = [  # (λ, N_i, N_o, task singular values)
    (1.3, 3, 3, [2.0, 1.0, 0.5]),
    (-0.8, 3, 3, [2.0, 1.0, 0.5]),
    (0.0, 3, 3, [2.0, 1.0, 0.5]),
    (0.7, 4, 2, [1.5, 0.6]),  # N_i > N_o, μ_c = −λ/2
    (-0.6, 2, 4, [1.5, 0.6]),  # N_o > N_i, μ_c = λ/2 < 0
    (0.9, 2, 4, [1.5, 0.6]),  # N_o > N_i, μ_c = λ/2 > 0
    (0.0, 3, 2, [1.5, 0.6]),  # μ_c = 0: φ_c → t
    (0.0, 2, 2, [1.5, 0.0]),  # S_λ = 0 on mode 2: (I − E²)S⁻¹ → 2t
]


def _invertible_b_init(lam, n_i, n_o, syx, scale=0.3, start=0):
    m = min(n_i, n_o)
    for seed in range(start, start + 100):
        W1, W2 = _balanced(lam, n_i, m, n_o, scale, np.random.default_rng(seed))
        sv = np.linalg.svd(_bcd(W1, W2, syx, lam)[0], compute_uv=False)
        if sv[-1] > 0.05 * sv[0]:
            return W1, W2
    raise AssertionError("no init with well-conditioned B")


@pytest.mark.parametrize(("lam", "n_i", "n_o", "s"), CLOSED)
def test_s32_closed_form_matches_gradient_flow(lam, n_i, n_o, s):
    syx = _task(n_i, n_o, s, np.random.default_rng(7))
    W1, W2 = _invertible_b_init(lam, n_i, n_o, syx)
    t = np.array([0.0, 0.5, 2.0, 6.0, 15.0])
    assert rel_err(_closed_form(W1, W2, syx, t), _flow_qqt(W1, W2, syx, t)).max() <= 1e-8


def test_s32_closed_form_matches_the_reference_ode():
    syx = _task(2, 3, [1.2, 0.5], np.random.default_rng(3))
    W1, W2 = _invertible_b_init(0.8, 2, 3, syx)
    t = np.array([0.0, 1.0, 5.0])
    w1, w2 = gradient_flow_reference([W1, W2], syx, t, rtol=1e-10)
    assert rel_err(_closed_form(W1, W2, syx, t), _gram(w1, w2)).max() <= 1e-8


@pytest.mark.parametrize(
    ("lam", "n_i", "n_o"),
    [(1e3, 3, 3), (-1e3, 3, 3), (-1e3, 4, 2), (1e3, 2, 4), (30.0, 4, 2), (-30.0, 2, 3)],
)
def test_s32_closed_form_has_no_positive_exponents(lam, n_i, n_o):
    syx = _task(n_i, n_o, [2.0, 0.8, 0.3][: min(n_i, n_o)], np.random.default_rng(4))
    W1, W2 = _invertible_b_init(lam, n_i, n_o, syx, scale=0.1)
    t = np.array([1e-3, 1.0, 10.0, 1e3])
    lit = _closed_form(W1, W2, syx, t)
    assert np.all(np.isfinite(lit))
    assert rel_err(qqt(W1, W2, syx, t), lit).max() <= 1e-9  # lrsweep.exact.qqt
    if abs(lam) < 100 or n_i == n_o:  # converged by t = 1e3 (slow rate s̃²/|λ| otherwise, §3.4)
        assert rel_err(lit[-1], _converged_literal(syx, lam)) <= 1e-9


def test_s32_singular_b_iff_determinant_signs_differ():
    rng = np.random.default_rng(11)
    syx = _task(3, 3, [2.0, 1.0, 0.5], rng)
    singular, mismatch = [], []
    for _ in range(400):
        W1, W2 = _balanced(0.0, 3, 3, 3, rng.uniform(0.1, 1, 3), rng)
        sv = np.linalg.svd(_bcd(W1, W2, syx, 0.0)[0], compute_uv=False)
        singular.append(sv[-1] < 1e-10 * sv[0])
        mismatch.append(np.sign(np.linalg.det(W2 @ W1)) != np.sign(np.linalg.det(syx)))
    assert singular == mismatch
    assert abs(np.mean(mismatch) - 0.5) <= 5 * np.sqrt(0.25 / 400)  # "half of all inits"


def test_s32_singular_b_init_stays_above_the_saddle_loss():
    rng = np.random.default_rng(5)
    s = np.array([2.0, 1.0, 0.5])
    syx = _task(3, 3, s, rng)
    while True:
        W1, W2 = _balanced(0.0, 3, 3, 3, 0.2, rng)
        if np.sign(np.linalg.det(W2 @ W1)) != np.sign(np.linalg.det(syx)):
            break
    t = np.linspace(0.0, 20.0, 41)
    w1, w2 = _flow([W1, W2], syx, t)
    ell = _excess(w2 @ w1, syx)
    assert np.all(ell >= 0.5 * s[-1] ** 2 * (1 - 1e-9))  # ‖W2W1 − Σyx‖ ≥ s̃_m for all t
    assert ell[-1] <= 0.5 * s[-1] ** 2 + 1e-5  # … and it converges to that saddle
    assert np.all(np.sign(np.linalg.det(w1)) == np.sign(np.linalg.det(W1)))


# ======================================================================== §3.3 generic form


@pytest.mark.parametrize(
    ("lam", "n_i", "n_h", "n_o"),
    [(1.0, 2, 4, 5), (-1.0, 5, 4, 2), (0.5, 2, 3, 4), (0.0, 2, 5, 3), (0.0, 3, 3, 3)],
)
def test_s33_generic_formula_matches_gradient_flow(lam, n_i, n_h, n_o):
    rng = np.random.default_rng(8)
    syx = _task(n_i, n_o, [1.5, 0.8, 0.3][: min(n_i, n_o)], rng)
    W1, W2 = _balanced(lam, n_i, n_h, n_o, 0.3, rng)
    t = np.array([0.0, 0.5, 2.0, 5.0])
    assert rel_err(_generic_literal(W1, W2, syx, t), _flow_qqt(W1, W2, syx, t)).max() <= 1e-8


def test_s33_generic_formula_matches_the_reference_ode_with_singular_b():
    # λ = 0, sign det W2W1 ≠ sign det Σyx: B singular, the generic form still holds
    syx = np.diag([1.0, 0.6])
    W1, W2 = np.diag([0.2, 0.3]), np.diag([-0.2, 0.3])
    rot = _haar(2, np.random.default_rng(1))
    W1, W2 = rot @ W1, W2 @ rot.T
    t = np.array([0.0, 1.0, 4.0])
    w1, w2 = gradient_flow_reference([W1, W2], syx, t, rtol=1e-10)
    assert rel_err(_generic_literal(W1, W2, syx, t), _gram(w1, w2)).max() <= 1e-8


@given(n=st.integers(1, 7), k=st.integers(1, 4), seed=st.integers(0, 2**20))
def test_s33_push_through_identity(n, k, seed):
    # Q0(I + Q0ᵀΦQ0)⁻¹Q0ᵀ = (I + Q0Q0ᵀΦ)⁻¹Q0Q0ᵀ for symmetric PSD Φ: a function of Q0Q0ᵀ
    rng = np.random.default_rng(seed)
    Q0 = rng.standard_normal((n, k))
    G = rng.standard_normal((n, n))
    Phi = G @ G.T
    lhs = Q0 @ np.linalg.solve(np.eye(k) + Q0.T @ Phi @ Q0, Q0.T)
    rhs = np.linalg.solve(np.eye(n) + Q0 @ Q0.T @ Phi, Q0 @ Q0.T)
    np.testing.assert_allclose(lhs, rhs, atol=1e-9 * (1 + np.abs(rhs).max()))


@pytest.mark.parametrize(
    ("lam", "n_i", "n_h", "n_o"), [(0.7, 2, 3, 3), (-0.5, 3, 2, 2), (0.0, 2, 4, 3)]
)
def test_s33_hidden_rotation_changes_nothing(lam, n_i, n_h, n_o):
    rng = np.random.default_rng(12)
    W1, W2 = _balanced(lam, n_i, n_h, n_o, rng.uniform(0.1, 1, min(n_i, n_h, n_o)), rng)
    syx = _task(n_i, n_o, rng.uniform(0.2, 2, min(n_i, n_o)), rng)
    R = _haar(n_h, rng)
    t = np.array([0.0, 1.0, 3.0])
    a, b = _flow_qqt(W1, W2, syx, t), _flow_qqt(R @ W1, W2 @ R.T, syx, t)
    np.testing.assert_allclose(a, b, atol=1e-9 * (1 + np.abs(a).max()))


STABLE = [  # (λ, N_i, N_h, N_o, times): beyond float64 for the literal formula
    (1.0, 2, 4, 5, [50.0, 1e3]),
    (0.0, 2, 5, 3, [50.0, 1e3]),
    (-1e3, 3, 3, 3, [1.0, 2.0]),  # e^{2S_max t} ≈ e^{2000}: far beyond float64
    (1e3, 2, 3, 4, [1.5]),
]


@pytest.mark.parametrize(("lam", "n_i", "n_h", "n_o", "times"), STABLE)
def test_s33_graded_elimination_matches_high_precision(lam, n_i, n_h, n_o, times):
    rng = np.random.default_rng(9)
    syx = _task(n_i, n_o, [2.0, 1.0, 0.5][: min(n_i, n_o)], rng)
    W1, W2 = _balanced(lam, n_i, n_h, n_o, 0.3, rng)
    O, mu, _ = _eigenbasis(syx, lam)
    Q0 = np.vstack([W1.T, W2])
    got = qqt(W1, W2, syx, times)
    for i, t in enumerate(times):
        ref = _decimal_generic(O, mu, Q0, t)
        assert rel_err(got[i], ref) <= 1e-9  # lrsweep.exact.qqt
        m_eig, Lam, R, L = _graded(O.T @ Q0, mu, t)  # the procedure as described in §3.3
        assert np.abs(Lam).max() <= 1 + 1e-12
        assert np.all(np.abs(R) <= np.maximum(1.0, np.abs(L)) * (1 + 1e-12))
        assert rel_err(O @ m_eig @ O.T, ref) <= 1e-9


def test_s33_literal_evaluation_breaks_down():
    rng = np.random.default_rng(3)
    syx = _task(3, 3, [3.0, 1.75, 0.5], rng)
    W1, W2 = _balanced(1.0, 3, 3, 3, 0.2, rng)
    O, mu, _ = _eigenbasis(syx, 1.0)
    Q0 = np.vstack([W1.T, W2])
    lit = _generic_literal(W1, W2, syx, [6.0, 40.0])
    ref6, ref40 = _decimal_generic(O, mu, Q0, 6.0), _decimal_generic(O, mu, Q0, 40.0)
    assert rel_err(lit[0], ref6) <= 1e-4
    assert not np.all(np.isfinite(lit[1])) or rel_err(lit[1], ref40) > 1e-2
    assert rel_err(qqt(W1, W2, syx, [40.0])[0], ref40) <= 1e-10


@given(
    n=st.integers(2, 5),
    h=st.integers(1, 3),
    log_t=st.floats(-1, 3),
    seed=st.integers(0, 2**20),
)
def test_s33_graded_elimination_bounds_property(n, h, log_t, seed):
    rng = np.random.default_rng(seed)
    h = min(h, n)
    mu = rng.uniform(-3, 3, n)
    P = rng.standard_normal((n, h))
    t = 10.0**log_t
    m_eig, Lam, R, L = _graded(P, mu, t)
    assert np.abs(Lam).max() <= 1 + 1e-12
    assert np.all(np.abs(R) <= np.maximum(1.0, np.abs(L)) * (1 + 1e-12))
    O = np.eye(n)
    ref = _decimal_generic(O, mu, P, t)
    np.testing.assert_allclose(m_eig, ref, atol=1e-9 * max(1.0, np.abs(ref).max()))


# ======================================================================== §3.4 converged state


@given(
    n_i=st.integers(1, 5),
    n_o=st.integers(1, 5),
    lam=st.one_of(st.just(0.0), st.floats(-100, 100)),
    seed=st.integers(0, 2**20),
)
def test_s34_converged_state_is_a_balanced_fixed_point(n_i, n_o, lam, seed):
    rng = np.random.default_rng(seed)
    m = min(n_i, n_o)
    syx = _task(n_i, n_o, rng.uniform(0.1, 3, m), rng)
    M = _converged_literal(syx, lam)
    F = _F(syx, lam)
    resid = F @ M + M @ F - M @ M
    np.testing.assert_allclose(resid, 0.0, atol=1e-11 * (1 + np.abs(F).max()) ** 2)
    # it is QQᵀ of the λ-balanced pair whose product is Σyx (§2 construction)
    U, s, Vt = np.linalg.svd(syx)
    W1, W2 = _balanced(lam, n_i, m, n_o, s, rng, U=U, V=Vt.T)
    np.testing.assert_allclose(_gram(W1, W2), M, atol=1e-11 * (1 + abs(lam)))
    np.testing.assert_allclose(converged(syx, lam), M, atol=1e-11 * (1 + abs(lam)))


@pytest.mark.parametrize(
    ("lam", "n_i", "n_o", "s", "t1", "t2"),
    [
        (1.0, 3, 3, [2.0, 1.0, 0.6], 8.0, 12.0),  # rate 2 S_min
        (-3.0, 4, 2, [2.0, 1.0], 30.0, 50.0),  # μ_c = |λ|/2: rate S_min − |λ|/2
        (0.0, 3, 2, [2.0, 0.7], 15.0, 25.0),  # μ_c = 0: rate S_min
        (1.0, 2, 4, [2.0, 1.0], 15.0, 25.0),  # μ_c = λ/2 > 0
        (-1.0, 2, 4, [2.0, 1.0], 8.0, 12.0),  # μ_c < 0: rate 2 S_min
    ],
)
def test_s34_flow_converges_at_the_predicted_rate(lam, n_i, n_o, s, t1, t2):
    syx = _task(n_i, n_o, s, np.random.default_rng(1))
    W1, W2 = _invertible_b_init(lam, n_i, n_o, syx)
    M = _converged_literal(syx, lam)
    S = np.sqrt(np.asarray(s) ** 2 + lam**2 / 4)
    mu_c = np.sign(n_o - n_i) * lam / 2
    rate = min(2 * S.min(), S.min() - mu_c) if n_i != n_o else 2 * S.min()
    q_end = _flow_qqt(W1, W2, syx, np.array([0.0, 30 / rate]))[-1]  # e^{−30}: converged
    assert rel_err(q_end, M) <= 1e-8
    d1, d2 = (np.linalg.norm(q - M) for q in _closed_form(W1, W2, syx, [t1, t2]))
    assert np.log(d1 / d2) / (t2 - t1) == pytest.approx(rate, rel=0.02)


@given(lam=st.floats(10, 1e4), sign=st.sampled_from([-1.0, 1.0]), seed=st.integers(0, 2**20))
def test_s34_limits_of_the_converged_state(lam, sign, seed):
    rng = np.random.default_rng(seed)
    n_i, n_o = 2, 4  # N_o > N_i: the large layer is λ·(projector), not λI
    s = rng.uniform(0.1, 2, 2)
    syx = _task(n_i, n_o, s, rng)
    U, _, Vt = np.linalg.svd(syx, full_matrices=False)
    M = _converged_literal(syx, sign * lam)
    w1tw1, w2w2t = M[:n_i, :n_i], M[n_i:, n_i:]
    bound = 2 * np.max(s) ** 4 / lam**3 + 16 * EPS * lam  # + round-off of entries ~λ
    if sign > 0:
        big, small, Pbig, Ssmall = w2w2t, w1tw1, U @ U.T, syx.T @ syx
        Sbig = syx @ syx.T
    else:
        big, small, Pbig, Ssmall = w1tw1, w2w2t, Vt.T @ Vt, syx @ syx.T
        Sbig = syx.T @ syx
    assert np.abs(big - lam * Pbig - Sbig / lam).max() <= bound
    assert np.abs(small - Ssmall / lam).max() <= bound
    if sign > 0:
        assert np.linalg.norm(big - lam * np.eye(n_o)) >= lam * 0.99  # not λI for N_o > N_i
    # λ → 0: (ΣyxᵀΣyx)^{1/2} and (ΣyxΣyxᵀ)^{1/2}
    M0 = _converged_literal(syx, 0.0)

    def sqrtm_psd(A):
        d, V = np.linalg.eigh(A)
        return (V * np.sqrt(np.maximum(d, 0))) @ V.T

    np.testing.assert_allclose(M0[:n_i, :n_i], sqrtm_psd(syx.T @ syx), atol=1e-7)
    np.testing.assert_allclose(M0[n_i:, n_i:], sqrtm_psd(syx @ syx.T), atol=1e-7)


@pytest.mark.parametrize(
    ("lam", "n_i", "n_h", "n_o"), [(1.5, 2, 3, 4), (1.5, 2, 4, 4), (-1.5, 4, 3, 2)]
)
def test_s34_extra_hidden_directions_add_lambda_projector(lam, n_i, n_h, n_o):
    syx = _task(n_i, n_o, [2.0, 1.0], np.random.default_rng(2))
    m = 2
    U, _, Vt = np.linalg.svd(syx)
    null = U[:, m:] if lam > 0 else Vt[m:].T  # span Û or span V̂
    M = _converged_literal(syx, lam)
    projectors = []
    for seed in (1, 2):
        W1, W2 = _balanced(lam, n_i, n_h, n_o, 0.3, np.random.default_rng(seed))
        q = _flow_qqt(W1, W2, syx, np.array([0.0, 50.0]))[-1]
        d = q - M
        blk = slice(n_i, None) if lam > 0 else slice(0, n_i)
        Pi = d[blk, blk] / abs(lam)
        d[blk, blk] = 0.0
        np.testing.assert_allclose(d, 0.0, atol=1e-7)  # the rest is the N_h = m state
        np.testing.assert_allclose(Pi @ Pi, Pi, atol=1e-7)  # an orthogonal projector …
        assert np.trace(Pi) == pytest.approx(n_h - m, abs=1e-7)  # … of rank N_h − m …
        np.testing.assert_allclose(null @ null.T @ Pi, Pi, atol=1e-7)  # … inside span Û / V̂
        projectors.append(Pi)
    full = n_h == (n_o if lam > 0 else n_i)
    if full:  # Π = ÛÛᵀ (V̂V̂ᵀ) whatever the init
        np.testing.assert_allclose(projectors[0], null @ null.T, atol=1e-7)
    else:  # Π depends on the init
        assert np.abs(projectors[0] - projectors[1]).max() > 1e-2


def test_s34_lambda_zero_extra_hidden_directions_converge_to_the_state():
    syx = _task(3, 2, [1.5, 0.7], np.random.default_rng(4))
    W1, W2 = _balanced(0.0, 3, 5, 2, 0.3, np.random.default_rng(5))
    assert np.linalg.matrix_rank(np.vstack([W1.T, W2]), tol=1e-10) <= 2  # rank Q0 ≤ m
    q = _flow_qqt(W1, W2, syx, np.array([0.0, 40.0]))[-1]
    assert rel_err(q, _converged_literal(syx, 0.0)) <= 1e-8


# ======================================================================== §3.5 aligned modes


@pytest.mark.parametrize(("lam", "n_i", "n_o"), [(0.7, 3, 2), (-0.4, 2, 3), (0.0, 3, 3)])
def test_s35_aligned_init_stays_aligned(lam, n_i, n_o):
    rng = np.random.default_rng(6)
    s = np.array([2.0, 1.0, 0.5])[: min(n_i, n_o)]
    U, V = _haar(n_o, rng), _haar(n_i, rng)
    m = min(n_i, n_o)
    S = np.zeros((n_o, n_i))
    S[np.arange(m), np.arange(m)] = s
    syx = U @ S @ V.T
    a0 = np.array([0.02, 0.05, 0.1])[:m]
    W1, W2 = _balanced(lam, n_i, m, n_o, a0, rng, U=U, V=V)
    t = np.array([0.0, 1.0, 3.0, 8.0])
    w1, w2 = _flow([W1, W2], syx, t)
    modes = U.T @ (w2 @ w1) @ V  # stays diag(a_k(t))
    ref = np.stack([_aligned(a0[k], s[k], lam, t) for k in range(m)], axis=1)
    expect = np.zeros_like(modes)
    expect[:, np.arange(m), np.arange(m)] = ref
    np.testing.assert_allclose(modes, expect, atol=1e-9)


@given(
    lam=st.one_of(st.just(0.0), st.floats(1e-3, 50)),
    s=st.floats(0.1, 3),
    ratio=st.floats(-0.9, 3),
)
def test_s35_closed_form_matches_the_scalar_ode(lam, s, ratio):
    a0 = ratio * s
    assume(abs(a0) > 1e-3 and (lam > 0 or a0 > 0))
    t = np.array([0.0, 0.05, 0.5, 2.0, 10.0])
    ref = _scalar_ode(a0, s, lam, t).y[0]
    np.testing.assert_allclose(_aligned(a0, s, lam, t), ref, rtol=1e-8, atol=1e-10 * s)
    np.testing.assert_allclose(_aligned(a0, s, -lam, t), ref, rtol=1e-8, atol=1e-10 * s)  # |λ|
    if lam > 0 and a0 < 0.5 * s:  # level-crossing time to a_* = s̃/2
        hit = _scalar_ode(a0, s, lam, [0.0, 200.0], events=lambda _t, a: a[0] - 0.5 * s)
        assert _level_time(a0, 0.5 * s, s, lam) == pytest.approx(hit.t_events[0][0], rel=1e-7)


def test_s35_plateau_of_rich_learning():
    for s, a0 in [(1.0, 1e-4), (2.5, 1e-6), (0.5, 1e-3)]:
        hit = _scalar_ode(a0, s, 0.0, [0.0, 100.0], events=lambda _t, a, s=s: a[0] - s / 2)
        t_half = np.log(s / a0 - 1) / (2 * s)
        assert hit.t_events[0][0] == pytest.approx(t_half, rel=1e-8)
        assert t_half == pytest.approx(np.log(s / a0) / (2 * s), abs=a0 / s**2)


@given(lam=st.floats(20, 1e4), s=st.floats(0.1, 2), ratio=st.floats(-1, 1))
def test_s35_large_lambda_is_exponential_with_bounded_error(lam, s, ratio):
    a0 = ratio * s
    t = np.array([0.0, 0.1, 0.5, 1.0, 2.0, 5.0]) / lam
    ref = _scalar_ode(a0, s, lam, t).y[0]
    approx = s + (a0 - s) * np.exp(-lam * t)
    bound = 2 * abs(s - a0) * max(abs(a0), s) ** 2 / (np.e * lam**2)
    assert np.all(np.abs(ref - approx) <= bound * (1 + 1e-6) + 1e-12 * s)


@given(lam=st.floats(0, 3), s=st.floats(0.2, 3), ratio=st.floats(0, 0.99))
def test_s35_sigmoid_iff_criterion(lam, s, ratio):
    a0 = ratio * s
    crit = lam**2 < s**2 / 2
    a_plus = (s + np.sqrt(max(s**2 - 2 * lam**2, 0.0))) / 4
    # stay away from the boundary of the criterion
    assume(abs(lam - s / np.sqrt(2)) > 0.02 * s and (not crit or abs(a0 - a_plus) > 0.02 * s))
    a = np.linspace(a0, s, 20001)  # a(t) is monotone, so the speed along it is g(a)
    g = np.hypot(lam, 2 * a) * (s - a)
    accelerates = bool(np.any(np.diff(g) > 1e-12 * g.max()))
    assert accelerates == (crit and a0 < a_plus)


def test_s35_lambda_zero_inflection_at_half():
    s, a0 = 1.5, 1e-3
    t = np.linspace(0, 8, 8001)
    a = _scalar_ode(a0, s, 0.0, t).y[0]
    speed = np.hypot(0.0, 2 * a) * (s - a)
    assert a[np.argmax(speed)] == pytest.approx(s / 2, rel=2e-3)


def test_s35_reversal_time_to_relearn():
    s = 1.0
    # λ = 0 from a0 < 0 (a0 = −s̃ after a reversal): in v = ln(−a), τ dv/dt = −2(s̃ + e^v), so
    # a = −e^v stays negative; it follows s̃a0/((s̃ − a0)e^{2s̃t} + a0) → 0⁻ and never relearns
    t = np.linspace(0, 40, 9)
    for a0 in (-s, -0.3 * s):
        sol = solve_ivp(
            lambda _t, v: -2 * (s + np.exp(v)),
            (0, 40),
            [np.log(-a0)],
            t_eval=t,
            rtol=1e-12,
            atol=1e-12,
        )
        a = -np.exp(sol.y[0])
        np.testing.assert_allclose(a, s * a0 / ((s - a0) * np.exp(2 * s * t) + a0), rtol=1e-8)

    def relearn(lam):
        return _level_time(-s, s / 2, s, lam)

    for lam in (1e-3, 0.3, 5.0):
        hit = _scalar_ode(-s, s, lam, [0.0, 100.0], events=lambda _t, a: a[0] - s / 2)
        assert relearn(lam) == pytest.approx(hit.t_events[0][0], rel=1e-7)
    # (τ/s̃) ln(1/|λ|) + O(1) as λ → 0
    assert relearn(1e-5) - relearn(1e-4) == pytest.approx(np.log(10) / s, rel=1e-3)
    assert relearn(1e-4) - s**-1 * np.log(1e4) == pytest.approx(
        relearn(1e-6) - s**-1 * np.log(1e6), abs=1e-3
    )
    # O(τ/|λ|) for |λ| ≫ s̃
    assert 0.1 < relearn(1e3) * 1e3 < 10 and relearn(1e4) * 1e4 == pytest.approx(
        relearn(1e3) * 1e3, rel=1e-2
    )


@pytest.mark.parametrize(("depth", "lam"), [(3, 0.6), (3, -0.4), (4, 0.0)])
def test_s35_deep_aligned_modes(depth, lam):
    s, a0 = 1.3, 0.05

    def layer_values(a):  # §2 deep chain for product a
        g = np.arange(depth) * abs(lam)
        u = brentq(lambda x: np.prod(x + g) - a**2, 0.0, 2 * a ** (2 / depth), xtol=1e-15)
        sq = u + np.arange(depth) * abs(lam)
        return np.sqrt(sq if lam >= 0 else sq[::-1])

    s0 = layer_values(a0)
    rng = np.random.default_rng(3)
    Rs = [_haar(2, rng) for _ in range(depth + 1)]
    ws = [Rs[l + 1] @ np.diag([s0[l], 0.0]) @ Rs[l].T for l in range(depth)]  # noqa: E741
    syx = s * np.outer(Rs[-1][:, 0], Rs[0][:, 0])
    if lam != 0:  # second mode: a = 0 is not balanced for λ ≠ 0 unless its squares are spaced
        sq = np.arange(depth) * abs(lam)
        sq = sq if lam >= 0 else sq[::-1]
        ws = [Rs[l + 1] @ np.diag([s0[l], np.sqrt(sq[l])]) @ Rs[l].T for l in range(depth)]  # noqa: E741
    t = np.array([0.0, 1.0, 3.0, 6.0])
    out = _flow(ws, syx, t)
    a_flow = np.array(
        [
            Rs[-1][:, 0] @ metrics.end_to_end([w[i] for w in out]) @ Rs[0][:, 0]
            for i in range(t.size)
        ]
    )

    def rhs(_t, a):  # τ da/dt = a² Σ_l s_l⁻² (s̃ − a), the s_l fixed by balance
        sl = layer_values(a[0])
        return [a[0] ** 2 * np.sum(sl**-2.0) * (s - a[0])]

    ref = solve_ivp(rhs, (0, t[-1]), [a0], t_eval=t, rtol=1e-11, atol=1e-13).y[0]
    np.testing.assert_allclose(a_flow, ref, rtol=1e-7)


# ======================================================================== §4 NTK and measures


def test_s4_exact_solution_gives_the_ntk_at_every_time():
    rng = np.random.default_rng(12)
    syx = _task(3, 2, [1.5, 0.5], rng)
    W1, W2 = _balanced(0.5, 3, 2, 2, 0.2, rng)
    X = _whitened_inputs(3, 4, rng)
    t = np.array([0.0, 1.0, 5.0])
    w1, w2 = _flow([W1, W2], syx, t)
    q = qqt(W1, W2, syx, t)  # lrsweep.exact
    for i in range(t.size):
        J = _jacobian([w1[i], w2[i]], X)
        A, B = q[i, :3, :3], q[i, 3:, 3:]
        K = np.kron(B, X.T @ X) + np.kron(np.eye(2), X.T @ A @ X)  # §4, diagonal blocks only
        np.testing.assert_allclose(K, J @ J.T, atol=1e-8 * np.abs(K).max())


@given(
    widths=st.lists(st.integers(1, 3), min_size=3, max_size=4),
    P=st.integers(1, 4),
    seed=st.integers(0, 2**20),
)
def test_s4_function_space_dynamics(widths, P, seed):
    rng = np.random.default_rng(seed)
    ws = [rng.standard_normal((b, a)) for a, b in zip(widths[:-1], widths[1:], strict=True)]
    X, Y = rng.standard_normal((widths[0], P)), rng.standard_normal((widths[-1], P))
    vel = _velocity(ws, Y @ X.T / P, X @ X.T / P)
    eps = 1e-6  # dŷ/dt by the chain rule, numerically: ŷ(W + εV) − ŷ(W − εV)
    up = metrics.end_to_end([w + eps * v for w, v in zip(ws, vel, strict=True)]) @ X
    dn = metrics.end_to_end([w - eps * v for w, v in zip(ws, vel, strict=True)]) @ X
    y_dot = ((up - dn) / (2 * eps)).ravel()
    J = _jacobian(ws, X)
    resid = (metrics.end_to_end(ws) @ X - Y).ravel()
    np.testing.assert_allclose(y_dot, -(J @ J.T) @ resid / P, atol=1e-6 * (1 + np.abs(y_dot).max()))


@given(
    n_i=st.integers(1, 3),
    n_h=st.integers(1, 3),
    n_o=st.integers(1, 3),
    P=st.integers(1, 4),
    seed=st.integers(0, 2**20),
)
def test_s4_inner_product_identities(n_i, n_h, n_o, P, seed):
    rng = np.random.default_rng(seed)
    nets = [[rng.standard_normal((n_h, n_i)), rng.standard_normal((n_o, n_h))] for _ in range(2)]
    X = rng.standard_normal((n_i, P))
    Ks = [(lambda J: J @ J.T)(_jacobian(ws, X)) for ws in nets]
    ref = np.sum(Ks[0] * Ks[1])
    G = X.T @ X
    calA = [X.T @ ws[0].T @ ws[0] @ X for ws in nets]
    calB = [ws[1] @ ws[1].T for ws in nets]
    four = (
        n_o * np.sum(calA[0] * calA[1])
        + np.trace(calB[1]) * np.sum(calA[0] * G)
        + np.trace(calB[0]) * np.sum(G * calA[1])
        + np.sum(calB[0] * calB[1]) * np.sum(G * G)
    )
    np.testing.assert_allclose(four, ref, rtol=1e-9, atol=1e-9)
    sxx = X @ X.T / P  # general form P² Σ ⟨O_l, O_l'⟩ tr(C_l Σxx C_l' Σxx)
    grams = [([ws[1] @ ws[1].T, np.eye(n_o)], [np.eye(n_i), ws[0].T @ ws[0]]) for ws in nets]
    gen = P**2 * sum(
        np.sum(grams[0][0][i] * grams[1][0][j])
        * np.trace(grams[0][1][i] @ sxx @ grams[1][1][j] @ sxx)
        for i in range(2)
        for j in range(2)
    )
    np.testing.assert_allclose(gen, ref, rtol=1e-9, atol=1e-9)
    # whitened, per sample pair
    Xw = _whitened_inputs(n_i, max(P, n_i), rng)
    Pw = Xw.shape[1]
    Kw = [(lambda J: J @ J.T)(_jacobian(ws, Xw)) for ws in nets]
    A = [ws[0].T @ ws[0] for ws in nets]
    lit = (
        n_o * np.sum(A[0] * A[1])
        + np.trace(calB[1]) * np.trace(A[0])
        + np.trace(calB[0]) * np.trace(A[1])
        + n_i * np.sum(calB[0] * calB[1])
    )
    np.testing.assert_allclose(lit, np.sum(Kw[0] * Kw[1]) / Pw**2, rtol=1e-9, atol=1e-9)
    S_ref = 1 - np.sum(Kw[0] * Kw[1]) / (np.linalg.norm(Kw[0]) * np.linalg.norm(Kw[1]))
    assert -1e-12 <= S_ref <= 1 + 1e-12  # PSD kernels: S ∈ [0, 1]
    assert _s_whitened(A[0], calB[0], A[1], calB[1]) == pytest.approx(S_ref, abs=1e-10)


def test_s4_square_nets_lazy_distance_scales_as_inverse_fourth_power():
    rng = np.random.default_rng(1)
    syx = _task(3, 3, [2.0, 1.0, 0.6], rng)
    S = []
    for lam in (20.0, 40.0, 80.0):
        W1, W2 = _balanced(lam, 3, 3, 3, 0.05, np.random.default_rng(2))
        M = _converged_literal(syx, lam)
        S.append(_s_whitened(W1.T @ W1, W2 @ W2.T, M[:3, :3], M[3:, 3:]))
        g0 = metrics.ntk_grams([W1, W2])
        g1 = metrics.ntk_grams_from_qqt(M, 3)
        assert float(metrics.kernel_distance(g0, g1)) == pytest.approx(S[-1], rel=1e-6)
    assert S[0] / S[1] == pytest.approx(16, rel=0.05) and S[1] / S[2] == pytest.approx(16, rel=0.02)
    assert S[2] < 1e-6


def test_s4_isotropic_inits_distance_does_not_depend_on_scale():
    syx = _task(2, 2, [1.5, 0.6], np.random.default_rng(3))
    lam = 0.5
    t = np.array([0.0, 40.0])
    vals = []
    for a0, seed in [(0.05, 1), (0.5, 2), (2.0, 3)]:
        W1, W2 = _balanced(lam, 2, 2, 2, a0, np.random.default_rng(seed))
        np.testing.assert_allclose(W1.T @ W1, (W1.T @ W1)[0, 0] * np.eye(2), atol=1e-12)
        w1, w2 = _flow([W1, W2], syx, t)
        vals.append(_s_whitened(W1.T @ W1, W2 @ W2.T, w1[-1].T @ w1[-1], w2[-1] @ w2[-1].T))
    np.testing.assert_allclose(vals, vals[0], rtol=1e-6)
    M = _converged_literal(syx, lam)
    A0, B0 = np.eye(2), np.eye(2)  # K_0 ∝ I ⊗ XᵀX: only the direction matters
    assert _s_whitened(A0, B0, M[:2, :2], M[2:, 2:]) == pytest.approx(vals[0], rel=1e-6)


def test_s4_transposition_symmetry():
    rng = np.random.default_rng(4)
    syx = _task(3, 3, [2.0, 1.0, 0.4], rng)
    W1, W2 = _balanced(0.8, 3, 3, 3, 0.1, rng)
    t = np.array([0.0, 1.0, 4.0])
    w1, w2 = _flow([W1, W2], syx, t)
    v1, v2 = _flow([W2.T, W1.T], syx.T, t)  # λ ↦ −λ
    assert _lam(W2.T, W1.T) == pytest.approx(-0.8)
    np.testing.assert_allclose(v2 @ v1, np.swapaxes(w2 @ w1, 1, 2), atol=1e-9)
    np.testing.assert_allclose(np.swapaxes(v1, 1, 2) @ v1, w2 @ np.swapaxes(w2, 1, 2), atol=1e-9)
    s_a = _s_whitened(W1.T @ W1, W2 @ W2.T, w1[-1].T @ w1[-1], w2[-1] @ w2[-1].T)
    s_b = _s_whitened(W2 @ W2.T, W1.T @ W1, v1[-1].T @ v1[-1], v2[-1] @ v2[-1].T)
    assert s_a == pytest.approx(s_b, rel=1e-7)


def test_s4_funnel_is_rich_for_large_negative_lambda_and_slow():
    rng = np.random.default_rng(1)
    syx = _task(4, 2, [3.0, 0.5], rng)
    _, _, Vt = np.linalg.svd(syx)
    Pi_inf = Vt[:2].T @ Vt[:2]
    for lam in (-1e3, -1e4):
        W1, W2 = _invertible_b_init(lam, 4, 2, syx, scale=0.01, start=3)
        Pi_0 = W1.T @ np.linalg.solve(W1 @ W1.T, W1)  # row-space projector of W1
        M = _converged_literal(syx, lam)
        S = _s_whitened(W1.T @ W1, W2 @ W2.T, M[:4, :4], M[4:, 4:])
        limit = 1 - np.trace(Pi_0 @ Pi_inf) / 2
        assert S == pytest.approx(limit, abs=(9 / lam) ** 2)  # O(s̃⁴/λ²)
        assert S > 0.05  # the NTK moves by O(1)
    # square net at the same |λ|: lazy
    sq = _task(2, 2, [3.0, 0.5], rng)
    W1, W2 = _balanced(-1e3, 2, 2, 2, 0.01, rng)
    M = _converged_literal(sq, -1e3)
    assert _s_whitened(W1.T @ W1, W2 @ W2.T, M[:2, :2], M[2:, 2:]) < 1e-8
    # timescale τ|λ|/s̃²: time to 90 % of the loss decrease grows ∝ |λ|
    t90 = []
    for lam in (-100.0, -1000.0):
        W1, W2 = _invertible_b_init(lam, 4, 2, syx, scale=0.01, start=3)
        ell0 = _excess(W2 @ W1, syx)

        def gap(t, W1=W1, W2=W2, ell0=ell0):
            q = _closed_form(W1, W2, syx, [t])[0]
            return _excess(q[4:, :4], syx) - 0.1 * ell0

        t90.append(brentq(gap, 1e-3, 100 * abs(lam) / 9, xtol=1e-10))
    assert t90[1] / t90[0] == pytest.approx(10, rel=0.05)
    assert 0.1 < t90[0] * 9 / 100 < 10


def test_s4_weight_change_of_the_small_layer_is_not_a_lazy_measure():
    rng = np.random.default_rng(5)
    U, V = _haar(2, rng), _haar(2, rng)
    s, a0 = np.array([1.0, 0.5]), np.array([1e-2, 2e-2])
    syx = U @ np.diag(s) @ V.T
    for lam in (100.0, 400.0):
        W1, W2 = _balanced(lam, 2, 2, 2, a0, rng, U=U, V=V)
        w1, w2 = _flow([W1, W2], syx, np.array([0.0, 40.0 / lam]), rtol=1e-10)
        small = np.linalg.norm(w1[-1] - W1) / np.linalg.norm(W1)
        overall = np.sqrt(np.sum((w1[-1] - W1) ** 2) + np.sum((w2[-1] - W2) ** 2))
        overall /= np.sqrt(np.sum(W1**2) + np.sum(W2**2))
        assert small == pytest.approx(np.linalg.norm(s - a0) / np.linalg.norm(a0), rel=3e-2)
        assert overall == pytest.approx(np.linalg.norm(s - a0) / (lam * np.sqrt(2)), rel=3e-2)
        per_layer, tot = metrics.relative_weight_change([w1[-1], w2[-1]], [W1, W2])
        np.testing.assert_allclose([per_layer[0], tot], [small, overall], rtol=1e-10)


def test_s4_time_to_fit_against_the_logistic():
    s, a0 = 1.0, 1e-3
    t = np.linspace(0, 12, 4001)
    a = _scalar_ode(a0, s, 0.0, t).y[0]
    ell = 0.5 * (s - a) ** 2
    f = np.array([0.5, 0.9, 0.99])
    a_f = s - np.sqrt(1 - f) * (s - a0)  # level ℒ_0 − f(ℒ_0 − 0)
    exact = np.log((s / a0 - 1) / (s / a_f - 1)) / (2 * s)
    got = metrics.time_to_fit(t, ell, f, final_loss=0.0)
    np.testing.assert_allclose(got, exact, atol=(t[1] - t[0]) ** 2 * 10)


@pytest.mark.parametrize(("lam", "n_h"), [(0.0, 1), (0.5, 1), (-0.3, 2)])
def test_s4_bottleneck_reaches_the_eckart_young_loss(lam, n_h):
    s = np.array([2.0, 1.0, 0.5])
    rng = np.random.default_rng(6)
    syx = _task(3, 3, s, rng)
    W1, W2 = _balanced(lam, 3, n_h, 3, 0.3, rng)
    w1, w2 = _flow([W1, W2], syx, np.array([0.0, 40.0]))
    best = 0.5 * np.sum(s[n_h:] ** 2)
    U, sv, Vt = np.linalg.svd(syx)
    trunc = (U[:, :n_h] * sv[:n_h]) @ Vt[:n_h]
    assert _excess(trunc, syx) == pytest.approx(best, rel=1e-12)
    assert _excess(w2[-1] @ w1[-1], syx) == pytest.approx(best, rel=1e-7)
    assert float(metrics.lowest_loss(syx, n_h)) == pytest.approx(best, rel=1e-12)


# ======================================================================== §5 figures


def test_s5_hierarchy_representations():
    syx = semantic_hierarchy().sigma_yx
    M = _converged_literal(syx, 0.0)
    d, V = np.linalg.eigh(syx.T @ syx)
    rich = (V * np.sqrt(np.maximum(d, 0))) @ V.T
    np.testing.assert_allclose(M[:8, :8], rich, atol=1e-7)  # (ΣyxᵀΣyx)^{1/2}
    for i in range(8):  # pairs > same kingdom > other kingdom, for every item
        pair = rich[i, i ^ 1]
        kingdom = [rich[i, j] for j in range(8) if j // 4 == i // 4 and j // 2 != i // 2]
        other = [rich[i, j] for j in range(8) if j // 4 != i // 4]
        assert pair > max(kingdom) and min(kingdom) > max(other)
    s_max = np.linalg.svd(syx, compute_uv=False).max()
    for lam in (-10.0, 10.0):
        M = _converged_literal(syx, lam)
        big, small = (M[:8, :8], M[8:, 8:]) if lam < 0 else (M[8:, 8:], M[:8, :8])
        small_ref = syx @ syx.T if lam < 0 else syx.T @ syx
        assert np.linalg.norm(big - 10 * np.eye(8)) <= s_max**2 / 10 * np.sqrt(8)
        assert np.abs(small - small_ref / 10).max() <= 2 * s_max**4 / 10**3


def test_s5_bottleneck_is_lazy_for_neither_sign():
    syx = _task(4, 4, [2.0, 1.5, 1.0, 0.5], np.random.default_rng(2))
    t = np.array([0.0, 2000.0])
    for lam in (-30.0, 30.0):
        for n_h, rich in ((2, True), (4, False)):
            W1, W2 = _balanced(lam, 4, n_h, 4, 0.05, np.random.default_rng(3))
            q = qqt(W1, W2, syx, t)
            S = _s_whitened(q[0, :4, :4], q[0, 4:, 4:], q[1, :4, :4], q[1, 4:, 4:])
            assert (S > 0.05) if rich else (S < 1e-3), (lam, n_h, S)


# ======================================================================== §6.1 per-layer rates


@pytest.mark.parametrize("widths", [[2, 3, 2], [2, 2, 3, 2]])
def test_s61_change_of_variables_onto_unit_rate_flow(widths):
    rng = np.random.default_rng(7)
    L = len(widths) - 1
    etas = np.array([0.5, 2.0, 1.3])[:L]
    ws = [0.5 * rng.standard_normal((b, a)) for a, b in zip(widths[:-1], widths[1:], strict=True)]
    X, Y = rng.standard_normal((widths[0], 6)), rng.standard_normal((widths[-1], 6))
    syx, sxx = Y @ X.T / 6, X @ X.T / 6
    C = np.prod(np.sqrt(etas))
    k = np.array([0.0, 0.5, 2.0])
    mine = _flow(ws, syx, k, sxx=sxx, rates=etas)  # dW_l/dk = −η_l ∂ℒ/∂W_l
    A0 = [w / np.sqrt(e) for w, e in zip(ws, etas, strict=True)]
    ref = gradient_flow_reference(A0, syx / C, C**2 * k, sigma_xx=sxx, rtol=1e-10)
    for w, a, e in zip(mine, ref, etas, strict=True):
        np.testing.assert_allclose(w, np.sqrt(e) * a, atol=1e-8)
    for layer in range(L - 1):  # η_{l+1}⁻¹W_{l+1}ᵀW_{l+1} − η_l⁻¹W_lW_lᵀ is conserved …
        w, w2 = mine[layer], mine[layer + 1]
        D = np.swapaxes(w2, 1, 2) @ w2 / etas[layer + 1] - w @ np.swapaxes(w, 1, 2) / etas[layer]
        np.testing.assert_allclose(D, np.broadcast_to(D[0], D.shape), atol=1e-8)
        raw = np.swapaxes(w2, 1, 2) @ w2 - w @ np.swapaxes(w, 1, 2)  # … the unweighted one not
        assert np.abs(raw[-1] - raw[0]).max() > 1e-3


@pytest.mark.parametrize(("lam_a", "etas"), [(0.7, (0.3, 2.0)), (-0.5, (1.5, 0.2)), (0.0, (4, 1))])
def test_s61_two_layer_map_onto_a_balanced_problem(lam_a, etas):
    rng = np.random.default_rng(8)
    eta1, eta2 = etas
    C = np.sqrt(eta1 * eta2)
    syx = _task(3, 3, [1.5, 0.8, 0.3], rng)
    A1, A2 = _balanced(lam_a, 3, 3, 3, 0.2, rng)
    W1, W2 = np.sqrt(eta1) * A1, np.sqrt(eta2) * A2  # η2⁻¹W2ᵀW2 − η1⁻¹W1W1ᵀ = λ_A I
    k = np.array([0.0, 0.5, 2.0, 6.0])
    w1, w2 = _flow([W1, W2], syx, k, rates=[eta1, eta2])
    q = qqt(A1, A2, syx / C, C**2 * k)  # exact λ_A-balanced solution for A
    np.testing.assert_allclose(w2 @ w1, C * q[:, 3:, :3], atol=1e-8)
    np.testing.assert_allclose(np.swapaxes(w1, 1, 2) @ w1, eta1 * q[:, :3, :3], atol=1e-8)
    np.testing.assert_allclose(w2 @ np.swapaxes(w2, 1, 2), eta2 * q[:, 3:, 3:], atol=1e-8)


# ======================================================================== §6.2 Gaussian inits


def test_s62_gaussian_imbalance_moments_monte_carlo():
    rng = np.random.default_rng(9)
    widths, sig = [3, 4, 5, 2], np.array([0.5, 0.3, 0.7])
    n = 20000
    ws = [
        s * rng.standard_normal((n, b, a))
        for s, a, b in zip(sig, widths[:-1], widths[1:], strict=True)
    ]
    for layer in range(2):
        N_l, N_next, N_prev = widths[layer + 1], widths[layer + 2], widths[layer]
        D = np.swapaxes(ws[layer + 1], 1, 2) @ ws[layer + 1]
        D = D - ws[layer] @ np.swapaxes(ws[layer], 1, 2)
        lam_bar = N_next * sig[layer + 1] ** 2 - N_prev * sig[layer] ** 2
        v = N_next * sig[layer + 1] ** 4 + N_prev * sig[layer] ** 4

        def z_mean(x, expect):
            return np.abs(x.mean(0) - expect) / (x.std(0, ddof=1) / np.sqrt(n))

        def z_var(x, expect):  # SE of the sample variance from the sample 4th moment
            c = x - x.mean(0)
            m2, m4 = (c**2).mean(0), (c**4).mean(0)
            return np.abs(m2 * n / (n - 1) - expect) / np.sqrt((m4 - m2**2) / n)

        assert z_mean(D, lam_bar * np.eye(N_l)).max() < 5  # E[D_l] = λ̄ I
        off = ~np.eye(N_l, dtype=bool)
        assert z_var(D[:, off], v).max() < 5  # off-diagonal variance v
        assert z_var(np.diagonal(D, axis1=1, axis2=2), 2 * v).max() < 5  # diagonal 2v
        lam_eff = np.trace(D, axis1=1, axis2=2) / N_l
        assert z_mean(lam_eff, lam_bar) < 5
        assert z_var(lam_eff, 2 * v / N_l) < 5
        dev = np.sum((D - lam_eff[:, None, None] * np.eye(N_l)) ** 2, axis=(1, 2))
        assert z_mean(dev, (N_l - 1) * (N_l + 2) * v) < 5
    # lrsweep.init.gaussian_deep draws with these moments; imbalance_report gives tr(D_l)/N_l
    draws = [gaussian_deep(widths, list(sig), seed=i) for i in range(2000)]
    lams = np.array([imbalance_report(w)[0] for w in draws])
    expect = [widths[l + 2] * sig[l + 1] ** 2 - widths[l] * sig[l] ** 2 for l in range(2)]  # noqa: E741
    se = lams.std(0, ddof=1) / np.sqrt(len(draws))
    assert np.all(np.abs(lams.mean(0) - expect) < 5 * se)
    D0 = draws[0][1].T @ draws[0][1] - draws[0][0] @ draws[0][0].T
    assert lams[0, 0] == pytest.approx(np.trace(D0) / widths[1], rel=1e-12)


@given(
    n_i=st.integers(1, 4),
    n_h=st.integers(1, 4),
    n_o=st.integers(1, 4),
    seed=st.integers(0, 2**20),
)
def test_s62_error_term_of_unbalanced_inits(n_i, n_h, n_o, seed):
    rng = np.random.default_rng(seed)
    W1, W2 = rng.standard_normal((n_h, n_i)), rng.standard_normal((n_o, n_h))
    syx = rng.standard_normal((n_o, n_i))
    D = W2.T @ W2 - W1 @ W1.T
    lam_bar = np.trace(D) / n_h
    Delta = D - lam_bar * np.eye(n_h)
    dW1, dW2 = _velocity([W1, W2], syx)
    Q, dQ = np.vstack([W1.T, W2]), np.vstack([dW1.T, dW2])
    J = np.diag(np.r_[-np.ones(n_i), np.ones(n_o)])
    pred = _F(syx, lam_bar) @ Q - 0.5 * Q @ Q.T @ Q + 0.5 * J @ Q @ Delta
    np.testing.assert_allclose(dQ, pred, atol=1e-10 * (1 + np.abs(Q).max()) ** 3)


def _prediction(W1, W2):
    """§6.2: the λ_eff-balanced pair with the same W2W1(0) (SVD of M, R = I)."""
    n_h, n_i = W1.shape
    n_o = W2.shape[0]
    U, a, Vt = np.linalg.svd(W2 @ W1)
    r = min(n_i, n_h, n_o)
    return _balanced(_lam(W1, W2), n_i, n_h, n_o, a[:r], None, U=U, V=Vt.T, R=np.eye(n_h))


def test_s62_gaussian_prediction_error_is_first_order_in_the_imbalance():
    rng = np.random.default_rng(10)
    syx = _task(3, 3, [1.5, 0.8, 0.3], rng)
    B1, B2 = _balanced(1.0, 3, 3, 3, 0.3, rng)
    E1, E2 = rng.standard_normal((3, 3)), rng.standard_normal((3, 3))
    t = np.array([0.0, 0.5, 2.0, 5.0])
    errs = []
    for eps in (0.0, 2e-3, 1e-3):
        W1, W2 = B1 + eps * E1, B2 + eps * E2
        P1, P2 = _prediction(W1, W2)
        np.testing.assert_allclose(P2 @ P1, W2 @ W1, atol=1e-12)
        errs.append(rel_err(_flow_qqt(P1, P2, syx, t), _flow_qqt(W1, W2, syx, t)).max())
    assert errs[0] <= 1e-8  # exact when Δ = 0
    assert errs[1] / errs[2] == pytest.approx(2.0, rel=0.05)  # O(‖Δ‖)


DETERMINED = [  # (λ, N_i, N_h, N_o, product singular values)
    (0.8, 2, 2, 3, [0.5, 0.3]),  # rank M = N_h
    (0.8, 1, 1, 2, [0.0]),  # N_h = N_i = 1 < N_o, M = 0: not determined
    (0.8, 1, 3, 3, [0.5]),  # rank 1 < N_h = N_o: determined
    (0.8, 2, 2, 3, [0.5, 0.0]),  # rank 1 < N_h < N_o: not determined
    (0.0, 2, 4, 3, [0.5, 0.0]),  # λ = 0: determined
    (-0.8, 3, 2, 1, [0.5]),  # λ < 0, rank 1 < N_h < N_i: not determined
    (-0.8, 3, 3, 1, [0.5]),  # λ < 0, N_h = N_i: determined
]


@pytest.mark.parametrize(("lam", "n_i", "n_h", "n_o", "a"), DETERMINED)
def test_s62_when_product_and_lambda_determine_the_solution(lam, n_i, n_h, n_o, a):
    rng = np.random.default_rng(11)
    r_m = int(np.sum(np.asarray(a) > 0))
    U, V = _haar(n_o, rng), _haar(n_i, rng)
    U2, V2 = U.copy(), V.copy()  # same M: rotate the completions of its null spaces
    U2[:, r_m:] = U[:, r_m:] @ _haar(n_o - r_m, rng)
    V2[:, r_m:] = V[:, r_m:] @ _haar(n_i - r_m, rng)
    W1, W2 = _balanced(lam, n_i, n_h, n_o, a, rng, U=U, V=V)
    X1, X2 = _balanced(lam, n_i, n_h, n_o, a, rng, U=U2, V=V2)
    np.testing.assert_allclose(X2 @ X1, W2 @ W1, atol=1e-12)
    assert _lam(X1, X2) == pytest.approx(lam, abs=1e-12)
    predicted = lam == 0 or r_m == n_h or (lam > 0 and n_h == n_o) or (lam < 0 and n_h == n_i)
    syx = _task(n_i, n_o, [1.2, 0.6, 0.3][: min(n_i, n_o)], rng)
    t = np.array([0.0, 1.0, 3.0])
    q1, q2 = _flow_qqt(W1, W2, syx, t), _flow_qqt(X1, X2, syx, t)
    if predicted:
        np.testing.assert_allclose(q1, q2, atol=1e-9)
    else:
        assert np.abs(q1[0] - q2[0]).max() > 1e-2 and np.abs(q1[-1] - q2[-1]).max() > 1e-2


# ======================================================================== citations

#: "theory.md §3.2", "theory §3, §4" (every § of a list after "theory" counts)
_CITATION = re.compile(r"theory(?:\.md)?\s+§(\d+(?:\.\d+)*)((?:\s*,\s*§\d+(?:\.\d+)*)*)")
_HEADING = re.compile(r"^(##|###) (\d+(?:\.\d+)*)(\.?) \S")


def _theory_sections(text: str) -> list[str]:
    """Numbers of the '## N. Title' and '### N.M Title' headings; any other ##/### fails."""
    numbers = []
    for line in text.splitlines():
        if not re.match(r"^#{2,6} ", line):
            continue
        m = _HEADING.match(line)
        assert m, f"un-numbered or malformed heading in theory.md: {line!r}"
        level, number, dot = m.groups()
        parts = number.split(".")
        if level == "##":
            assert len(parts) == 1 and dot == ".", f"section heading must be '## N. ': {line!r}"
        else:
            assert len(parts) == 2 and dot == "", f"subsection must be '### N.M ': {line!r}"
            assert numbers and parts[0] in {n.split(".")[0] for n in numbers}, line
        assert number not in numbers, f"duplicate section {number}"
        numbers.append(number)
    return numbers


def _citations() -> dict[str, list[str]]:
    files = [ROOT / "README.md"]
    for pattern in (
        "lrsweep/**/*.py",
        "docs/*.md",
        "tests/**/*.py",
        "benchmarks/*.py",
        "workflow/**/*.py",
    ):
        files += sorted(ROOT.glob(pattern))
    found: dict[str, list[str]] = {}
    for path in files:
        if path == THEORY or not path.is_file():
            continue
        text = path.read_text(encoding="utf-8")
        for m in _CITATION.finditer(text):
            line = text.count("\n", 0, m.start()) + 1
            for number in [m.group(1), *re.findall(r"§(\d+(?:\.\d+)*)", m.group(2))]:
                found.setdefault(number, []).append(f"{path.relative_to(ROOT)}:{line}")
    return found


def test_theory_headings_are_strict():
    sections = _theory_sections(THEORY.read_text(encoding="utf-8"))
    required = ["1", "2", "3", "3.1", "3.2", "3.3", "3.4", "3.5", "4", "5", "6", "6.1", "6.2", "7"]
    assert sections == required
    with pytest.raises(AssertionError):
        _theory_sections("## Setup\n")
    with pytest.raises(AssertionError):
        _theory_sections("## 3 Exact\n")
    with pytest.raises(AssertionError):
        _theory_sections("## 3. Exact\n### 4.1 Orphan\n")


def test_every_cited_theory_section_exists():
    sections = set(_theory_sections(THEORY.read_text(encoding="utf-8")))
    cited = _citations()
    assert {"1", "2", "3", "3.3", "3.5", "4", "5"} <= set(cited)  # the collector finds them
    missing = {n: where for n, where in cited.items() if n not in sections}
    assert not missing, f"cited sections missing from docs/theory.md: {missing}"
