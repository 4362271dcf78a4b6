"""Typed descriptions of the work: a task, a time grid, a network shape and a shard.

The planner (:mod:`lrsweep.grid`) turns a sweep's validated settings into :class:`ShardSpec`
objects; the solver (:mod:`lrsweep.solve`) takes them. At the Snakemake boundary a spec
travels as plain Python (:meth:`ShardSpec.to_params`, compared by Snakemake to decide
reruns) and is rebuilt with :meth:`ShardSpec.from_params`, so nothing else handles
untyped nested dicts.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import numpy as np

from lrsweep.search import SearchSpec

__all__ = ["INIT_KINDS", "InitSpec", "PointGrid", "Shape", "ShardSpec", "TaskSpec", "TimeSpec"]


def _from_mapping(cls: type, values: Mapping[str, Any]) -> Any:
    """``cls(**values)`` keeping only ``cls``'s fields (the settings may hold more keys)."""
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in values.items() if k in names})


@dataclass(frozen=True)
class TaskSpec:
    """A sweep's ``task`` settings; :meth:`build` gives the task of one architecture."""

    kind: str = "random"
    seed: int = 0
    target_scale: float = 1.0
    n_samples: int | None = None
    singular_values: tuple[float, ...] | None = None
    path: str | None = None
    center: bool = False

    def __post_init__(self) -> None:
        if self.singular_values is not None:
            object.__setattr__(self, "singular_values", tuple(self.singular_values))

    @classmethod
    def from_settings(cls, task: Mapping[str, Any]) -> TaskSpec:
        return _from_mapping(cls, task)

    def build(self, n_in: int, n_out: int):
        """The :class:`~lrsweep.tasks.Task` for inputs of size ``n_in``, outputs ``n_out``.

        Raises
        ------
        ValueError
            If the task fixes other sizes (hierarchy, file) than the point asks for.
        """
        if self.kind == "random":
            params: dict[str, Any] = {
                "n_in": n_in,
                "n_out": n_out,
                "seed": self.seed,
                "target_scale": self.target_scale,
            }
            if self.n_samples is not None:
                params["n_samples"] = self.n_samples
            if self.singular_values is not None:
                params["singular_values"] = self.singular_values
        elif self.kind == "hierarchy":
            params = {}
        else:
            params = {"path": self.path, "center": bool(self.center)}
        task = _cached_task(self.kind, tuple(sorted(params.items())))
        if (task.n_in, task.n_out) != (n_in, n_out):
            raise ValueError(
                f"task {self.kind!r} has n_in={task.n_in}, n_out={task.n_out}, but the point "
                f"has n_in={n_in}, n_out={n_out}"
            )
        return task


@functools.cache
def _cached_task(kind: str, items: tuple):
    from lrsweep.tasks import make_task

    return make_task(kind, **dict(items))


@dataclass(frozen=True)
class TimeSpec:
    """Saved times t/τ: ``n_points`` from 0 to ``t_max``, linear or log-spaced."""

    t_max: float = 20.0
    n_points: int = 101
    spacing: str = "linear"
    t_min: float | None = None

    @classmethod
    def from_settings(cls, time: Mapping[str, Any]) -> TimeSpec:
        return _from_mapping(cls, time)

    def grid(self) -> np.ndarray:
        """The times, shape (n_points,), starting at 0; log spacing is 0 then geometric from
        ``t_min`` (default t_max/1000) to t_max."""
        t_max, n = float(self.t_max), int(self.n_points)
        if self.spacing == "linear":
            return np.linspace(0.0, t_max, n)
        t_min = t_max / 1000 if self.t_min is None else float(self.t_min)
        return np.concatenate([[0.0], np.geomspace(t_min, t_max, n - 1)])


#: Init families (``init.kind``): λ-balanced weights (theory §2) or Gaussian weights from a
#: named preset (theory §6.2, :mod:`lrsweep.standard`).
INIT_KINDS = ("balanced", "gaussian")


@dataclass(frozen=True)
class InitSpec:
    """A sweep's ``init`` settings.

    ``kind`` ``balanced``: λ-balanced weights with product singular values ``scale``,
    optionally aligned with the task. ``gaussian``: i.i.d. N(0, σ_l²) entries with σ_l of
    ``preset`` (:func:`lrsweep.standard.preset_sigmas`) times the point's ``scale`` (the
    multiplier) and its ``layer_ratio``; λ is not an input then (λ_eff is measured).
    """

    aligned: bool = False
    kind: str = "balanced"
    preset: str = "xavier"

    @property
    def gaussian(self) -> bool:
        return self.kind == "gaussian"

    @classmethod
    def from_settings(cls, init: Mapping[str, Any]) -> InitSpec:
        return _from_mapping(cls, init)


@dataclass(frozen=True)
class Shape:
    """A network architecture: N_i, hidden width N_h (every hidden layer), N_o, depth L."""

    n_in: int
    n_out: int
    width: int
    depth: int

    @property
    def widths(self) -> list[int]:
        """[N_i, N_h, …, N_h, N_o] (L + 1 entries)."""
        return [self.n_in, *[self.width] * (self.depth - 1), self.n_out]

    @property
    def bottleneck(self) -> int:
        """The narrowest layer: the largest rank the end-to-end map can have."""
        return min(self.widths)


@dataclass(frozen=True)
class PointGrid:
    """Points λ × scale × seed of one architecture, in C order (λ outermost, seed innermost).

    The axes are tuples shared by every shard of a sweep, so a plan of millions of points
    holds its shards as index ranges into them (:class:`ShardSpec`), never as point lists.
    """

    lam: tuple[float, ...]
    scale: tuple[float, ...]
    seed: tuple[int, ...]

    @property
    def size(self) -> int:
        return len(self.lam) * len(self.scale) * len(self.seed)

    def columns(self, start: int = 0, stop: int | None = None) -> dict[str, np.ndarray]:
        """``lambda``, ``scale``, ``seed`` of the points ``start`` … ``stop − 1``."""
        stop = self.size if stop is None else stop
        flat = np.arange(start, stop, dtype=np.int64)
        i, j, k = np.unravel_index(flat, (len(self.lam), len(self.scale), len(self.seed)))
        return {
            "lambda": np.asarray(self.lam, dtype=np.float64)[i],
            "scale": np.asarray(self.scale, dtype=np.float64)[j],
            "seed": np.asarray(self.seed, dtype=np.int64)[k],
        }


#: Per-point columns of a shard (:attr:`ShardSpec.points`).
POINT_COLUMNS = ("point_id", "lambda", "scale", "seed")


@dataclass(frozen=True)
class ShardSpec:
    """One solver job: points of one shape and solver, and everything that fixes their numbers.

    Attributes
    ----------
    sweep, shard : str
        Names (``results/<sweep>/shards/<shard>``).
    solver : str
        A key of :data:`lrsweep.dynamics.SOLVERS`.
    task, init, time : TaskSpec, InitSpec, TimeSpec
    sweep_seed : int
        The sweep's seed (part of every point's init seed).
    shape : Shape
    grid : PointGrid
        Admissible points of this shape: the λ values the shard spans × scales × seeds.
    start, stop : int
        This shard's points: ``grid``'s points ``start`` … ``stop − 1``.
    lr : float or None
        Learning rate of ``gd``.
    layer_ratio : float
        Gaussian inits: σ_{l+1}/σ_l on top of the preset (:func:`lrsweep.standard.preset_sigmas`).
    lr_ratio : float
        Per-layer learning rates η_{l+1}/η_l (flow, gd; :func:`lrsweep.standard.layer_rates`).
    search : SearchSpec or None
        For a search sweep: its points are line-sides (``lambda`` = the side's sign, ±1) on
        which λ is searched (:mod:`lrsweep.search`).
    """

    sweep: str
    shard: str
    solver: str
    task: TaskSpec
    init: InitSpec
    time: TimeSpec
    sweep_seed: int
    shape: Shape
    grid: PointGrid
    start: int
    stop: int
    lr: float | None = None
    search: SearchSpec | None = None
    layer_ratio: float = 1.0
    lr_ratio: float = 1.0

    def __post_init__(self) -> None:
        if not 0 <= self.start < self.stop <= self.grid.size:
            raise ValueError(
                f"shard {self.shard!r}: points {self.start}..{self.stop} are not a non-empty "
                f"range of its {self.grid.size} grid points"
            )

    @property
    def n_points(self) -> int:
        return self.stop - self.start

    @functools.cached_property
    def points(self) -> dict[str, np.ndarray]:
        """The shard's points: ``point_id`` (int64), ``lambda``, ``scale``, ``seed``."""
        from lrsweep.grid import point_ids

        cols = self.grid.columns(self.start, self.stop)
        n = self.n_points
        shape = {a: np.full(n, getattr(self.shape, a), dtype=np.int64) for a in _SHAPE_FIELDS}
        ratios = {a: np.full(n, v) for a, v in self.ratios.items()}
        return {"point_id": point_ids({**shape, **ratios, **cols}), **cols}

    @property
    def ratios(self) -> dict[str, float]:
        """The group axes besides the shape: ``layer_ratio`` and ``lr_ratio``."""
        return {"layer_ratio": self.layer_ratio, "lr_ratio": self.lr_ratio}

    @property
    def rates(self) -> np.ndarray | None:
        """Per-layer learning-rate multipliers ρ_l (geometric, ∏ρ_l = 1), or None at ratio 1."""
        if self.lr_ratio == 1.0:
            return None
        from lrsweep.standard import layer_rates

        return layer_rates(self.lr_ratio, self.shape.depth)

    def with_points(self, points: Mapping[str, np.ndarray]) -> ShardSpec:
        """The same shard solving the given points instead (``point_id``, ``lambda``,
        ``scale``, ``seed`` of equal length): the evaluations of a λ search."""
        new = replace(self)
        new.__dict__["points"] = {k: np.asarray(points[k]) for k in POINT_COLUMNS}
        return new

    @property
    def n_solved(self) -> int:
        """Number of points :attr:`points` holds (= :attr:`n_points` unless overridden)."""
        return int(self.points["point_id"].size)

    def column(self, name: str, dtype: type = float) -> np.ndarray:
        """One per-point column as an array."""
        return np.asarray(self.points[name], dtype=dtype)

    def select(self, k: int) -> ShardSpec:
        """The same shard restricted to its point at position ``k``."""
        return replace(self, start=self.start + k, stop=self.start + k + 1)

    def to_params(self) -> dict[str, Any]:
        """Plain-Python form (ints, floats, strings, tuples): Snakemake's ``params``.

        Holds only what changes the shard's results, so it doubles as its fingerprint. The
        axes are the plan's own tuples (shared by every shard), so 10⁴ jobs cost no more
        memory than one.
        """
        out = {
            "sweep": self.sweep,
            "shard": self.shard,
            "solver": self.solver,
            "task": _plain(asdict(self.task)),
            "init": asdict(self.init),
            "time": asdict(self.time),
            "sweep_seed": self.sweep_seed,
            "shape": asdict(self.shape),
            "lambda": self.grid.lam,
            "scale": self.grid.scale,
            "seed": self.grid.seed,
            "start": self.start,
            "stop": self.stop,
        }
        if self.lr is not None:
            out["lr"] = self.lr
        if self.search is not None:
            out["search"] = asdict(self.search)
        for k, v in self.ratios.items():
            if v != 1.0:
                out[k] = v
        return out

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> ShardSpec:
        """Inverse of :meth:`to_params`."""
        return cls(
            sweep=params["sweep"],
            shard=params["shard"],
            solver=params["solver"],
            task=TaskSpec.from_settings(params["task"]),
            init=InitSpec.from_settings(params["init"]),
            time=TimeSpec.from_settings(params["time"]),
            sweep_seed=int(params["sweep_seed"]),
            shape=Shape(**params["shape"]),
            grid=PointGrid(tuple(params["lambda"]), tuple(params["scale"]), tuple(params["seed"])),
            start=int(params["start"]),
            stop=int(params["stop"]),
            lr=params.get("lr"),
            search=SearchSpec(**params["search"]) if "search" in params else None,
            layer_ratio=float(params.get("layer_ratio", 1.0)),
            lr_ratio=float(params.get("lr_ratio", 1.0)),
        )

    def fingerprint(self) -> str:
        """Short hash of :meth:`to_params`: stored in the shard's files, checked on merge."""
        digest = hashlib.blake2b(repr(sorted(self.to_params().items())).encode(), digest_size=8)
        return digest.hexdigest()


_SHAPE_FIELDS = ("n_in", "n_out", "width", "depth")


def _plain(d: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}
