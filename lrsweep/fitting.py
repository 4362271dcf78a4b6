"""How far learning got: the loss, its reachable floor, the time to fit, and the regime label.

With whitened inputs the excess loss of an end-to-end map W is ½‖W − Σyx‖_F² (theory §1);
a net whose narrowest layer has width r can only reach ½ Σ_{k>r} s̃_k² (Eckart–Young, §4).
:func:`time_to_fit` and :func:`fit_fraction` measure progress towards that floor, and
:func:`regime` labels a run stalled, lazy or rich (theory §4, §7). Pure functions over arrays,
vectorised over leading batch axes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lrsweep._validate import as_array, as_times, batch_shape, positive, positive_int
from lrsweep._validate import sigma_xx as check_sigma_xx

__all__ = [
    "FIT_FRACTION",
    "LAZY_THRESHOLD",
    "REGIMES",
    "fit_fraction",
    "loss",
    "lowest_loss",
    "regime",
    "time_to_fit",
    "time_to_level",
]

#: Default threshold on the kernel distance S(0, t_end) between 'lazy' (S ≤ threshold) and
#: 'rich' (S > threshold); see :func:`regime` for the argument.
LAZY_THRESHOLD = 0.01


def loss(
    W: np.ndarray,
    sigma_yx: np.ndarray,
    sigma_xx: np.ndarray | None = None,
    sigma_yy: np.ndarray | None = None,
    *,
    rcond: float = 1e-10,
) -> np.ndarray:
    """Mean squared error ℒ = 1/(2P) Σ_n ‖y_n − W x_n‖² through the correlations.

    ℒ(W) = ½ tr Σyy − ⟨W, Σyx⟩_F + ½ tr(W Σxx Wᵀ) = ℒ* + ½ tr(E Σxx Eᵀ), with
    E = W − W*, W* = Σyx Σxx⁺ the least-squares solution and
    ℒ* = ½(tr Σyy − tr(Σyx Σxx⁺ Σyxᵀ)) the irreducible loss (theory §1).

    - Without ``sigma_yy``: the **excess loss** ℒ − ℒ* = ½ tr(E Σxx Eᵀ) ≥ 0, which is
      ½‖W − Σyx‖_F² for whitened inputs (Σxx = I). It is 0 at the optimum.
    - With ``sigma_yy``: the full loss ℒ = ℒ* + excess (ℒ* clipped at 0 against round-off).

    Both are evaluated as a sum of squares, so they stay accurate near the optimum. Assumes
    Σyx = YXᵀ/P (its rows lie in the range of Σxx).

    Parameters
    ----------
    W : ndarray, shape (..., N_o, N_i)
        End-to-end map (:func:`end_to_end`), e.g. (n_t, n_runs, N_o, N_i).
    sigma_yx : ndarray, shape (..., N_o, N_i)
        Σyx = YXᵀ/P; broadcasts against W.
    sigma_xx : ndarray, shape (..., N_i, N_i), optional
        Σxx = XXᵀ/P; None means whitened (Σxx = I).
    sigma_yy : ndarray, shape (..., N_o, N_o), optional
        Σyy = YYᵀ/P; None returns the excess loss.
    rcond : float, keyword-only
        Eigenvalues of Σxx below rcond·max eigenvalue are treated as 0 in Σxx⁺.

    Returns
    -------
    ndarray, shape (...)

    Examples
    --------
    >>> import numpy as np
    >>> float(loss(np.zeros((1, 1)), np.array([[2.0]])))
    2.0
    >>> float(loss(np.zeros((1, 1)), np.array([[2.0]]), sigma_yy=np.array([[5.0]])))
    2.5
    """
    W = as_array(W, "W")
    if W.ndim < 2:
        raise ValueError(f"`W` must have shape (..., N_o, N_i), got shape {W.shape}")
    n_o, n_i = W.shape[-2:]
    sigma_yx = as_array(sigma_yx, "sigma_yx")
    if sigma_yx.ndim < 2 or sigma_yx.shape[-2:] != (n_o, n_i):
        raise ValueError(
            f"`sigma_yx` must have shape (..., N_o, N_i)=(..., {n_o}, {n_i}) to match `W`, "
            f"got {sigma_yx.shape}"
        )
    sigma = check_sigma_xx(sigma_xx, n_i)
    if sigma_yy is not None:
        sigma_yy = as_array(sigma_yy, "sigma_yy")
        if sigma_yy.ndim < 2 or sigma_yy.shape[-2:] != (n_o, n_o):
            raise ValueError(
                f"`sigma_yy` must have shape (..., N_o, N_o)=(..., {n_o}, {n_o}), "
                f"got {sigma_yy.shape}"
            )
    rcond = positive(rcond, "rcond")
    shapes = [W.shape[:-2], sigma_yx.shape[:-2]]
    shapes += [x.shape[:-2] for x in (sigma, sigma_yy) if x is not None]
    batch_shape(shapes, "W`, `sigma_yx`, `sigma_xx` and `sigma_yy")

    if sigma is None:
        excess = 0.5 * np.sum((W - sigma_yx) ** 2, axis=(-2, -1))
        explained = np.sum(sigma_yx**2, axis=(-2, -1))  # tr(Σyx Σyxᵀ)
    else:
        d, V = np.linalg.eigh(sigma)
        keep = d > rcond * np.max(d, axis=-1, keepdims=True)
        d_inv = np.divide(1.0, d, out=np.zeros_like(d), where=keep)
        proj = sigma_yx @ V  # Σyx V, (..., N_o, N_i)
        w_star = (proj * d_inv[..., None, :]) @ np.swapaxes(V, -1, -2)  # Σyx Σxx⁺
        err = W - w_star
        excess = 0.5 * np.sum((err @ sigma) * err, axis=(-2, -1))
        explained = np.sum(proj**2 * d_inv[..., None, :], axis=(-2, -1))
    excess = np.maximum(excess, 0.0)
    if sigma_yy is None:
        return excess
    irreducible = 0.5 * (np.trace(sigma_yy, axis1=-2, axis2=-1) - explained)
    return excess + np.maximum(irreducible, 0.0)


def lowest_loss(sigma_yx: object, rank: int) -> np.ndarray:
    """Lowest excess loss a linear network with a width-``rank`` bottleneck can reach.

    With whitened inputs the excess loss is ½‖W − Σyx‖_F², and W = W_L⋯W_1 has rank at most
    r = min(widths); by Eckart–Young the minimum is ½ Σ_{k>r} s̃_k² (0 when r ≥ min(N_i, N_o)).
    It is the level that "fitting" can reach, e.g. ``time_to_fit(..., final_loss=...)``.

    Parameters
    ----------
    sigma_yx : array_like, shape (..., N_o, N_i)
    rank : int
        The narrowest layer width r.

    Returns
    -------
    ndarray, shape (...)

    Examples
    --------
    >>> float(lowest_loss(np.diag([3.0, 2.0, 1.0]), 1))
    2.5
    """
    s = np.linalg.svd(as_array(sigma_yx, "sigma_yx"), compute_uv=False)
    return 0.5 * np.sum(s[..., positive_int(rank, "rank") :] ** 2, axis=-1)


def time_to_fit(
    t: np.ndarray,
    loss: np.ndarray,
    fractions: float | Sequence[float] | np.ndarray = (0.5, 0.9, 0.99),
    *,
    final_loss: float | np.ndarray | None = None,
    axis: int = 0,
) -> np.ndarray:
    """First time at which the loss has made a given fraction f of its total decrease.

    With ℒ_0 = ℒ(t_0) (first sample) and ℒ_∞ = ``final_loss`` (default ℒ(t_end), the last
    sample), the level is ℒ_f = ℒ_0 − f·(ℒ_0 − ℒ_∞) and

        t_f = min{t : ℒ(t) ≤ ℒ_f},

    located by linear interpolation between the last sample above ℒ_f and the first one at
    or below it. For a smooth monotone loss the interpolation error is
    ≤ Δt²·max|ℒ''| / (8·min|ℒ'|) over the bracketing interval of length Δt; e.g.
    ≤ r·Δt²·e^{rΔt}/8 for ℒ = e^{−rt}.
    NaN if the level is never reached (only possible with ``final_loss``) or if the loss does
    not decrease (ℒ_0 ≤ ℒ_∞). Compare regimes at matched progress with this (theory §3.5).

    Parameters
    ----------
    t : array_like, shape (n_t,)
        Strictly increasing sample times (units of τ).
    loss : ndarray, shape (n_t, ...)
        Loss at those times; time on ``axis`` (0 by default, the solvers' layout), the
        other axes are batch axes.
    fractions : float or array_like, shape (n_f,)
        Fractions f ∈ (0, 1] of the decrease.
    final_loss : float or ndarray broadcastable to the batch shape, keyword-only, optional
        Reference end level ℒ_∞, e.g. 0 for the excess loss or the irreducible loss.
        Default: the last sample of ``loss``.
    axis : int, keyword-only
        Time axis of ``loss``.

    Returns
    -------
    ndarray, shape (n_f, ...)
        Times t_f (``...`` = the batch axes of ``loss``); shape (...) for a scalar fraction.

    Examples
    --------
    >>> import numpy as np
    >>> t = np.linspace(0.0, 4.0, 5)
    >>> time_to_fit(t, 4.0 - t, [0.5, 1.0])
    array([2., 4.])
    """
    t = as_times(t)
    if t.size < 2 or np.any(np.diff(t) <= 0):
        raise ValueError(
            f"`t` must be strictly increasing with at least 2 samples, got {t.size} sample(s) "
            f"and min step {np.min(np.diff(t), initial=np.inf):g}"
        )
    curve = as_array(loss, "loss")
    if curve.ndim == 0:
        raise ValueError("`loss` must have a time axis of length len(t), got a scalar")
    if not -curve.ndim <= axis < curve.ndim:
        raise ValueError(f"`axis`={axis} is out of range for `loss` of shape {curve.shape}")
    curve = np.moveaxis(curve, axis, 0)
    if curve.shape[0] != t.size:
        raise ValueError(
            f"`loss` must have len(t)={t.size} samples along axis {axis}, got shape "
            f"{np.moveaxis(curve, 0, axis).shape}"
        )
    f = as_array(fractions, "fractions", ndim=(0, 1))
    scalar = f.ndim == 0
    f = np.atleast_1d(f)
    if f.size == 0 or np.any((f <= 0) | (f > 1)):
        raise ValueError(f"`fractions` must be non-empty and in (0, 1], got {f.tolist()}")
    batch = curve.shape[1:]
    l0 = curve[0]
    if final_loss is None:
        l_inf = curve[-1]
    else:
        l_inf = as_array(final_loss, "final_loss")
        try:
            l_inf = np.broadcast_to(l_inf, batch)
        except ValueError:
            raise ValueError(
                f"`final_loss` must broadcast to the batch shape {batch} of `loss`, "
                f"got shape {l_inf.shape}"
            ) from None
    drop = l0 - l_inf
    fb = f.reshape(f.shape + (1,) * len(batch))
    level = l0 - fb * drop  # (n_f, ...)
    curve_b = np.broadcast_to(curve[:, None], (t.size, *level.shape))
    t_f = np.where(drop > 0, _first_crossing(t, curve_b, level), np.nan)
    return t_f[0] if scalar else t_f


def _first_crossing(t: np.ndarray, curve: np.ndarray, level: np.ndarray) -> np.ndarray:
    """min{t : curve(t) ≤ level}, linearly interpolated; t[0] if already there, NaN if never.

    Shapes: t (n_t,), curve (n_t, ...), level (...).
    """
    below = curve <= level
    k = np.argmax(below, axis=0)  # first sample at/below the level
    km = np.maximum(k - 1, 0)
    hi = np.take_along_axis(curve, km[None], axis=0)[0]
    lo = np.take_along_axis(curve, k[None], axis=0)[0]
    gap = hi - lo
    frac = np.clip(np.divide(hi - level, gap, out=np.ones(gap.shape), where=gap > 0), 0.0, 1.0)
    out = np.where(k == 0, t[0], t[km] + frac * (t[k] - t[km]))
    return np.where(below.any(axis=0), out, np.nan)


def time_to_level(t: object, curve: object, level: object) -> np.ndarray:
    """First time at which ``curve`` falls to ``level`` or below, linearly interpolated.

    t_* = min{t : curve(t) ≤ level}, between the last sample above and the first at or below
    (:func:`time_to_fit` is this with level = ℒ(0) − f·(ℒ(0) − ℒ_∞)).

    Parameters
    ----------
    t : array_like, shape (n_t,)
        Strictly increasing times (units of τ).
    curve : array_like, shape (n_t, ...)
    level : float or array_like broadcastable to ``curve.shape[1:]``

    Returns
    -------
    ndarray, shape (...)
        t_*, ``t[0]`` if the curve starts at or below the level, NaN if it never gets there.

    Examples
    --------
    >>> time_to_level(np.array([0.0, 1.0, 2.0]), np.array([4.0, 2.0, 0.0]), 1.0)
    array(1.5)
    """
    t = as_times(t)
    if t.size < 2 or np.any(np.diff(t) <= 0):
        raise ValueError("`t` must be strictly increasing with at least 2 samples")
    c = as_array(curve, "curve")
    if c.shape[:1] != t.shape:
        raise ValueError(f"`curve` must have len(t)={t.size} rows, got shape {c.shape}")
    level = np.broadcast_to(as_array(level, "level"), c.shape[1:])
    return _first_crossing(t, c, level)


def fit_fraction(initial_loss: object, final_loss: object, lowest_loss: object = 0.0) -> np.ndarray:
    """Fraction of the reachable loss decrease made by the end, (ℒ_0 − ℒ_T)/(ℒ_0 − ℒ_min).

    ℒ_min is the lowest loss the network can reach (:func:`lowest_loss`; 0 without a
    bottleneck). 1 when there is nothing to learn (ℒ_0 ≤ ℒ_min); negative if the loss grew.

    Examples
    --------
    >>> fit_fraction([8.0, 8.0, 1.0], [0.0, 4.0, 1.0], [0.0, 0.0, 1.0]).tolist()
    [1.0, 0.5, 1.0]
    """
    l0 = as_array(initial_loss, "initial_loss")
    lt = as_array(final_loss, "final_loss")
    reachable = l0 - as_array(lowest_loss, "lowest_loss")
    return np.divide(
        l0 - lt, reachable, out=np.ones(np.broadcast(l0, lt, reachable).shape), where=reachable > 0
    )


#: A run has *fit* once its loss has made this fraction of its reachable decrease
#: (:func:`fit_fraction`); runs that have not by t_max are ``stalled``. It is the level of
#: ``time_to_fit_99``: by then S(0, t) is close to its final value, while a λ = 0 run caught
#: on a saddle (one mode never learnt, e.g. 98.4 % of the decrease made) is not called fit.
FIT_FRACTION = 0.99

#: The values of the ``regime`` label of an ok run, in order of precedence (docs/pipeline.md).
REGIMES: dict[str, str] = {
    "stalled": f"did not fit by t_max: the loss made less than {FIT_FRACTION:g} of the decrease "
    "it can make (a saddle, a tiny init, or t_max too short); S(0, t_max) does not say "
    "lazy or rich",
    "lazy": "fit by t_max, and the NTK barely moved: S(0, t_max) <= threshold",
    "rich": "fit by t_max, and the NTK moved: S(0, t_max) > threshold",
    "undefined": "fit by t_max, but S(0, t_max) is NaN (zero initial NTK); not expected",
}


def regime(
    kernel_distance: float | np.ndarray,
    threshold: float = LAZY_THRESHOLD,
    *,
    fit_fraction: float | np.ndarray | None = None,
    fit: float = FIT_FRACTION,
) -> np.ndarray:
    """Label runs 'stalled', 'lazy', 'rich' (or 'undefined'), see :data:`REGIMES`.

    A run that has not fit by t_max (``fit_fraction`` < ``fit``) is 'stalled' whatever its
    kernel did: its kernel distance says nothing yet. A fit run is 'lazy' if
    S(0, t_max) ≤ threshold and 'rich' above it. Theory §4: lazy runs keep S(0, ∞) ≈ 0,
    rich runs reach O(0.1–1). The default threshold 0.01 (:data:`LAZY_THRESHOLD`) is
    calibrated on the converged states of §3.4 for two-layer λ-balanced nets (random tasks,
    N_i, N_o ∈ 2..8, and the semantic hierarchy; init scales a ≤ 0.3; s̃_max = largest task
    singular value):

    - rich end: S(0, ∞) ≈ 0.05–0.26 at λ = 0 (square nets sit at the bottom: the identity
      factors in K = W2W2ᵀ ⊗ XᵀX + I ⊗ XᵀW1ᵀW1X cap S; the semantic hierarchy gives 0.051),
      and 0.4–0.6 for a non-square net whose large layer must rotate (§4);
    - crossover: S ≈ 0.016–0.034 at |λ| = s̃_max;
    - lazy end: S falls as (s̃_max/λ)⁴, ≈ 1e-3 at |λ| = 3 s̃_max, ≈ 1e-5 at 10 s̃_max.

    So 0.01 labels runs lazy from |λ| ≈ 2 s̃_max, beyond the task scale where learning turns
    from sigmoidal into exponential (theory §3.5); the kernel direction then moved by less
    than arccos(0.99) ≈ 8°.
    0.05 would be too high: it would call maximally rich square nets (λ = 0) borderline.
    Near the threshold runs are in the crossover; for phase diagrams plot S itself.

    Parameters
    ----------
    kernel_distance : float or ndarray, shape (...)
        S(0, t_max) values.
    threshold : float
        Positive threshold on S.
    fit_fraction : float or ndarray, shape (...), keyword-only, optional
        :func:`fit_fraction` of each run; None labels by S alone (no 'stalled').
    fit : float, keyword-only
        Fraction of the reachable decrease that counts as fit (:data:`FIT_FRACTION`).

    Returns
    -------
    ndarray of str, shape (...)

    Examples
    --------
    >>> regime([0.001, 0.3, 0.3, float("nan")], fit_fraction=[1.0, 1.0, 0.2, 1.0]).tolist()
    ['lazy', 'rich', 'stalled', 'undefined']
    """
    threshold = positive(threshold, "threshold")
    try:
        s = np.asarray(kernel_distance, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"`kernel_distance` must be a real numeric array, got {type(kernel_distance).__name__}"
        ) from exc
    if np.any(np.isinf(s) | (s < 0) | (s > 2)):
        raise ValueError(
            "`kernel_distance` must be in [0, 2] or NaN (output of kernel_distance), got "
            f"min {np.nanmin(s) if s.size else 0:g}, max {np.nanmax(s) if s.size else 0:g}"
        )
    labels = np.where(s <= threshold, "lazy", "rich").astype("<U9")
    labels[np.isnan(s)] = "undefined"
    if fit_fraction is not None:
        f = np.broadcast_to(as_array(fit_fraction, "fit_fraction"), s.shape)
        labels[f < fit] = "stalled"
    return labels
