"""Architecture: square, funnel and anti-funnel phase diagrams side by side — which sign of λ
is lazy depends on the architecture."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure, SubFigure

from lrsweep.experiments import tables
from lrsweep.experiments.panels import (
    LAMBDA_LABEL,
    heatmap_grid,
    message_figure,
    sparse_symlog_ticks,
)
from lrsweep.experiments.tables import SweepInfo, pick
from lrsweep.plots import (
    ARCH_KEYS,
    AxisScale,
    arch_label,
    boundary_legend,
    figure_style,
    new_figure,
)

__all__ = ["KINDS", "caption", "compute", "draw", "select"]

KINDS = ("square", "funnel", "anti-funnel")
"""Architectures compared (:func:`lrsweep.plots.arch_kind`), one column each."""
METRICS = ("kernel_distance", "time_to_fit_90")
_MISSING = {
    "square": "square (N_i = N_h = N_o): no sweep in config — add the `square` sweep of "
    "docs/paper.md",
    "funnel": "funnel (N_i > N_h = N_o): no sweep in config — add the `funnel` sweep of "
    "docs/paper.md",
    "anti-funnel": "anti-funnel (N_o > N_h = N_i): no sweep in config — add the "
    "`antifunnel` sweep of docs/paper.md",
}


def select(info: Mapping[str, SweepInfo]) -> list[str]:
    """Every depth-2 sweep with a λ × scale grid (exact solver preferred)."""
    return pick(info, "grid", "depth2", "exact") or pick(info, "grid", "depth2")


def compute(inputs: Mapping[str, Path | str] | None) -> pd.DataFrame:
    """The tidy table of all input sweeps (:func:`lrsweep.experiments.tables.read`)."""
    return tables.read(inputs)


def _largest(df: pd.DataFrame, kind: str) -> pd.DataFrame | None:
    """The rows of one net of ``kind``: the sweep and architecture with the most cells."""
    sub = df[df["architecture"] == kind]
    if sub.empty:
        return None
    sizes = sub.groupby(["sweep", *ARCH_KEYS]).size()
    sweep, *arch = sizes.idxmax()
    return sub[(sub["sweep"] == sweep) & (sub[list(ARCH_KEYS)] == arch).all(axis=1)]


def draw(df: pd.DataFrame) -> Figure:
    """Square, funnel and anti-funnel phase diagrams side by side, plus S vs λ cuts."""
    df = tables.one_facet(df)
    if df.empty:
        return message_figure("No λ × scale sweeps in the config.", "Architecture comparison")
    groups = [_largest(df, kind) for kind in KINDS]
    titles = [
        _MISSING[kind] if sub is None else arch_label(*sub[list(ARCH_KEYS)].iloc[0])
        for kind, sub in zip(KINDS, groups, strict=True)
    ]
    threshold = tables.threshold(df)
    with figure_style():
        fig = new_figure(3.3 * len(groups) + 1.4, 2.5 * (len(METRICS) + 1) + 1.0)
        top, bottom = fig.subfigures(2, 1, height_ratios=[len(METRICS), 1.05])
        heatmap_grid(top, df, METRICS, groups, titles, threshold=threshold, metrics_in_rows=True)
        _cuts(bottom, groups, titles, threshold)
        boundary_legend(fig, threshold)
        head = "Which sign of λ is lazy depends on the architecture"
        fig.suptitle(tables.title(df, head), fontsize=10)
    return fig


def _cuts(
    fig: SubFigure, groups: Sequence[pd.DataFrame | None], titles: Sequence[str], thr: float
) -> None:
    """S(0, t_max) vs λ at the smallest, middle and largest scale, one panel per group."""
    axes = fig.subplots(1, len(groups), squeeze=False, sharey=True, sharex=True)[0]
    present = [g for g in groups if g is not None]
    all_l = np.concatenate([g["lambda"].to_numpy(float) for g in present]) if present else [0.0]
    xs = AxisScale.for_values(all_l)
    xs.apply(axes[0], "x")
    if xs.kind == "symlog":
        sparse_symlog_ticks(axes[0], "x", all_l)
    for ax, sub, title in zip(axes, groups, titles, strict=True):
        if sub is None:
            ax.axis("off")
            continue
        scales = np.sort(sub["scale"].unique())
        picks = [scales[0], scales[len(scales) // 2], scales[-1]]
        pal = sns.color_palette("flare", len(picks))
        for sc, c in zip(dict.fromkeys(picks), pal, strict=False):
            cut = sub[np.isclose(sub["scale"], sc)].sort_values("lambda")
            ax.plot(
                cut["lambda"],
                cut["kernel_distance_mean"],
                "o-",
                ms=2.5,
                color=c,
                label=f"scale {sc:.2g}",
            )
        ax.axhline(thr, color="0.3", ls=":", lw=1)
        ax.set_yscale("log")
        ax.set_xlabel(LAMBDA_LABEL)
        ax.set_title(f"{title}: cuts at fixed scale", fontsize=8)
        ax.legend(frameon=False, fontsize=6.5)
    axes[0].set_ylabel(r"kernel distance $S(0, t_{\max})$")


def caption(df: pd.DataFrame) -> str:
    """What the panels show, the sweep(s) they come from, the boundary and what is missing."""
    missing = [k for k in KINDS if k not in set(df.get("architecture", ()))]
    return tables.caption(
        df,
        "architecture",
        "Square, funnel (N_i > N_h = N_o) and anti-funnel (N_o > N_h = N_i) phase diagrams "
        "side by side, and S(0, t_max) vs λ at fixed scales. Square nets are symmetric in "
        "λ ↔ −λ; a funnel stays rich for λ → −∞ (its large input layer must rotate onto the "
        "task), an anti-funnel for λ → +∞. ",
        heatmaps=True,
        note=f" Missing in the config: {', '.join(missing)} (docs/paper.md)." if missing else "",
    )
