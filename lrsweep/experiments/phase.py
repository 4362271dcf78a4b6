"""Lazy–rich phase diagram: kernel distance, time to fit and NTK change over λ × scale for
square nets, from a configured sweep's aggregated tables."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from lrsweep.experiments import tables
from lrsweep.experiments.panels import heatmap_grid, message_figure
from lrsweep.experiments.tables import SweepInfo, pick
from lrsweep.plots import ARCH_KEYS, arch_label, boundary_legend, figure_style, new_figure

__all__ = ["METRICS", "caption", "compute", "draw", "select"]

METRICS = ("kernel_distance", "time_to_fit_90", "ntk_change")
"""Metrics drawn (``<metric>_mean`` columns of the phase table), one column of panels each."""
TITLE = "Lazy–rich phase diagram"


def select(info: Mapping[str, SweepInfo]) -> list[str]:
    """The sweep named ``square`` if it has a λ × scale grid, else the first sweep with a
    λ × scale grid that contains a square net (exact solver preferred)."""
    if "square" in info and info["square"].grid:
        return ["square"]
    return (
        pick(info, "grid", "square", "exact") or pick(info, "grid", "square") or pick(info, "grid")
    )[:1]


def compute(inputs: Mapping[str, Path | str] | None) -> pd.DataFrame:
    """The tidy table (:func:`lrsweep.experiments.tables.read`), square nets only (if any)."""
    df = tables.read(inputs)
    if df.empty:
        return df
    square = df["architecture"] == "square"
    return df[square].reset_index(drop=True) if square.any() else df


def draw(df: pd.DataFrame) -> Figure:
    """Phase diagram: S(0, t_max), time to fit and NTK change over λ × scale (heatmaps)."""
    df = tables.one_facet(df)
    if df.empty:
        return message_figure(
            "No sweep with a λ × scale grid in the config: add the `square` sweep of "
            "docs/paper.md.",
            TITLE,
        )
    groups = [sub for _, sub in df.groupby(list(ARCH_KEYS), sort=True)]
    titles = [arch_label(*sub[list(ARCH_KEYS)].iloc[0]) for sub in groups]
    threshold = tables.threshold(df)
    with figure_style():
        fig = new_figure(3.0 * len(METRICS) + 0.6, 2.6 * len(groups) + 1.6)
        heatmap_grid(fig, df, METRICS, groups, titles, threshold=threshold, metrics_in_rows=False)
        boundary_legend(fig, threshold)
        fig.suptitle(tables.title(df, TITLE), fontsize=10)
    return fig


def caption(df: pd.DataFrame) -> str:
    """What the heatmaps show, the sweep(s) and grid they come from, and the boundary."""
    return tables.caption(
        df,
        "phase",
        "Kernel distance S(0, t_max), time to 90 % of the loss decrease and NTK change "
        "‖K_T − K_0‖/‖K_0‖ over relative scale λ × absolute scale. ",
        heatmaps=True,
    )
