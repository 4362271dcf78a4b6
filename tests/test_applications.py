"""Task sequences by chaining the closed form (lrsweep.applications).

References: tight gradient flow (lrsweep.simulate.gradient_flow, RODAS4, rtol 1e-8) and
gradient descent at small η (lrsweep.simulate.gradient_descent) run through the same task
sequence, restarting each stage from the simulated weights (no factorisation involved).
Tolerances: flow ≤ 1e-6 absolute on W2W1 (entries O(1)); gradient descent ≤ 10·η·max|Σyx|
(its O(η) discretisation error; measured ≈ 3η·max|Σyx|).
"""

from __future__ import annotations

import numpy as np
import pytest

from lrsweep.applications import (
    balanced_inits,
    chain,
    continual_learning,
    factor_qqt,
    reversal_learning,
    rotate_task,
    task_similarity,
    time_to_level,
    transfer_learning,
)
from lrsweep.exact import qqt
from lrsweep.metrics import loss
from lrsweep.simulate import gradient_descent, gradient_flow
from lrsweep.tasks import haar_orthogonal, random_regression

FLOW_TOL = 1e-6


def _simulate_sequence(sim, W1, W2, sigmas, grids, **kw):
    """W2W1 through a task sequence, each stage restarted from the simulated end weights."""
    out, ws = [], [W1, W2]
    for sigma, grid in zip(sigmas, grids, strict=True):
        traj = sim(ws, sigma, grid, **kw)
        out.append(traj[1] @ traj[0])
        ws = [traj[0][-1], traj[1][-1]]
    return np.concatenate(out)


def _task(n_in, n_out, seed):
    return random_regression(n_in, n_out, seed=seed).sigma_yx


# ------------------------------------------------------------------------------ factor


@pytest.mark.parametrize(("shape", "lam"), [((3, 3, 3), 0.7), ((4, 2, 3), -0.5), ((2, 3, 2), 0.0)])
def test_factor_qqt_reproduces_q_and_lambda(shape, lam):
    n_in, n_h, n_out = shape
    W1, W2 = balanced_inits([lam], n_in, n_h, n_out, 0.4, seed=3)
    q = qqt(W1, W2, _task(n_in, n_out, 1), [0.7])[0]
    F1, F2 = factor_qqt(q, n_in, n_h)
    assert F1.shape == W1.shape and F2.shape == W2.shape
    Q = np.concatenate([np.swapaxes(F1, -1, -2), F2], axis=-2)
    np.testing.assert_allclose(Q @ np.swapaxes(Q, -1, -2), q, atol=1e-12)
    gap = np.swapaxes(F2, -1, -2) @ F2 - F1 @ np.swapaxes(F1, -1, -2)
    np.testing.assert_allclose(gap[0], lam * np.eye(n_h), atol=1e-12)


def test_factor_qqt_pads_zero_columns_beyond_rank():
    q = np.zeros((4, 4))
    q[0, 0] = 2.0
    W1, W2 = factor_qqt(q, 2, 3)
    assert W1.shape == (3, 2) and W2.shape == (2, 3)
    np.testing.assert_allclose(W1[1:], 0.0)


def test_factor_qqt_rejects_bad_input():
    with pytest.raises(ValueError, match="`q` must have shape"):
        factor_qqt(np.zeros((3, 4)), 1, 1)
    with pytest.raises(ValueError, match="`n_in`=4 must be smaller"):
        factor_qqt(np.eye(4), 4, 1)


# ------------------------------------------------------------------------------- chain


def test_chain_does_not_depend_on_the_factor_rotation(rng):
    """Any Q' = Q R (R ∈ O(N_h)) of QQᵀ(T) continues identically on the next task."""
    s1, s2 = _task(3, 3, 0), _task(3, 3, 1)
    W1, W2 = balanced_inits([-0.8, 0.0, 1.5], 3, 3, 3, 0.1, seed=2)
    q_end = qqt(W1, W2, s1, [5.0])[0]
    F1, F2 = factor_qqt(q_end, 3, 3)
    t = np.linspace(0, 6, 25)
    ref = qqt(F1, F2, s2, t)
    for _ in range(3):
        R = haar_orthogonal(3, rng)
        rot = qqt(np.swapaxes(R, 0, 1) @ F1, F2 @ R, s2, t)  # Q' = Q R
        np.testing.assert_allclose(rot, ref, atol=1e-10)
    res = chain(W1, W2, [s1, s2], [5.0, 6.0], [np.array([0.0]), t])
    np.testing.assert_allclose(res.q[1:], ref, atol=1e-10)


@pytest.mark.parametrize(
    ("shape", "lams"),
    [
        ((3, 3, 3), [-1.0, 0.5, 4.0]),  # square, N_h = min
        ((4, 2, 2), [-2.0, -0.3, 1.0]),  # funnel N_i > N_h = N_o
        ((2, 3, 4), [0.0]),  # N_h > min(N_i, N_o): generic form, λ = 0 only
        ((3, 2, 4), [-0.5, 0.7]),  # N_h < min, N_i ≠ N_o
    ],
)
def test_chain_matches_gradient_flow_through_the_sequence(shape, lams):
    n_in, n_h, n_out = shape
    sigmas = [_task(n_in, n_out, k) for k in (0, 1, 2)]
    W1, W2 = balanced_inits(lams, n_in, n_h, n_out, 0.3, seed=1)
    grids = [np.linspace(0, d, 9) for d in (4.0, 3.0, 5.0)]
    res = chain(W1, W2, sigmas, [4.0, 3.0, 5.0], grids)
    ref = _simulate_sequence(gradient_flow, W1, W2, sigmas, grids)
    np.testing.assert_allclose(res.network_function, ref, atol=FLOW_TOL)
    np.testing.assert_allclose(res.t, np.concatenate([grids[0], 4 + grids[1], 7 + grids[2]]))
    assert res.switch_times.tolist() == [0.0, 4.0, 7.0, 12.0]
    # λ conserved through every switch
    for E1, E2 in res.ends:
        gap = np.swapaxes(E2, -1, -2) @ E2 - E1 @ np.swapaxes(E1, -1, -2)
        np.testing.assert_allclose(gap, np.asarray(lams)[:, None, None] * np.eye(n_h), atol=1e-9)


def test_chain_matches_gradient_descent_at_small_lr():
    """Reversal sequence with λ ≠ 0; GD error is O(η) (here ≤ 10·η·max|Σyx|)."""
    s = _task(3, 3, 0)
    W1, W2 = balanced_inits([-1.0, 0.5, 3.0], 3, 3, 3, 0.05, seed=0)
    grids = [np.linspace(0, 8, 41), np.linspace(0, 6, 31)]
    res = chain(W1, W2, [s, -s], [8.0, 6.0], grids)
    for lr in (1e-3, 5e-4):
        gd = _simulate_sequence(gradient_descent, W1, W2, [s, -s], grids, lr=lr)
        assert np.abs(gd - res.network_function).max() <= 10 * lr * np.abs(s).max()


def test_chain_batches_over_tasks_and_validates():
    s = _task(2, 2, 0)
    W1, W2 = balanced_inits([0.5, 2.0], 2, 2, 2, 0.1, seed=0)
    b = rotate_task(s, [0.0, 1.0, 2.0])[:, None]  # (3, 1, 2, 2) against runs (2,)
    res = chain(W1, W2, [s, b], [3.0, 3.0], 4)
    assert res.q.shape == (8, 3, 2, 4, 4)
    _, sl = res.local(1)
    np.testing.assert_allclose(res.q[sl][0][0], res.q[sl][0][1], atol=1e-12)  # same start
    with pytest.raises(ValueError, match="`durations` must give one positive time per task"):
        chain(W1, W2, [s, s], [1.0], 3)
    with pytest.raises(TypeError, match="`sigma_yx_list` must be a sequence of tasks"):
        chain(W1, W2, s, [1.0], 3)
    with pytest.raises(ValueError, match=r"`t_per_stage\[0\]` must lie in \[0, durations\[0\]"):
        chain(W1, W2, [s], [1.0], [np.array([0.0, 2.0])])
    W1_bad = W1.copy()
    W1_bad[:, 0] *= 3.0
    with pytest.raises(ValueError, match="not lambda-balanced"):
        chain(W1_bad, W2, [s], [1.0], 3)


def test_time_to_level():
    t = np.array([0.0, 1.0, 2.0, 3.0])
    curve = np.array([[4.0, 4.0], [3.0, 4.0], [1.0, 4.0], [0.5, 4.0]])
    out = time_to_level(t, curve, 2.0)
    assert out[0] == pytest.approx(1.5) and np.isnan(out[1])
    assert time_to_level(t, curve[:, :1], 5.0)[0] == 0.0
    with pytest.raises(ValueError, match="strictly increasing"):
        time_to_level([0.0, 0.0], curve[:2], 1.0)


# -------------------------------------------------------------------------- reversal


LAMS = np.array([-10.0, -1.0, -0.01, 0.0, 0.01, 1.0, 10.0])


@pytest.fixture(scope="module")
def reversal():
    return reversal_learning(_task(3, 3, 0), LAMS, n_t=121)


def test_reversal_lambda_zero_sits_on_the_saddle(reversal):
    """Task-aligned λ = 0 never relearns: the loss on −Σyx tends to ½‖Σyx‖² (W → 0)."""
    s = _task(3, 3, 0)
    zero = np.flatnonzero(LAMS == 0)[0]
    assert np.isinf(reversal.relearn_time[zero])
    saddle = 0.5 * np.sum(s**2)
    assert reversal.loss[-1, zero] == pytest.approx(saddle, rel=1e-6)
    assert np.all(reversal.loss[:, zero] >= saddle * (1 - 1e-9))
    assert np.all(reversal.pretrain_loss < 1e-8)  # task 1 was learned


def test_reversal_time_grows_as_lambda_goes_to_zero(reversal):
    t = dict(zip(LAMS.tolist(), reversal.relearn_time, strict=True))
    assert np.all(np.isfinite([t[x] for x in LAMS if x != 0]))
    assert t[10.0] < t[1.0] < t[0.01]
    for x in (0.01, 1.0, 10.0):  # square nets: symmetric in λ ↔ −λ
        assert t[-x] == pytest.approx(t[x], rel=1e-8)
    # logarithmic growth: the ln(1/|λ|) escape from the saddle adds ≈ (1/s̃)·ln(100)
    assert 2.0 < t[0.01] - t[1.0] < 20.0


def test_reversal_matches_gradient_descent_and_gd_stays_on_the_saddle():
    """Diagonal task and weights: GD keeps exact alignment, so λ = 0 stays on the saddle."""
    s = np.diag([2.0, 1.0])
    lr = 1e-3
    res = reversal_learning(s, [0.0, 0.5], t_pretrain=12.0, t_max=12.0, n_t=61, scale=0.01)
    # diagonal, exactly balanced inits (R = U = V = I) for GD
    a = 0.01
    out = []
    for lam in (0.0, 0.5):
        s2 = np.sqrt((np.sqrt(lam**2 + 4 * a**2) + lam) / 2)
        out.append((a / s2 * np.eye(2), s2 * np.eye(2)))
    W1 = np.stack([o[0] for o in out])
    W2 = np.stack([o[1] for o in out])
    grids = [np.linspace(0, 12, 61), res.t]
    gd = _simulate_sequence(gradient_descent, W1, W2, [s, -s], grids, lr=lr)
    gd_loss = loss(gd[61:], -s)
    assert np.all(gd_loss[:, 0] >= 0.5 * np.sum(s**2) * (1 - 1e-9))  # never leaves the saddle
    np.testing.assert_allclose(gd_loss[:, 1], res.loss[:, 1], atol=20 * lr * np.sum(s**2))
    t_gd = time_to_level(res.t, gd_loss[:, 1], res.level_abs)
    assert t_gd == pytest.approx(res.relearn_time[1], abs=0.05)


# ------------------------------------------------------------------------- continual


def test_continual_forgetting_is_the_same_for_every_lambda():
    a, b = _task(3, 3, 0), _task(3, 3, 1)
    if np.sign(np.linalg.det(a)) != np.sign(np.linalg.det(b)):
        b[0] *= -1
    lams = np.array([-3.0, 0.0, 0.1, 3.0])
    res = continual_learning(a, b, lams, n_t=61)
    np.testing.assert_allclose(res.forgetting, res.forgetting_limit, rtol=1e-8)
    assert res.time_to_forget[0] < res.time_to_forget[1]  # lazy forgets faster
    assert res.time_to_forget[3] < res.time_to_forget[1]
    # loss on A after B, through the sequence, against gradient flow
    W1, W2 = balanced_inits(lams, 3, 3, 3, 1e-3, seed=0, aligned=_bases(a))
    t_a, _ = res.sequence.local(0)
    t_b, _ = res.sequence.local(1)
    ref = _simulate_sequence(gradient_flow, W1, W2, [a, b], [t_a, t_b])
    np.testing.assert_allclose(loss(ref, a), res.loss_a, atol=1e-5, rtol=1e-6)


def _bases(sigma):
    U, _, Vt = np.linalg.svd(sigma)
    return U, Vt.T


# -------------------------------------------------------------------------- transfer


def test_rotate_task_keeps_singular_values_and_sets_similarity():
    s = _task(4, 4, 0)
    theta = np.array([0.0, 0.4, np.pi / 2, np.pi])
    b = rotate_task(s, theta)
    np.testing.assert_allclose(np.linalg.svd(b, compute_uv=False), np.broadcast_to(
        np.linalg.svd(s, compute_uv=False), (4, 4)), atol=1e-12)  # fmt: skip
    np.testing.assert_allclose(task_similarity(s, b), np.cos(theta), atol=1e-12)
    np.testing.assert_allclose(b[-1], -s, atol=1e-12)


def test_transfer_times_vs_lambda_and_similarity():
    s = _task(4, 4, 0)
    lams = np.array([0.0, 0.1, 10.0])
    theta = np.deg2rad([0.0, 30.0, 120.0, 180.0])
    res = transfer_learning(s, lams, theta, n_t=121)
    tp, ts = res.time_pretrained, res.time_scratch
    np.testing.assert_allclose(tp[0], 0.0)  # θ = 0: B = A is already fitted
    assert np.isinf(tp[3, 0])  # B = −A at λ = 0: the reversal saddle
    assert np.all(np.isfinite(tp[:, 1:]))
    assert tp[1, 0] < 0.2 * ts[1, 0]  # rich: pretraining on a similar task skips the plateau
    assert np.all(np.diff(tp[1:, 0]) > 0)  # slower as B moves away from A
    # scratch does not depend on θ
    np.testing.assert_allclose(ts, np.broadcast_to(ts[:1], ts.shape), rtol=1e-12)
    assert np.all(tp[1:, 2] < 0.5)  # lazy: fast, with or without pretraining
    assert np.all(ts[:, 2] < 0.5)


def test_transfer_matches_gradient_flow():
    s = _task(2, 2, 0)
    lams = np.array([0.2, 2.0])
    theta = np.array([0.6])
    res = transfer_learning(s, lams, theta, t_pretrain=10.0, t_max=5.0, n_t=21)
    W1, W2 = balanced_inits(lams, 2, 2, 2, 1e-3, seed=0, aligned=_bases(s))
    b = rotate_task(s, theta)[0]
    ref = _simulate_sequence(gradient_flow, W1, W2, [s, b], [np.array([0.0, 10.0]), res.t])
    np.testing.assert_allclose(loss(ref[2:], b), res.loss_pretrained[:, 0], atol=1e-6)
