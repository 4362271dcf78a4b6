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
from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np

from lrsweep import exact, init, metrics, simulate, standard
from lrsweep._validate import as_array, as_times, pair_size
from lrsweep.metrics import KernelGrams

__all__ = ["SOLVERS", "Solution", "Solver", "domain_violations", "solve_dynamics"]


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
        The NTK in factored form at every time, (n_t, B, L, ·, ·) (theory §4); computed from
        ``q`` or ``weights`` on first use (:meth:`grams_at` gives some times only).
    status : ndarray of int, shape (B,)
        0 success; −1 the simulator hit its step limit, −2 it diverged or underflowed,
        −3 the run is outside the solver's float64 domain (:func:`domain_violations`; then
        it is solved from W = 0 to keep the batch's shape). ``message`` says why.
    message : ndarray of str, shape (B,)
        "" for successful runs.
    balance_drift : ndarray, shape (B,)
        Largest change of the conserved imbalance W_{l+1}ᵀW_{l+1} − W_lW_lᵀ along the
        trajectory, relative to the largest ‖W_l‖_F² + ‖W_{l+1}‖_F² along it (exact: its trace
        against λ·N_h).
    residual : ndarray, shape (B,)
        ``exact``/``both``: relative residual of the Riccati equation at the last saved time
        (:func:`lrsweep.exact.riccati_residual`, derivative by central differences); NaN
        for the simulators.
    weights : list of ndarray or None
        W_l(t), shape (n_t, B, N_l, N_{l−1}), for the simulators.
    factor : ndarray or None
        ``exact``, ``both``: Y(t), shape (n_t, B, N_i+N_o, N_h'), with QQᵀ(t) = YYᵀ
        (:func:`lrsweep.exact.qqt_factor`).
    q : ndarray or None
        QQᵀ(t), shape (n_t, B, N_i+N_o, N_i+N_o), for ``exact`` and ``both`` (from ``factor``
        on first use).
    companion : Solution or None
        ``both``: the simulated gradient flow of the same inits.
    """

    t: np.ndarray
    method: str
    W: np.ndarray
    status: np.ndarray
    message: np.ndarray
    balance_drift: np.ndarray
    residual: np.ndarray
    weights: list[np.ndarray] | None = None
    factor: np.ndarray | None = None
    companion: Solution | None = field(default=None, repr=False)

    @property
    def success(self) -> np.ndarray:
        """Boolean (B,): runs that reached every saved time."""
        return self.status == 0

    @property
    def n_runs(self) -> int:
        return int(self.status.size)

    @property
    def depth(self) -> int:
        """L, the number of weight layers (2 for ``exact`` and ``both``)."""
        return 2 if self.factor is not None else len(self.weights)

    @cached_property
    def q(self) -> np.ndarray | None:
        return None if self.factor is None else exact.outer(self.factor)

    @cached_property
    def grams(self) -> KernelGrams:
        return self.grams_at(slice(None))

    @cached_property
    def two_layer_grams(self) -> tuple[np.ndarray, np.ndarray]:
        """(W2W2ᵀ, W1ᵀW1) at every time, (n_t, B, N_o, N_o) and (n_t, B, N_i, N_i), depth 2.

        The NTK of a two-layer net is K = W2W2ᵀ ⊗ XᵀX + I ⊗ XᵀW1ᵀW1X: these are its grams
        other than the identities, as contiguous arrays (the blocks of QQᵀ for ``exact``).
        """
        if self.depth != 2:
            raise ValueError(f"two_layer_grams needs depth 2, the solution has depth {self.depth}")
        if self.factor is None:
            W1, W2 = self.weights
            return W2 @ np.swapaxes(W2, -1, -2), np.swapaxes(W1, -1, -2) @ W1
        n_in = self.W.shape[-1]
        Y, YT = self.factor, np.ascontiguousarray(np.swapaxes(self.factor, -1, -2))
        return Y[..., n_in:, :] @ YT[..., :, n_in:], Y[..., :n_in, :] @ YT[..., :, :n_in]

    def grams_at(self, index: int | slice | np.ndarray) -> KernelGrams:
        """The NTK grams at the saved times ``t[index]`` only, (…, B, L, ·, ·).

        As :func:`lrsweep.metrics.ntk_grams_from_qqt` of QQᵀ (``exact``, ``both``) or
        :func:`lrsweep.metrics.ntk_grams` of the weights.
        """
        if self.factor is None:
            return metrics.ntk_grams([w[index] for w in self.weights])
        out, inn = (g[index] for g in self.two_layer_grams)
        n_o, n_i = out.shape[-1], inn.shape[-1]
        batch = out.shape[:-2]
        return KernelGrams(
            np.stack([out, np.broadcast_to(np.eye(n_o), (*batch, n_o, n_o))], axis=-3),
            np.stack([np.broadcast_to(np.eye(n_i), (*batch, n_i, n_i)), inn], axis=-3),
        )


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


#: Largest magnitude the solvers accept for the weight scale w = ‖W_l‖_F² + ‖W_{l+1}‖_F² (which
#: bounds |λ|·N_l) and the task's singular values: losses and NTK inner products are squares
#: of it (× N²), and float64 ends at 1.8e308.
MAGNITUDE_MAX = 1e100
#: Smallest non-zero weight scale accepted: the exact solver's elimination forms the inverse
#: square of it, which must stay below float64's 1.8e308.
WEIGHT_SCALE_MIN = 1e-200
#: Smallest largest task singular value accepted (below it the task is numerically zero).
TASK_SCALE_MIN = 1e-100
#: The simulators carry λ in float64 weights, whose imbalance W_{l+1}ᵀW_{l+1} − W_lW_lᵀ has a
#: round-off of about ε·(‖W_l‖² + ‖W_{l+1}‖²). A run is simulated only if that round-off is
#: below this fraction of max(|λ|, s̃_max), the scale its dynamics respond to: the flow's own
#: accuracy (≈ 1e-9, tested ≤ 1e-7), so a point never looks more precise than it is.
RESOLUTION_RTOL = 1e-7
#: Step of the five-point derivative in the Riccati residual, in units of 1/ρ (ρ bounds the
#: flow's rates). Its truncation error is ≲ 5!/30·(hρ)⁴ ≈ 4e-8 of the scale, and an error δ
#: of the computed QQᵀ shows up as ≈ 1.5·δ/(hρ) = 150·δ: a residual above the tolerance
#: 1e-6 means the solution is off by more than ~1e-8, well beyond its tested 1e-9.
FD_STEP = 1e-2

_EPS = float(np.finfo(float).eps)


def domain_violations(
    method: str, weights: Sequence[np.ndarray], sigma_yx: np.ndarray, lam: np.ndarray
) -> np.ndarray:
    """Why each run is outside the domain where ``method`` is accurate in float64 ("" if not).

    Parameters
    ----------
    method : str
        A key of :data:`SOLVERS`.
    weights : sequence of ndarray
        W_1 … W_L, W_l of shape (B, N_l, N_{l−1}).
    sigma_yx : ndarray, shape (N_o, N_i) or (B, N_o, N_i)
    lam : ndarray, shape (B,)
        The λ each init was built with.

    Returns
    -------
    ndarray of str, shape (B,)
        The limit each run breaks, with its value; "" for runs inside the domain (theory §7).
    """
    n = weights[0].shape[0]
    scale = np.max([pair_size(w, v) for w, v in zip(weights[:-1], weights[1:], strict=True)], 0)
    task = np.broadcast_to(np.linalg.norm(sigma_yx, ord=2, axis=(-2, -1)), (n,))
    lam = np.broadcast_to(np.abs(np.asarray(lam, dtype=float)), (n,))
    checks = [
        (scale > MAGNITUDE_MAX, "weight scale ‖W_l‖²+‖W_(l+1)‖² = {s:.3g} is above {hi:g}"),
        ((scale > 0) & (scale < WEIGHT_SCALE_MIN), "weight scale {s:.3g} is below {lo_w:g}"),
        (task > MAGNITUDE_MAX, "the task's largest singular value {k:.3g} is above {hi:g}"),
        (task < TASK_SCALE_MIN, "the task's largest singular value {k:.3g} is below {lo_t:g}"),
    ]
    if method != "exact":  # flow, gd and the flow half of both
        resolution = _EPS * scale
        checks.append(
            (
                resolution > RESOLUTION_RTOL * np.maximum(lam, task),
                "lambda is not resolved by float64 weights at this scale: the imbalance "
                "W_(l+1)^T W_(l+1) - W_l W_l^T carries round-off ~{r:.2g} > {res:g} * "
                "max(|lambda|, task scale {k:.3g}); use solver exact (depth 2) or a smaller scale",
            )
        )
    else:
        resolution = np.zeros(n)
    out = np.full(n, "", dtype=object)
    for bad, text in checks:
        for i in np.flatnonzero(bad & (out == "")).tolist():
            out[i] = "outside the solvers' float64 domain: " + text.format(
                s=scale[i],
                l=lam[i],
                k=task[i],
                r=resolution[i],
                hi=MAGNITUDE_MAX,
                lo_w=WEIGHT_SCALE_MIN,
                lo_t=TASK_SCALE_MIN,
                res=RESOLUTION_RTOL,
            )
    return out


def _exact(
    weights: Sequence[np.ndarray], sigma_yx: np.ndarray, t: np.ndarray, lam: np.ndarray, **_
) -> Solution:
    W1, W2 = weights
    n = W1.shape[0]
    n_in, n_h = W1.shape[-1], W1.shape[-2]
    setup = exact.qqt_setup(W1, W2, sigma_yx, lam=lam)  # shared with the residual's times
    Y = exact.qqt_factor(setup, t)  # QQᵀ = YYᵀ, (n_t, B, N_i+N_o, N_h')
    Y_in, Y_out = Y[..., :n_in, :], Y[..., n_in:, :]
    residual = _riccati_residual(setup, sigma_yx, lam, t[-1], exact.outer(Y[-1]))
    # QQᵀ holds tr(W2ᵀW2 − W1W1ᵀ) = λN_h; a drift Δλ of λI has Frobenius norm |Δλ|√N_h,
    # measured against the largest ‖Q(t)‖_F² = tr W1ᵀW1 + tr W2W2ᵀ (the simulators' measure)
    tr_a, tr_b = (
        np.einsum("...ij,...ij->...", Y_in, Y_in),
        np.einsum("...ij,...ij->...", Y_out, Y_out),
    )
    size = np.max(tr_b + tr_a, axis=0)
    drift = np.max(np.abs(tr_b - tr_a - lam * n_h), axis=0) / np.maximum(size, 1e-300)
    return Solution(
        t=t,
        method="exact",
        W=Y_out @ np.ascontiguousarray(np.swapaxes(Y_in, -1, -2)),
        status=np.zeros(n, dtype=np.int64),
        message=np.full(n, "", dtype=object),
        balance_drift=drift / np.sqrt(n_h),
        residual=residual,
        factor=Y,
    )


def _riccati_residual(
    setup: exact.QQtSetup,
    sigma_yx: np.ndarray,
    lam: np.ndarray,
    t_end: float,
    q_end: np.ndarray,
) -> np.ndarray:
    """Riccati residual at t_end, (B,), dq/dt from q(t_end ± h, t_end ± 2h) (five points).

    h = FD_STEP/ρ with ρ = 2‖F‖_2 + 2 tr q(t_end), a bound on the local rates of the flow.
    ``setup`` is the runs' :func:`lrsweep.exact.qqt_setup`.
    """
    if t_end <= 0:
        return np.full(q_end.shape[0], np.nan)
    F_norm = np.sqrt(np.linalg.norm(sigma_yx, ord=2, axis=(-2, -1)) ** 2 + lam**2 / 4)
    rho = 2 * F_norm + 2 * np.einsum("...ii->...", q_end)
    h = np.minimum(FD_STEP / np.maximum(rho, 1e-300), t_end / 4)
    offsets = np.array([-2.0, -1.0, 1.0, 2.0])
    q = exact.outer(exact.qqt_factor(setup, t_end + offsets[:, None] * h))
    dq = (q[0] - 8 * q[1] + 8 * q[2] - q[3]) / (12 * h)[:, None, None]
    return exact.riccati_residual(q_end, dq, sigma_yx, lam)


def _simulated(
    method: str,
    weights: Sequence[np.ndarray],
    sigma_yx: np.ndarray,
    t: np.ndarray,
    lr=None,
    rates: np.ndarray | None = None,
) -> Solution:
    n = weights[0].shape[0]
    if method == "gd":
        ws = simulate.gradient_descent(weights, sigma_yx, t, lr, rates=rates)
        status = np.zeros(n, dtype=np.int64)
        failure = "gradient descent diverged (non-finite weights); lower `lr`"
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # failures reported per run
            ws, info = simulate.gradient_flow(weights, sigma_yx, t, full_output=True, rates=rates)
        status = np.asarray(info.status, dtype=np.int64).copy()
        failure = f"gradient flow failed ({info.message})"
    finite = np.logical_and.reduce([np.all(np.isfinite(w), axis=(0, 2, 3)) for w in ws])
    status[(status == 0) & ~finite] = -2
    ok = status == 0
    # failed runs are reported per run; zero them so the batch's metrics stay finite
    ws = [np.where(ok[None, :, None, None], w, 0.0) for w in ws]
    # largest change of each conserved (rate-weighted) imbalance against the largest size
    # of its pair (theory §6.1)
    drift = np.zeros(n)
    d_0 = standard.weighted_imbalances(weights, rates)
    d_t = standard.weighted_imbalances(ws, rates)
    root = np.sqrt(np.ones(len(ws)) if rates is None else np.asarray(rates, dtype=float))
    for l, (x0, xt) in enumerate(zip(d_0, d_t, strict=True)):  # noqa: E741
        a_l = ws[l] / root[..., l, None, None]
        a_next = ws[l + 1] / root[..., l + 1, None, None]
        size = np.max(pair_size(a_l, a_next), axis=0)
        dev = np.max(np.linalg.norm(xt - x0, axis=(-2, -1)), axis=0)
        drift = np.maximum(drift, dev / np.maximum(size, 1e-300))
    return Solution(
        t=t,
        method=method,
        W=metrics.end_to_end(ws),
        status=status,
        message=np.where(ok, "", failure).astype(object),
        balance_drift=drift,
        residual=np.full(n, np.nan),
        weights=ws,
    )


def _both(
    weights: Sequence[np.ndarray], sigma_yx: np.ndarray, t: np.ndarray, lam: np.ndarray, **_
) -> Solution:
    res = _exact(weights, sigma_yx, t, lam)
    sim = _simulated("flow", weights, sigma_yx, t)
    return replace(res, method="both", status=sim.status, message=sim.message, companion=sim)


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
            "simulated gradient flow (Dormand-Prince for non-stiff runs, the L-stable Rosenbrock "
            "method RODAS4 for stiff ones), any depth",
            lambda weights, sigma_yx, t, rates=None, **_: _simulated(
                "flow", weights, sigma_yx, t, rates=rates
            ),
            max_depth=None,
            shard_size=200,
        ),
        Solver(
            "gd",
            "gradient descent with step `lr` (t/τ = k·lr), any depth",
            lambda weights, sigma_yx, t, lr=None, rates=None, **_: _simulated(
                "gd", weights, sigma_yx, t, lr, rates
            ),
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
    lam: object = None,
    lr: float | None = None,
    rates: object = None,
) -> Solution:
    """Gradient-flow (or descent) dynamics of a batch of linear networks from given inits.

    τ dW_l/dt = A_lᵀ(Σyx − W)B_lᵀ with whitened inputs (theory §1), solved by ``method``.
    Runs outside the float64 domain of the method (:func:`domain_violations`, theory §7)
    are not solved: they get status −3 and the limit they break as ``message``.

    Parameters
    ----------
    weights : sequence of array_like
        W_1 … W_L (input side first), W_l of shape (B, N_l, N_{l−1}): B runs of one shape.
    sigma_yx : array_like, shape (N_o, N_i) or (B, N_o, N_i)
        Input–output correlation of a task with whitened inputs.
    t : array_like, shape (n_t,)
        Saved times in units of τ, increasing; S(0, t) and the losses use t[0] as the start.
    method : str, keyword-only
        A key of :data:`SOLVERS`: ``exact`` (depth 2, λ-balanced), ``flow``, ``gd``, ``both``.
    lam : float or array_like, shape (B,), keyword-only
        The λ the inits were built with. ``exact`` uses it in the closed form (the weights
        carry λ only to ±ε·scale); default: read off the first layer pair.
    lr : float, keyword-only
        Learning rate of ``gd``; saved times must be multiples of it.
    rates : array_like, shape (L,) or (B, L), keyword-only
        Per-layer learning-rate multipliers ρ_l (``flow`` and ``gd``; layer l moves at ρ_l
        times the base rate, theory §6.1). Default: one rate.

    Returns
    -------
    Solution
        Failed runs have ``status`` < 0 and a ``message``; they do not raise.

    Raises
    ------
    ValueError
        Unknown method, a depth the method cannot solve, mismatched shapes, or (``exact``)
        weights that are not λ-balanced (with ``lam`` if given).

    Examples
    --------
    >>> from lrsweep.init import lambda_balanced
    >>> W1, W2 = lambda_balanced(1.0, 2, 2, 2, scale=0.1, seed=0)
    >>> sol = solve_dynamics([W1[None], W2[None]], np.diag([2.0, 1.0]), [0.0, 50.0], lam=1.0)
    >>> bool(sol.success.all()), bool(np.allclose(sol.W[-1, 0], np.diag([2.0, 1.0])))
    (True, True)
    """
    if method not in SOLVERS:
        raise ValueError(f"`method` must be one of {list(SOLVERS)}, got {method!r}")
    solver = SOLVERS[method]
    ws = [as_array(w, f"weights[{i}]") for i, w in enumerate(weights)]
    if len(ws) < 2 or any(w.ndim != 3 for w in ws):
        raise ValueError(
            "`weights` must be L >= 2 arrays of shape (B, N_l, N_(l-1)), got shapes "
            f"{[w.shape for w in ws]}"
        )
    if solver.max_depth is not None and len(ws) > solver.max_depth:
        raise ValueError(
            f"method {method!r} solves depth <= {solver.max_depth}, got {len(ws)} layers; "
            "use method 'flow' or 'gd'"
        )
    if method == "gd" and lr is None:
        raise ValueError("method 'gd' needs the learning rate `lr`")
    if rates is not None and method not in ("flow", "gd"):
        raise ValueError(f"per-layer `rates` need method 'flow' or 'gd', got {method!r}")
    sigma_yx = as_array(sigma_yx, "sigma_yx")
    n = ws[0].shape[0]
    lam = (
        init.imbalance_report(ws)[0][:, 0]
        if lam is None
        else np.broadcast_to(as_array(lam, "lam"), (n,)).copy()
    )
    reasons = domain_violations(method, ws, sigma_yx, lam)
    out = reasons != ""
    if np.any(out):  # solve those from W = 0, a fixed point, and report them as failed
        ws = [np.where(out[:, None, None], 0.0, w) for w in ws]
        lam = np.where(out, 0.0, lam)
    extra = {} if rates is None else {"rates": rates}
    sol = solver.run(ws, sigma_yx, as_times(t), lam=lam, lr=lr, **extra)
    if not np.any(out):
        return sol
    status = np.where(out, -3, sol.status)
    return replace(sol, status=status, message=np.where(out, reasons, sol.message))
