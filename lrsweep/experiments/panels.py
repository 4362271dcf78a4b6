"""Panels and legends shared by the paper figures, built on :mod:`lrsweep.plots`.

Heatmap panels are :func:`lrsweep.plots.draw_cells` (the cells and boundary contour of
:func:`lrsweep.plots.phase_heatmaps`) with the same colour scales, tick rules and legend;
what is here is their arrangement for comparisons: several metrics side by side, groups that
may be missing (a panel says what to configure), sparse λ ticks; and the legend of figures
that draw gradient descent under the exact solution.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib import ticker as mticker
from matplotlib.axes import Axes
from matplotlib.figure import Figure, SubFigure
from matplotlib.lines import Line2D

from lrsweep.plots import (
    AxisScale,
    colorbar_log_ticks,
    draw_boundary_markers,
    draw_cells,
    figure_style,
    metric_norm,
    metric_style,
    new_figure,
)

__all__ = [
    "LAMBDA_LABEL",
    "METRIC_TITLES",
    "axes_message",
    "gd_exact_legend",
    "heatmap_grid",
    "message_figure",
    "sparse_symlog_ticks",
]

LAMBDA_LABEL = r"$\lambda$ (relative scale)"
#: Titles of the metrics' panels (:func:`heatmap_grid` with metrics in columns).
METRIC_TITLES = {
    "kernel_distance": "Kernel distance (lazy ≈ 0)",
    "time_to_fit_90": "Time to fit",
    "ntk_change": "NTK change",
}


def message_figure(text: str, title: str) -> Figure:
    """A figure that only says ``text`` (wrapped), e.g. which sweep to configure."""
    with figure_style():
        fig = new_figure(7.0, 3.0)
        ax = fig.subplots()
        axes_message(ax, text, width=80, fontsize=9)
        fig.suptitle(title, fontsize=10)
    return fig


def axes_message(ax: Axes, text: str, *, width: int, fontsize: float) -> None:
    """Turn ``ax`` off and write ``text`` (wrapped at ``width`` characters) in its middle."""
    ax.axis("off")
    ax.text(
        0.5,
        0.5,
        textwrap.fill(text, width),
        ha="center",
        va="center",
        fontsize=fontsize,
        transform=ax.transAxes,
    )


def gd_exact_legend(fig: Figure, lr: float, *, gd_width: float, exact: str) -> None:
    """Legend under the panels: gradient descent at rate ``lr`` (wide, light lines of width
    ``gd_width``) under the exact solution (thin dashed lines labelled ``exact``)."""
    gd = f"gradient descent, η = {lr:g}"
    fig.legend(
        handles=[
            Line2D([], [], color="0.3", lw=gd_width, alpha=0.35, label=gd),
            Line2D([], [], color="0.3", lw=1.0, ls="--", label=exact),
        ],
        loc="outside lower center",
        ncols=2,
        frameon=False,
    )


def sparse_symlog_ticks(ax: Axes, axis: str, values) -> None:
    """At most ~7 labelled ticks on a symlog λ axis: 0 and every k-th decade on each side."""
    v = np.asarray(values, float)
    nz = np.abs(v[np.isfinite(v) & (v != 0)])
    if nz.size == 0:
        return
    lo, hi = int(np.floor(np.log10(nz.min()))), int(np.ceil(np.log10(nz.max())))
    step = max(1, -(-(hi - lo) // 3))
    decades = 10.0 ** np.arange(hi, lo - 1, -step)[::-1]
    ticks = [*(-decades[::-1])] * bool(np.any(v < 0)) + [0.0] + [*decades] * bool(np.any(v > 0))
    axis_obj = ax.xaxis if axis == "x" else ax.yaxis
    axis_obj.set_major_locator(mticker.FixedLocator(ticks))
    axis_obj.set_major_formatter(mticker.FuncFormatter(lambda x, _: f"{x:g}"))
    axis_obj.set_minor_locator(mticker.NullLocator())


def heatmap_grid(
    fig: Figure | SubFigure,
    phase: pd.DataFrame,
    metrics: Sequence[str],
    groups: Sequence[pd.DataFrame | None],
    titles: Sequence[str],
    *,
    threshold: float,
    metrics_in_rows: bool,
    metric_titles: Mapping[str, str] = METRIC_TITLES,
) -> np.ndarray:
    """Heatmaps of ``<metric>_mean`` over λ × scale for each metric and group of cells.

    Each group (a sub-table of ``phase``, e.g. one architecture) is drawn on its own λ × scale
    grid; all panels share the axis scales and limits of the whole table, each metric one
    colour bar (right of its row, or under its column). Every panel gets the contour
    ``kernel_distance_mean == threshold`` and the λ crossings of its ``lambda_neg`` /
    ``lambda_pos`` columns (joined from a boundary table). A group that is None is a panel
    saying ``titles[k]``; otherwise ``titles[k]`` heads its row (``metrics_in_rows``) or
    column, and ``metric_titles`` the other direction.

    Returns
    -------
    ndarray of Axes
        Shape (metrics, groups) if ``metrics_in_rows``, else (groups, metrics).
    """
    lambdas = np.sort(phase["lambda"].unique())
    scales = np.sort(phase["scale"].unique())
    xs, ys = AxisScale.for_values(lambdas), AxisScale.for_values(scales)
    shape = (len(metrics), len(groups)) if metrics_in_rows else (len(groups), len(metrics))
    axes = fig.subplots(*shape, squeeze=False, sharex=True, sharey=True)
    xs.apply(axes[0, 0], "x")
    ys.apply(axes[0, 0], "y")
    if xs.kind == "symlog":
        sparse_symlog_ticks(axes[0, 0], "x", lambdas)
    xe, ye = xs.edges(axes[0, 0], "x", lambdas), ys.edges(axes[0, 0], "y", scales)
    for i, metric in enumerate(metrics):
        style = metric_style(metric)
        norm, extend = metric_norm(phase[f"{metric}_mean"], style)
        cmap = sns.color_palette(style.cmap, as_cmap=True)
        mesh = None
        line = axes[i] if metrics_in_rows else axes[:, i]
        for j, sub in enumerate(groups):
            ax = line[j]
            if sub is None or sub.empty:
                axes_message(ax, titles[j], width=34, fontsize=7)
                continue
            grid = (np.sort(sub["lambda"].unique()), np.sort(sub["scale"].unique()))
            mesh, _, _ = draw_cells(
                ax,
                sub,
                f"{metric}_mean",
                grid,
                (xs, ys),
                norm=norm,
                cmap=cmap,
                contour=("kernel_distance_mean", threshold),
            )
            if {"lambda_neg", "lambda_pos"} <= set(sub.columns):
                crossings = sub[["scale", "lambda_neg", "lambda_pos"]].drop_duplicates("scale")
                draw_boundary_markers(ax, crossings)
            r, c = (i, j) if metrics_in_rows else (j, i)
            if r == 0:
                ax.set_title(titles[j] if metrics_in_rows else metric_titles[metric])
            if c == 0:
                head = "" if metrics_in_rows else f"\n{titles[j]}"
                ax.set_ylabel(f"scale (init singular values){head}")
            if r == shape[0] - 1:
                ax.set_xlabel(LAMBDA_LABEL)
        if mesh is not None:
            cb = fig.colorbar(
                mesh,
                ax=list(line),
                extend=extend,
                shrink=0.95,
                pad=0.01,
                location="right" if metrics_in_rows else "bottom",
                aspect=25,
            )
            cb.set_label(style.label, fontsize=7)
            colorbar_log_ticks(cb, norm)
    axes[0, 0].set_xlim(xe[0], xe[-1])
    axes[0, 0].set_ylim(ye[0], ye[-1])
    return axes
