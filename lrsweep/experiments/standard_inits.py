"""Where standard (Gaussian) initialisations fall on the lazy–rich map (theory §6.2, issue 13).

Practitioners draw Gaussian weights from a preset (LeCun, Xavier, He) times a multiplier, and
sometimes change the ratio between the layers' scales. Two rows of panels:

- **phase diagrams** in the coordinates of one preset (Xavier by default): kernel distance
  S(0, t_max) of simulated two-layer gradient flow over the multiplier m (overall scale) ×
  the layer ratio r (:func:`lrsweep.standard.preset_sigmas`: σ_1 = m·b_1/√r, σ_2 = m·b_2·√r,
  so ∏σ does not depend on r) for a funnel, a square and an anti-funnel net, mean over seeds,
  with the regime contour S = threshold, the contour λ̄ = 0 of the expected imbalance
  (:func:`lrsweep.standard.expected_imbalance`: r acts through λ_eff) and the standard presets
  marked where they sit (:func:`preset_coordinates`) with their own simulated S;
- **the λ_eff-balanced prediction against width** (theory §6.2): N_i = N_o = n grows at fixed
  hidden width N_h, Gaussian init of fixed multiplier and ratio: |S_sim − S_pred|, the
  trajectory error max_t‖QQᵀ_pred − QQᵀ_sim‖_F / max_t‖QQᵀ_sim‖_F and the off-balance
  ‖D − λ_eff I‖_F/‖D‖_F on log–log axes with least-squares slopes over all seeds (± standard
  error), next to S_sim and S_pred themselves (|ΔS| ≤ 1 − S shrinks as S → 1), and a cut
  through the phase diagrams at the largest multiplier.

Gradient flow is :func:`lrsweep.simulate.gradient_flow` (the pipeline's ``flow`` solver) at a
relative tolerance ``rtol`` of the set-up (1e-6: S agrees with the pipeline's 1e-8 to ≲ 1e-7
and the flow takes a third of the steps); S(0, t) is the pipeline's depth-2 kernel distance
(:func:`lrsweep.metrics.two_layer_kernel_distance`, as :class:`lrsweep.measures.Outcome`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullLocator

from lrsweep import metrics
from lrsweep import standard as sd
from lrsweep.exact import stack_q
from lrsweep.experiments.base import Setup, fmt
from lrsweep.plots import (
    MARKER_STYLE,
    AxisScale,
    colorbar_log_ticks,
    draw_heatmap,
    draw_threshold_contour,
    figure_style,
    metric_norm,
    metric_style,
    new_figure,
)
from lrsweep.simulate import gradient_flow
from lrsweep.tasks import random_regression

__all__ = [
    "MARKERS",
    "PANELS",
    "StandardInitsSetup",
    "caption",
    "compute",
    "draw",
    "fit_power",
    "preset_coordinates",
]

PANELS = {
    "phase": "kernel distance over multiplier × layer ratio",
    "preset": "the standard presets (multiplier 1, ratio 1 of their own family)",
    "width": "λ_eff-balanced prediction vs outer width",
    "fit": "least-squares exponents of the width panel",
}
"""Values of the table's ``panel`` column."""
MARKERS = {"lecun": "o", "xavier": "s", "he": "^"}
"""Presets marked on the phase diagrams (marker of each)."""
ERRORS = {
    "kernel_distance_error": r"$|S_{\rm sim} - S_{\rm pred}|$",
    "trajectory_error": r"trajectory error $\max_t\|\Delta QQ^\top\| / \max_t\|QQ^\top\|$",
    "off_balance": r"off-balance $\|D - \lambda_{\rm eff} I\| / \|D\|$",
}
"""Measures of the width panel that get a fitted power law (column → label)."""
LAMBDA_ZERO_STYLE = {"color": "white", "linestyle": ":", "linewidth": 1.6,
                     "label": r"$\bar\lambda = 0$ (expected imbalance)"}  # fmt: skip
SV_CURVES = (
    ("kernel_distance", r"$S_{\rm sim}$ (gradient flow)", "o"),
    ("kernel_distance_predicted", r"$S_{\rm pred}$ ($\lambda_{\rm eff}$-balanced)", "x"),
)
REGIME_STYLE = {"color": "black", "linestyle": (0, (4, 2)), "linewidth": 1.3}
PLAIN = FuncFormatter(lambda v, _: f"{v:g}")


@dataclass(frozen=True)
class StandardInitsSetup(Setup):
    """Set-up of ``standard_inits``: Gaussian two-layer inits in one preset's coordinates,
    simulated gradient flow on random tasks with whitened inputs."""

    preset: str = "xavier"
    """Family whose (multiplier, ratio) are the phase diagrams' axes."""
    shapes: tuple[tuple[int, int, int], ...] = ((8, 4, 4), (4, 4, 4), (4, 4, 8))
    """N_i, N_h, N_o of each phase diagram: funnel, square, anti-funnel."""
    multiplier_range: tuple[float, float] = (0.1, 3.0)
    n_multipliers: int = 9
    ratio_range: tuple[float, float] = (0.125, 8.0)
    n_ratios: int = 9
    """Log-spaced; an odd count puts ratio 1 on the grid for a symmetric range."""
    n_seeds: int = 2
    """Seeds per phase-diagram cell and per preset (common random numbers across cells)."""
    seed: int = 0
    task_seed: int = 0
    """Seed of each phase diagram's ``random_regression(N_i, N_o)`` (s̃ from 3 down to 0.5)."""
    threshold: float = 0.01
    """Regime threshold: rich where S(0, t_max) exceeds it."""
    t_max: float = 30.0
    rtol: float = 1e-6
    """Relative tolerance of the gradient flow."""
    width_sizes: tuple[int, ...] = (4, 8, 16, 32, 64)
    """N_i = N_o = n of the width panel."""
    width_hidden: int = 2
    width_multiplier: float = 1.0
    width_ratio: float = 2.0
    width_seeds: int = 12
    width_task_singular_values: tuple[float, ...] = (3.0, 2.0)
    """Non-zero s̃ of the width panel's task (rank-2: theory §6.2's measurement)."""
    width_task_seed: int = 1
    width_t_max: float = 40.0
    width_n_t: int = 12
    """Saved times 0 and ``width_n_t − 1`` log-spaced from t_max/80 (the trajectory error's
    max over t is over these)."""


def preset_coordinates(name: str, widths, base: str = "xavier") -> tuple[float, float]:
    """(multiplier, ratio) in ``base`` coordinates of preset ``name`` at multiplier 1, ratio 1.

    Two layers: ``preset_sigmas(base, widths, m, r)`` is (m·b_1/√r, m·b_2·√r), so σ = (p_1,
    p_2) of the preset needs m² = p_1p_2/(b_1b_2) and r = (p_2/b_2)/(p_1/b_1): exactly, for
    any widths.

    Examples
    --------
    >>> m, r = preset_coordinates("he", [4, 4, 4])
    >>> round(m**2, 12), round(r, 12)
    (2.0, 1.0)
    """
    p = sd.preset_sigmas(name, widths)
    b = sd.preset_sigmas(base, widths)
    if p.shape != (2,):
        raise ValueError(f"`widths` must be [N_i, N_h, N_o] (two layers), got {widths!r}")
    return float(np.sqrt(p[0] * p[1] / (b[0] * b[1]))), float((p[1] / b[1]) / (p[0] / b[0]))


def fit_power(x, y) -> tuple[float, float, float]:
    """Least squares log y = c + k log x over the positive finite y: (k, SE of k, c)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    keep = np.isfinite(y) & (y > 0)
    lx, ly = np.log(x[keep]), np.log(y[keep])
    if lx.size < 3 or np.ptp(lx) == 0:
        return np.nan, np.nan, np.nan
    X = np.c_[np.ones(lx.size), lx]
    coef, *_ = np.linalg.lstsq(X, ly, rcond=None)
    r = ly - X @ coef
    cov = r @ r / (lx.size - 2) * np.linalg.inv(X.T @ X)
    return float(coef[1]), float(np.sqrt(cov[1, 1])), float(coef[0])


def _grams(w1: np.ndarray, w2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return w2 @ np.swapaxes(w2, -1, -2), np.swapaxes(w1, -1, -2) @ w1


def _flow(ws: list[np.ndarray], syx: np.ndarray, t: np.ndarray, rtol: float):
    """Gradient flow of a batch; (W1(t), W2(t), S(0, t), status)."""
    (w1, w2), info = gradient_flow(ws, syx, t, rtol=rtol, full_output=True)
    out, inn = _grams(w1, w2)
    dist = metrics.two_layer_kernel_distance(out[0], inn[0], out, inn)
    return w1, w2, dist, np.asarray(info.status)


def _label(shape) -> str:
    return "–".join(str(int(n)) for n in shape)


def _phase(p: StandardInitsSetup, shape: tuple[int, int, int]) -> list[pd.DataFrame]:
    """One architecture's grid and preset rows."""
    shape = tuple(int(n) for n in shape)
    n_i, n_h, n_o = shape
    task = random_regression(n_i, n_o, seed=p.task_seed)
    mult = np.geomspace(*p.multiplier_range, p.n_multipliers)
    ratio = np.geomspace(*p.ratio_range, p.n_ratios)
    M, R = (a.ravel() for a in np.meshgrid(mult, ratio, indexing="ij"))
    presets = [k for k in MARKERS]
    coords = np.array([preset_coordinates(k, shape, p.preset) for k in presets])
    M = np.concatenate([M, coords[:, 0]])
    R = np.concatenate([R, coords[:, 1]])
    n_cells = M.size
    M, R = np.repeat(M, p.n_seeds), np.repeat(R, p.n_seeds)
    seeds = np.tile(np.arange(p.n_seeds), n_cells)
    sig = sd.preset_sigmas(p.preset, shape, M, R)
    ws = sd.gaussian_init(shape, sig, [np.random.SeedSequence([p.seed, int(s)]) for s in seeds])
    lam_bar, _ = sd.expected_imbalance(shape, sig)
    _, _, dist, status = _flow(ws, task.sigma_yx, np.array([0.0, p.t_max]), p.rtol)
    n_grid = mult.size * ratio.size * p.n_seeds
    df = pd.DataFrame(
        {
            "panel": np.where(np.arange(M.size) < n_grid, "phase", "preset"),
            "architecture": _label(shape),
            "n_in": n_i,
            "width": n_h,
            "n_out": n_o,
            "preset": np.concatenate([np.full(n_grid, ""), np.repeat(presets, p.n_seeds)]),
            "multiplier": M,
            "ratio": R,
            "seed": seeds,
            "sigma_1": sig[:, 0],
            "sigma_2": sig[:, 1],
            "lambda_expected": lam_bar[:, 0],
            "lambda_eff": sd.imbalance_summary(ws).lam_eff[:, 0],
            "kernel_distance": np.where(status == 0, dist[-1], np.nan),
            "status": status,
        }
    )
    return [df]


def _width(p: StandardInitsSetup) -> pd.DataFrame:
    """The width panel: per (n, seed) simulated vs predicted."""
    frames = []
    t = np.concatenate([[0.0], np.geomspace(p.width_t_max / 80, p.width_t_max, p.width_n_t - 1)])
    for n in p.width_sizes:
        n = int(n)
        shape = (n, int(p.width_hidden), n)
        sv = np.zeros(n)
        k = min(n, len(p.width_task_singular_values))
        sv[:k] = p.width_task_singular_values[:k]
        task = random_regression(n, n, singular_values=sv, seed=p.width_task_seed)
        sig = sd.preset_sigmas(p.preset, shape, p.width_multiplier, p.width_ratio)
        seeds = [np.random.SeedSequence([p.seed, s, n]) for s in range(p.width_seeds)]
        ws = sd.gaussian_init(shape, sig, seeds)
        w1, w2, dist, status = _flow(ws, task.sigma_yx, t, p.rtol)
        pm = sd.predicted_measures(ws[0], ws[1], task.sigma_yx, t)
        pred = pm.prediction
        ok = pred.admissible & (status == 0)
        traj = np.full(len(seeds), np.nan)
        if ok.any():
            q_pred = sd.qqt_with_rates(
                pred.W1[ok], pred.W2[ok], task.sigma_yx, t, [1.0, 1.0], lam=pred.lam[ok]
            )
            Q = stack_q(w1[:, ok], w2[:, ok])
            q_sim = Q @ np.swapaxes(Q, -1, -2)
            num = np.max(np.linalg.norm(q_pred - q_sim, axis=(-2, -1)), axis=0)
            traj[ok] = num / np.max(np.linalg.norm(q_sim, axis=(-2, -1)), axis=0)
        s_sim = np.where(status == 0, dist[-1], np.nan)
        frames.append(
            pd.DataFrame(
                {
                    "panel": "width",
                    "architecture": _label(shape),
                    "n_in": n,
                    "width": shape[1],
                    "n_out": n,
                    "preset": p.preset,
                    "multiplier": p.width_multiplier,
                    "ratio": p.width_ratio,
                    "seed": np.arange(len(seeds)),
                    "sigma_1": sig[0],
                    "sigma_2": sig[1],
                    "lambda_expected": sd.expected_imbalance(shape, sig)[0][0],
                    "lambda_eff": pred.lam,
                    "kernel_distance": s_sim,
                    "status": status,
                    "x": float(n),
                    "kernel_distance_predicted": pm.kernel_distance,
                    "kernel_distance_error": np.abs(pm.kernel_distance - s_sim),
                    "trajectory_error": traj,
                    "off_balance": sd.imbalance_summary(ws).off_balance[:, 0],
                    "prediction_admissible": pred.admissible,
                }
            )
        )
    df = pd.concat(frames, ignore_index=True)
    fits = []
    for col in ERRORS:
        k, se, c = fit_power(df["x"], df[col])
        used = int((np.isfinite(df[col]) & (df[col] > 0)).sum())
        fits.append({"panel": "fit", "quantity": col, "slope": k, "slope_se": se,
                     "intercept": c, "n_fit": used})  # fmt: skip
    return pd.concat([df, pd.DataFrame(fits)], ignore_index=True)


def compute(setup: StandardInitsSetup | None = None, **overrides: object) -> pd.DataFrame:
    """Phase diagrams, presets and the width panel of ``standard_inits``.

    Returns
    -------
    DataFrame
        ``panel`` ``phase`` (one row per architecture, multiplier, ratio, seed), ``preset``
        (one per architecture, preset of :data:`MARKERS`, seed; ``multiplier`` and ``ratio``
        from :func:`preset_coordinates`), ``width`` (one per n, seed: ``x`` = n, simulated and
        predicted S, their difference, trajectory error, off-balance, λ_eff) and ``fit``
        (``quantity``, ``slope`` ± ``slope_se``, ``intercept``, ``n_fit``), with the set-up
        (``setup_*``) on every row.
    """
    p = (setup or StandardInitsSetup()).override(overrides, "standard_inits")
    if p.preset.lower() not in sd.PRESETS:
        raise ValueError(f"`preset` must be one of {list(sd.PRESETS)}, got {p.preset!r}")
    frames = [f for shape in p.shapes for f in _phase(p, shape)]
    frames.append(_width(p))
    df = pd.concat(frames, ignore_index=True)
    for key in ("preset", "threshold", "t_max", "rtol", "n_seeds", "seed", "task_seed",
                "width_hidden", "width_multiplier", "width_ratio", "width_seeds",
                "width_task_seed", "width_t_max"):  # fmt: skip
        df[f"setup_{key}"] = getattr(p, key)
    df["setup_width_task_singular_values"] = ", ".join(
        f"{v:g}" for v in p.width_task_singular_values
    )
    return df


# ------------------------------------------------------------------------------ drawing


def _cells(df: pd.DataFrame, arch: str, column: str) -> tuple[np.ndarray, ...]:
    """(multipliers, ratios, z of shape (n_ratio, n_mult)): mean over seeds per cell."""
    sub = df[(df["panel"] == "phase") & (df["architecture"] == arch)]
    wide = sub.pivot_table(index="ratio", columns="multiplier", values=column, aggfunc="mean")
    return wide.columns.to_numpy(float), wide.index.to_numpy(float), wide.to_numpy(float)


def _presets(df: pd.DataFrame) -> pd.DataFrame:
    """Per (architecture, preset): coordinates, mean S over seeds, regime."""
    sub = df[df["panel"] == "preset"]
    out = sub.groupby(["architecture", "preset"], sort=False).agg(
        multiplier=("multiplier", "first"),
        ratio=("ratio", "first"),
        lambda_expected=("lambda_expected", "first"),
        kernel_distance=("kernel_distance", "mean"),
    )
    thr = float(df["setup_threshold"].iloc[0])
    out["regime"] = np.where(out["kernel_distance"] > thr, "rich", "lazy")
    return out.reset_index()


def _architectures(df: pd.DataFrame) -> list[str]:
    return list(dict.fromkeys(df.loc[df["panel"] == "phase", "architecture"]))


def _kind(arch: str) -> str:
    n_i, n_h, n_o = (int(v) for v in arch.split("–"))
    if n_i == n_h == n_o:
        return "square"
    return "funnel" if n_i > n_o else "anti-funnel" if n_o > n_i else "net"


def _fits(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["panel"] == "fit"].set_index("quantity")


def draw(df: pd.DataFrame) -> Figure:
    """Top row: one phase diagram per architecture (S(0, t_max), log colour scale; dashed:
    S = threshold; dotted white: λ̄ = 0; markers: the presets). Bottom row: S along the ratio
    at the largest multiplier (dotted: each net's λ̄ = 0 ratio); the prediction's errors
    against n (log–log, fitted power laws); S_sim and S_pred against n."""
    archs = _architectures(df)
    preset = str(df["setup_preset"].iloc[0])
    thr = float(df["setup_threshold"].iloc[0])
    style = metric_style("kernel_distance")
    phase = df[df["panel"] == "phase"]
    norm, extend = metric_norm(phase["kernel_distance"], style)
    cmap = sns.color_palette(style.cmap, as_cmap=True)
    presets = _presets(df)
    ncols = max(3, len(archs))
    with figure_style():
        fig = new_figure(3.6 * ncols + 1.0, 7.4)
        axes = fig.subplots(2, ncols, squeeze=False)
        mesh = None
        for ax, arch in zip(axes[0], archs, strict=False):
            m, r, z = _cells(df, arch, "kernel_distance")
            xs, ys = AxisScale("log"), AxisScale("log")
            xs.apply(ax, "x")
            ys.apply(ax, "y")
            mesh = draw_heatmap(ax, z, xs.edges(ax, "x", m), ys.edges(ax, "y", r),
                                norm=norm, cmap=cmap)  # fmt: skip
            draw_threshold_contour(ax, z, m, r, thr, xs, ys,
                                   style={**REGIME_STYLE, "label": f"S = {thr:g}"})  # fmt: skip
            _, _, lam = _cells(df, arch, "lambda_expected")
            draw_threshold_contour(ax, lam, m, r, 0.0, xs, ys, style=LAMBDA_ZERO_STYLE)
            for row in presets[presets["architecture"] == arch].itertuples():
                ax.plot(row.multiplier, row.ratio, zorder=4, label=f"{row.preset} (S = "
                        f"{fmt(row.kernel_distance)})",
                        **{**MARKER_STYLE, "marker": MARKERS.get(row.preset, "D"),
                           "markersize": 6})  # fmt: skip
            ax.set_title(f"{_kind(arch)} {arch} (N_i–N_h–N_o)")
            ax.set_xlabel(f"multiplier m ({preset})")
            ax.set_ylabel("layer ratio r")
            for axis in (ax.xaxis, ax.yaxis):
                axis.set_major_formatter(PLAIN)
                axis.set_minor_locator(NullLocator())
            ax.set_xticks([0.1, 0.3, 1.0, 3.0])
            ax.set_yticks([0.125, 0.25, 0.5, 1, 2, 4, 8])
            ax.legend(fontsize=6, loc="lower left", framealpha=0.7)
        for ax in axes[0][len(archs) :]:
            ax.set_axis_off()
        if mesh is not None:
            cbar = fig.colorbar(mesh, ax=axes[0].tolist(), extend=extend, shrink=0.9)
            cbar.set_label(style.label)
            colorbar_log_ticks(cbar, norm)

        cut, err, svn = axes[1][0], axes[1][1], axes[1][2]
        mult = np.sort(phase["multiplier"].unique())
        m1 = mult.max() if mult.size else np.nan
        for k, arch in enumerate(archs):
            line = phase[(phase["architecture"] == arch) & (phase["multiplier"] == m1)]
            line = line.groupby("ratio")["kernel_distance"].mean()
            cut.plot(line.index, line.to_numpy(), "-o", ms=3, color=f"C{k}", label=arch)
            r0 = _lambda_zero_ratio(phase[phase["architecture"] == arch])
            cut.axvline(r0, color=f"C{k}", linestyle=":", linewidth=1.0)
        cut.axhline(thr, **REGIME_STYLE, label=f"S = {thr:g}")
        cut.set(xscale="log", yscale="log", xlabel="layer ratio r", ylabel=style.label)
        cut.set_title(f"cut at the largest multiplier m = {m1:.3g}")
        ratios = np.sort(phase["ratio"].unique())
        cut.set_xticks(ratios[:: max(1, (len(ratios) - 1) // 4)])
        cut.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.3g}"))
        cut.xaxis.set_minor_locator(NullLocator())
        cut.legend(fontsize=7, frameon=False)

        width = df[df["panel"] == "width"]
        fits = _fits(df)
        for k, (col, label) in enumerate(ERRORS.items()):
            if col not in width:
                continue
            err.plot(width["x"], width[col], ".", color=f"C{k}", alpha=0.45, ms=4)
            mean = width.groupby("x")[col].apply(lambda v: np.exp(np.log(v).mean()))
            err.plot(mean.index, mean.to_numpy(), "o", color=f"C{k}", ms=4)
            if col in fits.index and np.isfinite(fits.loc[col, "slope"]):
                f = fits.loc[col]
                xx = np.array([width["x"].min(), width["x"].max()])
                power = f"$n^{{{f['slope']:.2f} \\pm {f['slope_se']:.2f}}}$"
                fitted = np.exp(f["intercept"]) * xx ** f["slope"]
                err.plot(xx, fitted, "-", color=f"C{k}", label=f"{label}: {power}")
        err.set(xscale="log", yscale="log", xlabel=r"outer width $n = N_i = N_o$",
                ylabel="prediction error")  # fmt: skip
        w0 = width.iloc[0] if len(width) else None
        if w0 is not None:
            err.set_title(
                f"n–{int(w0['width'])}–n, {preset} × {w0['multiplier']:g}, ratio {w0['ratio']:g}"
            )
        err.legend(fontsize=6, frameon=False, loc="lower left")
        for col, label, mk in SV_CURVES:
            if col not in width:
                continue
            g = width.groupby("x")[col]
            svn.errorbar(g.mean().index, g.mean(), yerr=g.std(), fmt=f"-{mk}", ms=4,
                         capsize=2, label=label)  # fmt: skip
        svn.set(xscale="log", xlabel=r"outer width $n = N_i = N_o$", ylabel=style.label)
        svn.set_title("mean ± std over seeds")
        svn.legend(fontsize=7, frameon=False)
        for ax in (err, svn):
            xt = sorted(width["x"].unique())
            ax.set_xticks(xt, [f"{x:g}" for x in xt])
            ax.xaxis.set_minor_locator(NullLocator())
        fig.suptitle(
            f"Standard Gaussian inits on the lazy–rich map: {preset} × multiplier, layer ratio "
            f"(gradient flow, t_max = {df['setup_t_max'].iloc[0]:g})"
        )
        return fig


def caption(df: pd.DataFrame) -> str:
    """The caption, with the set-up and the numbers measured on ``df``."""
    s = df.iloc[0]
    preset = str(s["setup_preset"])
    thr = float(s["setup_threshold"])
    phase = df[df["panel"] == "phase"]
    archs = _architectures(df)
    mult, ratio = np.sort(phase["multiplier"].unique()), np.sort(phase["ratio"].unique())
    pres = _presets(df)
    small = phase[phase["multiplier"] == mult.min()].groupby(["architecture", "ratio"])
    small = small["kernel_distance"].mean()
    arch_text = []
    for arch in archs:
        cells = phase[phase["architecture"] == arch].groupby(["multiplier", "ratio"])
        S = cells["kernel_distance"].mean()
        lazy = (S <= thr).mean()
        top = S.xs(mult.max(), level="multiplier")
        sides = [name for name, r in (("the smallest r", ratio.min()),
                                      ("the largest r", ratio.max()))
                 if top[r] <= thr]  # fmt: skip
        lam = phase[phase["architecture"] == arch]
        r0 = _lambda_zero_ratio(lam)
        marks = "; ".join(
            f"{row.preset} at (m, r) = ({fmt(row.multiplier)}, {fmt(row.ratio)}): S = "
            f"{fmt(row.kernel_distance)}, {row.regime}"
            for row in pres[pres["architecture"] == arch].itertuples()
        )
        arch_text.append(
            f"{_kind(arch)} {arch}: {fmt(100 * lazy)} % of cells lazy; at m = {fmt(mult.max())} "
            f"lazy at {' and '.join(sides) or 'neither end of r'} (S = {fmt(top[ratio.min()])} "
            f"at r = {fmt(ratio.min())}, {fmt(top.max())} at best, {fmt(top[ratio.max()])} at "
            f"r = {fmt(ratio.max())}), λ̄ = 0 at r = {fmt(r0)}; {marks}"
        )
    width = df[df["panel"] == "width"]
    fits = _fits(df)

    def law(col: str) -> str:
        f = fits.loc[col]
        return f"n^({f['slope']:+.2f} ± {f['slope_se']:.2f})"

    by_n = width.groupby("x")
    ns = sorted(width["x"].unique())
    lo, hi = ns[0], ns[-1]
    s_sim, s_pred = by_n["kernel_distance"].mean(), by_n["kernel_distance_predicted"].mean()
    tr = by_n["trajectory_error"].mean()
    return (
        f"Gaussian two-layer inits in {preset} coordinates: σ_1 = m·b_1/√r, σ_2 = m·b_2·√r "
        f"(m the multiplier, r the layer ratio; ∏σ does not depend on r, which moves only the "
        f"imbalance λ_eff). Phase diagrams: S(0, t_max) of simulated gradient flow (t_max = "
        f"{fmt(s['setup_t_max'])}, rtol {fmt(s['setup_rtol'])}, random tasks s̃ = 3 … 0.5) on "
        f"{len(mult)} multipliers {fmt(mult.min())}–{fmt(mult.max())} × {len(ratio)} ratios "
        f"{fmt(ratio.min())}–{fmt(ratio.max())}, mean over {int(s['setup_n_seeds'])} seeds; "
        f"lazy where S ≤ {fmt(thr)}. "
        + ". ".join(arch_text)
        + f". At m = {fmt(mult.min())} S ≥ {fmt(small.min())} at every ratio ("
        f"{'all rich' if small.min() > thr else 'not all rich'}); at large m the ratio decides "
        f"through λ_eff, on the sides the architecture allows (theory §2: λ_eff < 0 leaves a "
        f"funnel's wide input layer, λ_eff > 0 an anti-funnel's wide output layer to rotate "
        f"onto the task). "
        f"The λ_eff-balanced prediction (theory §6.2) against the outer width n = N_i = N_o "
        f"at N_h = {int(s['setup_width_hidden'])} ({preset} × {fmt(s['setup_width_multiplier'])}"
        f", ratio {fmt(s['setup_width_ratio'])}, rank-2 task s̃ = "
        f"{s['setup_width_task_singular_values']}, t_max = {fmt(s['setup_width_t_max'])}, "
        f"{int(s['setup_width_seeds'])} seeds per n, n = {fmt(lo)}–{fmt(hi)}; least-squares "
        f"slopes over all seeds ± standard error): off-balance ∝ {law('off_balance')}, "
        f"trajectory error ∝ {law('trajectory_error')} ({fmt(tr[lo])} at n = {fmt(lo)}, "
        f"{fmt(tr[hi])} at n = {fmt(hi)}), |S_sim − S_pred| ∝ "
        f"{law('kernel_distance_error')}. Read |ΔS| next to S: S_sim = {fmt(s_sim[lo])} → "
        f"{fmt(s_sim[hi])} and S_pred = {fmt(s_pred[lo])} → {fmt(s_pred[hi])} from n = "
        f"{fmt(lo)} to {fmt(hi)}, so |ΔS| ≤ 1 − S shrinks with S → 1 on top of the "
        f"concentration of the imbalance."
    )


def _lambda_zero_ratio(sub: pd.DataFrame) -> float:
    """The ratio r_0 where λ̄ = N_oσ_2² − N_iσ_1² changes sign (exact, from any one row).

    σ_1 ∝ 1/√r and σ_2 ∝ √r at fixed m, so N_iσ_1²/(N_oσ_2²) ∝ 1/r² and r_0 is where it is 1.
    """
    if not len(sub):
        return np.nan
    row = sub.iloc[0]
    ratio = row["n_in"] * row["sigma_1"] ** 2 / (row["n_out"] * row["sigma_2"] ** 2)
    return float(row["ratio"] * np.sqrt(ratio))
