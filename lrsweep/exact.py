"""Exact gradient-flow dynamics of λ-balanced two-layer linear networks.

With whitened inputs (Σxx = I) and W2ᵀW2 − W1W1ᵀ = λI, Q = [W1ᵀ; W2] obeys the matrix
Riccati equation (theory.md §3; Dominé et al. 2025, eq. 6)

    τ d(QQᵀ)/dt = F QQᵀ + QQᵀ F − (QQᵀ)²,   F = [[−λ/2·I, Σyxᵀ], [Σyx, λ/2·I]],

whose solution is (§3.3)

    QQᵀ(t) = e^{Ft} Q0 [I + Q0ᵀ (∫₀ᵗ e^{2Fu} du) Q0]⁻¹ Q0ᵀ e^{Ft}        (t in units of τ).

Evaluated literally this overflows once |μ|t ≳ 355 and loses accuracy long before. Here it is
evaluated in the eigenbasis of F (known in closed form from the task SVD, §3.1) through a
*graded elimination*: Y = e^{μt}·P (P = OᵀQ0) is factored by Gaussian elimination with
partial pivoting on the magnitudes of Y, computed in the log domain, and every exponential is
combined into one factor whose product with its multiplier is bounded by 1 (theory §3.3: an
exponent is positive only where the elimination multiplier is correspondingly small, so
nothing overflows). The same path covers
N_h = min(N_i, N_o) and N_h > min(N_i, N_o), equal and unequal N_i, N_o, λ of either sign or
zero, and the singular-B (saddle) case.

Saddles: an initial state whose component along a growing eigendirection is exactly zero
stays on the saddle forever; components below ``saddle_tol`` (relative to the column norm
of Q0 in the eigenbasis, default 1e-12, i.e. ~10⁴ ulp) are treated as that exact zero
instead of letting round-off grow like e^{2μt}.
"""

from __future__ import annotations

import numpy as np

from lrsweep._validate import as_array, as_times, lambda_of, positive, two_layer
from lrsweep.init import balanced_singular_values

__all__ = [
    "qqt",
    "qqt_blocks",
    "network_function",
    "aligned_singular_values",
    "converged",
    "riccati_eigenbasis",
    "riccati_matrix",
    "riccati_residual",
    "stack_q",
]

#: Default relative size below which a component along a growing mode counts as zero.
SADDLE_TOL = 1e-12
#: Evaluations (time points × runs) processed per chunk; bounds memory at ~n²·8 B each.
_CHUNK = 1024
_EXP_CAP = 700.0
#: Fixed (B⁻¹-form) pivots are used while ‖P‖/σ_min(P₊) stays below this.
_FIXED_PIVOT_COND = 1e4


def _mode_coefficients(s: np.ndarray, lam: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per-mode eigen-data of F: S_λ, and the coefficients α = G(1−H)/√2, β = G(1+H)/√2.

    The eigenvector of F for +S_λ on task mode k is [α_k ṽ_k; β_k ũ_k], for −S_λ it is
    [−β_k ṽ_k; α_k ũ_k] (theory §3.1, normalised: α² + β² = 1). H = λ/(√(λ²+4s²) + 2s) is
    stable at λ = 0; at s = λ = 0 (degenerate eigenvalue 0) H = 0 is one valid choice.
    """
    lam = np.asarray(lam, dtype=float)[..., None]
    root = np.sqrt(lam**2 + 4 * s**2)
    den = root + 2 * s
    H = np.divide(lam, den, out=np.zeros(np.broadcast(lam, s).shape), where=den > 0)
    G = 1 / np.sqrt(1 + H**2)
    return root / 2, G * (1 - H) / np.sqrt(2), G * (1 + H) / np.sqrt(2)


def riccati_eigenbasis(sigma_yx: np.ndarray, lam: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Orthonormal eigenbasis of F in closed form from the task SVD (theory §3.1).

    Parameters
    ----------
    sigma_yx : ndarray, shape (..., N_o, N_i)
    lam : ndarray, shape (...)

    Returns
    -------
    O : ndarray, shape (..., N_i+N_o, N_i+N_o)
        Columns: the m growing modes (+S_λ), the m decaying modes (−S_λ), then the
        |N_o − N_i| complementary directions [V̂; 0] (eigenvalue −λ/2) or [0; Û] (λ/2).
    mu : ndarray, shape (..., N_i+N_o)
        The eigenvalues, in the same order; F = O diag(mu) Oᵀ.
    """
    n_o, n_i = sigma_yx.shape[-2:]
    m = min(n_i, n_o)
    U, s, Vt = np.linalg.svd(sigma_yx, full_matrices=True)
    V = np.swapaxes(Vt, -1, -2)
    S_lam, alpha, beta = _mode_coefficients(s, lam)
    lam = np.asarray(lam, dtype=float)
    batch = np.broadcast_shapes(U.shape[:-2], lam.shape)
    n = n_i + n_o
    O = np.zeros((*batch, n, n))
    Vm, Um = V[..., :, :m], U[..., :, :m]
    O[..., :n_i, :m] = Vm * alpha[..., None, :]
    O[..., n_i:, :m] = Um * beta[..., None, :]
    O[..., :n_i, m : 2 * m] = -Vm * beta[..., None, :]
    O[..., n_i:, m : 2 * m] = Um * alpha[..., None, :]
    extra_mu = np.broadcast_to(np.sign(n_o - n_i) * lam[..., None] / 2, (*batch, abs(n_o - n_i)))
    if n_i > n_o:
        O[..., :n_i, 2 * m :] = V[..., :, m:]
    elif n_o > n_i:
        O[..., n_i:, 2 * m :] = U[..., :, m:]
    S_lam = np.broadcast_to(S_lam, (*batch, m))
    return O, np.concatenate([S_lam, -S_lam, extra_mu], axis=-1)


def _graded_riccati(
    P: np.ndarray, mu_t: np.ndarray, phi: np.ndarray, tol: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Factors of M = Y (I + Pᵀ D P)⁻¹ Yᵀ, Y = diag(e^{μt}) P, D = diag(∫₀ᵗ e^{2μu} du).

    Returns Λ and K with M = Λ K⁻¹ Λᵀ, every entry bounded (|Λ| ≤ 1, theory §3.3).

    Parameters
    ----------
    P : ndarray, shape (N, n, h)
        Initial state in the eigenbasis of F (columns orthogonal; zero columns allowed).
    mu_t : ndarray, shape (N, n)
        μ·t.
    phi : ndarray, shape (N, n)
        e^{−2 max(μ,0) t} ∫₀ᵗ e^{2μu} du = (1 − e^{−2|μ|t})/(2|μ|)  (→ t at μ = 0).
    tol : ndarray, shape (N, h)
        Absolute size below which an entry of column k counts as exactly zero.

    Returns
    -------
    Lam : ndarray, shape (N, n, h)
    K : ndarray, shape (N, h, h), symmetric positive definite

    Notes
    -----
    Elimination P = L U chooses pivots by |Y| (partial pivoting on Y, so |L_ik| e^{μ_i t}
    ≤ e^{μ_π t}). With T = U⁻¹ diag(e^{−c}), c_k = max(μ_{π_k} t, 0):
    Λ = Y T = L ∘ e^{μ_i t − c_k} (|Λ| ≤ 1), R = L ∘ e^{max(μ_i,0) t − c_k},
    TᵀKT = TᵀT + Rᵀ diag(phi) R, and M = Λ (TᵀKT)⁻¹ Λᵀ. An exponent μ_i t − c_k is positive
    only where |L_ik| is correspondingly small, so every product stays bounded.
    """
    N, n, h = P.shape
    rows = np.arange(N)
    work = np.ascontiguousarray(np.swapaxes(P, 1, 2))  # (N, h, n): column k is work[:, k]
    LT = np.zeros((N, h, n))  # Lᵀ
    U = np.zeros((N, h, h))
    c = np.zeros((N, h))
    active = np.ones((N, n), dtype=bool)
    score = np.empty((N, n))
    for k in range(h):
        col = work[:, k]
        mag = np.abs(col)
        eligible = active & (mag > tol[:, k : k + 1])
        score.fill(-np.inf)
        np.log(mag, out=score, where=eligible)
        score += mu_t
        piv = np.argmax(score, axis=1)
        has_pivot = eligible[rows, piv]
        pval = np.where(has_pivot, col[rows, piv], 1.0)
        mult = np.divide(col, pval[:, None], out=np.zeros((N, n)), where=eligible)
        prow = work[rows, :, piv] * has_pivot[:, None]  # (N, h); zero if no pivot
        U[:, k, k:] = prow[:, k:]
        U[:, k, k] += ~has_pivot
        mult[rows, piv] = 0.0
        work[:, k + 1 :] -= prow[:, k + 1 :, None] * mult[:, None, :]
        mult[rows, piv] = has_pivot
        LT[:, k] = mult
        active[rows, piv] &= ~has_pivot
        c[:, k] = np.where(has_pivot, np.maximum(mu_t[rows, piv], 0.0), 0.0)
    L = np.swapaxes(LT, 1, 2)
    # |L_ik| > saddle_tol-relative entries keep every true exponent below ~60, so clipping
    # at _EXP_CAP only ever acts where L_ik = 0 (and avoids 0·inf).
    Lam = L * np.exp(np.minimum(mu_t[:, :, None] - c[:, None, :], _EXP_CAP))
    R = L * np.exp(np.minimum(np.maximum(mu_t, 0.0)[:, :, None] - c[:, None, :], _EXP_CAP))
    W = np.linalg.solve(U, np.exp(-c)[:, :, None] * np.eye(h))  # U⁻¹ diag(e^{−c})
    K = np.swapaxes(W, 1, 2) @ W + np.swapaxes(R, 1, 2) @ (phi[:, :, None] * R)
    return Lam, K


def _phi(mu: np.ndarray, t: np.ndarray) -> np.ndarray:
    """e^{−2 max(μ,0) t} ∫₀ᵗ e^{2μu} du = (1 − e^{−2|μ|t})/(2|μ|), → t at μ = 0."""
    amu = np.abs(mu)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(amu > 0, -np.expm1(-2 * amu * t) / (2 * amu), t)


def _gram(Z: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Z K⁻¹ Zᵀ = YYᵀ with Y = Z C⁻ᵀ, K = CCᵀ (symmetric by construction).

    Shapes: Z (N, n, h), K (N, h, h) symmetric positive definite; returns (N, n, n).
    """
    Y = Z @ np.swapaxes(np.linalg.inv(np.linalg.cholesky(K)), 1, 2)
    return Y @ np.swapaxes(Y, 1, 2)


def _chunks(runs: np.ndarray, nb: int, times: np.ndarray):
    """Yield (flat output indices, positions in ``runs``, times) in chunks of _CHUNK evaluations.

    ``times`` is (n_t, nb): the times of every run (all equal for the common case).
    """
    n_t = times.shape[0]
    pos = np.tile(np.arange(runs.size), n_t)
    tix = np.repeat(np.arange(n_t), runs.size)
    for start in range(0, pos.size, _CHUNK):
        sl = slice(start, start + _CHUNK)
        run = runs[pos[sl]]
        yield tix[sl] * nb + run, pos[sl], times[tix[sl], run]


def _fixed_pivots_ok(P: np.ndarray, m: int) -> np.ndarray:
    """Runs (N,) whose growing block P₊ = P[:m] (∝ Bᵀ) is square and well conditioned.

    For these the pivots of the graded elimination can be fixed to the m growing rows
    (theory §3.2's B⁻¹ form): every multiplier is bounded by ‖P‖/σ_min(P₊) ≤ _FIXED_PIVOT_COND.
    """
    if P.shape[-1] != m:
        return np.zeros(P.shape[0], dtype=bool)
    sv_plus = np.linalg.svd(P[:, :m], compute_uv=False)
    sv_all = np.linalg.svd(P, compute_uv=False)
    return sv_plus[:, -1] * _FIXED_PIVOT_COND > sv_all[:, 0]


def _fixed_pivot_factors(P: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-run constants of the fixed-pivot form: X = P_rest P₊⁻¹ (N, n−m, m), G0 = P₊⁻ᵀP₊⁻¹."""
    inv = np.linalg.inv(P[:, :m])
    return P[:, m:] @ inv, np.swapaxes(inv, 1, 2) @ inv


def _fixed_pivot_riccati(
    X: np.ndarray, G0: np.ndarray, mu: np.ndarray, O: np.ndarray, t: np.ndarray, m: int
) -> np.ndarray:
    """QQᵀ for well-conditioned B with T = P₊⁻¹ e^{−S_λt} (theory §3.2 in the eigenbasis).

    Λ = [I; X ∘ e^{(μ_i − S_k)t}], exponents ≤ 0 since μ_i ≤ S_k for every other row;
    K = G0 ∘ e^{−(S_k+S_l)t} + diag(φ₊) + R_restᵀ diag(φ_rest) R_rest.
    Shapes: X (N, n−m, m), G0 (N, m, m), mu (N, n), O (N, n, n), t (N,); returns (N, n, n).
    """
    S_t = mu[:, :m] * t[:, None]
    rest_t = mu[:, m:] * t[:, None]
    e = np.exp(-S_t)
    lam_rest = X * np.exp(rest_t[:, :, None] - S_t[:, None, :])
    r_rest = np.where(rest_t[:, :, None] > 0, lam_rest, X * e[:, None, :])
    phi = _phi(mu, t[:, None])
    K = G0 * (e[:, :, None] * e[:, None, :]) + np.swapaxes(r_rest, 1, 2) @ (
        phi[:, m:, None] * r_rest
    )
    K[:, np.arange(m), np.arange(m)] += phi[:, :m]
    return _gram(O[:, :, :m] + O[:, :, m:] @ lam_rest, K)


def _run_times(t: object, batch: tuple[int, ...]) -> np.ndarray:
    """Times as (n_t, *batch): a common grid (n_t,) broadcast, or one column per run."""
    arr = as_array(t, "t")
    if arr.ndim <= 1:
        arr = as_times(arr)
        return np.broadcast_to(arr.reshape(-1, *(1,) * len(batch)), (arr.size, *batch))
    if arr.shape[1:] != batch or arr.shape[0] == 0:
        raise ValueError(
            f"`t` must have shape (n_t,) or (n_t, *batch) with batch={batch}, got {arr.shape}"
        )
    if np.any(arr < 0):
        raise ValueError(f"`t` must be non-negative (times in units of tau), got min {arr.min()}")
    return arr


def qqt(
    W1: object,
    W2: object,
    sigma_yx: object,
    t: object,
    *,
    tau: float = 1.0,
    lam: object = None,
    saddle_tol: float = SADDLE_TOL,
) -> np.ndarray:
    """Exact QQᵀ(t) of gradient flow from a λ-balanced init, with whitened inputs.

    Solves τ d(QQᵀ)/dt = F QQᵀ + QQᵀ F − (QQᵀ)² with Q = [W1ᵀ; W2] (theory.md §3.3) for
    any admissible N_h. λ (in F) is ``lam`` if given, else read off the weights as
    λ = tr(W2ᵀW2 − W1W1ᵀ)/N_h. Pass ``lam`` when it is known: float64 weights of scale a
    carry λ only to about ±ε·a (ε ≈ 2.2e-16), so at a = 1e12 a λ of 2 is read off as
    2 ± 1e-3, and beyond a ≈ 1e16 not at all, while the solution with the exact λ stays
    accurate at any scale (theory §7).

    Parameters
    ----------
    W1 : array_like, shape (..., N_h, N_i)
        Input-side weights at t = 0 (optional leading batch axes: many runs of one shape).
    W2 : array_like, shape (..., N_o, N_h)
        Output-side weights at t = 0.
    sigma_yx : array_like, shape (..., N_o, N_i)
        Input–output correlation Σyx (inputs must be whitened, Σxx = I).
    t : array_like, shape (n_t,) or (n_t, ...)
        Times, non-negative, in the same units as ``tau``; gradient descent step k at
        learning rate η corresponds to t/τ = kη. With batch axes, each run has its own.
    tau : float
        Time constant τ = 1/η.
    lam : float or array_like, shape (...), optional
        The λ of each run; the weights must be λ-balanced with it within the relative
        tolerance 1e-8 of (‖W1‖_F² + ‖W2‖_F²).
    saddle_tol : float
        Relative size below which a component along a growing mode counts as exactly zero.

    Returns
    -------
    ndarray, shape (n_t, ..., N_i+N_o, N_i+N_o)
        [[W1ᵀW1, (W2W1)ᵀ], [W2W1, W2W2ᵀ]] at every time.

    Raises
    ------
    ValueError
        If shapes do not match, inputs contain NaN/inf, t < 0, or the weights are not
        λ-balanced (W2ᵀW2 − W1W1ᵀ ≠ λI within a relative 1e-8, with ``lam`` if given).

    Examples
    --------
    >>> from lrsweep.init import lambda_balanced
    >>> W1, W2 = lambda_balanced(1.0, 2, 2, 2, scale=0.1, seed=0)
    >>> q = qqt(W1, W2, np.diag([2.0, 1.0]), [0.0, 50.0])
    >>> bool(np.allclose(q[0, 2:, :2], W2 @ W1))
    True
    >>> bool(np.allclose(q[-1, 2:, :2], np.diag([2.0, 1.0])))
    True
    """
    W1, W2, sigma_yx = two_layer(W1, W2, sigma_yx)
    lam = lambda_of(W1, W2, lam=lam)
    n_i = W1.shape[-1]
    batch = np.broadcast_shapes(W1.shape[:-2], W2.shape[:-2], sigma_yx.shape[:-2], lam.shape)
    times = _run_times(t, batch) / positive(tau, "tau")
    O, mu = riccati_eigenbasis(
        np.broadcast_to(sigma_yx, (*batch, *sigma_yx.shape[-2:])), np.broadcast_to(lam, batch)
    )
    Q0 = np.broadcast_to(stack_q(W1, W2), (*batch, n_i + sigma_yx.shape[-2], W1.shape[-2]))
    # Reduce Q0 to orthogonal columns (QQᵀ only depends on Q0Q0ᵀ); drop null directions.
    Uq, sq, _ = np.linalg.svd(Q0, full_matrices=False)
    sq = np.where(sq > saddle_tol * sq[..., :1], sq, 0.0)
    P = np.swapaxes(O, -1, -2) @ (Uq * sq[..., None, :])
    n, h = P.shape[-2:]
    nb = int(np.prod(batch, dtype=int))
    P = P.reshape(nb, n, h)
    mu = mu.reshape(nb, n)
    tol = saddle_tol * np.broadcast_to(sq.reshape(nb, h), (nb, h))
    O = O.reshape(nb, n, n)
    m = min(n_i, n - n_i)
    fast = _fixed_pivots_ok(P, m)
    times = times.reshape(times.shape[0], nb)
    out = np.empty((times.shape[0], nb, n, n))
    flat = out.reshape(-1, n, n)
    if np.any(fast):
        runs = np.flatnonzero(fast)
        X, G0 = _fixed_pivot_factors(P[runs], m)
        mu_f, O_f = mu[runs], O[runs]
        for idx, r, tt in _chunks(runs, nb, times):
            flat[idx] = _fixed_pivot_riccati(X[r], G0[r], mu_f[r], O_f[r], tt, m)
    if not np.all(fast):
        runs = np.flatnonzero(~fast)
        for idx, r, tt in _chunks(runs, nb, times):
            run = runs[r]
            mu_t = mu[run] * tt[:, None]
            Lam, K = _graded_riccati(P[run], mu_t, _phi(mu[run], tt[:, None]), tol[run])
            flat[idx] = _gram(O[run] @ Lam, K)
    return out.reshape(times.shape[0], *batch, n, n)


def stack_q(W1: np.ndarray, W2: np.ndarray) -> np.ndarray:
    """Q = [W1ᵀ; W2], shape (..., N_i+N_o, N_h), so that QQᵀ = [[W1ᵀW1, (W2W1)ᵀ], [W2W1, W2W2ᵀ]]
    (theory §3). W1 (..., N_h, N_i) and W2 (..., N_o, N_h); batch axes broadcast."""
    batch = np.broadcast_shapes(W1.shape[:-2], W2.shape[:-2])
    W1t = np.broadcast_to(np.swapaxes(W1, -1, -2), (*batch, *W1.shape[:-3:-1]))
    return np.concatenate([W1t, np.broadcast_to(W2, (*batch, *W2.shape[-2:]))], axis=-2)


def riccati_matrix(sigma_yx: object, lam: object) -> np.ndarray:
    """F = [[−λ/2·I_{N_i}, Σyxᵀ], [Σyx, λ/2·I_{N_o}]] of the Riccati equation (theory §3).

    Shapes: Σyx (..., N_o, N_i), λ (...) → F (..., N_i+N_o, N_i+N_o).
    """
    sigma_yx = as_array(sigma_yx, "sigma_yx")
    lam = np.asarray(as_array(lam, "lam"))[..., None]
    n_o, n_i = sigma_yx.shape[-2:]
    batch = np.broadcast_shapes(sigma_yx.shape[:-2], lam.shape[:-1])
    F = np.zeros((*batch, n_i + n_o, n_i + n_o))
    F[..., n_i:, :n_i] = sigma_yx
    F[..., :n_i, n_i:] = np.swapaxes(sigma_yx, -1, -2)
    diag = np.concatenate(
        [np.broadcast_to(-lam / 2, (*batch, n_i)), np.broadcast_to(lam / 2, (*batch, n_o))], -1
    )
    F[..., np.arange(n_i + n_o), np.arange(n_i + n_o)] = diag
    return F


def riccati_residual(q: object, dq: object, sigma_yx: object, lam: object) -> np.ndarray:
    """Relative residual of the Riccati equation τ dq/dt = Fq + qF − q² (theory §3).

    ‖dq − (Fq + qF − q²)‖_F / (2‖F‖_2‖q‖_F + ‖q‖_F²): 0 for an exact solution, ≈ the
    relative error of ``dq`` otherwise; an independent check of a computed trajectory
    (e.g. ``dq`` by finite differences of :func:`qqt`). 0 where q = 0.

    Parameters
    ----------
    q, dq : array_like, shape (..., N_i+N_o, N_i+N_o)
        QQᵀ at some t and its time derivative there (units of 1/τ).
    sigma_yx : array_like, shape (..., N_o, N_i)
    lam : array_like, shape (...)

    Returns
    -------
    ndarray, shape (...)
    """
    q, dq = as_array(q, "q"), as_array(dq, "dq")
    F = riccati_matrix(sigma_yx, lam)
    rhs = F @ q + q @ F - q @ q
    num = np.linalg.norm(dq - rhs, axis=(-2, -1))
    q_norm = np.linalg.norm(q, axis=(-2, -1))
    F_norm = np.linalg.norm(F, ord=2, axis=(-2, -1))
    den = 2 * F_norm * q_norm + q_norm**2
    return np.divide(num, den, out=np.zeros(np.broadcast(num, den).shape), where=den > 0)


def qqt_blocks(q: np.ndarray, n_in: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split QQᵀ (..., N_i+N_o, N_i+N_o) into its blocks.

    Returns W1ᵀW1 (..., N_i, N_i), W2W1 (..., N_o, N_i) and W2W2ᵀ (..., N_o, N_o).
    """
    return q[..., :n_in, :n_in], q[..., n_in:, :n_in], q[..., n_in:, n_in:]


def network_function(
    W1: object, W2: object, sigma_yx: object, t: object, *, tau: float = 1.0
) -> np.ndarray:
    """Exact network function W2W1(t), shape (n_t, ..., N_o, N_i) (off-diagonal block of QQᵀ)."""
    W1, W2, sigma_yx = two_layer(W1, W2, sigma_yx)
    return qqt_blocks(qqt(W1, W2, sigma_yx, t, tau=tau), W1.shape[-1])[1]


def aligned_singular_values(
    a0: object, s: object, lam: object, t: object, *, tau: float = 1.0
) -> np.ndarray:
    """Singular values a_k(t) of W2W1 for a task-aligned λ-balanced init (theory §3.5).

    Each mode obeys τ da/dt = √(λ² + 4a²)(s̃ − a): sigmoidal near λ = 0, exponential for
    large |λ|. Evaluated as the 2×2 Riccati solution of the mode in the eigenbasis of
    F_k = [[−λ/2, s̃], [s̃, λ/2]] with only non-positive exponents (stable for every λ, s̃,
    t, including λ = 0, s̃ = 0 and the saddle a0 ≤ 0 < s̃ at λ = 0, where a stays ≤ 0).

    Parameters
    ----------
    a0 : array_like, shape (..., m)
        Initial product singular values (negative: anti-aligned mode).
    s : array_like, shape (..., m)
        Task singular values s̃ ≥ 0.
    lam : array_like, shape (...)
        λ of each run.
    t : array_like, shape (n_t,)

    Returns
    -------
    ndarray, shape (n_t, ..., m)
    """
    a0 = as_array(a0, "a0", ndim=(1, 2, 3))
    s = as_array(s, "s", ndim=(1, 2, 3))
    lam = as_array(lam, "lam")
    if np.any(s < 0):
        raise ValueError("`s` (task singular values) must be non-negative")
    times = as_times(t) / positive(tau, "tau")
    S, alpha, beta = _mode_coefficients(s, lam)
    w1, w2 = balanced_singular_values(lam[..., None], np.abs(a0))
    w2 = np.where(a0 < 0, -w2, w2)
    p_plus = alpha * w1 + beta * w2  # components of q0 = (w1, w2) on the ±S eigenvectors
    p_minus = -beta * w1 + alpha * w2
    tt = times.reshape((-1,) + (1,) * np.ndim(S))
    decay = np.exp(-2 * S * tt)
    phi = _phi(S, tt)
    # a = [O N Oᵀ]₂₁ / den with N = [[p+², p+p−e], [p+p−e, p−²e²]], e = e^{−2St}, all of it
    # multiplied by e^{−2St}. On the saddle (p+ = 0) numerator and denominator share one
    # more factor e, divided out so that late times give a → 0 instead of 0/0.
    ab, a2b2 = alpha * beta, alpha**2 - beta**2
    with np.errstate(invalid="ignore", divide="ignore"):
        general = (ab * (p_plus**2 - p_minus**2 * decay**2) + a2b2 * p_plus * p_minus * decay) / (
            decay + p_plus**2 * phi + p_minus**2 * decay * phi
        )
    on_saddle = -ab * p_minus**2 * decay / (1 + p_minus**2 * phi)
    return np.where(p_plus == 0, on_saddle, general)


def converged(sigma_yx: object, lam: object) -> np.ndarray:
    """The converged QQᵀ(∞) for N_h = min(N_i, N_o) and invertible B (theory §3.4).

    W2W1 → Σyx, W1ᵀW1 → Ṽ diag(s1²) Ṽᵀ, W2W2ᵀ → Ũ diag(s2²) Ũᵀ with
    s1² = (√(λ²+4s̃²) − λ)/2, s2² = (√(λ²+4s̃²) + λ)/2.

    Parameters
    ----------
    sigma_yx : array_like, shape (..., N_o, N_i)
    lam : array_like, shape (...)

    Returns
    -------
    ndarray, shape (..., N_i+N_o, N_i+N_o)
    """
    sigma_yx = as_array(sigma_yx, "sigma_yx")
    lam = as_array(lam, "lam")
    n_o, n_i = sigma_yx.shape[-2:]
    m = min(n_i, n_o)
    U, s, Vt = np.linalg.svd(sigma_yx, full_matrices=False)
    s1, s2 = balanced_singular_values(np.asarray(lam)[..., None], s)
    V = np.swapaxes(Vt, -1, -2)
    batch = np.broadcast_shapes(sigma_yx.shape[:-2], lam.shape)
    out = np.zeros((*batch, n_i + n_o, n_i + n_o))
    out[..., :n_i, :n_i] = (V[..., :, :m] * s1[..., None, :] ** 2) @ Vt[..., :m, :]
    out[..., n_i:, n_i:] = (U[..., :, :m] * s2[..., None, :] ** 2) @ np.swapaxes(
        U[..., :, :m], -1, -2
    )
    out[..., n_i:, :n_i] = sigma_yx
    out[..., :n_i, n_i:] = np.swapaxes(sigma_yx, -1, -2)
    return out
