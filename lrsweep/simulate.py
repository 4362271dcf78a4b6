"""Batched gradient descent and gradient flow for deep linear networks (depth L ≥ 2).

Network ŷ = W_L ⋯ W_1 x with W_l of shape (N_l, N_{l−1}), N_0 = N_i, N_L = N_o, trained on
ℒ = 1/(2P) Σ_n ‖y_n − W x_n‖² = ½ tr Σyy − tr(WᵀΣyx) + ½ tr(W Σxx Wᵀ),  W = W_L ⋯ W_1.
With A_l = W_L ⋯ W_{l+1} (I for l = L), B_l = W_{l−1} ⋯ W_1 (I for l = 1) and the residual
E = Σyx − W Σxx (N_o × N_i), the gradient is

    ∂ℒ/∂W_l = −A_lᵀ E B_lᵀ,                                           (1)

and gradient flow (theory §1, generalised to depth L) is τ dW_l/dt = A_lᵀ E B_lᵀ. Every
W_{l+1}ᵀW_{l+1} − W_lW_lᵀ is conserved by the flow for any Σxx (theory §2).

Per-layer learning rates: ``rates=`` (ρ_l, shape (L,) or (..., L)) scales layer l's velocity
(flow) or step (descent) by ρ_l; the flow then conserves ρ_{l+1}⁻¹W_{l+1}ᵀW_{l+1} − ρ_l⁻¹W_lW_lᵀ
(theory §6.1).

Many runs of one shape advance together: every array may carry leading batch axes ``...``
(broadcast across the weights, Σyx and Σxx); all work is stacked-matrix ``@`` over a flat
batch axis, never a Python loop over runs. Inputs need not be whitened here (general Σxx);
the exact solver (:mod:`lrsweep.exact`) still requires Σxx = I.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from lrsweep._validate import (
    as_array,
    as_times,
    batch_shape,
    positive,
    positive_int,
    rates_array,
    weight_list,
)
from lrsweep._validate import sigma_xx as check_sigma_xx

__all__ = [
    "FLOW_ATOL",
    "FLOW_RTOL",
    "FlowInfo",
    "descent_steps",
    "gradient_descent",
    "gradient_flow",
    "loss_gradient",
]

#: Default relative tolerance of :func:`gradient_flow` (local error per step, per layer).
FLOW_RTOL = 1e-8
#: Default absolute tolerance of :func:`gradient_flow` (added to rtol · RMS(W_l)).
FLOW_ATOL = 1e-12


# --------------------------------------------------------------------------------------
# Validation and packing
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Net:
    """Shapes of a batch of depth-L networks flattened to a state of shape (B, n)."""

    widths: tuple[int, ...]  # N_0 … N_L
    batch: tuple[int, ...]  # broadcast batch shape

    @property
    def depth(self) -> int:
        return len(self.widths) - 1

    @cached_property
    def shapes(self) -> list[tuple[int, int]]:
        return [(self.widths[i + 1], self.widths[i]) for i in range(self.depth)]

    @cached_property
    def offsets(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum([p * q for p, q in self.shapes])])

    @property
    def size(self) -> int:
        return int(self.offsets[-1])

    @property
    def n_runs(self) -> int:
        return int(np.prod(self.batch, dtype=np.int64))

    def unpack(self, y: np.ndarray) -> list[np.ndarray]:
        """Views W_l of shape (..., N_l, N_{l−1}) of a flat state (..., n)."""
        off = self.offsets
        return [
            y[..., off[i] : off[i + 1]].reshape(*y.shape[:-1], *shp)
            for i, shp in enumerate(self.shapes)
        ]

    def pack(self, ws: Sequence[np.ndarray]) -> np.ndarray:
        lead = ws[0].shape[:-2]
        return np.concatenate([w.reshape(*lead, -1) for w in ws], axis=-1)


def _check_network(
    weights: object, sigma_yx: object, sigma_xx: object, rates: object = None
) -> tuple[_Net, list[np.ndarray], np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Validate W_1..W_L, Σyx, Σxx and per-layer rates; return shapes and arrays flattened
    to one batch axis (rates: (B, L) or None)."""
    ws = weight_list(weights, min_layers=2)
    widths = [ws[0].shape[-1]] + [w.shape[-2] for w in ws]
    syx = as_array(sigma_yx, "sigma_yx")
    n_in, n_out = widths[0], widths[-1]
    if syx.ndim < 2 or syx.shape[-2:] != (n_out, n_in):
        raise ValueError(
            f"`sigma_yx` must have shape (..., N_o, N_i)=(..., {n_out}, {n_in}) to match the "
            f"weights, got {syx.shape}"
        )
    leads = [w.shape[:-2] for w in ws] + [syx.shape[:-2]]
    sxx = check_sigma_xx(sigma_xx, n_in)
    if sxx is not None:
        leads.append(sxx.shape[:-2])
    rho = None if rates is None else rates_array(rates, len(ws))
    if rho is not None:
        leads.append(rho.shape[:-1])
    batch = batch_shape(leads, "weights`, `sigma_yx`, `sigma_xx` and `rates")
    net = _Net(tuple(widths), tuple(batch))
    B = net.n_runs

    def flat(x: np.ndarray) -> np.ndarray:
        return np.broadcast_to(x, (*batch, *x.shape[-2:])).reshape(B, *x.shape[-2:])

    ws = [flat(w) for w in ws]
    if rho is not None:
        rho = np.broadcast_to(rho, (*batch, len(ws))).reshape(B, len(ws))
    return net, ws, np.ascontiguousarray(flat(syx)), None if sxx is None else flat(sxx), rho


def _rate_vector(net: _Net, rho: np.ndarray) -> np.ndarray:
    """ρ_l repeated over the entries of W_l: the diagonal of diag(ρ) on flat states, (B, n)."""
    sizes = np.diff(net.offsets)
    return np.repeat(rho, sizes, axis=1)


# --------------------------------------------------------------------------------------
# Gradient (eq. 1) and its Jacobian
# --------------------------------------------------------------------------------------


def _T(x: np.ndarray) -> np.ndarray:
    return np.swapaxes(x, -1, -2)


def _descent_direction(
    ws: Sequence[np.ndarray], syx: np.ndarray, sxx: np.ndarray | None
) -> list[np.ndarray]:
    """−∂ℒ/∂W_l = A_lᵀ E B_lᵀ for every layer (eq. 1), batched: ws[l] (B, N_l, N_{l−1})."""
    L = len(ws)
    prefix = [ws[0]]  # prefix[l] = W_{l+1} ⋯ W_1 (0-based), i.e. B_{l+2}
    for w in ws[1:-1]:
        prefix.append(w @ prefix[-1])
    W = ws[-1] @ prefix[-1]
    E = syx - (W if sxx is None else W @ sxx)
    out: list[np.ndarray] = [np.empty(0)] * L
    D = E  # D = A_lᵀ E
    for l in range(L - 1, 0, -1):  # noqa: E741
        out[l] = D @ _T(prefix[l - 1])
        D = _T(ws[l]) @ D
    out[0] = D
    return out


def _jacobian(ws: Sequence[np.ndarray], syx: np.ndarray, sxx: np.ndarray | None) -> np.ndarray:
    """Jacobian of the flattened flow field, J = −∇²ℒ, shape (B, n, n) (row-major vec).

    Block (l, m) is ∂(A_lᵀ E B_lᵀ)/∂W_m, a sum of three terms (0-based layers, W_m of
    shape (N_{m+1}, N_m)):

    - through E, for all l, m:          −(A_lᵀA_m)[i,a] (B_m Σxx B_lᵀ)[b,j];
    - through A_l, m > l, C = W_{m−1}⋯W_{l+1}:   C[b,i] (A_mᵀ E B_lᵀ)[a,j];
    - through B_l, m < l, C = W_{l−1}⋯W_{m+1}:   (A_lᵀ E B_mᵀ)[i,b] C[j,a];

    for entry ((i,j) of W_l, (a,b) of W_m). J is symmetric; it is symmetrised on return.
    """
    L = len(ws)
    B = ws[0].shape[0]
    widths = [ws[0].shape[-1]] + [w.shape[-2] for w in ws]
    memo: dict[tuple[int, int], np.ndarray] = {}

    def chain(i: int, j: int) -> np.ndarray:
        """W_j ⋯ W_i (0-based, inclusive); identity of size N_i when j = i − 1."""
        if j < i:
            return np.broadcast_to(np.eye(widths[i]), (B, widths[i], widths[i]))
        if (i, j) not in memo:
            memo[(i, j)] = ws[i] if j == i else ws[j] @ chain(i, j - 1)
        return memo[(i, j)]

    A = [chain(l + 1, L - 1) for l in range(L)]  # noqa: E741
    Bm = [chain(0, l - 1) for l in range(L)]  # noqa: E741
    W = chain(0, L - 1)
    E = syx - (W if sxx is None else W @ sxx)
    BS = Bm if sxx is None else [b @ sxx for b in Bm]  # B_m Σxx
    sizes = [widths[l + 1] * widths[l] for l in range(L)]  # noqa: E741
    off = np.concatenate([[0], np.cumsum(sizes)])
    J = np.empty((B, off[-1], off[-1]))
    for l in range(L):  # noqa: E741
        for m in range(l, L):
            blk = -np.einsum("...ia,...bj->...ijab", _T(A[l]) @ A[m], BS[m] @ _T(Bm[l]))
            if m > l:
                C = chain(l + 1, m - 1)
                D = _T(A[m]) @ E @ _T(Bm[l])
                blk = blk + np.einsum("...bi,...aj->...ijab", C, D)
            blk = blk.reshape(B, sizes[l], sizes[m])
            J[:, off[l] : off[l + 1], off[m] : off[m + 1]] = blk
            if m > l:
                J[:, off[m] : off[m + 1], off[l] : off[l + 1]] = _T(blk)
    return 0.5 * (J + _T(J))


def loss_gradient(
    weights: Sequence[np.ndarray], sigma_yx: object, *, sigma_xx: object = None
) -> list[np.ndarray]:
    """Gradient of ℒ with respect to every layer, ∂ℒ/∂W_l = −A_lᵀ (Σyx − WΣxx) B_lᵀ (eq. 1).

    Parameters
    ----------
    weights : sequence of ndarray
        W_1 … W_L (input side first), W_l of shape (..., N_l, N_{l−1}).
    sigma_yx : ndarray, shape (..., N_o, N_i)
    sigma_xx : ndarray, shape (..., N_i, N_i), optional
        Input correlation XXᵀ/P; default I (whitened inputs).

    Returns
    -------
    list of ndarray, length L
        ∂ℒ/∂W_l of shape (*batch, N_l, N_{l−1}), batch = the broadcast leading axes.

    Examples
    --------
    >>> W1, W2 = np.eye(2), 2 * np.eye(2)
    >>> [float(g[0, 0]) for g in loss_gradient([W1, W2], 3 * np.eye(2))]
    [-2.0, -1.0]
    """
    net, ws, syx, sxx, _ = _check_network(weights, sigma_yx, sigma_xx)
    return [
        -g.reshape(*net.batch, *shp)
        for g, shp in zip(_descent_direction(ws, syx, sxx), net.shapes, strict=True)
    ]


# --------------------------------------------------------------------------------------
# Gradient descent
# --------------------------------------------------------------------------------------


def descent_steps(t: object, lr: float) -> np.ndarray:
    """Gradient-descent step numbers k = round(t/η) for times ``t`` in units of τ.

    Step k of gradient descent at learning rate η corresponds to t/τ = kη (theory §1);
    times that are not multiples of η are rounded to the nearest step, so the state
    reported for t is the one at time ``descent_steps(t, lr) * lr``.

    Examples
    --------
    >>> descent_steps([0.0, 0.1, 0.25], 0.1).tolist()
    [0, 1, 2]
    """
    t = as_times(t)
    lr = positive(lr, "lr")
    steps = np.rint(t / lr)
    if np.any(steps > 2**53):
        raise ValueError(f"`t`/`lr` must be at most 2**53 steps, got max t={t.max():g}, lr={lr:g}")
    return steps.astype(np.int64)


def gradient_descent(
    weights: Sequence[np.ndarray],
    sigma_yx: object,
    t: object,
    lr: float,
    *,
    sigma_xx: object = None,
    rates: object = None,
) -> list[np.ndarray]:
    """Full-batch gradient descent on ℒ for a batch of depth-L linear networks.

    W_l ← W_l + η ρ_l A_lᵀ (Σyx − WΣxx) B_lᵀ for all layers at once (eq. 1; ρ_l = 1 unless
    ``rates`` are given), step k at time t/τ = kη (theory §1). Every run of the batch
    advances in the same stacked ``@`` operations (about 3L batched matrix products per step).
    With per-layer rates, layer l takes steps η_l = η·ρ_l; it is the Euler scheme of the
    flow of :func:`gradient_flow` with the same ``rates`` (theory §6.1).

    Parameters
    ----------
    weights : sequence of ndarray
        Initial W_1 … W_L (input side first), W_l of shape (..., N_l, N_{l−1}); leading
        axes ``...`` (any number, broadcast together with those of Σyx and Σxx) index runs.
    sigma_yx : ndarray, shape (..., N_o, N_i)
        Σyx = YXᵀ/P.
    t : array_like, shape (n_t,)
        Times in units of τ (any order, repeats allowed). Each is rounded to the nearest
        step, k = round(t/η) (:func:`descent_steps`).
    lr : float
        Learning rate η > 0 (τ = 1/η).
    sigma_xx : ndarray, shape (..., N_i, N_i), optional
        Σxx = XXᵀ/P; default I (whitened inputs; then no Σxx product is formed).
    rates : array_like, shape (L,) or (..., L), optional
        Per-layer learning-rate multipliers ρ_l > 0 (layer l steps with η·ρ_l); leading axes
        broadcast with the batch. Default: all 1 (the same arithmetic as without rates).

    Returns
    -------
    list of ndarray, length L
        W_l after round(t/η) steps, shape (n_t, *batch, N_l, N_{l−1}). A run that
        diverges (η too large for its curvature) yields non-finite entries; no warning.

    Examples
    --------
    >>> ws = gradient_descent([np.eye(2), np.eye(2)], 2 * np.eye(2), [0.0, 10.0], lr=0.01)
    >>> bool(np.allclose(ws[1][-1] @ ws[0][-1], 2 * np.eye(2), atol=1e-4))
    True
    """
    net, ws, syx, sxx, rho = _check_network(weights, sigma_yx, sigma_xx, rates)
    steps = descent_steps(t, lr)
    lr = float(lr)
    # per-layer steps η·ρ_l, shaped to broadcast over (B, N_l, N_{l−1}); plain η without rates
    etas = [lr] * net.depth if rho is None else list((lr * rho.T)[:, :, None, None])
    order = np.argsort(steps, kind="stable")
    outs = [np.empty((steps.size, net.n_runs, *shp)) for shp in net.shapes]
    ws = [np.array(w, dtype=np.float64, order="C") for w in ws]  # private copies, updated in place
    k = 0
    with np.errstate(over="ignore", invalid="ignore"):
        for step in range(int(steps.max()) + 1):
            while k < steps.size and steps[order[k]] == step:
                for out, w in zip(outs, ws, strict=True):
                    out[order[k]] = w
                k += 1
            if k == steps.size:
                break
            for w, g, eta in zip(ws, _descent_direction(ws, syx, sxx), etas, strict=True):
                w += eta * g
    return [
        out.reshape(steps.size, *net.batch, *shp) for out, shp in zip(outs, net.shapes, strict=True)
    ]


# --------------------------------------------------------------------------------------
# Gradient flow: batched, adaptive, L-stable Rosenbrock method (RODAS4)
# --------------------------------------------------------------------------------------

# RODAS4 of Hairer & Wanner (1996), §IV.7, in the form with G = I/(hγ) − J:
#   G k_i = f(y + Σ_{j<i} a_ij k_j) + Σ_{j<i} (c_ij/h) k_j,  i = 1..6,
#   a_6j = a_5j, a_65 = 1 (stiffly accurate),  y_new = y + Σ a_5j k_j + k_5 + k_6,
# with k_6 the embedded error estimate (order 4 solution, order 3 embedded).
_GAMMA = 0.25
_RODAS_A = (
    (),
    (1.544,),
    (0.9466785280815826, 0.2557011698983284),
    (3.314825187068521, 2.896124015972201, 0.9986419139977817),
    (1.221224509226641, 6.019134481288629, 12.53708332932087, -0.6878860361058950),
)
_RODAS_C = (
    (),
    (-5.6688,),
    (-2.430093356833875, -0.2063599157091915),
    (-0.1073529058151375, -9.594562251023355, -20.47028614809616),
    (7.496443313967647, -10.24680431464352, -33.99990352819905, 11.70890893206160),
    (
        8.083246795921522,
        -7.981132988064893,
        -31.52159432874371,
        16.31930543123136,
        -6.058818238834054,
    ),
)
# Step-size control (Hairer, Nørsett & Wanner 1993, §II.4; Hairer & Wanner 1996, §IV.8):
# h_new = h · clip(SAFETY · err^(−1/4), FAC_MIN, FAC_MAX), exponent 1/(q+1) for the embedded
# order q = 3; the safety factor and bounds are the usual ones for Rosenbrock codes.
_SAFETY, _FAC_MIN, _FAC_MAX = 0.9, 0.2, 6.0
#: A rejected step is retried with at most half its size, so 50 retries shrink h by ≥ 2⁵⁰ ≈ 1e15
#: (from any first guess down to the underflow floor below) before the Jacobian is refreshed.
_MAX_RETRIES = 50
#: Steps below this fraction of max(t, 1) no longer change t in float64 (ε·1e2): the run is
#: too stiff or diverges (status −2).
_H_MIN_REL = 1e-14
# First step (Hairer, Nørsett & Wanner 1993, §II.4, starting step size): 1 % of ‖y‖/‖f‖ in
# the error norm, or a fixed small step when y or f is at the level of the tolerances.
_H0_FRACTION, _H0_NORM_FLOOR, _H0_FALLBACK = 0.01, 1e-5, 1e-6

_STATUS_MESSAGES = {
    0: "success: every requested time reached",
    -1: "max_steps reached before the last requested time",
    -2: "step size underflow or non-finite state (the run diverged or is too stiff)",
}


# Dormand–Prince 5(4) (Hairer, Nørsett & Wanner 1993, §II.5, Table 5.2): explicit, order 5
# with an embedded order-4 error estimate; cheap per step, but its stable steps are bounded by
# ≈ 3.3/ρ(J), so it pays ∝ stiffness × t (``method='dopri5'``; ``'auto'`` falls back to RODAS4).
_DP_A = (
    (),
    (1 / 5,),
    (3 / 40, 9 / 40),
    (44 / 45, -56 / 15, 32 / 9),
    (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729),
    (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656),
)
_DP_B = (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84)
#: b − b̂ (order 5 minus embedded order 4), the last entry for the stage at the new point.
_DP_E = (71 / 57600, 0.0, -71 / 16695, 71 / 1920, -17253 / 339200, 22 / 525, -1 / 40)
#: Step attempts per run that ``method='auto'`` grants the explicit stepper before solving
#: the run again with RODAS4: a non-stiff two-layer Gaussian-init flow to t/τ = 30 takes
#: ≈ 100–300 (measured, benchmarks/bench_standard.py); a stiff one (|λ|·t ≫ 10³) far more.
EXPLICIT_BUDGET = 1000
#: ``method='auto'`` sends a run straight to RODAS4 when its initial stiffness estimate
#: ρ̂·t_max (:func:`_stiffness`) exceeds this: Dormand–Prince's stable steps are ≲ 3.3/ρ, so
#: such a run would need more than ≈ 600 steps however smooth its solution.
EXPLICIT_STIFFNESS = 2000.0
#: Dormand–Prince runs at these fractions of ``rtol`` and ``atol``: at equal tolerances its
#: global error is ≈ 2.5× RODAS4's (measured on aligned deep modes); at a tenth it is below
#: it, for ≈ 1.6× the steps (the step size scales as tolerance^(1/5)).
DOPRI_TOL_FACTOR = 0.1
#: Flow integrators (``method`` of :func:`gradient_flow`).
FLOW_METHODS = ("auto", "rodas4", "dopri5")


@dataclass(frozen=True)
class FlowInfo:
    """Diagnostics of :func:`gradient_flow` (returned with ``full_output=True``).

    Attributes
    ----------
    n_steps : ndarray of int, shape (*batch,)
        Accepted steps per run.
    n_rejected : ndarray of int, shape (*batch,)
        Rejected step attempts per run (each costs as much as an accepted step).
    status : ndarray of int, shape (*batch,)
        0 success, −1 ``max_steps`` reached, −2 step-size underflow / non-finite state.
        Outputs of a failed run are NaN from the failure on.
    message : str
        Summary (status counts).
    rtol, atol : float
        Tolerances used.
    stiff : ndarray of bool, shape (*batch,), optional
        ``method='auto'``: runs solved by RODAS4 after the explicit stepper's budget ran out.
    """

    n_steps: np.ndarray
    n_rejected: np.ndarray
    status: np.ndarray
    message: str
    rtol: float
    atol: float
    stiff: np.ndarray | None = None


def _rodas_step(
    y: np.ndarray,
    h: np.ndarray,
    f0: np.ndarray,
    evals: np.ndarray,
    evecs: np.ndarray,
    rhs,
    root: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """One RODAS4 step for every run; y (b, n), h (b,).

    Without ``root``, J = Q diag(evals) Qᵀ per run. With per-layer rates the Jacobian is
    diag(ρ)·J, and Q diag(evals) Qᵀ is the symmetric S J S with S = diag(root), root = √ρ
    (flat, (b, n)): I/(hγ) − diag(ρ)J = S (I/(hγ) − SJS) S⁻¹, so G⁻¹r = S Q diag(·) Qᵀ S⁻¹ r.
    """
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        inv_den = 1.0 / (1.0 / (_GAMMA * h)[:, None] - evals)  # eigenvalues of G⁻¹
        Qt = _T(evecs)

        def solve(r: np.ndarray) -> np.ndarray:
            if root is not None:
                r = r / root
            k = (evecs @ (inv_den * (Qt @ r[..., None])[..., 0])[..., None])[..., 0]
            return k if root is None else root * k

        inv_h = (1.0 / h)[:, None]
        ks = [solve(f0)]
        for i in range(1, 6):
            a = _RODAS_A[min(i, 4)]
            yi = y + sum(aij * kj for aij, kj in zip(a, ks, strict=False))
            if i == 5:
                yi = yi + ks[4]
            ri = rhs(yi) + inv_h * sum(cij * kj for cij, kj in zip(_RODAS_C[i], ks, strict=True))
            ks.append(solve(ri))
        return yi + ks[5], ks[5]


def _error_norm(
    net: _Net, err: np.ndarray, y: np.ndarray, y_new: np.ndarray, rtol: float, atol: float
) -> np.ndarray:
    """RMS of err / (atol + rtol · max(RMS(W_l), RMS(W_l_new))), scales per layer; (b,)."""
    off = net.offsets
    total = np.zeros(err.shape[0])
    for i in range(net.depth):
        sl = slice(off[i], off[i + 1])
        size = np.maximum(
            np.sqrt(np.mean(y[:, sl] ** 2, axis=1)), np.sqrt(np.mean(y_new[:, sl] ** 2, axis=1))
        )
        sc = atol + rtol * size
        total += np.sum((err[:, sl] / sc[:, None]) ** 2, axis=1)
    with np.errstate(invalid="ignore"):
        return np.sqrt(total / net.size)


def gradient_flow(
    weights: Sequence[np.ndarray],
    sigma_yx: object,
    t: object,
    tau: float = 1.0,
    sigma_xx: object = None,
    *,
    rtol: float = FLOW_RTOL,
    atol: float = FLOW_ATOL,
    max_steps: int = 100_000,
    full_output: bool = False,
    rates: object = None,
    method: str = "auto",
) -> list[np.ndarray] | tuple[list[np.ndarray], FlowInfo]:
    """Gradient flow τ dW_l/dt = ρ_l A_lᵀ (Σyx − WΣxx) B_lᵀ for a batch of depth-L linear nets.

    The flow (eq. 1) is stiff: its Jacobian −∇²ℒ has eigenvalues up to the largest NTK
    eigenvalue, ≈ |λ| for depth 2 and ≈ (L−1)!·|λ|^{L−1} for a λ-balanced depth-L net,
    so explicit solvers pay ∝ |λ|^{L−1}·t. This integrates it with RODAS4, an L-stable
    Rosenbrock method of order 4 (embedded order 3; Hairer & Wanner 1996, §IV.7), with the
    analytic Jacobian and one symmetric eigendecomposition J = QΛQᵀ per run and step
    (batched ``eigh``; J is symmetric as a Hessian), so the stage solves
    (I/(hγ) − J)k = r are orthogonal transforms, accurate however stiff the problem. Each
    run has its own adaptive step size, and all runs advance together in stacked arrays.
    Steps are chosen so that every requested time is hit exactly (no interpolation). Once
    the fast (lazy) modes have relaxed, steps grow geometrically, so the number of steps is
    ~independent of |λ|.

    Tolerance: each step's local error estimate, per layer, is kept below
    ``atol + rtol · RMS(W_l)`` in the RMS norm (defaults :data:`FLOW_RTOL` = 1e-8,
    :data:`FLOW_ATOL` = 1e-12). Measured global error at the defaults: ≈ 1e-9 relative
    against the exact depth-2 solution for t/τ ≤ 100 and |λ| ≤ 1e5 (tested ≤ 1e-7), and a
    drift of the conserved W_{l+1}ᵀW_{l+1} − W_lW_lᵀ ≲ 1e-9 of ‖W_{l+1}‖² + ‖W_l‖² (tested
    ≤ 1e-8). Steps for t/τ ∈ [0, 100] from a λ-balanced init: ≈ 130–200 whatever |λ|
    (tested ≤ 250 at |λ| = 1e3 for depth 2–4). Limit: float64 resolves the slow dynamics
    only while the stiffness (L−1)!·|λ|^{L−1} ≲ 1e13 (e.g. depth 4 fails at |λ| = 1e5 with
    status −2).

    Per-layer learning rates (``rates``, ρ_l > 0; default all 1): layer l moves at ρ_l/τ,
    the flow of gradient descent with steps η_l = ηρ_l (theory §6.1). Its Jacobian diag(ρ)·J
    is not symmetric, but in the variables A_l = W_l/√ρ_l it is S J S with S = diag(√ρ)
    (symmetric), so the stage solves use ``eigh`` of SJS and the similarity transform by S;
    states, error control and outputs stay in the W_l. The flow then conserves
    ρ_{l+1}⁻¹W_{l+1}ᵀW_{l+1} − ρ_l⁻¹W_lW_lᵀ instead (theory §6.1). Without ``rates`` the
    arithmetic is exactly that of the unit-rate flow.

    Cost per step and run: one Jacobian and ``eigh`` of size n = Σ_l N_l N_{l−1} (∝ n³)
    and six gradient evaluations, so flows suit small and moderate nets (n ≲ 300); use
    :func:`gradient_descent` for wide ones.

    **Methods.** ``'rodas4'`` is the above for every run. Many runs are not stiff (Gaussian
    inits at moderate scale: ρ(J)·t ≲ 10³), and there an explicit method is far cheaper per
    step (no Jacobian, no ``eigh``): ``'dopri5'`` is Dormand–Prince 5(4) (Hairer, Nørsett &
    Wanner 1993, §II.5) with the same error norm at a tenth of the tolerances
    (:data:`DOPRI_TOL_FACTOR`), per-run steps and exact output times.
    ``'auto'`` (default) runs every run with ``'dopri5'`` for at most
    :data:`EXPLICIT_BUDGET` step attempts and solves the runs that exhaust it (the stiff
    ones), or fail, again from the start with ``'rodas4'``. Both methods meet the same local
    tolerances; measured against the exact depth-2 solution their global errors are alike
    (≈ 1e-9 relative). Non-stiff 4-16-4 Gaussian inits: ``'auto'`` ≈ 450× faster than
    ``'rodas4'`` (benchmarks/bench_standard.py). Pin BLAS to one thread
    (``OPENBLAS_NUM_THREADS=1``) when running many processes: threaded ``eigh`` on small
    matrices is several times slower.

    Parameters
    ----------
    weights : sequence of ndarray
        Initial W_1 … W_L (input side first), W_l of shape (..., N_l, N_{l−1}); leading
        axes ``...`` (broadcast with those of Σyx and Σxx) index runs.
    sigma_yx : ndarray, shape (..., N_o, N_i)
        Σyx = YXᵀ/P.
    t : array_like, shape (n_t,)
        Times in units of τ (any order, repeats allowed; t = 0 returns the initial state).
        Gradient-descent step k at learning rate η corresponds to t/τ = kη.
    tau : float
        Time constant τ = 1/η > 0.
    sigma_xx : ndarray, shape (..., N_i, N_i), optional
        Σxx = XXᵀ/P (symmetric PSD); default I (whitened inputs).
    rtol, atol : float
        Local error tolerances (see above).
    max_steps : int
        Maximum accepted steps per run.
    method : {'auto', 'rodas4', 'dopri5'}
        Integrator (see Methods).
    full_output : bool
        Also return a :class:`FlowInfo` with step counts and per-run status.
    rates : array_like, shape (L,) or (..., L), optional
        Per-layer learning-rate multipliers ρ_l > 0 (leading axes broadcast with the batch).

    Returns
    -------
    weights_t : list of ndarray, length L
        W_l(t), shape (n_t, *batch, N_l, N_{l−1}). A run that fails (status ≠ 0, reported
        in a RuntimeWarning) has NaN outputs from the failure on; the others are unaffected.
    info : FlowInfo
        Only if ``full_output``.

    References
    ----------
    E. Hairer, G. Wanner, Solving Ordinary Differential Equations II, 2nd ed., Springer
    1996, §IV.7 (RODAS).

    Examples
    --------
    >>> ws = gradient_flow([np.eye(2), np.eye(2)], 2 * np.eye(2), [0.0, 20.0])
    >>> bool(np.allclose(ws[1][-1] @ ws[0][-1], 2 * np.eye(2)))
    True
    """
    net, ws, syx, sxx, rho = _check_network(weights, sigma_yx, sigma_xx, rates)
    s_out = as_times(t) / positive(tau, "tau")
    rtol = positive(rtol, "rtol")
    atol = positive(atol, "atol")
    if rtol < 1e-14:
        raise ValueError(f"`rtol` must be >= 1e-14 (float64 round-off), got {rtol:g}")
    max_steps = positive_int(max_steps, "max_steps")
    if method not in FLOW_METHODS:
        raise ValueError(f"`method` must be one of {list(FLOW_METHODS)}, got {method!r}")

    B, n_t = net.n_runs, s_out.size
    order = np.argsort(s_out, kind="stable")
    y0 = net.pack(ws).copy()
    rate_vec = None if rho is None else _rate_vector(net, rho)
    args = (net, syx, sxx, rtol, atol, rate_vec)
    explicit = (net, syx, sxx, rtol * DOPRI_TOL_FACTOR, atol * DOPRI_TOL_FACTOR, rate_vec)
    stiff = None
    if method == "rodas4":
        run = _integrate(_FlowRuns(y0, s_out[order]), _advance, max_steps, *args)
    elif method == "dopri5":
        run = _integrate(_FlowRuns(y0, s_out[order]), _advance_dopri, max_steps, *explicit)
    else:
        budget = min(EXPLICIT_BUDGET, max_steps)
        first = _FlowRuns(y0.copy(), s_out[order])  # the runs' states move: keep y0
        rho_t = _stiffness(ws, syx, rho) * float(np.max(s_out, initial=0.0))
        first.status[~(rho_t <= EXPLICIT_STIFFNESS)] = -1  # stiff from the start (or NaN)
        run = _integrate(first, _advance_dopri, budget, *explicit, attempts=True)
        stiff = run.status != 0
        if np.any(stiff):
            idx = np.flatnonzero(stiff)
            sub = _subset(args, idx)
            redo = _integrate(_FlowRuns(y0[idx], s_out[order]), _advance, max_steps, *sub)
            run.adopt(idx, redo)
    status, out = run.status, run.out
    failed = status != 0
    if np.any(failed):
        warnings.warn(
            f"gradient_flow: {int(failed.sum())} of {B} runs failed "
            f"({_summary(status)}); their outputs are NaN from the failure on",
            RuntimeWarning,
            stacklevel=2,
        )
    unsorted = np.empty_like(out)
    unsorted[order] = out
    result = [
        w.reshape(n_t, *net.batch, *shp)
        for w, shp in zip(net.unpack(unsorted), net.shapes, strict=True)
    ]
    if not full_output:
        return result
    info = FlowInfo(
        n_steps=run.n_steps.reshape(net.batch),
        n_rejected=run.n_rej.reshape(net.batch),
        status=status.reshape(net.batch),
        message=_summary(status),
        rtol=rtol,
        atol=atol,
        stiff=None if stiff is None else stiff.reshape(net.batch),
    )
    return result, info


def _stiffness(ws: list[np.ndarray], syx: np.ndarray, rho: np.ndarray | None) -> np.ndarray:
    """Estimate (B,) of the flow Jacobian's spectral radius at the init: the Gauss–Newton
    part Σ_l ρ_l ∏_{j≠l} ‖W_j‖₂² (the NTK's largest eigenvalue is at most that) plus
    max ρ_l · (‖Σyx‖₂ + ∏_j ‖W_j‖₂) · ∏ of the other norms for the residual part."""
    norms = np.stack([np.linalg.norm(w.reshape(-1, *w.shape[-2:]), 2, axis=(-2, -1)) for w in ws])
    L = len(ws)
    rates = (
        np.ones((L, norms.shape[1]))
        if rho is None
        else np.broadcast_to(np.asarray(rho).reshape(-1, L).T, (L, norms.shape[1]))
    )
    sq = norms**2
    total = np.prod(sq, axis=0)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        gauss_newton = sum(rates[l] * np.prod(np.delete(sq, l, axis=0), axis=0) for l in range(L))
        task = np.linalg.norm(np.reshape(syx, (-1, *syx.shape[-2:])), 2, axis=(-2, -1))
        others = np.prod(norms, axis=0) / np.maximum(norms.max(axis=0), 1e-300) ** 2
        residual = rates.max(axis=0) * (task + np.sqrt(total)) * (others if L > 2 else 1.0)
    return gauss_newton + residual


def _integrate(run, advance, max_steps: int, *args, attempts: bool = False):
    """Advance every run with ``advance`` until it has reached its last output time, failed,
    or used ``max_steps`` accepted steps (or step attempts, if ``attempts``): status −1."""
    n_t = run.s_sorted.size
    with np.errstate(over="ignore", invalid="ignore"):
        while True:
            idx = np.flatnonzero((run.k_next < n_t) & (run.status == 0))
            if idx.size == 0:
                break
            advance(run, idx, *args)
            used = run.n_steps + run.n_rej if attempts else run.n_steps
            over = (used >= max_steps) & (run.k_next < n_t) & (run.status == 0)
            run.status[over] = -1
    return run


def _subset(args: tuple, idx: np.ndarray) -> tuple:
    """The integration arguments (net, Σyx, Σxx, rtol, atol, rates) of the runs ``idx``."""
    net, syx, sxx, rtol, atol, rate_vec = args
    sub = _Net(net.widths, (idx.size,))
    return (
        sub,
        syx[idx],
        None if sxx is None else sxx[idx],
        rtol,
        atol,
        None if rate_vec is None else rate_vec[idx],
    )


class _FlowRuns:
    """Per-run state of :func:`gradient_flow`: flat weights, time, step size, counters, outputs.

    ``y`` (B, n) is every run's current state at time ``t`` (B,); ``out`` (n_t, B, n) is
    filled at the (sorted) output times ``s_sorted`` as runs reach them; ``k_next`` indexes
    the next output of each run.
    """

    def __init__(self, y0: np.ndarray, s_sorted: np.ndarray) -> None:
        B = y0.shape[0]
        self.y = y0
        self.s_sorted = s_sorted
        self.out = np.full((s_sorted.size, B, y0.shape[1]), np.nan)
        self.t = np.zeros(B)
        self.k_next = np.zeros(B, dtype=np.int64)
        self.h = np.full(B, np.nan)  # NaN until the first step is chosen
        self.n_steps = np.zeros(B, dtype=np.int64)
        self.n_rej = np.zeros(B, dtype=np.int64)
        self.status = np.zeros(B, dtype=np.int64)
        self.record(np.arange(B))

    def adopt(self, idx: np.ndarray, other: _FlowRuns) -> None:
        """Take the results of the runs ``idx`` from ``other`` (which solved just those)."""
        self.out[:, idx] = other.out
        for name in ("y", "t", "k_next", "h", "n_steps", "n_rej", "status"):
            getattr(self, name)[idx] = getattr(other, name)

    def record(self, idx: np.ndarray) -> None:
        """Store the state of runs ``idx`` for every output time they have reached."""
        n_t = self.s_sorted.size
        while idx.size:
            idx = idx[(self.k_next[idx] < n_t)]
            idx = idx[self.s_sorted[np.minimum(self.k_next[idx], n_t - 1)] <= self.t[idx]]
            self.out[self.k_next[idx], idx] = self.y[idx]
            self.k_next[idx] += 1


def _initial_step(net: _Net, y: np.ndarray, f0: np.ndarray, rtol: float, atol: float) -> np.ndarray:
    """First step size of each run: _H0_FRACTION · ‖y‖/‖f‖ in the error norm."""
    d0 = _error_norm(net, y, y, y, rtol, atol)
    d1 = _error_norm(net, f0, y, y, rtol, atol)
    usable = (d0 > _H0_NORM_FLOOR) & (d1 > _H0_NORM_FLOOR)
    return np.where(usable, _H0_FRACTION * d0 / np.maximum(d1, 1e-300), _H0_FALLBACK)


def _step_factor(err: np.ndarray, order: int = 3) -> np.ndarray:
    """Factor for the next step size from the error estimate (≤ 1 accepted) of an embedded
    method of ``order`` (RODAS4: 3, Dormand–Prince: 4): SAFETY · err^(−1/(order+1))."""
    with np.errstate(divide="ignore"):
        return np.where(
            np.isfinite(err),
            np.clip(_SAFETY * np.maximum(err, 1e-16) ** (-1.0 / (order + 1)), _FAC_MIN, _FAC_MAX),
            _FAC_MIN,
        )


def _advance(
    run: _FlowRuns,
    idx: np.ndarray,
    net: _Net,
    syx: np.ndarray,
    sxx: np.ndarray | None,
    rtol: float,
    atol: float,
    rate_vec: np.ndarray | None = None,
) -> None:
    """One accepted RODAS4 step (or a failure) for each run in ``idx``.

    The Jacobian is formed and diagonalised once; rejected steps are retried with it at a
    smaller h (at most :data:`_MAX_RETRIES` times). Steps are clipped to hit the next output
    time exactly; such a shortened step does not shrink the step size that follows.
    """
    y = run.y[idx]
    syx_b = syx[idx]
    sxx_b = None if sxx is None else sxx[idx]
    rate_b = None if rate_vec is None else rate_vec[idx]
    root_b = None if rate_b is None else np.sqrt(rate_b)
    f0 = _flat_field(net, syx_b, sxx_b, rate_b)(y)
    J = _jacobian(net.unpack(y), syx_b, sxx_b)
    if root_b is not None:  # S J S, S = diag(√ρ): the symmetric form of diag(ρ)·J
        J = root_b[:, :, None] * J * root_b[:, None, :]
    finite = np.all(np.isfinite(J), axis=(1, 2)) & np.all(np.isfinite(f0), axis=1)
    if not np.all(finite):
        run.status[idx[~finite]] = -2
        return
    evals, evecs = np.linalg.eigh(J)
    t_target = run.s_sorted[run.k_next[idx]]
    span = t_target - run.t[idx]
    h_b = run.h[idx]
    first = np.isnan(h_b)
    if np.any(first):
        h_b[first] = _initial_step(net, y[first], f0[first], rtol, atol)
    pending = np.ones(idx.size, dtype=bool)
    for _ in range(_MAX_RETRIES):
        p = np.flatnonzero(pending)
        if p.size == 0:
            break
        clipped = h_b[p] >= span[p]
        h_try = np.where(clipped, span[p], h_b[p])
        sxx_p = None if sxx_b is None else sxx_b[p]
        rhs = _flat_field(net, syx_b[p], sxx_p, None if rate_b is None else rate_b[p])
        y_new, err_vec = _rodas_step(
            y[p], h_try, f0[p], evals[p], evecs[p], rhs, None if root_b is None else root_b[p]
        )
        err = _error_norm(net, err_vec, y[p], y_new, rtol, atol)
        ok = np.isfinite(err) & (err <= 1.0) & np.all(np.isfinite(y_new), axis=1)
        fac = _step_factor(err)
        acc, rej = p[ok], p[~ok]
        # accepted: advance and grow h (a step shortened to hit an output time keeps h)
        done = idx[acc]
        run.t[done] = np.where(clipped[ok], t_target[acc], run.t[done] + h_try[ok])
        run.y[done] = y_new[ok]
        run.n_steps[done] += 1
        h_b[acc] = np.where(
            clipped[ok], np.maximum(h_try[ok] * fac[ok], h_b[acc]), h_try[ok] * fac[ok]
        )
        pending[acc] = False
        # rejected: shrink h, retry
        run.n_rej[idx[rej]] += 1
        h_b[rej] = h_try[~ok] * np.minimum(fac[~ok], 0.5)
        tiny = h_b[rej] <= _H_MIN_REL * np.maximum(run.t[idx[rej]], 1.0)
        run.status[idx[rej[tiny]]] = -2
        pending[rej[tiny]] = False
    run.h[idx] = h_b
    run.record(idx[~pending])


def _advance_dopri(
    run: _FlowRuns,
    idx: np.ndarray,
    net: _Net,
    syx: np.ndarray,
    sxx: np.ndarray | None,
    rtol: float,
    atol: float,
    rate_vec: np.ndarray | None = None,
) -> None:
    """One Dormand–Prince 5(4) step attempt for each run in ``idx`` (accepted or rejected).

    Same conventions as :func:`_advance`: per-run h, steps clipped to hit the next output time
    (a shortened step does not shrink the next), error in :func:`_error_norm`.
    """
    y = run.y[idx]
    rhs = _flat_field(
        net,
        syx[idx],
        None if sxx is None else sxx[idx],
        None if rate_vec is None else rate_vec[idx],
    )
    ks = [rhs(y)]
    h = run.h[idx]
    first = np.isnan(h)
    if np.any(first):
        h[first] = _initial_step(net, y[first], ks[0][first], rtol, atol)
    t_target = run.s_sorted[run.k_next[idx]]
    clipped = h >= t_target - run.t[idx]
    h_try = np.where(clipped, t_target - run.t[idx], h)
    H = h_try[:, None]
    for a in _DP_A[1:]:
        ks.append(rhs(y + H * sum(aij * kj for aij, kj in zip(a, ks, strict=False))))
    y_new = y + H * sum(b * k for b, k in zip(_DP_B, ks, strict=True) if b)
    ks.append(rhs(y_new))
    err_vec = H * sum(e * k for e, k in zip(_DP_E, ks, strict=True) if e)
    err = _error_norm(net, err_vec, y, y_new, rtol, atol)
    ok = np.isfinite(err) & (err <= 1.0) & np.all(np.isfinite(y_new), axis=1)
    fac = _step_factor(err, order=4)
    done = idx[ok]
    run.t[done] = np.where(clipped[ok], t_target[ok], run.t[done] + h_try[ok])
    run.y[done] = y_new[ok]
    run.n_steps[done] += 1
    h_next = np.where(ok & clipped, np.maximum(h_try * fac, h), h_try * fac)
    h_next = np.where(ok, h_next, h_try * np.minimum(fac, 0.5))
    run.n_rej[idx[~ok]] += 1
    tiny = ~ok & (h_next <= _H_MIN_REL * np.maximum(run.t[idx], 1.0))
    run.status[idx[tiny]] = -2
    run.h[idx] = h_next
    run.record(done)


def _flat_field(
    net: _Net, syx: np.ndarray, sxx: np.ndarray | None, rate_vec: np.ndarray | None = None
):
    """The flow field y ↦ pack(ρ_l A_lᵀ E B_lᵀ) on flat states y (b, n) for runs with these
    Σ (ρ_l = 1 without ``rate_vec``, the flat (b, n) rates)."""

    def rhs(y: np.ndarray) -> np.ndarray:
        f = net.pack(_descent_direction(net.unpack(y), syx, sxx))
        return f if rate_vec is None else rate_vec * f

    return rhs


def _summary(status: np.ndarray) -> str:
    codes, counts = np.unique(status, return_counts=True)
    return "; ".join(
        f"{c} runs: {_STATUS_MESSAGES[int(s)]}" for s, c in zip(codes, counts, strict=True)
    )
