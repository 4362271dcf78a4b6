"""Typed descriptions of the work: a task, a time grid, a network shape and a shard.

The planner (:mod:`lrsweep.grid`) turns a sweep's validated settings into :class:`ShardSpec`
objects; the solver (:mod:`lrsweep.solve`) takes them. At the Snakemake boundary a spec
travels as plain Python (:meth:`ShardSpec.to_params`, compared by Snakemake to decide
reruns) and is rebuilt with :meth:`ShardSpec.from_params`, so nothing else handles
untyped nested dicts.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

import numpy as np

__all__ = ["InitSpec", "Shape", "ShardSpec", "TaskSpec", "TimeSpec"]


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


@dataclass(frozen=True)
class InitSpec:
    """A sweep's ``init`` settings: λ-balanced weights, optionally aligned with the task."""

    aligned: bool = False

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


#: Per-point columns of a shard, in the order of :data:`lrsweep.grid.AXES` that vary by point.
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
    points : dict of str → tuple
        Per-point values: ``point_id``, ``lambda``, ``scale``, ``seed`` (equal lengths).
    lr : float or None
        Learning rate of ``gd``.
    """

    sweep: str
    shard: str
    solver: str
    task: TaskSpec
    init: InitSpec
    time: TimeSpec
    sweep_seed: int
    shape: Shape
    points: dict[str, tuple] = field(compare=True)
    lr: float | None = None

    def __post_init__(self) -> None:
        pts = {k: tuple(self.points[k]) for k in POINT_COLUMNS}
        if len({len(v) for v in pts.values()}) != 1:
            raise ValueError(
                f"shard {self.shard!r}: point columns must have equal lengths, got "
                f"{ {k: len(v) for k, v in pts.items()} }"
            )
        object.__setattr__(self, "points", pts)

    @property
    def n_points(self) -> int:
        return len(self.points["point_id"])

    def column(self, name: str, dtype: type = float) -> np.ndarray:
        """One per-point column as an array."""
        return np.asarray(self.points[name], dtype=dtype)

    def select(self, rows: Sequence[int]) -> ShardSpec:
        """The same shard restricted to the points at positions ``rows``."""
        return replace(self, points={k: [v[i] for i in rows] for k, v in self.points.items()})

    def to_params(self) -> dict[str, Any]:
        """Plain-Python form (ints, floats, strings, lists): Snakemake's ``params``.

        Holds only what changes the shard's results, so it doubles as its fingerprint.
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
            **{k: list(v) for k, v in self.points.items()},
        }
        if self.lr is not None:
            out["lr"] = self.lr
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
            points={k: params[k] for k in POINT_COLUMNS},
            lr=params.get("lr"),
        )


def _plain(d: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}
