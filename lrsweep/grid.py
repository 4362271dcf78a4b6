"""Sweep planning: validated settings → grid points → admissibility → seeds → shards.

A config (``config.yaml``) declares named sweeps; :mod:`lrsweep.config` validates it
(:func:`validate_config`, re-exported here with the config vocabulary: :class:`ConfigError`,
:func:`axis_values`, the axis names). :func:`plan` then expands each sweep's axes into points (their
Cartesian product), decides which points are inadmissible, gives every point a stable id
and groups the runnable points into shards that the solver handles as one batch.

Points and shards are content-addressed, never numbered by position:

- ``point_id`` is a 63-bit hash of (n_in, n_out, width, depth, λ, scale, seed), so editing
  one axis does not renumber the other points;
- a point's init is drawn from ``SeedSequence([sweep seed, seed, n_in, n_out, width,
  depth])`` (:func:`point_seed`): common random numbers across λ and scale, independent of
  shard size and execution order;
- within a shape group (solver, n_in, n_out, width, depth) points are ordered by
  (λ, scale, seed) and cut into shards at content-defined boundaries (a point ends a shard
  when its hash says so), so adding grid values only changes the shards that receive new
  points.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, replace

import numpy as np

from lrsweep.config import (
    AXES,
    DEFAULT_SHARD_SIZE,
    GROUP_AXES,
    INT_AXES,
    RATIO_AXES,
    SCHEMA_PATH,
    SHAPE_AXES,
    ConfigError,
    _axes,
    axis_values,
    load_config,
    load_schema,
    search_spec,
    selected_sweeps,
    time_grid,
    validate_config,
)
from lrsweep.dynamics import SOLVERS
from lrsweep.search import SearchSpec
from lrsweep.spec import InitSpec, PointGrid, Shape, ShardSpec, TaskSpec, TimeSpec

__all__ = [
    "AXES",
    "GROUP_AXES",
    "INT_AXES",
    "RATIO_AXES",
    "SHAPE_AXES",
    "search_spec",
    "ConfigError",
    "DEFAULT_SHARD_SIZE",
    "SCHEMA_PATH",
    "SweepPlan",
    "axis_values",
    "load_config",
    "load_schema",
    "plan",
    "plan_sweep",
    "selected_sweeps",
    "point_ids",
    "point_seed",
    "default_shard_size",
    "shard_bounds",
    "time_grid",
    "validate_config",
]


# ------------------------------------------------------------------------ ids, seeds, shards

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser on uint64 arrays (wrap-around arithmetic)."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def point_ids(columns: Mapping[str, np.ndarray]) -> np.ndarray:
    """Stable 63-bit ids (int64 ≥ 0) of points from their parameters (:data:`AXES`).

    Hashes the int64 axes and the IEEE-754 bits of λ and scale, so an id depends on the
    point only, never on its position in the grid. The :data:`RATIO_AXES` (optional
    columns) enter only where they differ from 1, so points without them keep their ids.
    """
    with np.errstate(over="ignore"):
        h = np.full(np.shape(columns["lambda"]), _GOLDEN, dtype=np.uint64)
        for axis in AXES:
            if axis in RATIO_AXES:
                if axis in columns:
                    col = np.asarray(columns[axis], dtype=np.float64) + 0.0
                    # which ratio axis moved enters in its own mixing step (an additive
                    # tag would let neighbouring floats of two axes collide)
                    tag = _mix(np.uint64(AXES.index(axis)) + _GOLDEN)
                    mixed = _mix(_mix(h ^ tag) ^ _mix(col.view(np.uint64) + _GOLDEN))
                    h = np.where(col != 1.0, mixed, h)
                continue
            col = np.asarray(columns[axis])
            words = (
                (col.astype(np.float64) + 0.0).view(np.uint64)
                if axis in ("lambda", "scale")
                else col.astype(np.int64).view(np.uint64)
            )
            h = _mix(h ^ _mix(words + _GOLDEN))
    return (h >> np.uint64(1)).astype(np.int64)


def point_seed(sweep_seed: int, seed: int, n_in: int, n_out: int, width: int, depth: int):
    """The ``np.random.SeedSequence`` of a point's init (common to all λ and scale)."""
    return np.random.SeedSequence(
        [int(sweep_seed), int(seed), int(n_in), int(n_out), int(width), int(depth)]
    )


def shard_bounds(ids: np.ndarray, target: int) -> list[tuple[int, int]]:
    """Content-defined cut points of an ordered run of points into shards.

    A shard ends after a point whose hash h satisfies h mod target < 2, once the shard
    holds at least target/2 points, and always at 2·target points: mean size ≈ target,
    and a boundary depends only on the points just before it, so inserting points changes
    only the shard(s) they fall into.

    Returns
    -------
    list of (start, stop)
        Half-open index ranges covering ``range(len(ids))``.
    """
    target = max(int(target), 1)
    lo, hi = max(target // 2, 1), 2 * target
    with np.errstate(over="ignore"):
        hit = (_mix(np.asarray(ids, dtype=np.int64).view(np.uint64)) % np.uint64(target)) < 2
    bounds, start = [], 0
    candidates = np.flatnonzero(hit).tolist()
    ci, n = 0, len(ids)
    while start < n:
        stop = min(start + hi, n)
        while ci < len(candidates) and candidates[ci] < start + lo - 1:
            ci += 1
        if ci < len(candidates) and candidates[ci] < stop:
            stop = candidates[ci] + 1
        bounds.append((start, stop))
        start = stop
    return bounds


def _shard_name(solver: str, shape: tuple[int, ...], ids: np.ndarray) -> str:
    """``<solver>-i<n_in>-o<n_out>-w<width>-d<depth>-<hash of the shard's point ids>``."""
    digest = hashlib.blake2b(np.ascontiguousarray(ids, dtype="<i8").tobytes(), digest_size=4)
    n_in, n_out, width, depth = shape
    return f"{solver}-i{n_in}-o{n_out}-w{width}-d{depth}-{digest.hexdigest()}"


# ------------------------------------------------------------------------------------ plan


@dataclass(frozen=True)
class ShapeGroup:
    """The points of one architecture: the admissible ones cut into shards, the rest skipped.

    Admissibility depends on the architecture and the sign of λ only, so both parts are
    products λ × scale × seed (:class:`~lrsweep.spec.PointGrid`) over complementary λ sets.

    Attributes
    ----------
    shape : Shape
    points : PointGrid
        The admissible points, in plan order.
    shards : tuple of (str, int, int)
        (name, start, stop): each shard is ``points``' points start … stop − 1.
    skipped : PointGrid
        The inadmissible points (no λ if none).
    reasons, categories : tuple of str
        Why, and the kind of inadmissibility (for summaries), one per λ of ``skipped``.
    layer_ratio, lr_ratio : float
        The group's :data:`RATIO_AXES` values.
    """

    shape: Shape
    points: PointGrid
    shards: tuple[tuple[str, int, int], ...]
    skipped: PointGrid
    reasons: tuple[str, ...]
    categories: tuple[str, ...]
    layer_ratio: float = 1.0
    lr_ratio: float = 1.0

    @property
    def ratios(self) -> dict[str, float]:
        return {"layer_ratio": self.layer_ratio, "lr_ratio": self.lr_ratio}


@dataclass(frozen=True)
class SweepPlan:
    """The points of one sweep, by architecture, and the shards of the admissible ones.

    Compact: a plan of 10⁷ points holds its axes and the shards' index ranges, not the points;
    :attr:`points` materialises the columns on demand (for small sweeps and tests).

    Attributes
    ----------
    name : str
        Sweep name (``results/<name>/``).
    settings : dict
        The validated sweep config (defaults filled).
    groups : tuple of ShapeGroup
        One per architecture, in plan order.
    """

    name: str
    settings: dict
    groups: tuple[ShapeGroup, ...]

    @property
    def search(self) -> SearchSpec | None:
        """How λ is searched, for a search sweep (its points are then line-sides: λ = ±1)."""
        return search_spec(self.settings)

    @functools.cached_property
    def _index(self) -> dict[str, tuple[ShapeGroup, int, int]]:
        return {name: (g, lo, hi) for g in self.groups for name, lo, hi in g.shards}

    @property
    def shards(self) -> tuple[str, ...]:
        """Shard names, in plan order."""
        return tuple(self._index)

    @property
    def n_points(self) -> int:
        return sum(g.points.size + g.skipped.size for g in self.groups)

    @property
    def n_skipped(self) -> int:
        return sum(g.skipped.size for g in self.groups)

    def shard_spec(self, shard: str) -> ShardSpec:
        """What one shard's job solves (:meth:`ShardSpec.to_params` is the Snakemake param).

        Holds only what changes the shard's results, so it doubles as its fingerprint:
        solver, task, init, time grid, ``lr`` (gd only), the sweep seed, the shape, and the
        shard's points as a range of the grid of the λ values it spans × scales × seeds.
        """
        try:
            group, start, stop = self._index[shard]
        except KeyError:
            raise ValueError(
                f"sweep `{self.name}` has no shard {shard!r}; its shards are "
                f"{list(self.shards)[:5]}{' ...' if len(self.shards) > 5 else ''}"
            ) from None
        # only the λ values the shard spans: adding λ elsewhere leaves its params unchanged
        block = len(group.points.scale) * len(group.points.seed)
        lo, hi = start // block, (stop - 1) // block + 1
        grid_ = PointGrid(group.points.lam[lo:hi], group.points.scale, group.points.seed)
        s = self.settings
        return ShardSpec(
            sweep=self.name,
            shard=shard,
            solver=s["solver"],
            task=TaskSpec.from_settings(s["task"]),
            init=InitSpec.from_settings(s["init"]),
            time=TimeSpec.from_settings(s["time"]),
            sweep_seed=int(s["seed"]),
            shape=group.shape,
            grid=grid_,
            start=start - lo * block,
            stop=stop - lo * block,
            lr=float(s["lr"]) if s["solver"] == "gd" else None,
            search=self.search,
            layer_ratio=group.layer_ratio,
            lr_ratio=group.lr_ratio,
        )

    def skipped_columns(self) -> Iterator[dict[str, np.ndarray]]:
        """Columns of the skipped points, one architecture at a time: the :data:`AXES`,
        ``point_id`` and ``reason``."""
        for g in self.groups:
            if g.skipped.size:
                cols = _columns(g, g.skipped)
                per_lam = g.skipped.size // len(g.skipped.lam)
                cols["reason"] = np.repeat(np.asarray(g.reasons, dtype=object), per_lam)
                yield cols

    @functools.cached_property
    def points(self) -> dict[str, np.ndarray]:
        """Every point's columns in plan order (architecture, λ, scale, seed): the
        :data:`AXES`, ``point_id``, ``status`` ('ok' / 'skipped'), ``reason``, ``category``
        and ``shard`` ('' if skipped). Memory ∝ the number of points."""
        parts = []
        for g in self.groups:
            for grid_, status in ((g.points, "ok"), (g.skipped, "skipped")):
                if not grid_.size:
                    continue
                cols = _columns(g, grid_)
                n, per_lam = grid_.size, grid_.size // len(grid_.lam)
                cols["status"] = np.full(n, status, dtype=object)
                if status == "ok":
                    cols["reason"] = np.full(n, "", dtype=object)
                    cols["category"] = np.full(n, "", dtype=object)
                    cols["shard"] = np.repeat(
                        np.asarray([name for name, *_ in g.shards], dtype=object),
                        [hi - lo for _, lo, hi in g.shards],
                    )
                else:
                    cols["reason"] = np.repeat(np.asarray(g.reasons, dtype=object), per_lam)
                    cols["category"] = np.repeat(np.asarray(g.categories, dtype=object), per_lam)
                    cols["shard"] = np.full(n, "", dtype=object)
                parts.append(cols)
            # plan order: λ ascending within the architecture, ok and skipped interleaved
            if g.skipped.size and g.points.size:
                a, b = parts[-2], parts[-1]
                order = np.lexsort(
                    (
                        np.arange(a["lambda"].size + b["lambda"].size),
                        np.concatenate([a["lambda"], b["lambda"]]),
                    )
                )
                parts[-2:] = [{k: np.concatenate([a[k], b[k]])[order] for k in a}]
        if not parts:
            return {}
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

    def values(self, axis: str) -> np.ndarray:
        """The distinct values of a grid axis over the admissible points."""
        if axis in SHAPE_AXES:
            vals = [getattr(g.shape, axis) for g in self.groups if g.points.size]
        elif axis in RATIO_AXES:
            vals = [g.ratios[axis] for g in self.groups if g.points.size]
        else:
            key = {"lambda": "lam"}.get(axis, axis)
            vals = [v for g in self.groups if g.points.size for v in getattr(g.points, key)]
        return np.unique(np.asarray(vals))

    def shapes(self) -> list[Shape]:
        """The architectures with admissible points."""
        return [g.shape for g in self.groups if g.points.size]

    def estimate(self) -> tuple[float, float]:
        """Estimated (core-seconds, bytes on disk) to solve and store the sweep
        (:func:`point_cost` summed over its architectures)."""
        s = self.settings
        seconds = size = 0.0
        for g in self.groups:
            sec, nbytes = point_cost(s["solver"], g.shape, s["time"], s.get("lr"))
            seconds += sec * g.points.size
            size += nbytes * (g.points.size + g.skipped.size)
        return seconds, size

    def summary(self) -> str:
        """One paragraph: points, shards, estimated cost, skipped points by reason."""
        n_ok = self.n_points - self.n_skipped
        sizes = [hi - lo for _, lo, hi in self._index.values()]
        size = f", {min(sizes)}-{max(sizes)} points each" if sizes else ""
        axes = _axes(self.name, self.settings)
        what = "points"
        if self.search is not None:
            axes.pop("lambda")
            what = "line-sides"
        dims = " x ".join(f"{v.size} {a}" for a, v in axes.items() if v.size > 1)
        lines = [
            f"sweep `{self.name}` ({self.settings['solver']}): {self.n_points} {what}"
            f"{f' ({dims})' if dims else ''}, {n_ok} to solve in {len(self.shards)} shard(s){size}"
        ]
        if self.search is not None:
            sp = self.search
            lines.append(
                f"  lambda searched on each side in [{sp.min:g}, {sp.max:g}]: where "
                f"{sp.measure} crosses {sp.threshold:g}, {sp.per_side} bracket points, "
                f"rtol {sp.rtol:g}"
            )
        init = self.settings["init"]
        if init["kind"] == "gaussian":
            lines.append(
                f"  Gaussian inits, preset {init['preset']}: scale = sigma multiplier, "
                "layer_ratio = sigma ratio between layers (lambda_eff measured per run)"
            )
        if self.settings.get("description"):
            lines.append(f"  {self.settings['description']}")
        seconds, size = self.estimate()
        lines.append(
            f"  estimated cost: {seconds / 3600:.2g} core-hours, {size / 1e9:.2g} GB on disk "
            "(from measured per-point costs; docs/pipeline.md)"
        )
        if self.n_skipped:
            counts = Counter()
            for g in self.groups:
                for c in g.categories:
                    counts[c] += g.skipped.size // len(g.skipped.lam)
            lines.append(
                f"  {self.n_skipped} skipped (inadmissible): "
                + "; ".join(f"{n} with {c}" for c, n in counts.most_common() if n)
            )
        return "\n".join(lines)


#: Measured per-point costs (benchmarks/bench_shard.py, bench_scale.py; one core of the
#: 2-core CI machine, 121 saved times): exact solver seconds per point at N_i + N_o = 8 and
#: how they grow with N_i + N_o, including the Snakemake job around each shard (the 10⁶-point
#: bench_scale sweep: 2,007 s in its shard jobs for 1,000,400 points, ≈ 1 s of each ≈ 2 s job
#: is job start-up); gradient flow seconds per point for 32 weights (≈ 150 steps)
#: and its growth with the number of weights n (the per-step eigh is n³); gradient descent
#: seconds per step for a depth-2 width-4 net; bytes per point of the runs table and per point
#: and saved time of the trajectory dataset (zstd), per singular value.
COST = {
    "exact_s": 1.35e-3,
    "exact_growth": 1.0,
    "flow_s": 0.05,
    "flow_growth": 2.5,
    "gd_step_s": 2e-6,
    "runs_bytes": 400.0,
    "curve_bytes": 20.0,
    "curve_bytes_per_sv": 6.0,
}


def point_cost(solver: str, shape: Shape, time: Mapping, lr: float | None) -> tuple[float, float]:
    """Estimated (core-seconds, bytes) of one point: a rough model fitted to :data:`COST`."""
    n_t = int(time["n_points"])
    widths = shape.widths
    n_weights = sum(a * b for a, b in zip(widths[:-1], widths[1:], strict=True))
    exact = COST["exact_s"] * (n_t / 121) * ((shape.n_in + shape.n_out) / 8) ** COST["exact_growth"]
    flow = COST["flow_s"] * (n_weights / 32) ** COST["flow_growth"]
    steps = float(time["t_max"]) / (lr or 1.0)
    gd = COST["gd_step_s"] * steps * shape.depth / 2 * (n_weights / 32)
    seconds = {"exact": exact, "flow": flow, "gd": gd, "both": exact + flow}[solver]
    m = min(shape.n_in, shape.n_out)
    size = COST["runs_bytes"] + n_t * (COST["curve_bytes"] + COST["curve_bytes_per_sv"] * m)
    return seconds, size


def _columns(group: ShapeGroup, grid_: PointGrid) -> dict[str, np.ndarray]:
    """The :data:`AXES` and ``point_id`` of every point of ``grid_`` in one group."""
    cols = grid_.columns()
    n = grid_.size
    cols = {
        **{a: np.full(n, getattr(group.shape, a), dtype=np.int64) for a in SHAPE_AXES},
        **{a: np.full(n, v, dtype=np.float64) for a, v in group.ratios.items()},
        **cols,
    }
    cols["point_id"] = point_ids(cols)
    return {**{a: cols[a] for a in AXES}, "point_id": cols["point_id"]}


def _admissibility(solver: str, shape: Shape, lams: np.ndarray) -> tuple[np.ndarray, list, list]:
    """(admissible mask over ``lams``, reasons and categories of the others) for one
    architecture.

    Admissibility depends on the sign of λ only; the reason of each inadmissible λ comes
    from the single source of the rule, :func:`lrsweep.init.check_admissible_deep`.
    """
    from lrsweep.init import check_admissible_deep

    max_depth = SOLVERS[solver].max_depth
    if max_depth is not None and shape.depth > max_depth:
        reason = (
            f"solver {solver!r} needs depth {max_depth} (got depth={shape.depth}); "
            "use solver flow or gd"
        )
        category = f"solver {solver} and depth > {max_depth}"
        return np.zeros(lams.size, bool), [reason] * lams.size, [category] * lams.size
    ok = np.ones(lams.size, bool)
    reasons = {}
    for sign in (-1.0, 1.0):
        try:
            check_admissible_deep(sign, shape.widths)
        except ValueError:
            for i in np.flatnonzero(np.sign(lams) == sign).tolist():
                try:
                    check_admissible_deep(float(lams[i]), shape.widths)
                except ValueError as exc:
                    ok[i] = False
                    reasons[i] = str(exc)
    order = sorted(reasons)  # λ ascending, as in the skipped grid
    categories = [
        "lambda > 0 and width > n_out" if lams[i] > 0 else "lambda < 0 and width > n_in"
        for i in order
    ]
    return ok, [reasons[i] for i in order], categories


#: A sweep is cut into at most about this many shards when ``shard_size`` is null: beyond it
#: Snakemake's own per-job cost (≈ 2–4 ms to plan a job) dominates, so bigger sweeps get
#: bigger shards instead (a 10⁷-point exact sweep: ≈ 1,200 shards of 8,192 points).
MAX_DEFAULT_SHARDS = 2000


def default_shard_size(solver: str, n_points: int) -> int:
    """Points per shard when ``shard_size`` is null: the solver's (a few seconds of work),
    doubled until the sweep has at most :data:`MAX_DEFAULT_SHARDS` shards. Powers of two,
    so that a small change of the grid does not move every shard boundary."""
    size = SOLVERS[solver].shard_size
    while n_points > MAX_DEFAULT_SHARDS * size:
        size *= 2
    return size


def plan_sweep(name: str, sweep: Mapping) -> SweepPlan:
    """Expand one validated sweep config into a :class:`SweepPlan`.

    Raises
    ------
    ConfigError
        If ``on_invalid`` is 'error' and some points are inadmissible, or the sweep has
        more points than its ``max_points``.
    """
    axes = _axes(name, sweep)
    n_total = int(np.prod([v.size for v in axes.values()], dtype=np.int64))
    if n_total > sweep["max_points"]:
        raise ConfigError(
            f"sweep `{name}` has {n_total:,} grid points, more than "
            f"`sweeps.{name}.max_points` = {sweep['max_points']:,} (a guard against a grid "
            f"that is bigger than meant); shrink the grid or raise `sweeps.{name}.max_points`"
        )
    solver = sweep["solver"]
    target = sweep["shard_size"] or default_shard_size(solver, n_total)
    scale, seed = tuple(axes["scale"].tolist()), tuple(axes["seed"].tolist())
    lam_axis = axes["lambda"]
    shared: dict[tuple, tuple] = {}  # one λ tuple per admissible set, shared by the shards
    groups = []
    for n_in, n_out, width, depth, layer_ratio, lr_ratio in itertools.product(
        *(axes[a].tolist() for a in GROUP_AXES)
    ):
        shape = Shape(n_in, n_out, width, depth)
        ok, reasons, categories = _admissibility(solver, shape, lam_axis)
        if reasons and sweep["on_invalid"] == "error":
            raise ConfigError(
                f"sweep `{name}`: {int((~ok).sum()) * len(scale) * len(seed)} of "
                f"{n_total} grid points are inadmissible, e.g. "
                f"{dict(asdict(shape), **{'lambda': lam_axis[~ok][0].item()})}: "
                f"{reasons[0]}. Remove them from `sweeps.{name}.grid` or set "
                f"`sweeps.{name}.on_invalid: skip`"
            )
        lam_ok = tuple(lam_axis[ok].tolist())
        lam_ok = shared.setdefault(lam_ok, lam_ok)
        group = ShapeGroup(
            shape=shape,
            points=PointGrid(lam_ok, scale, seed),
            shards=(),
            skipped=PointGrid(tuple(lam_axis[~ok].tolist()), scale, seed),
            reasons=tuple(reasons),
            categories=tuple(categories),
            layer_ratio=layer_ratio,
            lr_ratio=lr_ratio,
        )
        if group.points.size:
            ids = _columns(group, group.points)["point_id"]
            shards = tuple(
                (_shard_name(solver, (n_in, n_out, width, depth), ids[lo:hi]), lo, hi)
                for lo, hi in shard_bounds(ids, target)
            )
            group = replace(group, shards=shards)
        groups.append(group)
    return SweepPlan(name=name, settings=dict(sweep), groups=tuple(groups))


def plan(config: Mapping, sweeps: Iterable[str] | None = None) -> dict[str, SweepPlan]:
    """Validate ``config`` and plan its sweeps: the named ones, else those of its ``run``
    key, else all.

    Examples
    --------
    >>> cfg = {"sweeps": {"demo": {"grid": {"lambda": [-1.0, 0.0, 1.0], "seed": [0, 1]}}}}
    >>> p = plan(cfg)["demo"]
    >>> p.n_points, len(p.shards)
    (6, 1)
    """
    cfg = validate_config(config)
    return {n: plan_sweep(n, cfg["sweeps"][n]) for n in selected_sweeps(cfg, sweeps)}
