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
    as_times,
    batch_shape,
    positive,
    positive_int,
    weight_list,
)
from lrsweep._validate import sigma_xx as check_sigma_xx

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
    "time_to_fit",
    "time_to_level",
]

#: Default threshold on the kernel distance S(0, t_end) between 'lazy' (S ≤ threshold) and
#: 'rich' (S > threshold); see :func:`regime` for the argument.
LAZY_THRESHOLD = 0.01


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
        w_star = (proj * d_inv[..., None, :]) @ _t(V)  # Σyx Σxx⁺
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
