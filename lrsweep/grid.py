"""Sweep planning: config → validated settings → grid points → admissibility → seeds → shards.

A config (``config.yaml``) declares named sweeps. :func:`validate_config` checks it against
the JSON schema that Snakemake also uses (``workflow/schemas/config.schema.yaml``, shipped
as ``lrsweep/config.schema.yaml``), fills the documented defaults, and adds the checks a
schema cannot express. :func:`plan` then expands each sweep's axes into points (their
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

import copy
import functools
import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from lrsweep.dynamics import SOLVERS
from lrsweep.spec import POINT_COLUMNS, InitSpec, Shape, ShardSpec, TaskSpec, TimeSpec

__all__ = [
    "AXES",
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
    "shard_bounds",
    "time_grid",
    "validate_config",
]

#: The JSON schema shared with the Snakefile (a symlink to workflow/schemas/config.schema.yaml).
SCHEMA_PATH = Path(__file__).with_name("config.schema.yaml")

#: Grid axes in plan order (outermost first); also the parameter columns of runs.parquet.
AXES = ("n_in", "n_out", "width", "depth", "lambda", "scale", "seed")
INT_AXES = ("n_in", "n_out", "width", "depth", "seed")
SHAPE_AXES = ("n_in", "n_out", "width", "depth")
#: Allowed range of each integer axis: sizes up to 10⁴ (a wider layer needs gigabytes per
#: point), depth up to 100, seeds that fit the int64 ``seed`` column.
_AXIS_RANGE = {
    "n_in": (1, 10_000),
    "n_out": (1, 10_000),
    "width": (1, 10_000),
    "depth": (2, 100),
    "seed": (0, 2**63 - 1),
}

#: Points per shard when ``shard_size`` is null: a shard then takes a few seconds.
DEFAULT_SHARD_SIZE = {name: s.shard_size for name, s in SOLVERS.items()}


class ConfigError(ValueError):
    """A config value breaks a rule; the message names the key path and the value."""


# ---------------------------------------------------------------------------------- schema


@functools.cache
def load_schema() -> dict:
    """The config JSON schema (parsed once)."""
    with open(SCHEMA_PATH, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def _key(path: Iterable[Any]) -> str:
    """Render a jsonschema path as a config key: ``sweeps.square.grid.width[0]``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<top level>"


def _validator() -> Any:
    import jsonschema

    base = jsonschema.Draft202012Validator
    validate_properties = base.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):  # as snakemake.utils.validate
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if "default" in sub:
                    instance.setdefault(name, copy.deepcopy(sub["default"]))
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(base, {"properties": set_defaults})(load_schema())


def _schema_error(err: Any) -> ConfigError:
    key = _key(err.absolute_path)
    if err.validator in ("oneOf", "anyOf"):
        what = err.schema.get("description") or "one of the allowed forms"
        return ConfigError(f"config key `{key}` = {err.instance!r}: must be {what}")
    if err.validator == "additionalProperties":
        allowed = sorted(err.schema.get("properties", {}))
        return ConfigError(f"config key `{key}`: {err.message}; allowed keys: {allowed}")
    return ConfigError(f"config key `{key}` = {err.instance!r}: {err.message}")


def validate_config(config: Mapping) -> dict:
    """Check a config against the schema and the semantic rules; return it with defaults.

    Parameters
    ----------
    config : mapping
        Parsed ``config.yaml`` (not modified).

    Returns
    -------
    dict
        A deep copy with every documented default filled in.

    Raises
    ------
    ConfigError
        (a ValueError) naming the key path, the value and the rule, for the first problem.
    """
    import jsonschema

    if not isinstance(config, Mapping):
        raise ConfigError(f"the config must be a mapping with a `sweeps` key, got {config!r}")
    cfg = copy.deepcopy(dict(config))
    validator = _validator()
    errors = sorted(validator.iter_errors(cfg), key=lambda e: (len(e.absolute_path), e.path))
    if errors:
        raise _schema_error(jsonschema.exceptions.best_match(errors))
    for name, sweep in cfg["sweeps"].items():
        _check_sweep(name, sweep)
    return cfg


def load_config(path: str | Path) -> dict:
    """Read a YAML config file and validate it (:func:`validate_config`)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file `{path}` does not exist")
    with open(path, encoding="utf-8") as fh:
        try:
            raw = yaml.safe_load(fh)
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file `{path}` is not valid YAML: {exc}") from None
    return validate_config(raw or {})


# -------------------------------------------------------------------------------- semantic


def axis_values(spec: Any, key: str = "axis", *, integer: bool = False) -> np.ndarray:
    """Expand one grid axis (value, list or generator) into sorted, distinct values.

    Generators: ``{linspace: {start, stop, num}}``; ``{logspace: {start, stop, num}}``
    (geometric between the *values* start > 0 and stop > 0); ``{symlog: {min, max,
    per_side}}`` = −max … −min (geometric), 0, min … max: 2·per_side + 1 values.

    Raises
    ------
    ConfigError
        For an empty or non-finite axis, duplicates, or a bad generator; the message names
        ``key`` (the config key path).
    """
    if isinstance(spec, Mapping):
        ((kind, g),) = spec.items()
        if kind == "linspace":
            values = np.linspace(g["start"], g["stop"], g["num"])
        elif kind == "logspace":
            if g["start"] <= 0 or g["stop"] <= 0:
                raise ConfigError(
                    f"config key `{key}.logspace` = {dict(g)}: start and stop must be > 0 "
                    "(they are values, not exponents); use linspace or symlog to reach 0"
                )
            values = np.geomspace(g["start"], g["stop"], g["num"])
        elif kind == "symlog":
            if g["min"] > g["max"]:
                raise ConfigError(f"config key `{key}.symlog` = {dict(g)}: min must be <= max")
            side = np.geomspace(g["min"], g["max"], g["per_side"])
            values = np.concatenate([-side[::-1], [0.0], side])
        else:
            raise ConfigError(f"config key `{key}`: unknown generator {kind!r}")
    else:
        values = np.atleast_1d(np.asarray(spec, dtype=np.int64 if integer else np.float64))
    if values.size == 0:
        raise ConfigError(
            f"config key `{key}` = {spec!r}: the axis is empty; give at least one value"
        )
    if integer:
        values = values.astype(np.int64)
    else:
        values = values.astype(np.float64) + 0.0  # -0.0 -> 0.0
        if not np.all(np.isfinite(values)):
            raise ConfigError(f"config key `{key}` = {spec!r}: values must be finite")
    uniq, counts = np.unique(values, return_counts=True)
    if np.any(counts > 1):
        raise ConfigError(
            f"config key `{key}` = {spec!r}: duplicate value(s) {uniq[counts > 1].tolist()}; "
            "list each value once"
        )
    return uniq


def time_grid(time: Mapping) -> np.ndarray:
    """Saved times t/τ, shape (n_points,), starting at 0 (``time`` = a sweep's time settings)."""
    return TimeSpec.from_settings(time).grid()


@functools.cache
def _file_task_dims(path: str, center: bool) -> tuple[int, int]:
    from lrsweep.tasks import load_dataset

    task = load_dataset(path, center=center)
    return task.n_in, task.n_out


def _task_dims(name: str, task: Mapping) -> tuple[int, int] | None:
    """(n_in, n_out) fixed by the task, or None for kind random."""
    if task["kind"] == "hierarchy":
        return 8, 8
    if task["kind"] == "file":
        if not task.get("path"):
            raise ConfigError(
                f"config key `sweeps.{name}.task.path` = None: kind file needs the dataset path"
            )
        try:
            return _file_task_dims(str(task["path"]), bool(task["center"]))
        except ValueError as exc:
            raise ConfigError(f"config key `sweeps.{name}.task.path`: {exc}") from None
    return None


def _axes(name: str, sweep: Mapping) -> dict[str, np.ndarray]:
    grid = sweep["grid"]
    dims = _task_dims(name, sweep["task"])
    axes: dict[str, np.ndarray] = {}
    for axis in AXES:
        key = f"sweeps.{name}.grid.{axis}"
        spec = grid.get(axis)
        if spec is None:  # n_in / n_out: from the task (4 for random tasks)
            spec = [4] if dims is None else [dims[0] if axis == "n_in" else dims[1]]
        if axis in _AXIS_RANGE:
            lo, hi = _AXIS_RANGE[axis]
            for v in np.atleast_1d(np.asarray(spec, dtype=object)).tolist():
                if not lo <= v <= hi:
                    raise ConfigError(
                        f"config key `{key}` = {spec!r}: values must be "
                        f"{f'>= {lo}' if v < lo else f'<= {hi}'} (got {v})"
                    )
        values = axis_values(spec, key, integer=axis in INT_AXES)
        if axis == "scale" and values.min() < 0:
            raise ConfigError(
                f"config key `{key}` = {spec!r}: the absolute scale must be >= 0 "
                f"(got {values.min():g})"
            )
        axes[axis] = values
    if dims is not None:
        for axis, want in zip(("n_in", "n_out"), dims, strict=True):
            if axes[axis].tolist() != [want]:
                raise ConfigError(
                    f"config key `sweeps.{name}.grid.{axis}` = {grid.get(axis)!r}: task kind "
                    f"{sweep['task']['kind']!r} has {axis}={want}; set it to {want} or leave it out"
                )
    return axes


def _check_sweep(name: str, sweep: dict) -> None:
    axes = _axes(name, sweep)
    task, time = sweep["task"], sweep["time"]
    if task["kind"] == "random":
        n_samples = task["n_samples"]
        if n_samples is not None and n_samples < axes["n_in"].max():
            raise ConfigError(
                f"config key `sweeps.{name}.task.n_samples` = {n_samples}: must be >= every "
                f"n_in for whitened inputs (max n_in = {int(axes['n_in'].max())})"
            )
        sv = task["singular_values"]
        if sv is not None:
            ms = {min(i, o) for i in axes["n_in"].tolist() for o in axes["n_out"].tolist()}
            if ms != {len(sv)}:
                raise ConfigError(
                    f"config key `sweeps.{name}.task.singular_values` = {sv}: needs "
                    f"min(n_in, n_out) entries for every architecture, i.e. {sorted(ms)}"
                )
    elif task["path"] is not None and task["kind"] != "file":
        raise ConfigError(
            f"config key `sweeps.{name}.task.path` = {task['path']!r}: only used by kind "
            f"file, but kind is {task['kind']!r}"
        )
    if time["spacing"] == "log":
        t_min = time["t_min"]
        if t_min is not None and t_min >= time["t_max"]:
            raise ConfigError(
                f"config key `sweeps.{name}.time.t_min` = {t_min}: must be < t_max = "
                f"{time['t_max']}"
            )
    if sweep["solver"] == "gd":
        steps = time_grid(time) / sweep["lr"]
        if np.max(np.abs(steps - np.round(steps))) > 1e-9 * max(1.0, float(steps.max())):
            raise ConfigError(
                f"config key `sweeps.{name}.lr` = {sweep['lr']}: gradient descent saves at "
                f"steps t/lr, so every saved time must be a multiple of lr; with time = "
                f"{dict(time)} choose linear spacing with t_max/(n_points-1) a multiple of lr"
            )


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
    point only, never on its position in the grid.
    """
    with np.errstate(over="ignore"):
        h = np.full(np.shape(columns["lambda"]), _GOLDEN, dtype=np.uint64)
        for axis in AXES:
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
class SweepPlan:
    """Every point of one sweep with its status, and the shards of the runnable ones.

    Attributes
    ----------
    name : str
        Sweep name (``results/<name>/``).
    settings : dict
        The validated sweep config (defaults filled).
    points : dict of ndarray
        Columns, in plan order: the :data:`AXES`, ``point_id`` (int64), ``status``
        ('ok' or 'skipped'), ``reason`` ('' or why skipped) and ``shard`` ('' if skipped).
    shards : tuple of str
        Shard names, in plan order.
    """

    name: str
    settings: dict
    points: dict[str, np.ndarray]
    shards: tuple[str, ...]
    _rows: dict[str, np.ndarray] = field(repr=False, compare=False, default_factory=dict)

    @property
    def n_points(self) -> int:
        return int(self.points["point_id"].size)

    @property
    def n_skipped(self) -> int:
        return int(np.count_nonzero(self.points["status"] == "skipped"))

    def shard_rows(self, shard: str) -> np.ndarray:
        """Indices (into :attr:`points`) of the points of ``shard``."""
        try:
            return self._rows[shard]
        except KeyError:
            raise ValueError(
                f"sweep `{self.name}` has no shard {shard!r}; its shards are "
                f"{list(self.shards)[:5]}{' ...' if len(self.shards) > 5 else ''}"
            ) from None

    def shard_spec(self, shard: str) -> ShardSpec:
        """What one shard's job solves (:meth:`ShardSpec.to_params` is the Snakemake param).

        Holds only what changes the shard's results, so it doubles as its fingerprint:
        solver, task, init, time grid, ``lr`` (gd only), the sweep seed, the shape and the
        points (ids, λ, scale, seed).
        """
        rows = self.shard_rows(shard)
        s = self.settings
        first = rows[0]
        return ShardSpec(
            sweep=self.name,
            shard=shard,
            solver=s["solver"],
            task=TaskSpec.from_settings(s["task"]),
            init=InitSpec.from_settings(s["init"]),
            time=TimeSpec.from_settings(s["time"]),
            sweep_seed=int(s["seed"]),
            shape=Shape(**{a: int(self.points[a][first]) for a in SHAPE_AXES}),
            points={k: self.points[k][rows].tolist() for k in POINT_COLUMNS},
            lr=float(s["lr"]) if s["solver"] == "gd" else None,
        )

    def skipped(self) -> dict[str, np.ndarray]:
        """The skipped points' columns (same keys as :attr:`points`)."""
        mask = self.points["status"] == "skipped"
        return {k: v[mask] for k, v in self.points.items()}

    def summary(self) -> str:
        """One paragraph: points, shards, skipped points by reason."""
        n_ok = self.n_points - self.n_skipped
        sizes = [len(r) for r in self._rows.values()]
        size = f", {min(sizes)}-{max(sizes)} points each" if sizes else ""
        counts = {a: np.unique(self.points[a]).size for a in AXES}
        dims = " x ".join(f"{n} {a}" for a, n in counts.items() if n > 1)
        lines = [
            f"sweep `{self.name}` ({self.settings['solver']}): {self.n_points} points"
            f"{f' ({dims})' if dims else ''}, {n_ok} to solve in {len(self.shards)} shard(s){size}"
        ]
        if self.settings.get("description"):
            lines.append(f"  {self.settings['description']}")
        if self.n_skipped:
            counts = Counter(self.points["category"][self.points["status"] == "skipped"].tolist())
            lines.append(
                f"  {self.n_skipped} skipped (inadmissible): "
                + "; ".join(f"{n} with {c}" for c, n in counts.most_common())
            )
        return "\n".join(lines)


def _inadmissible(solver: str, cols: Mapping[str, np.ndarray]) -> tuple[np.ndarray, ...]:
    """(reason, category) per point; '' where the point is admissible."""
    from lrsweep.init import check_admissible_deep, layer_widths

    n = cols["lambda"].size
    reason = np.full(n, "", dtype=object)
    category = np.full(n, "", dtype=object)
    sign = np.sign(cols["lambda"]).astype(np.int64)
    keys = np.stack([sign, cols["n_in"], cols["n_out"], cols["width"], cols["depth"]], axis=1)
    uniq, inverse = np.unique(keys, axis=0, return_inverse=True)
    for k, (sgn, n_in, n_out, width, depth) in enumerate(uniq.tolist()):
        rows = np.flatnonzero(inverse.ravel() == k)
        max_depth = SOLVERS[solver].max_depth
        if max_depth is not None and depth > max_depth:
            reason[rows] = (
                f"solver {solver!r} needs depth {max_depth} (got depth={depth}); "
                "use solver flow or gd"
            )
            category[rows] = f"solver {solver} and depth > {max_depth}"
            continue
        try:
            check_admissible_deep(float(sgn), layer_widths(n_in, width, n_out, depth=depth))
        except ValueError:
            # per-λ message from the single source of the rule
            for lam in np.unique(cols["lambda"][rows]).tolist():
                sub = rows[cols["lambda"][rows] == lam]
                try:
                    check_admissible_deep(lam, layer_widths(n_in, width, n_out, depth=depth))
                except ValueError as exc:
                    reason[sub] = str(exc)
            category[rows] = (
                "lambda > 0 and width > n_out" if sgn > 0 else ("lambda < 0 and width > n_in")
            )
    return reason, category


def plan_sweep(name: str, sweep: Mapping) -> SweepPlan:
    """Expand one validated sweep config into a :class:`SweepPlan`.

    Raises
    ------
    ConfigError
        If ``on_invalid`` is 'error' and some points are inadmissible.
    """
    axes = _axes(name, sweep)
    mesh = np.meshgrid(*(axes[a] for a in AXES), indexing="ij")
    cols: dict[str, np.ndarray] = {a: m.ravel() for a, m in zip(AXES, mesh, strict=True)}
    cols["point_id"] = point_ids(cols)
    if np.unique(cols["point_id"]).size != cols["point_id"].size:  # pragma: no cover
        raise ConfigError(f"sweep `{name}`: point id collision; change `sweeps.{name}.seed`")
    solver = sweep["solver"]
    reason, category = _inadmissible(solver, cols)
    bad = reason != ""
    if bad.any() and sweep["on_invalid"] == "error":
        first = np.flatnonzero(bad)[0]
        point = {a: cols[a][first].item() for a in AXES}
        raise ConfigError(
            f"sweep `{name}`: {int(bad.sum())} of {bad.size} grid points are inadmissible, "
            f"e.g. {point}: {reason[first]}. Remove them from `sweeps.{name}.grid` or set "
            f"`sweeps.{name}.on_invalid: skip`"
        )
    cols["status"] = np.where(bad, "skipped", "ok").astype(object)
    cols["reason"] = reason
    cols["category"] = category
    shard = np.full(bad.size, "", dtype=object)
    target = sweep["shard_size"] or DEFAULT_SHARD_SIZE[solver]
    rows_of: dict[str, np.ndarray] = {}
    ok = np.flatnonzero(~bad)
    if ok.size:
        shape = np.stack([cols[a][ok] for a in SHAPE_AXES], axis=1)
        # plan order is (shape, λ, scale, seed); a shape group is a contiguous run
        change = np.flatnonzero(np.any(shape[1:] != shape[:-1], axis=1)) + 1
        for group in np.split(ok, change):
            key = tuple(int(cols[a][group[0]]) for a in SHAPE_AXES)
            for start, stop in shard_bounds(cols["point_id"][group], target):
                rows = group[start:stop]
                label = _shard_name(solver, key, cols["point_id"][rows])
                rows_of[label] = rows
                shard[rows] = label
    cols["shard"] = shard
    return SweepPlan(
        name=name, settings=dict(sweep), points=cols, shards=tuple(rows_of), _rows=rows_of
    )


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


def selected_sweeps(config: Mapping, sweeps: Iterable[str] | None = None) -> list[str]:
    """Names of the sweeps to plan: ``sweeps`` if given, else the config's ``run``, else all.

    Raises
    ------
    ConfigError
        For a name the config does not define.
    """
    run = config.get("run")
    names = list(sweeps) if sweeps is not None else list(run or config["sweeps"])
    unknown = [n for n in names if n not in config["sweeps"]]
    if unknown:
        where = "config key `run` names" if sweeps is None else "no sweep named"
        raise ConfigError(
            f"{where} {unknown}, which the config does not define; its sweeps are "
            f"{list(config['sweeps'])}"
        )
    return names
