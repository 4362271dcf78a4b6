"""Task sequences solved exactly by chaining the closed form: reversal, continual, transfer.

Gradient flow conserves λ (theory.md §2), so the state reached at the end of one task is again
λ-balanced with the same λ, and the closed form (:func:`lrsweep.exact.qqt`, theory §3.3)
continues from it on the next task. The exact solution gives QQᵀ(T) = Q(T)Q(T)ᵀ, not Q(T);
any factor Q' = Q(T)·R (R ∈ O(N_h)) is λ-balanced, Q'ᵀ J Q' = Rᵀ(λI)R = λI with
J = diag(−I_{N_i}, I_{N_o}), and gives the same continuation, because QQᵀ(t) depends on the
initial weights only through Q0Q0ᵀ. :func:`factor_qqt` takes the top-N_h eigenpairs:

    QQᵀ(T) = E diag(w) Eᵀ,   Q' = E_{:, 1..N_h} diag(√w_{1..N_h}),   W1 = Q'[:N_i]ᵀ,  W2 = Q'[N_i:].

Each stage is exact (to the closed form's ~1e-10); the factorisation adds O(ε·‖QQᵀ‖) per
switch. Works for N_h = min(N_i, N_o) and for any admissible N_h (the generic form).

The three applications of the paper (Dominé et al. 2025, §6; theory §5) are built on
:func:`chain`, vectorised over λ (and over task similarity for transfer):

- :func:`reversal_learning`: Σyx → −Σyx. Time to relearn vs λ; a task-aligned λ = 0 net
  converged on Σyx sits exactly on a saddle of −Σyx and never relearns (time = inf).
- :func:`continual_learning`: task A, then task B; forgetting of A vs λ.
- :func:`transfer_learning`: pretrain on A, then train on B(θ) = A with its output singular
  vectors rotated by θ (similarity cos θ); time to fit B vs λ and θ, against training from
  scratch.

Times are in units of τ (gradient-descent step k at learning rate η is t/τ = kη).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lrsweep._validate import (
    as_array,
    as_times,
    batch_shape,
    lambda_of,
    positive,
    positive_int,
    two_layer,
)
from lrsweep.exact import qqt, qqt_blocks
from lrsweep.init import lambda_balanced
from lrsweep.metrics import loss as excess_loss
from lrsweep.metrics import time_to_level

__all__ = [
    "ChainResult",
    "ContinualResult",
    "ReversalResult",
    "TransferResult",
    "balanced_inits",
    "chain",
    "continual_learning",
    "factor_qqt",
    "log_times",
    "reversal_learning",
    "rotate_task",
    "task_similarity",
    "time_to_level",
    "transfer_learning",
]

#: Loss level (fraction of ½‖Σyx‖², the loss of the zero network) that counts as "fitted".
FIT_LEVEL = 0.01
#: Time (units of τ) at which a run that has not fitted is checked again: still above the
#: level there means it never fits (it sits on a saddle), reported as ``inf``.
T_NEVER = 1e6


# ----------------------------------------------------------------------------- helpers


def log_times(t_max: float, n: int, *, t_min_fraction: float = 1e-4) -> np.ndarray:
    """0 followed by ``n − 1`` log-spaced times from ``t_min_fraction·t_max`` to ``t_max``.

    Resolves both the lazy timescale τ/|λ| and the rich plateau on one grid.
    """
    t_max = positive(t_max, "t_max")
    n = positive_int(n, "n")
    if n < 2:
        raise ValueError(f"`n` must be >= 2 (t = 0 and t_max), got {n}")
    return np.concatenate([[0.0], np.geomspace(t_min_fraction * t_max, t_max, n - 1)])


def balanced_inits(
    lambdas: object,
    n_in: int,
    n_hidden: int,
    n_out: int,
    scale: float,
    *,
    seed: int = 0,
    aligned: object = None,
) -> tuple[np.ndarray, np.ndarray]:
    """λ-balanced inits for several λ, stacked on a leading run axis.

    Every λ uses the same ``seed``, hence the same rotations R, U, V
    (:func:`lrsweep.init.lambda_balanced`); only the λ-dependent layer singular values differ,
    so runs compare like for like.

    Returns
    -------
    W1 : ndarray, shape (n_λ, N_h, N_i)
    W2 : ndarray, shape (n_λ, N_o, N_h)
    """
    lams = as_array(lambdas, "lambdas", ndim=1)
    if lams.size == 0:
        raise ValueError("`lambdas` must contain at least one value")
    pairs = [
        lambda_balanced(float(lam), n_in, n_hidden, n_out, scale, seed=seed, aligned=aligned)
        for lam in lams
    ]
    return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])


def factor_qqt(q: object, n_in: int, n_hidden: int) -> tuple[np.ndarray, np.ndarray]:
    """λ-balanced weights (W1, W2) whose QQᵀ equals ``q``: the top-N_h eigenpairs of q.

    QQᵀ = E diag(w) Eᵀ (w descending), Q = E[:, :N_h] diag(√max(w, 0)), W1 = Q[:N_i]ᵀ,
    W2 = Q[N_i:]. If q = Q0Q0ᵀ with Q0 of N_h columns, Q = Q0·R for some R ∈ O(N_h), so W1, W2
    have the λ of Q0 (to round-off, O(ε‖q‖)). Columns beyond rank(q) (eigenvalues below
    10·n·ε·max w) are zero.

    Parameters
    ----------
    q : array_like, shape (..., N_i+N_o, N_i+N_o)
        Symmetric PSD, e.g. one time of :func:`lrsweep.exact.qqt`.
    n_in : int
        N_i.
    n_hidden : int
        N_h.

    Returns
    -------
    W1 : ndarray, shape (..., N_h, N_i)
    W2 : ndarray, shape (..., N_o, N_h)
    """
    q = as_array(q, "q")
    if q.ndim < 2 or q.shape[-1] != q.shape[-2]:
        raise ValueError(f"`q` must have shape (..., N_i+N_o, N_i+N_o), got {q.shape}")
    n = q.shape[-1]
    n_in = positive_int(n_in, "n_in")
    n_hidden = positive_int(n_hidden, "n_hidden")
    if n_in >= n:
        raise ValueError(f"`n_in`={n_in} must be smaller than the size of `q` ({n})")
    w, E = np.linalg.eigh(0.5 * (q + np.swapaxes(q, -1, -2)))
    k = min(n_hidden, n)
    w = w[..., ::-1][..., :k]
    E = E[..., :, ::-1][..., :, :k]
    # eigenvalues at the round-off floor (rank(q) < N_h) are exact zeros: their square roots
    # (~√ε‖q‖) would otherwise break λ-balance at the 1e-8 level
    floor = 10 * n * np.finfo(float).eps * np.maximum(w[..., :1], 0.0)
    Q = E * np.sqrt(np.where(w > floor, w, 0.0))[..., None, :]
    if k < n_hidden:
        Q = np.concatenate([Q, np.zeros((*Q.shape[:-1], n_hidden - k))], axis=-1)
    return np.swapaxes(Q[..., :n_in, :], -1, -2).copy(), Q[..., n_in:, :].copy()


def task_similarity(sigma_a: object, sigma_b: object) -> np.ndarray:
    """Cosine similarity ⟨Σ_A, Σ_B⟩_F / (‖Σ_A‖_F ‖Σ_B‖_F) of two tasks, shape (...)."""
    a = as_array(sigma_a, "sigma_a")
    b = as_array(sigma_b, "sigma_b")
    num = np.sum(a * b, axis=(-2, -1))
    return num / (np.linalg.norm(a, axis=(-2, -1)) * np.linalg.norm(b, axis=(-2, -1)))


def rotate_task(sigma_yx: object, angles: object) -> np.ndarray:
    """Related tasks: Σyx with its output singular vectors rotated in pairs by θ.

    Σ_B(θ) = Ũ G(θ) Ũᵀ Σ_A = (Ũ G(θ)) S̃ Ṽᵀ, where G(θ) rotates the pairs of output singular
    vectors (ũ_1, ũ_2), (ũ_3, ũ_4), … by θ (an unpaired last mode is left alone). Singular
    values and input singular vectors are unchanged; for an even number of modes the
    similarity :func:`task_similarity` is exactly cos θ, and θ = π gives −Σ_A (reversal).

    Parameters
    ----------
    sigma_yx : array_like, shape (N_o, N_i)
    angles : array_like, shape (n_θ,)
        θ in radians.

    Returns
    -------
    ndarray, shape (n_θ, N_o, N_i)
    """
    sigma = as_array(sigma_yx, "sigma_yx", ndim=2)
    theta = np.atleast_1d(as_array(angles, "angles", ndim=(0, 1)))
    n_o = sigma.shape[0]
    m = min(sigma.shape)
    U = np.linalg.svd(sigma, full_matrices=True)[0]
    G = np.broadcast_to(np.eye(n_o), (theta.size, n_o, n_o)).copy()
    c, s = np.cos(theta), np.sin(theta)
    for k in range(0, m - 1, 2):
        G[:, k, k], G[:, k, k + 1] = c, -s
        G[:, k + 1, k], G[:, k + 1, k + 1] = s, c
    return U @ G @ U.T @ sigma


def _fit_level(sigma_yx: np.ndarray, level: float) -> np.ndarray:
    """Absolute loss level: ``level`` × ½‖Σyx‖² (the loss of the zero network)."""
    return level * 0.5 * np.sum(sigma_yx**2, axis=(-2, -1))


def _fit_times(
    W1: np.ndarray,
    W2: np.ndarray,
    sigma_yx: np.ndarray,
    t: np.ndarray,
    loss: np.ndarray,
    level_abs: np.ndarray,
    t_never: float,
) -> np.ndarray:
    """Time to reach ``level_abs``; NaN → inf where the loss is still above it at ``t_never``."""
    times = time_to_level(t, loss, level_abs)
    late = excess_loss(qqt_blocks(qqt(W1, W2, sigma_yx, [t_never]), W1.shape[-1])[1][0], sigma_yx)
    return np.where(np.isnan(times) & (late > level_abs), np.inf, times)


# ------------------------------------------------------------------------------ chain


@dataclass(frozen=True)
class ChainResult:
    """Exact QQᵀ through a sequence of tasks (:func:`chain`).

    Attributes
    ----------
    t : ndarray, shape (n_t,)
        Global times (units of τ): stage k's local times plus the end of stage k − 1. Each
        stage includes its local t = 0 (the state at the switch), so t repeats at switches.
    stage : ndarray of int, shape (n_t,)
        Stage index of each sample.
    q : ndarray, shape (n_t, ..., N_i+N_o, N_i+N_o)
        QQᵀ at every sample.
    n_in : int
        N_i.
    switch_times : ndarray, shape (n_stages + 1,)
        0, then the cumulative durations.
    ends : list of (W1, W2)
        Factored weights at the end of each stage (``ends[-1]`` is the final state).
    """

    t: np.ndarray
    stage: np.ndarray
    q: np.ndarray
    n_in: int
    switch_times: np.ndarray
    ends: list

    def blocks(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """W1ᵀW1 (n_t, ..., N_i, N_i), W2W1 (n_t, ..., N_o, N_i), W2W2ᵀ (n_t, ..., N_o, N_o)."""
        return qqt_blocks(self.q, self.n_in)

    @property
    def network_function(self) -> np.ndarray:
        """W2W1(t), shape (n_t, ..., N_o, N_i)."""
        return self.blocks()[1]

    def loss(self, sigma_yx: object) -> np.ndarray:
        """Excess loss ½‖W2W1(t) − Σyx‖² on a task (whitened inputs), shape (n_t, ...)."""
        return excess_loss(self.network_function, as_array(sigma_yx, "sigma_yx"))

    def local(self, k: int) -> tuple[np.ndarray, slice]:
        """Local times of stage ``k`` (from its switch) and its slice of the samples."""
        idx = np.flatnonzero(self.stage == k)
        if idx.size == 0:
            raise ValueError(f"`k` must be a stage index in 0..{self.switch_times.size - 2}")
        sl = slice(int(idx[0]), int(idx[-1]) + 1)
        return self.t[sl] - self.switch_times[k], sl


def chain(
    W1: object,
    W2: object,
    sigma_yx_list: Sequence[object],
    durations: object,
    t_per_stage: int | Sequence[object] = 101,
    *,
    tau: float = 1.0,
) -> ChainResult:
    """Exact gradient flow through a sequence of tasks, by chaining the closed form.

    Stage k trains on Σyx^(k) for ``durations[k]``: QQᵀ(t) = :func:`lrsweep.exact.qqt` from
    the stage's initial weights; at its end QQᵀ is factored (:func:`factor_qqt`) into
    λ-balanced weights (λ is conserved) that start stage k + 1. The result does not depend
    on which factor is taken (QQᵀ(t) depends on Q0 only through Q0Q0ᵀ).

    Parameters
    ----------
    W1 : array_like, shape (..., N_h, N_i)
        λ-balanced initial weights (leading axes: runs).
    W2 : array_like, shape (..., N_o, N_h)
    sigma_yx_list : sequence of array_like, each shape (..., N_o, N_i)
        The tasks in order (whitened inputs); batch axes broadcast with the weights'.
    durations : array_like, shape (n_stages,)
        Training time on each task, units of ``tau``.
    t_per_stage : int or sequence of array_like
        Samples per stage, evenly spaced from 0 to the duration (int ≥ 2), or one array of
        local times in [0, duration] per stage.
    tau : float
        Time constant τ = 1/η.

    Returns
    -------
    ChainResult
        ``q`` has shape (n_t, *batch, N_i+N_o, N_i+N_o) with ``batch`` the broadcast of all
        batch axes.

    Examples
    --------
    >>> from lrsweep.init import lambda_balanced
    >>> W1, W2 = lambda_balanced(1.0, 2, 2, 2, scale=0.1, seed=0)
    >>> res = chain(W1, W2, [np.eye(2), -np.eye(2)], [20.0, 20.0], 5)
    >>> bool(np.allclose(res.network_function[-1], -np.eye(2), atol=1e-6))
    True
    """
    if isinstance(sigma_yx_list, np.ndarray) and sigma_yx_list.ndim == 2:
        raise TypeError("`sigma_yx_list` must be a sequence of tasks, e.g. [sigma_a, sigma_b]")
    sigmas = [as_array(s, f"sigma_yx_list[{k}]") for k, s in enumerate(sigma_yx_list)]
    if not sigmas:
        raise ValueError("`sigma_yx_list` must contain at least one task")
    dur = np.atleast_1d(as_array(durations, "durations", ndim=(0, 1)))
    if dur.size != len(sigmas) or np.any(dur <= 0):
        raise ValueError(
            f"`durations` must give one positive time per task ({len(sigmas)}), got {dur.tolist()}"
        )
    if isinstance(t_per_stage, int | np.integer):
        n = positive_int(t_per_stage, "t_per_stage")
        if n < 2:
            raise ValueError(f"`t_per_stage` must be >= 2, got {n}")
        grids = [np.linspace(0.0, d, n) for d in dur]
    else:
        grids = [as_times(g, f"t_per_stage[{k}]") for k, g in enumerate(t_per_stage)]
        if len(grids) != dur.size:
            raise ValueError(
                f"`t_per_stage` must give one time grid per task ({dur.size}), got {len(grids)}"
            )
        for k, (g, d) in enumerate(zip(grids, dur, strict=True)):
            if g.max() > d * (1 + 1e-12):
                raise ValueError(
                    f"`t_per_stage[{k}]` must lie in [0, durations[{k}]={d:g}], got max {g.max():g}"
                )
    for k, s in enumerate(sigmas):
        W1, W2, _ = two_layer(W1, W2, s, task_name=f"sigma_yx_list[{k}]")
    lambda_of(W1, W2)
    batch = batch_shape(
        [W1.shape[:-2], W2.shape[:-2], *(s.shape[:-2] for s in sigmas)],
        "W1`, `W2` and the tasks",
    )
    n_in, n_h = W1.shape[-1], W1.shape[-2]
    W1 = np.broadcast_to(W1, (*batch, *W1.shape[-2:]))
    W2 = np.broadcast_to(W2, (*batch, *W2.shape[-2:]))
    qs, ts, stages, ends = [], [], [], []
    start = 0.0
    for k, (sigma, d, grid) in enumerate(zip(sigmas, dur, grids, strict=True)):
        q = qqt(W1, W2, sigma, np.append(grid, d), tau=tau)
        qs.append(q[:-1])
        ts.append(start + grid)
        stages.append(np.full(grid.size, k))
        W1, W2 = factor_qqt(q[-1], n_in, n_h)
        ends.append((W1, W2))
        start += d
    return ChainResult(
        t=np.concatenate(ts),
        stage=np.concatenate(stages),
        q=np.concatenate(qs),
        n_in=n_in,
        switch_times=np.concatenate([[0.0], np.cumsum(dur)]),
        ends=ends,
    )


# ------------------------------------------------------------------------ applications


def _shape_of(sigma: np.ndarray, n_hidden: int | None) -> tuple[int, int, int]:
    n_out, n_in = sigma.shape[-2:]
    n_h = min(n_in, n_out) if n_hidden is None else positive_int(n_hidden, "n_hidden")
    return n_in, n_h, n_out


def _aligned_bases(sigma: np.ndarray, aligned: bool) -> tuple[np.ndarray, np.ndarray] | None:
    if not aligned:
        return None
    U, _, Vt = np.linalg.svd(sigma, full_matrices=True)
    return U, Vt.T


@dataclass(frozen=True)
class ReversalResult:
    """Reversal learning Σyx → −Σyx (:func:`reversal_learning`).

    Attributes
    ----------
    lambdas : ndarray, shape (n_λ,)
    t : ndarray, shape (n_t,)
        Time since the reversal (units of τ).
    loss : ndarray, shape (n_t, n_λ)
        Excess loss on −Σyx after the reversal.
    relearn_time : ndarray, shape (n_λ,)
        First time the loss on −Σyx is ≤ ``level_abs``; inf if it never is (still above at
        t = T_NEVER: the net sits on a saddle), NaN if not within the sampled times only.
    pretrain : ChainResult
        The whole sequence (stage 0 on Σyx, stage 1 on −Σyx).
    pretrain_loss : ndarray, shape (n_λ,)
        Residual loss on Σyx at the reversal (how well task 1 was learned).
    level_abs : float
        The fitted level, ``level`` × ½‖Σyx‖².
    """

    lambdas: np.ndarray
    t: np.ndarray
    loss: np.ndarray
    relearn_time: np.ndarray
    pretrain: ChainResult
    pretrain_loss: np.ndarray
    level_abs: float


def reversal_learning(
    sigma_yx: object,
    lambdas: object,
    *,
    n_hidden: int | None = None,
    scale: float = 1e-3,
    seed: int = 0,
    aligned: bool = True,
    t_pretrain: float = 30.0,
    t_max: float = 30.0,
    n_t: int = 301,
    level: float = FIT_LEVEL,
    t_never: float = T_NEVER,
) -> ReversalResult:
    """Train on Σyx, then on −Σyx; time to relearn as a function of λ (exact, by chaining).

    Task-aligned mode dynamics (theory §3.5): τ da/dt = √(λ² + 4a²)(s̃ − a). After the
    reversal each mode starts at a = −s̃ relative to the new task. At λ = 0 the speed
    2|a|(s̃ − a) vanishes at a = 0: the mode decays onto the saddle a = 0 and never relearns
    (relearn time inf). For λ ≠ 0 it crosses a = 0 at speed |λ|s̃; the time to relearn grows
    like ln(1/|λ|) as λ → 0 (rich) and falls like 1/|λ| for large |λ| (lazy).

    Parameters
    ----------
    sigma_yx : array_like, shape (N_o, N_i)
        Task 1 (whitened inputs); task 2 is −Σyx.
    lambdas : array_like, shape (n_λ,)
    n_hidden : int, optional
        N_h, default min(N_i, N_o).
    scale : float
        Initial product singular values (absolute scale).
    seed : int
        Seed of the init rotations (shared by all λ).
    aligned : bool
        Align the init's singular vectors with the task's (then λ = 0 is exactly the saddle).
    t_pretrain, t_max : float
        Training time on Σyx, and time sampled after the reversal (units of τ).
    n_t : int
        Samples per stage (linear before, log-spaced after the reversal).
    level : float
        Relearned when the loss on −Σyx is ≤ level × ½‖Σyx‖² (the loss at the saddle W = 0).
    t_never : float
        Time at which a run not relearned within ``t_max`` is checked again (inf if not).

    Returns
    -------
    ReversalResult
    """
    sigma = as_array(sigma_yx, "sigma_yx", ndim=2)
    lams = as_array(lambdas, "lambdas", ndim=1)
    level = positive(level, "level")
    n_in, n_h, n_out = _shape_of(sigma, n_hidden)
    W1, W2 = balanced_inits(
        lams, n_in, n_h, n_out, scale, seed=seed, aligned=_aligned_bases(sigma, aligned)
    )
    t_after = log_times(t_max, n_t)
    res = chain(
        W1,
        W2,
        [sigma, -sigma],
        [positive(t_pretrain, "t_pretrain"), t_max],
        [np.linspace(0.0, t_pretrain, n_t), t_after],
    )
    t_loc, sl = res.local(1)
    loss = excess_loss(res.network_function[sl], -sigma)
    level_abs = float(_fit_level(sigma, level))
    W1r, W2r = res.ends[0]
    times = _fit_times(W1r, W2r, -sigma, t_loc, loss, level_abs, positive(t_never, "t_never"))
    pre = excess_loss(qqt_blocks(qqt(W1, W2, sigma, [t_pretrain]), n_in)[1][0], sigma)
    return ReversalResult(lams, t_loc, loss, times, res, pre, level_abs)


@dataclass(frozen=True)
class ContinualResult:
    """Continual learning A → B (:func:`continual_learning`).

    Attributes
    ----------
    lambdas : ndarray, shape (n_λ,)
    sequence : ChainResult
        Stage 0 on A, stage 1 on B.
    loss_a, loss_b : ndarray, shape (n_t, n_λ)
        Excess loss on A and on B over the whole sequence (times ``sequence.t``).
    forgetting : ndarray, shape (n_λ,)
        Loss on A after B minus loss on A after A.
    forgetting_limit : float
        ½‖Σ_B − Σ_A‖²: the forgetting of a net that learns B exactly (N_h ≥ rank Σ_B).
    time_to_forget : ndarray, shape (n_λ,)
        Time into stage B at which the loss on A has risen halfway to its value after B.
    """

    lambdas: np.ndarray
    sequence: ChainResult
    loss_a: np.ndarray
    loss_b: np.ndarray
    forgetting: np.ndarray
    forgetting_limit: float
    time_to_forget: np.ndarray


def continual_learning(
    sigma_a: object,
    sigma_b: object,
    lambdas: object,
    *,
    n_hidden: int | None = None,
    scale: float = 1e-3,
    seed: int = 0,
    aligned: bool = True,
    t_a: float = 30.0,
    t_b: float = 30.0,
    n_t: int = 301,
) -> ContinualResult:
    """Train on task A, then on task B; forgetting of A vs λ (exact, by chaining).

    Forgetting = ℒ_A(after B) − ℒ_A(after A). With N_h = min(N_i, N_o) the network function
    converges to Σ_B whatever λ, so once B is learned the forgetting is ½‖Σ_B − Σ_A‖² − ℒ_A
    (after A) for every λ; λ only sets how fast A is forgotten (``time_to_forget``, ∝ τ/|λ|
    in the lazy regime, O(τ/s̃) in the rich one, where the A-trained weights are already large).

    Parameters
    ----------
    sigma_a, sigma_b : array_like, shape (N_o, N_i)
        The two tasks (whitened inputs).
    lambdas : array_like, shape (n_λ,)
    n_hidden : int, optional
        N_h, default min(N_i, N_o).
    scale : float
        Initial product singular values.
    seed : int
        Seed of the init rotations.
    aligned : bool
        Align the init with task A (avoids λ = 0 saddles on A).
    t_a, t_b : float
        Training time on each task (units of τ).
    n_t : int
        Samples per stage (log-spaced within each stage).

    Returns
    -------
    ContinualResult
    """
    a = as_array(sigma_a, "sigma_a", ndim=2)
    b = as_array(sigma_b, "sigma_b", ndim=2)
    if a.shape != b.shape:
        raise ValueError(
            f"`sigma_a` and `sigma_b` must have the same shape, got {a.shape}, {b.shape}"
        )
    lams = as_array(lambdas, "lambdas", ndim=1)
    n_in, n_h, n_out = _shape_of(a, n_hidden)
    W1, W2 = balanced_inits(
        lams, n_in, n_h, n_out, scale, seed=seed, aligned=_aligned_bases(a, aligned)
    )
    t_a, t_b = positive(t_a, "t_a"), positive(t_b, "t_b")
    res = chain(W1, W2, [a, b], [t_a, t_b], [log_times(t_a, n_t), log_times(t_b, n_t)])
    nf = res.network_function
    loss_a, loss_b = excess_loss(nf, a), excess_loss(nf, b)
    after_a = excess_loss(res.ends[0][1] @ res.ends[0][0], a)
    after_b = excess_loss(res.ends[1][1] @ res.ends[1][0], a)
    t_loc, sl = res.local(1)
    half = 0.5 * (after_a + after_b)
    forget_t = time_to_level(t_loc, -loss_a[sl], -half)
    return ContinualResult(
        lams, res, loss_a, loss_b, after_b - after_a, float(0.5 * np.sum((a - b) ** 2)), forget_t
    )


@dataclass(frozen=True)
class TransferResult:
    """Transfer learning A → B(θ) (:func:`transfer_learning`).

    Attributes
    ----------
    lambdas : ndarray, shape (n_λ,)
    angles : ndarray, shape (n_θ,)
        Rotation θ of B's output singular vectors.
    similarity : ndarray, shape (n_θ,)
        ⟨Σ_A, Σ_B⟩/(‖Σ_A‖‖Σ_B‖) (cos θ for an even number of modes).
    t : ndarray, shape (n_t,)
        Time of training on B (units of τ).
    loss_pretrained, loss_scratch : ndarray, shape (n_t, n_θ, n_λ)
        Excess loss on B after pretraining on A, and from the initial weights.
    time_pretrained, time_scratch : ndarray, shape (n_θ, n_λ)
        Time to fit B (loss ≤ ``level_abs``); inf if never (saddle), NaN if not within t.
    level_abs : float
    """

    lambdas: np.ndarray
    angles: np.ndarray
    similarity: np.ndarray
    t: np.ndarray
    loss_pretrained: np.ndarray
    loss_scratch: np.ndarray
    time_pretrained: np.ndarray
    time_scratch: np.ndarray
    level_abs: float


def transfer_learning(
    sigma_a: object,
    lambdas: object,
    angles: object,
    *,
    n_hidden: int | None = None,
    scale: float = 1e-3,
    seed: int = 0,
    aligned: bool = True,
    t_pretrain: float = 30.0,
    t_max: float = 30.0,
    n_t: int = 301,
    level: float = FIT_LEVEL,
    t_never: float = T_NEVER,
) -> TransferResult:
    """Pretrain on A, train on a related B(θ) (:func:`rotate_task`); time to fit B (exact).

    Compared with training on B from scratch: from an init of the same λ and scale aligned with
    B (``aligned``; by rotation invariance this equals training on A from the A-aligned init,
    so it does not depend on θ), or from the same random init (``aligned=False``). Rich nets
    (λ ≈ 0) skip the plateau of learning from a small init when B resembles A, and are
    slowed near θ = π, where B → −A and the pretrained net approaches the reversal saddle;
    lazy nets (large |λ|) fit B in a time ≈ τ ln(1/level)/|λ| whatever the pretraining.

    Parameters
    ----------
    sigma_a : array_like, shape (N_o, N_i)
        Task A (whitened inputs).
    lambdas : array_like, shape (n_λ,)
    angles : array_like, shape (n_θ,)
        Rotations θ (radians) of B's output singular vectors relative to A's.
    n_hidden, scale, seed, aligned, t_pretrain, t_max, n_t, level, t_never
        As in :func:`reversal_learning` (``aligned`` aligns the init with A).

    Returns
    -------
    TransferResult
    """
    a = as_array(sigma_a, "sigma_a", ndim=2)
    lams = as_array(lambdas, "lambdas", ndim=1)
    theta = np.atleast_1d(as_array(angles, "angles", ndim=(0, 1)))
    n_in, n_h, n_out = _shape_of(a, n_hidden)
    W1, W2 = balanced_inits(
        lams, n_in, n_h, n_out, scale, seed=seed, aligned=_aligned_bases(a, aligned)
    )
    b = rotate_task(a, theta)[:, None]  # (n_θ, 1, N_o, N_i)
    t_pretrain = positive(t_pretrain, "t_pretrain")
    t_b = log_times(t_max, n_t)
    res = chain(W1, W2, [a, b], [t_pretrain, t_max], [np.array([0.0, t_pretrain]), t_b])
    _, sl = res.local(1)
    loss_pre = excess_loss(res.network_function[sl], b)
    level_abs = float(_fit_level(a, positive(level, "level")))
    t_never = positive(t_never, "t_never")
    W1p, W2p = res.ends[0]
    time_pre = _fit_times(W1p, W2p, b, t_b, loss_pre, level_abs, t_never)
    if aligned:
        # B(θ) = Rot·A with Rot orthogonal: training on B from a B-aligned init is training on A
        # from the A-aligned init, rotated; the loss curve is the same for every θ.
        loss_a = excess_loss(qqt_blocks(qqt(W1, W2, a, t_b), n_in)[1], a)
        loss_scr = np.broadcast_to(loss_a[:, None], loss_pre.shape)
        W1s, W2s, b_s = W1, W2, a
    else:
        loss_scr = excess_loss(qqt_blocks(qqt(W1, W2, b, t_b), n_in)[1], b)
        W1s, W2s = (np.broadcast_to(w, (theta.size, *w.shape)) for w in (W1, W2))
        b_s = b
    time_scr = np.broadcast_to(
        _fit_times(W1s, W2s, b_s, t_b, loss_scr[:, 0] if aligned else loss_scr, level_abs, t_never),
        time_pre.shape,
    )
    return TransferResult(
        lams,
        theta,
        task_similarity(a, b[:, 0]),
        t_b,
        loss_pre,
        loss_scr,
        time_pre,
        time_scr,
        level_abs,
    )
