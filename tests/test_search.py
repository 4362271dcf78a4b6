"""Tests of lrsweep.search: brackets, the safeguarded root finder, crossings on many lines."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lrsweep.search import SearchSpec, find_crossings


def spec(**kw) -> SearchSpec:
    base = dict(min=0.01, max=100.0, per_side=8, sides="both", rtol=1e-6, measure="m",
                threshold=0.5)
    return SearchSpec(**{**base, **kw})


def bisect(f, lo: float, hi: float, tol: float = 1e-12) -> float:
    """Brute-force reference: plain bisection in log|λ| on a sign change of f."""
    a, b = np.log(lo), np.log(hi)
    fa = f(np.exp(a))
    while b - a > tol:
        c = (a + b) / 2
        fc = f(np.exp(c))
        if np.sign(fc) == np.sign(fa):
            a, fa = c, fc
        else:
            b = c
    return np.exp((a + b) / 2)


@given(
    roots=st.lists(st.floats(0.02, 60.0), min_size=1, max_size=6),
    power=st.floats(0.5, 4.0),
    rtol=st.sampled_from([1e-3, 1e-6, 1e-9]),
)
def test_crossings_of_monotone_lines_match_bisection(roots, power, rtol):
    roots = np.asarray(roots)
    sp = spec(rtol=rtol)

    def measure(line, lam):
        return 1 / (1 + (np.abs(lam) / roots[line]) ** power)  # 0.5 at |λ| = root

    out = find_crossings(measure, np.ones(roots.size), sp)
    assert (out.status == "converged").all() and (out.crossing == 0).all()
    for i in range(roots.size):
        ref = bisect(lambda lam, i=i: measure(np.array([i]), np.array([lam]))[0] - 0.5,
                     0.01, 100.0)
        assert abs(out.lambda_star[i] - ref) <= rtol * ref
        slack = 1e-11 * ref  # the reference's own bisection tolerance
        assert out.bracket_lo[i] - slack <= ref <= out.bracket_hi[i] + slack
        assert out.bracket_hi[i] - out.bracket_lo[i] <= rtol * ref * 1.0001


def test_non_monotone_measure_reports_every_crossing_outward():
    # a bump: rises through 0.5 at |λ| = 0.1 and falls back through it at |λ| = 10
    def measure(line, lam):
        x = np.log10(np.abs(lam))
        return 1.0 - x**2  # 0.5 at x = ±√0.5

    out = find_crossings(measure, np.array([-1.0, 1.0]), spec(per_side=12))
    assert out.line.tolist() == [0, 0, 1, 1] and out.crossing.tolist() == [0, 1, 0, 1]
    expect = 10 ** np.array([-np.sqrt(0.5), np.sqrt(0.5)])
    np.testing.assert_allclose(np.abs(out.lambda_star), np.tile(expect, 2), rtol=1e-6)
    assert (np.sign(out.lambda_star) == [-1, -1, 1, 1]).all()


def test_lines_without_crossing_record_the_measure_range():
    out = find_crossings(lambda line, lam: np.full(lam.size, 0.3), np.array([1.0]), spec())
    assert out.status.tolist() == ["none"] and out.crossing.tolist() == [-1]
    assert np.isnan(out.lambda_star[0])
    assert out.measure_min[0] == out.measure_max[0] == 0.3
    assert (out.bracket_lo[0], out.bracket_hi[0]) == (0.01, 100.0)


def test_a_failed_evaluation_is_a_failed_crossing_with_a_reason():
    def measure(line, lam):
        m = 1 / (1 + np.abs(lam))
        return np.where(line == 1, np.nan, m)

    out = find_crossings(measure, np.array([1.0, 1.0]), spec())
    assert out.status.tolist() == ["converged", "failed"]
    assert "NaN" in out.reason[1]


def test_every_iteration_is_one_batched_call():
    calls = []

    def measure(line, lam):
        calls.append(np.asarray(line).size)
        return 1 / (1 + (np.abs(lam) / (1 + line)) ** 2)

    n = 50
    out = find_crossings(measure, np.where(np.arange(n) % 2, 1.0, -1.0), spec())
    assert (out.status == "converged").all()
    assert calls[0] == n * 8  # all bracket points at once
    assert len(calls) <= 12 and max(calls[1:]) <= n  # then one point per open bracket
    assert (out.evaluations <= 8 + 12).all()


@pytest.mark.parametrize("sides", ["positive", "negative"])
def test_sides(sides):
    sp = spec(sides=sides)
    assert sp.signs() == ((1.0,) if sides == "positive" else (-1.0,))
