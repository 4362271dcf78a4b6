"""A sweep's tables as pandas DataFrames, the phase aggregation and the lazy/rich boundary.

Loading (``results/<sweep>/`` written by the pipeline):

>>> from lrsweep import results                                  # doctest: +SKIP
>>> runs = results.load_runs("results/phase", status="ok", width=4)  # doctest: +SKIP
>>> runs.groupby("lambda")["kernel_distance"].mean()            # doctest: +SKIP

Filters are keyword arguments on columns: a scalar keeps equal values (floats compared
with a relative tolerance of 1e-9), a list/tuple/set keeps any of its values, a callable
gets the column and returns a boolean mask. ``lambda`` is a Python keyword: pass it as
``lambda_=...`` or in ``where={"lambda": ...}``.

Tables built by the pipeline's ``aggregate_sweep`` step (:func:`lrsweep.merge.merge_sweep`):

- ``phase``: one row per cell (solver, n_in, n_out, width, depth, lambda, scale) with
  ``n_seeds`` (runs with status ok) and mean / sample standard deviation over seeds of
  :func:`lrsweep.io.phase_metrics` (NaN values, e.g. a time to fit never reached, are left
  out of the mean);
- ``boundary``: per (solver, n_in, n_out, width, depth, scale) and side of λ = 0, the λ at
  which ``kernel_distance_mean`` first falls to the regime threshold moving outward from the
  smallest |λ| (rich → lazy), interpolated linearly in log|λ| between grid values (linearly
  in λ when one end is 0); NaN when that side does not cross.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from lrsweep import io
from lrsweep.paths import SweepPaths

__all__ = [
    "boundary_table",
    "describe",
    "filter_frame",
    "load_boundary",
    "load_crossings",
    "load_phase",
    "load_runs",
    "load_sweep",
    "load_trajectories",
    "phase_table",
    "sweep_status",
    "SweepTables",
]

_PHASE_KEYS = list(io.PHASE_KEYS)
_FACET_KEYS = list(io.FACET_KEYS)
_SCHEMAS = {
    "runs": io.runs_schema,
    "trajectories": lambda: io.TRAJECTORY_INDEX_SCHEMA,
    "phase": io.phase_schema,
    "boundary": lambda: io.BOUNDARY_SCHEMA,
    "crossings": lambda: io.CROSSINGS_SCHEMA,
}


# ----------------------------------------------------------------------------- loading


def filter_frame(
    df: pd.DataFrame, where: Mapping[str, Any] | None = None, **filters: Any
) -> pd.DataFrame:
    """Rows of ``df`` matching every filter (see the module docstring); index reset."""
    conds = dict(where or {})
    conds.update({k.rstrip("_"): v for k, v in filters.items()})
    mask = np.ones(len(df), dtype=bool)
    for col, want in conds.items():
        if col not in df.columns:
            raise ValueError(
                f"cannot filter on `{col}`: no such column; columns are {list(df.columns)}"
            )
        values = df[col]
        if callable(want):
            m = np.asarray(want(values), dtype=bool)
        elif isinstance(want, (list, tuple, set, frozenset, np.ndarray, pd.Series)):
            if pd.api.types.is_float_dtype(values):
                wanted = np.asarray(list(want), dtype=float)
                m = np.isclose(
                    values.to_numpy()[:, None], wanted[None, :], rtol=1e-9, atol=0.0
                ).any(axis=1)
            else:
                m = values.isin(list(want)).to_numpy()
        elif pd.api.types.is_float_dtype(values):
            m = np.isclose(values.to_numpy(), float(want), rtol=1e-9, atol=0.0)
        else:
            m = (values == want).to_numpy()
        mask &= m
    return df.loc[mask].reset_index(drop=True)


def _frame(sweep_dir: str | Path, table: str, columns: list[str] | None = None) -> pd.DataFrame:
    """One of a sweep's tables as a DataFrame, schema-checked (only ``columns`` if given)."""
    path = SweepPaths.of(sweep_dir).table(table)
    schema = _SCHEMAS[table]()
    if table == "boundary" and path.is_file() and "lambda_star_mean" in pq.read_schema(path).names:
        schema = io.SEARCH_BOUNDARY_SCHEMA  # a search sweep's λ* statistics
    return io.read_table(path, schema, columns=columns).to_pandas()


def load_runs(sweep_dir: str | Path, where: Mapping | None = None, **filters) -> pd.DataFrame:
    """``runs.parquet`` of a sweep (one row per grid point), optionally filtered."""
    return filter_frame(_frame(sweep_dir, "runs"), where, **filters)


def load_phase(sweep_dir: str | Path, where: Mapping | None = None, **filters) -> pd.DataFrame:
    """``phase.parquet`` (one row per cell: mean and spread over seeds)."""
    return filter_frame(_frame(sweep_dir, "phase"), where, **filters)


def load_boundary(sweep_dir: str | Path, where: Mapping | None = None, **filters) -> pd.DataFrame:
    """``boundary.parquet``: where the regime threshold is crossed. A grid sweep's has the λ
    interpolated between grid values per scale (:data:`lrsweep.io.BOUNDARY_SCHEMA`); a
    search sweep's, λ* over seeds per scale, side and crossing
    (:data:`lrsweep.io.SEARCH_BOUNDARY_SCHEMA`)."""
    return filter_frame(_frame(sweep_dir, "boundary"), where, **filters)


def load_crossings(sweep_dir: str | Path, where: Mapping | None = None, **filters) -> pd.DataFrame:
    """``crossings.parquet`` (search sweeps): every crossing λ* of every line and side, with
    its final bracket, evaluations and status (:data:`lrsweep.io.CROSSINGS_SCHEMA`)."""
    return filter_frame(_frame(sweep_dir, "crossings"), where, **filters)


#: Run columns joined to the curves by :func:`load_trajectories` (``join=True``).
RUN_PARAMETERS = ("solver", *(name for name, _ in io.PARAMETERS))


def load_trajectories(
    sweep_dir: str | Path, where: Mapping | None = None, *, join: bool = True, **filters
) -> pd.DataFrame:
    """The curves (one row per point and saved time) of the ok points that match the filters.

    Filters name columns of the runs table: parameters (``lambda_``, ``scale``, ``seed``,
    ``n_in``, ``point_id``, ...) or any measure, with :func:`filter_frame`'s rules. The
    matching points are found in ``runs.parquet`` (reading only the columns needed), then
    only the row groups of the trajectory files that hold them are read
    (:mod:`pyarrow.dataset` fragments restricted to those row groups, in parallel), so time
    and memory follow what is returned: the curves of 1,000 random points of a 10⁶-point
    sweep take 2–4 s (``benchmarks/bench_scale.py``). Without filters, every curve is read.

    Parameters
    ----------
    sweep_dir : path
        ``results/<sweep>``.
    where : mapping, optional
        Filters as a dict (e.g. ``{"lambda": 0.5}``).
    join : bool
        Add the run parameters (:data:`RUN_PARAMETERS`) to every row.

    Returns
    -------
    DataFrame
        Columns ``sweep``, ``point_id``, ``t`` and the curves (:data:`lrsweep.measures.CURVES`),
        then the parameters; rows by point (in runs-table order) then time.
    """
    paths = SweepPaths.of(sweep_dir)
    conds = {**(where or {}), **{k.rstrip("_"): v for k, v in filters.items()}}
    wanted = ["point_id", "shard", "status", *(RUN_PARAMETERS if join else ()), *conds]
    runs = io.read_table(paths.runs, io.runs_schema(), columns=list(dict.fromkeys(wanted)))
    runs = runs.to_pandas()
    runs = runs[runs["status"] == "ok"].reset_index(drop=True)
    chosen = filter_frame(runs.assign(_row=runs.index), conds)["_row"].to_numpy()
    table = _read_curves(paths, runs, chosen)
    traj = table.to_pandas()
    if join:
        params = runs.loc[chosen, ["point_id", *RUN_PARAMETERS]]
        traj = traj.merge(params, on="point_id", how="left", validate="many_to_one")
    rank = pd.Series(np.arange(chosen.size), index=runs["point_id"].to_numpy()[chosen])
    traj["_rank"] = traj["point_id"].map(rank)
    traj = traj.sort_values(["_rank", "t"], kind="stable").drop(columns="_rank")
    return traj.reset_index(drop=True)


def _read_curves(paths: SweepPaths, runs: pd.DataFrame, chosen: np.ndarray) -> pa.Table:
    """Rows of the trajectory dataset for the ok runs ``runs.iloc[chosen]``, reading only the
    row groups that hold them.

    A shard's file holds its ok points sorted by id, each with one row per saved time, so
    the rows of a point start at (its rank among the shard's ok ids) × (saved times).
    """
    import pyarrow.dataset as ds
    import pyarrow.fs as pafs

    schema = io.trajectories_schema()
    if chosen.size == 0:
        return schema.empty_table()
    index = io.read_table(paths.trajectories, io.TRAJECTORY_INDEX_SCHEMA).to_pandas()
    index = index.set_index("shard")
    codes, names = pd.factorize(runs["shard"])
    ids = runs["point_id"].to_numpy()
    order = np.lexsort((ids, codes))
    block_start = np.searchsorted(codes[order], np.arange(len(names)))
    position = np.empty_like(order)
    position[order] = np.arange(order.size)
    rank = position - block_start[codes]  # of every ok run within its shard
    fmt, local = ds.ParquetFileFormat(), pafs.LocalFileSystem()
    fragments = []
    for code in np.unique(codes[chosen]).tolist():
        entry = index.loc[names[code]]
        n_t = int(entry["n_rows"]) // int(entry["n_points"])
        path = paths.trajectory_dir / entry["file"]
        frag = fmt.make_fragment(str(path.resolve()), filesystem=local)
        if frag.physical_schema.remove_metadata() != schema:
            raise ValueError(
                f"table `{path}` does not have the expected schema; expected {schema.names}, "
                f"got {frag.physical_schema.names}; rerun the step that writes it"
            )
        ends = np.cumsum([rg.num_rows for rg in frag.row_groups])
        first_rows = rank[chosen[codes[chosen] == code]] * n_t
        groups = np.unique(np.searchsorted(ends, first_rows, side="right"))
        fragments.append(frag.subset(row_group_ids=groups.tolist()))
    dataset = ds.FileSystemDataset(fragments, schema=schema, format=fmt, filesystem=local)
    table = dataset.to_table(filter=ds.field("point_id").isin(ids[chosen]), use_threads=True)
    return table.cast(schema)


class SweepTables(NamedTuple):
    """The four tables of a sweep as DataFrames."""

    runs: pd.DataFrame
    trajectories: pd.DataFrame
    phase: pd.DataFrame
    boundary: pd.DataFrame


def load_sweep(sweep_dir: str | Path) -> SweepTables:
    """All four tables of ``results/<sweep>`` as DataFrames (trajectories not joined)."""
    d = Path(sweep_dir)
    return SweepTables(
        runs=load_runs(d),
        trajectories=load_trajectories(d, join=False),
        phase=load_phase(d),
        boundary=load_boundary(d),
    )


# ------------------------------------------------------------------------- aggregation


def phase_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean and sample std over seeds per cell of a runs table (:func:`io.phase_schema`).

    Every cell present in ``runs`` gets a row, also cells without any ok run (n_seeds = 0,
    NaN metrics), so the phase grid is complete. ``n_fit`` counts the ok runs that fit by
    t_max, ``n_<label>`` each regime label (:data:`lrsweep.metrics.REGIMES`). Means skip
    NaN: ``time_to_fit_90_mean`` averages the seeds that reached 90 % of the fit. The same
    computation as the pipeline's, which streams over shards
    (:func:`lrsweep.merge.phase_partials`).
    """
    from lrsweep.merge import combine_partials, phase_partials

    if runs.empty:
        return io.empty_table(io.phase_schema()).to_pandas()
    return combine_partials([phase_partials(with_ratio_defaults(runs))])


def with_ratio_defaults(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with the ratio columns (``layer_ratio``, ``lr_ratio``) set to their neutral
    1 where absent: tables written before those axes existed, or built by hand."""
    missing = {a: 1.0 for a in ("layer_ratio", "lr_ratio") if a not in table.columns}
    return table.assign(**missing) if missing else table


def _crossing(lam: np.ndarray, s: np.ndarray, threshold: float) -> float:
    """First λ (moving outward in |λ|) where s falls from > threshold to <= threshold."""
    order = np.argsort(np.abs(lam), kind="stable")
    lam, s = lam[order], s[order]
    for k in range(1, lam.size):
        a, b = s[k - 1], s[k]
        if not (np.isfinite(a) and np.isfinite(b)):
            continue
        if a > threshold >= b:
            x0, x1 = lam[k - 1], lam[k]
            f = (a - threshold) / (a - b)
            if x0 != 0 and x1 != 0:
                return float(
                    np.sign(x1) * np.exp(np.log(abs(x0)) + f * (np.log(abs(x1)) - np.log(abs(x0))))
                )
            return float(x0 + f * (x1 - x0))
    return float("nan")


def boundary_table(phase: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """λ where ``kernel_distance_mean`` crosses ``threshold`` on each side of λ = 0.

    Returns
    -------
    DataFrame with :data:`io.BOUNDARY_SCHEMA`: one row per (solver, n_in, n_out, width,
    depth, scale); ``lambda_neg`` / ``lambda_pos`` NaN when that side does not cross.
    """
    rows = []
    phase = with_ratio_defaults(phase)
    keys = ["sweep", *_FACET_KEYS, "layer_ratio", "scale"]
    for key, cell in phase.groupby(keys, sort=True):
        lam = cell["lambda"].to_numpy(float)
        s = cell["kernel_distance_mean"].to_numpy(float)
        neg, pos = lam <= 0, lam >= 0
        rows.append(
            {
                **dict(zip(keys, key, strict=True)),
                "threshold": float(threshold),
                "lambda_neg": _crossing(lam[neg], s[neg], threshold) if np.any(lam < 0) else np.nan,
                "lambda_pos": _crossing(lam[pos], s[pos], threshold) if np.any(lam > 0) else np.nan,
            }
        )
    if not rows:
        return io.empty_table(io.BOUNDARY_SCHEMA).to_pandas()
    return pd.DataFrame(rows)[io.BOUNDARY_SCHEMA.names]


# ------------------------------------------------------------------------------ status


def sweep_status(sweep_dir: str | Path, *, allow_failures: bool = False) -> str:
    """One line on how a sweep went: points by status and regime, the commonest failures
    (skipped points are inadmissible by plan; their reasons are in the runs table).

    Raises
    ------
    ValueError
        If no point of the sweep is ok (all failed or skipped) and not ``allow_failures``;
        the message is the same line plus what to do.
    """
    runs = _frame(sweep_dir, "runs", ["sweep", "status", "reason", "regime"])
    name = runs["sweep"].iloc[0] if len(runs) else Path(sweep_dir).name
    status = runs["status"].value_counts()
    n_ok = int(status.get("ok", 0))
    regimes = runs.loc[runs["status"] == "ok", "regime"].value_counts()
    parts = [
        f"sweep `{name}`: {len(runs)} points: "
        + ", ".join(f"{k} {int(status.get(k, 0))}" for k in ("ok", "failed", "skipped"))
    ]
    if n_ok:
        parts.append("regime: " + ", ".join(f"{k} {int(v)}" for k, v in regimes.items()))
    reasons = runs.loc[runs["status"] == "failed", "reason"].value_counts()
    if len(reasons):
        top = "; ".join(f"{int(n)} x {r}" for r, n in reasons.head(3).items())
        more = f"; and {len(reasons) - 3} other reason(s)" if len(reasons) > 3 else ""
        parts.append(f"failed: {top}{more}")
    line = " | ".join(parts)
    if n_ok == 0 and not allow_failures:
        raise ValueError(
            f"{line} -- no point is ok: fix the config (see the reasons in the `reason` column "
            f"of {SweepPaths.of(sweep_dir).runs}) or set `allow_failures: true` for sweep "
            f"`{name}` to accept it"
        )
    return line


# ---------------------------------------------------------------------------- describe


def _spread(values: np.ndarray, k: int) -> np.ndarray:
    """At most k of the sorted ``values``, evenly spaced, first and last included."""
    if values.size <= k:
        return values
    return values[np.unique(np.round(np.linspace(0, values.size - 1, k)).astype(int))]


def describe(
    sweep_dir: str | Path, metric: str = "kernel_distance", *, max_rows: int = 25, max_cols: int = 8
) -> str:
    """Text summary of a sweep: run counts, the phase table of ``metric`` over λ × scale
    per architecture, and the λ crossings of the lazy/rich boundary per scale."""
    d = Path(sweep_dir)
    runs = _frame(d, "runs", ["sweep", "status", "regime"])
    phase, bound = load_phase(d), load_boundary(d)
    col = f"{metric}_mean"
    if col not in phase.columns:
        raise ValueError(
            f"`metric`={metric!r} is not in the phase table; "
            f"choose one of {list(io.phase_metrics())}"
        )
    name = runs["sweep"].iloc[0] if len(runs) else d.name
    status = runs["status"].value_counts().to_dict()
    regimes = runs.loc[runs["status"] == "ok", "regime"].value_counts().to_dict()
    threshold = float(bound["threshold"].iloc[0]) if len(bound) else float("nan")
    lines = [
        f"sweep `{name}` ({d}): {len(runs)} runs: "
        + ", ".join(f"{k} {status.get(k, 0)}" for k in ("ok", "skipped", "failed"))
        + "; regime: "
        + ", ".join(f"{k} {v}" for k, v in sorted(regimes.items()))
        + f" (kernel distance threshold {threshold:g})",
    ]
    fmt = "{:.3g}".format
    row = io.phase_axis(phase) if len(phase) else "lambda"
    for key, cell in phase.groupby(_FACET_KEYS, sort=True):
        solver, n_in, n_out, width, depth, lr_ratio = key
        lams = _spread(np.sort(cell[row].unique()), max_rows)
        scales = _spread(np.sort(cell["scale"].unique()), max_cols)
        table = cell.pivot_table(index=row, columns="scale", values=col, dropna=False)
        table = table.reindex(index=lams, columns=scales)
        seeds = cell["n_seeds"]
        lines += [
            "",
            f"== {solver}: N_i={n_in} N_h={width} N_o={n_out} L={depth}"
            + (f" lr_ratio={lr_ratio:g}" if lr_ratio != 1 else "")
            + f" ({int(seeds.min())}-{int(seeds.max())} seeds per cell) ==",
            f"{col} (rows: {row}, columns: scale"
            + (
                ", subsampled"
                if len(lams) < cell[row].nunique() or len(scales) < cell["scale"].nunique()
                else ""
            )
            + ")",
            table.to_string(float_format=fmt, na_rep="-"),
        ]
        mask = np.logical_and.reduce([bound[k] == v for k, v in zip(_FACET_KEYS, key, strict=True)])
        if "lambda_star_mean" in bound.columns:  # a search sweep: λ* (mean over seeds) per side
            b = bound.loc[mask & (bound["crossing"] == 0)].pivot_table(
                index="scale", columns="side", values="lambda_star_mean"
            )
            if len(b):
                lines += [
                    f"lazy/rich boundary (searched): first lambda* on each side where "
                    f"{bound['measure'].iloc[0]} crosses {threshold:g}, mean over seeds",
                    b.to_string(float_format="{:.7g}".format, na_rep="-"),
                ]
            continue
        b = bound.loc[mask].set_index("scale")[["lambda_neg", "lambda_pos"]]
        if len(b) and row == "lambda":
            b = b.reindex(_spread(b.index.to_numpy(), max_rows))
            lines += [
                f"lazy/rich boundary: lambda where mean kernel distance falls to {threshold:g} "
                "moving out from lambda = 0 (- = no crossing)",
                b.to_string(float_format=fmt, na_rep="-"),
            ]
    return "\n".join(lines)
