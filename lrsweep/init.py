"""Initialisations: exactly λ-balanced two-layer weights and plain Gaussian weights.

λ-balance (theory.md §2): W2ᵀW2 − W1W1ᵀ = λ I_{N_h}. With product ("absolute") singular
values a_k, the construction is W1 = R S1 Vᵀ, W2 = U S2 Rᵀ with s2_k² − s1_k² = λ and
s1_k s2_k = a_k.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lrsweep._validate import (
    as_array,
    balance,
    check_admissible,
    finite,
    nonnegative,
    positive_int,
    widths_list,
)
from lrsweep.tasks import Task, haar_orthogonal

__all__ = [
    "as_generator",
    "balanced_singular_values",
    "check_admissible_deep",
    "deep_balanced_singular_values",
    "gaussian",
    "gaussian_deep",
    "imbalance_report",
    "imbalances",
    "lambda_balanced",
    "lambda_balanced_deep",
    "lambda_balanced_stack",
    "layer_widths",
]


def as_generator(seed: int | np.random.SeedSequence | np.random.Generator) -> np.random.Generator:
    """An explicit ``np.random.Generator`` from an int, a SeedSequence or a Generator."""
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, np.random.SeedSequence):
        return np.random.default_rng(seed)
    if isinstance(seed, bool) or not float(seed).is_integer() or int(seed) < 0:
        raise ValueError(f"`seed` must be a non-negative integer, got {seed!r}")
    return np.random.default_rng(int(seed))


def balanced_singular_values(
    lam: float | np.ndarray, a: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Layer singular values of a λ-balanced pair with product singular values ``a``.

    Solves s2² − s1² = λ, s1·s2 = a (a ≥ 0):
    s1² = (√(λ²+4a²) − λ)/2, s2² = (√(λ²+4a²) + λ)/2,
    evaluated without cancellation (the small one as a·(a/large)) and without overflow or
    underflow of λ² and a² (√(λ²+4a²) as hypot(λ, 2a)), for any finite λ and a.

    Parameters
    ----------
    lam : float or ndarray, broadcastable with ``a``
    a : ndarray
        Product singular values (also the task-aligned converged values when a = s̃).

    Returns
    -------
    s1, s2 : ndarray
        Input-side and output-side singular values (non-negative).
    """
    lam = np.asarray(lam, dtype=float)
    a = np.asarray(a, dtype=float)
    big = np.hypot(lam, 2 * a) / 2 + np.abs(lam) / 2  # the larger of s1², s2²
    small = a * np.divide(a, big, out=np.zeros(np.broadcast(big, a).shape), where=big > 0)
    s1_sq = np.where(lam >= 0, small, big)
    s2_sq = np.where(lam >= 0, big, small)
    return np.sqrt(s1_sq), np.sqrt(s2_sq)


def lambda_balanced(
    lam: float,
    n_in: int,
    n_hidden: int,
    n_out: int,
    scale: float | Sequence[float] | np.ndarray,
    seed: int | np.random.SeedSequence | np.random.Generator = 0,
    aligned: Task | tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """An exactly λ-balanced two-layer initialisation (theory.md §2).

    W1 = R S1 Vᵀ, W2 = U S2 Rᵀ with R ∈ O(N_h) Haar-random and, for
    k ≤ r = min(N_i, N_h, N_o), s1_k s2_k = a_k, s2_k² − s1_k² = λ
    (:func:`balanced_singular_values`). Hidden directions beyond N_i get s1 = 0,
    s2 = √λ; beyond N_o get s2 = 0, s1 = √(−λ). Then W2ᵀW2 − W1W1ᵀ = λI to round-off.

    Parameters
    ----------
    lam : float
        Relative scale λ.
    n_in, n_hidden, n_out : int
        N_i, N_h, N_o.
    scale : float or array_like, shape (r,)
        Absolute scale: the product singular values a_k ≥ 0 (one value for all modes, or
        one per mode).
    seed : int, SeedSequence or Generator
        Source of R (and of U, V when not aligned).
    aligned : Task or (U, V), optional
        Align with a task: U = Ũ (N_o, N_o), V = Ṽ (N_i, N_i) from the task's SVD (§3.5).
        Default: Haar-random U, V.

    Returns
    -------
    W1 : ndarray, shape (N_h, N_i)
    W2 : ndarray, shape (N_o, N_h)

    Raises
    ------
    ValueError
        For inadmissible shapes (λ > 0 with N_h > N_o, λ < 0 with N_h > N_i), negative or
        mis-sized ``scale``, or non-finite λ.

    Examples
    --------
    >>> W1, W2 = lambda_balanced(2.0, 3, 3, 3, scale=0.1, seed=0)
    >>> bool(np.allclose(W2.T @ W2 - W1 @ W1.T, 2.0 * np.eye(3)))
    True
    """
    lam = finite(lam, "lam")
    widths = [
        positive_int(n, name)
        for n, name in ((n_in, "n_in"), (n_hidden, "n_hidden"), (n_out, "n_out"))
    ]
    check_admissible(lam, *widths)
    W1, W2 = lambda_balanced_deep(lam, widths, scale, seed, aligned)
    return W1, W2


def gaussian(
    n_in: int,
    n_hidden: int,
    n_out: int,
    std: float,
    seed: int | np.random.SeedSequence | np.random.Generator = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Plain Gaussian (not balanced) weights, entries i.i.d. N(0, std²).

    Returns ``(W1, W2)`` with shapes (N_h, N_i), (N_o, N_h); :func:`imbalances` reports
    how far they are from λ-balance.
    """
    widths = [
        positive_int(n, name)
        for n, name in ((n_in, "n_in"), (n_hidden, "n_hidden"), (n_out, "n_out"))
    ]
    W1, W2 = gaussian_deep(widths, nonnegative(std, "std"), seed)
    return W1, W2


def imbalances(weights: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Conserved imbalance matrices W_{l+1}ᵀW_{l+1} − W_l W_lᵀ of consecutive layers.

    Parameters
    ----------
    weights : sequence of ndarray
        W_1 .. W_L (input side first), W_l of shape (..., N_l, N_{l-1}).

    Returns
    -------
    list of ndarray, length L − 1, entry l of shape (..., N_l, N_l)
        All equal λI for a λ-balanced init; conserved exactly by gradient flow.
    """
    return [
        np.swapaxes(w_next, -1, -2) @ w_next - w @ np.swapaxes(w, -1, -2)
        for w, w_next in zip(weights[:-1], weights[1:], strict=True)
    ]


# --------------------------------------------------------------------------------------
# Deep networks (depth L >= 2)
# --------------------------------------------------------------------------------------


def layer_widths(
    n_in: int, hidden: int | Sequence[int], n_out: int, depth: int | None = None
) -> list[int]:
    """Layer widths [N_i, N_1, …, N_{L−1}, N_o] from the task sizes and the hidden width(s).

    Parameters
    ----------
    n_in, n_out : int
        N_i and N_o (from the task).
    hidden : int or sequence of int
        One width for every hidden layer (then ``depth`` is required), or the L − 1 hidden
        widths N_1 … N_{L−1}.
    depth : int, optional
        L ≥ 2, the number of weight matrices. Must equal ``len(hidden) + 1`` if both are given.

    Examples
    --------
    >>> layer_widths(8, 16, 8, depth=4)
    [8, 16, 16, 16, 8]
    """
    n_in = positive_int(n_in, "n_in")
    n_out = positive_int(n_out, "n_out")
    if np.ndim(hidden) == 0:
        if depth is None:
            raise ValueError(
                "`depth` is required when `hidden` is a single width; pass depth=L >= 2"
            )
        depth = positive_int(depth, "depth")
        if depth < 2:
            raise ValueError(f"`depth` must be >= 2 (number of weight matrices), got {depth}")
        mids = [positive_int(hidden, "hidden")] * (depth - 1)
    else:
        mids = [positive_int(h, "hidden") for h in hidden]  # type: ignore[union-attr]
        if not mids:
            raise ValueError("`hidden` must list at least one hidden width (depth L >= 2)")
        if depth is not None and positive_int(depth, "depth") != len(mids) + 1:
            raise ValueError(
                f"`depth`={depth} must equal len(hidden) + 1 = {len(mids) + 1} "
                f"(hidden={list(mids)})"
            )
    return [n_in, *mids, n_out]


def check_admissible_deep(lam: float, widths: Sequence[int]) -> None:
    """Raise if no λ-balanced net with these widths exists (theory §2, generalised to depth L).

    With widths [N_0 = N_i, N_1, …, N_L = N_o], λ-balance W_{l+1}ᵀW_{l+1} − W_lW_lᵀ = λI_{N_l}
    for every hidden layer l needs

    - λ > 0: W_{l+1}ᵀW_{l+1} ⪰ λI has full rank N_l, so N_l ≤ N_{l+1}: hidden widths
      non-decreasing toward the output, N_1 ≤ N_2 ≤ … ≤ N_{L−1} ≤ N_o;
    - λ < 0: W_lW_lᵀ ⪰ |λ|I has full rank N_l, so N_l ≤ N_{l−1}: hidden widths
      non-increasing away from the input, N_i ≥ N_1 ≥ … ≥ N_{L−1};
    - λ = 0: any widths.

    These conditions are also sufficient (:func:`lambda_balanced_deep` builds the net). For
    L = 2 they reduce to :func:`lrsweep._validate.check_admissible`.
    """
    widths = widths_list(widths)
    L = len(widths) - 1
    if lam > 0:
        for l in range(1, L):  # noqa: E741
            if widths[l] > widths[l + 1]:
                raise ValueError(
                    f"`lam`={lam:g} > 0 needs widths non-decreasing from the first hidden layer to "
                    f"the output, N_1 <= ... <= N_{{L-1}} <= N_o (got widths={widths}: "
                    f"N_{l}={widths[l]} > N_{l + 1}={widths[l + 1]}); narrow layer {l}, widen "
                    f"layer {l + 1} or use lam <= 0"
                )
    elif lam < 0:
        for l in range(1, L):  # noqa: E741
            if widths[l] > widths[l - 1]:
                raise ValueError(
                    f"`lam`={lam:g} < 0 needs widths non-increasing from the input to the last "
                    f"hidden layer, N_i >= N_1 >= ... >= N_{{L-1}} (got widths={widths}: "
                    f"N_{l}={widths[l]} > N_{l - 1}={widths[l - 1]}); narrow layer {l}, widen "
                    f"layer {l - 1} or use lam >= 0"
                )


def deep_balanced_singular_values(lam: float | np.ndarray, a: np.ndarray, depth: int) -> np.ndarray:
    """Per-layer singular values of one mode of a depth-L λ-balanced chain.

    Solves, for each product singular value a ≥ 0,
    s_{l+1}² − s_l² = λ (l = 1 … L−1)  and  s_1 s_2 ⋯ s_L = a.
    Writing u = min_l s_l² ≥ 0 (u = s_1² for λ ≥ 0, s_L² for λ < 0), the squares are
    u, u + |λ|, …, u + (L−1)|λ| and u is the unique root of g(u) = ∏_{j<L} (u + j|λ|) = a².
    The root is found by Newton's method on log g as a function of log u, which is convex and
    increasing, so iterates started at the upper bound a^{2/L} decrease monotonically to the
    root (no bracketing or damping needed). The squares are formed as u + j|λ| (sums of
    non-negative terms), so the differences are λ to round-off. For L = 2 this is
    :func:`balanced_singular_values`.

    Parameters
    ----------
    lam : float or ndarray, broadcastable with ``a``
    a : ndarray, shape (...)
        Product singular values a ≥ 0.
    depth : int
        L ≥ 2.

    Returns
    -------
    s : ndarray, shape (L, ...)
        s[l − 1] is the singular value of layer l (input side first).

    Examples
    --------
    >>> s = deep_balanced_singular_values(1.0, np.array([2.0]), 3)
    >>> bool(np.allclose(np.diff(s[:, 0] ** 2), 1.0) and np.isclose(np.prod(s), 2.0))
    True
    """
    depth = positive_int(depth, "depth")
    if depth < 2:
        raise ValueError(f"`depth` must be >= 2, got {depth}")
    lam, a = np.broadcast_arrays(np.asarray(lam, dtype=float), np.asarray(a, dtype=float))
    if np.any(a < 0) or not np.all(np.isfinite(a)):
        raise ValueError("`a` (product singular values) must be finite and non-negative")
    if depth == 2:
        return np.stack(balanced_singular_values(lam, a))
    mag = np.abs(lam)
    j = np.arange(depth).reshape((depth,) + (1,) * a.ndim)
    pos = a > 0
    log_a2 = 2 * np.log(np.where(pos, a, 1.0))
    with np.errstate(divide="ignore"):
        log_c = np.log(j * mag)  # log(j|λ|); −inf for j = 0 (and for λ = 0)
    v = log_a2 / depth  # log u, started at the upper bound: g(u) >= u^L
    for _ in range(200):
        log_terms = np.logaddexp(v, log_c)  # log(u + j|λ|), no underflow of u = e^v
        step = (np.sum(log_terms, axis=0) - log_a2) / np.sum(np.exp(v - log_terms), axis=0)
        v = v - step
        if np.all(np.abs(step) <= 4 * np.finfo(float).eps * np.maximum(1.0, np.abs(v))):
            break
    s_small = np.where(pos, np.exp(v / 2), 0.0)  # √u without squaring a tiny number
    s = np.sqrt(np.where(j > 0, s_small**2 + j * mag, 0.0))
    s[0] = s_small
    return np.where(lam >= 0, s, s[::-1])


def _extra_mode_squares(lam: float, widths: list[int]) -> np.ndarray:
    """Squared layer singular values of the modes that do not reach both ends.

    Returns ``sq`` of shape (L, max(widths)); sq[l − 1, k] is s_{l,k}² of layer l, mode k
    (defined where k < min(N_l, N_{l−1})). A mode k lives on the boundaries (layer widths)
    N_b > k; on each maximal run of boundaries [p, q] it occupies, balance at every hidden
    boundary forces: p ≥ 1, q = L (reaches the output, λ ≥ 0): s_{p+j}² = jλ; p = 0,
    q ≤ L−1 (reaches the input, λ ≤ 0): s_l² = (q − l + 1)|λ|; 1 ≤ p ≤ q ≤ L−1 (interior):
    only λ = 0, all zero. Entries for modes k < min(widths) are left at 0 (set elsewhere).
    """
    L = len(widths) - 1
    kmax = max(widths)
    sq = np.zeros((L, kmax))
    for k in range(min(widths), kmax):
        present = [w > k for w in widths]
        b = 0
        while b <= L:
            if not present[b]:
                b += 1
                continue
            p = b
            while b + 1 <= L and present[b + 1]:
                b += 1
            q = b
            b += 1
            if q == L and p >= 1:
                for i in range(p + 1, L + 1):
                    sq[i - 1, k] = (i - p) * max(lam, 0.0)
            elif p == 0 and q <= L - 1:
                for i in range(1, q + 1):
                    sq[i - 1, k] = (q - i + 1) * max(-lam, 0.0)
    return sq


def lambda_balanced_deep(
    lam: float,
    widths: Sequence[int],
    scale: float | Sequence[float] | np.ndarray,
    seed: int | np.random.SeedSequence | np.random.Generator = 0,
    aligned: Task | tuple[np.ndarray, np.ndarray] | None = None,
) -> list[np.ndarray]:
    """An exactly λ-balanced depth-L initialisation: W_{l+1}ᵀW_{l+1} − W_lW_lᵀ = λI for all l.

    W_l = R_l S_l R_{l−1}ᵀ (l = 1 … L) with R_0 = V ∈ O(N_i), R_L = U ∈ O(N_o) and
    Haar-random R_l ∈ O(N_l) for the hidden layers; S_l (N_l × N_{l−1}) is diagonal. Then
    W_{l+1}ᵀW_{l+1} − W_lW_lᵀ = R_l (S_{l+1}ᵀS_{l+1} − S_lS_lᵀ) R_lᵀ, so it suffices that
    s_{l+1,k}² − s_{l,k}² = λ for every mode k of every hidden layer. For the
    r = min(widths) modes that run from input to output, the product s_{1,k}⋯s_{L,k} = a_k
    fixes the chain (:func:`deep_balanced_singular_values`), and the end-to-end map is
    W_L⋯W_1 = U diag(a) Vᵀ. Hidden directions that do not reach both ends are fixed by
    balance alone: those reaching the output get s² = λ, 2λ, … (λ ≥ 0), those reaching the
    input get s² = …, 2|λ|, |λ| (λ ≤ 0), the rest are zero (λ = 0 only). For L = 2 and the
    same seed this returns exactly :func:`lambda_balanced`.

    Parameters
    ----------
    lam : float
        Relative scale λ, shared by every consecutive pair of layers.
    widths : sequence of int, length L + 1
        [N_i, N_1, …, N_{L−1}, N_o] (see :func:`layer_widths`).
    scale : float or array_like, shape (r,)
        Absolute scale: product singular values a_k ≥ 0, r = min(widths).
    seed : int, SeedSequence or Generator
        Source of R_1 … R_{L−1} (drawn first, in order), then U, then V (when not aligned).
    aligned : Task or (U, V), optional
        Align with a task: U = Ũ (N_o, N_o), V = Ṽ (N_i, N_i) from its SVD (theory §3.5);
        the aligned dynamics then stay diagonal in these bases mode by mode.

    Returns
    -------
    weights : list of ndarray, length L
        W_1 … W_L (input side first), W_l of shape (N_l, N_{l−1}).

    Raises
    ------
    ValueError
        For inadmissible widths (:func:`check_admissible_deep`), negative or mis-sized
        ``scale``, non-finite λ, or mis-shaped ``aligned``.

    Examples
    --------
    >>> ws = lambda_balanced_deep(0.5, [3, 4, 4, 5], scale=0.2, seed=1)
    >>> [w.shape for w in ws]
    [(4, 3), (4, 4), (5, 4)]
    >>> all(np.allclose(d, 0.5 * np.eye(len(d))) for d in imbalances(ws))
    True
    """
    lam = finite(lam, "lam")
    widths = widths_list(widths)
    check_admissible_deep(lam, widths)
    L = len(widths) - 1
    n_in, n_out = widths[0], widths[-1]
    r = min(widths)
    a = as_array(scale, "scale", ndim=(0, 1))
    if a.ndim == 0:
        a = np.full(r, nonnegative(float(a), "scale"))
    elif a.shape != (r,):
        raise ValueError(
            f"`scale` must be a number or have min(widths)={r} entries, got {a.shape[0]}"
        )
    if np.any(a < 0):
        raise ValueError(f"`scale` must be non-negative, got min {a.min():g}")
    rng = as_generator(seed)
    hidden_bases = [haar_orthogonal(w, rng) for w in widths[1:-1]]
    if aligned is None:
        U = haar_orthogonal(n_out, rng)
        V = haar_orthogonal(n_in, rng)
    else:
        U, V = (aligned.svd[0], aligned.svd[2]) if isinstance(aligned, Task) else aligned
        if U.shape != (n_out, n_out) or V.shape != (n_in, n_in):
            raise ValueError(
                f"`aligned` must give U ({n_out}, {n_out}) and V ({n_in}, {n_in}), "
                f"got {U.shape} and {V.shape}"
            )
    bases = [V, *hidden_bases, U]
    sq = _extra_mode_squares(lam, widths)
    s = np.sqrt(sq)
    s[:, :r] = deep_balanced_singular_values(lam, a, L)
    weights = []
    for l in range(1, L + 1):  # noqa: E741
        k = min(widths[l], widths[l - 1])
        S = np.zeros((widths[l], widths[l - 1]))
        S[np.arange(k), np.arange(k)] = s[l - 1, :k]
        weights.append(bases[l] @ S @ bases[l - 1].T)
    return weights


def lambda_balanced_stack(
    lam: Sequence[float] | np.ndarray,
    widths: Sequence[int],
    scale: Sequence[float] | np.ndarray,
    seeds: Sequence[int | np.random.SeedSequence | np.random.Generator],
    aligned: Task | tuple[np.ndarray, np.ndarray] | None = None,
) -> list[np.ndarray]:
    """λ-balanced inits of B points at once, stacked: :func:`lambda_balanced_deep` per point.

    Point i gets exactly ``lambda_balanced_deep(lam[i], widths, scale[i], seeds[i], aligned)``:
    the same random numbers from its own generator, drawn in the same order, and the same
    operations (the QR factorisations and products are batched over points, each matrix
    still its own LAPACK/BLAS call), so a point's init does not depend on the batch it is in.

    Parameters
    ----------
    lam : array_like, shape (B,)
        λ of each point.
    widths : sequence of int, length L + 1
        [N_i, N_1, …, N_{L−1}, N_o].
    scale : array_like, shape (B,) or (B, r)
        Product singular values of each point (one for all modes, or r = min(widths)).
    seeds : sequence of B ints, SeedSequences or Generators
        One source of randomness per point.
    aligned : Task or (U, V), optional
        Align every point with a task (see :func:`lambda_balanced_deep`).

    Returns
    -------
    weights : list of ndarray, length L
        W_l of shape (B, N_l, N_{l−1}).

    Raises
    ------
    ValueError
        If any point is invalid (as :func:`lambda_balanced_deep` would raise for it), before
        any random number is drawn.
    """
    lam = as_array(lam, "lam", ndim=1)
    widths = widths_list(widths)
    n = lam.size
    L = len(widths) - 1
    n_in, n_out = widths[0], widths[-1]
    r = min(widths)
    for value in np.unique(lam):
        check_admissible_deep(float(value), widths)
    a = as_array(scale, "scale", ndim=(1, 2))
    if a.ndim == 1:
        a = np.broadcast_to(a[:, None], (a.shape[0], r))
    if a.shape != (n, r):
        raise ValueError(
            f"`scale` must have shape (B,) or (B, min(widths)) = ({n}, {r}), got {a.shape}"
        )
    if np.any(a < 0):
        raise ValueError(f"`scale` must be non-negative, got min {a.min():g}")
    if len(seeds) != n:
        raise ValueError(f"`seeds` must hold one seed per point ({n}), got {len(seeds)}")
    if n == 0:
        return [np.zeros((0, widths[l], widths[l - 1])) for l in range(1, L + 1)]  # noqa: E741
    sizes = widths[1:-1] if aligned is not None else [*widths[1:-1], n_out, n_in]
    if aligned is not None:
        U, V = (aligned.svd[0], aligned.svd[2]) if isinstance(aligned, Task) else aligned
        if U.shape != (n_out, n_out) or V.shape != (n_in, n_in):
            raise ValueError(
                f"`aligned` must give U ({n_out}, {n_out}) and V ({n_in}, {n_in}), "
                f"got {U.shape} and {V.shape}"
            )
    # each point's draws, in lambda_balanced_deep's order: hidden bases, then U, V
    draws = [[] for _ in sizes]
    for seed in seeds:
        rng = as_generator(seed)
        for k, w in enumerate(sizes):
            draws[k].append(rng.standard_normal((w, w)))
    haar = []
    for d in draws:  # tasks.haar_orthogonal, batched
        q, upper = np.linalg.qr(np.stack(d))
        haar.append(q * np.sign(np.diagonal(upper, axis1=-2, axis2=-1))[:, None, :])
    if aligned is None:
        U, V = haar[L - 1], haar[L]
    bases = [np.broadcast_to(V, (n, n_in, n_in)), *haar[: L - 1]]
    bases.append(np.broadcast_to(U, (n, n_out, n_out)))
    sq = np.maximum(lam, 0.0)[:, None, None] * _extra_mode_squares(1.0, widths)
    sq += np.maximum(-lam, 0.0)[:, None, None] * _extra_mode_squares(-1.0, widths)
    s = np.sqrt(sq)  # (B, L, max(widths))
    if L == 2:  # closed form, elementwise
        s[:, :, :r] = np.moveaxis(deep_balanced_singular_values(lam[:, None], a, 2), 0, 1)
    else:  # Newton iterations: per point, so that each stops where it would alone
        for i in range(n):
            s[i, :, :r] = deep_balanced_singular_values(lam[i], a[i], L)
    weights = []
    for l in range(1, L + 1):  # noqa: E741
        k = min(widths[l], widths[l - 1])
        S = np.zeros((n, widths[l], widths[l - 1]))
        S[:, np.arange(k), np.arange(k)] = s[:, l - 1, :k]
        weights.append(bases[l] @ S @ np.swapaxes(bases[l - 1], -1, -2))
    return weights


def gaussian_deep(
    widths: Sequence[int],
    std: float | Sequence[float],
    seed: int | np.random.SeedSequence | np.random.Generator = 0,
) -> list[np.ndarray]:
    """Plain Gaussian (not balanced) depth-L weights, entries of W_l i.i.d. N(0, std_l²).

    Parameters
    ----------
    widths : sequence of int, length L + 1
        [N_i, N_1, …, N_{L−1}, N_o].
    std : float or sequence of float, length L
        One standard deviation for all layers, or one per layer.
    seed : int, SeedSequence or Generator

    Returns
    -------
    weights : list of ndarray, length L
        W_l of shape (N_l, N_{l−1}). Their per-pair imbalances W_{l+1}ᵀW_{l+1} − W_lW_lᵀ
        (conserved by gradient flow, not multiples of I) are :func:`imbalances`; a scalar
        summary is :func:`imbalance_report`.
    """
    widths = widths_list(widths)
    L = len(widths) - 1
    stds = (
        np.broadcast_to(as_array(std, "std", ndim=(0, 1)), (L,))
        if np.ndim(std) == 0
        else (as_array(std, "std", ndim=1))
    )
    if stds.shape != (L,):
        raise ValueError(f"`std` must be a number or have L={L} entries, got {stds.shape[0]}")
    stds = [nonnegative(float(x), "std") for x in stds]
    rng = as_generator(seed)
    return [sd * rng.standard_normal((widths[l + 1], widths[l])) for l, sd in enumerate(stds)]  # noqa: E741


def imbalance_report(weights: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per-pair λ estimate and distance from λ-balance of a (deep) init.

    For each consecutive pair, D_l = W_{l+1}ᵀW_{l+1} − W_lW_lᵀ (:func:`imbalances`),
    λ_l = tr(D_l)/N_l and the relative off-λ part ‖D_l − λ_l I‖_F / (‖W_l‖_F² + ‖W_{l+1}‖_F²)
    (:func:`lrsweep._validate.balance`; 0 for an exactly balanced pair).

    Parameters
    ----------
    weights : sequence of ndarray
        W_1 … W_L, W_l of shape (..., N_l, N_{l−1}).

    Returns
    -------
    lam : ndarray, shape (..., L − 1)
    off_balance : ndarray, shape (..., L − 1)
    """
    pairs = [balance(w, w_next) for w, w_next in zip(weights[:-1], weights[1:], strict=True)]
    lams, offs = zip(*pairs, strict=True)
    return np.stack(lams, axis=-1), np.stack(offs, axis=-1)
