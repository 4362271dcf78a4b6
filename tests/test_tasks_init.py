"""Tasks are exactly whitened; λ-balanced inits are exact; bad input is rejected up front."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lrsweep.init import balanced_singular_values, gaussian, imbalances, lambda_balanced
from lrsweep.tasks import (
    from_arrays,
    load_dataset,
    make_task,
    random_regression,
    semantic_hierarchy,
)


@given(
    n_in=st.integers(1, 8),
    n_out=st.integers(1, 8),
    extra=st.integers(0, 5),
    seed=st.integers(0, 1000),
)
def test_random_regression_is_whitened_and_has_the_chosen_spectrum(n_in, n_out, extra, seed):
    m = min(n_in, n_out)
    s = np.linspace(2.0, 0.1, m)
    task = random_regression(n_in, n_out, n_in + extra, singular_values=s, seed=seed)
    np.testing.assert_allclose(task.sigma_xx, np.eye(n_in), atol=1e-12)
    np.testing.assert_allclose(np.linalg.svd(task.sigma_yx, compute_uv=False), s, atol=1e-12)
    U, sv, V = task.svd
    np.testing.assert_allclose(U[:, :m] * sv @ V[:, :m].T, task.sigma_yx, atol=1e-12)


def test_random_regression_is_reproducible_and_seed_dependent():
    a, b, c = (random_regression(4, 3, seed=s).sigma_yx for s in (1, 1, 2))
    assert np.array_equal(a, b) and not np.allclose(a, c)


def test_semantic_hierarchy_structure():
    task = semantic_hierarchy()
    np.testing.assert_allclose(task.sigma_xx, np.eye(8), atol=1e-14)
    sv = np.linalg.svd(task.sigma_yx, compute_uv=False)
    np.testing.assert_allclose(sv, [1, 1, 2**-0.5, 2**-0.5, 0.5, 0.5, 0.5, 0.5], atol=1e-12)
    # items of one branch are more similar to each other than across branches
    sim = task.Y.T @ task.Y
    assert sim[0, 1] > sim[0, 2] > sim[0, 4]


def test_user_data_is_whitened_on_load(rng, tmp_path):
    x = rng.standard_normal((50, 3)) @ np.array([[2, 0.5, 0], [0, 1, 0.3], [0, 0, 0.2]])
    y = x @ rng.standard_normal((3, 2))
    task = from_arrays(x, y)
    np.testing.assert_allclose(task.sigma_xx, np.eye(3), atol=1e-10)
    assert task.n_samples == 50 and task.n_out == 2
    frame = pd.DataFrame(np.hstack([x, y]), columns=["x0", "x1", "x2", "y0", "y1"])
    for path in (tmp_path / "d.parquet", tmp_path / "d.csv"):
        frame.to_parquet(path) if path.suffix == ".parquet" else frame.to_csv(path, index=False)
        np.testing.assert_allclose(load_dataset(path).sigma_yx, task.sigma_yx, atol=1e-10)
    np.savez(tmp_path / "d.npz", X=x, Y=y)
    np.testing.assert_allclose(load_dataset(tmp_path / "d.npz").sigma_yx, task.sigma_yx, atol=1e-10)


def test_user_data_that_cannot_be_whitened(rng):
    with pytest.raises(ValueError, match="need at least n_in=4 samples, got P=3"):
        from_arrays(rng.standard_normal((3, 4)), rng.standard_normal((3, 1)))
    x = rng.standard_normal((20, 2))
    with pytest.raises(ValueError, match="input covariance is rank-deficient"):
        from_arrays(np.hstack([x, x[:, :1]]), rng.standard_normal((20, 1)))
    with pytest.raises(ValueError, match="same number of rows"):
        from_arrays(x, rng.standard_normal((19, 1)))


def test_dataset_file_errors(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        load_dataset(tmp_path / "missing.csv")
    pd.DataFrame({"a": [1.0, 2.0], "y": [1.0, 0.0]}).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(ValueError, match="no input columns"):
        load_dataset(tmp_path / "bad.csv")
    with pytest.raises(ValueError, match="must be one of 'random', 'hierarchy', 'file'"):
        make_task("mnist")


# ---- λ-balanced initialisation -------------------------------------------------------


@given(
    lam=st.one_of(st.just(0.0), st.floats(-1e3, 1e3)),
    n_in=st.integers(1, 6),
    n_hidden=st.integers(1, 6),
    n_out=st.integers(1, 6),
    scale=st.floats(0.0, 10.0),
    seed=st.integers(0, 2**20),
)
def test_lambda_balanced_is_exact(lam, n_in, n_hidden, n_out, scale, seed):
    if (lam > 0 and n_hidden > n_out) or (lam < 0 and n_hidden > n_in):
        with pytest.raises(ValueError, match="needs n_hidden <="):
            lambda_balanced(lam, n_in, n_hidden, n_out, scale, seed=seed)
        return
    W1, W2 = lambda_balanced(lam, n_in, n_hidden, n_out, scale, seed=seed)
    assert W1.shape == (n_hidden, n_in) and W2.shape == (n_out, n_hidden)
    (gap,) = imbalances([W1, W2])
    np.testing.assert_allclose(gap, lam * np.eye(n_hidden), atol=1e-12 * (1 + abs(lam) + scale))
    r = min(n_in, n_hidden, n_out)
    sv = np.linalg.svd(W2 @ W1, compute_uv=False)[:r]
    np.testing.assert_allclose(sv, scale, atol=1e-9 * (1 + scale + abs(lam)))


def test_balanced_singular_values_solve_their_equations_without_cancellation():
    lam = np.array([-1e6, -3.0, 0.0, 3.0, 1e6])
    a = np.full(5, 1e-3)
    s1, s2 = balanced_singular_values(lam, a)
    np.testing.assert_allclose(s1 * s2, a, rtol=1e-14)
    np.testing.assert_allclose(s2**2 - s1**2, lam, rtol=1e-14, atol=1e-15)


def test_task_aligned_init_shares_the_task_singular_vectors():
    task = random_regression(4, 3, seed=0)
    W1, W2 = lambda_balanced(0.5, 4, 3, 3, [0.3, 0.2, 0.1], seed=1, aligned=task)
    U, _, V = task.svd
    np.testing.assert_allclose(U.T @ (W2 @ W1) @ V[:, :3], np.diag([0.3, 0.2, 0.1]), atol=1e-12)


def test_init_is_reproducible_and_rejects_bad_arguments():
    a = lambda_balanced(1.0, 3, 3, 3, 0.1, seed=4)
    b = lambda_balanced(1.0, 3, 3, 3, 0.1, seed=4)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    with pytest.raises(ValueError, match=r"`lam`=1 > 0 needs n_hidden <= n_out \(got n_hidden=4"):
        lambda_balanced(1.0, 5, 4, 2, 0.1)
    with pytest.raises(ValueError, match=r"`lam`=-1 < 0 needs n_hidden <= n_in"):
        lambda_balanced(-1.0, 2, 4, 5, 0.1)
    with pytest.raises(ValueError, match="`scale` must be non-negative"):
        lambda_balanced(0.0, 2, 2, 2, [-0.1, 0.1])
    with pytest.raises(ValueError, match="`scale` must be a number or have min"):
        lambda_balanced(0.0, 2, 2, 2, [0.1, 0.1, 0.1])
    with pytest.raises(ValueError, match="`lam` must be finite"):
        lambda_balanced(np.inf, 2, 2, 2, 0.1)
    with pytest.raises(ValueError, match="`n_hidden` must be a positive integer"):
        lambda_balanced(0.0, 2, 0, 2, 0.1)


def test_gaussian_init_reports_its_imbalance():
    W1, W2 = gaussian(6, 5, 4, std=0.5, seed=3)
    assert W1.shape == (5, 6) and W2.shape == (4, 5)
    (gap,) = imbalances([W1, W2])
    offdiag = gap - np.diag(np.diag(gap))
    assert np.linalg.norm(offdiag) > 0.1  # a random init is far from λ-balanced
