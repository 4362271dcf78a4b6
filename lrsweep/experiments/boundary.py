"""Where the lazy–rich boundary lies, and how it moves: λ* searched, not read off a grid.

On each line (everything but λ fixed) the boundary λ* is where S(0, t_max) crosses the regime
threshold, found to relative precision ``rtol`` by :mod:`lrsweep.search` through the same
shard solver as the pipeline's search sweeps. Four panels move one setting at a time: the
hidden width for three (N_i, N_o) families (funnel, square, anti-funnel shapes), the depth
(2–5, simulated gradient flow), the task's scale, and the horizon t_max (towards the
converged-state crossing of theory §3.4, §6.2).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullLocator

from lrsweep.experiments.base import Setup, fmt
from lrsweep.grid import plan
from lrsweep.plots import arch_label, figure_style, new_figure
from lrsweep.search import search_shard

__all__ = ["BoundarySetup", "caption", "compute", "draw"]

PANELS = {
    "size": r"layer size $N$",
    "depth": "depth $L$ (gradient flow)",
    "target_scale": "task scale (singular values × this)",
    "t_max": r"horizon $t_{\max}/\tau$",
}
SIDES = {"positive": "λ > 0", "negative": "λ < 0"}
PLAIN = FuncFormatter(lambda v, _: f"{v:g}")
FAMILIES = {
    "square": "N–N–N",
    "anti-funnel": "4–N–N (λ > 0 side)",
    "funnel": "N–N–4 (λ < 0 side)",
}
"""Nets of the size panel, N_i–N_h–N_o: a square net, and the two rectangular nets whose
large layer is square (λ-balance admits only one sign of λ for them, theory §2)."""


@dataclass(frozen=True)
class BoundarySetup(Setup):
    """Set-up of ``boundary``: random tasks, λ-balanced random inits of product singular
    values ``scale``, λ* on each side where S(0, t_max) crosses ``threshold``."""

    task_seed: int = 0
    scale: float = 0.1
    seed: int = 0
    threshold: float = 0.01
    lambda_min: float = 0.01
    lambda_max: float = 100.0
    per_side: int = 8
    rtol: float = 1e-6
    t_max: float = 30.0
    n_t: int = 61
    sizes: tuple[int, ...] = (4, 8, 16, 32)
    bottleneck: tuple[int, int, int] = (8, 4, 8)
    """N_i, N_h, N_o of a net narrower than both its input and output (the caption reports
    whether it turns lazy on either side)."""
    depths: tuple[int, ...] = (2, 3, 4, 5)
    depth_size: int = 3
    """N_i = N_h = N_o of the depth panel (a small net: every evaluation is a simulation)."""
    depth_t_max: float = 10.0
    target_scales: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 4.0)
    horizons: tuple[float, ...] = (0.3, 0.5, 1.0, 2.0, 3.0, 10.0)


def _lines(
    setup: BoundarySetup,
    shape: tuple[int, int, int],
    *,
    solver: str = "exact",
    depths: tuple[int, ...] = (2,),
    task: dict | None = None,
    t_max: float | None = None,
) -> dict:
    """One search sweep config: the λ lines of one net (N_i, N_h, N_o) at the set-up's scale
    and seed."""
    n_in, width, n_out = shape
    return {
        "solver": solver,
        "regime_threshold": setup.threshold,
        "task": {"kind": "random", "seed": setup.task_seed, **(task or {})},
        "time": {"t_max": t_max or setup.t_max, "n_points": setup.n_t, "spacing": "log"},
        "grid": {
            "n_in": [n_in],
            "n_out": [n_out],
            "width": [width],
            "depth": list(depths),
            "lambda": {
                "search": {
                    "min": setup.lambda_min,
                    "max": setup.lambda_max,
                    "per_side": setup.per_side,
                    "rtol": setup.rtol,
                }
            },
            "scale": [setup.scale],
            "seed": [setup.seed],
        },
    }


def _search(config: dict, panel: str, x: float | None = None, family: str = "") -> pd.DataFrame:
    """Crossings of every line of ``config``, with the panel, its x value (default: the
    line's depth) and the net family."""
    p = plan({"sweeps": {"boundary": config}})["boundary"]
    frames = [search_shard(p.shard_spec(s))[2].to_pandas() for s in p.shards]
    df = pd.concat(frames, ignore_index=True)
    df["panel"], df["family"] = panel, family
    df["x"] = df["depth"].astype(float) if x is None else float(x)
    return df


def compute(setup: BoundarySetup | None = None, **overrides: object) -> pd.DataFrame:
    """λ* of every line of the four panels and of the bottleneck net.

    Returns
    -------
    DataFrame
        One row per (panel, line, side, crossing) of :data:`lrsweep.io.CROSSINGS_SCHEMA`
        (``crossing`` −1: none on that side within ``lambda_max``) plus ``panel``, ``x``
        (the setting the panel moves) and ``family`` (of the size panel), and the set-up.
    """
    p = (setup or BoundarySetup()).override(overrides, "boundary")
    frames = []
    for n in p.sizes:
        for family, shape in (
            ("square", (n, n, n)),
            ("anti-funnel", (4, n, n)),
            ("funnel", (n, n, 4)),
        ):
            if family == "square" or n != 4:
                frames.append(_search(_lines(p, shape), "size", n, family))
    frames.append(_search(_lines(p, p.bottleneck), "bottleneck", p.bottleneck[1]))
    d = p.depth_size
    frames.append(
        _search(_lines(p, (d, d, d), solver="flow", depths=p.depths, t_max=p.depth_t_max), "depth")
    )
    for k in p.target_scales:
        frames.append(_search(_lines(p, (4, 4, 4), task={"target_scale": k}), "target_scale", k))
    for t_max in p.horizons:
        frames.append(_search(_lines(p, (4, 4, 4), t_max=t_max), "t_max", t_max))
    df = pd.concat(frames, ignore_index=True)
    for key in (
        "scale",
        "task_seed",
        "threshold",
        "rtol",
        "t_max",
        "per_side",
        "lambda_max",
        "depth_t_max",
    ):
        df[f"setup_{key}"] = getattr(p, key)
    return df


def _first(df: pd.DataFrame, panel: str, side: str | None = None) -> pd.DataFrame:
    """The first crossing of each converged line of ``panel`` (one ``side``), by x."""
    sel = (df["panel"] == panel) & (df["status"] == "converged") & (df["crossing"] == 0)
    if side is not None:
        sel &= df["side"] == side
    return df[sel].sort_values(["family", "side", "x"])


def draw(df: pd.DataFrame) -> Figure:
    """Four panels of |λ*| (solid: λ > 0 side, dashed: λ < 0 side) against the setting each
    moves; log axes (linear depth), ticks at the values searched."""
    with figure_style():
        fig = new_figure(11.0, 7.6)
        axes = fig.subplots(2, 2).ravel()
        for ax, (panel, xlabel) in zip(axes, PANELS.items(), strict=True):
            sub = _first(df, panel)
            families = list(FAMILIES) if panel == "size" else [""]
            for k, family in enumerate(families):
                for side, style, marker in (("positive", "-", "o"), ("negative", "--", "x")):
                    line = sub[(sub["family"] == family) & (sub["side"] == side)]
                    if len(line):
                        name = FAMILIES.get(family, "")
                        name = name if " side" in name else f"{name} {SIDES[side]}".strip()
                        ax.plot(
                            line["x"],
                            line["lambda_star"].abs(),
                            style,
                            marker=marker,
                            color=f"C{k}",
                            label=name,
                        )
            ax.set_xlabel(xlabel)
            ax.set_ylabel(r"boundary $|\lambda^*|$")
            ax.set_yscale("log")
            if panel != "depth":
                ax.set_xscale("log")
            ticks = sorted(sub["x"].unique())
            ax.set_xticks(ticks, [f"{x:g}" for x in ticks])
            ax.xaxis.set_minor_locator(NullLocator())
            ax.yaxis.set_major_formatter(PLAIN)
            ax.yaxis.set_minor_formatter(PLAIN)
            ax.legend(fontsize=7, frameon=False)
        fig.suptitle(
            f"Lazy–rich boundary λ*: S(0, t_max) = {df['threshold'].iloc[0]:g}, searched to "
            f"rtol {df['setup_rtol'].iloc[0]:g} (panels 3–4: {arch_label(4, 4, 4)})"
        )
        return fig




def _series(d: pd.DataFrame) -> str:
    """``x: |λ*|, …`` of a panel's line."""
    return ", ".join(
        f"{fmt(x)}: {fmt(v)}" for x, v in zip(d["x"], d["lambda_star"].abs(), strict=True)
    )


def caption(df: pd.DataFrame) -> str:
    """The caption, with the numbers measured on ``df``."""
    setup = df.iloc[0]
    size = _first(df, "size")
    square = size[(size["family"] == "square") & (size["side"] == "positive")]
    rect = size[size["family"] != "square"]
    neck = df[df["panel"] == "bottleneck"]
    neck_lazy = sorted(SIDES[s] for s in neck.loc[neck["status"] == "converged", "side"])
    depth = _first(df, "depth", "positive")
    task = _first(df, "target_scale", "positive")
    slope = (
        np.polyfit(np.log(task["x"]), np.log(task["lambda_star"]), 1)[0]
        if len(task) > 1
        else np.nan
    )
    horizon = _first(df, "t_max", "positive")
    evals = df.loc[df["status"] == "converged", "evaluations"]
    return (
        f"λ* where S(0, t_max) crosses {fmt(setup['threshold'])} on each side of λ = 0 (t_max = "
        f"{fmt(setup['setup_t_max'])}, init scale {fmt(setup['setup_scale'])}, random tasks), "
        f"bracketed on {int(setup['setup_per_side'])} log-spaced |λ| ≤ "
        f"{fmt(setup['setup_lambda_max'])} per side and refined by root finding to rtol "
        f"{fmt(setup['setup_rtol'])} (median {fmt(evals.median())} solver evaluations per "
        f"crossing, {len(evals)} crossings). Square nets N: {_series(square)}; the rectangular "
        f"nets whose large layer is square turn lazy on their admissible side only "
        f"(|λ*| = {fmt(rect['lambda_star'].abs().min())}–{fmt(rect['lambda_star'].abs().max())}). "
        f"A bottleneck {'–'.join(str(int(v)) for v in neck.iloc[0][['n_in', 'width', 'n_out']])} "
        f"net turns lazy on {', '.join(neck_lazy) or 'neither side'} within |λ| ≤ "
        f"{fmt(setup['setup_lambda_max'])}: its large layer's Gram is rank deficient and has to "
        f"rotate onto the task. Depth (gradient flow, t_max = {fmt(setup['setup_depth_t_max'])}): "
        f"{_series(depth)}. Task scale: λ* ∝ (task scale)^{fmt(slope)}. "
        f"Horizon: {_series(horizon)} (the crossing settles once t_max ≫ 1/|λ*|)."
    )
