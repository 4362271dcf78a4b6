"""Deep (depth L ≥ 2) initialisations: λ-balance of every pair, product singular values,
admissibility rules and their error messages."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lrsweep.init import (
    as_generator,
    balanced_singular_values,
    check_admissible_deep,
    deep_balanced_singular_values,
    gaussian_deep,
    imbalance_report,
    imbalances,
    lambda_balanced,
    lambda_balanced_deep,
    lambda_balanced_stack,
    layer_widths,
)
from lrsweep.tasks import haar_orthogonal, random_regression

EPS = np.finfo(float).eps


def assert_balanced(weights, lam, rtol=1e-13):
    """Every W_{l+1}ᵀW_{l+1} − W_lW_lᵀ equals λI to round-off of the terms' size."""
    for l, d in enumerate(imbalances(weights)):  # noqa: E741
        size = np.linalg.norm(weights[l + 1], 2) ** 2 + np.linalg.norm(weights[l], 2) ** 2
        err = np.abs(d - lam * np.eye(d.shape[0])).max()
        assert err <= rtol * max(size, 1.0), (l, err, size)


# ---------------------------------------------------------------- per-mode singular values


@given(
    lam=st.floats(-1e3, 1e3),
    a=st.one_of(st.just(0.0), st.floats(1e-100, 1e2)),
    depth=st.integers(2, 7),
)
def test_deep_singular_values_solve_the_chain(lam, a, depth):
    s = deep_balanced_singular_values(lam, np.array([a]), depth)[:, 0]
    assert s.shape == (depth,) and np.all(s >= 0)
    sq = s**2
    assert np.allclose(np.diff(sq), lam, rtol=0, atol=8 * EPS * max(sq.max(), 1.0))
    assert np.prod(s) == pytest.approx(a, rel=1e-13, abs=1e-300)


def test_deep_singular_values_depth_two_is_the_pair_formula():
    lam = np.array([-3.0, 0.0, 0.5, 1e3])[:, None]
    a = np.array([0.0, 1e-9, 0.3, 7.0])
    s = deep_balanced_singular_values(lam, a, 2)
    s1, s2 = balanced_singular_values(lam, a)
    assert np.array_equal(s[0], s1) and np.array_equal(s[1], s2)


def test_deep_singular_values_limits():
    # λ = 0: all layers equal, a^{1/L}
    s = deep_balanced_singular_values(0.0, np.array([8.0]), 3)[:, 0]
    assert np.allclose(s, 2.0)
    # a = 0: the smallest layer is exactly zero, the others √(j|λ|)
    s = deep_balanced_singular_values(-2.0, np.array([0.0]), 4)[:, 0]
    assert np.allclose(s**2, [6.0, 4.0, 2.0, 0.0], rtol=0, atol=1e-15)
    # tiny a against large λ: the small layer carries a / ∏ √(jλ) with full relative accuracy
    s = deep_balanced_singular_values(1e3, np.array([1e-12]), 4)[:, 0]
    assert s[0] == pytest.approx(1e-12 / np.sqrt(1e3 * 2e3 * 3e3), rel=1e-12)


def test_deep_singular_values_rejects_negative_products():
    with pytest.raises(ValueError, match="must be finite and non-negative"):
        deep_balanced_singular_values(1.0, np.array([-1.0]), 3)


# ---------------------------------------------------------------- λ-balanced deep weights

ADMISSIBLE = [
    (0.7, [3, 3, 3, 3]),
    (-0.7, [3, 3, 3, 3]),
    (2.0, [4, 2, 3, 3, 5]),  # λ > 0: hidden widths non-decreasing to the output
    (-2.0, [6, 5, 3, 2, 4]),  # λ < 0: widths non-increasing from the input
    (0.0, [2, 5, 1, 6, 3]),  # λ = 0: anything, including interior bottlenecks
    (1e3, [3, 3, 4, 5]),
    (-1e3, [5, 4, 3, 3]),
    (0.3, [5, 2, 4]),  # depth 2 with N_h < N_i: extra input directions
]


@pytest.mark.parametrize(("lam", "widths"), ADMISSIBLE)
def test_lambda_balanced_deep_balances_every_pair(lam, widths):
    ws = lambda_balanced_deep(lam, widths, scale=0.4, seed=3)
    assert [w.shape for w in ws] == [(widths[i + 1], widths[i]) for i in range(len(widths) - 1)]
    assert_balanced(ws, lam)
    lam_hat, off = imbalance_report(ws)
    assert np.allclose(lam_hat, lam, rtol=1e-12, atol=1e-12)
    assert np.all(off < 1e-14)


@pytest.mark.parametrize(("lam", "widths"), ADMISSIBLE)
def test_lambda_balanced_deep_product_singular_values(lam, widths):
    r = min(widths)
    a = np.linspace(0.2, 1.5, r)
    ws = lambda_balanced_deep(lam, widths, scale=a, seed=5)
    W = ws[0]
    for w in ws[1:]:
        W = w @ W
    sv = np.linalg.svd(W, compute_uv=False)
    expect = np.zeros(min(widths[0], widths[-1]))
    expect[:r] = np.sort(a)[::-1]
    assert np.allclose(sv, expect, rtol=1e-12, atol=1e-12 * max(1.0, abs(lam)) ** (len(ws) / 2))


def test_lambda_balanced_deep_aligned_gives_task_modes():
    task = random_regression(3, 4, seed=2)
    U, _, V = task.svd
    a = np.array([0.5, 0.2, 0.1])
    ws = lambda_balanced_deep(0.8, [3, 3, 3, 4], scale=a, seed=0, aligned=task)
    W = ws[2] @ ws[1] @ ws[0]
    expect = np.zeros((4, 3))
    expect[np.arange(3), np.arange(3)] = a
    assert np.allclose(U.T @ W @ V, expect, atol=1e-14)
    with pytest.raises(ValueError, match=r"`aligned` must give U \(4, 4\) and V \(3, 3\)"):
        lambda_balanced_deep(0.8, [3, 3, 3, 4], scale=a, aligned=(np.eye(3), np.eye(3)))


def test_lambda_balanced_deep_depth_two_matches_lambda_balanced():
    for lam, (n_i, n_h, n_o) in [(1.5, (4, 3, 5)), (-0.5, (5, 2, 3)), (0.0, (3, 6, 2))]:
        W1, W2 = lambda_balanced(lam, n_i, n_h, n_o, scale=0.7, seed=11)
        ws = lambda_balanced_deep(lam, [n_i, n_h, n_o], scale=0.7, seed=11)
        assert np.array_equal(ws[0], W1) and np.array_equal(ws[1], W2)


def test_lambda_balanced_deep_draw_order_is_documented():
    # hidden bases first (in order), then U, then V: W_1 = R_1 S_1 Vᵀ
    ws = lambda_balanced_deep(0.0, [3, 3, 3], scale=1.0, seed=7)
    rng = as_generator(7)
    R1 = haar_orthogonal(3, rng)
    U = haar_orthogonal(3, rng)
    V = haar_orthogonal(3, rng)
    assert np.allclose(ws[0], R1 @ V.T) and np.allclose(ws[1], U @ R1.T)


def test_lambda_balanced_deep_is_reproducible_and_seed_dependent():
    a = lambda_balanced_deep(1.0, [3, 3, 4], 0.1, seed=np.random.SeedSequence(4))
    b = lambda_balanced_deep(1.0, [3, 3, 4], 0.1, seed=np.random.SeedSequence(4))
    c = lambda_balanced_deep(1.0, [3, 3, 4], 0.1, seed=5)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not np.allclose(a[0], c[0])


@pytest.mark.parametrize(
    "widths, signs",
    [
        ([4, 4, 4], (-1, 0, 1)),
        ([8, 4, 8], (-1, 0, 1)),
        ([8, 8, 8], (-1, 0, 1)),
        ([3, 5, 5, 6], (0, 1)),
        ([6, 4, 3, 2], (-1, 0)),
        ([5, 5, 5, 5, 5], (-1, 0, 1)),
        ([2, 7, 3], (0,)),
    ],
)
@pytest.mark.parametrize("aligned", [False, True])
def test_lambda_balanced_stack_is_bitwise_lambda_balanced_deep_per_point(widths, signs, aligned):
    # the pipeline draws a chunk's inits at once: every point must get exactly its own init
    rng = np.random.default_rng(5)
    n = 25
    lam = rng.choice(signs, n) * 10.0 ** rng.uniform(-2, 3, n)
    lam[:3] = [0.0 if 0 in signs else lam[0], 1e3 * max(signs), 1e3 * min(signs)]
    scale = 10.0 ** rng.uniform(-12, 3, n)
    scale[:2] = [0.0, 1e-12]
    task = random_regression(widths[0], widths[-1], seed=3) if aligned else None
    seeds = [np.random.SeedSequence([2, i, 7]) for i in range(n)]
    stacked = lambda_balanced_stack(lam, widths, scale, seeds, aligned=task)
    assert [w.shape for w in stacked] == [
        (n, o, i) for i, o in zip(widths, widths[1:], strict=False)
    ]
    for i in range(n):
        ws = lambda_balanced_deep(
            lam[i], widths, scale[i], np.random.SeedSequence([2, i, 7]), aligned=task
        )
        for w, ws_i in zip(stacked, ws, strict=True):
            assert np.array_equal(w[i], ws_i)
    per_mode = np.tile(scale[:, None], min(widths))  # one scale per mode: the same inits
    again = lambda_balanced_stack(lam, widths, per_mode, seeds, aligned=task)
    assert all(np.array_equal(a, b) for a, b in zip(again, stacked, strict=True))


def test_lambda_balanced_stack_rejects_before_drawing():
    rng = np.random.default_rng(0)
    state = rng.bit_generator.state
    with pytest.raises(ValueError, match="`lam`=0.5 > 0 needs widths non-decreasing"):
        lambda_balanced_stack([0.5, 2.0], [3, 4, 2], [0.1, 0.1], [rng, rng])
    with pytest.raises(ValueError, match="`scale` must be non-negative"):
        lambda_balanced_stack([0.5, 2.0], [3, 3, 3], [0.1, -1.0], [rng, rng])
    with pytest.raises(ValueError, match="`lam` must be finite"):
        lambda_balanced_stack([np.nan, 2.0], [3, 3, 3], [0.1, 0.1], [rng, rng])
    with pytest.raises(ValueError, match="one seed per point"):
        lambda_balanced_stack([0.5, 2.0], [3, 3, 3], [0.1, 0.1], [rng])
    assert rng.bit_generator.state == state
    assert [w.shape for w in lambda_balanced_stack([], [3, 2, 4], [], [])] == [(0, 2, 3), (0, 4, 2)]


@given(
    widths=st.lists(st.integers(1, 5), min_size=3, max_size=6),
    lam=st.sampled_from([-1.3, 0.0, 0.6]),
)
def test_admissibility_rule_is_exactly_the_constructible_set(widths, lam):
    hidden = widths[1:-1]
    if lam > 0:
        ok = all(x <= y for x, y in zip(widths[1:-1], widths[2:], strict=True))
    elif lam < 0:
        ok = all(x >= y for x, y in zip(widths[:-2], widths[1:-1], strict=True))
    else:
        ok = True
    assert hidden  # depth >= 2
    if ok:
        assert_balanced(lambda_balanced_deep(lam, widths, scale=0.5, seed=1), lam)
    else:
        with pytest.raises(ValueError, match="needs widths"):
            check_admissible_deep(lam, widths)


def test_admissibility_messages_name_the_rule_and_the_layers():
    with pytest.raises(
        ValueError,
        match=r"`lam`=1 > 0 needs widths non-decreasing from the first hidden layer to the "
        r"output, N_1 <= \.\.\. <= N_\{L-1\} <= N_o \(got widths=\[3, 5, 4, 6\]: N_1=5 > "
        r"N_2=4\); narrow layer 1, widen layer 2 or use lam <= 0",
    ):
        lambda_balanced_deep(1.0, [3, 5, 4, 6], scale=0.1)
    with pytest.raises(
        ValueError, match=r"`lam`=-2 < 0 needs widths non-increasing .* N_1=4 > N_0=3"
    ):
        lambda_balanced_deep(-2.0, [3, 4, 2], scale=0.1)
    # the benchmark architecture 8-16-16-16-8 only admits λ = 0
    with pytest.raises(ValueError, match="N_3=16 > N_4=8"):
        lambda_balanced_deep(0.1, [8, 16, 16, 16, 8], scale=0.1)
    assert_balanced(lambda_balanced_deep(0.0, [8, 16, 16, 16, 8], scale=0.1), 0.0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"widths": [3, 3]}, r"`widths` must list \[N_i, N_1, \.\.\., N_o\] with at least 3"),
        ({"widths": [3, 0, 3]}, "`widths` must be a positive integer"),
        ({"scale": -1.0}, r"`scale` must be a finite number >= 0"),
        ({"scale": [0.1, 0.2]}, r"`scale` must be a number or have min\(widths\)=3 entries, got 2"),
        ({"lam": np.inf}, "`lam` must be finite"),
    ],
)
def test_lambda_balanced_deep_rejects_bad_arguments(kwargs, message):
    args = {"lam": 0.5, "widths": [3, 3, 3, 3], "scale": 0.1} | kwargs
    with pytest.raises(ValueError, match=message):
        lambda_balanced_deep(**args)


# ---------------------------------------------------------------- Gaussian and widths


def test_gaussian_deep_shapes_scale_and_imbalance():
    ws = gaussian_deep([4, 30, 30, 2], std=0.5, seed=0)
    assert [w.shape for w in ws] == [(30, 4), (30, 30), (2, 30)]
    assert np.std(ws[1]) == pytest.approx(0.5, rel=0.1)
    lam, off = imbalance_report(ws)
    assert lam.shape == (2,) and np.all(off > 0.05)  # far from balanced
    per_layer = gaussian_deep([2, 2, 2], std=[1.0, 0.0], seed=0)
    assert np.all(per_layer[1] == 0)
    with pytest.raises(ValueError, match="`std` must be a number or have L=2 entries, got 3"):
        gaussian_deep([2, 2, 2], std=[1.0, 1.0, 1.0])


def test_imbalance_report_is_batched():
    runs = [
        lambda_balanced_deep(lam, [2, 2, 2, 2], 0.3, seed=i) for i, lam in enumerate([-1, 0, 2])
    ]
    ws = [np.stack([r[k] for r in runs]) for k in range(3)]
    lam, off = imbalance_report(ws)
    assert lam.shape == (3, 2) and np.allclose(lam, [[-1, -1], [0, 0], [2, 2]], atol=1e-13)
    assert np.all(off < 1e-14)


def test_layer_widths():
    assert layer_widths(8, 16, 8, depth=4) == [8, 16, 16, 16, 8]
    assert layer_widths(3, [4, 5], 2) == [3, 4, 5, 2]
    assert layer_widths(3, [4, 5], 2, depth=3) == [3, 4, 5, 2]
    with pytest.raises(ValueError, match="`depth` is required when `hidden` is a single width"):
        layer_widths(3, 4, 2)
    with pytest.raises(ValueError, match=r"`depth`=4 must equal len\(hidden\) \+ 1 = 3"):
        layer_widths(3, [4, 5], 2, depth=4)
    with pytest.raises(ValueError, match="`depth` must be >= 2"):
        layer_widths(3, 4, 2, depth=1)
