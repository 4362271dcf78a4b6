"""The sweep config: schema validation, defaults, and the checks a schema cannot express.

:func:`validate_config` checks a config (``config.yaml``) against the JSON schema that
Snakemake also uses (``workflow/schemas/config.schema.yaml``, shipped as
``lrsweep/config.schema.yaml``), fills the documented defaults, and adds the semantic
checks (axes, task sizes, init family, solver and ratio axes, λ search, time grid,
learning rate), each a one-line :class:`ConfigError` naming the key. :mod:`lrsweep.grid`
plans the validated sweeps.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from lrsweep.dynamics import SOLVERS
from lrsweep.search import SearchSpec
from lrsweep.spec import TimeSpec

__all__ = [
    "AXES",
    "ConfigError",
    "GROUP_AXES",
    "INT_AXES",
    "RATIO_AXES",
    "SCHEMA_PATH",
    "SHAPE_AXES",
    "axis_values",
    "load_config",
    "load_schema",
    "search_spec",
    "selected_sweeps",
    "time_grid",
    "validate_config",
]

#: The JSON schema shared with the Snakefile (a symlink to workflow/schemas/config.schema.yaml).
SCHEMA_PATH = Path(__file__).with_name("config.schema.yaml")

#: Grid axes in plan order (outermost first); also the parameter columns of runs.parquet.
AXES = ("n_in", "n_out", "width", "depth", "layer_ratio", "lr_ratio", "lambda", "scale", "seed")
INT_AXES = ("n_in", "n_out", "width", "depth", "seed")
SHAPE_AXES = ("n_in", "n_out", "width", "depth")
#: Axes of a point group besides its shape: the ratio between the layers' σ (Gaussian inits)
#: and between their learning rates (flow, gd); 1 is neutral and leaves point ids unchanged.
RATIO_AXES = ("layer_ratio", "lr_ratio")
#: Axes fixed within one group of points (one :class:`ShapeGroup`).
GROUP_AXES = (*SHAPE_AXES, *RATIO_AXES)
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
    hint = ""
    if err.validator == "type" and str(err.instance).lower() in ("true", "false"):
        # Snakemake's --config reads Python literals: plots=false is the string 'false'
        hint = f"; on the command line write {str(err.instance).capitalize()} (a Python literal)"
    return ConfigError(f"config key `{key}` = {err.instance!r}: {err.message}{hint}")


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
    per_side}}`` = −max … −min (geometric), 0, min … max: 2·per_side + 1 values; and for
    integer axes ``{range: {start, stop, step}}`` = start, start + step, … < stop.

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
        elif kind == "range":
            values = np.arange(g["start"], g["stop"], g.get("step", 1), dtype=np.int64)
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
            raw = (
                [spec["range"]["start"], spec["range"]["stop"] - 1]
                if isinstance(spec, Mapping)
                else spec
            )
            for v in np.atleast_1d(np.asarray(raw, dtype=object)).tolist():
                if not lo <= v <= hi:
                    raise ConfigError(
                        f"config key `{key}` = {spec!r}: values must be "
                        f"{f'>= {lo}' if v < lo else f'<= {hi}'} (got {v})"
                    )
        if axis == "lambda" and sweep["init"]["kind"] == "gaussian":
            if axis_values(spec, key).tolist() != [0.0]:
                raise ConfigError(
                    f"config key `{key}` = {spec!r}: Gaussian inits (init.kind gaussian) have "
                    "no lambda axis: their imbalance is measured (runs column lambda_eff); "
                    "vary `grid.layer_ratio` and `grid.scale` (the sigma multiplier) instead"
                )
            axes[axis] = np.array([np.nan])  # not an input: runs and phase rows carry NaN
            continue
        if axis == "lambda" and isinstance(spec, Mapping) and "search" in spec:
            # a searched λ: one "point" per line and side, λ = the side's sign (±1)
            axes[axis] = np.asarray(search_spec(sweep).signs())
            continue
        values = axis_values(spec, key, integer=axis in INT_AXES)
        if axis == "scale" and values.min() < 0:
            raise ConfigError(
                f"config key `{key}` = {spec!r}: the absolute scale must be >= 0 "
                f"(got {values.min():g})"
            )
        if axis in RATIO_AXES and values.min() <= 0:
            raise ConfigError(
                f"config key `{key}` = {spec!r}: a ratio must be > 0 (got {values.min():g})"
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


def search_spec(sweep: Mapping) -> SearchSpec | None:
    """The λ search of a sweep (``grid.lambda: {search: ...}``), or None for a λ grid."""
    lam = sweep["grid"].get("lambda")
    if not (isinstance(lam, Mapping) and "search" in lam):
        return None
    g = lam["search"]
    return SearchSpec(
        min=float(g["min"]),
        max=float(g["max"]),
        per_side=int(g["per_side"]),
        sides=g["sides"],
        rtol=float(g["rtol"]),
        measure=g["measure"],
        threshold=float(sweep["regime_threshold"]),
    )


def _check_search(name: str, sweep: Mapping) -> None:
    from lrsweep.measures import measures

    search = search_spec(sweep)
    if search is None:
        return
    key = f"sweeps.{name}.grid.lambda.search"
    if search.min >= search.max:
        raise ConfigError(
            f"config key `{key}`: min = {search.min:g} must be < max = {search.max:g}"
        )
    names = [m.name for m in measures() if m.numeric]
    if search.measure not in names:
        raise ConfigError(
            f"config key `{key}.measure` = {search.measure!r}: not a per-run measure; "
            f"choose one of {names}"
        )


def _check_init(name: str, sweep: Mapping) -> None:
    """Init family, ratio axes and solver fit together (one line each, naming the key)."""
    grid, solver = sweep["grid"], sweep["solver"]
    gaussian = sweep["init"]["kind"] == "gaussian"
    key = f"sweeps.{name}"
    if gaussian and solver in ("exact", "both"):
        raise ConfigError(
            f"config key `{key}.solver` = {solver!r}: the exact solution needs lambda-balanced "
            "inits; Gaussian inits (init.kind gaussian) are solved by flow or gd, and at depth 2 "
            "each run records the exact solution of its lambda_eff-balanced counterpart "
            "(columns *_predicted, docs/pipeline.md)"
        )
    if gaussian and search_spec(sweep) is not None:
        raise ConfigError(
            f"config key `{key}.grid.lambda`: a lambda search needs lambda-balanced inits "
            "(init.kind balanced)"
        )
    if gaussian and sweep["init"]["aligned"]:
        raise ConfigError(
            f"config key `{key}.init.aligned`: only lambda-balanced inits can be aligned"
        )
    ratios = axis_values(grid["layer_ratio"], f"{key}.grid.layer_ratio").tolist()
    if not gaussian and ratios != [1.0]:
        raise ConfigError(
            f"config key `{key}.grid.layer_ratio` = {grid['layer_ratio']!r}: the ratio between "
            "the layers' sigma is an axis of Gaussian inits (init.kind gaussian); a "
            "lambda-balanced init sets the layers' sizes by lambda"
        )
    rates = axis_values(grid["lr_ratio"], f"{key}.grid.lr_ratio").tolist()
    if solver in ("exact", "both") and rates != [1.0]:
        raise ConfigError(
            f"config key `{key}.grid.lr_ratio` = {grid['lr_ratio']!r}: per-layer learning "
            f"rates need solver flow or gd (got {solver!r})"
        )
    if gaussian and axis_values(grid["scale"], f"{key}.grid.scale").min() <= 0:
        raise ConfigError(
            f"config key `{key}.grid.scale` = {grid['scale']!r}: for Gaussian inits scale is "
            "the sigma multiplier and must be > 0"
        )


def _check_sweep(name: str, sweep: dict) -> None:
    _check_search(name, sweep)
    _check_init(name, sweep)
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
