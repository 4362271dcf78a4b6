"""Independent ground truth: tight numerical integration of gradient flow on the weights.

Written from the definition of the dynamics only (theory.md §1):
τ dW_l/dt = −∂ℒ/∂W_l with ℒ = ½tr(W Σxx Wᵀ) − tr(W Σyxᵀ) + const, W = W_L⋯W_1,
so −∂ℒ/∂W_l = (W_L⋯W_{l+1})ᵀ (Σyx − W Σxx) (W_{l−1}⋯W_1)ᵀ.
It shares no code with lrsweep's closed forms. Radau (implicit, order 5) with an exact
Jacobian assembled column by column, so large |λ| (stiff) stays cheap. With per-layer learning
rates ρ_l (theory §6.1) the velocity of layer l is ρ_l·(−∂ℒ/∂W_l), and so is its Jacobian row.
"""

from __future__ import annotations

import numpy as np
from scipy.integrate import solve_ivp


def _chain(mats: list[np.ndarray], size: int) -> np.ndarray:
    out = np.eye(size)
    for m in mats:
        out = m @ out
    return out


def _velocity(weights: list[np.ndarray], sigma_yx: np.ndarray, sigma_xx: np.ndarray) -> list:
    n_in = weights[0].shape[1]
    W = _chain(weights, n_in)
    err = sigma_yx - W @ sigma_xx
    out = []
    for layer in range(len(weights)):
        after = _chain(weights[layer + 1 :], weights[layer].shape[0])
        before = _chain(weights[:layer], n_in)
        out.append(after.T @ err @ before.T)
    return out


def gradient_flow_reference(
    weights: list[np.ndarray],
    sigma_yx: np.ndarray,
    t: np.ndarray,
    *,
    sigma_xx: np.ndarray | None = None,
    rtol: float = 1e-12,
    rates: np.ndarray | None = None,
) -> list[np.ndarray]:
    """Weights at times ``t`` (units of τ): list of arrays (n_t, *W_l.shape).

    ``rates`` (length L): dW_l/dt = ρ_l·(−∂ℒ/∂W_l) instead of the unit-rate flow.
    """
    shapes = [w.shape for w in weights]
    sizes = [int(np.prod(s)) for s in shapes]
    splits = np.cumsum(sizes)[:-1]
    sigma_xx = np.eye(shapes[0][1]) if sigma_xx is None else sigma_xx
    rate_vec = np.repeat(np.ones(len(shapes)) if rates is None else np.asarray(rates), sizes)

    def unpack(y: np.ndarray) -> list[np.ndarray]:
        return [p.reshape(s) for p, s in zip(np.split(y, splits), shapes, strict=True)]

    def rhs(_t: float, y: np.ndarray) -> np.ndarray:
        v = np.concatenate([v.ravel() for v in _velocity(unpack(y), sigma_yx, sigma_xx)])
        return rate_vec * v

    def jac(_t: float, y: np.ndarray) -> np.ndarray:
        # the velocity is a polynomial in the weights: differentiate it exactly by
        # perturbing one entry symbolically (product rule over the layers)
        ws = unpack(y)
        cols = []
        for j in range(y.size):
            d = np.zeros(y.size)
            d[j] = 1.0
            dws = unpack(d)
            cols.append(_directional(ws, dws, sigma_yx, sigma_xx))
        return rate_vec[:, None] * np.stack(cols, axis=1)

    y0 = np.concatenate([w.ravel() for w in weights])
    scale = max(np.abs(y0).max(), 1e-300)
    sol = solve_ivp(
        rhs,
        (0.0, float(t[-1])),
        y0,
        method="Radau",
        t_eval=t,
        jac=jac,
        rtol=rtol,
        atol=rtol * 1e-3 * scale,
    )
    assert sol.success, sol.message
    per_time = [unpack(y) for y in sol.y.T]
    return [np.stack([ws[layer] for ws in per_time]) for layer in range(len(weights))]


def _directional(ws, dws, sigma_yx, sigma_xx) -> np.ndarray:
    """d/dε of the velocity at ws + ε·dws, at ε = 0 (exact, by the product rule)."""
    n_in = ws[0].shape[1]
    L = len(ws)

    def chain_d(lo: int, hi: int, size: int) -> tuple[np.ndarray, np.ndarray]:
        val, dval = np.eye(size), np.zeros((size, size))
        for k in range(lo, hi):
            dval = dws[k] @ val + ws[k] @ dval
            val = ws[k] @ val
        return val, dval

    W, dW = chain_d(0, L, n_in)
    err, derr = sigma_yx - W @ sigma_xx, -dW @ sigma_xx
    out = []
    for layer in range(L):
        a, da = chain_d(layer + 1, L, ws[layer].shape[0])
        b, db = chain_d(0, layer, n_in)
        v = da.T @ err @ b.T + a.T @ derr @ b.T + a.T @ err @ db.T
        out.append(v.ravel())
    return np.concatenate(out)


def qqt_reference(
    W1: np.ndarray, W2: np.ndarray, sigma_yx: np.ndarray, t: np.ndarray, **kwargs
) -> np.ndarray:
    """QQᵀ(t), Q = [W1ᵀ; W2], from the integrated weights: shape (n_t, n, n)."""
    w1, w2 = gradient_flow_reference([W1, W2], sigma_yx, t, **kwargs)
    Q = np.concatenate([np.swapaxes(w1, 1, 2), w2], axis=1)
    return Q @ np.swapaxes(Q, 1, 2)


def two_layer_flow_explicit(
    W1: np.ndarray,
    W2: np.ndarray,
    sigma_yx: np.ndarray,
    t: np.ndarray,
    *,
    method: str = "DOP853",
    rtol: float = 1e-10,
    atol: float = 1e-12,
) -> tuple[np.ndarray, np.ndarray]:
    """Two-layer unit-rate gradient flow from the definition (theory §1, whitened inputs)
    with an explicit ``solve_ivp`` method: no Jacobian, so wide nets stay cheap (stiff
    problems, large |λ|, want :func:`gradient_flow_reference`). Returns (n_t, *W_l.shape)."""
    n1 = W1.size

    def rhs(_t: float, y: np.ndarray) -> np.ndarray:
        a, b = y[:n1].reshape(W1.shape), y[n1:].reshape(W2.shape)
        E = sigma_yx - b @ a
        return np.concatenate([(b.T @ E).ravel(), (E @ a.T).ravel()])

    y0 = np.concatenate([W1.ravel(), W2.ravel()])
    sol = solve_ivp(
        rhs, (0.0, float(t[-1])), y0, method=method, t_eval=t, rtol=rtol, atol=atol
    )
    if not sol.success:
        raise RuntimeError(sol.message)
    return sol.y[:n1].T.reshape(-1, *W1.shape), sol.y[n1:].T.reshape(-1, *W2.shape)


def rel_err(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Relative Frobenius error per leading index: ‖a − b‖/‖b‖ over the last two axes."""
    return np.linalg.norm(a - b, axis=(-2, -1)) / np.linalg.norm(b, axis=(-2, -1))
