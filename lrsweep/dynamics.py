"""One entry point for the learning dynamics: :func:`solve_dynamics` and its solvers.

In the style of :func:`scipy.integrate.solve_ivp`: one call takes the initial weights, the
task correlation Σyx and the saved times, and returns a :class:`Solution` that carries the
trajectory (end-to-end map, NTK grams, and the weights or QQᵀ), a per-run ``status`` and
``message`` (a failed run does not raise), and diagnostics. The solvers are registered in
:data:`SOLVERS` (name → :class:`Solver`); the pipeline, the CLI and the paper experiments
all go through here.

- ``exact``: the closed-form QQᵀ(t) of a λ-balanced two-layer net (:func:`lrsweep.exact.qqt`,
  theory §3.3), whitened inputs;
- ``flow``: batched adaptive gradient flow for any depth (:func:`lrsweep.simulate.gradient_flow`);
- ``gd``: gradient descent with step ``lr``, t/τ = kη (:func:`lrsweep.simulate.gradient_descent`);
- ``both``: ``exact`` with ``flow`` side by side (``companion``), to measure their deviation.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from lrsweep import exact, init, metrics, simulate
from lrsweep._validate import as_times
from lrsweep.metrics import KernelGrams

__all__ = ["SOLVERS", "Solution", "Solver", "solve_dynamics"]


@dataclass(frozen=True)
class Solution:
    """A batch of trajectories from :func:`solve_dynamics` (cf. scipy's ``OdeResult``).

    Attributes
    ----------
    t : ndarray, shape (n_t,)
        Saved times in units of τ.
    method : str
        The solver (a key of :data:`SOLVERS`).
    W : ndarray, shape (n_t, B, N_o, N_i)
        End-to-end map W_L⋯W_1 at every time (zero for failed runs).
    grams : KernelGrams
        The NTK in factored form at every time, (n_t, B, L, ·, ·) (theory §4).
    status : ndarray of int, shape (B,)
        0 success; negative: the run failed (``message`` says why).
    message : ndarray of str, shape (B,)
        "" for successful runs.
    balance_drift : ndarray, shape (B,)
        Largest change of the conserved imbalance W_{l+1}ᵀW_{l+1} − W_lW_lᵀ along the
        trajectory, relative to ‖W_{l+1}(0)‖² + ‖W_l(0)‖² (exact: its trace only).
    weights : list of ndarray or None
        W_l(t), shape (n_t, B, N_l, N_{l−1}), for the simulators.
    q : ndarray or None
        QQᵀ(t), shape (n_t, B, N_i+N_o, N_i+N_o), for ``exact`` and ``both``.
    companion : Solution or None
        ``both``: the simulated gradient flow of the same inits.
    """

    t: np.ndarray
    method: str
    W: np.ndarray
    grams: KernelGrams
    status: np.ndarray
    message: np.ndarray
    balance_drift: np.ndarray
    weights: list[np.ndarray] | None = None
    q: np.ndarray | None = None
    companion: Solution | None = field(default=None, repr=False)

    @property
    def success(self) -> np.ndarray:
        """Boolean (B,): runs that reached every saved time."""
        return self.status == 0

    @property
    def n_runs(self) -> int:
        return int(self.status.size)


@dataclass(frozen=True)
class Solver:
    """A registered solver: how to run it and where it applies.

    Attributes
    ----------
    name : str
    description : str
        One line for docs and ``--help``.
    run : callable
        ``run(weights, sigma_yx, t, lr=...) -> Solution`` on a batch (B, ...) of inits.
    max_depth : int or None
        Deepest network it solves (None: any depth).
    shard_size : int
        Default points per pipeline job (a job then takes a few seconds).
    """

    name: str
    description: str
    run: Callable[..., Solution]
    max_depth: int | None
    shard_size: int


def _exact(weights: Sequence[np.ndarray], sigma_yx: np.ndarray, t: np.ndarray, **_) -> Solution:
    W1, W2 = weights
    q = exact.qqt(W1, W2, sigma_yx, t)  # (n_t, B, N_i+N_o, N_i+N_o)
    n_in = W1.shape[-1]
    a, W, b = exact.qqt_blocks(q, n_in)
    n_h = W1.shape[-2]
    # QQᵀ holds tr(W2ᵀW2 − W1W1ᵀ) = λN_h; a drift Δλ of λI has Frobenius norm |Δλ|√N_h, the
    # same measure as the simulators' ‖ΔD‖_F / (‖W1‖² + ‖W2‖²)
    gap = np.trace(b, axis1=-2, axis2=-1) - np.trace(a, axis1=-2, axis2=-1)
    size = np.trace(b[0], axis1=-2, axis2=-1) + np.trace(a[0], axis1=-2, axis2=-1)
    drift = np.max(np.abs(gap - gap[0]), axis=0) / np.maximum(size, 1e-300) / np.sqrt(n_h)
    n = W.shape[1]
    return Solution(
        t=t,
        method="exact",
        W=W,
        grams=metrics.ntk_grams_from_qqt(q, n_in),
        status=np.zeros(n, dtype=np.int64),
        message=np.full(n, "", dtype=object),
        balance_drift=drift,
        q=q,
    )


def _simulated(
    method: str, weights: Sequence[np.ndarray], sigma_yx: np.ndarray, t: np.ndarray, lr=None
) -> Solution:
    n = weights[0].shape[0]
    if method == "gd":
        ws = simulate.gradient_descent(weights, sigma_yx, t, lr)
        status = np.zeros(n, dtype=np.int64)
        failure = "gradient descent diverged (non-finite weights); lower `lr`"
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # failures reported per run
            ws, info = simulate.gradient_flow(weights, sigma_yx, t, full_output=True)
        status = np.asarray(info.status, dtype=np.int64).copy()
        failure = f"gradient flow failed ({info.message})"
    finite = np.logical_and.reduce([np.all(np.isfinite(w), axis=(0, 2, 3)) for w in ws])
    status[(status == 0) & ~finite] = -2
    ok = status == 0
    # failed runs are reported per run; zero them so the batch's metrics stay finite
    ws = [np.where(ok[None, :, None, None], w, 0.0) for w in ws]
    d0 = init.imbalances(weights)
    dt = init.imbalances(ws)
    drift = np.zeros(n)
    for l, (x0, xt) in enumerate(zip(d0, dt, strict=True)):  # noqa: E741
        scale = np.sum(weights[l] ** 2, axis=(-2, -1)) + np.sum(weights[l + 1] ** 2, axis=(-2, -1))
        dev = np.max(np.linalg.norm(xt - x0, axis=(-2, -1)), axis=0)
        drift = np.maximum(drift, dev / np.maximum(scale, 1e-300))
    return Solution(
        t=t,
        method=method,
        W=metrics.end_to_end(ws),
        grams=metrics.ntk_grams(ws),
        status=status,
        message=np.where(ok, "", failure).astype(object),
        balance_drift=drift,
        weights=ws,
    )


def _both(weights: Sequence[np.ndarray], sigma_yx: np.ndarray, t: np.ndarray, **_) -> Solution:
    res = _exact(weights, sigma_yx, t)
    sim = _simulated("flow", weights, sigma_yx, t)
    return Solution(
        t=t,
        method="both",
        W=res.W,
        grams=res.grams,
        status=sim.status,
        message=sim.message,
        balance_drift=res.balance_drift,
        q=res.q,
        companion=sim,
    )


#: The solvers, by name (``solver`` in a sweep config, ``method`` of :func:`solve_dynamics`).
SOLVERS: dict[str, Solver] = {
    s.name: s
    for s in (
        Solver(
            "exact",
            "closed-form QQᵀ(t) of a λ-balanced two-layer net (whitened inputs)",
            _exact,
            max_depth=2,
            shard_size=1000,
        ),
        Solver(
            "flow",
            "simulated gradient flow (adaptive L-stable Rosenbrock method), any depth",
            lambda weights, sigma_yx, t, **kw: _simulated("flow", weights, sigma_yx, t),
            max_depth=None,
            shard_size=200,
        ),
        Solver(
            "gd",
            "gradient descent with step `lr` (t/τ = k·lr), any depth",
            lambda weights, sigma_yx, t, lr=None, **kw: _simulated("gd", weights, sigma_yx, t, lr),
            max_depth=None,
            shard_size=200,
        ),
        Solver(
            "both",
            "exact and flow side by side (records their deviation)",
            _both,
            max_depth=2,
            shard_size=200,
        ),
    )
}


def solve_dynamics(
    weights: Sequence[object],
    sigma_yx: object,
    t: object,
    *,
    method: str = "exact",
    lr: float | None = None,
) -> Solution:
    """Gradient-flow (or descent) dynamics of a batch of linear networks from given inits.

    τ dW_l/dt = A_lᵀ(Σyx − W)B_lᵀ with whitened inputs (theory §1), solved by ``method``.

    Parameters
    ----------
    weights : sequence of array_like
        W_1 … W_L (input side first), W_l of shape (B, N_l, N_{l−1}): B runs of one shape.
    sigma_yx : array_like, shape (N_o, N_i) or (B, N_o, N_i)
        Input–output correlation of a task with whitened inputs.
    t : array_like, shape (n_t,)
        Saved times in units of τ (increasing, starting at 0 for the usual metrics).
    method : str, keyword-only
        A key of :data:`SOLVERS`: ``exact`` (depth 2, λ-balanced), ``flow``, ``gd``, ``both``.
    lr : float, keyword-only
        Learning rate of ``gd``; saved times must be multiples of it.

    Returns
    -------
    Solution
        Failed runs have ``status`` < 0 and a ``message``; they do not raise.

    Raises
    ------
    ValueError
        Unknown method, a depth the method cannot solve, mismatched shapes, or (``exact``)
        weights that are not λ-balanced.

    Examples
    --------
    >>> from lrsweep.init import lambda_balanced
    >>> W1, W2 = lambda_balanced(1.0, 2, 2, 2, scale=0.1, seed=0)
    >>> sol = solve_dynamics([W1[None], W2[None]], np.diag([2.0, 1.0]), [0.0, 50.0])
    >>> bool(sol.success.all()), bool(np.allclose(sol.W[-1, 0], np.diag([2.0, 1.0])))
    (True, True)
    """
    if method not in SOLVERS:
        raise ValueError(f"`method` must be one of {list(SOLVERS)}, got {method!r}")
    solver = SOLVERS[method]
    ws = [np.asarray(w, dtype=np.float64) for w in weights]
    if solver.max_depth is not None and len(ws) > solver.max_depth:
        raise ValueError(
            f"method {method!r} solves depth <= {solver.max_depth}, got {len(ws)} layers; "
            "use method 'flow' or 'gd'"
        )
    if method == "gd" and lr is None:
        raise ValueError("method 'gd' needs the learning rate `lr`")
    return solver.run(ws, np.asarray(sigma_yx, dtype=np.float64), as_times(t), lr=lr)
