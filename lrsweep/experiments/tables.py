"""The sweep tables behind the table-driven figures: which sweeps, how they are read, and the
caption text they share.

A table-driven figure (``phase``, ``architecture``, ``width_depth``) picks the configured sweeps
it can use from :class:`SweepInfo` (see each module's ``select``), gets their
``phase.parquet`` and ``boundary.parquet`` as inputs named ``phase_<k>`` / ``boundary_<k>``,
and draws one tidy table: the phase rows of all inputs with the boundary crossings joined
(:func:`read`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from lrsweep import io
from lrsweep.grid import SweepPlan
from lrsweep.metrics import LAZY_THRESHOLD
from lrsweep.plots import ARCH_KEYS, arch_kind, arch_label

__all__ = [
    "INPUT_TABLES",
    "SweepInfo",
    "caption",
    "one_facet",
    "pick",
    "read",
    "sweep_info",
    "threshold",
    "title",
]

INPUT_TABLES = {"phase": io.PHASE_SCHEMA, "boundary": io.BOUNDARY_SCHEMA}
"""The tables of a sweep a table-driven figure reads, with their schemas."""


@dataclass(frozen=True)
class SweepInfo:
    """What a configured sweep offers the table-driven figures."""

    grid: bool
    """A λ × scale grid: at least 5 λ and 3 scale values (of status 'ok' points)."""
    square: bool
    """Has a square net N_i = N_h = N_o."""
    depth2: bool
    """Has depth-2 nets."""
    exact: bool
    """Solved by the exact solver ('exact' or 'both')."""
    lambdas: bool
    """Has more than one λ on a grid (a search sweep has none: its λ are searched)."""


def sweep_info(points: Mapping[str, object]) -> dict[str, SweepInfo]:
    """:class:`SweepInfo` of each sweep.

    Parameters
    ----------
    points : mapping of sweep name → plan
        A :class:`lrsweep.grid.SweepPlan` (its ``points`` and ``settings``) or a dict of
        columns with at least n_in, n_out, width, depth, lambda, scale, status.
    """
    info = {}
    for name, plan in points.items():
        if isinstance(plan, SweepPlan):  # from its axes and shapes, without its points
            uniq = {k: plan.values(k) for k in ("lambda", "scale", "depth")}
            square = any(s.n_in == s.width == s.n_out for s in plan.shapes())
            settings = plan.settings
            searched = plan.search is not None
        else:
            ok = np.asarray(plan["status"]) == "ok"
            uniq = {k: np.unique(np.asarray(plan[k])[ok]) for k in ("lambda", "scale", "depth")}
            n_in, width, n_out = (np.asarray(plan[k]) for k in ARCH_KEYS)
            square = bool(np.any((n_in == width) & (width == n_out) & ok))
            settings = {}
            searched = "role" in plan and bool(np.any(np.asarray(plan["role"]) != "grid"))
        if searched:  # λ is searched: no λ grid, phase and boundary tables of another kind
            uniq["lambda"] = np.array([])
        info[name] = SweepInfo(
            grid=uniq["lambda"].size >= 5 and uniq["scale"].size >= 3,
            square=square,
            depth2=bool(np.any(uniq["depth"] == 2)),
            exact=settings.get("solver", "exact") in ("exact", "both"),
            lambdas=uniq["lambda"].size > 1,
        )
    return info


def pick(info: Mapping[str, SweepInfo], *conditions: str) -> list[str]:
    """Names of the sweeps that meet all ``conditions`` (:class:`SweepInfo` fields)."""
    return [name for name, i in info.items() if all(getattr(i, c) for c in conditions)]


def read(inputs: Mapping[str, Path | str] | None) -> pd.DataFrame:
    """The phase rows of all ``inputs`` with the boundary crossings, one tidy table.

    Parameters
    ----------
    inputs : mapping of str → path
        ``phase_<k>`` / ``boundary_<k>`` → a sweep's ``phase.parquet`` / ``boundary.parquet``
        (read by :func:`lrsweep.io.read_table` with their schemas). Each table carries its
        sweep's name in its ``sweep`` column.

    Returns
    -------
    DataFrame
        The phase tables concatenated, with ``threshold``, ``lambda_neg`` and ``lambda_pos``
        of the boundary tables joined on (sweep, solver, n_in, n_out, width, depth, scale) and
        an ``architecture`` column (:func:`lrsweep.plots.arch_kind`). Without inputs, no rows.
    """
    tables: dict[str, list[pd.DataFrame]] = {t: [] for t in INPUT_TABLES}
    for key, path in (inputs or {}).items():
        kind = key.split("_", 1)[0]
        if kind not in tables:
            raise ValueError(
                f"input `{key}` must be named '<table>_<k>' with table in {list(INPUT_TABLES)}"
            )
        tables[kind].append(io.read_table(path, INPUT_TABLES[kind]).to_pandas())
    if not tables["phase"]:
        return pd.DataFrame(columns=["sweep", *io.PHASE_KEYS])
    phase = pd.concat(tables["phase"], ignore_index=True)
    keys = ["sweep", *io.FACET_KEYS, "scale"]
    if tables["boundary"]:
        bnd = pd.concat(tables["boundary"], ignore_index=True)
        cols = [c for c in ("threshold", "lambda_neg", "lambda_pos") if c in bnd.columns]
        phase = phase.merge(bnd[keys + cols], on=keys, how="left")
    phase["architecture"] = [arch_kind(*r) for r in phase[list(ARCH_KEYS)].itertuples(index=False)]
    return phase


def threshold(df: pd.DataFrame) -> float:
    """The regime threshold of the boundary tables (default LAZY_THRESHOLD)."""
    if "threshold" in df.columns and df["threshold"].notna().any():
        return float(df["threshold"].dropna().iloc[0])
    return LAZY_THRESHOLD


def one_facet(df: pd.DataFrame) -> pd.DataFrame:
    """Depth 2 (or the smallest depth) and one solver (exact preferred)."""
    if df.empty:
        return df
    df = df[df["depth"] == df["depth"].min()]
    solvers = list(df["solver"].unique())
    return df[df["solver"] == ("exact" if "exact" in solvers else solvers[0])]


def title(df: pd.DataFrame, head: str) -> str:
    """Figure title: ``head`` with the solver, seeds and sweeps of the table."""
    seeds = df["n_seeds"].max() if "n_seeds" in df.columns else np.nan
    solver = ", ".join(sorted(df["solver"].unique()))
    sweeps = ", ".join(sorted(df["sweep"].unique())) if "sweep" in df.columns else ""
    return f"{head} ({solver} solver, mean over {seeds:g} seeds; sweep {sweeps})"


def caption(df: pd.DataFrame, name: str, text: str, *, heatmaps: bool, note: str = "") -> str:
    """Caption of a table-driven figure: ``text`` (what it shows), the sweeps and grid the
    table comes from, for ``heatmaps`` the boundary contour and crossings, then ``note``.
    Without rows, says that target ``name`` had no input tables."""
    if df.empty:
        return f"{name}: no input tables (see docs/paper.md for the sweeps to configure)."
    text += _source_text(df)
    if heatmaps:
        text += _contour_text(df) + _boundary_text(df)
    return text + note


def _source_text(df: pd.DataFrame) -> str:
    """Caption sentence naming the sweeps, architectures and grid ranges of the table."""
    sweeps = ", ".join(sorted(df["sweep"].unique()))
    arch = ", ".join(sorted({arch_label(*r) for r in df[list(ARCH_KEYS)].itertuples(index=False)}))
    lam = df["lambda"]
    return (
        f"From the pipeline's aggregated tables of sweep(s) {sweeps} ({arch}; λ from "
        f"{lam.min():g} to {lam.max():g}, scale from {df['scale'].min():g} to "
        f"{df['scale'].max():g}; mean over seeds)."
    )


def _contour_text(df: pd.DataFrame) -> str:
    """Caption sentence on the boundary contour and markers of the heatmaps."""
    return (
        f" Dashed contour: lazy/rich boundary S(0, t_max) = {threshold(df):g}; diamonds: the "
        "boundary table's λ crossings."
    )


def _boundary_text(df: pd.DataFrame) -> str:
    """Where each architecture turns lazy at the smallest scale (boundary table crossings)."""
    if not {"lambda_neg", "lambda_pos"} <= set(df.columns):
        return ""
    parts = []
    for _, sub in one_facet(df).groupby(["n_in", "width", "n_out"]):
        b = sub.drop_duplicates("scale").sort_values("scale").iloc[0]
        sides = [
            f"λ < {b['lambda_neg']:.3g}" if np.isfinite(b["lambda_neg"]) else "",
            f"λ > {b['lambda_pos']:.3g}" if np.isfinite(b["lambda_pos"]) else "",
        ]
        lazy = " and ".join(x for x in sides if x) or "no λ of the grid"
        rich = [side for side, x in zip(("λ < 0", "λ > 0"), sides, strict=True) if not x]
        text = f"{arch_label(b['n_in'], b['width'], b['n_out'])} lazy for {lazy}"
        parts.append(text + (f" (rich for all {rich[0]})" if len(rich) == 1 else ""))
    if not parts:
        return ""
    scale = one_facet(df)["scale"].min()
    return f" At scale {scale:.2g}: " + "; ".join(parts) + "."
