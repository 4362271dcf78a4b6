"""lrsweep.standard and the per-layer rates of lrsweep.simulate, against independent references.

References: the Radau integration of gradient flow on the weights (tests/ode_reference.py, with
per-layer rates ρ_l multiplying each layer's velocity and Jacobian rows), a DOP853 integration
of the two-layer flow written here (``_dop853``, for wide nets), gradients and one descent step
written out by hand, the preset formulas and E[D_l] of theory §6.2 evaluated literally, Monte
Carlo with z-scores from the sample, and the λ-balanced path of the pipeline
(``solve_dynamics(method="exact")`` and ``measures.Outcome``).

Theory sections: §6.1 (per-layer rates, the rate map), §6.2 (Gaussian inits, imbalance, the
λ_eff-balanced prediction and its error against width).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from ode_reference import gradient_flow_reference, rel_err, two_layer_flow_explicit

from lrsweep import fitting, metrics, simulate
from lrsweep import standard as sd
from lrsweep.dynamics import solve_dynamics
from lrsweep.exact import qqt, stack_q
from lrsweep.init import gaussian_deep, imbalances, lambda_balanced, lambda_balanced_deep
from lrsweep.measures import Outcome, measures
from lrsweep.tasks import haar_orthogonal

T = np.array([0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0])


# ======================================================================== helpers


def _task(n_i: int, n_o: int, s, seed: int) -> np.ndarray:
    """Σyx = Ũ diag(s) Ṽᵀ (first len(s) modes), Haar Ũ, Ṽ."""
    rng = np.random.default_rng(seed)
    S = np.zeros((n_o, n_i))
    k = len(s)
    S[np.arange(k), np.arange(k)] = s
    return haar_orthogonal(n_o, rng) @ S @ haar_orthogonal(n_i, rng).T


def _gram(w1: np.ndarray, w2: np.ndarray) -> np.ndarray:
    Q = stack_q(w1, w2)
    return Q @ np.swapaxes(Q, -1, -2)


def _grad_by_hand(ws: list[np.ndarray], syx: np.ndarray) -> list[np.ndarray]:
    """∂ℒ/∂W_l for depth 3, whitened inputs, each product written out (theory §1)."""
    W1, W2, W3 = ws
    E = syx - W3 @ W2 @ W1
    return [-(W3 @ W2).T @ E, -W3.T @ E @ W1.T, -E @ (W2 @ W1).T]


def _dop853(W1: np.ndarray, W2: np.ndarray, syx: np.ndarray, t: np.ndarray):
    """Two-layer unit-rate gradient flow from the definition (theory §1), DOP853, rtol 1e-10."""
    return two_layer_flow_explicit(W1, W2, syx, t)


def _loglog_fit(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Least-squares slope of log y on log x and its standard error (from the residuals)."""
    X = np.c_[np.ones(x.size), np.log(x)]
    coef, *_ = np.linalg.lstsq(X, np.log(y), rcond=None)
    resid = np.log(y) - X @ coef
    cov = resid @ resid / (x.size - 2) * np.linalg.inv(X.T @ X)
    return float(coef[1]), float(np.sqrt(cov[1, 1]))


def _kernel_distance(w1: np.ndarray, w2: np.ndarray) -> np.ndarray:
    g = metrics.ntk_grams([w1, w2])
    return metrics.kernel_distance(metrics.KernelGrams(g.out_grams[0], g.in_grams[0]), g)


# ======================================================================== presets, draws (§6.2)


@given(
    widths=st.lists(st.integers(1, 40), min_size=3, max_size=5),
    multiplier=st.floats(1e-3, 1e3),
    ratio=st.floats(1e-2, 1e2),
    name=st.sampled_from(sd.PRESETS),
)
def test_preset_sigmas_are_their_definitions(widths, multiplier, ratio, name):
    L = len(widths) - 1
    sig = sd.preset_sigmas(name, widths, multiplier, ratio)
    for l in range(L):  # noqa: E741
        fan_in, fan_out = widths[l], widths[l + 1]
        base_sq = {
            "constant": 1.0,
            "lecun": 1.0 / fan_in,
            "xavier": 2.0 / (fan_in + fan_out),
            "glorot": 2.0 / (fan_in + fan_out),
            "he": 2.0 / fan_in,
        }[name]
        expect = multiplier * np.sqrt(base_sq) * ratio ** (l + 1 - (L + 1) / 2)
        assert sig[l] == pytest.approx(expect, rel=1e-12)
    # the ratio is the factor between consecutive layers on top of the preset …
    plain = sd.preset_sigmas(name, widths, multiplier)
    np.testing.assert_allclose((sig[1:] / sig[:-1]) / (plain[1:] / plain[:-1]), ratio, rtol=1e-12)
    # … and leaves the product of the σ_l (the end-to-end scale) unchanged
    assert np.prod(sig) == pytest.approx(np.prod(plain), rel=1e-10)


def test_preset_sigmas_vectorised_and_validated():
    m = np.array([0.5, 1.0, 2.0])
    r = np.array([[1.0], [4.0]])
    sig = sd.preset_sigmas("he", [3, 5, 2], m, r)
    assert sig.shape == (2, 3, 2)
    assert sig[1, 2, 1] == pytest.approx(2.0 * np.sqrt(2 / 5) * 2.0)
    with pytest.raises(ValueError, match="one of"):
        sd.preset_sigmas("kaiming", [3, 5, 2])
    with pytest.raises(ValueError, match="> 0"):
        sd.preset_sigmas("lecun", [3, 5, 2], multiplier=0.0)


def test_layer_rates():
    rho = sd.layer_rates(np.array([0.5, 3.0]), 4)
    np.testing.assert_allclose(rho[:, 1:] / rho[:, :-1], [[0.5] * 3, [3.0] * 3], rtol=1e-14)
    np.testing.assert_allclose(np.prod(rho, axis=-1), 1.0, rtol=1e-14)
    first = sd.layer_rates(3.0, 3, normalize="first")
    np.testing.assert_allclose(first, [1.0, 3.0, 9.0])
    with pytest.raises(ValueError, match="normalize"):
        sd.layer_rates(2.0, 2, normalize="mean")


def test_gaussian_init_draws_per_point():
    widths = [3, 4, 2]
    sig = sd.preset_sigmas("xavier", widths, np.array([0.5, 1.0, 2.0]))
    seeds = [np.random.SeedSequence([1, k]) for k in range(3)]
    ws = sd.gaussian_init(widths, sig, seeds)
    for b in range(3):  # each point is lrsweep.init.gaussian_deep with its own seed
        ref = gaussian_deep(widths, list(sig[b]), np.random.SeedSequence([1, b]))
        for w, r in zip(ws, ref, strict=True):
            np.testing.assert_array_equal(w[b], r)
    # independent of batch order and size; common random numbers across σ
    rev = sd.gaussian_init(widths, sig[::-1], seeds[::-1])
    np.testing.assert_array_equal(rev[0][0], ws[0][2])
    one = sd.gaussian_init(widths, 2 * sig[1], np.random.SeedSequence([1, 1]))
    np.testing.assert_allclose(one[1], 2 * ws[1][1], rtol=1e-15)
    with pytest.raises(ValueError, match="seeds"):
        sd.gaussian_init(widths, sig, 0)


def test_expected_imbalance_monte_carlo_with_rates():
    """E[D_l] = λ̄_l I and the entry variances (theory §6.2), rate-weighted (§6.1)."""
    widths = [3, 4, 5, 2]
    sig = sd.preset_sigmas("lecun", widths, 1.3, 1.7)
    rates = np.array([0.4, 1.0, 2.5])
    n = 20000
    ws = sd.gaussian_init(widths, sig, list(range(n)))
    lam_bar, v = sd.expected_imbalance(widths, sig, rates)
    for l, D in enumerate(sd.weighted_imbalances(ws, rates)):  # noqa: E741
        N_l = widths[l + 1]
        # literal theory §6.2 with σ_l²/ρ_l in place of σ_l²
        s_prev, s_next = sig[l] ** 2 / rates[l], sig[l + 1] ** 2 / rates[l + 1]
        assert lam_bar[l] == pytest.approx(widths[l + 2] * s_next - widths[l] * s_prev)
        assert v[l] == pytest.approx(widths[l + 2] * s_next**2 + widths[l] * s_prev**2)
        z = np.abs(D.mean(0) - lam_bar[l] * np.eye(N_l)) / (D.std(0, ddof=1) / np.sqrt(n))
        assert z.max() < 5
        off = D[:, ~np.eye(N_l, dtype=bool)]
        c = off - off.mean(0)
        m2, m4 = (c**2).mean(0), (c**4).mean(0)
        assert (np.abs(m2 - v[l]) / np.sqrt((m4 - m2**2) / n)).max() < 5
    summary = sd.imbalance_summary(ws, rates)
    se = summary.lam_eff.std(0, ddof=1) / np.sqrt(n)
    assert np.all(np.abs(summary.lam_eff.mean(0) - lam_bar) < 5 * se)


# ======================================================================== imbalance summary


@given(
    widths=st.lists(st.integers(1, 5), min_size=3, max_size=4),
    seed=st.integers(0, 2**20),
    use_rates=st.booleans(),
)
def test_imbalance_summary_against_explicit_eigenvalues(widths, seed, use_rates):
    rng = np.random.default_rng(seed)
    L = len(widths) - 1
    ws = [rng.standard_normal((2, widths[l + 1], widths[l])) for l in range(L)]  # noqa: E741
    rates = np.exp(rng.uniform(-2, 2, (2, L))) if use_rates else None
    s = sd.imbalance_summary(ws, rates)
    assert s.lam_eff.shape == (2, L - 1)
    rho = np.ones((2, L)) if rates is None else rates
    for b in range(2):
        for l in range(L - 1):  # noqa: E741
            w, w2 = ws[l][b], ws[l + 1][b]
            D = w2.T @ w2 / rho[b, l + 1] - w @ w.T / rho[b, l]
            ev = np.sort(np.linalg.eigvals(D).real)  # general eigensolver, not eigvalsh
            lam = ev.mean()
            assert s.lam_eff[b, l] == pytest.approx(lam, abs=1e-12 * (1 + np.abs(ev).max()))
            assert s.eig_min[b, l] == pytest.approx(ev[0], abs=1e-10 * (1 + np.abs(ev).max()))
            assert s.eig_max[b, l] == pytest.approx(ev[-1], abs=1e-10 * (1 + np.abs(ev).max()))
            # ‖D − λI‖_F² = Σ (ev − λ)² for symmetric D
            off = np.sqrt(np.sum((ev - lam) ** 2)) / np.sqrt(np.sum(ev**2))
            assert s.off_balance[b, l] == pytest.approx(off, rel=1e-8, abs=1e-12)
            size = np.sum(w**2) / rho[b, l] + np.sum(w2**2) / rho[b, l + 1]
            assert s.off_balance_scale[b, l] == pytest.approx(
                np.sqrt(np.sum((ev - lam) ** 2)) / size, rel=1e-8, abs=1e-12
            )


def test_imbalance_summary_of_balanced_inits():
    ws = lambda_balanced_deep(0.7, [3, 3, 4, 5], scale=0.4, seed=2)
    s = sd.imbalance_summary(ws)
    np.testing.assert_allclose(s.lam_eff, 0.7, rtol=1e-12)
    np.testing.assert_allclose(s.eig_min, 0.7, rtol=1e-10)
    np.testing.assert_allclose(s.eig_max, 0.7, rtol=1e-10)
    assert s.off_balance.max() < 1e-12 and s.off_balance_scale.max() < 1e-14
    rates = np.array([0.5, 2.0, 3.0])  # balanced in the rate-weighted sense
    wr = [np.sqrt(r) * w for r, w in zip(rates, ws, strict=True)]
    s = sd.imbalance_summary(wr, rates)
    np.testing.assert_allclose(s.lam_eff, 0.7, rtol=1e-12)
    assert s.off_balance.max() < 1e-12


# ======================================================================== per-layer rates (§6.1)


def test_default_rates_leave_the_simulators_unchanged():
    rng = np.random.default_rng(3)
    ws = [0.5 * rng.standard_normal((3, 4, 3)), 0.5 * rng.standard_normal((3, 2, 4))]
    syx = rng.standard_normal((2, 3))
    t = [0.0, 2.0, 10.0]
    plain = simulate.gradient_flow(ws, syx, t)
    ones = simulate.gradient_flow(ws, syx, t, rates=np.ones(2))
    for a, b in zip(plain, ones, strict=True):
        np.testing.assert_array_equal(a, b)  # multiplying by 1.0 is exact
    plain = simulate.gradient_descent(ws, syx, t, 0.05)
    ones = simulate.gradient_descent(ws, syx, t, 0.05, rates=np.ones((3, 2)))
    for a, b in zip(plain, ones, strict=True):
        np.testing.assert_array_equal(a, b)


def test_gradient_descent_with_rates_one_step_by_hand():
    rng = np.random.default_rng(4)
    ws = [
        rng.standard_normal((2, 3, 2)),
        rng.standard_normal((2, 4, 3)),
        rng.standard_normal((2, 2, 4)),
    ]
    syx = rng.standard_normal((2, 2))
    rates = np.array([[0.5, 2.0, 1.5], [3.0, 0.1, 1.0]])
    lr = 0.01
    out = simulate.gradient_descent(ws, syx, [0.0, lr], lr, rates=rates)
    for b in range(2):
        grads = _grad_by_hand([w[b] for w in ws], syx)
        for l in range(3):  # noqa: E741
            expect = ws[l][b] - lr * rates[b, l] * grads[l]
            np.testing.assert_allclose(out[l][1, b], expect, rtol=1e-13, atol=1e-15)
            np.testing.assert_array_equal(out[l][0, b], ws[l][b])
    # rates broadcast from (L,) and extend the batch from unbatched weights
    one = simulate.gradient_descent([w[0] for w in ws], syx, [lr], lr, rates=rates)
    assert one[0].shape == (1, 2, 3, 2)
    with pytest.raises(ValueError, match="rates"):
        simulate.gradient_descent(ws, syx, [lr], lr, rates=[1.0, 2.0])
    with pytest.raises(ValueError, match="rates"):
        simulate.gradient_flow(ws, syx, [lr], rates=[1.0, 0.0, 1.0])


@pytest.mark.parametrize(
    ("widths", "rates"),
    [([3, 4, 2], [0.2, 5.0]), ([2, 3, 3, 2], [0.3, 1.0, 4.0])],
)
def test_flow_with_rates_conserves_the_weighted_imbalance(widths, rates):
    """ρ_{l+1}⁻¹W_{l+1}ᵀW_{l+1} − ρ_l⁻¹W_lW_lᵀ is conserved to ≤ 1e-8 (theory §6.1).

    Relative to the rate-weighted pair size ρ_l⁻¹‖W_l‖² + ρ_{l+1}⁻¹‖W_{l+1}‖² (max over t), and
    also relative to ‖D_l(0)‖_F (O(1) for these Gaussian inits). The flow matches Radau.
    """
    rates = np.asarray(rates)
    sig = sd.preset_sigmas("he", widths, 0.8)
    ws = sd.gaussian_init(widths, sig, [11, 12, 13])
    syx = _task(widths[0], widths[-1], [2.0, 1.0], 5)
    t = np.array([0.0, 1.0, 5.0, 30.0])
    out = simulate.gradient_flow(ws, syx, t, rates=rates)
    for l, (d0, dt) in enumerate(  # noqa: E741
        zip(sd.weighted_imbalances(ws, rates), sd.weighted_imbalances(out, rates), strict=True)
    ):
        size = np.sum(out[l] ** 2, axis=(-2, -1)) / rates[l]
        size = size + np.sum(out[l + 1] ** 2, axis=(-2, -1)) / rates[l + 1]
        drift = np.linalg.norm(dt - d0, axis=(-2, -1))
        assert np.max(drift.max(0) / size.max(0)) <= 1e-8
        assert np.max(drift.max(0) / np.linalg.norm(d0, axis=(-2, -1))) <= 1e-8
    raw0, raw_t = imbalances(ws), imbalances(out)  # the unweighted one moves
    assert np.abs(raw_t[0][-1] - raw0[0]).max() > 1e-2
    ref = gradient_flow_reference([w[0] for w in ws], syx, t, rates=rates, rtol=1e-11)
    for w, r in zip(out, ref, strict=True):
        assert rel_err(w[:, 0], r).max() <= 1e-7


@pytest.mark.parametrize(
    ("lam_a", "rates", "shape"),
    [
        (0.7, (0.3, 2.0), (3, 3, 3)),
        (-0.5, (1.5, 0.2), (4, 3, 2)),
        (0.0, (4.0, 1.0), (2, 4, 3)),
        (60.0, (0.1, 10.0), (3, 3, 3)),  # stiff: the Jacobian S J S must be right
    ],
)
def test_rate_map_reproduces_simulated_flow_with_rates(lam_a, rates, shape):
    """qqt_with_rates (rate map + exact solution) vs Radau with rates and vs lrsweep's flow."""
    n_i, n_h, n_o = shape
    rates = np.asarray(rates)
    A1, A2 = lambda_balanced(lam_a, n_i, n_h, n_o, scale=0.3, seed=1)
    W1, W2 = np.sqrt(rates[0]) * A1, np.sqrt(rates[1]) * A2  # λ_A-balanced with rates
    syx = _task(n_i, n_o, [1.5, 0.8, 0.3][: min(n_i, n_o)], 2)
    t = np.array([0.0, 0.5, 2.0, 6.0, 20.0])
    q = sd.qqt_with_rates(W1, W2, syx, t, rates, lam=lam_a)
    ref = gradient_flow_reference([W1, W2], syx, t, rates=rates, rtol=1e-12)
    assert rel_err(q, _gram(*ref)).max() <= 1e-7
    for method in ("auto", "rodas4"):
        (w1, w2), info = simulate.gradient_flow(
            [W1, W2], syx, t, rates=rates, full_output=True, method=method
        )
        assert rel_err(q, _gram(w1, w2)).max() <= 1e-7, method
    # L-stable with the right Jacobian: ≈ 120–300 steps whatever the stiffness (a solve that
    # ignores the rates in the Jacobian takes 750–12000 here)
    assert int(info.n_steps) <= 400
    m = sd.rate_map([W1, W2], syx, t, rates)  # the map itself: W_l = √ρ_l A_l, Σyx/C, C²t
    C = np.sqrt(rates.prod())
    np.testing.assert_allclose(m.t, C**2 * t)
    np.testing.assert_allclose(m.sigma_yx, syx / C)
    for w, a in zip(m.to_weights(m.weights), [W1, W2], strict=True):
        np.testing.assert_allclose(w, a, rtol=1e-15)


def test_rate_map_any_depth_against_radau():
    """Depth 3: unit-rate Radau on the mapped problem equals Radau with rates (theory §6.1)."""
    widths, rates = [2, 3, 3, 2], np.array([0.5, 2.0, 1.3])
    ws = sd.gaussian_init(widths, sd.preset_sigmas("xavier", widths, 0.8), 4)
    syx = _task(2, 2, [1.2, 0.4], 6)
    t = np.array([0.0, 0.5, 2.0, 5.0])
    m = sd.rate_map(ws, syx, t, rates)
    unit = gradient_flow_reference(m.weights, m.sigma_yx, m.t, rtol=1e-11)
    with_rates = gradient_flow_reference(ws, syx, t, rates=rates, rtol=1e-11)
    for a, w in zip(m.to_weights(unit), with_rates, strict=True):
        np.testing.assert_allclose(a, w, atol=1e-9)


def test_rate_map_batched_times():
    rates = np.array([[0.5, 2.0], [4.0, 4.0]])
    W1 = np.broadcast_to(np.eye(2), (2, 2, 2))
    m = sd.rate_map([W1, W1], np.eye(2), [0.0, 1.0, 3.0], rates)
    assert m.t.shape == (3, 2)
    np.testing.assert_allclose(m.t[:, 1], 16 * np.array([0.0, 1.0, 3.0]))
    np.testing.assert_allclose(m.scale, [1.0, 4.0])


# ======================================================================== prediction (§6.2)


def _exact_path_measures(W1, W2, syx, t, lam):
    """The pipeline's λ-balanced path: solve_dynamics(exact) and the registered measures."""
    sol = solve_dynamics([W1, W2], syx, t, method="exact", lam=lam)
    o = Outcome(sol, syx, bottleneck=min(W1.shape[-1], W1.shape[-2], W2.shape[-2]))
    return sol, o


@pytest.mark.parametrize("kind", ["hidden width 1", "lambda-balanced pair"])
def test_exactly_balanced_gaussian_family_init_follows_the_balanced_path(kind):
    """A Gaussian-family init that is exactly balanced: the Gaussian path (lrsweep flow from the
    weights, imbalance summary, prediction) equals the λ-balanced path (exact solver)."""
    if kind == "hidden width 1":  # D is 1×1: every Gaussian init with N_h = 1 is balanced
        widths = [3, 1, 2]
        ws = sd.gaussian_init(widths, sd.preset_sigmas("he", widths, 0.5, 2.0), [1, 2, 3])
    else:  # λ-balanced pairs reinterpreted as inits of the Gaussian path
        pairs = [lambda_balanced(lam, 3, 3, 3, scale=0.2, seed=s) for lam, s in ((0.5, 0), (-1, 1))]
        ws = [np.stack([p[k] for p in pairs]) for k in range(2)]
    syx = _task(ws[0].shape[-1], ws[1].shape[-2], [2.0, 1.0], 3)
    summary = sd.imbalance_summary(ws)
    assert summary.off_balance_scale.max() < 1e-14
    np.testing.assert_allclose(summary.eig_min, summary.eig_max, atol=1e-12)
    lam = summary.lam_eff[:, 0]
    sim = simulate.gradient_flow(ws, syx, T)  # Gaussian path
    sol, outcome = _exact_path_measures(ws[0], ws[1], syx, T, lam)  # λ-balanced path
    assert rel_err(_gram(*sim), sol.q).max() <= 1e-7
    pred = sd.predicted_measures(ws[0], ws[1], syx, T, lowest_loss=outcome.lowest_loss)
    assert pred.prediction.admissible.all() and pred.prediction.determined.all()
    assert (pred.prediction.reason == "").all()
    np.testing.assert_allclose(
        _gram(pred.prediction.W1, pred.prediction.W2), sol.q[0], rtol=1e-10, atol=1e-14
    )
    np.testing.assert_allclose(pred.kernel_distance, outcome.kernel_distance[-1], atol=1e-9)
    np.testing.assert_allclose(pred.final_loss, outcome.loss[-1], rtol=1e-7, atol=1e-14)
    np.testing.assert_allclose(pred.time_to_fit, outcome.time_to_fit, rtol=1e-7)
    S_sim = _kernel_distance(*sim)[-1]
    np.testing.assert_allclose(pred.kernel_distance, S_sim, atol=1e-7)


@given(
    n_i=st.integers(1, 4),
    n_h=st.integers(1, 5),
    n_o=st.integers(1, 4),
    seed=st.integers(0, 2**20),
    use_rates=st.booleans(),
)
def test_balanced_prediction_properties(n_i, n_h, n_o, seed, use_rates):
    rng = np.random.default_rng(seed)
    B = 3
    W1 = rng.standard_normal((B, n_h, n_i)) * rng.uniform(0.1, 2)
    W2 = rng.standard_normal((B, n_o, n_h)) * rng.uniform(0.1, 2)
    rates = np.exp(rng.uniform(-1.5, 1.5, (B, 2))) if use_rates else None
    p = sd.balanced_prediction(W1, W2, rates)
    rho = np.ones((B, 2)) if rates is None else rates
    D = (
        np.swapaxes(W2, 1, 2) @ W2 / rho[:, 1, None, None]
        - W1 @ np.swapaxes(W1, 1, 2) / rho[:, 0, None, None]
    )
    lam = np.trace(D, axis1=1, axis2=2) / n_h
    np.testing.assert_allclose(p.lam, lam, rtol=1e-12, atol=1e-12)
    rank = np.linalg.matrix_rank(W2 @ W1)
    for b in range(B):
        admissible = not ((lam[b] > 0 and n_h > n_o) or (lam[b] < 0 and n_h > n_i))
        assert p.admissible[b] == admissible
        determined = admissible and (
            rank[b] == n_h or (lam[b] > 0 and n_h == n_o) or (lam[b] < 0 and n_h == n_i)
        )
        assert p.determined[b] == determined
        assert (p.reason[b] == "") == determined
        if not admissible:
            assert p.reason[b].startswith("inadmissible") and np.isnan(p.W1[b]).all()
            continue
        scale = 1 + np.sum(W1[b] ** 2) + np.sum(W2[b] ** 2)
        np.testing.assert_allclose(p.W2[b] @ p.W1[b], W2[b] @ W1[b], atol=1e-12 * scale)
        Dp = p.W2[b].T @ p.W2[b] / rho[b, 1] - p.W1[b] @ p.W1[b].T / rho[b, 0]
        np.testing.assert_allclose(Dp, lam[b] * np.eye(n_h), atol=1e-12 * scale)


def test_prediction_not_determined_is_flagged():
    """N_i = N_h = 1 < N_o = 2 with W1 = 0: the direction of W2 is free (theory §6.2)."""
    W1 = np.zeros((1, 1, 1))
    W2 = np.array([[[0.6], [0.8]]])
    p = sd.balanced_prediction(W1, W2)
    assert p.admissible[0] and not p.determined[0]
    assert p.reason[0].startswith("not determined") and p.rank[0] == 0
    # the flagged choice really matters: the real init and the prediction flow apart
    syx = np.array([[1.0], [0.0]])
    t = np.array([0.0, 3.0])
    q_real = qqt(W1[0], W2[0], syx, t)
    q_pred = qqt(p.W1[0], p.W2[0], syx, t, lam=p.lam[0])
    assert np.abs(q_real[-1] - q_pred[-1]).max() > 1e-2


def test_inadmissible_predictions_are_flagged_not_dropped():
    widths = [4, 16, 4]  # λ_eff ≠ 0 with N_h > N_i, N_o: never admissible
    ws = sd.gaussian_init(widths, sd.preset_sigmas("xavier", widths, 1.0, 2.0), list(range(5)))
    syx = _task(4, 4, [2.0, 1.0], 0)
    pred = sd.predicted_measures(ws[0], ws[1], syx, T)
    assert not pred.prediction.admissible.any()
    assert pred.kernel_distance.shape == (5,) and np.isnan(pred.kernel_distance).all()
    assert all(r.startswith("inadmissible: lambda_eff = ") for r in pred.prediction.reason)
    assert "N_h <= N_o (16 > 4)" in pred.prediction.reason[0]
    # the pipeline's columns (the measures registry) keep every run, with the reason
    sol = solve_dynamics(ws, syx, T, method="gd", lr=0.05)
    o = Outcome(sol, syx, bottleneck=4, init_weights=ws)
    cols = {m.name: m.compute(o) for m in measures()}
    assert all(np.shape(v) == (5,) for k, v in cols.items() if "predict" in k)
    assert np.isnan(cols["kernel_distance_prediction_error"]).all()
    assert np.isfinite(cols["kernel_distance"]).all()
    assert (cols["prediction_status"] == pred.prediction.reason).all()
    # a mixed batch (4-3-2: λ_eff < 0 admissible, λ_eff > 0 not): every row kept, in order
    widths = [4, 3, 2]
    sig = sd.preset_sigmas("constant", widths, 0.5, np.array([0.2, 5.0, 0.2, 5.0]))
    ws = sd.gaussian_init(widths, sig, [1, 2, 3, 4])
    pred = sd.predicted_measures(ws[0], ws[1], _task(4, 2, [2.0, 1.0], 0), T)
    np.testing.assert_array_equal(pred.prediction.admissible, [True, False, True, False])
    np.testing.assert_array_equal(np.isfinite(pred.kernel_distance), pred.prediction.admissible)
    assert (pred.prediction.lam[1::2] > 0).all() and (pred.prediction.lam[::2] < 0).all()


def test_prediction_with_rates_matches_flow_for_a_balanced_init():
    """Rates and the prediction together: a rate-weighted balanced init is predicted exactly."""
    rates = np.array([0.25, 3.0])
    A1, A2 = lambda_balanced(0.4, 3, 2, 3, scale=0.3, seed=5)
    W1, W2 = np.sqrt(rates[0]) * A1, np.sqrt(rates[1]) * A2
    syx = _task(3, 3, [2.0, 1.0], 8)
    pred = sd.predicted_measures(W1[None], W2[None], syx, T, rates)
    assert pred.prediction.lam[0] == pytest.approx(0.4, rel=1e-12)
    sim = simulate.gradient_flow([W1, W2], syx, T, rates=rates)
    np.testing.assert_allclose(pred.kernel_distance[0], _kernel_distance(*sim)[-1], atol=1e-7)
    np.testing.assert_allclose(pred.loss[:, 0], fitting.loss(sim[1] @ sim[0], syx), atol=1e-9)


# ======================================================================== prediction vs width


def _prediction_errors(n_i, n_h, n_o, seeds, t):
    """Per seed: |S_pred − S_sim| at t_max and the trajectory error max_t‖ΔQQᵀ‖/max_t‖QQᵀ‖."""
    widths = [n_i, n_h, n_o]
    sig = sd.preset_sigmas("xavier", widths, 1.0, 2.0)
    ws = sd.gaussian_init(widths, sig, [np.random.SeedSequence([7, s, n_i, n_h]) for s in seeds])
    syx = _task(n_i, n_o, [3.0, 2.0], 1)
    runs = [_dop853(ws[0][b], ws[1][b], syx, t) for b in range(len(seeds))]
    w1, w2 = np.stack([r[0] for r in runs], 1), np.stack([r[1] for r in runs], 1)
    pm = sd.predicted_measures(ws[0], ws[1], syx, t)
    assert pm.prediction.admissible.all()
    dS = np.abs(pm.kernel_distance - _kernel_distance(w1, w2)[-1])
    p = pm.prediction
    q_pred = sd.qqt_with_rates(p.W1, p.W2, syx, t, [1.0, 1.0], lam=p.lam)
    q_sim = _gram(w1, w2)
    num = np.max(np.linalg.norm(q_pred - q_sim, axis=(-2, -1)), axis=0)
    traj = num / np.max(np.linalg.norm(q_sim, axis=(-2, -1)), axis=0)
    off = sd.imbalance_summary(ws).off_balance[:, 0]
    return dS, traj, off


WIDTH_T = np.array([0.0, 0.5, 1.0, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0, 40.0])


def test_prediction_error_falls_with_the_outer_width():
    """Seeded sweep: N_h = 2, N_i = N_o = n = 4 … 128, Xavier × 1, ratio 2 (λ̄ → 3), rank-2
    task s̃ = (3, 2), 12 seeds per n. D (2×2) sums over n rows, so D/n concentrates and the
    prediction errors fall; the fitted exponents (per-seed least squares on log–log, ± SE) must
    be negative by 3 SE. This sweep measures |ΔS| ∝ n^(−1.37 ± 0.13), trajectory error
    ∝ n^(−0.28 ± 0.06), off-balance ∝ n^(−0.45 ± 0.05) (theory §6.2: |ΔS| falls faster than
    the imbalance because S_sim → 1 as n grows; the trajectory error is the clean measure)."""
    sizes = [4, 8, 16, 32, 64, 128]
    seeds = range(12)
    x, errs = [], {"dS": [], "traj": [], "off": []}
    for n in sizes:
        dS, traj, off = _prediction_errors(n, 2, n, seeds, WIDTH_T)
        x.append(np.full(len(seeds), n))
        for k, v in zip(errs, (dS, traj, off), strict=True):
            errs[k].append(v)
    x = np.concatenate(x).astype(float)
    fits = {k: _loglog_fit(x, np.concatenate(v)) for k, v in errs.items()}
    print("prediction error vs outer width, exponent ± SE:", fits)
    for k, (p, se) in fits.items():
        assert p + 3 * se < 0, (k, p, se)


def test_prediction_error_grows_with_the_hidden_width_at_fixed_io():
    """Measured, not assumed: at fixed N_i = N_o = 16 the hidden width N_h = 2 … 16 makes D
    (N_h × N_h, summing over only 16 rows) less balanced, and the prediction worse
    (exponents > 0 by 3 SE); beyond N_h > max(N_i, N_o) it is inadmissible (theory §6.2)."""
    seeds = range(8)
    x, traj_all, off_all = [], [], []
    for n_h in (2, 4, 8, 16):
        _, traj, off = _prediction_errors(16, n_h, 16, seeds, WIDTH_T[:9])
        x.append(np.full(len(seeds), n_h))
        traj_all.append(traj)
        off_all.append(off)
    x = np.concatenate(x).astype(float)
    for y in (np.concatenate(traj_all), np.concatenate(off_all)):
        p, se = _loglog_fit(x, y)
        assert p - 3 * se > 0, (p, se)
