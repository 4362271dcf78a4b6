"""Tests of lrsweep.search: brackets, the safeguarded root finder, crossings on many lines."""

from __future__ import annotations

import numpy as np
import pandas as pd
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
    # then one point per open bracket: superlinear, so a dozen or so iterations take a
    # bracket 10^(4/7) wide to rtol 1e-6 (bisection alone would need 21)
    assert len(calls) - 1 <= 15 and max(calls[1:]) <= n
    assert (out.evaluations <= 8 + 15).all()


@pytest.mark.parametrize("sides", ["positive", "negative"])
def test_sides(sides):
    sp = spec(sides=sides)
    assert sp.signs() == ((1.0,) if sides == "positive" else (-1.0,))


# ------------------------------------------------------------------ through the solvers


def search_sweep(**grid_) -> dict:
    grid_ = {"lambda": {"search": {"per_side": 6, "rtol": 1e-6}}, **grid_}
    return {"time": {"t_max": 30.0, "n_points": 41, "spacing": "log"}, "grid": grid_}


def searched(cfg: dict) -> tuple:
    from lrsweep.grid import plan
    from lrsweep.search import search_shard

    p = plan({"sweeps": {"s": cfg}})["s"]
    out = [search_shard(p.shard_spec(s)) for s in p.shards]
    crossings = pd.concat([c.to_pandas() for _, _, c in out], ignore_index=True)
    runs = pd.concat([r.to_pandas() for r, _, _ in out], ignore_index=True)
    return p, crossings, runs


def measure_of(p, row, lam: float) -> float:
    """The measure at one λ on a crossing's line, solved alone (brute-force reference)."""
    from lrsweep.grid import point_ids
    from lrsweep.solve import solve_points

    spec = p.shard_spec(p.shards[0])
    spec = next(p.shard_spec(s) for s in p.shards
                if p.shard_spec(s).shape.n_in == row.n_in and p.shard_spec(s).shape.n_out
                == row.n_out and p.shard_spec(s).shape.depth == row.depth)
    cols = {"lambda": np.array([lam]), "scale": np.array([row.scale]),
            "seed": np.array([row.seed])}
    shape = {a: np.array([getattr(spec.shape, a)]) for a in ("n_in", "n_out", "width", "depth")}
    cols["point_id"] = point_ids({**shape, **cols})
    table, _ = solve_points(spec.with_points(cols))
    return table.column(p.search.measure)[0].as_py()


@pytest.mark.parametrize(
    ("solver", "shapes"),
    [("exact", [(4, 4), (8, 4), (4, 8)]), ("flow", [(3, 3)])],
)
def test_searched_lambda_star_matches_a_brute_force_bisection(solver, shapes):
    for n_in, n_out in shapes:
        cfg = search_sweep(scale=[0.3], seed=[3], n_in=[n_in], n_out=[n_out],
                           width=[min(n_in, n_out)])
        cfg["solver"] = solver
        if solver == "flow":  # each evaluation is a simulation: a coarser λ*
            cfg["grid"]["lambda"]["search"].update(max=10.0, rtol=1e-4, sides="positive")
        p, crossings, _ = searched(cfg)
        conv = crossings[crossings["status"] == "converged"]
        assert len(conv) >= 1
        brackets = p.search.brackets()
        for row in conv.itertuples():
            mag = abs(row.lambda_star)
            k = np.searchsorted(brackets, mag)
            lo, hi = brackets[k - 1], brackets[k]  # the bracket the search started from
            sign = np.sign(row.lambda_star)
            ref = bisect(lambda m, p=p, row=row, sign=sign: measure_of(p, row, sign * m)
                         - p.search.threshold, lo, hi, tol=p.search.rtol * 1e-4)
            assert abs(mag - ref) <= p.search.rtol * ref, (row, ref)


def test_physics_of_the_searched_boundary():
    _, crossings, runs = searched(search_sweep(scale=[0.1], seed=[0], n_in=[4, 8],
                                               n_out=[4, 8], width=[4],
                                               **{"lambda": {"search": {"max": 100.0}}}))
    conv = crossings[crossings["status"] == "converged"]
    sides = {(r.n_in, r.n_out): set() for r in crossings.itertuples()}
    for r in conv.itertuples():
        sides[(r.n_in, r.n_out)].add(r.side)
    assert sides[(4, 4)] == {"negative", "positive"}  # square: lazy on both sides
    assert sides[(8, 4)] == {"positive"}  # funnel 8-4-4: only λ > 0 turns lazy
    assert sides[(4, 8)] == {"negative"}  # anti-funnel 4-4-8: only λ < 0
    assert sides[(8, 8)] == set()  # bottleneck 8-4-8: rich on all of ±[0.01, 100]
    sq = conv[(conv.n_in == 4) & (conv.n_out == 4)].set_index("side")["lambda_star"]
    np.testing.assert_allclose(sq["positive"], -sq["negative"], rtol=2e-6)  # symmetric
    # nothing computed is thrown away: every evaluation is a run, by role
    assert set(runs["role"]) == {"bracket", "iterate"}
    per_line = runs.groupby(["n_in", "n_out", "role"]).size()
    assert (per_line.xs("bracket", level="role") == 2 * 8).all()


def test_long_horizons_converge_to_the_crossing_of_the_converged_state():
    """S(0, t) → S(0, ∞), which for an isotropic square init is a function of λ and the task
    alone (theory §6.2): its crossing, from the converged QQᵀ (theory §3.4), is the limit."""
    from lrsweep import exact
    from lrsweep.metrics import kernel_distance, ntk_grams_from_qqt
    from lrsweep.tasks import random_regression

    sigma = random_regression(4, 4, seed=0).sigma_yx
    scale = 0.1

    def s_inf(lam: float) -> float:  # isotropic init: W1ᵀW1(0), W2W2ᵀ(0) multiples of I
        big = np.hypot(lam, 2 * scale) / 2 + abs(lam) / 2
        small = scale * (scale / big)
        s1, s2 = (small, big) if lam >= 0 else (big, small)
        q0 = np.zeros((8, 8))
        q0[:4, :4], q0[4:, 4:] = s1 * np.eye(4), s2 * np.eye(4)
        q_inf = exact.converged(sigma, lam)
        g0, g1 = ntk_grams_from_qqt(q0, 4), ntk_grams_from_qqt(q_inf, 4)
        return float(kernel_distance(g0, g1)) - 0.01

    ref = bisect(s_inf, 1.0, 20.0, tol=1e-12)
    got = []
    for t_max in (10.0, 100.0, 1000.0):
        cfg = search_sweep(scale=[scale], seed=[0], n_in=[4], n_out=[4], width=[4])
        cfg["time"]["t_max"] = t_max
        cfg["grid"]["lambda"]["search"]["sides"] = "positive"
        _, crossings, _ = searched(cfg)
        got.append(crossings["lambda_star"].iloc[0])
    errors = np.abs(np.array(got) - ref) / ref
    assert errors[-1] < 1e-5 and errors[0] >= errors[-1], (got, ref)


def test_the_searched_boundary_lies_in_the_grid_bracket():
    """The same lines gridded (10 λ per side, as the default `phase` sweep) and searched:
    λ* falls between the grid values around the grid's interpolated crossing, which is off by
    its interpolation error."""
    from lrsweep.grid import plan
    from lrsweep.merge import search_boundary
    from lrsweep.results import boundary_table, phase_table
    from lrsweep.solve import solve_points

    lines = {"scale": [0.1], "seed": [0, 1, 2], "n_in": [4, 8], "n_out": [4], "width": [4]}
    grid_cfg = search_sweep(**lines)
    grid_cfg["grid"]["lambda"] = {"symlog": {"min": 0.01, "max": 100.0, "per_side": 10}}
    p = plan({"sweeps": {"s": grid_cfg}})["s"]
    runs = pd.concat([solve_points(p.shard_spec(s))[0].to_pandas() for s in p.shards])
    runs["regime"] = ""
    gridded = boundary_table(phase_table(runs), 0.01).set_index("n_in")
    _, crossings, _ = searched(search_sweep(**lines))
    crossings["sweep"] = "s"
    found = search_boundary(crossings).set_index(["n_in", "side"])
    lam_grid = np.unique(runs["lambda"])
    for n_in, side, col in ((4, "positive", "lambda_pos"), (4, "negative", "lambda_neg"),
                            (8, "positive", "lambda_pos")):
        star = found.loc[(n_in, side), "lambda_star_mean"]
        interp = gridded.loc[n_in, col]
        k = np.searchsorted(lam_grid, interp)
        assert lam_grid[k - 1] <= star <= lam_grid[k], (n_in, side, star, interp)
        assert 1e-6 < abs(interp - star) / abs(star) < 0.2  # the grid's interpolation error
