"""The exact solver against an independent ODE integration of gradient flow.

Tolerance (issue 2): relative Frobenius error of QQᵀ ≤ 1e-9 against Radau at rtol 1e-12,
for |λ| up to 1e3 and t/τ up to 1e3. Saddles are tested where the reference keeps exact
zeros (diagonal problems), since round-off in any generic basis grows like e^{2s̃t}.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from ode_reference import gradient_flow_reference, qqt_reference, rel_err
from scipy.integrate import solve_ivp

from lrsweep.exact import aligned_singular_values, converged, network_function, qqt, qqt_blocks
from lrsweep.init import lambda_balanced
from lrsweep.tasks import haar_orthogonal, random_regression

TOL = 1e-9

# (lam, n_in, n_hidden, n_out): N_h = m square/funnel/anti-funnel, N_h > m on either side
SHAPES = [
    (0.0, 3, 3, 3),
    (1.5, 3, 3, 3),
    (-0.7, 3, 3, 3),
    (0.5, 4, 2, 2),
    (-2.0, 4, 2, 2),
    (1.0, 2, 2, 4),
    (-1.0, 2, 2, 4),
    (1.0, 2, 4, 5),
    (-1.0, 5, 4, 2),
    (0.0, 2, 5, 3),
    (0.0, 3, 8, 2),
]


def _problem(lam, n_in, n_hidden, n_out, scale, seed=5, task_seed=3):
    task = random_regression(n_in, n_out, seed=task_seed)
    W1, W2 = lambda_balanced(lam, n_in, n_hidden, n_out, scale, seed=seed)
    return W1, W2, task.sigma_yx


def _growing_block_rank_ok(W1, W2, sigma_yx, lam) -> bool:
    """True unless B (projection of Q0 on the growing modes) is near-singular (a saddle)."""
    from lrsweep.exact import riccati_eigenbasis

    O, _ = riccati_eigenbasis(sigma_yx, np.asarray(lam))
    m = min(sigma_yx.shape)
    B = (O.T @ np.vstack([W1.T, W2]))[:m]
    sv = np.linalg.svd(B, compute_uv=False)
    return sv[min(B.shape) - 1] > 1e-6 * sv[0]


@pytest.mark.parametrize("lam,n_in,n_hidden,n_out", SHAPES)
def test_matches_ode_moderate(lam, n_in, n_hidden, n_out):
    W1, W2, syx = _problem(lam, n_in, n_hidden, n_out, scale=0.2)
    t = np.array([0.0, 0.3, 1.0, 2.5, 6.0, 15.0])
    err = rel_err(qqt(W1, W2, syx, t), qqt_reference(W1, W2, syx, t))
    assert err.max() <= TOL, err


EXTREME = [
    (1e3, 3, 3, 3, 0.1),
    (-1e3, 3, 3, 3, 0.1),
    (1e3, 2, 2, 4, 0.1),
    (-1e3, 4, 2, 2, 0.1),
    (1e3, 4, 2, 2, 0.1),
    (-1e3, 2, 2, 4, 0.1),
    (1e3, 2, 3, 4, 0.1),
    (0.0, 3, 3, 3, 1e-3),
    (1e-3, 3, 3, 3, 1e-2),
    (0.0, 2, 5, 3, 0.2),
]


@pytest.mark.slow
@pytest.mark.parametrize("lam,n_in,n_hidden,n_out,scale", EXTREME)
def test_matches_ode_extreme_lambda_long_times(lam, n_in, n_hidden, n_out, scale):
    seed = next(
        s
        for s in range(5, 50)
        if _growing_block_rank_ok(*_problem(lam, n_in, n_hidden, n_out, scale, seed=s), lam)
    )
    W1, W2, syx = _problem(lam, n_in, n_hidden, n_out, scale, seed=seed)
    t = np.array([0.0, 1e-3, 1e-2, 0.1, 1.0, 10.0, 100.0, 1000.0])
    ex = qqt(W1, W2, syx, t)
    assert np.all(np.isfinite(ex))
    err = rel_err(ex, qqt_reference(W1, W2, syx, t))
    assert err.max() <= TOL, err


def _diagonal_saddle(s, w, signs, rot=None, rng=None):
    """λ = 0 problem with Σyx = diag(s) and mode k anti-aligned where signs[k] < 0."""
    n = len(s)
    W1 = np.diag(w).astype(float)
    W2 = np.diag(np.asarray(signs) * w).astype(float)
    syx = np.diag(s).astype(float)
    if rot is None:
        return W1, W2, syx
    U, V, R = (haar_orthogonal(n, rng) for _ in range(3))
    return R @ W1 @ V.T, U @ W2 @ R.T, U @ syx @ V.T


def test_saddle_singular_b_stays_on_saddle_forever():
    # diagonal: the ODE keeps exact zeros, so the reference itself never leaves the saddle
    W1, W2, syx = _diagonal_saddle([2.0, 1.0, 0.5], [0.3, 0.2, 0.1], [1, -1, 1])
    t = np.array([0.0, 0.5, 2.0, 10.0, 100.0, 1000.0])
    ex = qqt(W1, W2, syx, t)
    assert rel_err(ex, qqt_reference(W1, W2, syx, t)).max() <= TOL
    a = np.diagonal(qqt_blocks(ex, 3)[1], axis1=-2, axis2=-1)
    assert a[-1, 1] <= 0 and abs(a[-1, 1]) < 1e-3  # the anti-aligned mode decays, never learns
    np.testing.assert_allclose(a[-1, [0, 2]], [2.0, 0.5], rtol=1e-9)


def test_saddle_in_a_random_basis_matches_rotated_diagonal(rng):
    W1d, W2d, syxd = _diagonal_saddle([1.0, 0.6], [0.2, 0.3], [-1, 1])
    U, V, R = (haar_orthogonal(2, rng) for _ in range(3))
    W1, W2, syx = R @ W1d @ V.T, U @ W2d @ R.T, U @ syxd @ V.T
    t = np.array([0.0, 1.0, 5.0, 50.0, 1000.0])
    ex = qqt(W1, W2, syx, t)
    ref_d = qqt_reference(W1d, W2d, syxd, t)
    rot = np.zeros((4, 4))
    rot[:2, :2], rot[2:, 2:] = V, U
    assert rel_err(ex, rot @ ref_d @ rot.T).max() <= TOL


def test_saddle_generic_basis_short_times_against_plain_ode(rng):
    # before round-off can grow (e^{2·1·5}·1e-16 ≈ 2e-12) the unrotated ODE agrees too
    W1, W2, syx = _diagonal_saddle([1.0, 0.6], [0.2, 0.3], [-1, 1], rot=True, rng=rng)
    t = np.array([0.0, 1.0, 3.0, 5.0])
    assert rel_err(qqt(W1, W2, syx, t), qqt_reference(W1, W2, syx, t)).max() <= TOL


def test_zero_scale_is_a_fixed_point():
    W1, W2, syx = _problem(0.0, 3, 3, 3, scale=0.0)
    q = qqt(W1, W2, syx, [0.0, 10.0, 1000.0])
    assert np.all(q == 0.0)


def test_batched_equals_looped():
    task = random_regression(3, 4, seed=1)
    lams = [-3.0, -0.1, 0.0, 0.2, 5.0, 100.0]
    pairs = [lambda_balanced(lam, 3, 3, 4, 0.1 + i / 10, seed=i) for i, lam in enumerate(lams)]
    W1 = np.stack([p[0] for p in pairs])
    W2 = np.stack([p[1] for p in pairs])
    t = np.linspace(0, 30, 7)
    batched = qqt(W1, W2, task.sigma_yx, t)
    assert batched.shape == (7, 6, 7, 7)
    for i, (w1, w2) in enumerate(pairs):
        np.testing.assert_allclose(
            batched[:, i],
            qqt(w1, w2, task.sigma_yx, t),
            rtol=0,
            atol=1e-13 * np.abs(batched[:, i]).max(),
        )


def test_per_run_tasks_broadcast():
    tasks = [random_regression(2, 2, seed=s) for s in range(3)]
    syx = np.stack([tk.sigma_yx for tk in tasks])
    W1, W2 = lambda_balanced(0.5, 2, 2, 2, 0.1, seed=0)
    q = qqt(W1, W2, syx, [0.0, 4.0])
    for i, tk in enumerate(tasks):
        np.testing.assert_allclose(q[:, i], qqt(W1, W2, tk.sigma_yx, [0.0, 4.0]), atol=1e-14)


def test_tau_rescales_time():
    W1, W2, syx = _problem(1.0, 3, 3, 3, 0.1)
    t = np.array([0.0, 1.0, 4.0])
    np.testing.assert_allclose(qqt(W1, W2, syx, t, tau=2.0), qqt(W1, W2, syx, t / 2), atol=1e-14)


def test_network_function_is_the_off_diagonal_block():
    W1, W2, syx = _problem(-0.5, 4, 2, 2, 0.3)
    t = np.array([0.0, 2.0])
    np.testing.assert_allclose(network_function(W1, W2, syx, t)[0], W2 @ W1, atol=1e-14)


@given(
    n_in=st.integers(1, 5),
    n_out=st.integers(1, 5),
    extra=st.integers(0, 2),
    lam=st.one_of(st.just(0.0), st.floats(-50, 50)),
    scale=st.floats(1e-3, 3.0),
    seed=st.integers(0, 2**16),
    t=st.floats(0.0, 200.0),
)
def test_property_initial_state_symmetry_and_spectral_gap(n_in, n_out, extra, lam, scale, seed, t):
    m = min(n_in, n_out)
    n_hidden = m + (extra if lam == 0 else 0)
    W1, W2 = lambda_balanced(lam, n_in, n_hidden, n_out, scale, seed=seed)
    syx = random_regression(n_in, n_out, seed=seed).sigma_yx
    q = qqt(W1, W2, syx, [0.0, t])
    Q0 = np.vstack([W1.T, W2])
    np.testing.assert_allclose(q[0], Q0 @ Q0.T, atol=1e-12 * (1 + np.abs(q[0]).max()))
    assert np.all(np.isfinite(q))
    np.testing.assert_allclose(q, np.swapaxes(q, -1, -2), atol=0)
    # λ is conserved: W2W2ᵀ and W1ᵀW1 share their nonzero spectrum up to the shift λ (N_h = m)
    if n_hidden == m:
        w1tw1, _, w2w2t = qqt_blocks(q[1], n_in)
        e1 = np.sort(np.linalg.eigvalsh(w1tw1))[::-1][:m]
        e2 = np.sort(np.linalg.eigvalsh(w2w2t))[::-1][:m]
        np.testing.assert_allclose(e2 - e1, lam, atol=1e-8 * (1 + abs(lam) + e2.max()))


@pytest.mark.parametrize(
    "lam,n_in,n_out",
    [
        (0.0, 3, 3),
        (2.0, 3, 3),
        (-40.0, 3, 3),
        (1.0, 4, 2),
        (-1.0, 2, 4),
        (-300.0, 2, 3),
        (300.0, 3, 2),
    ],
)
def test_converged_state_is_the_long_time_limit(lam, n_in, n_out):
    m = min(n_in, n_out)
    task = random_regression(n_in, n_out, seed=7)
    seed = next(
        s
        for s in range(60)
        if _growing_block_rank_ok(
            *lambda_balanced(lam, n_in, m, n_out, 0.05, seed=s), task.sigma_yx, lam
        )
    )
    W1, W2 = lambda_balanced(lam, n_in, m, n_out, 0.05, seed=seed)
    q_inf = converged(task.sigma_yx, lam)
    q = qqt(W1, W2, task.sigma_yx, [1e3])[0]
    assert rel_err(q, q_inf) <= 1e-9
    # and the limit is a fixed point of the flow: the independent reference stays on it
    from lrsweep.applications import factor_qqt

    w1, w2 = factor_qqt(q_inf, n_in, m)
    assert rel_err(qqt_reference(w1, w2, task.sigma_yx, np.array([0.0, 50.0]))[-1], q_inf) <= 1e-9


def _scalar_ode(a0, s, lam, t):
    """τ da/dt = √(λ²+4a²)(s − a), integrated directly (or in v = ln(−a) on the λ = 0 saddle,
    where a → 0⁻ and an absolute tolerance would let the integrator step across 0)."""
    if lam == 0 and a0 < 0:
        sol = solve_ivp(
            lambda _t, v: -2 * (s + np.exp(v)),
            (0, t[-1]),
            [np.log(-a0)],
            method="Radau",
            t_eval=t,
            rtol=1e-12,
            atol=1e-12,
        )
        return -np.exp(sol.y[0])
    sol = solve_ivp(
        lambda _t, a: np.sqrt(lam**2 + 4 * a**2) * (s - a),
        (0, t[-1]),
        [a0],
        method="Radau",
        t_eval=t,
        rtol=1e-12,
        atol=1e-15,
    )
    return sol.y[0]


@pytest.mark.parametrize("lam", [0.0, 1e-3, 0.7, -0.7, 30.0, -1e3])
@pytest.mark.parametrize("s,a0", [(2.0, 1e-3), (0.5, 0.3), (1.0, 3.0), (1.0, -0.1), (0.0, 0.4)])
def test_aligned_singular_values_match_scalar_ode(lam, s, a0):
    t = np.array([0.0, 0.01, 0.5, 2.0, 8.0, 40.0, 1000.0])
    a = aligned_singular_values(np.array([a0]), np.array([s]), lam, t)[:, 0]
    ref = _scalar_ode(a0, s, lam, t)
    np.testing.assert_allclose(a, ref, rtol=1e-8, atol=1e-12 * max(1.0, s, abs(a0)))


def test_aligned_singular_values_agree_with_qqt_for_an_aligned_init():
    task = random_regression(3, 3, singular_values=[2.0, 1.0, 0.5], seed=2)
    t = np.linspace(0, 12, 9)
    for lam in (0.0, 0.8, -5.0):
        W1, W2 = lambda_balanced(lam, 3, 3, 3, [0.01, 0.02, 0.03], seed=1, aligned=task)
        sv = np.linalg.svd(network_function(W1, W2, task.sigma_yx, t), compute_uv=False)
        a = aligned_singular_values(np.array([0.01, 0.02, 0.03]), np.array([2.0, 1.0, 0.5]), lam, t)
        np.testing.assert_allclose(np.sort(sv, axis=-1), np.sort(a, axis=-1), atol=1e-10)


def test_aligned_dynamics_shapes_sigmoid_vs_exponential():
    # rich (λ = 0): a long plateau then a sigmoid; lazy (|λ| large): immediate exponential
    t = np.linspace(0, 10, 2001)
    rich = aligned_singular_values(np.array([1e-4]), np.array([1.0]), 0.0, t)[:, 0]
    lazy = aligned_singular_values(np.array([1e-4]), np.array([1.0]), 50.0, t)[:, 0]
    t_half = lambda a: t[np.argmax(a >= 0.5)]  # noqa: E731
    assert t_half(rich) == pytest.approx(np.log(1e4) / 2, rel=0.05)  # plateau ≈ ln(s/a0)/(2s)
    assert t_half(lazy) < 0.05
    assert np.all(np.diff(rich) >= 0) and np.all(np.diff(lazy) >= -1e-15)


def test_gradient_flow_reference_is_itself_consistent():
    # guard the ground truth: λ conserved along the reference trajectory to its tolerance
    W1, W2, syx = _problem(2.0, 3, 3, 3, 0.2)
    w1, w2 = gradient_flow_reference([W1, W2], syx, np.array([0.0, 5.0, 50.0]))
    gap = np.swapaxes(w2, 1, 2) @ w2 - w1 @ np.swapaxes(w1, 1, 2)
    np.testing.assert_allclose(gap, np.broadcast_to(2.0 * np.eye(3), gap.shape), atol=1e-8)


# ---- bad input: one clear message, before any work -------------------------------------


def test_rejects_unbalanced_weights(rng):
    W1, W2 = rng.standard_normal((3, 3)), rng.standard_normal((3, 3))
    with pytest.raises(ValueError, match="not lambda-balanced"):
        qqt(W1, W2, np.eye(3), [1.0])


def test_rejects_shape_mismatch():
    W1, W2 = lambda_balanced(0.0, 3, 2, 3, 0.1)
    with pytest.raises(ValueError, match=r"`W2` must have shape \(..., N_o, N_h\) with N_h=2"):
        qqt(W1, W2[:, :1], np.eye(3), [1.0])
    with pytest.raises(ValueError, match=r"`sigma_yx` must have shape \(..., N_o, N_i\)=\(3, 3\)"):
        qqt(W1, W2, np.eye(2), [1.0])


def test_rejects_nonfinite_and_negative_time():
    W1, W2 = lambda_balanced(0.0, 2, 2, 2, 0.1)
    with pytest.raises(ValueError, match="`sigma_yx` must be finite, but 1 entries are NaN"):
        qqt(W1, W2, np.array([[1.0, np.nan], [0.0, 1.0]]), [1.0])
    with pytest.raises(ValueError, match="`t` must be non-negative"):
        qqt(W1, W2, np.eye(2), [-1.0])
    with pytest.raises(ValueError, match="`tau` must be a finite number > 0"):
        qqt(W1, W2, np.eye(2), [1.0], tau=0)


@pytest.mark.parametrize("lam,n_in,n_hidden,n_out", SHAPES[:7])
def test_fixed_pivot_fast_path_equals_graded_elimination(monkeypatch, lam, n_in, n_hidden, n_out):
    import lrsweep.exact as exact

    W1, W2, syx = _problem(lam, n_in, n_hidden, n_out, scale=0.3)
    t = np.array([0.0, 0.7, 3.0, 30.0, 1000.0])
    fast = exact.qqt(W1, W2, syx, t)
    assert (
        exact._fixed_pivots_ok(
            (exact.riccati_eigenbasis(syx, np.asarray(lam))[0].T @ np.vstack([W1.T, W2]))[None],
            min(n_in, n_out),
        ).all()
        or n_hidden != min(n_in, n_out)
        or lam == 0
    )
    monkeypatch.setattr(exact, "_FIXED_PIVOT_COND", 0.0)  # force the graded elimination
    graded = exact.qqt(W1, W2, syx, t)
    assert rel_err(fast, graded).max() <= 1e-11


# ------------------------------------------------------------ setup, factor and batching


def _mixed_batch(n_in, n_hidden, n_out, n=24):
    """Runs on both paths (fixed pivots and graded elimination: saddles, zero init) and over
    extreme λ and scales."""
    from lrsweep.init import lambda_balanced_stack

    rng = np.random.default_rng(8)
    lam = rng.choice([-1.0, 0.0, 1.0], n) * 10.0 ** rng.uniform(-2, 3, n)
    if n_hidden > min(n_in, n_out):
        lam[:] = 0.0
    scale = 10.0 ** rng.uniform(-12, 2, n)
    scale[:3] = [0.0, 1e-12, 3.0]
    ws = lambda_balanced_stack(lam, [n_in, n_hidden, n_out], scale, list(range(n)))
    return ws, random_regression(n_in, n_out, seed=3).sigma_yx, lam


@pytest.mark.parametrize("n_in,n_hidden,n_out", [(3, 3, 3), (4, 2, 4), (2, 2, 4), (2, 5, 3)])
def test_factor_is_a_factor_and_setup_can_be_reused(n_in, n_hidden, n_out):
    from lrsweep.exact import outer, qqt_factor, qqt_setup

    (W1, W2), syx, lam = _mixed_batch(n_in, n_hidden, n_out)
    t = np.array([0.0, 0.1, 2.0, 40.0])
    setup = qqt_setup(W1, W2, syx, lam=lam)
    Y = qqt_factor(setup, t)
    assert Y.shape[:3] == (4, W1.shape[0], n_in + n_out) and Y.shape[-1] <= n_hidden
    q = qqt(W1, W2, syx, t, lam=lam)
    assert np.array_equal(outer(Y), q)
    Q0 = np.concatenate([np.swapaxes(W1, -1, -2), W2], axis=-2)
    q0 = Q0 @ np.swapaxes(Q0, -1, -2)  # the graded elimination is exact to ~1e-12 at t = 0
    err = np.linalg.norm(q[0] - q0, axis=(-2, -1))
    assert np.all(err <= 1e-11 * np.linalg.norm(q0, axis=(-2, -1)))
    # per-run times through the same setup equal fresh solves at those times
    t_runs = np.outer([0.5, 3.0], 1.0 + np.arange(W1.shape[0]) / 7)
    again = outer(qqt_factor(setup, t_runs))
    for j in (0, 5, W1.shape[0] - 1):
        fresh = qqt(W1[j], W2[j], syx, t_runs[:, j], lam=lam[j])
        err = np.linalg.norm(again[:, j] - fresh, axis=(-2, -1))
        assert np.all(err <= 1e-13 * np.linalg.norm(fresh, axis=(-2, -1)))


@pytest.mark.parametrize("chunk", [1, 5, 23, 10**6])
def test_results_do_not_depend_on_the_chunking(monkeypatch, chunk):
    import lrsweep.exact as exact

    (W1, W2), syx, lam = _mixed_batch(4, 2, 4, n=30)
    setup = exact.qqt_setup(W1, W2, syx, lam=lam)  # N_h < min(N_i, N_o): graded only
    t = np.geomspace(1e-3, 100.0, 17)
    ref = exact.qqt_factor(setup, t)
    monkeypatch.setattr(exact, "_CHUNK", chunk)
    assert np.array_equal(exact.qqt_factor(setup, t), ref)
    (W1, W2), syx, lam = _mixed_batch(3, 3, 3, n=30)
    setup = exact.qqt_setup(W1, W2, syx, lam=lam)
    assert setup.fast.any() and not setup.fast.all()
    monkeypatch.setattr(exact, "_CHUNK", 1024)
    ref = exact.qqt_factor(setup, t)
    monkeypatch.setattr(exact, "_CHUNK", chunk)
    assert np.array_equal(exact.qqt_factor(setup, t), ref)


def test_triangular_helpers_match_numpy(rng):
    from lrsweep.exact import _factor, _solve_upper

    A = rng.standard_normal((50, 5, 5))
    K = A @ np.swapaxes(A, -1, -2) + 0.1 * np.eye(5)
    Z = rng.standard_normal((50, 7, 5))
    C = np.linalg.cholesky(K)
    expected = Z @ np.swapaxes(np.linalg.inv(C), -1, -2)
    np.testing.assert_allclose(_factor(Z, K), expected, rtol=1e-12, atol=1e-12)
    U = np.triu(rng.standard_normal((50, 5, 5))) + 3 * np.eye(5)
    d = rng.uniform(0.5, 2.0, (50, 5))
    expected = np.linalg.solve(U, d[:, :, None] * np.eye(5))
    np.testing.assert_allclose(_solve_upper(U, d), expected, rtol=1e-12, atol=1e-12)
    with pytest.raises(np.linalg.LinAlgError):
        _factor(Z, -K)
