"""Tests for lrsweep.metrics: NTK against an explicit Jacobian, kernel distances, loss, time to fit.

References are built independently of the module: the Jacobian by central finite differences
through a plain forward pass, the loss as a sample sum, RSMs as explicit P × P matrices.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lrsweep import metrics
from lrsweep.metrics import (
    LAZY_THRESHOLD,
    KernelGrams,
    end_to_end,
    kernel_distance,
    kernel_inner,
    kernel_norm,
    loss,
    ntk_grams,
    ntk_grams_from_qqt,
    ntk_matrix,
    regime,
    relative_kernel_change,
    relative_weight_change,
    rsm_distance,
    time_to_fit,
)

# Tolerances. The finite-difference Jacobian is exact up to round-off (see _jacobian), so
# every NTK identity is checked to near machine precision.
RTOL = 1e-10  # relative, kernels and inner products
ATOL_DIST = 1e-12  # absolute, kernel distances (which are O(1) or 0)


# --------------------------------------------------------------------------------------
# independent reference implementations
# --------------------------------------------------------------------------------------


def _forward(ws: list[np.ndarray], X: np.ndarray) -> np.ndarray:
    """ŷ = W_L(⋯(W_1 X)), shape (N_o, P)."""
    h = X
    for w in ws:
        h = w @ h
    return h


def _jacobian(ws: list[np.ndarray], X: np.ndarray, h: float = 0.5) -> np.ndarray:
    """J[(a, n), θ] = ∂ŷ_{a n}/∂θ by central differences over every parameter entry.

    ŷ is affine in each single parameter (multilinear in the layers), so the central
    difference is exact for any step h; the only error is round-off. Rows are ordered
    a·P + n (ŷ.ravel() of the (N_o, P) output), columns layer by layer, row-major.
    """
    cols = []
    for layer, w in enumerate(ws):
        for idx in np.ndindex(w.shape):
            plus = [x.copy() for x in ws]
            minus = [x.copy() for x in ws]
            plus[layer][idx] += h
            minus[layer][idx] -= h
            cols.append((_forward(plus, X) - _forward(minus, X)).ravel() / (2 * h))
    return np.stack(cols, axis=1)


def _random_net(rng, widths, batch=()):
    """Weights W_l of shape batch + (N_l, N_{l-1}) for widths [N_0, ..., N_L]."""
    return [
        rng.standard_normal(batch + (n_out, n_in)) / np.sqrt(n_in)
        for n_in, n_out in zip(widths[:-1], widths[1:], strict=True)
    ]


def _inputs(rng, n_in, n_samples, whitened):
    """X (N_i, P); whitened means XXᵀ/P = I exactly (X = √P Qᵀ, Q orthonormal columns)."""
    if whitened:
        q, _ = np.linalg.qr(rng.standard_normal((n_samples, n_in)))
        return np.sqrt(n_samples) * q.T
    return rng.standard_normal((n_in, n_samples)) + 0.5


def _cos_distance(a, b):
    return 1.0 - np.sum(a * b) / (np.linalg.norm(a) * np.linalg.norm(b))


# --------------------------------------------------------------------------------------
# NTK against the explicit Jacobian
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("whitened", [True, False], ids=["whitened", "general_X"])
@pytest.mark.parametrize("depth", [2, 3, 4])
def test_ntk_matches_jacobian(rng, depth, whitened):
    n_batch = 2
    widths = list(rng.integers(1, 5, size=depth + 1))
    n_in, n_out = widths[0], widths[-1]
    P = int(n_in + rng.integers(0, 3))
    X = _inputs(rng, n_in, P, whitened)
    sigma_xx = None if whitened else X @ X.T / P
    # batch axes: some layers batched, one layer shared (broadcast)
    ws_0 = _random_net(rng, widths, (n_batch,))
    ws_0[0] = ws_0[0][0]
    ws_t = _random_net(rng, widths, (n_batch,))

    k_0 = ntk_matrix(ws_0, X)
    k_t = ntk_matrix(ws_t, X)
    assert k_0.shape == (n_batch, n_out * P, n_out * P)
    g_0, g_t = ntk_grams(ws_0), ntk_grams(ws_t)
    assert g_0.out_grams.shape == (n_batch, depth, n_out, n_out)
    assert g_0.in_grams.shape == (n_batch, depth, n_in, n_in)

    inner = kernel_inner(g_0, g_t, sigma_xx, n_samples=P)
    inner_per_pair = kernel_inner(g_0, g_t, sigma_xx)
    norm_0 = kernel_norm(g_0, sigma_xx, n_samples=P)
    dist = kernel_distance(g_0, g_t, sigma_xx)
    change = relative_kernel_change(g_0, g_t, sigma_xx)
    for b in range(n_batch):
        j_0 = _jacobian([np.broadcast_to(w, (n_batch,) + w.shape[-2:])[b] for w in ws_0], X)
        j_t = _jacobian([w[b] for w in ws_t], X)
        ref_0, ref_t = j_0 @ j_0.T, j_t @ j_t.T
        scale = np.abs(ref_0).max()
        np.testing.assert_allclose(k_0[b], ref_0, rtol=RTOL, atol=RTOL * scale)
        np.testing.assert_allclose(k_t[b], ref_t, rtol=RTOL, atol=RTOL * np.abs(ref_t).max())
        np.testing.assert_allclose(inner[b], np.sum(ref_0 * ref_t), rtol=RTOL)
        np.testing.assert_allclose(inner_per_pair[b], np.sum(ref_0 * ref_t) / P**2, rtol=RTOL)
        np.testing.assert_allclose(norm_0[b], np.linalg.norm(ref_0), rtol=RTOL)
        np.testing.assert_allclose(dist[b], _cos_distance(ref_0, ref_t), atol=ATOL_DIST)
        np.testing.assert_allclose(
            change[b], np.linalg.norm(ref_t - ref_0) / np.linalg.norm(ref_0), rtol=RTOL
        )


def test_ntk_index_order_and_two_layer_formula(rng):
    """Depth 2: K = W2W2ᵀ ⊗ XᵀX + I ⊗ XᵀW1ᵀW1X (theory §4) with index a·P + n."""
    W1, W2 = rng.standard_normal((4, 3)), rng.standard_normal((2, 4))
    X = rng.standard_normal((3, 5))
    ref = np.kron(W2 @ W2.T, X.T @ X) + np.kron(np.eye(2), X.T @ W1.T @ W1 @ X)
    np.testing.assert_allclose(ntk_matrix([W1, W2], X), ref, rtol=RTOL)
    k4 = ntk_matrix([W1, W2], X).reshape(2, 5, 2, 5)
    j = _jacobian([W1, W2], X).reshape(2, 5, -1)  # (a, n, θ)
    np.testing.assert_allclose(k4[1, 3, 0, 2], j[1, 3] @ j[0, 2], rtol=RTOL)


def test_ntk_matrix_batched_inputs(rng):
    ws = _random_net(rng, [2, 3, 2], (3,))
    X = rng.standard_normal((3, 2, 4))  # one input set per batch entry
    k = ntk_matrix(ws, X)
    for b in range(3):
        np.testing.assert_allclose(k[b], ntk_matrix([w[b] for w in ws], X[b]), rtol=RTOL)


def test_ntk_grams_from_qqt_matches_weights(rng):
    W1 = rng.standard_normal((5, 4, 3))  # (batch, N_h, N_i)
    W2 = rng.standard_normal((5, 2, 4))  # (batch, N_o, N_h)
    Q = np.concatenate([np.swapaxes(W1, -1, -2), W2], axis=-2)  # [W1ᵀ; W2]
    g_q = ntk_grams_from_qqt(Q @ np.swapaxes(Q, -1, -2), n_in=3)
    g_w = ntk_grams([W1, W2])
    np.testing.assert_allclose(g_q.out_grams, g_w.out_grams, rtol=RTOL, atol=1e-13)
    np.testing.assert_allclose(g_q.in_grams, g_w.in_grams, rtol=RTOL, atol=1e-13)
    assert isinstance(g_q, KernelGrams)


def test_depth_one_kernel_is_identity_times_gram(rng):
    W = rng.standard_normal((2, 3))
    X = rng.standard_normal((3, 4))
    np.testing.assert_allclose(ntk_matrix([W], X), np.kron(np.eye(2), X.T @ X), rtol=RTOL)


def test_end_to_end_broadcasts(rng):
    ws = [rng.standard_normal((4, 3)), rng.standard_normal((6, 5, 4)), rng.standard_normal((2, 5))]
    W = end_to_end(ws)
    assert W.shape == (6, 2, 3)
    np.testing.assert_allclose(W[4], ws[2] @ ws[1][4] @ ws[0], rtol=RTOL)


# --------------------------------------------------------------------------------------
# kernel distance: properties, accuracy in the lazy limit
# --------------------------------------------------------------------------------------


def test_kernel_distance_properties(rng):
    ws_0 = _random_net(rng, [3, 4, 2], (6,))
    ws_t = _random_net(rng, [3, 4, 2], (6,))
    X = _inputs(rng, 3, 5, whitened=False)
    sigma_xx = X @ X.T / 5
    g_0, g_t = ntk_grams(ws_0), ntk_grams(ws_t)
    s = kernel_distance(g_0, g_t, sigma_xx)
    assert s.shape == (6,)
    assert np.all((s >= 0) & (s <= 1))
    np.testing.assert_allclose(kernel_distance(g_t, g_0, sigma_xx), s, atol=ATOL_DIST)
    np.testing.assert_array_equal(kernel_distance(g_0, g_0, sigma_xx), 0.0)
    scaled = KernelGrams(3.7 * g_t.out_grams, g_t.in_grams)  # K -> 3.7 K
    np.testing.assert_allclose(kernel_distance(g_0, scaled, sigma_xx), s, atol=ATOL_DIST)
    # the per-sample normalisation does not change the distance: P enters only via Σxx
    X2 = np.concatenate([X, X], axis=1)  # P -> 2P, same Σxx
    np.testing.assert_allclose(
        [_cos_distance(ntk_matrix([w[0] for w in ws_0], X2), ntk_matrix([w[0] for w in ws_t], X2))],
        s[:1],
        atol=ATOL_DIST,
    )


def test_kernel_distance_broadcasts_time_against_runs(rng):
    ws_0 = _random_net(rng, [2, 3, 2], (4,))  # (runs, ...)
    ws_t = _random_net(rng, [2, 3, 2], (5, 4))  # (n_t, runs, ...)
    s = kernel_distance(ntk_grams(ws_0), ntk_grams(ws_t))
    assert s.shape == (5, 4)
    looped = kernel_distance(ntk_grams([w[1] for w in ws_0]), ntk_grams([w[3, 1] for w in ws_t]))
    np.testing.assert_allclose(s[3, 1], looped, atol=ATOL_DIST)


@pytest.mark.parametrize("delta", [1e-4, 1e-7])
def test_small_kernel_changes_keep_relative_accuracy(rng, delta):
    """Lazy limit: K_t = K_0 + O(δ). Naive ‖K_t‖² − 2⟨K_0,K_t⟩ + ‖K_0‖² loses all digits
    at δ = 1e-7 (relative error ~ ε/δ² ≈ 1e-2); the structured difference keeps ~ε/δ."""
    ws_0 = _random_net(rng, [3, 3, 3], ())
    ws_t = [w + delta * rng.standard_normal(w.shape) for w in ws_0]
    X = _inputs(rng, 3, 4, whitened=False)
    sigma_xx = X @ X.T / 4
    k_0, k_t = ntk_matrix(ws_0, X), ntk_matrix(ws_t, X)
    g_0, g_t = ntk_grams(ws_0), ntk_grams(ws_t)
    rtol = 1e3 * np.finfo(float).eps / delta
    ref_change = np.linalg.norm(k_t - k_0) / np.linalg.norm(k_0)
    np.testing.assert_allclose(relative_kernel_change(g_0, g_t, sigma_xx), ref_change, rtol=rtol)
    # S = ½‖K̂_t − K̂_0‖² evaluated on the explicit matrices (accurate reference)
    diff = k_t / np.linalg.norm(k_t) - k_0 / np.linalg.norm(k_0)
    ref_s = 0.5 * np.sum(diff**2)
    np.testing.assert_allclose(kernel_distance(g_0, g_t, sigma_xx), ref_s, rtol=rtol)


def test_distances_stay_accurate_when_factors_move_but_kernel_does_not(rng):
    """N_o = P = 1: K is a positive scalar, so S = 0 and only the scale changes. The factor
    form alone is wrong here by O(1) when one kernel is tiny (a_0 = 1/‖K_0‖ huge), so the
    implementation must fall back to the kernel form; rank-1 Σxx also tests Σxx^{1/2}."""
    n = 300
    widths = [3, 1, 1, 1, 1]
    ws_0, ws_t = _random_net(rng, widths, (n,)), _random_net(rng, widths, (n,))
    ws_0[1] = ws_0[1] * np.logspace(-8, 0, n)[:, None, None]  # some tiny kernels
    x = rng.standard_normal((3, 1))
    g_0, g_t = ntk_grams(ws_0), ntk_grams(ws_t)
    assert np.max(kernel_distance(g_0, g_t, x @ x.T)) < 1e-14
    assert np.max(kernel_distance(g_t, g_0, x @ x.T)) < 1e-14
    k_0, k_t = ntk_matrix(ws_0, x)[:, 0, 0], ntk_matrix(ws_t, x)[:, 0, 0]
    np.testing.assert_allclose(
        relative_kernel_change(g_0, g_t, x @ x.T), np.abs(k_t - k_0) / k_0, rtol=1e-9
    )
    # whitened scalar network (N_i = N_o = P = 1)
    g_0 = ntk_grams([ws_0[0][..., :1]] + ws_0[1:])
    g_t = ntk_grams([ws_t[0][..., :1]] + ws_t[1:])
    assert np.max(kernel_distance(g_0, g_t)) < 1e-14


def test_zero_kernel_gives_nan(rng):
    zeros = [np.zeros((3, 2)), np.zeros((2, 3)), np.zeros((2, 2))]
    g_0 = ntk_grams(zeros)  # depth 3 at W = 0: every term vanishes
    g_t = ntk_grams(_random_net(rng, [2, 3, 2, 2]))
    assert np.isnan(kernel_distance(g_0, g_t))
    assert np.isnan(relative_kernel_change(g_0, g_t))
    assert kernel_norm(g_0) == 0.0


@st.composite
def _nets(draw):
    depth = draw(st.integers(1, 4))
    widths = draw(st.lists(st.integers(1, 4), min_size=depth + 1, max_size=depth + 1))
    batch = tuple(draw(st.lists(st.integers(1, 3), max_size=2)))
    n_samples = draw(st.integers(1, 4))
    seed = draw(st.integers(0, 2**32 - 1))
    return widths, batch, n_samples, seed


@given(_nets())
def test_kernel_distance_property_random_shapes(net):
    widths, batch, n_samples, seed = net
    rng = np.random.default_rng(seed)
    ws_0, ws_t = _random_net(rng, widths, batch), _random_net(rng, widths, batch)
    X = rng.standard_normal((widths[0], n_samples))
    sigma_xx = X @ X.T / n_samples
    g_0, g_t = ntk_grams(ws_0), ntk_grams(ws_t)
    s = kernel_distance(g_0, g_t, sigma_xx)
    assert s.shape == batch
    assert np.all((s >= 0) & (s <= 1 + 1e-12))
    np.testing.assert_allclose(kernel_distance(g_t, g_0, sigma_xx), s, atol=1e-12)
    np.testing.assert_allclose(kernel_distance(g_0, g_0, sigma_xx), 0.0, atol=1e-12)
    k_0, k_t = ntk_matrix(ws_0, X), ntk_matrix(ws_t, X)
    for b in np.ndindex(batch):
        np.testing.assert_allclose(s[b], _cos_distance(k_0[b], k_t[b]), atol=1e-11)


# --------------------------------------------------------------------------------------
# representation (RSM) distance, weight change
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("whitened", "P"), [(True, 6), (False, 6), (False, 2)], ids=["whitened", "general_X", "P<N_i"]
)
def test_rsm_distance_matches_brute_force(rng, whitened, P):
    widths = [3, 4, 2, 3]  # two hidden layers
    X = _inputs(rng, 3, P, whitened)
    sigma_xx = None if whitened else X @ X.T / P
    ws_0 = _random_net(rng, widths, (2,))
    ws_t = _random_net(rng, widths, (2,))
    s = rsm_distance(ntk_grams(ws_0), ntk_grams(ws_t), sigma_xx)
    assert s.shape == (2, 2)
    for b in range(2):
        h_0, h_t = X, X
        for layer in range(2):
            h_0, h_t = ws_0[layer][b] @ h_0, ws_t[layer][b] @ h_t
            ref = _cos_distance(h_0.T @ h_0, h_t.T @ h_t)  # explicit P × P RSMs
            np.testing.assert_allclose(s[b, layer], ref, atol=ATOL_DIST)


def test_rsm_distance_from_qqt(rng):
    W1_0, W2_0 = rng.standard_normal((3, 2)), rng.standard_normal((2, 3))
    W1_t, W2_t = rng.standard_normal((3, 2)), rng.standard_normal((2, 3))
    qs = []
    for W1, W2 in ((W1_0, W2_0), (W1_t, W2_t)):
        Q = np.concatenate([W1.T, W2])
        qs.append(ntk_grams_from_qqt(Q @ Q.T, n_in=2))
    ref = _cos_distance(W1_0.T @ W1_0, W1_t.T @ W1_t)  # whitened X: RSM ∝ W1ᵀW1
    np.testing.assert_allclose(rsm_distance(*qs), [ref], atol=ATOL_DIST)


def test_relative_weight_change(rng):
    ws_0 = _random_net(rng, [3, 4, 2], (5,))
    ws_t = _random_net(rng, [3, 4, 2], (7, 5))
    per_layer, overall = relative_weight_change(ws_t, ws_0)
    assert per_layer.shape == (7, 5, 2) and overall.shape == (7, 5)
    b = (6, 2)
    theta_0 = np.concatenate([w[b[1]].ravel() for w in ws_0])
    theta_t = np.concatenate([w[b].ravel() for w in ws_t])
    np.testing.assert_allclose(
        overall[b], np.linalg.norm(theta_t - theta_0) / np.linalg.norm(theta_0), rtol=RTOL
    )
    ref_1 = np.linalg.norm(ws_t[1][b] - ws_0[1][b[1]]) / np.linalg.norm(ws_0[1][b[1]])
    np.testing.assert_allclose(per_layer[b][1], ref_1, rtol=RTOL)
    same, same_overall = relative_weight_change(ws_0, ws_0)
    np.testing.assert_array_equal(same, 0.0)
    np.testing.assert_array_equal(same_overall, 0.0)


# --------------------------------------------------------------------------------------
# loss
# --------------------------------------------------------------------------------------


def _sample_loss(W, X, Y):
    """ℒ = 1/(2P) Σ_n ‖y_n − W x_n‖², W of shape (..., N_o, N_i)."""
    return np.sum((Y - W @ X) ** 2, axis=(-2, -1)) / (2 * X.shape[1])


@pytest.mark.parametrize("n_samples", [9, 2], ids=["full_rank", "rank_deficient"])
def test_loss_matches_sample_sum(rng, n_samples):
    n_in, n_out = 3, 2
    X = rng.standard_normal((n_in, n_samples))
    Y = rng.standard_normal((n_out, n_samples))
    sxx, syx, syy = X @ X.T / n_samples, Y @ X.T / n_samples, Y @ Y.T / n_samples
    W = rng.standard_normal((4, 5, n_out, n_in))  # (n_t, runs, N_o, N_i)
    full = loss(W, syx, sxx, syy)
    assert full.shape == (4, 5)
    np.testing.assert_allclose(full, _sample_loss(W, X, Y), rtol=1e-12)
    w_star = np.linalg.lstsq(X.T, Y.T, rcond=None)[0].T  # least-squares optimum
    np.testing.assert_allclose(
        loss(W, syx, sxx), _sample_loss(W, X, Y) - _sample_loss(w_star, X, Y), rtol=1e-10
    )
    np.testing.assert_allclose(loss(w_star, syx, sxx), 0.0, atol=1e-14)


def test_loss_whitened_excess_and_full(rng):
    P = 7
    X = _inputs(rng, 3, P, whitened=True)
    Y = rng.standard_normal((2, P))
    syx, syy = Y @ X.T / P, Y @ Y.T / P
    W = rng.standard_normal((6, 2, 3))
    np.testing.assert_allclose(loss(W, syx), 0.5 * np.sum((W - syx) ** 2, axis=(-2, -1)))
    np.testing.assert_allclose(loss(W, syx, sigma_yy=syy), _sample_loss(W, X, Y), rtol=1e-12)
    np.testing.assert_allclose(loss(W, syx, np.eye(3), syy), loss(W, syx, sigma_yy=syy), rtol=1e-12)


# --------------------------------------------------------------------------------------
# time to fit
# --------------------------------------------------------------------------------------


def test_time_to_fit_exponential_decay():
    """ℒ = e^{−rt}: t_f = ln(1/(1 − f))/r to interpolation error ≤ r·Δt²·e^{rΔt}/8."""
    rates = np.array([[0.5, 1.0, 2.0], [3.0, 0.25, 1.5]])
    dt = 0.01
    t = np.arange(0.0, 40.0 + dt / 2, dt)
    curve = np.exp(-rates * t[:, None, None])  # (n_t, 2, 3)
    fractions = np.array([0.5, 0.9, 0.99])
    bound = rates * dt**2 * np.exp(rates * dt) / 8
    got = time_to_fit(t, curve, fractions, final_loss=0.0)
    assert got.shape == (3, 2, 3)
    want = np.log(1 / (1 - fractions))[:, None, None] / rates
    assert np.all(np.abs(got - want) <= bound)
    # default reference level: the last sample, ℒ(T) = e^{−rT}
    got = time_to_fit(t, curve, fractions)
    level = 1 - fractions[:, None, None] * (1 - np.exp(-rates * t[-1]))
    assert np.all(np.abs(got - (-np.log(level) / rates)) <= bound)
    # time axis last, scalar fraction
    got = time_to_fit(t, np.moveaxis(curve, 0, -1), 0.9, final_loss=0.0, axis=-1)
    assert got.shape == (2, 3)
    assert np.all(np.abs(got - np.log(10) / rates) <= bound)


def test_time_to_fit_first_crossing_and_nan():
    t = np.arange(6.0)
    curve = np.array([[4.0, 1.0, 3.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0, 1.0, 1.0]]).T
    got = time_to_fit(t, curve, [0.5, 1.0])
    np.testing.assert_allclose(got[:, 0], [2.0 / 3.0, 3.0])  # first crossing of level 2.0
    assert np.all(np.isnan(got[:, 1]))  # flat loss never decreases
    got = time_to_fit(t, curve[:, :1], [0.5, 1.0], final_loss=-1.0)
    assert got[0, 0] == pytest.approx(2.5 / 3.0)  # level 1.5, between t=0 (4.0) and t=1 (1.0)
    assert np.isnan(got[1, 0])  # level -1 is never reached


# --------------------------------------------------------------------------------------
# regime label
# --------------------------------------------------------------------------------------


def test_regime_labels():
    s = np.array([0.0, LAZY_THRESHOLD, 2 * LAZY_THRESHOLD, 0.5, np.nan])
    assert regime(s).tolist() == ["lazy", "lazy", "rich", "rich", "undefined"]
    assert regime(0.2, threshold=0.3) == "lazy"
    assert regime(np.zeros((2, 3))).shape == (2, 3)


# --------------------------------------------------------------------------------------
# bad input: exact messages
# --------------------------------------------------------------------------------------


def _grams(n_in=2, n_out=2, depth=2, batch=()):
    return KernelGrams(
        np.broadcast_to(np.eye(n_out), batch + (depth, n_out, n_out)).copy(),
        np.broadcast_to(np.eye(n_in), batch + (depth, n_in, n_in)).copy(),
    )


BAD_INPUT = [
    (
        lambda: ntk_grams(np.eye(2)),
        TypeError,
        "`weights` must be a list [W_1, ..., W_L] of layer matrices (input side first), "
        "got ndarray; wrap a single matrix as [W]",
    ),
    (
        lambda: ntk_grams([]),
        ValueError,
        "`weights` must contain at least one layer matrix, got an empty list",
    ),
    (
        lambda: ntk_grams([np.ones((3, 2)), np.ones((2, 4))]),
        ValueError,
        "`weights[1]` must have 3 columns to follow `weights[0]` of shape (3, 2), got shape (2, 4)",
    ),
    (
        lambda: ntk_grams([np.ones(3)]),
        ValueError,
        "`weights[0]` must have shape (..., N_out, N_in) (at least 2-d), got shape (3,)",
    ),
    (
        lambda: ntk_grams([np.array([[1.0, np.nan]])]),
        ValueError,
        "`weights[0]` must be finite, but 1 entries are NaN or inf",
    ),
    (
        lambda: end_to_end([np.ones((2, 3, 3)), np.ones((4, 3, 3))]),
        ValueError,
        "the leading batch axes of `weights` must broadcast against each other, "
        "got batch shapes [(2,), (4,)]",
    ),
    (
        lambda: kernel_distance(_grams(n_in=3), _grams(n_in=4)),
        ValueError,
        "`grams_0` and `grams_t` must have the same (L, N_o, N_i), got (2, 2, 3) and (2, 2, 4)",
    ),
    (
        lambda: kernel_distance(_grams(depth=2), _grams(depth=3)),
        ValueError,
        "`grams_0` and `grams_t` must have the same (L, N_o, N_i), got (2, 2, 2) and (3, 2, 2)",
    ),
    (
        lambda: kernel_inner(_grams(batch=(2,)), _grams(batch=(3,))),
        ValueError,
        "the leading batch axes of `grams_s` and `grams_t` must broadcast against each other, "
        "got batch shapes [(2,), (2,), (3,), (3,)]",
    ),
    (
        lambda: kernel_norm(np.eye(2)),
        TypeError,
        "`grams` must be a pair (out_grams, in_grams) as returned by ntk_grams or "
        "ntk_grams_from_qqt, got ndarray",
    ),
    (
        lambda: kernel_norm((np.ones((2, 2, 3)), np.ones((2, 2, 2)))),
        ValueError,
        "`grams.out_grams` must have shape (..., L, N_o, N_o), got shape (2, 2, 3)",
    ),
    (
        lambda: kernel_norm((np.ones((2, 2, 2)), np.ones((3, 2, 2)))),
        ValueError,
        "`grams` must have one out gram and one in gram per layer, got L=2 out_grams and "
        "L=3 in_grams",
    ),
    (
        lambda: kernel_norm(_grams(), np.eye(3)),
        ValueError,
        "`sigma_xx` must have shape (..., N_i, N_i)=(..., 2, 2), got (3, 3)",
    ),
    (
        lambda: kernel_norm(_grams(), np.array([[1.0, 0.5], [0.0, 1.0]])),
        ValueError,
        "`sigma_xx` must be symmetric (Sigma_xx = X X^T / P), but max |S - S^T| = 0.5",
    ),
    (
        lambda: kernel_distance(_grams(), _grams(), -np.eye(2)),
        ValueError,
        "`sigma_xx` must be positive semi-definite (Sigma_xx = X X^T / P), but its smallest "
        "eigenvalue is -1",
    ),
    (
        lambda: kernel_norm(_grams(), n_samples=0),
        ValueError,
        "`n_samples` must be a positive integer, got 0",
    ),
    (
        lambda: ntk_grams_from_qqt(np.eye(3), n_in=3),
        ValueError,
        "`n_in` must be smaller than the size of `q` (N_i + N_o = 3) so that N_o >= 1, got n_in=3",
    ),
    (
        lambda: ntk_grams_from_qqt(np.ones((3, 2)), n_in=1),
        ValueError,
        "`q` must have shape (..., N_i + N_o, N_i + N_o) (square), got shape (3, 2)",
    ),
    (
        lambda: ntk_matrix([np.ones((2, 3))], np.ones((2, 5))),
        ValueError,
        "`X` must have shape (..., N_i, P) with N_i=3, got (2, 5)",
    ),
    (
        lambda: loss(np.ones((2, 3)), np.ones((3, 2))),
        ValueError,
        "`sigma_yx` must have shape (..., N_o, N_i)=(..., 2, 3) to match `W`, got (3, 2)",
    ),
    (
        lambda: loss(np.ones((2, 3)), np.ones((2, 3)), sigma_yy=np.ones((3, 3))),
        ValueError,
        "`sigma_yy` must have shape (..., N_o, N_o)=(..., 2, 2), got (3, 3)",
    ),
    (
        lambda: loss(np.ones((2, 3)), np.full((2, 3), np.inf)),
        ValueError,
        "`sigma_yx` must be finite, but 6 entries are NaN or inf",
    ),
    (
        lambda: relative_weight_change([np.ones((2, 3))], [np.ones((3, 3))]),
        ValueError,
        "`weights_t` and `weights_0` must have the same layer shapes, got [(2, 3)] and [(3, 3)]",
    ),
    (
        lambda: time_to_fit([0.0, 2.0, 1.0], np.ones(3)),
        ValueError,
        "`t` must be strictly increasing with at least 2 samples, got 3 sample(s) and min step -1",
    ),
    (
        lambda: time_to_fit([0.0, 1.0, 2.0], np.ones((4, 2))),
        ValueError,
        "`loss` must have len(t)=3 samples along axis 0, got shape (4, 2)",
    ),
    (
        lambda: time_to_fit([0.0, 1.0], np.ones(2), [0.5, 1.5]),
        ValueError,
        "`fractions` must be non-empty and in (0, 1], got [0.5, 1.5]",
    ),
    (
        lambda: time_to_fit([0.0, 1.0], np.ones((2, 3)), final_loss=np.zeros(2)),
        ValueError,
        "`final_loss` must broadcast to the batch shape (3,) of `loss`, got shape (2,)",
    ),
    (
        lambda: regime(0.1, threshold=-1.0),
        ValueError,
        "`threshold` must be a finite number > 0, got -1.0",
    ),
    (
        lambda: regime([-0.5, 0.1]),
        ValueError,
        "`kernel_distance` must be in [0, 2] or NaN (output of kernel_distance), got "
        "min -0.5, max 0.1",
    ),
]


@pytest.mark.parametrize(("call", "error", "message"), BAD_INPUT)
def test_bad_input_messages(call, error, message):
    with pytest.raises(error, match=f"^{re.escape(message)}$"):
        call()


def test_public_names_exported():
    for name in metrics.__all__:
        assert hasattr(metrics, name)


def test_lowest_loss_is_the_best_rank_r_approximation(rng):
    syx = rng.standard_normal((4, 5))
    U, s, Vt = np.linalg.svd(syx, full_matrices=False)
    for r in range(1, 6):
        best = U[:, :r] * s[:r] @ Vt[:r]  # Eckart–Young truncation
        expected = metrics.loss(best, syx)
        assert float(metrics.lowest_loss(syx, r)) == pytest.approx(float(expected), abs=1e-12)
        # and no random rank-r map does better
        W = rng.standard_normal((4, r)) @ rng.standard_normal((r, 5))
        assert metrics.loss(W, syx) >= metrics.lowest_loss(syx, r)


# --------------------------------------------------------------------------------------
# fast paths of the shard solver (issue 11): two-layer kernel distance, singular values
# --------------------------------------------------------------------------------------

#: |fast − reference| ≤ RTOL_FAST·|reference| + ATOL_FAST for the kernel distance: both use
#: the same expansions, so they differ by round-off only (the kernel form has an absolute
#: error ~ε, hence the absolute floor for S ≈ 0).
RTOL_FAST, ATOL_FAST = 1e-10, 1e-14
EPS = np.finfo(float).eps


def _trajectory_grams(rng, n_in, n_hidden, n_out, n_t=7, n_runs=9):
    """Two-layer nets at n_t "times" × n_runs runs (random walks from random inits over
    scales 1e-80 … 1e80, one zero net): explicit grams and their (W2W2ᵀ, W1ᵀW1) blocks."""
    scale = 10.0 ** np.linspace(-80, 80, n_runs)
    W1 = scale[:, None, None] ** 0.5 * rng.standard_normal((n_runs, n_hidden, n_in))
    W2 = scale[:, None, None] ** 0.5 * rng.standard_normal((n_runs, n_out, n_hidden))
    W1[0], W2[0] = 0.0, 0.0  # zero kernel: S is NaN
    steps = 10.0 ** rng.uniform(-12, 0, (n_t, n_runs, 1, 1))
    W1t = W1 * (1 + steps * rng.standard_normal((n_t, n_runs, n_hidden, n_in)))
    W2t = W2 * (1 + steps * rng.standard_normal((n_t, n_runs, n_out, n_hidden)))
    W1t[0], W2t[0] = W1, W2
    g_t = ntk_grams([W1t, W2t])
    out, inn = g_t.out_grams[..., 0, :, :], g_t.in_grams[..., 1, :, :]
    return g_t, out, inn


@pytest.mark.parametrize("shape", [(3, 2, 4), (4, 4, 4), (5, 3, 2), (8, 8, 8)])
def test_two_layer_kernel_distance_equals_the_generic_one(rng, shape):
    g_t, out, inn = _trajectory_grams(rng, *shape)
    g_0 = KernelGrams(g_t.out_grams[0], g_t.in_grams[0])
    ref = kernel_distance(g_0, g_t)
    fast = metrics.two_layer_kernel_distance(out[0], inn[0], out, inn)
    assert fast.shape == ref.shape
    assert np.array_equal(np.isnan(fast), np.isnan(ref)) and np.isnan(ref[:, 0]).all()
    ok = ~np.isnan(ref)
    assert np.all(np.abs(fast[ok] - ref[ok]) <= RTOL_FAST * ref[ok] + ATOL_FAST)
    assert np.all(fast[0, 1:] == 0.0)  # S(0, 0)
    assert ref[ok].max() > 1e-3 and ref[ok][ref[ok] > 0].min() < 1e-15  # both regimes


def test_two_layer_kernel_distance_broadcasts_and_checks(rng):
    _, out, inn = _trajectory_grams(rng, 3, 2, 4)
    full = metrics.two_layer_kernel_distance(out[0], inn[0], out, inn)
    one = metrics.two_layer_kernel_distance(out[0, 3], inn[0, 3], out[:, 3], inn[:, 3])
    np.testing.assert_allclose(one, full[:, 3], rtol=1e-14, atol=1e-300)
    bad = out.copy()
    bad[2, 4, 0, 1] = np.inf
    with pytest.raises(ValueError, match="`out_t` must be finite, but 1 entries are NaN or inf"):
        metrics.two_layer_kernel_distance(out[0], inn[0], bad, inn)
    with pytest.raises(ValueError, match=r"`in_t` must have shape \(\.\.\., N_i, N_i\)"):
        metrics.two_layer_kernel_distance(out[0], inn[0], out, out)


def _with_singular_values(rng, s, n_out, n_in, n_batch):
    """Random matrices U diag(s) Vᵀ, (n_batch, N_o, N_i)."""
    k = min(n_out, n_in)
    U = np.linalg.qr(rng.standard_normal((n_batch, n_out, k)))[0]
    V = np.linalg.qr(rng.standard_normal((n_batch, n_in, k)))[0]
    return (U * s[..., None, :]) @ np.swapaxes(V, -1, -2)


def assert_singular_values_close(fast, ref, rank=None):
    """Relative 1e-8 for σ ≥ 1e-4·σ_max, absolute 8ε·σ_max below (and beyond the rank)."""
    top = ref[..., :1]
    big = ref >= 1e-4 * top
    if rank is not None:
        big[..., rank:] = False
    assert np.all(np.abs(fast - ref)[big] <= 1e-8 * ref[big])
    assert np.all((np.abs(fast - ref) <= 8 * EPS * top)[~big])


@pytest.mark.parametrize("n_out,n_in", [(4, 4), (3, 5), (6, 2), (8, 8)])
def test_singular_values_match_svd_over_many_decades(rng, n_out, n_in):
    k = min(n_out, n_in)
    n = 400
    top = 10.0 ** rng.uniform(-150, 150, (n, 1))
    s = np.sort(top * 10.0 ** rng.uniform(-12, 0, (n, k)), axis=-1)[:, ::-1]
    s[: n // 4] = top[: n // 4] * 10.0 ** rng.uniform(-3, 0, (n // 4, k))  # the eigvalsh path
    s[:5] = 0.0
    W = _with_singular_values(rng, s, n_out, n_in, n)
    fast = metrics.singular_values(W)
    ref = np.linalg.svd(W, compute_uv=False)
    assert fast.shape == ref.shape and np.all(np.diff(fast, axis=-1) <= 0)
    assert_singular_values_close(fast, ref)
    assert np.all(fast[:5] == 0.0)


def test_singular_values_rank_and_factors(rng):
    n, n_out, n_in, h = 300, 6, 5, 3
    scale = 10.0 ** rng.uniform(-100, 100, (n, 1, 1))
    Y_o = scale * rng.standard_normal((n, n_out, h)) * 10.0 ** rng.uniform(-4, 0, (n, 1, h))
    Y_i = rng.standard_normal((n, n_in, h))
    Y_i[:3, :, 2] = 0.0  # rank-deficient factor: Y_iᵀY_i is singular, redone by SVD
    W = Y_o @ np.swapaxes(Y_i, -1, -2)
    ref = np.linalg.svd(W, compute_uv=False)
    for kw in ({}, {"rank": h}, {"factors": (Y_o, Y_i)}, {"rank": h, "factors": (Y_o, Y_i)}):
        fast = metrics.singular_values(W, **kw)
        assert_singular_values_close(fast, ref, rank=h)
        if kw:
            assert np.all(fast[:, h:] == 0.0)
    with pytest.raises(np.linalg.LinAlgError, match="SVD did not converge"):
        metrics.singular_values(np.where(np.arange(n)[:, None, None] == 7, np.nan, W))


@pytest.mark.parametrize("shape", [(4, 4, 4), (8, 4, 8), (3, 2, 5), (6, 3, 4)])
def test_singular_values_of_exact_trajectories_at_extreme_inits(shape):
    from lrsweep.exact import qqt_factor, qqt_setup
    from lrsweep.init import lambda_balanced_stack
    from lrsweep.tasks import random_regression

    n_in, n_h, n_out = shape
    lam = np.array([0.0, 1e3, -1e3, 1e-2, -3.0, 0.0, 1e3, -1e3])
    scale = np.array([1e-12, 1e-12, 1e-12, 1e-12, 1e-12, 3.0, 1e-3, 1e2])
    ws = lambda_balanced_stack(lam, [n_in, n_h, n_out], scale, list(range(lam.size)))
    task = random_regression(n_in, n_out, seed=4)
    t = np.concatenate([[0.0], np.geomspace(0.03, 30.0, 60)])
    Y = qqt_factor(qqt_setup(*ws, task.sigma_yx, lam=lam), t)
    Y_o, Y_i = Y[..., n_in:, :], Y[..., :n_in, :]
    W = Y_o @ np.swapaxes(Y_i, -1, -2)
    ref = np.linalg.svd(W, compute_uv=False)
    fast = metrics.singular_values(W, rank=min(shape), factors=(Y_o, Y_i))
    assert_singular_values_close(fast, ref, rank=min(shape))
    assert (ref[..., -1] < 1e-4 * ref[..., 0]).any()  # the SVD fallback is exercised


def test_trajectory_measures_do_not_depend_on_their_blocks(rng, monkeypatch):
    _, out, inn = _trajectory_grams(rng, 3, 2, 4, n_t=11, n_runs=6)
    W = rng.standard_normal((11, 6, 4, 3)) * 10.0 ** rng.uniform(-5, 0, (11, 6, 1, 3))
    whole = (
        metrics.two_layer_kernel_distance(out[0], inn[0], out, inn),
        metrics.singular_values(W),
    )
    monkeypatch.setattr(metrics, "_BLOCK_FLOATS", 100)  # blocks of one or two times
    blocked = (
        metrics.two_layer_kernel_distance(out[0], inn[0], out, inn),
        metrics.singular_values(W),
    )
    for a, b in zip(whole, blocked, strict=True):
        np.testing.assert_array_equal(a, b)
