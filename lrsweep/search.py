"""Where a measure crosses a threshold along λ: bracketing, then a safeguarded root finder.

For a *line* (every setting but λ fixed: architecture, scale, seed, …) a lazy/rich measure
m(λ) (kernel distance by default) crosses the regime threshold at the boundary λ*. On each
side of λ = 0, :func:`find_crossings` evaluates m at ``per_side`` log-spaced bracket points
|λ| ∈ [min, max], takes every sign change of m − threshold between neighbours (ordered
outward from λ = 0) as a bracket, and narrows all brackets of all lines together with the
Illinois variant of regula falsi in u = log|λ| (superlinear, and never leaves its bracket) on
log(m / threshold) where m > 0 at every bracket point (a power-law decay is nearly linear
there), falling back to bisection whenever two steps fail to halve the bracket and stepping
at least half a tolerance once an end sits on the root (as Brent's method does). Each
iteration is one call of ``evaluate`` on every bracket still open, so a batched solver does
all lines at once. It stops when a bracket is narrower than ``rtol`` relative in λ (theory
§4).

The measure is evaluated at the same init for every λ of a line (the init's rotations are
drawn from the line's seed, not from λ), so m(λ) is a smooth function of λ along the line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["Crossings", "SearchSpec", "find_crossings"]

#: Iterations after which an open bracket is given up (status 'failed'); the Illinois steps
#: with bisection fallback shrink a bracket at least by half every third iteration, so 200
#: iterations (2⁻⁶⁶ of the bracket) cover any bracket and rtol float64 can resolve.
MAX_ITERATIONS = 200


@dataclass(frozen=True)
class SearchSpec:
    """How λ is searched on every line.

    Attributes
    ----------
    min, max : float
        The searched |λ| range, 0 < min < max.
    per_side : int
        Log-spaced bracket points per side, from min to max (≥ 2).
    sides : {'both', 'positive', 'negative'}
    rtol : float
        Relative precision of λ* (the final bracket is narrower than rtol·|λ*|).
    measure : str
        A registered per-run measure (:mod:`lrsweep.measures`).
    threshold : float
        The level whose crossing is sought (the sweep's ``regime_threshold``).
    """

    min: float
    max: float
    per_side: int
    sides: str
    rtol: float
    measure: str
    threshold: float

    def signs(self) -> tuple[float, ...]:
        """The signs of λ searched: −1, +1 or both."""
        return {"both": (-1.0, 1.0), "negative": (-1.0,), "positive": (1.0,)}[self.sides]

    def brackets(self) -> np.ndarray:
        """The bracket |λ| values, shape (per_side,), ascending (outward from 0)."""
        return np.geomspace(self.min, self.max, self.per_side)


@dataclass(frozen=True)
class Crossings:
    """The crossings found on a set of line-sides (one row per crossing, or per line-side
    without one).

    Attributes
    ----------
    line : ndarray of int, shape (n,)
        Index of the line-side (into the ``sign`` array given to :func:`find_crossings`).
    crossing : ndarray of int, shape (n,)
        0, 1, … outward from λ = 0 on that side; −1 for a line-side without a crossing.
    lambda_star : ndarray, shape (n,)
        λ*, the evaluated point of the final bracket closest to the threshold (NaN if none).
    measure_at_star : ndarray, shape (n,)
        The measure at λ*.
    bracket_lo, bracket_hi : ndarray, shape (n,)
        The final bracket (λ values, lo < hi); for a line without crossing, the searched range.
    evaluations : ndarray of int, shape (n,)
        Measure evaluations spent on this crossing (bracket points are counted for the first
        crossing of a line-side, iterations for each crossing).
    status : ndarray of str, shape (n,)
        'converged', 'none' (no crossing in the range: ``measure_min``/``measure_max`` say
        where the measure lies) or 'failed' (a NaN measure, or no convergence: ``reason``).
    measure_min, measure_max : ndarray, shape (n,)
        Range of the measure over the bracket points of the line-side.
    reason : ndarray of str, shape (n,)
    """

    line: np.ndarray
    crossing: np.ndarray
    lambda_star: np.ndarray
    measure_at_star: np.ndarray
    bracket_lo: np.ndarray
    bracket_hi: np.ndarray
    evaluations: np.ndarray
    status: np.ndarray
    measure_min: np.ndarray
    measure_max: np.ndarray
    reason: np.ndarray


def _level(m: np.ndarray, threshold: float, logscale: np.ndarray) -> np.ndarray:
    """m − threshold, or log(m / threshold) where ``logscale`` (m ≤ 0 clipped to a tiny
    positive value: its sign is all the bracket needs)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        log = np.log(np.maximum(m, np.finfo(float).tiny) / threshold)
    return np.where(logscale, np.where(np.isnan(m), np.nan, log), m - threshold)


def _measure(f: np.ndarray, threshold: float, logscale: np.ndarray) -> np.ndarray:
    """The inverse of :func:`_level`."""
    return np.where(logscale, threshold * np.exp(f), f + threshold)


def find_crossings(
    evaluate: Callable[[np.ndarray, np.ndarray], np.ndarray],
    sign: np.ndarray,
    spec: SearchSpec,
) -> Crossings:
    """Every λ in ±[min, max] at which the measure crosses the threshold, on every line-side.

    Parameters
    ----------
    evaluate : callable
        ``evaluate(line, lam) -> measure``: arrays of shape (k,) of line-side indices and λ
        values to (k,) measure values (NaN where the evaluation failed). Called once with all
        bracket points, then once per iteration with one point per open bracket.
    sign : array_like, shape (n_lines,)
        The side (−1 or +1) of each line-side.
    spec : SearchSpec

    Returns
    -------
    Crossings
        Ordered by line-side, then crossing index.
    """
    sign = np.asarray(sign, dtype=float)
    n_lines = sign.size
    mags = spec.brackets()
    k = mags.size
    line_b = np.repeat(np.arange(n_lines), k)
    lam_b = (sign[:, None] * mags[None, :]).ravel()
    m_b = np.asarray(evaluate(line_b, lam_b), dtype=float).reshape(n_lines, k)
    # A positive measure that falls like a power of |λ| is nearly linear as log(m / threshold)
    # against log|λ|, where regula falsi needs few steps: lines whose bracket values are all
    # positive are searched on that scale (the sign, so every bracket, is the same).
    logscale = spec.threshold > 0 and np.all(m_b > 0, axis=1)
    f_b = _level(m_b, spec.threshold, logscale[:, None])

    # brackets: sign changes of f between neighbours, outward from λ = 0
    fa, fb = f_b[:, :-1], f_b[:, 1:]
    change = np.isfinite(fa) & np.isfinite(fb) & (np.sign(fa) != np.sign(fb))
    li, ki = np.nonzero(change)  # row-major: by line, then outward
    u = np.log(mags)
    # bracket ends: a (kept end: its true value fa and Illinois's weighted fw), b (latest)
    a, b = u[ki].copy(), u[ki + 1].copy()
    fa, fb = fa[li, ki].copy(), fb[li, ki].copy()
    fw = fa.copy()
    done = (fa == 0) | (fb == 0)  # an exact hit at a bracket point needs no iteration
    iters = np.zeros(li.size, dtype=np.int64)
    status = np.where(done, "converged", "").astype(object)
    reason = np.full(li.size, "", dtype=object)
    tol = np.log1p(spec.rtol)
    bisect = np.zeros(li.size, dtype=bool)
    width_before = np.abs(b - a) * 2  # the bracket width two iterations back
    for _ in range(MAX_ITERATIONS):
        active = np.flatnonzero(~done)
        if active.size == 0:
            break
        A, B, FA, FW, FB = a[active], b[active], fa[active], fw[active], fb[active]
        with np.errstate(divide="ignore", invalid="ignore"):
            c = B - FB * (B - A) / (FB - FW)
        # a secant step that would stay within half a tolerance of B (B sits on the root) is
        # replaced by exactly half a tolerance towards A: it lands on the other side of the
        # root and closes the bracket (as in Brent's method)
        near = np.isfinite(c) & (np.abs(c - B) < tol / 2)
        bad = ~np.isfinite(c) | (c <= np.minimum(A, B)) | (c >= np.maximum(A, B))
        c = np.where(bad | bisect[active], (A + B) / 2, c)
        c = np.where(near, B + np.sign(A - B) * tol / 2, c)
        fc = np.asarray(evaluate(li[active], sign[li[active]] * np.exp(c)), dtype=float)
        fc = _level(fc, spec.threshold, logscale[li[active]])
        iters[active] += 1
        same = np.sign(fc) == np.sign(FB)
        # the root lies between c and A if f(c) has the sign of f(B) (A is kept, and its
        # weight halved: Illinois), else between c and B (B becomes the kept end)
        a[active] = np.where(same, A, B)
        fa[active] = np.where(same, FA, FB)
        fw[active] = np.where(same, FW / 2, FB)
        b[active], fb[active] = c, fc
        hit = fc == 0  # an exact root: the bracket collapses onto it
        a[active] = np.where(hit, c, a[active])
        fa[active] = np.where(hit, 0.0, fa[active])
        new_width = np.abs(c - a[active])
        bisect[active] = new_width > 0.5 * width_before[active]
        width_before[active] = np.abs(B - A)
        failed = ~np.isfinite(fc)
        converged = ~failed & ((new_width <= tol) | hit)
        status[active[failed]] = "failed"
        reason[active[failed]] = "the measure is NaN inside the bracket (a point failed)"
        status[active[converged]] = "converged"
        done[active[failed | converged]] = True
    open_ = ~done
    status[open_] = "failed"
    reason[open_] = f"no convergence in {MAX_ITERATIONS} iterations"
    # λ*: the end of the final bracket nearer the threshold (both ends were evaluated)
    take_b = np.abs(fb) <= np.abs(fa)
    star_u = np.where(take_b, b, a)
    star_f = np.where(take_b, fb, fa)
    lo_u, hi_u = np.minimum(a, b), np.maximum(a, b)

    # rows: one per crossing, plus one per line-side without any (or with a NaN bracket point)
    finite = np.isfinite(m_b)
    m_min = np.where(finite.any(1), np.nanmin(np.where(finite, m_b, np.inf), 1), np.nan)
    m_max = np.where(finite.any(1), np.nanmax(np.where(finite, m_b, -np.inf), 1), np.nan)
    crossing = np.zeros(li.size, dtype=np.int64)
    for j in range(1, li.size):  # index outward within a line
        crossing[j] = crossing[j - 1] + 1 if li[j] == li[j - 1] else 0
    evals = iters + np.where(crossing == 0, k, 0)
    none = np.setdiff1d(np.arange(n_lines), li)
    nan_b = ~finite.all(1)
    lo_abs, hi_abs = np.full(none.size, spec.min), np.full(none.size, spec.max)
    none_status = np.where(nan_b[none], "failed", "none").astype(object)
    none_reason = np.where(
        nan_b[none], "the measure is NaN at a bracket point (a point failed)", ""
    ).astype(object)
    sgn = sign[li]
    bl = np.minimum(sgn * np.exp(lo_u), sgn * np.exp(hi_u))
    bh = np.maximum(sgn * np.exp(lo_u), sgn * np.exp(hi_u))
    rows = Crossings(
        line=np.concatenate([li, none]),
        crossing=np.concatenate([crossing, np.full(none.size, -1)]),
        lambda_star=np.concatenate([sgn * np.exp(star_u), np.full(none.size, np.nan)]),
        measure_at_star=np.concatenate(
            [_measure(star_f, spec.threshold, logscale[li]), np.full(none.size, np.nan)]
        ),
        bracket_lo=np.concatenate([bl, np.minimum(sign[none] * lo_abs, sign[none] * hi_abs)]),
        bracket_hi=np.concatenate([bh, np.maximum(sign[none] * lo_abs, sign[none] * hi_abs)]),
        evaluations=np.concatenate([evals, np.full(none.size, k)]),
        status=np.concatenate([status, none_status]),
        measure_min=np.concatenate([m_min[li], m_min[none]]),
        measure_max=np.concatenate([m_max[li], m_max[none]]),
        reason=np.concatenate([reason, none_reason]),
    )
    order = np.lexsort((rows.crossing, rows.line))
    return Crossings(**{f: getattr(rows, f)[order] for f in Crossings.__dataclass_fields__})


def search_shard(spec, *, log=None):
    """Search λ on every line-side of a search shard: its (runs, trajectories, crossings).

    Every evaluation solves real points through :func:`lrsweep.solve.solve_points` (same
    inits, solver, measures and diagnostics as a grid sweep): the bracket points of all
    line-sides in one call (role ``bracket``), then one call per iteration with one point per
    open bracket (role ``iterate``). A point that is not ``ok`` has a NaN measure, which ends
    its bracket as 'failed'. Nothing computed is thrown away: every evaluated point is a row
    of the runs table and its curves are in the trajectories.

    Parameters
    ----------
    spec : lrsweep.spec.ShardSpec
        A shard of a search sweep: its points are line-sides (``lambda`` = ±1).
    log : text stream, optional

    Returns
    -------
    runs, trajectories, crossings : pyarrow.Table
        :func:`lrsweep.io.shard_schema`, :func:`lrsweep.io.trajectories_schema`,
        :data:`lrsweep.io.CROSSINGS_SCHEMA`.
    """
    import pyarrow as pa

    from lrsweep import io
    from lrsweep.grid import point_ids
    from lrsweep.solve import solve_points

    search = spec.search
    lines = spec.points
    shape = {a: getattr(spec.shape, a) for a in ("n_in", "n_out", "width", "depth")}
    runs, trajs = [], []

    def evaluate(line: np.ndarray, lam: np.ndarray) -> np.ndarray:
        cols = {"lambda": lam, "scale": lines["scale"][line], "seed": lines["seed"][line]}
        n = lam.size
        cols["point_id"] = point_ids(
            {
                **{a: np.full(n, v, dtype=np.int64) for a, v in shape.items()},
                **{a: np.full(n, v) for a, v in spec.ratios.items()},
                **cols,
            }
        )
        role = "bracket" if not runs else "iterate"
        table, traj = solve_points(spec.with_points(cols), role=role, log=log)
        runs.append(table)
        trajs.append(traj)
        ok = np.asarray(table.column("status").to_pylist(), dtype=object) == "ok"
        values = table.column(search.measure).to_numpy(zero_copy_only=False)
        return np.where(ok, values, np.nan)

    found = find_crossings(evaluate, lines["lambda"], search)
    line = found.line
    n = line.size
    task = runs[0].column("task")[0].as_py() if runs and runs[0].num_rows else spec.task.kind
    crossings = io.to_table(
        {
            "sweep": [spec.sweep] * n,
            "solver": [spec.solver] * n,
            "task": [task] * n,
            **{a: np.full(n, v, dtype=np.int64) for a, v in shape.items()},
            **{a: np.full(n, v, dtype=np.float64) for a, v in spec.ratios.items()},
            "scale": lines["scale"][line],
            "seed": lines["seed"][line],
            "side": np.where(lines["lambda"][line] < 0, "negative", "positive").tolist(),
            "crossing": found.crossing,
            "measure": [search.measure] * n,
            "threshold": np.full(n, search.threshold),
            "lambda_star": found.lambda_star,
            "measure_at_star": found.measure_at_star,
            "bracket_lo": found.bracket_lo,
            "bracket_hi": found.bracket_hi,
            "evaluations": found.evaluations,
            "status": found.status.tolist(),
            "reason": found.reason.tolist(),
            "measure_min": found.measure_min,
            "measure_max": found.measure_max,
        },
        io.CROSSINGS_SCHEMA,
    )
    traj = pa.concat_tables(trajs)
    # the trajectory dataset is sorted by point id (lrsweep.merge checks it)
    traj = traj.take(pa.array(np.argsort(traj.column("point_id").to_numpy(), kind="stable")))
    return pa.concat_tables(runs), traj, crossings
