"""Width and depth: kernel distance and time to fit vs λ and scale, vs hidden width and vs
depth, from the configured sweeps that vary them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib import ticker as mticker
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from lrsweep.experiments import tables
from lrsweep.experiments.panels import (
    LAMBDA_LABEL,
    axes_message,
    message_figure,
    sparse_symlog_ticks,
)
from lrsweep.experiments.tables import SweepInfo, pick
from lrsweep.plots import AxisScale, arch_label, figure_style, lambda_cmap, lambda_norm, new_figure

__all__ = ["caption", "compute", "draw", "select"]

METRICS = (
    ("kernel_distance", r"kernel distance $S(0, t_{\max})$"),
    ("time_to_fit_90", r"time to 90 % fit $t/\tau$"),
)
_X_LABELS = {
    "lambda": LAMBDA_LABEL,
    "width": r"hidden width $N_h$",
    "depth": "depth $L$ (weight layers)",
}


def select(info: Mapping[str, SweepInfo]) -> list[str]:
    """Every sweep with more than one λ."""
    return pick(info, "lambdas")


def compute(inputs: Mapping[str, Path | str] | None) -> pd.DataFrame:
    """The tidy table of all input sweeps (:func:`lrsweep.experiments.tables.read`)."""
    return tables.read(inputs)


def _varies(df: pd.DataFrame, axis: str) -> bool:
    return bool((df.groupby("sweep")[axis].nunique() > 1).any())


def _widest(df: pd.DataFrame, axis: str) -> str:
    return str(df.groupby("sweep")[axis].nunique().idxmax())


def draw(df: pd.DataFrame) -> Figure:
    """S(0, t_max) and time to fit vs λ (lines: scale), vs width and vs depth (lines: λ)."""
    if df.empty:
        return message_figure("No sweeps with several λ in the config.", "Width and depth")
    with figure_style():
        fig = new_figure(12.0, 6.4)
        axes = fig.subplots(2, 3, squeeze=False)
        lam_df = tables.one_facet(df[df["sweep"] == _widest(df, "scale")])
        width_df = df[df["sweep"] == _widest(df, "width")] if _varies(df, "width") else None
        depth_df = df[df["sweep"] == _widest(df, "depth")] if _varies(df, "depth") else None
        for i, (m, label) in enumerate(METRICS):
            _lines(axes[i, 0], lam_df, "lambda", "scale", m)
            _lines(
                axes[i, 1],
                width_df,
                "width",
                "lambda",
                m,
                missing="no sweep varies the width (add the `width` sweep of docs/paper.md)",
            )
            _lines(
                axes[i, 2],
                depth_df,
                "depth",
                "lambda",
                m,
                missing="no sweep varies the depth (add the `depth` sweep of docs/paper.md)",
            )
            axes[i, 0].set_ylabel(label)
        titles = ("(a) relative × absolute scale", "(b) width", "(c) depth (simulation)")
        for j, title in enumerate(titles):
            axes[0, j].set_title(title, loc="left")
        fig.suptitle(
            "Lazy–rich measures over the sweep's four axes: λ, scale, width, depth", fontsize=10
        )
    return fig


def _hold(sub: pd.DataFrame, fixed: Sequence[str]) -> tuple[pd.DataFrame, dict]:
    """Rows at one representative value of each ``fixed`` axis: square nets first, then the
    middle value (geometric middle for the scale, the smallest depth)."""
    held = {}
    sq = (sub["n_in"] == sub["width"]) & (sub["width"] == sub["n_out"])
    if {"n_in", "n_out"} <= set(fixed) and sq.any():
        sub = sub[
            (sub["n_in"] == sub.loc[sq, "n_in"].min())
            & (sub["n_out"] == sub.loc[sq, "n_out"].min())
        ]
    for c in fixed:
        vals = np.sort(sub[c].unique())
        if c == "scale" and (vals > 0).all():
            pick_ = vals[np.argmin(np.abs(np.log(vals) - np.log(vals).mean()))]
        elif c == "depth":
            pick_ = vals[0]
        else:
            pick_ = vals[len(vals) // 2]
        held[c] = pick_
        sub = sub[sub[c] == pick_]
    return sub, held


def _lambda_hues(lams: np.ndarray, k: int = 4) -> np.ndarray:
    """Up to ``k`` values of |λ| spread over the grid, 0 included if present."""
    mags = np.unique(np.abs(lams))
    if mags.size <= k:
        return mags
    return mags[np.unique(np.round(np.linspace(0, mags.size - 1, k)).astype(int))]


def _lines(ax: Axes, sub, x: str, hue: str, metric: str, *, missing: str = "") -> None:
    """``metric``_mean vs ``x``, one line per ``hue`` value; the other axes held fixed.

    λ hues: a few |λ| values; λ > 0 solid with dots, λ < 0 dashed with open circles (they
    coincide on square nets). Scale hues: up to 6 values spread over the grid.
    """
    if sub is None or sub.empty:
        axes_message(ax, missing, width=40, fontsize=7.5)
        return
    sub = sub[sub["solver"] == sub["solver"].iloc[0]]
    fixed = [c for c in ("n_in", "n_out", "depth", "width", "scale") if c not in (x, hue)]
    sub, held = _hold(sub, fixed)
    y = f"{metric}_mean"
    if hue == "lambda":
        norm, cmap = lambda_norm(sub["lambda"]), lambda_cmap()
        for mag in _lambda_hues(sub["lambda"].to_numpy(float)):
            for sign, style in (
                (1, {"ls": "-", "marker": "o", "ms": 3.5}),
                (-1, {"ls": "--", "marker": "o", "ms": 6, "mfc": "none"}),
            ):
                lam = sign * mag
                if mag == 0 and sign < 0:
                    continue
                line = sub[np.isclose(sub["lambda"], lam)].sort_values(x)
                if line.empty:
                    continue
                c = "black" if mag == 0 else cmap(norm(mag))
                label = "λ = 0" if mag == 0 else (f"λ = {lam:+g}")
                ax.plot(line[x], line[y], color=c, lw=1.2, label=label, **style)
    else:
        hues = np.sort(sub[hue].unique())
        if hues.size > 6:
            hues = hues[np.unique(np.round(np.linspace(0, hues.size - 1, 6)).astype(int))]
        for h, c in zip(hues, sns.color_palette("flare", hues.size), strict=True):
            line = sub[sub[hue] == h].sort_values(x)
            ax.plot(line[x], line[y], "o-", ms=3, color=c, lw=1.2, label=f"{hue} = {h:.2g}")
    xs = AxisScale.for_values(sub[x])
    xs.apply(ax, "x")
    if xs.kind == "symlog":
        sparse_symlog_ticks(ax, "x", sub[x])
    if x == "width" and xs.kind == "log":
        ax.set_xscale("log", base=2)
    if x in ("width", "depth"):
        ax.xaxis.set_major_locator(mticker.FixedLocator(np.sort(sub[x].unique())))
        ax.xaxis.set_major_formatter(mticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_locator(mticker.NullLocator())
    vals = sub[y].to_numpy(float)
    vals = vals[np.isfinite(vals)]
    if vals.size and vals.min() > 0 and vals.max() / vals.min() > 20:
        ax.set_yscale("log")
    ax.set_xlabel(_X_LABELS[x])
    arch = arch_label(
        int(sub["n_in"].iloc[0]), int(sub["width"].iloc[0]), int(sub["n_out"].iloc[0])
    )
    if x == "width":
        arch = f"N_i = {sub['n_in'].iloc[0]}, N_o = {sub['n_out'].iloc[0]}"
    title = ", ".join(
        [arch, *(f"{k} {v:.2g}" for k, v in held.items() if k in ("scale", "depth") and k != x)]
    )
    ax.legend(
        frameon=False, fontsize=6, title=title, title_fontsize=6, ncols=2 if hue == "lambda" else 1
    )


def caption(df: pd.DataFrame) -> str:
    """What the panels show and the sweep(s) they come from."""
    return tables.caption(
        df,
        "width_depth",
        "S(0, t_max) and time to 90 % fit vs λ (lines: scale), vs hidden width (lines: λ; "
        "λ ≠ 0 only where admissible, N_h ≤ N_o for λ > 0, N_h ≤ N_i for λ < 0) and vs depth "
        "(lines: λ, simulation); the other axes are held at the value in each legend. ",
        heatmaps=False,
    )
