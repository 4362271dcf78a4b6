"""Lazy/rich measures: loss, NTK, kernel distance, weight and representation change, time to fit.

All functions are pure and vectorised over optional leading batch axes ``...`` (runs, times,
or both, e.g. ``(n_t, n_runs)``); the only Python loop is over the L layers.

Neural tangent kernel of a depth-L linear network ŷ = W_L⋯W_1 x on inputs X (N_i × P),
indexed by (output a, sample n) (theory.md §4):

    K = Σ_l (A_l A_lᵀ) ⊗ (Xᵀ B_lᵀ B_l X),   A_l = W_L⋯W_{l+1},  B_l = W_{l−1}⋯W_1

(A_L = I_{N_o}, B_1 = I_{N_i}). It is stored as "grams" (:class:`KernelGrams`): the output
grams O_l = A_lA_lᵀ (N_o × N_o) and the input grams C_l = B_lᵀB_l (N_i × N_i). Inner
products between kernels never build the (P·N_o)² matrix:

    ⟨K_s, K_t⟩_F = P² Σ_{l,l'} ⟨O_l^s, O_{l'}^t⟩_F · tr(C_l^s Σxx C_{l'}^t Σxx),  Σxx = XXᵀ/P.

**Normalisation.** :func:`kernel_inner` and :func:`kernel_norm` return the kernel per
sample pair, i.e. the inner product of K/P (drop the P² factor); pass ``n_samples=P`` for
the raw ⟨K_s, K_t⟩_F of :func:`ntk_matrix`. K/P is the kernel of the gradient flow of
ℒ = 1/(2P) Σ_n ‖y_n − ŷ_n‖²: τ dŷ/dt = −(K/P)(ŷ − y), and it depends on the data only
through Σxx (symmetric PSD; internally C_l enters as Σxx^{1/2} C_l Σxx^{1/2}, so directions
of input space that X never probes drop out). The normalised measures (:func:`kernel_distance`,
:func:`relative_kernel_change`, :func:`rsm_distance`) do not depend on P at all.

References
----------
Dominé et al., "From Lazy to Rich: Exact Learning Dynamics in Deep Linear Networks",
ICLR 2025, arXiv:2409.14623, §4 (NTK of the two-layer network).
Fort et al., "Deep learning versus kernel learning: an empirical study of loss landscape
geometry and the time evolution of the Neural Tangent Kernel", NeurIPS 2020 (kernel distance).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from lrsweep._validate import (
    SYMMETRY_RTOL,
    as_array,
    as_float,
    batch_shape,
    positive_int,
    raise_not_finite,
    weight_list,
)
from lrsweep._validate import sigma_xx as check_sigma_xx

# The loss and learning progress live in lrsweep.fitting; re-exported so that lrsweep.metrics
# stays the one import for every per-run measure.
from lrsweep.fitting import (
    FIT_FRACTION,
    LAZY_THRESHOLD,
    REGIMES,
    fit_fraction,
    loss,
    lowest_loss,
    regime,
    time_to_fit,
    time_to_level,
)

__all__ = [
    "KernelGrams",
    "LAZY_THRESHOLD",
    "FIT_FRACTION",
    "REGIMES",
    "end_to_end",
    "fit_fraction",
    "kernel_distance",
    "kernel_inner",
    "kernel_norm",
    "loss",
    "lowest_loss",
    "ntk_grams",
    "ntk_grams_from_qqt",
    "ntk_matrix",
    "regime",
    "relative_kernel_change",
    "relative_weight_change",
    "rsm_distance",
    "singular_values",
    "time_to_fit",
    "time_to_level",
    "two_layer_kernel_distance",
]


class KernelGrams(NamedTuple):
    """The NTK K = Σ_l O_l ⊗ (Xᵀ C_l X) in factored form (unpacks as ``(out_grams, in_grams)``).

    Attributes
    ----------
    out_grams : ndarray, shape (..., L, N_o, N_o)
        O_l = A_l A_lᵀ with A_l = W_L⋯W_{l+1} (O_L = I).
    in_grams : ndarray, shape (..., L, N_i, N_i)
        C_l = B_lᵀ B_l with B_l = W_{l−1}⋯W_1 (C_1 = I).
    """

    out_grams: np.ndarray
    in_grams: np.ndarray


# --------------------------------------------------------------------------------------
# validation helpers
# --------------------------------------------------------------------------------------


def _as_grams(grams: object, name: str) -> KernelGrams:
    """Check ``grams`` = (out (..., L, N_o, N_o), in (..., L, N_i, N_i)); return KernelGrams."""
    if isinstance(grams, np.ndarray) or not isinstance(grams, Sequence) or len(grams) != 2:
        raise TypeError(
            f"`{name}` must be a pair (out_grams, in_grams) as returned by ntk_grams or "
            f"ntk_grams_from_qqt, got {type(grams).__name__}"
        )
    out = as_array(grams[0], f"{name}.out_grams")
    inn = as_array(grams[1], f"{name}.in_grams")
    for arr, part, n in ((out, "out_grams", "N_o"), (inn, "in_grams", "N_i")):
        if arr.ndim < 3 or arr.shape[-1] != arr.shape[-2]:
            raise ValueError(
                f"`{name}.{part}` must have shape (..., L, {n}, {n}), got shape {arr.shape}"
            )
    if out.shape[-3] != inn.shape[-3]:
        raise ValueError(
            f"`{name}` must have one out gram and one in gram per layer, got L={out.shape[-3]} "
            f"out_grams and L={inn.shape[-3]} in_grams"
        )
    batch_shape([out.shape[:-3], inn.shape[:-3]], name)
    return KernelGrams(out, inn)


def _match_grams(g_s: KernelGrams, g_t: KernelGrams, names: tuple[str, str], *, same_depth: bool):
    """Check two kernels live on the same space (N_o, N_i) (and depth L if asked)."""
    dims = ("L", "N_o", "N_i") if same_depth else ("N_o", "N_i")
    d_s = (g_s.out_grams.shape[-3], g_s.out_grams.shape[-1], g_s.in_grams.shape[-1])
    d_t = (g_t.out_grams.shape[-3], g_t.out_grams.shape[-1], g_t.in_grams.shape[-1])
    if not same_depth:
        d_s, d_t = d_s[1:], d_t[1:]
    if d_s != d_t:
        raise ValueError(
            f"`{names[0]}` and `{names[1]}` must have the same ({', '.join(dims)}), "
            f"got {d_s} and {d_t}"
        )
    shapes = [x.shape[:-3] for x in (*g_s, *g_t)]
    batch_shape(shapes, f"{names[0]}` and `{names[1]}")


def _root_of(sigma_xx: object, n_in: int) -> np.ndarray | None:
    """Validated Σxx^{1/2}, or None for whitened inputs."""
    sigma = check_sigma_xx(sigma_xx, n_in)
    return None if sigma is None else _sqrt_psd(sigma)


def _safe_divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, NaN where den == 0 (no warnings)."""
    num, den = np.broadcast_arrays(np.asarray(num, float), np.asarray(den, float))
    return np.divide(num, den, out=np.full(num.shape, np.nan), where=den > 0)


def _t(a: np.ndarray) -> np.ndarray:
    return np.swapaxes(a, -1, -2)


# --------------------------------------------------------------------------------------
# structured inner products
# --------------------------------------------------------------------------------------


def _sqrt_psd(sigma: np.ndarray) -> np.ndarray:
    """Σxx^{1/2} (symmetric PSD square root); raises if Σxx has a negative eigenvalue."""
    d, V = np.linalg.eigh(sigma)
    top = np.max(np.abs(d), axis=-1, keepdims=True)
    if np.any(d < -SYMMETRY_RTOL * top):
        raise ValueError(
            "`sigma_xx` must be positive semi-definite (Sigma_xx = X X^T / P), but its "
            f"smallest eigenvalue is {float(np.min(d)):.3g}"
        )
    # eigenvalues at round-off level are zero: their square roots (~√ε) would be noise
    d = np.where(d > d.shape[-1] * np.finfo(float).eps * top, d, 0.0)
    return (V * np.sqrt(d)[..., None, :]) @ _t(V)


def _whiten(g: KernelGrams, root: np.ndarray | None) -> KernelGrams:
    """Replace C_l by M_l = Σxx^{1/2} C_l Σxx^{1/2}, so tr(C Σxx C' Σxx) = ⟨M, M'⟩_F.

    In these coordinates every term O_l ⊗ M_l is PSD with ‖O_l ⊗ M_l‖ ≤ ‖K‖, and directions
    that X never probes (the null space of Σxx) drop out before any difference is formed.
    """
    if root is None:
        return g
    r = root[..., None, :, :]
    return KernelGrams(g.out_grams, r @ g.in_grams @ r)


def _cross(g_s: KernelGrams, g_t: KernelGrams) -> np.ndarray:
    """Terms ⟨O_l^s, O_l'^t⟩_F ⟨M_l^s, M_l'^t⟩_F of ⟨K_s, K_t⟩_F / P², shape (..., L, L')."""
    out_cross = np.einsum("...lab,...mab->...lm", g_s.out_grams, g_t.out_grams)
    in_cross = np.einsum("...lij,...mij->...lm", g_s.in_grams, g_t.in_grams)
    return out_cross * in_cross


def _unit_scale(g: KernelGrams) -> tuple[np.ndarray, np.ndarray]:
    """Factors (c_O, c_C) per batch entry, shape (..., 1, 1, 1), that bring the largest entry
    of the output grams and of the input grams to 1 (1 where they are zero).

    Scaling every O_l by c_O and every C_l by c_C scales K by c_O·c_C, which the normalised
    measures do not see; their inner products (∝ K²) then neither overflow nor underflow
    for kernels of any scale between float64's limits.
    """

    def factor(x: np.ndarray) -> np.ndarray:
        top = np.max(np.abs(x), axis=(-3, -2, -1), keepdims=True)
        return np.divide(1.0, top, out=np.ones_like(top), where=top > 0)

    return factor(g.out_grams), factor(g.in_grams)


def _rescaled(g: KernelGrams, c_out: np.ndarray, c_in: np.ndarray) -> KernelGrams:
    return KernelGrams(g.out_grams * c_out, g.in_grams * c_in)


def _inner(g_s: KernelGrams, g_t: KernelGrams) -> np.ndarray:
    """⟨K_s, K_t⟩_F / P² for whitened grams, shape (...)."""
    return np.sum(_cross(g_s, g_t), axis=(-2, -1))


def _scaled_difference(
    g_0: KernelGrams, g_t: KernelGrams, a_0: np.ndarray, a_t: np.ndarray
) -> KernelGrams:
    """Grams of a_t·K_t − a_0·K_0 as 2L terms that are small when the kernel barely moves.

    a_t O^t ⊗ M^t − a_0 O^0 ⊗ M^0 = (a_t O^t − a_0 O^0) ⊗ M^t + a_0 O^0 ⊗ (M^t − M^0).
    """
    a_0 = a_0[..., None, None, None]
    a_t = a_t[..., None, None, None]
    o_0, o_t, m_0, m_t = g_0.out_grams, g_t.out_grams, g_0.in_grams, g_t.in_grams
    out = [a_t * o_t - a_0 * o_0, a_0 * o_0]
    inn = [m_t, m_t - m_0]
    shape = np.broadcast_shapes(*(x.shape[:-3] for x in out + inn))
    out = [np.broadcast_to(x, shape + x.shape[-3:]) for x in out]
    inn = [np.broadcast_to(x, shape + x.shape[-3:]) for x in inn]
    return KernelGrams(np.concatenate(out, axis=-3), np.concatenate(inn, axis=-3))


def _sq_norm_difference(
    g_0: KernelGrams, g_t: KernelGrams, a_0: np.ndarray, a_t: np.ndarray
) -> np.ndarray:
    """‖a_t K_t − a_0 K_0‖_F² / P² (whitened grams) without catastrophic cancellation.

    Two exact expansions into inner products, each with round-off ≈ ε·(sum of |terms|):

    - kernel form a_t²⟨K_t,K_t⟩ − 2a_0a_t⟨K_0,K_t⟩ + a_0²⟨K_0,K_0⟩: its terms are
      O(‖K‖²), so a small difference (lazy regime) loses digits (error ε‖K‖²);
    - factor form ‖Σ_l (a_tO_l^t − a_0O_l^0) ⊗ M_l^t + a_0O_l^0 ⊗ (M_l^t − M_l^0)‖²: its
      terms are second order in the change of each factor, accurate when no factor moves
      much more than the kernel (always the case in the lazy regime).

    Per batch entry the form with the smaller Σ|terms| (round-off bound) is returned,
    clipped at 0.
    """
    a0, at = a_0[..., None, None], a_t[..., None, None]
    kern = [at * at * _cross(g_t, g_t), -2 * a0 * at * _cross(g_0, g_t), a0 * a0 * _cross(g_0, g_0)]
    val_k = sum(np.sum(x, axis=(-2, -1)) for x in kern)
    abs_k = sum(np.sum(np.abs(x), axis=(-2, -1)) for x in kern)
    diff = _scaled_difference(g_0, g_t, a_0, a_t)
    fac = _cross(diff, diff)
    val_f = np.sum(fac, axis=(-2, -1))
    abs_f = np.sum(np.abs(fac), axis=(-2, -1))
    return np.maximum(np.where(abs_f <= abs_k, val_f, val_k), 0.0)


# --------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------


def end_to_end(weights: Sequence[np.ndarray]) -> np.ndarray:
    """End-to-end map W = W_L⋯W_1 of a deep linear network.

    Parameters
    ----------
    weights : sequence of ndarray
        [W_1, ..., W_L] (input side first), W_l of shape (..., N_l, N_{l−1}); batch axes
        broadcast.

    Returns
    -------
    W : ndarray, shape (..., N_o, N_i)

    Examples
    --------
    >>> import numpy as np
    >>> end_to_end([np.eye(2), 2 * np.eye(2)])
    array([[2., 0.],
           [0., 2.]])
    """
    ws = weight_list(weights)
    W = ws[0]
    for w in ws[1:]:
        W = w @ W
    return W


#: Ratio σ_k/σ_max below which :func:`singular_values` takes an SVD instead of the square
#: roots of the Gram matrix's eigenvalues. Those carry an absolute error ≈ c·ε·σ_max² (c a
#: small multiple of N), i.e. a relative error ≈ c·ε·(σ_max/σ_k)²/2 in σ_k: at most
#: ≈ c·1e-10 above this ratio (1e-8 needs c ≤ 100), unbounded below it. In a sweep ~1 % of
#: the (run, time) pairs fall below it (modes not yet learnt from a tiny init).
SVD_RATIO = 1e-3


#: Floats per block of the trajectory measures (:func:`singular_values`,
#: :func:`two_layer_kernel_distance`), which run in blocks along the leading batch axis (e.g.
#: time): a block's temporaries (about 20 in the kernel distance) stay within the caches and
#: reuse their memory, instead of each being a fresh allocation the size of a whole
#: trajectory (measured 10–45 % faster on (121, 100–500, N, N) trajectories).
_BLOCK_FLOATS = 2**17


def singular_values(
    W: object, rank: int | None = None, *, factors: tuple[np.ndarray, np.ndarray] | None = None
) -> np.ndarray:
    """Singular values of W, descending, as accurate as ``np.linalg.svd`` (and faster).

    Computed as √eig of a small symmetric matrix with the same non-zero eigenvalues as WᵀW
    (``eigvalsh``): the smaller Gram matrix WᵀW or WWᵀ, or with ``factors`` W = Y_o Y_iᵀ of
    h < min(N_o, N_i) columns, LᵀML with Y_iᵀY_i = LLᵀ, M = Y_oᵀY_o (h × h). The matrices
    where this is not accurate, i.e. where the smallest of the ``rank`` largest singular
    values is below :data:`SVD_RATIO` · σ_max (or a value is not finite), are redone by
    ``np.linalg.svd(W)``. Values beyond ``rank`` (or h) are set to 0.

    Accuracy, relative to the SVD of the same W: ≲ 1e-9 relative for σ ≥ SVD_RATIO·σ_max
    (the bound of :data:`SVD_RATIO`), identical below it; beyond the rank 0 instead of SVD
    round-off (≲ ε·σ_max).

    Parameters
    ----------
    W : array_like, shape (..., N_o, N_i)
    rank : int, optional
        An upper bound on the rank of every W (e.g. the narrowest layer width of a linear
        network, W = W_L⋯W_1); default min(N_o, N_i).
    factors : (ndarray, ndarray), optional
        (Y_o, Y_i) of shapes (..., N_o, h) and (..., N_i, h), the batch axes of W, with
        W = Y_o Y_iᵀ, e.g. the blocks of :func:`lrsweep.exact.qqt_factor` (then
        Y_iᵀY_i = W1W1ᵀ and Y_oᵀY_o = W2ᵀW2 up to a rotation). Used when h < min(N_o, N_i).

    Returns
    -------
    ndarray, shape (..., min(N_o, N_i))

    Examples
    --------
    >>> import numpy as np
    >>> singular_values(np.array([[3.0, 0.0], [0.0, -1e-6]])).tolist()
    [3.0, 1e-06]
    """
    W = as_float(W, "W")
    if W.ndim < 2:
        raise ValueError(f"`W` must have shape (..., N_o, N_i), got shape {W.shape}")
    k = min(W.shape[-2:])
    r = k if rank is None else min(positive_int(rank, "rank"), k)
    if k == 0:
        return np.zeros(W.shape[:-2] + (0,))
    if not np.all(np.isfinite(W)):  # exactly as np.linalg.svd (which raises on NaN)
        s = np.linalg.svd(W, compute_uv=False)
        s[..., r:] = 0.0
        return s
    if factors is None or factors[0].shape[-1] >= k:
        factors = None
    else:
        r = min(r, factors[0].shape[-1])
    if W.ndim > 2 and W.shape[0] > 1 and W.size > _BLOCK_FLOATS:  # see _BLOCK_FLOATS
        step = max(1, W.shape[0] * _BLOCK_FLOATS // W.size)
        s = np.empty(W.shape[:-2] + (k,))
        for start in range(0, W.shape[0], step):
            sl = slice(start, start + step)
            f = None if factors is None else (factors[0][sl], factors[1][sl])
            s[sl] = _singular_values(W[sl], r, f)
        return s
    return _singular_values(W, r, factors)


def _singular_values(
    W: np.ndarray, r: int, factors: tuple[np.ndarray, np.ndarray] | None
) -> np.ndarray:
    """:func:`singular_values` of a finite float array (one block); r ≤ the factors' h."""
    k = min(W.shape[-2:])
    s = np.zeros(W.shape[:-2] + (k,))
    redo = np.zeros(W.shape[:-2], dtype=bool)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        if factors is not None:
            Y_o, Y_i = factors
            N = np.ascontiguousarray(_t(Y_i)) @ Y_i
            M = np.ascontiguousarray(_t(Y_o)) @ Y_o
            L = _cholesky(N)
            small = np.ascontiguousarray(_t(L)) @ M @ L
            redo = ~np.all(np.isfinite(small), axis=(-2, -1))  # N not positive definite
            small[redo] = 0.0
        else:
            Wt = np.ascontiguousarray(_t(W))
            small = Wt @ W if W.shape[-1] <= W.shape[-2] else W @ Wt
        eig = np.linalg.eigvalsh(small)[..., ::-1]
        s[..., : eig.shape[-1]] = np.sqrt(np.maximum(eig, 0.0))
        redo |= ~(s[..., r - 1] >= SVD_RATIO * s[..., 0])
    if np.any(redo):
        s[redo] = np.linalg.svd(W[redo], compute_uv=False)
    s[..., r:] = 0.0
    return s


def _cholesky(N: np.ndarray) -> np.ndarray:
    """Lower L with LLᵀ = N for symmetric positive definite N (..., h, h), vectorised over the
    batch (h is small); NaN or inf (not an error) where N is not positive definite."""
    h = N.shape[-1]
    L = np.zeros(N.shape)
    for j in range(h):
        col = N[..., j:, j] - np.sum(L[..., j:, :j] * L[..., j, None, :j], axis=-1)
        d = np.sqrt(col[..., 0])
        L[..., j, j] = d
        L[..., j + 1 :, j] = col[..., 1:] / d[..., None]
    return L


def ntk_grams(weights: Sequence[np.ndarray]) -> KernelGrams:
    """Factored NTK of a depth-L linear network: the grams O_l = A_lA_lᵀ and C_l = B_lᵀB_l.

    K = Σ_l (A_l A_lᵀ) ⊗ (Xᵀ B_lᵀ B_l X) with A_l = W_L⋯W_{l+1} (A_L = I_{N_o}) and
    B_l = W_{l−1}⋯W_1 (B_1 = I_{N_i}): the term l is J_l J_lᵀ for the Jacobian J_l of the
    outputs with respect to W_l. Depth 2 gives K = W2W2ᵀ ⊗ XᵀX + I ⊗ XᵀW1ᵀW1X (theory §4).

    Parameters
    ----------
    weights : sequence of ndarray
        [W_1, ..., W_L] (input side first), W_l of shape (..., N_l, N_{l−1}), N_0 = N_i,
        N_L = N_o; leading batch axes broadcast.

    Returns
    -------
    KernelGrams
        ``out_grams`` (..., L, N_o, N_o) and ``in_grams`` (..., L, N_i, N_i).

    Examples
    --------
    >>> import numpy as np
    >>> W1, W2 = np.array([[1.0, 2.0]]), np.array([[3.0]])
    >>> out, inn = ntk_grams([W1, W2])
    >>> out[:, 0, 0], inn[1]
    (array([9., 1.]), array([[1., 2.],
           [2., 4.]]))
    """
    ws = weight_list(weights)
    batch = batch_shape([w.shape[:-2] for w in ws], "weights")
    n_i, n_o = ws[0].shape[-1], ws[-1].shape[-2]
    ins = [np.eye(n_i)]  # C_1 = I
    B = None  # B_l = W_{l-1}⋯W_1
    for w in ws[:-1]:
        B = w if B is None else w @ B
        ins.append(_t(B) @ B)
    outs = [np.eye(n_o)]  # O_L = I
    A = None  # A_l = W_L⋯W_{l+1}
    for w in ws[:0:-1]:
        A = w if A is None else A @ w
        outs.append(A @ _t(A))
    outs.reverse()
    out = np.stack([np.broadcast_to(o, batch + (n_o, n_o)) for o in outs], axis=-3)
    inn = np.stack([np.broadcast_to(c, batch + (n_i, n_i)) for c in ins], axis=-3)
    return KernelGrams(out, inn)


def ntk_grams_from_qqt(q: np.ndarray, n_in: int) -> KernelGrams:
    """Factored two-layer NTK from QQᵀ = [[W1ᵀW1, (W2W1)ᵀ], [W2W1, W2W2ᵀ]] (theory §3, §4).

    K = W2W2ᵀ ⊗ XᵀX + I_{N_o} ⊗ XᵀW1ᵀW1X, i.e. out_grams = [W2W2ᵀ, I], in_grams =
    [I, W1ᵀW1]; only the diagonal blocks of QQᵀ enter, so the exact solution gives the
    finite-width NTK at every t.

    Parameters
    ----------
    q : ndarray, shape (..., N_i + N_o, N_i + N_o)
        QQᵀ with Q = [W1ᵀ; W2] (e.g. from ``lrsweep.exact.qqt``, shape (n_t, ..., ., .)).
    n_in : int
        N_i, the size of the top-left block.

    Returns
    -------
    KernelGrams
        ``out_grams`` (..., 2, N_o, N_o) and ``in_grams`` (..., 2, N_i, N_i).

    Examples
    --------
    >>> import numpy as np
    >>> Q = np.array([[1.0], [2.0], [3.0]])     # W1ᵀ = [[1], [2]], W2 = [[3]]
    >>> out, inn = ntk_grams_from_qqt(Q @ Q.T, n_in=2)
    >>> out[:, 0, 0], inn[1]
    (array([9., 1.]), array([[1., 2.],
           [2., 4.]]))
    """
    q = as_array(q, "q")
    n_in = positive_int(n_in, "n_in")
    if q.ndim < 2 or q.shape[-1] != q.shape[-2]:
        raise ValueError(
            f"`q` must have shape (..., N_i + N_o, N_i + N_o) (square), got shape {q.shape}"
        )
    if n_in >= q.shape[-1]:
        raise ValueError(
            f"`n_in` must be smaller than the size of `q` (N_i + N_o = {q.shape[-1]}) so that "
            f"N_o >= 1, got n_in={n_in}"
        )
    n_o = q.shape[-1] - n_in
    batch = q.shape[:-2]
    w1tw1 = q[..., :n_in, :n_in]
    w2w2t = q[..., n_in:, n_in:]
    out = np.stack([w2w2t, np.broadcast_to(np.eye(n_o), batch + (n_o, n_o))], axis=-3)
    inn = np.stack([np.broadcast_to(np.eye(n_in), batch + (n_in, n_in)), w1tw1], axis=-3)
    return KernelGrams(out, inn)


def kernel_inner(
    grams_s: KernelGrams | tuple[np.ndarray, np.ndarray],
    grams_t: KernelGrams | tuple[np.ndarray, np.ndarray],
    sigma_xx: np.ndarray | None = None,
    *,
    n_samples: int | None = None,
) -> np.ndarray:
    """Frobenius inner product of two NTKs, per sample pair: ⟨K_s, K_t⟩_F / P².

    ⟨K_s, K_t⟩_F / P² = Σ_{l,l'} ⟨O_l^s, O_{l'}^t⟩_F · tr(C_l^s Σxx C_{l'}^t Σxx),
    from ⟨A ⊗ B, C ⊗ D⟩ = ⟨A, C⟩⟨B, D⟩ and ⟨XᵀCX, XᵀC'X⟩ = P² tr(C Σxx C' Σxx);
    costs O(L² (N_o² + N_i³)) per batch entry and never forms K.

    Parameters
    ----------
    grams_s, grams_t : KernelGrams or (out_grams, in_grams)
        From :func:`ntk_grams` / :func:`ntk_grams_from_qqt`; same N_o and N_i (the depths
        may differ); leading batch axes broadcast.
    sigma_xx : ndarray, shape (..., N_i, N_i), optional
        Input correlation Σxx = XXᵀ/P; None means whitened inputs (Σxx = I).
    n_samples : int, optional
        P. If given, return the raw ⟨K_s, K_t⟩_F (the inner product of :func:`ntk_matrix`
        outputs) instead of the per-sample-pair value.

    Returns
    -------
    ndarray, shape (...)
    """
    g_s, g_t = _as_grams(grams_s, "grams_s"), _as_grams(grams_t, "grams_t")
    _match_grams(g_s, g_t, ("grams_s", "grams_t"), same_depth=False)
    scale = 1.0 if n_samples is None else float(positive_int(n_samples, "n_samples")) ** 2
    root = _root_of(sigma_xx, g_s.in_grams.shape[-1])
    return scale * _inner(_whiten(g_s, root), _whiten(g_t, root))


def kernel_norm(
    grams: KernelGrams | tuple[np.ndarray, np.ndarray],
    sigma_xx: np.ndarray | None = None,
    *,
    n_samples: int | None = None,
) -> np.ndarray:
    """Frobenius norm of the NTK per sample: ‖K‖_F / P (or ‖K‖_F with ``n_samples=P``).

    ‖K‖_F / P = √(Σ_{l,l'} ⟨O_l, O_{l'}⟩_F tr(C_l Σxx C_{l'} Σxx)); see :func:`kernel_inner`.

    Parameters
    ----------
    grams : KernelGrams or (out_grams, in_grams)
    sigma_xx : ndarray, shape (..., N_i, N_i), optional
        None means Σxx = I.
    n_samples : int, optional
        P; if given, return the raw ‖K‖_F.

    Returns
    -------
    ndarray, shape (...)
    """
    g = _as_grams(grams, "grams")
    scale = 1.0 if n_samples is None else float(positive_int(n_samples, "n_samples"))
    g = _whiten(g, _root_of(sigma_xx, g.in_grams.shape[-1]))
    return scale * np.sqrt(np.maximum(_inner(g, g), 0.0))


def kernel_distance(
    grams_0: KernelGrams | tuple[np.ndarray, np.ndarray],
    grams_t: KernelGrams | tuple[np.ndarray, np.ndarray],
    sigma_xx: np.ndarray | None = None,
) -> np.ndarray:
    """Kernel distance S(0, t) = 1 − ⟨K_0, K_t⟩_F / (‖K_0‖_F ‖K_t‖_F) (Fort et al. 2020).

    S is 0 for kernels that are equal up to a positive factor, lies in [0, 1] for PSD
    kernels (every NTK is PSD) and does not depend on P. Lazy training keeps S(0, t) ≈ 0;
    rich training reaches S(0, ∞) = O(0.1–1) (theory §4).

    Evaluated as S = ½‖K_t/‖K_t‖ − K_0/‖K_0‖‖_F² (equal to 1 − cos up to O(ε·S + ε²)),
    expanded through inner products as in :func:`relative_kernel_change`, so the tiny
    distances of the lazy regime keep their relative accuracy instead of the O(ε) absolute
    accuracy of 1 − cos. Round-off is clipped to [0, 2].

    Parameters
    ----------
    grams_0, grams_t : KernelGrams or (out_grams, in_grams)
        Kernels at times 0 and t, same (L, N_o, N_i); leading batch axes broadcast (e.g.
        grams_0 of shape (n_runs, L, ., .) against grams_t of (n_t, n_runs, L, ., .)).
    sigma_xx : ndarray, shape (..., N_i, N_i), optional
        None means Σxx = I.

    Returns
    -------
    S : ndarray, shape (...)
        NaN where either kernel is zero (e.g. a net initialised at W = 0).

    Examples
    --------
    >>> import numpy as np
    >>> g0 = ntk_grams([np.eye(2), np.eye(2)])
    >>> g1 = ntk_grams([np.diag([1.0, 0.0]), np.diag([1.0, 0.0])])
    >>> float(kernel_distance(g0, g0)), round(float(kernel_distance(g0, g1)), 4)
    (0.0, 0.1835)
    """
    g_0, g_t = _as_grams(grams_0, "grams_0"), _as_grams(grams_t, "grams_t")
    _match_grams(g_0, g_t, ("grams_0", "grams_t"), same_depth=True)
    root = _root_of(sigma_xx, g_0.in_grams.shape[-1])
    g_0, g_t = _whiten(g_0, root), _whiten(g_t, root)
    g_0, g_t = _rescaled(g_0, *_unit_scale(g_0)), _rescaled(g_t, *_unit_scale(g_t))
    inv_0 = _safe_divide(1.0, np.sqrt(np.maximum(_inner(g_0, g_0), 0.0)))
    inv_t = _safe_divide(1.0, np.sqrt(np.maximum(_inner(g_t, g_t), 0.0)))
    return np.clip(0.5 * _sq_norm_difference(g_0, g_t, inv_0, inv_t), 0.0, 2.0)


def _frob(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """⟨a, b⟩_F over the last two axes (batch axes broadcast)."""
    if a.flags.c_contiguous and b.flags.c_contiguous:  # one flat dot product per matrix
        return np.vecdot(a.reshape(*a.shape[:-2], -1), b.reshape(*b.shape[:-2], -1))
    return np.einsum("...ij,...ij->...", a, b)


def _tr(a: np.ndarray) -> np.ndarray:
    return np.einsum("...ii->...", a)


def two_layer_kernel_distance(
    out_0: np.ndarray, in_0: np.ndarray, out_t: np.ndarray, in_t: np.ndarray
) -> np.ndarray:
    """:func:`kernel_distance` of two-layer NTKs K = O ⊗ XᵀX + I ⊗ XᵀCX (whitened inputs).

    The same numbers as ``kernel_distance(([O_0, I], [I, C_0]), ([O_t, I], [I, C_t]))`` (the
    grams of :func:`ntk_grams` and :func:`ntk_grams_from_qqt` at depth 2, O = W2W2ᵀ and
    C = W1ᵀW1), up to round-off: the same rescaling, kernel and factor forms and choice
    between them, with the identity grams entering through their traces and sizes instead
    of as N × N arrays, in blocks along the leading batch axis (several times faster for a
    trajectory).

    Parameters
    ----------
    out_0, in_0 : ndarray, shapes (..., N_o, N_o), (..., N_i, N_i)
        O and C at time 0.
    out_t, in_t : ndarray, shapes (..., N_o, N_o), (..., N_i, N_i)
        O and C at time t; batch axes broadcast against those of time 0 (e.g. (n_t, B, ., .)
        against (B, ., .)).

    Returns
    -------
    S : ndarray, shape (...)
        NaN where either kernel is zero.
    """
    grams = {"out_0": out_0, "in_0": in_0, "out_t": out_t, "in_t": in_t}
    grams = {name: as_float(x, name) for name, x in grams.items()}
    for name, x in grams.items():
        size = ("N_o", "out_0") if name.startswith("out") else ("N_i", "in_0")
        k = grams[size[1]].shape[-1] if grams[size[1]].ndim else 0
        if x.ndim < 2 or x.shape[-2:] != (k, k):
            raise ValueError(
                f"`{name}` must have shape (..., {size[0]}, {size[0]}) = (..., {k}, {k}), "
                f"got {x.shape}"
            )
    batch = batch_shape([x.shape[:-2] for x in grams.values()], "out_0`, `in_0`, `out_t`, `in_t")
    # blocks along the leading batch axis (e.g. time) keep the ~20 temporaries in cache
    floats = int(np.prod(batch)) * (grams["out_0"].shape[-1] ** 2 + grams["in_0"].shape[-1] ** 2)
    if len(batch) > 0 and batch[0] > 1 and floats > _BLOCK_FLOATS:
        step = max(1, batch[0] * _BLOCK_FLOATS // floats)
        parts = []
        for start in range(0, batch[0], step):
            block = {
                name: x[start : start + step] if x.ndim - 2 == len(batch) and x.shape[0] > 1 else x
                for name, x in grams.items()
            }
            parts.append(_two_layer_kernel_distance(**block))
        return np.concatenate(parts, axis=0)
    return _two_layer_kernel_distance(**grams)


def _two_layer_kernel_distance(
    out_0: np.ndarray, in_0: np.ndarray, out_t: np.ndarray, in_t: np.ndarray
) -> np.ndarray:
    """:func:`two_layer_kernel_distance` of validated float arrays (one block)."""
    grams = {"out_0": out_0, "in_0": in_0, "out_t": out_t, "in_t": in_t}
    n_o, n_i = out_0.shape[-1], in_0.shape[-1]

    def rescaled(name: str) -> tuple[np.ndarray, np.ndarray]:
        # _unit_scale: the largest entry of the layer's grams (the identity's 1 included) → 1.
        # max and min propagate NaN and inf, so they also check that the gram is finite.
        g = grams[name]
        top = np.maximum(np.max(g, axis=(-2, -1)), -np.min(g, axis=(-2, -1)))
        if not np.all(np.isfinite(top)):
            raise_not_finite(g, name)
        c = 1.0 / np.maximum(top, 1.0)
        return c, g * c[..., None, None]

    o_0, B_0 = rescaled("out_0")  # out grams [B, o·I], in grams [c·I, A]
    c_0, A_0 = rescaled("in_0")
    o_t, B_t = rescaled("out_t")
    c_t, A_t = rescaled("in_t")

    def cross(s: tuple, r: tuple, BB: np.ndarray, AA: np.ndarray) -> list[np.ndarray]:
        """The 2 × 2 terms ⟨O_l^s, O_m^r⟩⟨M_l^s, M_m^r⟩ of ⟨K_s, K_r⟩ (_cross), flattened;
        s, r = (o, tr B, c, tr A), BB = ⟨B_s, B_r⟩, AA = ⟨A_s, A_r⟩."""
        (o_s, trB_s, c_s, trA_s), (o_r, trB_r, c_r, trA_r) = s, r
        return [
            BB * (c_s * c_r * n_i),
            (o_r * trB_s) * (c_s * trA_r),
            (o_s * trB_r) * (c_r * trA_s),
            (o_s * o_r * n_o) * AA,
        ]

    at_0 = (o_0, _tr(B_0), c_0, _tr(A_0))
    at_t = (o_t, _tr(B_t), c_t, _tr(A_t))
    k_00 = cross(at_0, at_0, _frob(B_0, B_0), _frob(A_0, A_0))
    AtAt = _frob(A_t, A_t)
    k_tt = cross(at_t, at_t, _frob(B_t, B_t), AtAt)
    k_0t = cross(at_0, at_t, _frob(B_0, B_t), _frob(A_0, A_t))
    a_0 = _safe_divide(1.0, np.sqrt(np.maximum(sum(k_00), 0.0)))
    a_t = _safe_divide(1.0, np.sqrt(np.maximum(sum(k_tt), 0.0)))
    # kernel form (_sq_norm_difference)
    kern = [a_t * a_t * x for x in k_tt] + [-2 * a_0 * a_t * x for x in k_0t]
    kern += [a_0 * a_0 * x for x in k_00]
    val_k = sum(kern)
    abs_k = sum(np.abs(x) for x in kern)
    # factor form: out grams [D, d·I, E, e·I], in grams [c_t·I, A_t, g·I, G]
    E = a_0[..., None, None] * B_0
    D = a_t[..., None, None] * B_t
    if D.shape == np.broadcast_shapes(D.shape, E.shape):
        D -= E  # in place (the usual case: time 0 broadcast against the trajectory)
    else:
        D = D - E
    d = a_t * o_t - a_0 * o_0
    e = a_0 * o_0
    f = c_t
    g = c_t - c_0
    G = A_t - A_0
    trD, trE, trG = _tr(D), _tr(E), _tr(G)
    DD, DE, EE = _frob(D, D), _frob(D, E), _frob(E, E)
    AtG, GG = _frob(A_t, G), _frob(G, G)
    out = [
        [DD, d * trD, DE, e * trD],
        [None, d * d * n_o, d * trE, d * e * n_o],
        [None, None, EE, e * trE],
        [None, None, None, e * e * n_o],
    ]
    inn = [
        [f * f * n_i, f * at_t[3], f * g * n_i, f * trG],
        [None, AtAt, g * at_t[3], AtG],
        [None, None, g * g * n_i, g * trG],
        [None, None, None, GG],
    ]
    val_f = 0.0
    abs_f = 0.0
    for i in range(4):
        for j in range(i, 4):
            term = out[i][j] * inn[i][j]
            weight = 1.0 if i == j else 2.0  # the symmetric pair (i, j), (j, i)
            val_f = val_f + weight * term
            abs_f = abs_f + weight * np.abs(term)
    sq = np.maximum(np.where(abs_f <= abs_k, val_f, val_k), 0.0)
    return np.clip(0.5 * sq, 0.0, 2.0)


def relative_kernel_change(
    grams_0: KernelGrams | tuple[np.ndarray, np.ndarray],
    grams_t: KernelGrams | tuple[np.ndarray, np.ndarray],
    sigma_xx: np.ndarray | None = None,
) -> np.ndarray:
    """Relative NTK change ‖K_t − K_0‖_F / ‖K_0‖_F.

    ‖K_t − K_0‖² is expanded through inner products in two exact ways: the kernel form
    ‖K_t‖² − 2⟨K_0, K_t⟩ + ‖K_0‖², whose O(‖K‖²) terms cancel when the kernel barely moves
    (relative error ε‖K_0‖²/‖K_t − K_0‖²), and the factor form
    K_t − K_0 = Σ_l (O_l^t − O_l^0) ⊗ M_l^t + O_l^0 ⊗ (M_l^t − M_l^0), with
    M_l = Σxx^{1/2} C_l Σxx^{1/2} (so ⊗ means ⊗ XᵀC_lX), whose terms are second order in the
    change (relative error ≈ ε‖K_0‖/‖K_t − K_0‖ in the lazy regime). Each batch entry uses
    the form with the smaller round-off bound (sum of |terms|); negatives are clipped to 0.

    Parameters
    ----------
    grams_0, grams_t : KernelGrams or (out_grams, in_grams)
        Same (L, N_o, N_i); leading batch axes broadcast.
    sigma_xx : ndarray, shape (..., N_i, N_i), optional
        None means Σxx = I.

    Returns
    -------
    ndarray, shape (...)
        NaN where K_0 = 0.
    """
    g_0, g_t = _as_grams(grams_0, "grams_0"), _as_grams(grams_t, "grams_t")
    _match_grams(g_0, g_t, ("grams_0", "grams_t"), same_depth=True)
    root = _root_of(sigma_xx, g_0.in_grams.shape[-1])
    g_0, g_t = _whiten(g_0, root), _whiten(g_t, root)
    scale = _unit_scale(g_0)  # one scale for both kernels: the ratio is invariant to it
    g_0, g_t = _rescaled(g_0, *scale), _rescaled(g_t, *scale)
    one = np.ones(())
    num = np.sqrt(_sq_norm_difference(g_0, g_t, one, one))
    den = np.sqrt(np.maximum(_inner(g_0, g_0), 0.0))
    return _safe_divide(num, den)


def ntk_matrix(weights: Sequence[np.ndarray], X: np.ndarray) -> np.ndarray:
    """Explicit NTK K = JJᵀ of ŷ = W_L⋯W_1 x on inputs X, for small sizes only.

    K = Σ_l (A_l A_lᵀ) ⊗ (Xᵀ B_lᵀ B_l X); J is the Jacobian of all outputs ŷ_{a n} with
    respect to all parameters. Row/column index a·P + n (output-major: output a, then
    sample n), so ``K.reshape(..., N_o, P, N_o, P)[..., a, n, b, m]`` is K_{(a,n),(b,m)}.
    Memory is (P·N_o)² per batch entry: use the grams for metrics.

    Parameters
    ----------
    weights : sequence of ndarray
        [W_1, ..., W_L], W_l of shape (..., N_l, N_{l−1}).
    X : ndarray, shape (..., N_i, P)
        Inputs, one column per sample.

    Returns
    -------
    K : ndarray, shape (..., N_o·P, N_o·P)

    Examples
    --------
    >>> import numpy as np
    >>> ntk_matrix([np.array([[1.0, 2.0]]), np.array([[3.0]])], np.eye(2))
    array([[10.,  2.],
           [ 2., 13.]])
    """
    ws = weight_list(weights)
    X = as_array(X, "X")
    n_i = ws[0].shape[-1]
    if X.ndim < 2 or X.shape[-2] != n_i:
        raise ValueError(f"`X` must have shape (..., N_i, P) with N_i={n_i}, got {X.shape}")
    out, inn = ntk_grams(ws)
    Xl = X[..., None, :, :]
    g = _t(Xl) @ inn @ Xl  # (..., L, P, P)
    k4 = np.einsum("...lab,...lnm->...anbm", out, g)
    n_o, p = out.shape[-1], X.shape[-1]
    return k4.reshape(k4.shape[:-4] + (n_o * p, n_o * p))


def relative_weight_change(
    weights_t: Sequence[np.ndarray], weights_0: Sequence[np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Relative weight change ‖W_l(t) − W_l(0)‖/‖W_l(0)‖ per layer and ‖θ(t) − θ(0)‖/‖θ(0)‖ overall.

    θ stacks all layers, so the overall value is √(Σ_l ‖ΔW_l‖²) / √(Σ_l ‖W_l(0)‖²). Caution
    (theory §4): a layer that starts near zero (the small layer at large |λ|) changes by a
    large factor even in the lazy regime; the per-layer values are not a lazy/rich measure on
    their own.

    Parameters
    ----------
    weights_t, weights_0 : sequence of ndarray
        [W_1, ..., W_L] at time t and at time 0, same layer shapes; batch axes broadcast
        (e.g. weights_t[l] of shape (n_t, n_runs, N_l, N_{l−1}) against (n_runs, ., .)).

    Returns
    -------
    per_layer : ndarray, shape (..., L)
        NaN for a layer with W_l(0) = 0.
    overall : ndarray, shape (...)
        NaN if θ(0) = 0.

    Examples
    --------
    >>> import numpy as np
    >>> per_layer, overall = relative_weight_change([2 * np.eye(2), np.eye(2)],
    ...                                             [np.eye(2), np.eye(2)])
    >>> per_layer, round(float(overall), 4)
    (array([1., 0.]), 0.7071)
    """
    wt, w0 = weight_list(weights_t, "weights_t"), weight_list(weights_0, "weights_0")
    if [a.shape[-2:] for a in wt] != [b.shape[-2:] for b in w0]:
        raise ValueError(
            "`weights_t` and `weights_0` must have the same layer shapes, got "
            f"{[a.shape[-2:] for a in wt]} and {[b.shape[-2:] for b in w0]}"
        )
    batch = batch_shape([w.shape[:-2] for w in wt + w0], "weights_t` and `weights_0")
    d2 = [np.sum((a - b) ** 2, axis=(-2, -1)) for a, b in zip(wt, w0, strict=True)]
    d2 = np.stack([np.broadcast_to(x, batch) for x in d2], axis=-1)
    n2 = np.stack([np.broadcast_to(np.sum(b**2, axis=(-2, -1)), batch) for b in w0], axis=-1)
    per_layer = np.sqrt(_safe_divide(d2, n2))
    overall = np.sqrt(_safe_divide(d2.sum(axis=-1), n2.sum(axis=-1)))
    return per_layer, overall


def rsm_distance(
    grams_0: KernelGrams | tuple[np.ndarray, np.ndarray],
    grams_t: KernelGrams | tuple[np.ndarray, np.ndarray],
    sigma_xx: np.ndarray | None = None,
) -> np.ndarray:
    """Representational-similarity distance per hidden layer, 1 − cos(RSM_l(0), RSM_l(t)).

    The hidden representation h_l = W_l⋯W_1 X = B_{l+1} X (l = 1..L−1) has the P × P
    similarity matrix RSM_l = h_lᵀh_l = Xᵀ C_{l+1} X with C_{l+1} = B_{l+1}ᵀB_{l+1} the
    input gram of layer l + 1 (for depth 2, from QQᵀ: C_2 = W1ᵀW1). Then
    ⟨RSM_l(0), RSM_l(t)⟩_F = P² tr(C^0 Σxx C^t Σxx), so only N_i × N_i products are formed;
    like :func:`kernel_distance` it is evaluated as ½‖R̂_t − R̂_0‖²_F of the normalised RSMs.

    Parameters
    ----------
    grams_0, grams_t : KernelGrams or (out_grams, in_grams)
        From :func:`ntk_grams` / :func:`ntk_grams_from_qqt` at times 0 and t, same
        (L, N_o, N_i); batch axes broadcast. Only ``in_grams[..., 1:, :, :]`` is used.
    sigma_xx : ndarray, shape (..., N_i, N_i), optional
        None means Σxx = I.

    Returns
    -------
    ndarray, shape (..., L − 1)
        Entry l − 1 is the distance for hidden layer l; NaN where an RSM is zero.
    """
    g_0, g_t = _as_grams(grams_0, "grams_0"), _as_grams(grams_t, "grams_t")
    _match_grams(g_0, g_t, ("grams_0", "grams_t"), same_depth=True)
    root = _root_of(sigma_xx, g_0.in_grams.shape[-1])

    def per_layer(g: KernelGrams) -> KernelGrams:
        # hidden layer l as a one-term "kernel" 1 ⊗ (Xᵀ C_{l+1} X), layers on a batch axis
        m = _whiten(g, root).in_grams[..., 1:, None, :, :]
        return KernelGrams(np.ones(m.shape[:-3] + (1, 1, 1)), m)

    r_0, r_t = per_layer(g_0), per_layer(g_t)
    inv_0 = _safe_divide(1.0, np.sqrt(np.maximum(_inner(r_0, r_0), 0.0)))
    inv_t = _safe_divide(1.0, np.sqrt(np.maximum(_inner(r_t, r_t), 0.0)))
    return np.clip(0.5 * _sq_norm_difference(r_0, r_t, inv_0, inv_t), 0.0, 2.0)
