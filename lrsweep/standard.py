"""Standard (Gaussian) initialisations, per-layer learning rates and the λ-balanced prediction.

Practitioners draw Gaussian weights (LeCun / Xavier / He scalings times a multiplier) and
sometimes train each layer at its own learning rate (Kunin et al., "Get rich quick",
NeurIPS 2024). This module provides, for batches of such runs:

- Gaussian families: :func:`preset_sigmas` (σ_l per layer for ``constant``, ``lecun``,
  ``xavier``/``glorot`` and ``he``, times a multiplier and a layer ratio) and
  :func:`gaussian_init` (weights from one explicit generator per point);
- per-layer learning rates: :func:`layer_rates` (ρ_l from the ratio ρ_{l+1}/ρ_l), the change
  of variables onto a unit-rate problem (:func:`rate_map`, theory §6.1) and the exact
  two-layer solution with rates (:func:`qqt_with_rates`); the simulators take the rates
  directly (``rates=`` of :func:`lrsweep.simulate.gradient_flow` and
  :func:`lrsweep.simulate.gradient_descent`);
- the measured imbalance of an init (:func:`imbalance_summary`): per consecutive pair the
  eigenvalues of the rate-weighted conserved matrix D_l, summarised;
- the theory prediction for a two-layer Gaussian init (theory §6.2): the λ_eff-balanced pair
  with the same W2W1(0) (:func:`balanced_prediction`) and its kernel distance, final loss and
  time to fit (:func:`predicted_measures`; the pipeline's ``*_predicted`` and
  ``*_prediction_error`` columns come from :mod:`lrsweep.measures`).

Units and conventions: time t is in units of τ (gradient descent with base step η has
t/τ = kη); a layer's rate is ρ_l times the base rate, so layer l of gradient descent steps with
η_l = ηρ_l. Inputs are whitened (Σxx = I) wherever the exact solution is used.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lrsweep import fitting, metrics
from lrsweep._validate import as_array, as_times, positive_int, rates_array, widths_list
from lrsweep.exact import qqt
from lrsweep.init import as_generator, balanced_singular_values

__all__ = [
    "PRESETS",
    "ImbalanceSummary",
    "Prediction",
    "PredictedMeasures",
    "RateMap",
    "balanced_prediction",
    "expected_imbalance",
    "gaussian_init",
    "imbalance_summary",
    "layer_rates",
    "predicted_measures",
    "preset_sigmas",
    "qqt_with_rates",
    "rate_map",
    "weighted_imbalances",
]

#: Named Gaussian families of :func:`preset_sigmas` (``glorot`` is ``xavier``).
PRESETS = ("constant", "lecun", "xavier", "glorot", "he")

#: Singular values of W2W1(0) below this fraction of the largest count as zero when deciding
#: whether (W2W1(0), λ) determine the trajectory (:func:`balanced_prediction`).
RANK_RTOL = 1e-10

_TINY = np.finfo(float).tiny


# --------------------------------------------------------------------------------------
# Validation helpers
# --------------------------------------------------------------------------------------


def _positive_array(x: object, name: str) -> np.ndarray:
    arr = as_array(x, name)
    if not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        bad = arr[~(np.isfinite(arr) & (arr > 0))].ravel()[0]
        raise ValueError(f"`{name}` must be finite and > 0, got {float(bad)!r}")
    return arr


def _rates(rates: object, depth: int) -> np.ndarray | None:
    return None if rates is None else rates_array(rates, depth)


def _T(x: np.ndarray) -> np.ndarray:
    return np.swapaxes(x, -1, -2)


# --------------------------------------------------------------------------------------
# Gaussian families
# --------------------------------------------------------------------------------------


def preset_sigmas(
    name: str,
    widths: Sequence[int],
    multiplier: float | np.ndarray = 1.0,
    ratio: float | np.ndarray = 1.0,
) -> np.ndarray:
    """Per-layer standard deviations σ_l of a named Gaussian family (theory §6.2).

    σ_l = multiplier · base_l · ratio^{l − (L+1)/2},  l = 1 … L,

    with fan_in = N_{l−1}, fan_out = N_l of W_l (shape N_l × N_{l−1}) and

    - ``constant``: base_l = 1 (so σ_l = multiplier · ratio^{l − (L+1)/2});
    - ``lecun``: base_l² = 1/fan_in;
    - ``xavier`` (= ``glorot``): base_l² = 2/(fan_in + fan_out);
    - ``he``: base_l² = 2/fan_in.

    **The ratio between layers**: ``ratio`` is the factor between consecutive layers on top of
    the preset, σ_{l+1}/σ_l = ratio · base_{l+1}/base_l (exactly ``ratio`` for ``constant``),
    applied symmetrically about the middle of the network so that it leaves the product
    ∏_l σ_l = multiplier^L ∏_l base_l — the scale of the end-to-end map — unchanged: ``ratio``
    moves only the imbalance λ_eff (:func:`expected_imbalance`), ``multiplier`` the overall
    scale. ratio > 1 makes the output side larger (λ_eff > 0 for a constant preset on equal
    widths). Two layers: σ_1 = multiplier·base_1/√ratio, σ_2 = multiplier·base_2·√ratio.

    Parameters
    ----------
    name : str
        One of :data:`PRESETS`.
    widths : sequence of int, length L + 1
        [N_i, N_1, …, N_{L−1}, N_o].
    multiplier, ratio : float or ndarray, shape (...)
        Positive; broadcast together (one point per element).

    Returns
    -------
    ndarray, shape (..., L)
        σ_1 … σ_L (input side first).

    Examples
    --------
    >>> preset_sigmas("lecun", [4, 16, 2]).round(4).tolist()
    [0.5, 0.25]
    >>> preset_sigmas("constant", [3, 3, 3], multiplier=0.1, ratio=4.0).tolist()
    [0.05, 0.2]
    """
    key = str(name).lower()
    if key not in PRESETS:
        raise ValueError(f"`name` must be one of {list(PRESETS)}, got {name!r}")
    widths = widths_list(widths)
    L = len(widths) - 1
    fan_in = np.asarray(widths[:-1], dtype=float)
    fan_out = np.asarray(widths[1:], dtype=float)
    base = {
        "constant": np.ones(L),
        "lecun": np.sqrt(1.0 / fan_in),
        "xavier": np.sqrt(2.0 / (fan_in + fan_out)),
        "glorot": np.sqrt(2.0 / (fan_in + fan_out)),
        "he": np.sqrt(2.0 / fan_in),
    }[key]
    m = _positive_array(multiplier, "multiplier")
    r = _positive_array(ratio, "ratio")
    m, r = np.broadcast_arrays(m, r)
    powers = np.arange(1, L + 1) - (L + 1) / 2
    return m[..., None] * base * r[..., None] ** powers


def layer_rates(ratio: float | np.ndarray, depth: int, normalize: str = "geometric") -> np.ndarray:
    """Per-layer learning-rate multipliers ρ_l with ρ_{l+1}/ρ_l = ``ratio`` (theory §6.1).

    Parameters
    ----------
    ratio : float or ndarray, shape (...)
        η_{l+1}/η_l > 0, the same for every consecutive pair.
    depth : int
        L ≥ 2.
    normalize : {'geometric', 'first'}
        ``geometric``: ∏_l ρ_l = 1, i.e. ρ_l = ratio^{l − (L+1)/2}; then C = ∏√ρ_l = 1 and the
        rate map of theory §6.1 keeps the target Σyx and the time t: the ratio only rescales
        the layers (A_l = W_l/√ρ_l). ``first``: ρ_1 = 1, ρ_l = ratio^{l−1} (the first layer
        keeps the base rate).

    Returns
    -------
    ndarray, shape (..., L)

    Examples
    --------
    >>> layer_rates(4.0, 2).tolist()
    [0.5, 2.0]
    >>> layer_rates(2.0, 3, normalize="first").tolist()
    [1.0, 2.0, 4.0]
    """
    depth = positive_int(depth, "depth")
    if depth < 2:
        raise ValueError(f"`depth` must be >= 2, got {depth}")
    r = _positive_array(ratio, "ratio")
    if normalize == "geometric":
        powers = np.arange(1, depth + 1) - (depth + 1) / 2
    elif normalize == "first":
        powers = np.arange(depth, dtype=float)
    else:
        raise ValueError(f"`normalize` must be 'geometric' or 'first', got {normalize!r}")
    return r[..., None] ** powers


def _seed_list(seeds: object) -> tuple[list[np.random.Generator], bool]:
    """Generators from one seed (unbatched) or a sequence of per-point seeds (batched)."""
    single = isinstance(seeds, int | np.integer | np.random.SeedSequence | np.random.Generator)
    if single:
        return [as_generator(seeds)], False
    seq = list(seeds)  # type: ignore[arg-type]
    if not seq:
        raise ValueError("`seeds` must hold at least one seed")
    return [as_generator(s) for s in seq], True


def gaussian_init(
    widths: Sequence[int],
    sigmas: object,
    seeds: object,
) -> list[np.ndarray]:
    """Gaussian weights, entries of W_l i.i.d. N(0, σ_l²), one generator per point (§6.2).

    Point b draws Z_1, …, Z_L (standard normal, in layer order) from its own generator and
    returns W_l = σ_l Z_l, so a point's weights depend only on its seed and σ (common random
    numbers across σ, multipliers and ratios; independent of batch size and order). For one
    seed this is exactly :func:`lrsweep.init.gaussian_deep`.

    Parameters
    ----------
    widths : sequence of int, length L + 1
        [N_i, N_1, …, N_{L−1}, N_o].
    sigmas : array_like, shape (L,) or (B, L)
        σ_l ≥ 0 per layer (e.g. from :func:`preset_sigmas`), shared or per point.
    seeds : int, SeedSequence or Generator, or a sequence of B of them
        One seed: unbatched output (``sigmas`` of shape (L,)). A sequence (e.g. of
        :func:`lrsweep.grid.point_seed` values): batched output, one point per seed.

    Returns
    -------
    list of ndarray, length L
        W_l of shape (N_l, N_{l−1}), or (B, N_l, N_{l−1}) for a sequence of seeds.

    Examples
    --------
    >>> ws = gaussian_init([3, 5, 2], preset_sigmas("he", [3, 5, 2]), seeds=[0, 1, 2])
    >>> [w.shape for w in ws]
    [(3, 5, 3), (3, 2, 5)]
    """
    widths = widths_list(widths)
    L = len(widths) - 1
    sig = as_array(sigmas, "sigmas", ndim=(1, 2))
    if sig.shape[-1] != L or not np.all(np.isfinite(sig)) or np.any(sig < 0):
        raise ValueError(
            f"`sigmas` must be finite, >= 0 and of shape (L,) or (B, L) with L={L}, "
            f"got shape {sig.shape}"
        )
    gens, batched = _seed_list(seeds)
    B = len(gens)
    if not batched and sig.ndim == 2:
        raise ValueError("`sigmas` of shape (B, L) needs a sequence of B seeds")
    sig = np.broadcast_to(sig, (B, L)) if sig.ndim == 1 or sig.shape[0] == B else None
    if sig is None:
        raise ValueError(f"`sigmas` has {as_array(sigmas, 'sigmas').shape[0]} rows for {B} seeds")
    shapes = [(widths[l + 1], widths[l]) for l in range(L)]
    out = [np.empty((B, *s)) for s in shapes]
    for b, rng in enumerate(gens):
        for l, s in enumerate(shapes):
            out[l][b] = sig[b, l] * rng.standard_normal(s)
    return out if batched else [w[0] for w in out]


def expected_imbalance(
    widths: Sequence[int], sigmas: object, rates: object = None
) -> tuple[np.ndarray, np.ndarray]:
    """E[D_l] = λ̄_l I and the entry variance of D_l for Gaussian weights (theory §6.2).

    With the rate-weighted D_l = ρ_{l+1}⁻¹W_{l+1}ᵀW_{l+1} − ρ_l⁻¹W_lW_lᵀ (ρ = 1 without rates):
    λ̄_l = N_{l+1}σ_{l+1}²/ρ_{l+1} − N_{l−1}σ_l²/ρ_l and v_l = N_{l+1}σ_{l+1}⁴/ρ_{l+1}² +
    N_{l−1}σ_l⁴/ρ_l² (off-diagonal entries of D_l have variance v_l, diagonal ones 2v_l).

    Parameters
    ----------
    widths : sequence of int, length L + 1
    sigmas : array_like, shape (..., L)
    rates : array_like, shape (..., L), optional

    Returns
    -------
    lam_bar, v : ndarray, shape (..., L − 1)
    """
    widths = widths_list(widths)
    L = len(widths) - 1
    sig = as_array(sigmas, "sigmas")
    if sig.ndim < 1 or sig.shape[-1] != L:
        raise ValueError(f"`sigmas` must have shape (..., L) with L={L}, got {sig.shape}")
    rho = _rates(rates, L)
    var = sig**2 if rho is None else sig**2 / rho
    n = np.asarray(widths, dtype=float)
    lam_bar = n[2:] * var[..., 1:] - n[:-2] * var[..., :-1]
    v = n[2:] * var[..., 1:] ** 2 + n[:-2] * var[..., :-1] ** 2
    return lam_bar, v


# --------------------------------------------------------------------------------------
# Imbalance
# --------------------------------------------------------------------------------------


def weighted_imbalances(weights: Sequence[np.ndarray], rates: object = None) -> list[np.ndarray]:
    """Rate-weighted conserved matrices D_l = ρ_{l+1}⁻¹W_{l+1}ᵀW_{l+1} − ρ_l⁻¹W_lW_lᵀ (§6.1).

    Conserved by gradient flow with per-layer rates ρ_l (unweighted without ``rates``, as
    :func:`lrsweep.init.imbalances`).

    Parameters
    ----------
    weights : sequence of ndarray
        W_1 … W_L, W_l of shape (..., N_l, N_{l−1}).
    rates : array_like, shape (L,) or (..., L), optional

    Returns
    -------
    list of ndarray, length L − 1, entry l of shape (..., N_l, N_l)
    """
    ws = [as_array(w, f"weights[{i}]") for i, w in enumerate(weights)]
    rho = _rates(rates, len(ws))
    out = []
    for l in range(len(ws) - 1):
        a = _T(ws[l + 1]) @ ws[l + 1]
        b = ws[l] @ _T(ws[l])
        if rho is not None:
            a = a / rho[..., l + 1, None, None]
            b = b / rho[..., l, None, None]
        out.append(a - b)
    return out


@dataclass(frozen=True)
class ImbalanceSummary:
    """Measured imbalance of a batch of inits, per consecutive layer pair (theory §6.2).

    Every array has shape (..., L − 1) (batch axes, then pair l = 1 … L−1, input side first).
    D_l is the rate-weighted conserved matrix (:func:`weighted_imbalances`).

    Attributes
    ----------
    lam_eff : ndarray
        Mean eigenvalue tr(D_l)/N_l, the λ of the nearest λ-balanced pair (units of weight²).
    eig_min, eig_max : ndarray
        Smallest and largest eigenvalue of D_l (equal to ``lam_eff`` iff λ-balanced).
    off_balance : ndarray
        ‖D_l − λ_eff I‖_F / ‖D_l‖_F ∈ [0, 1] (dimensionless; 0 iff balanced, 0 for D_l = 0).
        Round-off makes it O(1) for a balanced pair with λ ≈ 0 (then D_l is all round-off):
        use ``off_balance_scale`` to tell balance from noise.
    off_balance_scale : ndarray
        ‖D_l − λ_eff I‖_F / (ρ_l⁻¹‖W_l‖_F² + ρ_{l+1}⁻¹‖W_{l+1}‖_F²) (dimensionless; round-off
        level ~1e-16 for a balanced pair; :func:`lrsweep.init.imbalance_report`'s measure).
    """

    lam_eff: np.ndarray
    eig_min: np.ndarray
    eig_max: np.ndarray
    off_balance: np.ndarray
    off_balance_scale: np.ndarray


def imbalance_summary(weights: Sequence[np.ndarray], rates: object = None) -> ImbalanceSummary:
    """Eigenvalue summary of each rate-weighted D_l (theory §6.1, §6.2); batched.

    Parameters
    ----------
    weights : sequence of ndarray
        W_1 … W_L, W_l of shape (..., N_l, N_{l−1}).
    rates : array_like, shape (L,) or (..., L), optional
        Per-layer learning-rate multipliers ρ_l (default 1).

    Returns
    -------
    ImbalanceSummary
        Arrays of shape (..., L − 1).

    Examples
    --------
    >>> from lrsweep.init import lambda_balanced
    >>> s = imbalance_summary(lambda_balanced(0.5, 2, 3, 3, scale=0.2, seed=0))
    >>> round(float(s.lam_eff[0]), 12), bool(s.off_balance[0] < 1e-12)
    (0.5, True)
    """
    ws = [as_array(w, f"weights[{i}]") for i, w in enumerate(weights)]
    rho = _rates(rates, len(ws))
    cols: dict[str, list[np.ndarray]] = {k: [] for k in ImbalanceSummary.__dataclass_fields__}
    for l, D in enumerate(weighted_imbalances(ws, rho)):
        n = D.shape[-1]
        ev = np.linalg.eigvalsh(D)
        lam = np.trace(D, axis1=-2, axis2=-1) / n
        resid = np.linalg.norm(D - lam[..., None, None] * np.eye(n), axis=(-2, -1))
        norm = np.linalg.norm(D, axis=(-2, -1))
        size = np.sum(ws[l] ** 2, axis=(-2, -1)), np.sum(ws[l + 1] ** 2, axis=(-2, -1))
        if rho is not None:
            size = size[0] / rho[..., l], size[1] / rho[..., l + 1]
        cols["lam_eff"].append(lam)
        cols["eig_min"].append(ev[..., 0])
        cols["eig_max"].append(ev[..., -1])
        cols["off_balance"].append(np.where(norm > 0, resid / np.maximum(norm, _TINY), 0.0))
        cols["off_balance_scale"].append(resid / np.maximum(size[0] + size[1], _TINY))
    return ImbalanceSummary(**{k: np.stack(v, axis=-1) for k, v in cols.items()})


# --------------------------------------------------------------------------------------
# Per-layer learning rates: the change of variables of theory §6.1
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RateMap:
    """A problem with per-layer rates as a unit-rate problem (theory §6.1).

    Gradient flow dW_l/dt = ρ_l·(−∂ℒ/∂W_l) on the target Σyx equals, with A_l = W_l/√ρ_l and
    C = ∏_l √ρ_l, unit-rate gradient flow of the A_l on the target Σyx/C at time s = C²t.

    Attributes
    ----------
    weights : list of ndarray
        A_l = W_l/√ρ_l, shape (..., N_l, N_{l−1}).
    sigma_yx : ndarray, shape (..., N_o, N_i)
        Σyx/C.
    t : ndarray, shape (n_t, ...)
        s = C²t per run (shape (n_t,) when C is a scalar).
    scale : ndarray, shape (...)
        C = ∏√ρ_l (W = C·A for the end-to-end maps).
    rates : ndarray, shape (..., L)
        The ρ_l.
    """

    weights: list[np.ndarray]
    sigma_yx: np.ndarray
    t: np.ndarray
    scale: np.ndarray
    rates: np.ndarray

    def to_weights(self, a_weights: Sequence[np.ndarray]) -> list[np.ndarray]:
        """W_l = √ρ_l A_l for unit-rate weights A_l of shape (..., N_l, N_{l−1})."""
        root = np.sqrt(self.rates)
        return [
            root[..., l, None, None] * np.asarray(a, dtype=float) for l, a in enumerate(a_weights)
        ]

    def to_qqt(self, q_a: np.ndarray) -> np.ndarray:
        """QQᵀ of the W from QQᵀ of the A (two layers): S q_A S.

        S = diag(√ρ1 I_{N_i}, √ρ2 I_{N_o}), that is W1ᵀW1 = ρ1 A1ᵀA1, W2W1 = C·A2A1,
        W2W2ᵀ = ρ2 A2A2ᵀ. ``q_a`` has shape (n_t, ..., N_i+N_o, N_i+N_o).
        """
        if self.rates.shape[-1] != 2:
            raise ValueError("`to_qqt` is for two-layer nets (rates of shape (..., 2))")
        n_in = self.weights[0].shape[-1]
        n_out = self.weights[1].shape[-2]
        root = np.sqrt(self.rates)
        s = np.concatenate(
            [
                np.broadcast_to(root[..., :1], (*root.shape[:-1], n_in)),
                np.broadcast_to(root[..., 1:], (*root.shape[:-1], n_out)),
            ],
            axis=-1,
        )
        return s[..., :, None] * q_a * s[..., None, :]


def rate_map(weights: Sequence[np.ndarray], sigma_yx: object, t: object, rates: object) -> RateMap:
    """The unit-rate problem equivalent to gradient flow with per-layer rates (theory §6.1).

    Any depth. Gradient flow with rates ρ_l from W_l(0) on Σyx, observed at times t (units of
    τ), is √ρ_l × the unit-rate flow from A_l(0) = W_l(0)/√ρ_l on Σyx/C observed at C²t,
    C = ∏√ρ_l. Its conserved matrices are ρ_{l+1}⁻¹W_{l+1}ᵀW_{l+1} − ρ_l⁻¹W_lW_lᵀ =
    A_{l+1}ᵀA_{l+1} − A_lA_lᵀ.

    Parameters
    ----------
    weights : sequence of ndarray
        W_1 … W_L, W_l of shape (..., N_l, N_{l−1}).
    sigma_yx : ndarray, shape (..., N_o, N_i)
    t : array_like, shape (n_t,)
    rates : array_like, shape (L,) or (..., L)

    Returns
    -------
    RateMap

    Examples
    --------
    >>> m = rate_map([np.eye(2), np.eye(2)], np.eye(2), [0.0, 1.0], [0.25, 4.0])
    >>> float(m.scale), m.t.tolist(), m.weights[0][0, 0].item()
    (1.0, [0.0, 1.0], 2.0)
    """
    ws = [as_array(w, f"weights[{i}]") for i, w in enumerate(weights)]
    rho = _rates(rates, len(ws))
    if rho is None:
        raise ValueError("`rates` are required")
    syx = as_array(sigma_yx, "sigma_yx")
    times = as_times(t)
    root = np.sqrt(rho)
    C = np.prod(root, axis=-1)
    a = [w / root[..., l, None, None] for l, w in enumerate(ws)]
    s = times.reshape((-1,) + (1,) * C.ndim) * C**2
    return RateMap(a, syx / C[..., None, None], s, C, rho)


def qqt_with_rates(
    W1: object, W2: object, sigma_yx: object, t: object, rates: object, *, lam: object = None
) -> np.ndarray:
    """Exact QQᵀ(t) of two-layer gradient flow with per-layer rates ρ1, ρ2 (theory §6.1).

    Exact when the init is λ_A-balanced in the rate-weighted sense,
    ρ2⁻¹W2ᵀW2 − ρ1⁻¹W1W1ᵀ = λ_A I: :func:`rate_map` onto A_l = W_l/√ρ_l, the closed form
    :func:`lrsweep.exact.qqt` of the A-problem (target Σyx/C, times C²t, λ = λ_A) and back
    with :meth:`RateMap.to_qqt`. Whitened inputs.

    Parameters
    ----------
    W1 : array_like, shape (..., N_h, N_i)
    W2 : array_like, shape (..., N_o, N_h)
    sigma_yx : array_like, shape (..., N_o, N_i)
    t : array_like, shape (n_t,)
        Times in units of τ (base rate).
    rates : array_like, shape (2,) or (..., 2)
        ρ1, ρ2 > 0.
    lam : float or array_like, shape (...), optional
        λ_A; default read off the rate-weighted imbalance.

    Returns
    -------
    ndarray, shape (n_t, ..., N_i+N_o, N_i+N_o)
        [[W1ᵀW1, (W2W1)ᵀ], [W2W1, W2W2ᵀ]] at every time.

    Raises
    ------
    ValueError
        If the weights are not λ_A-balanced in the rate-weighted sense (relative 1e-8).
    """
    m = rate_map([W1, W2], sigma_yx, t, rates)
    q_a = qqt(m.weights[0], m.weights[1], m.sigma_yx, m.t, lam=lam)
    return m.to_qqt(q_a)


# --------------------------------------------------------------------------------------
# The λ-balanced prediction for a Gaussian two-layer init (theory §6.2)
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prediction:
    """The λ_eff-balanced pair with the same end-to-end map as a two-layer init (theory §6.2).

    ``...`` is the batch shape of the inits.

    Attributes
    ----------
    W1 : ndarray, shape (..., N_h, N_i)
    W2 : ndarray, shape (..., N_o, N_h)
        Predicted initial weights (W coordinates: the rates are already applied), with
        W2W1 equal to the init's and rate-weighted imbalance λ_eff·I; NaN where inadmissible.
    lam : ndarray, shape (...)
        λ_eff = tr(D)/N_h of the rate-weighted D (weight² units).
    rates : ndarray, shape (..., 2)
        ρ1, ρ2 used (ones without rates).
    admissible : ndarray of bool, shape (...)
        A λ_eff-balanced pair of these widths exists (λ_eff > 0 needs N_h ≤ N_o, λ_eff < 0
        needs N_h ≤ N_i, theory §2).
    determined : ndarray of bool, shape (...)
        (W2W1(0), λ_eff) fix QQᵀ(t): λ_eff = 0, or rank W2W1(0) = N_h, or N_h = N_o
        (λ_eff > 0), or N_h = N_i (λ_eff < 0). False where inadmissible. Where admissible but
        not determined the prediction is one valid choice (the SVD's completion of the null
        spaces), flagged.
    rank : ndarray of int, shape (...)
        Numerical rank of W2W1(0) (singular values above :data:`RANK_RTOL` × the largest).
    reason : ndarray of str, shape (...)
        "" when admissible and determined, else why not (with the numbers).
    """

    W1: np.ndarray
    W2: np.ndarray
    lam: np.ndarray
    rates: np.ndarray
    admissible: np.ndarray
    determined: np.ndarray
    rank: np.ndarray
    reason: np.ndarray


def balanced_prediction(W1: object, W2: object, rates: object = None) -> Prediction:
    """The λ_eff-balanced two-layer init with the same W2W1(0) (theory §6.2, §6.1).

    In the rate-weighted variables A_l = W_l/√ρ_l (A = W without rates): M = A2A1 = U diag(a) Vᵀ
    (full SVD), λ_eff = tr(A2ᵀA2 − A1A1ᵀ)/N_h, and the pair of theory §2 with hidden basis
    R = I: A1 = S1 Vᵀ, A2 = U S2 with s1_k s2_k = a_k, s2_k² − s1_k² = λ_eff for
    k < min(N_i, N_h, N_o) (:func:`lrsweep.init.balanced_singular_values`), and for the hidden
    directions beyond: s2_k = √λ_eff along U's k-th column (N_i ≤ k < N_o) or
    s1_k = √(−λ_eff) along V's (N_o ≤ k < N_i). Then A2A1 = M exactly (up to round-off) and
    A2ᵀA2 − A1A1ᵀ = λ_eff I. The hidden basis does not matter (QQᵀ is invariant under
    A1 ↦ RA1, A2 ↦ A2Rᵀ, theory §3.3). The prediction is W_l = √ρ_l A_l.

    A rank-deficient M gives a_k = 0 modes, whose directions the SVD completes arbitrarily:
    ``determined`` says whether that choice matters. Inadmissible runs are flagged (with a
    reason) and get NaN weights; nothing is dropped.

    Parameters
    ----------
    W1 : array_like, shape (..., N_h, N_i)
    W2 : array_like, shape (..., N_o, N_h)
    rates : array_like, shape (2,) or (..., 2), optional
        Per-layer learning-rate multipliers ρ1, ρ2.

    Returns
    -------
    Prediction

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> W1, W2 = 0.3 * rng.standard_normal((2, 3)), 0.6 * rng.standard_normal((3, 2))
    >>> p = balanced_prediction(W1, W2)
    >>> bool(np.allclose(p.W2 @ p.W1, W2 @ W1)), bool(p.admissible), p.reason.item()
    (True, True, '')
    """
    W1 = as_array(W1, "W1")
    W2 = as_array(W2, "W2")
    if W1.ndim < 2 or W2.ndim < 2 or W2.shape[-1] != W1.shape[-2]:
        raise ValueError(
            f"`W1` (..., N_h, N_i) and `W2` (..., N_o, N_h) must share N_h, got {W1.shape} "
            f"and {W2.shape}"
        )
    n_h, n_i = W1.shape[-2:]
    n_o = W2.shape[-2]
    batch = np.broadcast_shapes(W1.shape[:-2], W2.shape[:-2])
    rho = _rates(rates, 2)
    rho = np.ones(2) if rho is None else rho
    batch = np.broadcast_shapes(batch, rho.shape[:-1])
    rho = np.broadcast_to(rho, (*batch, 2))
    root = np.sqrt(rho)
    A1 = np.broadcast_to(W1, (*batch, n_h, n_i)) / root[..., 0, None, None]
    A2 = np.broadcast_to(W2, (*batch, n_o, n_h)) / root[..., 1, None, None]
    lam = (np.sum(A2**2, axis=(-2, -1)) - np.sum(A1**2, axis=(-2, -1))) / n_h
    U, a, Vt = np.linalg.svd(A2 @ A1, full_matrices=True)
    rank = np.sum(a > RANK_RTOL * np.max(a, axis=-1, initial=0.0)[..., None], axis=-1)

    admissible = ~(((lam > 0) & (n_h > n_o)) | ((lam < 0) & (n_h > n_i)))
    determined = admissible & (
        (lam == 0) | (rank == n_h) | ((lam > 0) & (n_h == n_o)) | ((lam < 0) & (n_h == n_i))
    )
    lam_ok = np.where(admissible, lam, 0.0)  # build something finite, NaN it afterwards

    r = min(n_i, n_h, n_o)
    s1 = np.zeros((*batch, n_h))
    s2 = np.zeros((*batch, n_h))
    s1[..., :r], s2[..., :r] = balanced_singular_values(lam_ok[..., None], a[..., :r])
    for k in range(r, n_h):
        if n_i <= k < n_o:
            s2[..., k] = np.sqrt(np.maximum(lam_ok, 0.0))
        elif n_o <= k < n_i:
            s1[..., k] = np.sqrt(np.maximum(-lam_ok, 0.0))
    k1, k2 = min(n_h, n_i), min(n_o, n_h)
    P1 = np.zeros((*batch, n_h, n_i))
    P2 = np.zeros((*batch, n_o, n_h))
    P1[..., :k1, :] = s1[..., :k1, None] * Vt[..., :k1, :]
    P2[..., :, :k2] = U[..., :, :k2] * s2[..., None, :k2]
    nan = ~admissible[..., None, None]
    P1 = np.where(nan, np.nan, P1 * root[..., 0, None, None])
    P2 = np.where(nan, np.nan, P2 * root[..., 1, None, None])

    reason = np.full(batch, "", dtype=object)
    for idx in np.ndindex(batch):
        if admissible[idx]:
            continue
        lam_i = float(lam[idx])
        need = f"N_h <= N_o ({n_h} > {n_o})" if lam_i > 0 else f"N_h <= N_i ({n_h} > {n_i})"
        reason[idx] = (
            f"inadmissible: lambda_eff = {lam_i:.4g} {'>' if lam_i > 0 else '<'} 0 needs {need}; "
            "no lambda-balanced pair of these widths exists (theory §2)"
        )
    for idx in np.ndindex(batch):
        if not admissible[idx] or determined[idx]:
            continue
        reason[idx] = (
            f"not determined: rank W2W1(0) = {int(rank[idx])} < N_h = {n_h} and lambda_eff = "
            f"{float(lam[idx]):.4g} leaves {n_h - int(rank[idx])} hidden direction(s) free "
            "(theory §6.2); prediction uses one choice"
        )
    return Prediction(
        W1=P1,
        W2=P2,
        lam=lam,
        rates=rho,
        admissible=admissible,
        determined=determined,
        rank=rank,
        reason=reason,
    )


@dataclass(frozen=True)
class PredictedMeasures:
    """The prediction's lazy/rich measures for a batch of two-layer inits (theory §6.2).

    Inadmissible runs have NaN values and a ``reason`` (never dropped). Batch axis B.

    Attributes
    ----------
    prediction : Prediction
    t : ndarray, shape (n_t,)
        Saved times (units of τ).
    loss : ndarray, shape (n_t, B)
        Excess loss ½‖W − Σyx‖_F² of the prediction.
    kernel_distance_curve : ndarray, shape (n_t, B)
        S(0, t) of the prediction's NTK (its own K_0, which differs from the Gaussian init's
        by O(‖D − λ_eff I‖)).
    kernel_distance : ndarray, shape (B,)
        S(0, t_max) (dimensionless).
    final_loss : ndarray, shape (B,)
        Excess loss at t_max (units of Σyx²).
    time_to_fit : ndarray, shape (n_f, B)
        t/τ at which the loss has made each fraction of its decrease from ℒ(0) to
        ``lowest_loss`` (NaN if not by t_max).
    """

    prediction: Prediction
    t: np.ndarray
    loss: np.ndarray
    kernel_distance_curve: np.ndarray
    kernel_distance: np.ndarray
    final_loss: np.ndarray
    time_to_fit: np.ndarray


def predicted_measures(
    W1: object,
    W2: object,
    sigma_yx: object,
    t: object,
    rates: object = None,
    *,
    fractions: Sequence[float] = (0.5, 0.9, 0.99),
    lowest_loss: float | np.ndarray = 0.0,
) -> PredictedMeasures:
    """Kernel distance, final loss and time to fit of the λ_eff-balanced prediction (§6.2).

    For each two-layer init: :func:`balanced_prediction`, then the exact solution from it
    (:func:`qqt_with_rates`, λ = λ_eff, per-layer rates if given), and the measures of the
    pipeline (:func:`lrsweep.metrics.kernel_distance`, :func:`lrsweep.fitting.loss`,
    :func:`lrsweep.fitting.time_to_fit`) on it. Compare with the simulated run of the same
    init (the ``*_prediction_error`` columns of :mod:`lrsweep.measures`).

    Parameters
    ----------
    W1 : array_like, shape (B, N_h, N_i)
    W2 : array_like, shape (B, N_o, N_h)
    sigma_yx : array_like, shape (N_o, N_i) or (B, N_o, N_i)
        Whitened-input task.
    t : array_like, shape (n_t,)
        Saved times in units of τ, strictly increasing, t[0] the start (usually 0).
    rates : array_like, shape (2,) or (B, 2), optional
    fractions : sequence of float
        Loss-decrease fractions of the times to fit (the pipeline's 50/90/99 %).
    lowest_loss : float or ndarray, shape (B,)
        End level of the times to fit (the pipeline uses the bottleneck's lowest loss).

    Returns
    -------
    PredictedMeasures
    """
    W1 = as_array(W1, "W1", ndim=3)
    W2 = as_array(W2, "W2", ndim=3)
    syx = as_array(sigma_yx, "sigma_yx", ndim=(2, 3))
    times = as_times(t)
    B = W1.shape[0]
    n_i = W1.shape[-1]
    pred = balanced_prediction(W1, W2, rates)
    ok = np.flatnonzero(pred.admissible)
    n_t = times.size
    loss = np.full((n_t, B), np.nan)
    dist = np.full((n_t, B), np.nan)
    if ok.size:
        syx_ok = syx if syx.ndim == 2 else syx[ok]
        q = qqt_with_rates(
            pred.W1[ok], pred.W2[ok], syx_ok, times, pred.rates[ok], lam=pred.lam[ok]
        )
        grams = metrics.ntk_grams_from_qqt(q, n_i)
        g0 = metrics.KernelGrams(grams.out_grams[0], grams.in_grams[0])
        dist[:, ok] = metrics.kernel_distance(g0, grams)
        loss[:, ok] = fitting.loss(q[..., n_i:, :n_i], syx_ok)
    low = np.broadcast_to(np.asarray(lowest_loss, dtype=float), (B,))
    ttf = np.full((len(fractions), B), np.nan)
    if ok.size and n_t >= 2:
        ttf[:, ok] = fitting.time_to_fit(times, loss[:, ok], fractions, final_loss=low[ok])
    return PredictedMeasures(
        prediction=pred,
        t=times,
        loss=loss,
        kernel_distance_curve=dist,
        kernel_distance=dist[-1],
        final_loss=loss[-1],
        time_to_fit=ttf,
    )
