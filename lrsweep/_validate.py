"""Shared argument checks: coerce once, reject early, name the argument and the rule.

Every public function of lrsweep validates its inputs through these helpers before any
work starts, so a bad value produces one clear ``ValueError``/``TypeError`` that names
the argument, states the rule and shows the offending value.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: Relative tolerance for λ-balance: ‖W2ᵀW2 − W1W1ᵀ − λI‖_F ≤ tol · (‖W1‖_F² + ‖W2‖_F²).
BALANCE_RTOL = 1e-8
#: Relative tolerance of the symmetry check of Σxx: max|Σxx − Σxxᵀ| ≤ tol · max|Σxx|.
SYMMETRY_RTOL = 1e-10


def as_array(x: object, name: str, *, ndim: int | Sequence[int] | None = None) -> np.ndarray:
    """Return ``x`` as a finite float64 array, checking its number of dimensions.

    Raises
    ------
    TypeError
        If ``x`` cannot be converted to a float array.
    ValueError
        If ``x`` has the wrong number of dimensions or contains NaN/inf.
    """
    arr = as_float(x, name)
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if arr.ndim not in allowed:
            want = " or ".join(str(d) for d in allowed)
            raise ValueError(
                f"`{name}` must be {want}-dimensional, got shape {arr.shape} ({arr.ndim}-d)"
            )
    if not np.all(np.isfinite(arr)):
        raise_not_finite(arr, name)
    return arr


def as_float(x: object, name: str) -> np.ndarray:
    """``x`` as a float64 array (no copy if it is one), without :func:`as_array`'s checks."""
    try:
        return np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"`{name}` must be a real numeric array, got {type(x).__name__}") from exc


def raise_not_finite(arr: np.ndarray, name: str) -> None:
    """Raise :func:`as_array`'s error for an array ``arr`` with NaN or inf entries."""
    bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
    raise ValueError(f"`{name}` must be finite, but {bad} entries are NaN or inf")


def as_times(t: object, name: str = "t") -> np.ndarray:
    """Return times ``t`` (in units of τ) as a finite, non-negative 1-d float64 array."""
    arr = np.atleast_1d(as_array(t, name, ndim=(0, 1)))
    if arr.size == 0:
        raise ValueError(f"`{name}` must contain at least one time")
    if np.any(arr < 0):
        raise ValueError(
            f"`{name}` must be non-negative (times in units of tau), got min {arr.min()}"
        )
    return arr


def positive(value: float, name: str) -> float:
    """Return ``value`` as a float, raising if it is not finite and > 0."""
    v = float(value)
    if not np.isfinite(v) or v <= 0:
        raise ValueError(f"`{name}` must be a finite number > 0, got {value!r}")
    return v


def nonnegative(value: float, name: str) -> float:
    """Return ``value`` as a float, raising if it is not finite and ≥ 0."""
    v = float(value)
    if not np.isfinite(v) or v < 0:
        raise ValueError(f"`{name}` must be a finite number >= 0, got {value!r}")
    return v


def finite(value: float, name: str) -> float:
    """Return ``value`` as a float, raising if it is NaN or inf."""
    v = float(value)
    if not np.isfinite(v):
        raise ValueError(f"`{name}` must be finite, got {value!r}")
    return v


def positive_int(value: object, name: str) -> int:
    """Return ``value`` as an int ≥ 1 (bools and non-integral floats rejected)."""
    if isinstance(value, bool) or not float(value).is_integer():  # type: ignore[arg-type]
        raise ValueError(f"`{name}` must be a positive integer, got {value!r}")
    v = int(value)  # type: ignore[call-overload]
    if v < 1:
        raise ValueError(f"`{name}` must be a positive integer, got {value!r}")
    return v


def widths_list(widths: Sequence[int]) -> list[int]:
    """[N_i, N_1, …, N_o] as positive ints, at least 3 entries (depth L ≥ 2)."""
    if np.ndim(widths) != 1 or len(widths) < 3:
        raise ValueError(
            "`widths` must list [N_i, N_1, ..., N_o] with at least 3 entries (depth L >= 2), "
            f"got {widths!r}"
        )
    return [positive_int(w, "widths") for w in widths]


def rates_array(rates: object, depth: int) -> np.ndarray:
    """Per-layer learning-rate multipliers ρ_l: finite, > 0, shape (..., L)."""
    rho = as_array(rates, "rates")
    if rho.ndim < 1 or rho.shape[-1] != depth:
        raise ValueError(
            f"`rates` must have shape (L,) or (..., L) with L={depth} (one per layer), "
            f"got {rho.shape}"
        )
    if not np.all(np.isfinite(rho)) or np.any(rho <= 0):
        raise ValueError("`rates` must be finite and > 0")
    return rho


def batch_shape(shapes: Sequence[tuple[int, ...]], name: str) -> tuple[int, ...]:
    """The broadcast of leading batch shapes; raises naming the arguments if they clash."""
    try:
        return np.broadcast_shapes(*shapes)
    except ValueError:
        raise ValueError(
            f"the leading batch axes of `{name}` must broadcast against each other, "
            f"got batch shapes {list(shapes)}"
        ) from None


def weight_list(weights: object, name: str = "weights", *, min_layers: int = 1) -> list[np.ndarray]:
    """Check ``weights`` = [W_1, ..., W_L] (input side first), W_l of shape (..., N_l, N_{l−1}).

    Returns the layers as finite float64 arrays whose shapes chain and whose batch axes
    broadcast.
    """
    if isinstance(weights, np.ndarray) or not isinstance(weights, Sequence):
        raise TypeError(
            f"`{name}` must be a list [W_1, ..., W_L] of layer matrices (input side first), "
            f"got {type(weights).__name__}; wrap a single matrix as [W]"
        )
    if len(weights) == 0:
        raise ValueError(f"`{name}` must contain at least one layer matrix, got an empty list")
    if len(weights) < min_layers:
        raise ValueError(f"`{name}` must hold L >= {min_layers} layers, got {len(weights)}")
    ws: list[np.ndarray] = []
    for i, w in enumerate(weights):
        arr = as_array(w, f"{name}[{i}]")
        if arr.ndim < 2:
            raise ValueError(
                f"`{name}[{i}]` must have shape (..., N_out, N_in) (at least 2-d), "
                f"got shape {arr.shape}"
            )
        if ws and arr.shape[-1] != ws[-1].shape[-2]:
            raise ValueError(
                f"`{name}[{i}]` must have {ws[-1].shape[-2]} columns to follow `{name}[{i - 1}]` "
                f"of shape {ws[-1].shape}, got shape {arr.shape}"
            )
        ws.append(arr)
    batch_shape([w.shape[:-2] for w in ws], name)
    return ws


def sigma_xx(value: object, n_in: int) -> np.ndarray | None:
    """None (whitened inputs) or a symmetric Σxx of shape (..., N_i, N_i) as float64."""
    if value is None:
        return None
    s = as_array(value, "sigma_xx")
    if s.ndim < 2 or s.shape[-2:] != (n_in, n_in):
        raise ValueError(
            f"`sigma_xx` must have shape (..., N_i, N_i)=(..., {n_in}, {n_in}), got {s.shape}"
        )
    asym = float(np.max(np.abs(s - np.swapaxes(s, -1, -2)), initial=0.0))
    if asym > SYMMETRY_RTOL * max(float(np.max(np.abs(s), initial=0.0)), np.finfo(float).tiny):
        raise ValueError(
            f"`sigma_xx` must be symmetric (Sigma_xx = X X^T / P), but max |S - S^T| = {asym:.3g}"
        )
    return s


def check_admissible(lam: float, n_in: int, n_hidden: int, n_out: int) -> None:
    """Raise if a λ-balanced two-layer net of this shape cannot exist (theory §2).

    W2ᵀW2 − W1W1ᵀ = λI_{N_h} needs N_h ≤ N_o when λ > 0 (W2ᵀW2 has rank ≤ N_o and must be
    ≥ λI) and N_h ≤ N_i when λ < 0.
    """
    if lam > 0 and n_hidden > n_out:
        raise ValueError(
            f"`lam`={lam:g} > 0 needs n_hidden <= n_out (got n_hidden={n_hidden}, "
            f"n_out={n_out}); lower n_hidden or use lam <= 0"
        )
    if lam < 0 and n_hidden > n_in:
        raise ValueError(
            f"`lam`={lam:g} < 0 needs n_hidden <= n_in (got n_hidden={n_hidden}, "
            f"n_in={n_in}); lower n_hidden or use lam >= 0"
        )


def two_layer(
    W1: object, W2: object, sigma_yx: object, *, task_name: str = "sigma_yx"
) -> tuple[np.ndarray, ...]:
    """Check a two-layer net W1 (..., N_h, N_i), W2 (..., N_o, N_h) and its task Σyx
    (..., N_o, N_i): finite float64 arrays whose shapes match and batch axes broadcast."""
    W1 = as_array(W1, "W1")
    W2 = as_array(W2, "W2")
    sigma_yx = as_array(sigma_yx, task_name)
    for name, arr in (("W1", W1), ("W2", W2), (task_name, sigma_yx)):
        if arr.ndim < 2:
            raise ValueError(f"`{name}` must be at least 2-dimensional, got shape {arr.shape}")
    two_layer_shapes(W1, W2, sigma_yx, task_name=task_name)
    batch_shape([W1.shape[:-2], W2.shape[:-2], sigma_yx.shape[:-2]], f"W1`, `W2` and `{task_name}")
    return W1, W2, sigma_yx


def two_layer_shapes(
    W1: np.ndarray, W2: np.ndarray, sigma_yx: np.ndarray, *, task_name: str = "sigma_yx"
) -> tuple[int, int, int]:
    """Check W1 (..., N_h, N_i), W2 (..., N_o, N_h), Σyx (..., N_o, N_i); return (N_i, N_h, N_o)."""
    n_h, n_i = W1.shape[-2:]
    n_o, n_h2 = W2.shape[-2:]
    if n_h2 != n_h:
        raise ValueError(
            f"`W2` must have shape (..., N_o, N_h) with N_h={n_h} from `W1` "
            f"(N_h, N_i)={W1.shape[-2:]}, got W2 shape {W2.shape}"
        )
    if sigma_yx.shape[-2:] != (n_o, n_i):
        raise ValueError(
            f"`{task_name}` must have shape (..., N_o, N_i)=({n_o}, {n_i}) to match W1 and W2, "
            f"got {sigma_yx.shape}"
        )
    return n_i, n_h, n_o


def pair_size(w: np.ndarray, w_next: np.ndarray) -> np.ndarray:
    """‖W_l‖_F² + ‖W_{l+1}‖_F², shape (...): the scale of the pair's imbalance
    W_{l+1}ᵀW_{l+1} − W_lW_lᵀ, against which its errors are measured."""
    return np.sum(w**2, axis=(-2, -1)) + np.sum(w_next**2, axis=(-2, -1))


def balance(w: np.ndarray, w_next: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """λ of a layer pair and its distance from λ-balance (theory §2).

    With D = W_{l+1}ᵀW_{l+1} − W_lW_lᵀ (N_l × N_l): λ = tr(D)/N_l and the off-balance part
    ‖D − λI‖_F / (‖W_l‖_F² + ‖W_{l+1}‖_F²) (:func:`pair_size`; 0 for an exactly balanced pair).

    Parameters
    ----------
    w : ndarray, shape (..., N_l, N_{l−1})
    w_next : ndarray, shape (..., N_{l+1}, N_l)

    Returns
    -------
    lam, off_balance : ndarray, shape (...)
    """
    gap = np.swapaxes(w_next, -1, -2) @ w_next - w @ np.swapaxes(w, -1, -2)
    n = gap.shape[-1]
    lam = np.trace(gap, axis1=-2, axis2=-1) / n
    resid = np.linalg.norm(gap - lam[..., None, None] * np.eye(n), axis=(-2, -1))
    return lam, resid / np.maximum(pair_size(w, w_next), np.finfo(float).tiny)


def lambda_of(
    W1: np.ndarray, W2: np.ndarray, *, lam: object = None, rtol: float = BALANCE_RTOL
) -> np.ndarray:
    """λ of a two-layer init, checking W2ᵀW2 − W1W1ᵀ = λI within ``rtol``.

    Parameters
    ----------
    W1 : ndarray, shape (..., N_h, N_i)
    W2 : ndarray, shape (..., N_o, N_h)
    lam : float or array_like, shape (...), optional
        The λ the weights are meant to have; default: read off the weights.

    Returns
    -------
    lam : ndarray, shape (...)
        ``lam`` (broadcast) if given, else λ = tr(W2ᵀW2 − W1W1ᵀ)/N_h for every run.

    Raises
    ------
    ValueError
        If ‖W2ᵀW2 − W1W1ᵀ − λI‖_F > rtol · (‖W1‖_F² + ‖W2‖_F²) for some run.
    """
    lam_w, off = balance(W1, W2)
    if lam is not None:
        lam = np.broadcast_to(as_array(lam, "lam"), lam_w.shape)
        # ‖D − λI‖² = ‖D − λ_w I‖² + N_h (λ_w − λ)², with λ_w = tr(D)/N_h
        n_h = W1.shape[-2]
        shift = (
            np.sqrt(n_h) * np.abs(lam_w - lam) / np.maximum(pair_size(W1, W2), np.finfo(float).tiny)
        )
        off = np.hypot(off, shift)
        lam_w = lam
    bad = off > rtol
    if np.any(bad):
        worst = float(np.max(off))
        raise ValueError(
            "weights are not lambda-balanced: W2^T W2 - W1 W1^T must equal lam*I, but its "
            f"off-lambda part has relative size {worst:.3g} > rtol={rtol:g} "
            f"({int(np.count_nonzero(bad))} of {bad.size} runs); build them with "
            "lrsweep.init.lambda_balanced or use lrsweep.simulate for unbalanced inits"
        )
    return np.array(lam_w, dtype=float)
