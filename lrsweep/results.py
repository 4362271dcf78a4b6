"""A sweep's tables as pandas DataFrames, the phase aggregation and the lazy/rich boundary.

Loading (``results/<sweep>/`` written by the pipeline):

>>> from lrsweep import results                                  # doctest: +SKIP
>>> runs = results.load_runs("results/phase", status="ok", width=4)  # doctest: +SKIP
>>> runs.groupby("lambda")["kernel_distance"].mean()            # doctest: +SKIP

Filters are keyword arguments on columns: a scalar keeps equal values (floats compared
with a relative tolerance of 1e-9), a list/tuple/set keeps any of its values, a callable
gets the column and returns a boolean mask. ``lambda`` is a Python keyword: pass it as
``lambda_=...`` or in ``where={"lambda": ...}``.

Aggregation (the pipeline's ``aggregate_sweep`` step, :func:`aggregate`):

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

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa

from lrsweep import io
from lrsweep.paths import SweepPaths

__all__ = [
    "aggregate",
    "boundary_table",
    "describe",
    "filter_frame",
    "load_boundary",
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
    "trajectories": io.trajectories_schema,
    "phase": io.phase_schema,
    "boundary": lambda: io.BOUNDARY_SCHEMA,
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


def _frame(sweep_dir: str | Path, table: str) -> pd.DataFrame:
    """One of a sweep's tables (:data:`lrsweep.paths.TABLES`) as a DataFrame, schema-checked."""
    return io.read_table(SweepPaths.of(sweep_dir).table(table), _SCHEMAS[table]()).to_pandas()


def load_runs(sweep_dir: str | Path, where: Mapping | None = None, **filters) -> pd.DataFrame:
    """``runs.parquet`` of a sweep (one row per grid point), optionally filtered."""
    return filter_frame(_frame(sweep_dir, "runs"), where, **filters)


def load_phase(sweep_dir: str | Path, where: Mapping | None = None, **filters) -> pd.DataFrame:
    """``phase.parquet`` (one row per cell: mean and spread over seeds)."""
    return filter_frame(_frame(sweep_dir, "phase"), where, **filters)


def load_boundary(sweep_dir: str | Path, where: Mapping | None = None, **filters) -> pd.DataFrame:
    """``boundary.parquet`` (λ crossings of the regime threshold per scale)."""
    return filter_frame(_frame(sweep_dir, "boundary"), where, **filters)


def load_trajectories(
    sweep_dir: str | Path, where: Mapping | None = None, *, join: bool = True, **filters
) -> pd.DataFrame:
    """``trajectories.parquet``, joined with the run parameters (``join=True``) so that
    filters can name any parameter (``lambda_``, ``scale``, ``width``, ...)."""
    sweep_dir = Path(sweep_dir)
    traj = _frame(sweep_dir, "trajectories")
    if join:
        params = [
            "sweep",
            "point_id",
            "solver",
            "n_in",
            "n_out",
            "width",
            "depth",
            "lambda",
            "scale",
            "seed",
        ]
        runs = _frame(sweep_dir, "runs")[params]
        traj = traj.merge(
            runs,
            on=["sweep", "point_id"],
            how="left",
            validate="many_to_one",
            suffixes=("", "_run"),
        )
    return filter_frame(traj, where, **filters)


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
    NaN: ``time_to_fit_90_mean`` averages the ``n_fit`` seeds that reached 90 % of the fit.
    """
    if runs.empty:
        return io.empty_table(io.phase_schema()).to_pandas()
    ok = runs["status"] == "ok"
    metrics = list(io.phase_metrics())
    vals = runs[["sweep", *_PHASE_KEYS, *metrics]].copy()
    vals.loc[~ok, metrics] = np.nan
    counts = {
        "n_seeds": ok,
        "n_fit": ok & (runs["regime"] != "stalled"),
        **{c: runs["regime"] == c.removeprefix("n_") for c in io.regime_counts()},
    }
    for name, mask in counts.items():
        vals[name] = mask.astype(np.int64)
    g = vals.groupby(["sweep", *_PHASE_KEYS], sort=True, dropna=False)
    out = g[metrics].agg(["mean", "std"])
    out.columns = [f"{m}_{s}" for m, s in out.columns]
    for name in counts:
        out[name] = g[name].sum()
    out = out.reset_index()
    return out[io.phase_schema().names]


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
    keys = ["sweep", *_FACET_KEYS, "scale"]
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


def _plan_rows(name: str, settings: Mapping) -> tuple[pd.DataFrame, dict[int, int]]:
    from lrsweep.grid import plan_sweep

    p = plan_sweep(name, settings)
    cols = {k: v for k, v in p.points.items() if k != "category"}
    return pd.DataFrame(cols), {int(i): k for k, i in enumerate(p.points["point_id"].tolist())}


def _skipped_table(name: str, settings: Mapping, skipped: pd.DataFrame) -> pa.Table:
    n = len(skipped)
    cols: dict[str, Any] = {
        f.name: np.full(n, np.nan) for f in io.shard_schema() if pa.types.is_floating(f.type)
    }
    cols.update(
        {
            "sweep": [name] * n,
            "point_id": skipped["point_id"].to_numpy(np.int64),
            "shard": [""] * n,
            "solver": [settings["solver"]] * n,
            "task": [settings["task"]["kind"]] * n,
            **{
                a: skipped[a].to_numpy()
                for a in ("n_in", "n_out", "width", "depth", "lambda", "scale", "seed")
            },
            "status": ["skipped"] * n,
            "reason": skipped["reason"].tolist(),
            "weight_change_layers": [[] for _ in range(n)],
        }
    )
    return io.to_table(cols, io.shard_schema())


def aggregate(
    name: str,
    settings: Mapping,
    shard_runs: Sequence[str | Path],
    shard_trajectories: Sequence[str | Path],
    *,
    runs: str | Path,
    trajectories: str | Path,
    phase: str | Path,
    boundary: str | Path,
) -> None:
    """Merge a sweep's shard files into runs/trajectories and build phase/boundary.

    Adds one ``skipped`` row per inadmissible point (decided again from ``settings`` by
    :func:`lrsweep.grid.plan_sweep`), orders rows as the plan (trajectories by point, then
    t), labels ``regime`` with ``settings['regime_threshold']`` and checks that every planned
    point appears exactly once.
    """
    from lrsweep.metrics import regime

    threshold = float(settings["regime_threshold"])
    solved = io.read_tables(shard_runs, io.shard_schema())
    planned, position = _plan_rows(name, settings)
    skipped = _skipped_table(name, settings, planned[planned["status"] == "skipped"])
    table = pa.concat_tables([solved, skipped])
    ids = table.column("point_id").to_numpy()
    want = planned["point_id"].to_numpy()
    if ids.size != want.size or not np.array_equal(np.sort(ids), np.sort(want)):
        missing = np.setdiff1d(want, ids).size
        extra = ids.size - np.intersect1d(ids, want).size
        raise ValueError(
            f"sweep `{name}`: shard files do not match the plan ({missing} planned points "
            f"missing, {extra} unexpected rows); rerun the pipeline"
        )
    pos = np.fromiter((position[int(i)] for i in ids), dtype=np.int64, count=ids.size)
    table = table.take(pa.array(np.argsort(pos, kind="stable")))
    kd = table.column("kernel_distance").to_numpy(zero_copy_only=False)
    fit = table.column("fit_fraction").to_numpy(zero_copy_only=False)
    status = np.asarray(table.column("status").to_pylist(), dtype=object)
    ok = status == "ok"
    labels = np.where(
        ok, regime(np.where(ok, kd, 0.0), threshold, fit_fraction=np.where(ok, fit, 1.0)), ""
    )
    table = table.append_column("regime", pa.array(labels.tolist(), type=pa.string()))
    io.write_table(table, runs, io.runs_schema())

    traj = io.read_tables(shard_trajectories, io.trajectories_schema())
    tid = traj.column("point_id").to_numpy()
    tpos = np.fromiter((position.get(int(i), -1) for i in tid), dtype=np.int64, count=tid.size)
    order = np.lexsort((traj.column("t").to_numpy(), tpos))
    io.write_table(traj.take(pa.array(order)), trajectories, io.trajectories_schema())

    runs_df = table.to_pandas()
    ph = phase_table(runs_df)
    io.write_table(
        pa.Table.from_pandas(ph, schema=io.phase_schema(), preserve_index=False),
        phase,
        io.phase_schema(),
    )
    bd = boundary_table(ph, threshold)
    io.write_table(
        pa.Table.from_pandas(bd, schema=io.BOUNDARY_SCHEMA, preserve_index=False),
        boundary,
        io.BOUNDARY_SCHEMA,
    )
    counts = runs_df["status"].value_counts().to_dict()
    print(f"sweep `{name}`: {len(runs_df)} runs {counts}, {len(ph)} phase cells -> {runs}")


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
    runs = _frame(sweep_dir, "runs")
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
    runs, phase, bound = load_runs(d), load_phase(d), load_boundary(d)
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
    for key, cell in phase.groupby(_FACET_KEYS, sort=True):
        solver, n_in, n_out, width, depth = key
        lams = _spread(np.sort(cell["lambda"].unique()), max_rows)
        scales = _spread(np.sort(cell["scale"].unique()), max_cols)
        table = cell.pivot_table(index="lambda", columns="scale", values=col, dropna=False)
        table = table.reindex(index=lams, columns=scales)
        seeds = cell["n_seeds"]
        lines += [
            "",
            f"== {solver}: N_i={n_in} N_h={width} N_o={n_out} L={depth} "
            f"({int(seeds.min())}-{int(seeds.max())} seeds per cell) ==",
            f"{col} (rows: lambda, columns: scale"
            + (
                ", subsampled"
                if len(lams) < cell["lambda"].nunique() or len(scales) < cell["scale"].nunique()
                else ""
            )
            + ")",
            table.to_string(float_format=fmt, na_rep="-"),
        ]
        mask = np.logical_and.reduce([bound[k] == v for k, v in zip(_FACET_KEYS, key, strict=True)])
        b = bound.loc[mask].set_index("scale")[["lambda_neg", "lambda_pos"]]
        if len(b):
            b = b.reindex(_spread(b.index.to_numpy(), max_rows))
            lines += [
                f"lazy/rich boundary: lambda where mean kernel distance falls to {threshold:g} "
                "moving out from lambda = 0 (- = no crossing)",
                b.to_string(float_format=fmt, na_rep="-"),
            ]
    return "\n".join(lines)
