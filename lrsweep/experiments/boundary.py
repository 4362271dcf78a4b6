"""Where the lazy–rich boundary lies, and how it moves: λ* searched, not read off a grid.

On each line (everything but λ fixed) the boundary λ* is where S(0, t_max) crosses the regime
threshold, found to relative precision ``rtol`` by :mod:`lrsweep.search` through the same
shard solver as the pipeline's search sweeps. Six panels move one setting at a time:

- the hidden width N_h at fixed (N_i, N_o): bottleneck (N_h < N_i, N_o), N_h = N_i, widths in
  between, N_h = N_o. A side turns lazy only where its large layer is square (theory §2:
  λ > 0 makes W2W2ᵀ ⪰ λ on an N_h-dimensional subspace of the N_o outputs, which has to
  rotate onto the task unless N_h = N_o; λ < 0 likewise W1ᵀW1 with N_i);
- the size N of square nets, and of the one-sided nets 4–N–N and N–N–4;
- the depth (2–5, simulated gradient flow);
- the absolute scale of the init (square nets start from an isotropic kernel, so that their
  long-horizon λ* does not depend on it; a funnel's does);
- the task's scale (Σyx → kΣyx with W → √k W and t → t/k maps λ → kλ, so λ* ∝ k up to the
  fixed init scale and horizon);
- the horizon t_max (towards the converged-state crossing of theory §3.4, §6.2).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullFormatter, NullLocator

from lrsweep.experiments.base import Setup, fmt
from lrsweep.grid import plan
from lrsweep.plots import figure_style, new_figure
from lrsweep.search import search_shard

__all__ = ["FAMILIES", "PANELS", "BoundarySetup", "caption", "compute", "draw"]

PANELS = {
    "width": r"hidden width $N_h$",
    "size": r"layer size $N$",
    "depth": r"depth $L$ (gradient flow, $N$ = 3)",
    "scale": "init scale (product singular values)",
    "target_scale": "task scale (singular values × this)",
    "t_max": r"horizon $t_{\max}/\tau$",
}
"""x axis of each panel; panels 5–6 are square 4–4–4 nets."""
FAMILIES = {
    "square": "N–N–N",
    "anti-funnel": "4–N–N",
    "funnel": "N–N–4",
}
"""Nets of the size panel, N_i–N_h–N_o: a square net, and the two rectangular nets whose
large layer is square (λ-balance admits them for one sign of λ only, theory §2)."""
SIDES = {"positive": "λ > 0", "negative": "λ < 0"}
PLAIN = FuncFormatter(lambda v, _: f"{v:g}")


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
    width_n_in: int = 4
    width_n_out: int = 8
    widths: tuple[int, ...] = (2, 3, 4, 5, 6, 8)
    sizes: tuple[int, ...] = (4, 8, 16, 32)
    depths: tuple[int, ...] = (2, 3, 4, 5)
    depth_size: int = 3
    """N_i = N_h = N_o of the depth panel (a small net: every evaluation is a simulation)."""
    depth_t_max: float = 10.0
    scales: tuple[float, ...] = (0.01, 0.1, 1.0, 3.0, 10.0)
    scale_funnel: tuple[int, int, int] = (8, 4, 4)
    """N_i, N_h, N_o of the scale panel's second net (its first is square 4–4–4, whose K_0 is
    isotropic, so that λ* at a long horizon does not depend on the init scale)."""
    target_scales: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 4.0)
    horizons: tuple[float, ...] = (0.3, 0.5, 1.0, 2.0, 3.0, 10.0)


def _lines(
    setup: BoundarySetup,
    shape: tuple[int, int, int],
    *,
    solver: str = "exact",
    depths: tuple[int, ...] = (2,),
    scale: float | None = None,
    task: dict | None = None,
    t_max: float | None = None,
) -> dict:
    """One search sweep config: the λ lines of one net (N_i, N_h, N_o)."""
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
            "scale": [setup.scale if scale is None else scale],
            "seed": [setup.seed],
        },
    }


def _search(config: dict, panel: str, x: float | None = None, family: str = "") -> pd.DataFrame:
    """Crossings of every line of ``config`` (both sides, every admissible one), with the
    panel, its x value (default: the line's depth) and the net family."""
    p = plan({"sweeps": {"boundary": config}})["boundary"]
    frames = [search_shard(p.shard_spec(s))[2].to_pandas() for s in p.shards]
    df = pd.concat(frames, ignore_index=True)
    df["panel"], df["family"] = panel, family
    df["x"] = df["depth"].astype(float) if x is None else float(x)
    return df


def compute(setup: BoundarySetup | None = None, **overrides: object) -> pd.DataFrame:
    """λ* of every line of the six panels.

    Returns
    -------
    DataFrame
        One row per (panel, line, side, crossing) of :data:`lrsweep.io.CROSSINGS_SCHEMA`
        (``crossing`` −1, status ``none``: no crossing on that side within ``lambda_max``)
        plus ``panel``, ``x`` (the setting the panel moves), ``family`` (of the size panel)
        and the set-up (``setup_*``).
    """
    p = (setup or BoundarySetup()).override(overrides, "boundary")
    square = (4, 4, 4)
    frames = [_search(_lines(p, (p.width_n_in, w, p.width_n_out)), "width", w) for w in p.widths]
    for n in p.sizes:
        for family, shape in (("square", (n, n, n)), ("anti-funnel", (4, n, n)),
                              ("funnel", (n, n, 4))):  # fmt: skip
            if family == "square" or n != 4:
                frames.append(_search(_lines(p, shape), "size", n, FAMILIES[family]))
    d = (p.depth_size,) * 3
    frames.append(
        _search(_lines(p, d, solver="flow", depths=p.depths, t_max=p.depth_t_max), "depth")
    )
    for shape in (square, p.scale_funnel):
        label = "–".join(map(str, shape))
        frames += [_search(_lines(p, shape, scale=s), "scale", s, label) for s in p.scales]
    frames += [
        _search(_lines(p, square, task={"target_scale": k}), "target_scale", k)
        for k in p.target_scales
    ]
    frames += [_search(_lines(p, square, t_max=t), "t_max", t) for t in p.horizons]
    df = pd.concat(frames, ignore_index=True)
    for key in ("scale", "task_seed", "threshold", "rtol", "t_max", "per_side", "lambda_max",
                "depth_t_max", "width_n_in", "width_n_out"):  # fmt: skip
        df[f"setup_{key}"] = getattr(p, key)
    return df


def _first(df: pd.DataFrame, panel: str, side: str | None = None) -> pd.DataFrame:
    """The first crossing of each converged line of ``panel`` (one ``side``), by x."""
    sel = (df["panel"] == panel) & (df["status"] == "converged") & (df["crossing"] == 0)
    if side is not None:
        sel &= df["side"] == side
    return df[sel].sort_values(["family", "side", "x"])


def draw(df: pd.DataFrame) -> Figure:
    """Six panels of |λ*| (solid: λ > 0 side, dashed: λ < 0 side) against the setting each
    moves; log axes (linear depth and width), ticks at the values searched. Width panel:
    triangles at |λ| = ``lambda_max`` mark sides with no crossing (rich up to there)."""
    lam_max = df["setup_lambda_max"].iloc[0]
    with figure_style():
        fig = new_figure(14.0, 7.6)
        axes = fig.subplots(2, 3).ravel()
        for ax, (panel, xlabel) in zip(axes, PANELS.items(), strict=True):
            sub = _first(df, panel)
            for k, family in enumerate(dict.fromkeys(sub["family"])):
                for side, style, marker in (("positive", "-", "o"), ("negative", "--", "x")):
                    line = sub[(sub["family"] == family) & (sub["side"] == side)]
                    if len(line):
                        label = f"{family} {SIDES[side]}".strip()
                        ax.plot(line["x"], line["lambda_star"].abs(), style, marker=marker,
                                color=f"C{k}", label=label)  # fmt: skip
            if panel == "width":
                none = df[(df["panel"] == "width") & (df["status"] == "none")]
                for side, colour in (("positive", "C1"), ("negative", "C2")):
                    x = none.loc[none["side"] == side, "x"]
                    ax.plot(x, np.full(len(x), lam_max), "^" if side == "positive" else "v",
                            color=colour, label=f"{SIDES[side]}: none ≤ {lam_max:g}")  # fmt: skip
                n_i, n_o = df["setup_width_n_in"].iloc[0], df["setup_width_n_out"].iloc[0]
                ax.set_title(f"N_i = {n_i}, N_o = {n_o}", fontsize=9)
            ax.set_xlabel(xlabel)
            ax.set_ylabel(r"boundary $|\lambda^*|$")
            ax.set_yscale("log")
            if panel not in ("depth", "width"):
                ax.set_xscale("log")
            ticks = sorted(df.loc[df["panel"] == panel, "x"].unique())
            ax.set_xticks(ticks, [f"{x:g}" for x in ticks])
            ax.xaxis.set_minor_locator(NullLocator())
            ax.yaxis.set_major_formatter(PLAIN)
            lo, hi = ax.get_ylim()
            ax.yaxis.set_minor_formatter(PLAIN if hi < 10 * lo else NullFormatter())
            ax.legend(fontsize=7, frameon=False)
        fig.suptitle(
            f"Lazy–rich boundary λ*: S(0, t_max) = {df['threshold'].iloc[0]:g}, searched to "
            f"rtol {df['setup_rtol'].iloc[0]:g} (panels 5–6: square 4–4–4 nets)"
        )
        return fig


def _series(d: pd.DataFrame) -> str:
    """``x: |λ*|, …`` of a panel's line."""
    return ", ".join(
        f"{fmt(x)}: {fmt(v)}" for x, v in zip(d["x"], d["lambda_star"].abs(), strict=True)
    )


def _slope(d: pd.DataFrame) -> float:
    """Exponent of |λ*| ∝ x^slope (least squares in log–log)."""
    if len(d) < 2:
        return np.nan
    return float(np.polyfit(np.log(d["x"]), np.log(d["lambda_star"].abs()), 1)[0])


def caption(df: pd.DataFrame) -> str:
    """The caption, with the numbers measured on ``df``."""
    setup = df.iloc[0]
    width = df[df["panel"] == "width"]
    lazy = {
        SIDES[s]: ", ".join(fmt(x) for x in sorted(g["x"]))
        for s, g in _first(df, "width").groupby("side")
    }
    lazy_text = "; ".join(f"{s} at N_h = {w}" for s, w in sorted(lazy.items())) or "nowhere"
    size = _first(df, "size")
    square = size[(size["family"] == FAMILIES["square"]) & (size["side"] == "positive")]
    rect = size[size["family"] != FAMILIES["square"]]
    scale = _first(df, "scale", "positive")
    evals = df.loc[df["status"] == "converged", "evaluations"]
    n_io = f"N_i = {int(setup['setup_width_n_in'])}, N_o = {int(setup['setup_width_n_out'])}"
    return (
        f"λ* where S(0, t_max) crosses {fmt(setup['threshold'])} on each side of λ = 0 (t_max "
        f"= {fmt(setup['setup_t_max'])}, init scale {fmt(setup['setup_scale'])}, random "
        f"tasks), bracketed on {int(setup['setup_per_side'])} log-spaced |λ| ≤ "
        f"{fmt(setup['setup_lambda_max'])} per side and refined by root finding to rtol "
        f"{fmt(setup['setup_rtol'])} (median {fmt(evals.median())} solver evaluations per "
        f"crossing, {len(evals)} crossings). Hidden width at {n_io}: lazy {lazy_text}; "
        f"{int((width['status'] == 'none').sum())} of {len(width)} width sides stay rich up "
        f"to |λ| = {fmt(setup['setup_lambda_max'])} (N_h < N_o for λ > 0, N_h < N_i for λ "
        f"< 0: the large layer's Gram has rank N_h and has to rotate onto the task). Square nets, "
        f"size N: {_series(square)}; 4–N–N (λ > 0) and N–N–4 (λ < 0): |λ*| = "
        f"{fmt(rect['lambda_star'].abs().min())}–{fmt(rect['lambda_star'].abs().max())}. "
        f"Depth (gradient flow, t_max = {fmt(setup['setup_depth_t_max'])}): "
        f"{_series(_first(df, 'depth', 'positive'))}. Init scale, "
        + "; ".join(f"{f}: {_series(g)}" for f, g in scale.groupby("family", sort=False))
        + f" (a square net's K_0 is isotropic: at a long horizon λ* does not depend on the "
        f"init scale). Task scale: λ* ∝ (task "
        f"scale)^{fmt(_slope(_first(df, 'target_scale', 'positive')))}. Horizon: "
        f"{_series(_first(df, 't_max', 'positive'))} (the crossing settles once t_max ≫ "
        f"1/|λ*|)."
    )
