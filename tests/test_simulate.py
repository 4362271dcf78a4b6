"""Batched gradient descent and gradient flow for deep linear networks.

Ground truths: finite differences (gradient, Jacobian), the exact two-layer solution
(lrsweep.exact), an independent tight ODE integration (tests/ode_reference.py) and, for
task-aligned deep inits, independent scalar ODEs per mode (theory §3.5 generalised).
"""

from __future__ import annotations

import numpy as np
import pytest
from ode_reference import gradient_flow_reference
from scipy.integrate import solve_ivp

from lrsweep import simulate
from lrsweep.init import gaussian_deep, imbalances, lambda_balanced, lambda_balanced_deep
from lrsweep.metrics import end_to_end, loss
from lrsweep.simulate import (
    FLOW_RTOL,
    descent_steps,
    gradient_descent,
    gradient_flow,
    loss_gradient,
)
from lrsweep.tasks import random_regression


def stack(runs):
    """Stack per-run weight lists into one batched list (leading run axis)."""
    return [np.stack([r[k] for r in runs]) for k in range(len(runs[0]))]


def rel(a, b):
    return np.max(np.abs(a - b)) / np.max(np.abs(b))


def data(rng, n_in=3, n_out=4, p=7):
    """Σyx and a non-whitened Σxx from random data."""
    X = rng.standard_normal((n_in, p))
    Y = rng.standard_normal((n_out, p))
    return Y @ X.T / p, X @ X.T / p


def full_loss(weights, syx, sxx):
    W = end_to_end(weights)
    return 0.5 * np.trace(W @ sxx @ W.T) - np.sum(W * syx)


def conserved_drift(ws_t, ws_0):
    """max_t,l ‖D_l(t) − D_l(0)‖_F / (‖W_{l+1}(0)‖_F² + ‖W_l(0)‖_F²)."""
    worst = 0.0
    for l, (d_t, d_0) in enumerate(zip(imbalances(ws_t), imbalances(ws_0), strict=True)):  # noqa: E741
        size = np.sum(ws_0[l] ** 2) + np.sum(ws_0[l + 1] ** 2)
        worst = max(worst, np.max(np.linalg.norm(d_t - d_0, axis=(-2, -1))) / size)
    return worst


# ------------------------------------------------------------------ gradient and Jacobian


def test_loss_gradient_matches_finite_differences(rng):
    syx, sxx = data(rng)
    ws = gaussian_deep([3, 4, 2, 4], std=0.8, seed=1)
    grads = loss_gradient(ws, syx, sigma_xx=sxx)
    h = 1e-6
    for l, (w, g) in enumerate(zip(ws, grads, strict=True)):  # noqa: E741
        fd = np.zeros_like(w)
        for idx in np.ndindex(w.shape):
            plus = [x.copy() for x in ws]
            minus = [x.copy() for x in ws]
            plus[l][idx] += h
            minus[l][idx] -= h
            fd[idx] = (full_loss(plus, syx, sxx) - full_loss(minus, syx, sxx)) / (2 * h)
        assert rel(g, fd) < 1e-8, l


def test_loss_gradient_is_batched_and_whitened_by_default(rng):
    syx = rng.standard_normal((2, 3))
    runs = [gaussian_deep([3, 2, 2], 0.5, seed=i) for i in range(4)]
    batched = loss_gradient(stack(runs), syx)
    for i, r in enumerate(runs):
        single = loss_gradient(r, syx, sigma_xx=np.eye(3))
        assert all(np.allclose(b[i], s, atol=1e-15) for b, s in zip(batched, single, strict=True))


def test_jacobian_is_the_symmetric_derivative_of_the_field(rng):
    syx, sxx = data(rng, 3, 2)
    ws = gaussian_deep([3, 2, 4, 2], std=0.7, seed=2)
    net, wb, sb, xb, _ = simulate._check_network(ws, syx, sxx)
    field = simulate._flat_field(net, sb, xb)
    y = net.pack(wb)
    J = simulate._jacobian(wb, sb, xb)
    assert np.array_equal(J, np.swapaxes(J, 1, 2))
    h = 1e-6
    fd = np.stack(
        [(field(y + h * e) - field(y - h * e))[0] / (2 * h) for e in np.eye(net.size)], axis=1
    )
    assert rel(J[0], fd) < 1e-8


# ------------------------------------------------------------------ shapes, t = 0, batching


def test_t_zero_returns_the_initial_state_and_times_any_order(rng):
    syx = rng.standard_normal((3, 2))
    ws = gaussian_deep([2, 3, 3], 0.5, seed=0)
    t = np.array([2.0, 0.0, 1.0, 2.0])
    flow = gradient_flow(ws, syx, t)
    gd = gradient_descent(ws, syx, t, lr=0.01)
    for out in (flow, gd):
        assert [o.shape for o in out] == [(4, 3, 2), (4, 3, 3)]
        assert all(np.array_equal(o[1], w) for o, w in zip(out, ws, strict=True))
        assert all(np.array_equal(o[0], o[3]) for o in out)
    sorted_flow = gradient_flow(ws, syx, [0.0, 1.0, 2.0])
    assert all(
        np.allclose(a[[1, 2, 0]], b, rtol=1e-9) for a, b in zip(flow, sorted_flow, strict=True)
    )


def test_inputs_are_not_modified(rng):
    syx = rng.standard_normal((2, 2))
    ws = gaussian_deep([2, 2, 2], 0.5, seed=0)
    before = [w.copy() for w in ws]
    gradient_descent(ws, syx, [1.0], lr=0.1)
    gradient_flow(ws, syx, [1.0])
    assert all(np.array_equal(a, b) for a, b in zip(ws, before, strict=True))


@pytest.mark.parametrize("solver", ["flow", "gd"])
def test_batched_equals_looped(rng, solver):
    syx, sxx = data(rng, 3, 2)
    lams = [-1.0, 0.0, 0.5, 20.0]
    runs = [lambda_balanced_deep(lam, [3, 2, 2, 2], 0.3, seed=i) for i, lam in enumerate(lams)]
    t = [0.0, 0.5, 3.0]

    def solve(ws):
        if solver == "flow":
            return gradient_flow(ws, syx, t, sigma_xx=sxx)
        return gradient_descent(ws, syx, t, lr=0.001, sigma_xx=sxx)

    batched = solve(stack(runs))
    for i, r in enumerate(runs):
        single = solve(r)
        for b, s in zip(batched, single, strict=True):
            assert b.shape[1] == len(runs)
            assert np.allclose(b[:, i], s, rtol=1e-12, atol=1e-14)


def test_batch_axes_broadcast_across_weights_and_targets(rng):
    ws = gaussian_deep([2, 2, 2], 0.5, seed=0)
    targets = rng.standard_normal((2, 3, 2, 2))  # batch (2, 3) from Σyx only
    out = gradient_flow(ws, targets, [0.0, 1.0])
    assert out[0].shape == (2, 2, 3, 2, 2)
    single = gradient_flow(ws, targets[1, 2], [0.0, 1.0])
    assert np.allclose(out[1][:, 1, 2], single[1], rtol=1e-12)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda ws, s: gradient_flow(ws[0], s, [1.0]), TypeError, "`weights` must be a list"),
        (
            lambda ws, s: gradient_flow(ws[:1], s, [1.0]),
            ValueError,
            "must hold L >= 2 layers, got 1",
        ),
        (
            lambda ws, s: gradient_flow([ws[0], ws[1].T], s, [1.0]),
            ValueError,
            r"`weights\[1\]` must have 3 columns to follow `weights\[0\]` of shape \(3, 2\)",
        ),
        (
            lambda ws, s: gradient_descent(ws, s.T, [1.0], lr=0.1),
            ValueError,
            r"`sigma_yx` must have shape \(\.\.\., N_o, N_i\)=\(\.\.\., 4, 2\)",
        ),
        (
            lambda ws, s: gradient_flow(ws, s, [1.0], sigma_xx=np.eye(3)),
            ValueError,
            r"`sigma_xx` must have shape \(\.\.\., N_i, N_i\)=\(\.\.\., 2, 2\)",
        ),
        (
            lambda ws, s: gradient_flow(ws, s, [1.0], sigma_xx=np.array([[1.0, 1.0], [0.0, 1.0]])),
            ValueError,
            "`sigma_xx` must be symmetric",
        ),
        (lambda ws, s: gradient_flow(ws, s, [-1.0]), ValueError, "`t` must be non-negative"),
        (lambda ws, s: gradient_descent(ws, s, [1.0], lr=0.0), ValueError, "`lr` must be a finite"),
        (lambda ws, s: gradient_flow(ws, s, [1.0], tau=-1), ValueError, "`tau` must be a finite"),
        (
            lambda ws, s: gradient_flow(ws, s, [1.0], rtol=1e-16),
            ValueError,
            "`rtol` must be >= 1e-14",
        ),
        (
            lambda ws, s: gradient_flow([ws[0], np.full((4, 3), np.nan)], s, [1.0]),
            ValueError,
            r"`weights\[1\]` must be finite",
        ),
        (
            lambda ws, s: gradient_flow([np.zeros((2, 3, 2)), np.zeros((3, 4, 3))], s, [1.0]),
            ValueError,
            "leading batch axes of `weights` must broadcast",
        ),
    ],
)
def test_bad_arguments_raise_before_work(call, error, message):
    ws = [np.ones((3, 2)), np.ones((4, 3))]
    with pytest.raises(error, match=message):
        call(ws, np.ones((4, 2)))


def test_descent_steps_round_to_the_nearest_step():
    assert descent_steps([0.0, 0.1, 0.3, 0.34, 0.36], 0.1).tolist() == [0, 1, 3, 3, 4]
    assert descent_steps(np.arange(0, 2000) * 0.01, 0.01).tolist() == list(range(2000))


def test_gradient_descent_step_is_the_gradient_update(rng):
    syx, sxx = data(rng, 2, 3)
    ws = gaussian_deep([2, 3, 4, 3], 0.6, seed=3)
    lr = 0.05
    stepped = gradient_descent(ws, syx, [lr, 2 * lr], lr, sigma_xx=sxx)
    g = loss_gradient(ws, syx, sigma_xx=sxx)
    one = [w - lr * gw for w, gw in zip(ws, g, strict=True)]
    g1 = loss_gradient(one, syx, sigma_xx=sxx)
    two = [w - lr * gw for w, gw in zip(one, g1, strict=True)]
    for s, a, b in zip(stepped, one, two, strict=True):
        assert np.allclose(s[0], a, rtol=1e-14, atol=1e-15)
        assert np.allclose(s[1], b, rtol=1e-14, atol=1e-15)


def test_gradient_descent_divergence_gives_non_finite_without_raising():
    ws = [np.full((1, 1), 2.0), np.full((1, 1), 2.0)]
    out = gradient_descent(ws, np.ones((1, 1)), [500.0], lr=1.0)
    assert not np.all(np.isfinite(out[0]))


# ---------------------------------------------------- depth 2 against the exact solution

DEPTH2 = [  # (λ, N_i, N_h, N_o)
    (0.0, 3, 3, 3),
    (1.0, 3, 3, 3),
    (-2.5, 3, 3, 3),
    (4.0, 4, 2, 3),
    (-0.7, 4, 3, 2),
    (0.3, 2, 3, 4),
]


@pytest.mark.parametrize(("lam", "n_i", "n_h", "n_o"), DEPTH2)
def test_depth2_flow_matches_exact_solution(lam, n_i, n_h, n_o):
    exact = pytest.importorskip("lrsweep.exact")
    task = random_regression(n_i, n_o, seed=1)
    syx = task.sigma_yx
    # λ = 0: only the init whose modes all have the task's sign converges (a mode with the
    # wrong sign sits on a saddle that round-off leaves at t ≈ ln(1/ε)/s̃); the others are
    # compared up to t = 10 before that escape
    runs = [lambda_balanced_deep(lam, [n_i, n_h, n_o], 0.1, seed=s) for s in range(3)]
    ws = stack(runs)
    t = np.array([0.0, 0.3, 1.0, 3.0, 10.0] + ([] if lam == 0 else [30.0, 100.0]))
    tau = 2.0
    W1, W2 = gradient_flow(ws, syx, tau * t, tau=tau)
    q = exact.qqt(ws[0], ws[1], syx, tau * t, tau=tau)
    Q = np.concatenate([np.swapaxes(W1, -1, -2), W2], axis=-2)
    q_sim = Q @ np.swapaxes(Q, -1, -2)
    err = np.linalg.norm(q_sim - q, axis=(-2, -1)) / np.linalg.norm(q, axis=(-2, -1))
    assert np.max(err) <= 1e-7


def test_depth2_gradient_descent_converges_to_flow_at_first_order():
    """‖W_gd(t; η) − W_flow(t)‖ = C·η + O(η²): halving η halves the error."""
    exact = pytest.importorskip("lrsweep.exact")
    task = random_regression(3, 3, seed=4)
    ws = lambda_balanced_deep(0.5, [3, 3, 3], scale=0.2, seed=2)
    t = np.array([1.0, 2.0, 4.0])
    q = exact.qqt(ws[0], ws[1], task.sigma_yx, t)
    W_exact = q[:, 3:, :3]
    lrs = np.array([0.02, 0.01, 0.005, 0.0025])
    errs = []
    for lr in lrs:
        W1, W2 = gradient_descent(ws, task.sigma_yx, t, lr)
        errs.append(np.max(np.linalg.norm(W2 @ W1 - W_exact, axis=(-2, -1))))
    errs = np.array(errs)
    order = np.log2(errs[:-1] / errs[1:])
    assert np.all(np.abs(order - 1.0) < 0.05), order
    assert errs[-1] < 5e-3


# ---------------------------------------------------- deep: conservation, loss, reference


@pytest.mark.parametrize("depth", [3, 4])
@pytest.mark.parametrize("lam", [-1.0, 0.0, 0.5, 30.0])
def test_deep_flow_conserves_every_imbalance_and_decreases_loss(depth, lam):
    task = random_regression(3, 3, seed=depth)
    runs = [
        lambda_balanced_deep(lam, [3] * (depth + 1), s, seed=i) for i, s in enumerate([0.05, 1.0])
    ]
    ws = stack(runs)
    t = np.linspace(0.0, 20.0, 201)
    out, info = gradient_flow(ws, task.sigma_yx, t, full_output=True)
    assert np.all(info.status == 0)
    assert conserved_drift(out, ws) <= 1e-8
    ell = loss(end_to_end(out), task.sigma_yx)  # (n_t, runs)
    assert np.all(np.diff(ell, axis=0) <= 1e-12 * ell[0])
    assert ell[-1, 1] < 1e-3 * ell[0, 1]  # the small init (rich, deep) may still plateau


def test_deep_flow_conserves_imbalance_of_unbalanced_inits_with_general_inputs(rng):
    syx, sxx = data(rng, 3, 2)
    ws = gaussian_deep([3, 4, 3, 2], std=0.6, seed=5)
    t = np.linspace(0.0, 10.0, 51)
    out = gradient_flow(ws, syx, t, sigma_xx=sxx)
    assert conserved_drift(out, ws) <= 1e-8
    ell = 0.5 * np.einsum("tij,jk,tik->t", end_to_end(out), sxx, end_to_end(out)) - np.einsum(
        "tij,ij->t", end_to_end(out), syx
    )
    assert np.all(np.diff(ell) <= 1e-12 * np.abs(ell).max())


@pytest.mark.parametrize("depth", [3, 4])
def test_deep_flow_matches_independent_ode_reference(rng, depth):
    syx, sxx = data(rng, 2, 3)
    ws = gaussian_deep([2] + [3] * (depth - 1) + [3], std=0.6, seed=depth)
    t = np.array([0.0, 0.5, 2.0, 8.0])
    out = gradient_flow(ws, syx, t, sigma_xx=sxx)
    ref = gradient_flow_reference(ws, syx, t, sigma_xx=sxx)
    for o, r in zip(out, ref, strict=True):
        assert rel(o, r) <= 1e-7


@pytest.mark.parametrize(("depth", "lam"), [(3, 0.0), (3, 0.8), (4, -0.5), (4, 2.0)])
def test_aligned_deep_flow_follows_the_scalar_mode_odes(depth, lam):
    """Task-aligned balanced init: every mode k evolves independently,
    τ ds_l/dt = (∏_{j≠l} s_j)(s̃_k − ∏_j s_j), integrated here by solve_ivp per mode."""
    task = random_regression(3, 3, singular_values=[2.5, 1.2, 0.4], seed=3)
    U, s_task, V = task.svd
    a0 = np.array([0.02, 0.05, 0.3])
    ws = lambda_balanced_deep(lam, [3] * (depth + 1), scale=a0, seed=1, aligned=task)
    t = np.array([0.0, 0.5, 1.5, 3.0, 6.0, 12.0])
    out = gradient_flow(ws, task.sigma_yx, t)

    def mode_rhs(_t, s, target):
        prod = np.prod(s)
        others = np.array([np.prod(np.delete(s, i)) for i in range(s.size)])
        return others * (target - prod)

    from lrsweep.init import deep_balanced_singular_values

    s0 = deep_balanced_singular_values(lam, a0, depth)  # (L, 3)
    ref = np.empty((t.size, depth, 3))
    for k in range(3):
        sol = solve_ivp(
            mode_rhs,
            (0, t[-1]),
            s0[:, k],
            args=(s_task[k],),
            method="DOP853",
            t_eval=t,
            rtol=1e-12,
            atol=1e-14,
        )
        ref[:, :, k] = sol.y.T
    # end-to-end map stays Ũ diag(a_k(t)) Ṽᵀ with a_k = ∏_l s_{l,k}
    modes = U.T @ end_to_end(out) @ V
    assert np.allclose(modes, np.eye(3) * np.prod(ref, axis=1)[:, None, :], rtol=0, atol=1e-8)
    # each layer's singular values are the per-mode s_{l,k}(t)
    for l in range(depth):  # noqa: E741
        sv = np.linalg.svd(out[l], compute_uv=False)
        assert np.allclose(sv, -np.sort(-ref[:, l, :], axis=1), rtol=1e-7, atol=1e-10)


# ------------------------------------------------------------------ stiffness: large |λ|

#: Accepted + rejected RODAS steps allowed for t/τ ∈ [0, 100] at λ = ±1e3 (any depth ≤ 4);
#: an explicit solver would need ≳ λ_max·t ≈ 1e5 (depth 2) to 6e11 (depth 4) steps.
STEP_BOUND = 250


@pytest.mark.parametrize("lam", [1e3, -1e3])
def test_large_lambda_depth2_flow_is_accurate_and_cheap(lam):
    exact = pytest.importorskip("lrsweep.exact")
    task = random_regression(3, 3, seed=0)
    ws = lambda_balanced_deep(lam, [3, 3, 3], 0.05, seed=1)
    t = np.array([0.0, 1e-3, 0.01, 0.1, 1.0, 10.0, 100.0])
    (W1, W2), info = gradient_flow(ws, task.sigma_yx, t, full_output=True)
    assert info.status == 0 and info.n_steps + info.n_rejected <= STEP_BOUND
    q = exact.qqt(ws[0], ws[1], task.sigma_yx, t)
    assert rel(W2 @ W1, q[:, 3:, :3]) <= 1e-7


@pytest.mark.parametrize("depth", [3, 4])
def test_large_lambda_deep_flow_completes_in_bounded_steps(depth):
    """Stiffness ≈ (L−1)!·|λ|^{L−1} (up to 6e9), yet the step count does not grow with |λ|."""
    task = random_regression(3, 3, seed=0)
    lams = [10.0, 1e3, -1e3]
    ws = stack([lambda_balanced_deep(lam, [3] * (depth + 1), 0.05, seed=1) for lam in lams])
    t = np.array([0.0, 1e-6, 1e-3, 0.1, 1.0, 10.0, 100.0])
    out, info = gradient_flow(ws, task.sigma_yx, t, full_output=True)
    assert np.all(info.status == 0)
    assert np.all(info.n_steps + info.n_rejected <= STEP_BOUND)
    assert np.all(info.n_steps[1:] <= 2 * info.n_steps[0])  # λ = 1e3 costs no more than λ = 10
    assert all(np.all(np.isfinite(o)) for o in out)
    assert conserved_drift(out, ws) <= 1e-8
    assert np.allclose(end_to_end([o[-1] for o in out]), task.sigma_yx, atol=1e-9)


def test_flow_failure_is_reported_per_run_not_raised():
    task = random_regression(2, 2, seed=0)
    ws = stack([lambda_balanced_deep(0.1, [2, 2, 2], 0.1, seed=i) for i in range(2)])
    with pytest.warns(RuntimeWarning, match="2 of 2 runs failed"):
        out, info = gradient_flow(ws, task.sigma_yx, [0.0, 50.0], max_steps=3, full_output=True)
    assert np.all(info.status == -1) and "max_steps reached" in info.message
    assert np.array_equal(out[0][0], ws[0]) and np.all(np.isnan(out[0][1]))
    assert info.rtol == FLOW_RTOL


def test_flow_methods_agree_with_the_exact_solution_and_auto_routes_stiff_runs(monkeypatch):
    """'auto' = Dormand–Prince for the non-stiff runs, RODAS4 for the stiff ones (by the
    initial stiffness estimate, or when the explicit budget runs out): every method within
    1e-7 of the closed form, and the routing as the estimate says."""
    from lrsweep.exact import qqt

    task = random_regression(4, 4, seed=0)
    lams = np.array([-100.0, -10.0, 0.5, 10.0, 100.0, 1000.0])
    pairs = [lambda_balanced(lam, 4, 4, 4, scale=0.1, seed=i) for i, lam in enumerate(lams)]
    ws = [np.stack([p[k] for p in pairs]) for k in range(2)]
    t = np.array([0.0, 1.0, 3.0, 10.0, 30.0])
    exact = qqt(ws[0], ws[1], task.sigma_yx, t, lam=lams)[..., 4:, :4]

    def error(out):
        return np.max(np.abs(out[1] @ out[0] - exact)) / np.max(np.abs(exact))

    for method in ("rodas4", "dopri5", "auto"):
        out, info = gradient_flow(ws, task.sigma_yx, t, method=method, full_output=True)
        assert (info.status == 0).all() and error(out) <= 1e-7, method
    # |λ|·t_max ≥ 3000 is stiff for an explicit method: those go to RODAS4 (≈ 130 steps)
    np.testing.assert_array_equal(info.stiff, np.abs(lams) >= 100)
    assert info.n_steps[info.stiff].max() <= 250
    _, explicit = gradient_flow(ws, task.sigma_yx, t, method="dopri5", full_output=True)
    assert explicit.n_steps[-1] > 10 * info.n_steps[-1]  # what the routing saves
    # with the estimate switched off, the budget catches them: same result, stiff flagged
    monkeypatch.setattr(simulate, "EXPLICIT_STIFFNESS", np.inf)
    out, info = gradient_flow(ws, task.sigma_yx, t, full_output=True)
    assert error(out) <= 1e-7 and info.stiff[-1] and not info.stiff[2]


def test_flow_rejects_an_unknown_method():
    with pytest.raises(ValueError, match="`method` must be one of"):
        gradient_flow([np.eye(2), np.eye(2)], np.eye(2), [0.0, 1.0], method="euler")
