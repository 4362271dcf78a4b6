"""Merge a sweep's shard files into its tables, one shard at a time, checking every file.

The aggregate step (:func:`merge_sweep`) streams over the shards of the plan in order: it
checks each shard's runs file and trajectories file against the plan, labels the regime of
its runs, appends them to ``runs.parquet`` (a :class:`pyarrow.parquet.ParquetWriter`) and
keeps only per-cell partial statistics for the phase table, which combine exactly
(:func:`phase_partials`, :func:`combine_partials`). Memory is that of one shard plus one row
per phase cell, whatever the number of points; the trajectories are never concatenated:
the solver jobs write them straight into the dataset ``results/<sweep>/trajectories/``, and
this step only checks them and writes the dataset's index (read by
:func:`lrsweep.results.load_trajectories`).

A shard file that is missing, truncated or corrupt, has the wrong schema, belongs to
another shard or plan (its fingerprint, :meth:`lrsweep.spec.ShardSpec.fingerprint`), or whose
rows do not match the plan (duplicate, missing or foreign points or times) stops the merge
with one line naming the file. Both files of that shard are moved aside (``*.bad``), so that
running the same Snakemake command again solves exactly that shard and nothing else.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from lrsweep import io
from lrsweep.config import GROUP_AXES
from lrsweep.fitting import regime
from lrsweep.paths import SHARD_FILES, SweepPaths
from lrsweep.spec import ShardSpec

__all__ = [
    "ShardError",
    "check_runs_shard",
    "check_trajectory_shard",
    "combine_partials",
    "merge_sweep",
    "phase_partials",
]

#: Key of the shard fingerprint in the Parquet metadata of a shard's files.
FINGERPRINT_KEY = b"lrsweep.shard"
_CELL = ["sweep", *io.PHASE_KEYS]


class ShardError(ValueError):
    """A shard file does not match the plan; the message names the file and the problem."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"shard file {path} {problem}")
        self.path = path


def _open(path: Path, schema: pa.Schema, spec: ShardSpec) -> pq.ParquetFile:
    """Open a shard file, checking that it is readable Parquet, its schema and fingerprint."""
    if not path.is_file():
        raise ShardError(path, "is missing")
    try:
        pf = pq.ParquetFile(path)
        got = pf.schema_arrow
    except (OSError, pa.ArrowException) as exc:
        raise ShardError(path, f"is truncated or corrupt ({exc})") from None
    if got.remove_metadata() != schema:
        raise ShardError(path, f"has columns {got.names}, expected {schema.names}")
    fingerprint = (got.metadata or {}).get(FINGERPRINT_KEY, b"").decode()
    if fingerprint != spec.fingerprint():
        raise ShardError(
            path,
            f"was written for another shard or plan (fingerprint {fingerprint or 'none'}, "
            f"expected {spec.fingerprint()} of {spec.sweep}/{spec.shard})",
        )
    return pf


def _read(pf: pq.ParquetFile, path: Path, columns: list[str] | None = None) -> pa.Table:
    try:
        return pf.read(columns=columns)
    except (OSError, pa.ArrowException) as exc:
        raise ShardError(path, f"is truncated or corrupt ({exc})") from None


def _line_keys(side: np.ndarray, scale: np.ndarray, seed: np.ndarray) -> list[tuple]:
    """One key (side ±1, scale, seed) per row: the line-side a row belongs to."""
    return list(
        zip(
            np.sign(side).astype(int).tolist(),
            np.asarray(scale, float).tolist(),
            np.asarray(seed).tolist(),
            strict=True,
        )
    )


def check_runs_shard(path: str | os.PathLike, spec: ShardSpec) -> pa.Table:
    """The runs file of a shard, checked against the plan: one row per point of ``spec`` in
    its order; for a search sweep, the bracket points of every line-side of ``spec`` and
    any iterates, all on those line-sides, no point twice."""
    path = Path(path)
    schema = io.shard_schema()
    table = _read(_open(path, schema, spec), path).cast(schema)
    ids = table.column("point_id").to_numpy()
    want = spec.points["point_id"]
    if spec.search is None:
        if ids.size != want.size or not np.array_equal(ids, want):
            raise ShardError(
                path,
                f"holds {ids.size} rows whose point ids are not the {want.size} points of "
                f"{spec.sweep}/{spec.shard} in plan order",
            )
        return table
    pts = spec.points
    lines = set(_line_keys(pts["lambda"], pts["scale"], pts["seed"]))
    cols = {c: table.column(c).to_numpy(zero_copy_only=False) for c in ("lambda", "scale", "seed")}
    role = np.asarray(table.column("role").to_pylist(), dtype=object)
    keys = _line_keys(cols["lambda"], cols["scale"], cols["seed"])
    per_line = Counter(k for k, r in zip(keys, role, strict=True) if r == "bracket")
    if (
        np.unique(ids).size != ids.size
        or not set(keys) <= lines
        or set(per_line) != lines
        or set(per_line.values()) != {spec.search.per_side}
        or not set(role) <= {"bracket", "iterate"}
    ):
        raise ShardError(
            path,
            f"holds rows that are not the bracket points and iterates of the {len(lines)} "
            f"line-sides of {spec.sweep}/{spec.shard}",
        )
    return table


def check_crossings_shard(path: str | os.PathLike, spec: ShardSpec) -> pa.Table:
    """The crossings file of a shard: empty for a grid sweep; for a search sweep, at least
    one row for every line-side of ``spec`` and none for another."""
    path = Path(path)
    table = _read(_open(path, io.CROSSINGS_SCHEMA, spec), path).cast(io.CROSSINGS_SCHEMA)
    if spec.search is None:
        if table.num_rows:
            raise ShardError(path, f"has {table.num_rows} rows, but its sweep is not a search")
        return table
    pts = spec.points
    lines = set(_line_keys(pts["lambda"], pts["scale"], pts["seed"]))
    side = np.where(np.asarray(table.column("side").to_pylist()) == "negative", -1, 1)
    scale, seed = table.column("scale").to_numpy(), table.column("seed").to_numpy()
    keys = set(_line_keys(side, scale, seed))
    if keys != lines:
        raise ShardError(
            path, f"does not hold the crossings of the {len(lines)} line-sides of its shard"
        )
    return table


def check_trajectory_shard(path: str | os.PathLike, spec: ShardSpec, ok_ids: np.ndarray) -> int:
    """Check the trajectories file of a shard: each ``ok`` point once at every saved time.

    Rows must be sorted by point id, each point's rows at the times of the plan in order; no
    duplicate, missing or foreign (point, t). Returns the number of rows.
    """
    path = Path(path)
    table = _read(_open(path, io.trajectories_schema(), spec), path, ["point_id", "t"])
    t = spec.time.grid()
    ids = np.sort(np.asarray(ok_ids, dtype=np.int64))
    n = ids.size * t.size
    got_ids = table.column("point_id").to_numpy()
    got_t = table.column("t").to_numpy()
    if got_ids.size != n:
        raise ShardError(
            path, f"has {got_ids.size} rows, expected {ids.size} ok points x {t.size} times = {n}"
        )
    if not (
        np.array_equal(got_ids, np.repeat(ids, t.size))
        and np.array_equal(got_t, np.tile(t, ids.size))
    ):
        raise ShardError(
            path,
            "has duplicate, missing or foreign (point_id, t) rows: they must be the shard's ok "
            "points, sorted, each at every saved time",
        )
    return n


# ---------------------------------------------------------------------------- phase


def phase_partials(runs: pd.DataFrame) -> pd.DataFrame:
    """Per-cell partial statistics of some runs: counts, and n, mean, M2 per phase metric.

    M2 is the sum of squared deviations from the mean. Partials of disjoint sets of runs
    combine exactly into those of their union (:func:`combine_partials`).
    """
    ok = runs["status"] == "ok"
    metrics = list(io.phase_metrics())
    vals = runs[_CELL].copy()
    counts = {
        "n_seeds": ok,
        "n_fit": ok & runs["regime"].isin(["lazy", "rich", "undefined"]),
        **{c: runs["regime"] == c.removeprefix("n_") for c in io.regime_counts()},
    }
    for name, mask in counts.items():
        vals[name] = mask.astype(np.int64)
    for m in metrics:
        vals[m] = runs[m].where(ok)
    g = vals.groupby(_CELL, sort=False, dropna=False)
    out = g[list(counts)].sum()
    for m in metrics:
        n = g[m].count()
        out[f"{m}__n"] = n
        out[f"{m}__mean"] = g[m].mean()
        out[f"{m}__m2"] = (g[m].var(ddof=0) * n).fillna(0.0)
    return out.reset_index()


def combine_partials(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """The phase table (:func:`lrsweep.io.phase_schema`) from partials of disjoint runs.

    n = Σn_i, mean = Σn_i·mean_i / n, M2 = Σ[M2_i + n_i(mean_i − mean)²] (exact; each term is
    non-negative, so nothing cancels), std = √(M2/(n−1)), the sample standard deviation
    (NaN for fewer than two values).
    """
    if not parts:
        return io.empty_table(io.phase_schema()).to_pandas()
    allp = pd.concat(parts, ignore_index=True)
    keys = [allp[k] for k in _CELL]
    g = allp.groupby(keys, sort=True, dropna=False)
    out = g[["n_seeds", "n_fit", *io.regime_counts()]].sum()
    for m in metrics_of(allp):
        n_i, mean_i = allp[f"{m}__n"], allp[f"{m}__mean"]
        wsum = (n_i * mean_i).fillna(0.0)
        n = n_i.groupby(keys, dropna=False).transform("sum")
        mean = (wsum.groupby(keys, dropna=False).transform("sum") / n).where(n > 0)
        spread = (allp[f"{m}__m2"] + n_i * (mean_i - mean) ** 2).fillna(0.0)
        n_cell = g[f"{m}__n"].sum()
        out[f"{m}_mean"] = mean.groupby(keys, sort=True, dropna=False).first()
        out[f"{m}_std"] = np.sqrt(
            spread.groupby(keys, sort=True, dropna=False).sum() / (n_cell - 1)
        ).where(n_cell > 1)
    out.index.names = _CELL
    return out.reset_index()[io.phase_schema().names]


def metrics_of(partials: pd.DataFrame) -> list[str]:
    """The phase metrics whose statistics a partials frame holds."""
    return [c.removesuffix("__n") for c in partials.columns if c.endswith("__n")]


# ---------------------------------------------------------------------------- merge


def _label(table: pa.Table, threshold: float) -> pa.Table:
    """Append the ``regime`` of every ok run ('' for the others)."""
    kd = table.column("kernel_distance").to_numpy(zero_copy_only=False)
    fit = table.column("fit_fraction").to_numpy(zero_copy_only=False)
    ok = np.asarray(table.column("status").to_pylist(), dtype=object) == "ok"
    labels = np.where(
        ok, regime(np.where(ok, kd, 0.0), threshold, fit_fraction=np.where(ok, fit, 1.0)), ""
    )
    return table.append_column("regime", pa.array(labels.tolist(), type=pa.string()))


def _skipped(plan, settings: dict) -> Iterator[pa.Table]:
    """Runs rows of the skipped points, one architecture at a time."""
    schema = io.shard_schema()
    for cols in plan.skipped_columns():
        n = cols["point_id"].size
        table = {f.name: np.full(n, np.nan) for f in schema if pa.types.is_floating(f.type)}
        table |= {f.name: [""] * n for f in schema if pa.types.is_string(f.type)}
        table.update(
            {
                "sweep": [plan.name] * n,
                "shard": [""] * n,
                "solver": [settings["solver"]] * n,
                "task": [settings["task"]["kind"]] * n,
                **{a: cols[a] for a in ("point_id", *GROUP_AXES)},
                **{a: cols[a] for a in ("lambda", "scale", "seed")},
                "role": ["grid"] * n,
                "status": ["skipped"] * n,
                "reason": cols["reason"],
                **{f.name: [[] for _ in range(n)] for f in schema if pa.types.is_list(f.type)},
            }
        )
        yield io.to_table(table, schema)


def _skipped_sides(plan, settings: dict) -> Iterator[pa.Table]:
    """Crossings rows (status 'skipped') of the inadmissible sides of a search sweep's lines."""
    search = plan.search
    for cols in plan.skipped_columns():
        n = cols["point_id"].size
        yield io.to_table(
            {
                "sweep": [plan.name] * n,
                "solver": [settings["solver"]] * n,
                "task": [settings["task"]["kind"]] * n,
                **{a: cols[a] for a in (*GROUP_AXES, "scale", "seed")},
                "side": np.where(cols["lambda"] < 0, "negative", "positive").tolist(),
                "crossing": np.full(n, -1),
                "measure": [search.measure] * n,
                "threshold": np.full(n, search.threshold),
                **{c: np.full(n, np.nan) for c in ("lambda_star", "measure_at_star")},
                "bracket_lo": np.where(cols["lambda"] < 0, -search.max, search.min),
                "bracket_hi": np.where(cols["lambda"] < 0, -search.min, search.max),
                "evaluations": np.zeros(n, dtype=np.int64),
                "status": ["skipped"] * n,
                "reason": cols["reason"],
                **{c: np.full(n, np.nan) for c in ("measure_min", "measure_max")},
            },
            io.CROSSINGS_SCHEMA,
        )


def search_boundary(crossings: pd.DataFrame) -> pd.DataFrame:
    """λ* over seeds (mean, sample std, count) per cell, side and crossing index
    (:data:`lrsweep.io.SEARCH_BOUNDARY_SCHEMA`), from the converged crossings."""
    keys = [
        "sweep",
        "solver",
        "n_in",
        "n_out",
        "width",
        "depth",
        "layer_ratio",
        "lr_ratio",
        "scale",
        "side",
        "crossing",
        "measure",
        "threshold",
    ]
    ok = crossings[crossings["status"] == "converged"]
    g = ok.groupby(keys, sort=True)["lambda_star"]
    out = pd.DataFrame(
        {"n_lines": g.count(), "lambda_star_mean": g.mean(), "lambda_star_std": g.std()}
    ).reset_index()
    return out[io.SEARCH_BOUNDARY_SCHEMA.names]


def _quarantine(paths: SweepPaths, shard: str) -> list[Path]:
    """Move both files of a shard aside (``*.bad``) so that the workflow solves it again."""
    moved = []
    for p in (paths.shard_file(kind, shard) for kind in SHARD_FILES):
        if p.exists():
            bad = p.with_name(p.name + ".bad")
            os.replace(p, bad)
            moved.append(bad)
    return moved


def merge_sweep(plan, paths: SweepPaths, *, log: Callable[[str], None] = print) -> dict:
    """Check a sweep's shard files and write its runs, phase, boundary and trajectory index.

    Parameters
    ----------
    plan : lrsweep.grid.SweepPlan
    paths : SweepPaths
        Where the shard files are and the tables go.
    log : callable
        Receives one summary line.

    Returns
    -------
    dict
        Point counts by status.

    Raises
    ------
    ValueError
        One line naming the first shard file that does not match the plan (both files of
        that shard are then moved aside: rerunning the workflow solves exactly that shard).
    """
    from lrsweep.results import boundary_table

    settings = plan.settings
    threshold = float(settings["regime_threshold"])
    schema = io.runs_schema()
    partials, index, counts = [], [], {"ok": 0, "failed": 0, "skipped": 0}

    def add(table: pa.Table) -> pa.Table:
        table = _label(table, threshold)
        df = table.to_pandas()
        # a search sweep's phase table is over its bracket points: a grid common to all lines
        partials.append(phase_partials(df[df["role"] != "iterate"]))
        for k, v in zip(
            *np.unique(table.column("status").to_numpy(zero_copy_only=False), return_counts=True),
            strict=True,
        ):
            counts[str(k)] = counts.get(str(k), 0) + int(v)
        return table

    with (
        io.table_writer(paths.runs, schema) as write,
        io.table_writer(paths.crossings, io.CROSSINGS_SCHEMA) as write_crossings,
    ):
        for shard in plan.shards:
            spec = plan.shard_spec(shard)
            try:
                table = check_runs_shard(paths.shard_runs(shard), spec)
                ok = np.asarray(table.column("status").to_pylist(), dtype=object) == "ok"
                ok_ids = table.column("point_id").to_numpy()[ok]
                rows = check_trajectory_shard(paths.shard_trajectories(shard), spec, ok_ids)
                crossings = check_crossings_shard(paths.shard_crossings(shard), spec)
            except ShardError as exc:
                moved = _quarantine(paths, shard)
                raise ValueError(
                    f"{exc}; moved the shard's files aside ({', '.join(map(str, moved)) or '-'}):"
                    " run the same snakemake command again to solve exactly that shard"
                ) from None
            write(add(table))
            write_crossings(crossings)
            index.append(
                (
                    shard,
                    str(paths.shard_trajectories(shard).name),
                    int(ok.sum()),
                    rows,
                    spec.fingerprint(),
                )
            )
        if plan.search is None:
            for table in _skipped(plan, settings):
                write(add(table))
        else:  # an inadmissible side of a line is a crossing row, not a run
            for table in _skipped_sides(plan, settings):
                write_crossings(table)

    phase = combine_partials(partials)
    io.write_table(
        pa.Table.from_pandas(phase, preserve_index=False), paths.phase, io.phase_schema()
    )
    if plan.search is None:
        bd, bd_schema = boundary_table(phase, threshold), io.BOUNDARY_SCHEMA
    else:
        bd, bd_schema = search_boundary(pd.read_parquet(paths.crossings)), io.SEARCH_BOUNDARY_SCHEMA
    io.write_table(pa.Table.from_pandas(bd, preserve_index=False), paths.boundary, bd_schema)
    shard, file, n_ok, n_rows, fp = (
        (list(c) for c in zip(*index, strict=True)) if index else ([],) * 5
    )
    io.write_table(
        pa.table(
            {"shard": shard, "file": file, "n_points": n_ok, "n_rows": n_rows, "fingerprint": fp},
            schema=io.TRAJECTORY_INDEX_SCHEMA,
        ),
        paths.trajectories,
        io.TRAJECTORY_INDEX_SCHEMA,
    )
    n = sum(counts.values())
    log(f"sweep `{plan.name}`: {n} runs {counts}, {len(phase)} phase cells -> {paths.runs}")
    return counts


def solve_and_merge(plan, paths: SweepPaths, *, log: Callable[[str], None] | None = None) -> dict:
    """Solve every shard of ``plan`` in this process and merge them: the pipeline without
    Snakemake (for small sweeps, tests and notebooks). Returns the point counts by status."""
    from lrsweep.solve import run_shard

    for shard in plan.shards:
        files = [paths.shard_file(kind, shard) for kind in SHARD_FILES]
        run_shard(plan.shard_spec(shard), *files, log=None)
    return merge_sweep(plan, paths, log=log or (lambda _line: None))
