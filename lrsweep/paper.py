"""The paper's figures as pipeline targets: compute a tidy table, draw from the table only.

Reproduces the results of Dominé et al., "From Lazy to Rich: Exact Learning Dynamics in Deep
Linear Networks" (ICLR 2025; theory.md §5). Each target is one function call,
:func:`make_target`, which writes into ``out_dir``:

- ``<target>.parquet``: the tidy table behind the figure (re-plot without recomputing);
- ``<target>.png`` and ``<target>.pdf``: the figure, drawn from that table only
  (:func:`lrsweep.plots.save_figure`, atomic);
- ``<target>.md``: the caption, with the chosen set-up values and the measured numbers.

Targets computed here (small, seconds each): ``exact_vs_sim``, ``singular_values``,
``hierarchy``, ``applications``. Targets drawn from the sweep pipeline's aggregated tables
(``results/<sweep>/phase.parquet`` and ``boundary.parquet``; pass them as ``inputs``):
``phase``, ``architecture``, ``width_depth``. ``summary`` collects figure PNGs and their
captions into one page.

Time is in units of τ = 1/η everywhere (gradient-descent step k at learning rate η is
t/τ = kη).
"""

from __future__ import annotations

import functools
import textwrap
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import matplotlib.image as mimage
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib import colors as mcolors
from matplotlib import ticker as mticker
from matplotlib.axes import Axes
from matplotlib.cm import ScalarMappable
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from lrsweep import applications as apps
from lrsweep.exact import aligned_singular_values, converged, qqt, qqt_blocks
from lrsweep.io import atomic_write
from lrsweep.metrics import LAZY_THRESHOLD
from lrsweep.metrics import loss as excess_loss
from lrsweep.plots import (
    AxisScale,
    arch_label,
    draw_boundary_markers,
    draw_heatmap,
    draw_threshold_contour,
    figure_style,
    lambda_cmap,
    lambda_norm,
    metric_norm,
    metric_style,
    new_figure,
    save_figure,
)
from lrsweep.simulate import gradient_descent
from lrsweep.solve import SCIENCE_MODULES
from lrsweep.solve import code_fingerprint as _solve_fingerprint
from lrsweep.tasks import HIERARCHY_ITEMS, random_regression, semantic_hierarchy

__all__ = [
    "APPLICATIONS",
    "EXACT_VS_SIM",
    "HIERARCHY",
    "SINGULAR_VALUES",
    "TABLE_TARGETS",
    "TARGETS",
    "compute_applications",
    "compute_exact_vs_sim",
    "compute_hierarchy",
    "compute_singular_values",
    "code_fingerprint",
    "draw_applications",
    "draw_architecture",
    "draw_exact_vs_sim",
    "draw_hierarchy",
    "draw_phase",
    "draw_singular_values",
    "draw_summary",
    "draw_width_depth",
    "make_target",
    "paper_inputs",
    "sweep_roles",
    "table_for",
    "table_inputs",
]

# ------------------------------------------------------------------------------ set-ups
# The paper's set-up where it states one (3-3-3 random regression with P = 10, the 8-item
# semantic hierarchy); elsewhere the smallest choice that shows the effect cleanly. Every
# value is written into the target's table and caption.

EXACT_VS_SIM: dict = {
    "n": 3,  # N_i = N_h = N_o
    "n_samples": 10,  # P
    "task_seed": 0,  # random_regression seed; singular values 3, 1.75, 0.5
    "lambdas": (-10.0, -2.0, 0.0, 2.0, 10.0),
    "scale": 0.05,  # init product singular values (random, not task-aligned, directions)
    "seed": 0,  # init rotations (sign det W2W1(0) = sign det Σyx: no λ = 0 saddle)
    "lr": 1e-3,  # gradient-descent learning rate η (t/τ = kη)
    "t_max": 10.0,
    "n_t": 201,
}
"""Target ``exact_vs_sim`` (paper Fig. 2 set-up)."""

SINGULAR_VALUES: dict = {
    "n": 3,
    "n_samples": 10,
    "task_seed": 0,  # singular values s̃ = 3, 1.75, 0.5
    "lambdas": (0.0, 0.3, 1.0, 3.0, 10.0, 30.0),
    "scale": 1e-3,  # a_k(0), task-aligned init
    "seed": 0,
    "lr": 1e-3,
    "t_max": 12.0,
    "n_t": 481,
}
"""Target ``singular_values``."""

HIERARCHY: dict = {
    "lambdas": (-10.0, 0.0, 10.0),  # lazy (input side large), rich, lazy (output side large)
    "scale": 1e-3,
    "seed": 0,  # first seed >= this with sign det W2W1(0) = sign det Σyx (no λ = 0 saddle)
    "t_end": 60.0,
}
"""Target ``hierarchy`` (8 items, 8 features, N_h = 8; s̃ = 1, 1, .71, .71, .5 ×4)."""

APPLICATIONS: dict = {
    "n": 4,  # N_i = N_h = N_o (even: the transfer rotation pairs all modes)
    "task_seed": 0,  # task A: singular values 3, 2.17, 1.33, 0.5
    "task_b_seed": 1,  # continual task B (sign of det matched to A's, see caption)
    "lambdas": (0.0, 1e-4, 1e-3, 1e-2, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0),
    "curve_lambdas": (0.0, 1e-2, 0.1, 1.0, 10.0),
    "angles_deg": tuple(range(0, 181, 15)),
    "scale": 1e-3,
    "seed": 0,
    "t_pretrain": 30.0,
    "t_max": 30.0,
    "n_t": 301,
    "level": apps.FIT_LEVEL,
}
"""Target ``applications`` (reversal, continual, transfer; task-aligned inits)."""

TARGETS = (
    "exact_vs_sim",
    "singular_values",
    "phase",
    "architecture",
    "hierarchy",
    "width_depth",
    "applications",
    "summary",
)
TABLE_TARGETS = ("phase", "architecture", "width_depth")
"""Targets drawn from the sweep pipeline's aggregated tables."""

_TABLES = ("phase", "boundary", "runs")
_PHASE_METRICS = ("kernel_distance", "time_to_fit_90", "ntk_change")
_METRIC_TITLES = {
    "kernel_distance": "Kernel distance (lazy ≈ 0)",
    "time_to_fit_90": "Time to fit",
    "ntk_change": "NTK change",
}
_FACETS = ["solver", "n_in", "n_out", "width", "depth"]
_T_LABEL = r"time $t/\tau$"


def _lam_text(lam: float) -> str:
    return f"{lam:g}" if lam <= 0 else f"+{lam:g}"


def _fmt(x: float) -> str:
    return "∞" if np.isinf(x) else ("n/a" if np.isnan(x) else f"{x:.3g}")


# ====================================================================== 1. exact vs sim


def _ntk_entries(w1tw1: np.ndarray, w2w2t: np.ndarray, X: np.ndarray, pairs) -> np.ndarray:
    """Entries K[(a,n),(b,m)] of K = I ⊗ XᵀW1ᵀW1X + W2W2ᵀ ⊗ XᵀX (theory §4), shape (..., k)."""
    A = np.swapaxes(X, 0, 1) @ w1tw1 @ X  # (..., P, P)
    G = X.T @ X
    out = []
    for (a, n), (b, m) in pairs:
        out.append((a == b) * A[..., n, m] + w2w2t[..., a, b] * G[n, m])
    return np.stack(out, axis=-1)


_NTK_PAIRS = (
    ((0, 0), (0, 0)),
    ((0, 0), (0, 1)),
    ((0, 1), (0, 1)),
    ((0, 0), (1, 0)),
    ((1, 0), (1, 1)),
    ((2, 2), (2, 2)),
)


def _long(values: np.ndarray, t: np.ndarray, lams: np.ndarray, labels: Sequence[str], **cols):
    """Tidy rows from values (n_t, n_λ, k): one row per (t, λ, entry)."""
    n_t, n_l, k = values.shape
    return pd.DataFrame(
        {
            "t": np.repeat(t, n_l * k),
            "lambda": np.tile(np.repeat(lams, k), n_t),
            "entry": np.tile(np.asarray(labels, dtype=object), n_t * n_l),
            "value": values.ravel(),
            **cols,
        }
    )


def compute_exact_vs_sim(**overrides) -> pd.DataFrame:
    """Exact solution and gradient descent side by side on a small random regression task.

    Quantities over t/τ for each λ: network function W2W1 (9 entries), loss, W1ᵀW1 and
    W2W2ᵀ (upper triangles) and six NTK entries K[(a,n),(b,m)] (theory §4).

    Returns
    -------
    DataFrame
        Columns: quantity, entry, source ('exact' | 'gd'), lambda, t, value, and the set-up
        (n, n_samples, scale, seed, task_seed, lr).
    """
    p = {**EXACT_VS_SIM, **overrides}
    n = p["n"]
    task = random_regression(n, n, p["n_samples"], seed=p["task_seed"])
    lams = np.asarray(p["lambdas"], float)
    W1, W2 = apps.balanced_inits(lams, n, n, n, p["scale"], seed=p["seed"])
    t = np.linspace(0.0, p["t_max"], p["n_t"])
    w1s, w2s = gradient_descent([W1, W2], task.sigma_yx, t, p["lr"])
    q_gd = np.concatenate([np.swapaxes(w1s, -1, -2), w2s], axis=-2)
    sources = {
        "exact": qqt(W1, W2, task.sigma_yx, t),
        "gd": q_gd @ np.swapaxes(q_gd, -1, -2),
    }
    iu = np.triu_indices(n)
    ij = [f"{i + 1}{j + 1}" for i in range(n) for j in range(n)]
    tri = [f"{i + 1}{j + 1}" for i, j in zip(*iu, strict=True)]
    ntk = [f"({a + 1},{c + 1}),({b + 1},{d + 1})" for (a, c), (b, d) in _NTK_PAIRS]
    frames = []
    setup = {k: p[k] for k in ("n", "n_samples", "scale", "seed", "task_seed", "lr")}
    for source, q in sources.items():
        a, f, b = qqt_blocks(q, n)
        parts = {
            "network_function": (f.reshape(*f.shape[:2], -1), ij),
            "loss": (excess_loss(f, task.sigma_yx)[..., None], ["loss"]),
            "W1tW1": (a[..., iu[0], iu[1]], tri),
            "W2W2t": (b[..., iu[0], iu[1]], tri),
            "ntk": (_ntk_entries(a, b, task.X, _NTK_PAIRS), ntk),
        }
        for name, (vals, labels) in parts.items():
            frames.append(_long(vals, t, lams, labels, quantity=name, source=source, **setup))
    return pd.concat(frames, ignore_index=True)


def _deviations(df: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """Max |gd − exact| per group of ``keys``, absolute and relative to max |exact|."""
    wide = df.pivot_table(
        index=[*keys, "entry", "t"], columns="source", values="value", aggfunc="first"
    ).reset_index()
    wide["dev"] = (wide["gd"] - wide["exact"]).abs()
    wide["size"] = wide["exact"].abs()
    g = wide.groupby(list(keys))
    out = g[["dev", "size"]].max()
    out["rel"] = out["dev"] / out["size"]
    return out.reset_index()


_EVS_ROWS = (
    ("network_function", r"network function $W_2W_1$"),
    ("loss", r"loss $\mathcal{L}$"),
    ("W1tW1", r"$W_1^\top W_1$"),
    ("W2W2t", r"$W_2W_2^\top$"),
    ("ntk", r"NTK entries $K_{(a,n),(b,m)}$"),
)


def draw_exact_vs_sim(df: pd.DataFrame) -> Figure:
    """Grid (quantity × λ) of gradient descent (solid, light) under the exact solution (dashed)."""
    lams = np.sort(df["lambda"].unique())
    dev = _deviations(df, ["quantity"])
    lr = float(df["lr"].iloc[0])
    palette = sns.color_palette("tab10", 10)
    with figure_style():
        fig = new_figure(2.3 * lams.size + 0.6, 1.75 * len(_EVS_ROWS) + 0.9)
        axes = fig.subplots(len(_EVS_ROWS), lams.size, sharex=True, sharey="row", squeeze=False)
        for i, (qty, label) in enumerate(_EVS_ROWS):
            sub = df[df["quantity"] == qty]
            entries = list(dict.fromkeys(sub["entry"]))
            for j, lam in enumerate(lams):
                ax = axes[i, j]
                cell = sub[sub["lambda"] == lam]
                for k, e in enumerate(entries):
                    c = palette[k % 10]
                    for src, style in (
                        ("gd", {"lw": 2.6, "alpha": 0.35, "ls": "-"}),
                        ("exact", {"lw": 1.0, "alpha": 1.0, "ls": "--"}),
                    ):
                        line = cell[(cell["entry"] == e) & (cell["source"] == src)]
                        ax.plot(line["t"], line["value"], color=c, **style)
                if qty == "loss":
                    ax.set_yscale("log")
                    ax.set_ylim(1e-10, 3 * sub["value"].max())
                if i == 0:
                    ax.set_title(rf"$\lambda = {lam:g}$")
                if j == 0:
                    ax.set_ylabel(label)
                d = dev[dev["quantity"] == qty].iloc[0]
            axes[i, -1].text(
                1.02,
                0.5,
                f"max dev.\n{d['dev']:.1e}",
                transform=axes[i, -1].transAxes,
                fontsize=6.5,
                va="center",
                ha="left",
            )
        for ax in axes[-1]:
            ax.set_xlabel(_T_LABEL)
        handles = [
            Line2D([], [], color="0.3", lw=2.6, alpha=0.35, label=f"gradient descent, η = {lr:g}"),
            Line2D([], [], color="0.3", lw=1.0, ls="--", label="exact solution"),
        ]
        fig.legend(handles=handles, loc="outside lower center", ncols=2, frameon=False)
        rel = dev["rel"].max()
        fig.suptitle(
            f"Exact solution vs gradient descent, {df['n'].iloc[0]}–{df['n'].iloc[0]}–"
            f"{df['n'].iloc[0]} net, random regression (P = {df['n_samples'].iloc[0]}); "
            f"max |GD − exact| / max |exact| = {rel:.1e}",
            fontsize=10,
        )
    return fig


def caption_exact_vs_sim(df: pd.DataFrame) -> str:
    dev = _deviations(df, ["quantity"])
    n, p = int(df["n"].iloc[0]), int(df["n_samples"].iloc[0])
    lams = ", ".join(f"{x:g}" for x in np.sort(df["lambda"].unique()))
    per = "; ".join(f"{r.quantity} {r.dev:.1e} ({r.rel:.1e} rel.)" for r in dev.itertuples())
    return (
        f"Exact solution (dashed) over simulated gradient descent (solid, η = "
        f"{df['lr'].iloc[0]:g}, t/τ = kη) for a {n}–{n}–{n} network on a random regression task "
        f"(P = {p}, whitened inputs, s̃ = 3, 1.75, 0.5), λ ∈ {{{lams}}}, λ-balanced init with "
        f"random directions and product singular values {df['scale'].iloc[0]:g} (seed "
        f"{df['seed'].iloc[0]}). Rows: entries of W2W1, the loss, upper triangles of W1ᵀW1 and "
        f"W2W2ᵀ, and six NTK entries K = I⊗XᵀW1ᵀW1X + W2W2ᵀ⊗XᵀX. λ ≈ 0 learns in sigmoidal "
        f"stages with large representation changes; large |λ| learns exponentially while the "
        f"large layer's Gram (W2W2ᵀ for λ > 0, W1ᵀW1 for λ < 0) stays ≈ |λ|I. Max |GD − exact| "
        f"over time, λ and entries: {per}. The deviation is the O(η) discretisation error of "
        f"gradient descent."
    )


# =================================================================== 2. singular values


def compute_singular_values(**overrides) -> pd.DataFrame:
    """Mode strengths a_k(t) = ũ_kᵀW2W1ṽ_k for a task-aligned init: closed form and GD.

    Returns
    -------
    DataFrame
        Columns: source ('exact' | 'gd'), lambda, mode (1 = largest s̃), s_tilde, t, a,
        a_over_s, and the set-up (scale, lr, task_seed).
    """
    p = {**SINGULAR_VALUES, **overrides}
    n = p["n"]
    task = random_regression(n, n, p["n_samples"], seed=p["task_seed"])
    U, s, V = task.svd
    lams = np.asarray(p["lambdas"], float)
    t = np.linspace(0.0, p["t_max"], p["n_t"])
    exact = aligned_singular_values(np.full((lams.size, s.size), p["scale"]), s, lams, t)
    W1, W2 = apps.balanced_inits(lams, n, n, n, p["scale"], seed=p["seed"], aligned=(U, V))
    w1s, w2s = gradient_descent([W1, W2], task.sigma_yx, t, p["lr"])
    gd = np.einsum("ok,tlom,mk->tlk", U, w2s @ w1s, V)  # ũ_kᵀ W2W1 ṽ_k
    frames = []
    for source, a in (("exact", exact), ("gd", gd)):
        n_t, n_l, m = a.shape
        frames.append(
            pd.DataFrame(
                {
                    "source": source,
                    "lambda": np.tile(np.repeat(lams, m), n_t),
                    "mode": np.tile(np.arange(1, m + 1), n_t * n_l),
                    "s_tilde": np.tile(s, n_t * n_l),
                    "t": np.repeat(t, n_l * m),
                    "a": a.ravel(),
                }
            )
        )
    df = pd.concat(frames, ignore_index=True)
    df["a_over_s"] = df["a"] / df["s_tilde"]
    df["scale"], df["lr"], df["task_seed"] = p["scale"], p["lr"], p["task_seed"]
    return df


def draw_singular_values(df: pd.DataFrame) -> Figure:
    """a(t)/s̃ of the top mode for all λ on one axis; all modes at the extreme λ; log gap."""
    lams = np.sort(df["lambda"].unique())
    norm, cmap = lambda_norm(np.concatenate([lams, -lams])), lambda_cmap()
    ex, gd = df[df["source"] == "exact"], df[df["source"] == "gd"]
    dev = float(np.abs(gd["a"].to_numpy() - ex["a"].to_numpy()).max())
    modes = np.sort(df["mode"].unique())
    s_of = df.groupby("mode")["s_tilde"].first()
    rich_t = _sv_t_zoom(ex)
    with figure_style():
        fig = new_figure(11.5, 3.6)
        ax_a, ax_b, ax_c = fig.subplots(1, 3)
        for lam in lams:
            c = cmap(norm(lam))
            for src, kw in (("gd", {"lw": 2.8, "alpha": 0.35}), ("exact", {"lw": 1.0, "ls": "--"})):
                m1 = df[(df["source"] == src) & (df["lambda"] == lam) & (df["mode"] == 1)]
                ax_a.plot(m1["t"], m1["a_over_s"], color=c, **kw)
                ax_c.plot(m1["t"], 1 - m1["a_over_s"], color=c, **kw)
        for lam, ls in ((lams[0], "-"), (lams[-1], ":")):
            for k in modes:
                for src, kw in (("gd", {"lw": 2.8, "alpha": 0.35}), ("exact", {"lw": 1.0})):
                    mk = df[(df["source"] == src) & (df["lambda"] == lam) & (df["mode"] == k)]
                    ax_b.plot(
                        mk["t"],
                        mk["a"],
                        color=sns.color_palette("deep")[k - 1],
                        ls=ls if src == "exact" else "-",
                        **kw,
                    )
            for k in modes:
                ax_b.axhline(s_of[k], color="0.75", lw=0.6, zorder=0)
        ax_a.set_xlim(0, rich_t)
        ax_c.set_xlim(0, rich_t)
        ax_a.set_ylabel(r"$a_1(t)/\tilde s_1$ (top mode)")
        ax_a.set_title(rf"(a) top mode, $\tilde s_1 = {s_of[1]:.3g}$", loc="left")
        ax_b.set_ylabel(r"singular values $a_k(t)$")
        ax_b.set_title(
            rf"(b) all modes: $\lambda = {lams[0]:g}$ (solid) vs ${lams[-1]:g}$ (dotted)",
            loc="left",
        )
        ax_c.set_yscale("log")
        ax_c.set_ylim(1e-8, 2)
        ax_c.set_ylabel(r"$1 - a_1(t)/\tilde s_1$")
        ax_c.set_title("(c) distance to target: exponential = straight", loc="left")
        for ax in (ax_a, ax_b, ax_c):
            ax.set_xlabel(_T_LABEL)
        ax_b.legend(
            handles=[
                Line2D(
                    [],
                    [],
                    color=sns.color_palette("deep")[k - 1],
                    label=rf"$\tilde s_{k} = {s_of[k]:.3g}$",
                )
                for k in modes
            ],
            frameon=False,
            fontsize=7,
            loc="center right",
        )
        ax_a.legend(
            handles=[
                Line2D([], [], color=cmap(norm(lam)), label=rf"$|\lambda| = {lam:g}$")
                for lam in lams
            ],
            frameon=False,
            fontsize=7,
            loc="lower right",
            title="dynamics depend on |λ| only",
            title_fontsize=6.5,
        )
        fig.legend(
            handles=[
                Line2D(
                    [],
                    [],
                    color="0.3",
                    lw=2.8,
                    alpha=0.35,
                    label=f"gradient descent, η = {df['lr'].iloc[0]:g}",
                ),
                Line2D([], [], color="0.3", lw=1.0, ls="--", label="closed form (theory §3.5)"),
            ],
            loc="outside lower center",
            ncols=2,
            frameon=False,
        )
        fig.suptitle(
            f"Singular-value dynamics, task-aligned init $a_k(0) = {df['scale'].iloc[0]:g}$: "
            f"sigmoidal at λ ≈ 0, exponential at large |λ| (max |GD − closed form| = {dev:.1e})",
            fontsize=10,
        )
    return fig


def _sv_t_zoom(ex: pd.DataFrame) -> float:
    """x-range for the top-mode panels: 1.5 × the time λ = min reaches 99 % of s̃_1."""
    m1 = ex[(ex["mode"] == 1) & (ex["lambda"] == ex["lambda"].min())].sort_values("t")
    hit = m1["t"][m1["a_over_s"] >= 0.99]
    return float(1.5 * hit.iloc[0]) if len(hit) else float(m1["t"].max())


def sv_shape(df: pd.DataFrame, lam: float, mode: int = 1, source: str = "exact") -> dict:
    """Shape diagnostics of a_k(t): time of fastest growth, initial vs max slope, concavity.

    Sigmoidal (rich): the fastest growth is late (after a plateau), max slope ≫ initial slope.
    Exponential (lazy): the fastest growth is at t = 0 and the curve is concave throughout.
    """
    c = df[(df["source"] == source) & (df["lambda"] == lam) & (df["mode"] == mode)]
    c = c.sort_values("t")
    t, a = c["t"].to_numpy(), c["a"].to_numpy()
    slope = np.gradient(a, t)
    reached = t[np.argmax(a >= 0.5 * c["s_tilde"].iloc[0])]
    return {
        "t_fastest": float(t[np.argmax(slope)]),
        "slope_ratio": float(slope.max() / max(slope[0], 1e-300)),
        "t_half": float(reached),
        "concave": bool(np.all(np.diff(slope) <= 1e-9 * np.abs(slope).max())),
    }


def caption_singular_values(df: pd.DataFrame) -> str:
    lams = np.sort(df["lambda"].unique())
    ex, gd = df[df["source"] == "exact"], df[df["source"] == "gd"]
    dev = float(np.abs(gd["a"].to_numpy() - ex["a"].to_numpy()).max())
    s = df.groupby("mode")["s_tilde"].first().to_numpy()
    rich, lazy = sv_shape(df, lams[0]), sv_shape(df, lams[-1])
    return (
        f"Singular values a_k(t) of W2W1 for a task-aligned λ-balanced init (3–3–3, s̃ = "
        f"{', '.join(f'{x:.3g}' for x in s)}, a_k(0) = {df['scale'].iloc[0]:g}), λ ∈ "
        f"{{{', '.join(f'{x:g}' for x in lams)}}} (the dynamics depend on |λ| only). Dashed: "
        f"closed form of τ da/dt = √(λ²+4a²)(s̃ − a) (theory §3.5); solid: gradient descent, "
        f"η = {df['lr'].iloc[0]:g}; max |GD − closed form| = {dev:.1e}. (a) top mode: at "
        f"λ = {lams[0]:g} a plateau, then the fastest growth at t/τ = {rich['t_fastest']:.2f} "
        f"({rich['slope_ratio']:.0f}× the initial slope) — sigmoidal; at λ = {lams[-1]:g} the "
        f"fastest growth is at t = 0 and the curve is concave — exponential, half-way at "
        f"t/τ = {lazy['t_half']:.3f} vs {rich['t_half']:.2f}. (b) rich learning is stage-like, "
        f"one mode after another in order of s̃; lazy learning fits all modes at once. (c) "
        f"1 − a/s̃ on a log axis: straight lines (exponential, rate √(λ²+4s̃²)/τ) at large |λ|."
    )


# ========================================================================= 5. hierarchy


def _tree_depth() -> np.ndarray:
    """Shared depth of items in the hierarchy: 4 same item, 3 same pair, 2 same kingdom, 1."""
    group2 = np.repeat(np.arange(4), 2)  # bird, fish, tree, flower
    group1 = np.repeat(np.arange(2), 4)  # animal, plant
    d = 1 + (group1[:, None] == group1[None]) + (group2[:, None] == group2[None])
    return d + np.eye(8, dtype=int)


def rsm_structure(rsm: np.ndarray, tree: np.ndarray | None = None) -> dict:
    """Identity-likeness and hierarchy of an RSM (n × n).

    non_identity = ‖M − (tr M/n) I‖_F / ‖M‖_F (0 for a multiple of the identity);
    offdiag_ratio = ‖offdiag M‖_F / ‖M‖_F; tree_corr = Pearson correlation of the
    off-diagonal entries with the items' shared depth in the tree (item RSM only).
    """
    n = rsm.shape[0]
    off = ~np.eye(n, dtype=bool)
    size = np.linalg.norm(rsm)
    out = {
        "non_identity": float(np.linalg.norm(rsm - np.trace(rsm) / n * np.eye(n)) / size),
        "offdiag_ratio": float(np.linalg.norm(rsm[off]) / size),
    }
    if tree is not None:
        out["tree_corr"] = float(np.corrcoef(rsm[off], tree[off])[0, 1])
    return out


def _no_saddle_seed(sigma: np.ndarray, n_h: int, scale: float, seed: int) -> int:
    """First seed ≥ ``seed`` whose λ = 0 init has sign det W2W1(0) = sign det Σyx."""
    from lrsweep.init import lambda_balanced

    n_o, n_i = sigma.shape
    target = np.sign(np.linalg.det(sigma))
    for s in range(seed, seed + 1000):
        W1, W2 = lambda_balanced(0.0, n_i, n_h, n_o, scale, seed=s)
        if np.sign(np.linalg.det(W2 @ W1)) == target:
            return s
    raise ValueError(f"no seed in [{seed}, {seed + 1000}) avoids the λ = 0 saddle")


def compute_hierarchy(**overrides) -> pd.DataFrame:
    """RSMs W1ᵀW1 (items × items) and W2W2ᵀ (features × features) at convergence vs λ.

    Exact solution at t = t_end from a λ-balanced random init on the semantic hierarchy;
    its deviation from the converged state of theory §3.4 is recorded.

    Returns
    -------
    DataFrame
        Columns: lambda, rsm ('W1tW1' | 'W2W2t'), row, col (labels), i, j, value, normalized
        (value / max |value| of that RSM), converged_dev, and the set-up.
    """
    p = {**HIERARCHY, **overrides}
    task = semantic_hierarchy()
    sigma = task.sigma_yx
    lams = np.asarray(p["lambdas"], float)
    seed = _no_saddle_seed(sigma, 8, p["scale"], p["seed"])
    W1, W2 = apps.balanced_inits(lams, 8, 8, 8, p["scale"], seed=seed)
    q = qqt(W1, W2, sigma, [p["t_end"]])[0]
    dev = np.abs(q - converged(sigma, lams)).max(axis=(-2, -1))
    a, _, b = qqt_blocks(q, 8)
    features = (
        "living",
        "animal/plant",
        "bird/fish",
        "tree/flower",
        "canary/robin",
        "salmon/sunfish",
        "oak/pine",
        "rose/daisy",
    )
    rows = []
    for name, mats, labels in (("W1tW1", a, HIERARCHY_ITEMS), ("W2W2t", b, features)):
        for k, lam in enumerate(lams):
            m = mats[k]
            peak = np.abs(m).max()
            for i in range(8):
                for j in range(8):
                    rows.append(
                        (lam, name, labels[i], labels[j], i, j, m[i, j], m[i, j] / peak, dev[k])
                    )
    df = pd.DataFrame(
        rows,
        columns=["lambda", "rsm", "row", "col", "i", "j", "value", "normalized", "converged_dev"],
    )
    df["scale"], df["seed"], df["t_end"] = p["scale"], seed, p["t_end"]
    return df


def hierarchy_matrix(df: pd.DataFrame, lam: float, rsm: str, column: str = "value") -> np.ndarray:
    """One RSM (8 × 8) from the hierarchy table."""
    sub = df[(df["lambda"] == lam) & (df["rsm"] == rsm)]
    m = np.full((8, 8), np.nan)
    m[sub["i"].to_numpy(), sub["j"].to_numpy()] = sub[column].to_numpy()
    return m


def draw_hierarchy(df: pd.DataFrame) -> Figure:
    """2 × n_λ heatmaps of the normalised RSMs, item / feature labels, diverging colours."""
    lams = np.sort(df["lambda"].unique())
    tree = _tree_depth()
    cmap = sns.color_palette("vlag", as_cmap=True)
    norm = mcolors.Normalize(-1, 1)
    names = {
        "W1tW1": (r"$W_1^\top W_1$ (items)", True),
        "W2W2t": (r"$W_2W_2^\top$ (features)", False),
    }
    with figure_style():
        fig = new_figure(3.1 * lams.size + 1.6, 6.6)
        axes = fig.subplots(2, lams.size, squeeze=False)
        for r, (rsm, (label, is_items)) in enumerate(names.items()):
            sub = df[df["rsm"] == rsm]
            ticks = list(dict.fromkeys(sub.sort_values("i")["row"]))
            for c, lam in enumerate(lams):
                ax = axes[r, c]
                m = hierarchy_matrix(df, lam, rsm, "normalized")
                raw = hierarchy_matrix(df, lam, rsm)
                ax.imshow(m, cmap=cmap, norm=norm, interpolation="nearest")
                st = rsm_structure(raw, tree if is_items else None)
                regime = "rich" if lam == 0 else "lazy"
                extra = ""
                if is_items:
                    corr = st["tree_corr"] if st["offdiag_ratio"] >= 0.01 else np.nan
                    extra = f", tree corr. {corr:.2f}" if np.isfinite(corr) else ", tree corr. —"
                ax.set_title(
                    rf"$\lambda = {lam:g}$ ({regime}): max {np.abs(raw).max():.3g}"
                    "\n"
                    f"non-identity {st['non_identity']:.2f}{extra}",
                    fontsize=8,
                )
                ax.set_xticks(
                    range(8), ticks if r == 1 or is_items else [], rotation=90, fontsize=6.5
                )
                ax.set_yticks(range(8), ticks if c == 0 else [], fontsize=6.5)
                if c == 0:
                    ax.set_ylabel(label)
                for k in (1.5, 3.5, 5.5):  # pair / class boundaries of the tree
                    lw = 1.0 if k == 3.5 else 0.4
                    ax.axhline(k, color="0.2", lw=lw)
                    ax.axvline(k, color="0.2", lw=lw)
        cbar = fig.colorbar(
            ScalarMappable(norm=norm, cmap=cmap), ax=axes.ravel().tolist(), shrink=0.8
        )
        cbar.set_label("RSM / max |RSM| (per panel)")
        fig.suptitle(
            f"Semantic hierarchy: representations at convergence (t/τ = {df['t_end'].iloc[0]:g}, "
            f"init scale {df['scale'].iloc[0]:g})",
            fontsize=10,
        )
    return fig


def caption_hierarchy(df: pd.DataFrame) -> str:
    lams = np.sort(df["lambda"].unique())
    tree = _tree_depth()
    parts = []
    for lam in lams:
        a = rsm_structure(hierarchy_matrix(df, lam, "W1tW1"), tree)
        b = rsm_structure(hierarchy_matrix(df, lam, "W2W2t"))
        parts.append(
            f"λ = {lam:g}: item RSM non-identity {a['non_identity']:.2f} (off-diagonal "
            f"{a['offdiag_ratio']:.3f}, tree correlation {a['tree_corr']:.2f}), feature RSM "
            f"non-identity {b['non_identity']:.2f}"
        )
    dev = df.groupby("lambda")["converged_dev"].first().max()
    return (
        "Hidden representations of the 8-item semantic hierarchy (one-hot items, 8 hierarchical "
        "features; 8–8–8 net, λ-balanced random init with product singular values "
        f"{df['scale'].iloc[0]:g}, seed {df['seed'].iloc[0]}) at t/τ = {df['t_end'].iloc[0]:g}: "
        "item RSM W1ᵀW1 (top) and feature RSM W2W2ᵀ (bottom), each divided by its largest "
        "|entry| (printed above each panel). Lines mark the tree's pairs and kingdoms. "
        "'non-identity' = ‖M − (tr M/8)I‖/‖M‖ (0 for an identity-like RSM); 'tree corr.' = "
        "correlation of the off-diagonal item similarities with the depth the items share in "
        "the tree. Rich (λ = 0): the item RSM ṼS̃Ṽᵀ has the hierarchy's blocks (pairs inside "
        "classes inside kingdoms); the features are orthogonal, so the feature RSM ŨS̃Ũᵀ is "
        "diagonal, graded from general to specific features. Lazy: the large layer's RSM is "
        "≈ |λ|I, identity-like and task-agnostic (W1ᵀW1 for λ < 0, W2W2ᵀ for λ > 0), while the "
        "small layer's keeps the structure at a 1/|λ|-small scale (ṼS̃²Ṽᵀ/|λ|, theory §3.4). "
        + "; ".join(parts)
        + f". Max deviation from the closed-form converged state (§3.4): {dev:.1e}."
    )


# ====================================================================== 7. applications


def _continual_task_b(a: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Random task B with det Σ_B of the sign of det Σ_A (first output row flipped if not)."""
    b = random_regression(n, n, seed=seed).sigma_yx.copy()
    if np.sign(np.linalg.det(b)) != np.sign(np.linalg.det(a)):
        b[0] *= -1
    return b


def compute_applications(**overrides) -> pd.DataFrame:
    """Reversal, continual and transfer learning solved exactly by chaining (applications).

    Returns
    -------
    DataFrame
        Long table with columns experiment ('reversal' | 'continual' | 'transfer'), kind
        ('curve' | 'scalar'), quantity, lambda, angle_deg, similarity, t (time since the task
        switch; NaN for scalars), value; plus the set-up columns.
    """
    p = {**APPLICATIONS, **overrides}
    n = p["n"]
    a = random_regression(n, n, seed=p["task_seed"]).sigma_yx
    b = _continual_task_b(a, n, p["task_b_seed"])
    base = np.asarray(p["lambdas"], float)
    lams = np.unique(np.concatenate([-base, base])) + 0.0  # no −0.0
    kw = {"scale": p["scale"], "seed": p["seed"], "n_t": p["n_t"]}
    rev = apps.reversal_learning(
        a, lams, t_pretrain=p["t_pretrain"], t_max=p["t_max"], level=p["level"], **kw
    )
    con = apps.continual_learning(a, b, lams, t_a=p["t_pretrain"], t_b=p["t_max"], **kw)
    theta = np.deg2rad(np.asarray(p["angles_deg"], float))
    tra = apps.transfer_learning(
        a, lams, theta, t_pretrain=p["t_pretrain"], t_max=p["t_max"], level=p["level"], **kw
    )
    frames = []

    def add(exp, kind, qty, values, lam, t=np.nan, angle=np.nan, sim=np.nan):
        frames.append(
            pd.DataFrame(
                {
                    "experiment": exp,
                    "kind": kind,
                    "quantity": qty,
                    "lambda": lam,
                    "angle_deg": angle,
                    "similarity": sim,
                    "t": t,
                    "value": np.ravel(values),
                }
            )
        )

    L = lams.size
    add(
        "reversal",
        "curve",
        "loss_new_task",
        rev.loss,
        np.tile(lams, rev.t.size),
        t=np.repeat(rev.t, L),
    )
    add("reversal", "scalar", "relearn_time", rev.relearn_time, lams)
    add("reversal", "scalar", "pretrain_loss", rev.pretrain_loss, lams)
    add("reversal", "scalar", "fit_level", np.full(L, rev.level_abs), lams)
    add("reversal", "scalar", "saddle_loss", np.full(L, 0.5 * np.sum(a**2)), lams)
    t_loc, sl = con.sequence.local(1)
    add(
        "continual",
        "curve",
        "loss_a",
        con.loss_a[sl],
        np.tile(lams, t_loc.size),
        t=np.repeat(t_loc, L),
    )
    add(
        "continual",
        "curve",
        "loss_b",
        con.loss_b[sl],
        np.tile(lams, t_loc.size),
        t=np.repeat(t_loc, L),
    )
    add("continual", "scalar", "forgetting", con.forgetting, lams)
    add("continual", "scalar", "forgetting_limit", np.full(L, con.forgetting_limit), lams)
    add("continual", "scalar", "time_to_forget", con.time_to_forget, lams)
    A = theta.size
    ang = np.asarray(p["angles_deg"], float)
    for qty, vals in (("time_pretrained", tra.time_pretrained), ("time_scratch", tra.time_scratch)):
        add(
            "transfer",
            "scalar",
            qty,
            vals,
            np.tile(lams, A),
            angle=np.repeat(ang, L),
            sim=np.repeat(tra.similarity, L),
        )
    add("transfer", "scalar", "fit_level", np.full(L, tra.level_abs), lams)
    curve_l = np.isin(lams, np.asarray(p["curve_lambdas"], float))
    for qty, vals in (("loss_pretrained", tra.loss_pretrained), ("loss_scratch", tra.loss_scratch)):
        v = vals[:, :, curve_l]
        nt, _, nl = v.shape
        add(
            "transfer",
            "curve",
            qty,
            v,
            np.tile(lams[curve_l], nt * A),
            t=np.repeat(tra.t, A * nl),
            angle=np.tile(np.repeat(ang, nl), nt),
            sim=np.tile(np.repeat(tra.similarity, nl), nt),
        )
    df = pd.concat(frames, ignore_index=True)
    for k in ("n", "scale", "seed", "task_seed", "task_b_seed", "t_pretrain", "t_max", "level"):
        df[k] = p[k]
    df["curve_lambda"] = df["lambda"].isin(np.asarray(p["curve_lambdas"], float))
    return df


def _scalar(df: pd.DataFrame, exp: str, qty: str) -> pd.DataFrame:
    sub = df[(df["experiment"] == exp) & (df["kind"] == "scalar") & (df["quantity"] == qty)]
    return sub.sort_values(["angle_deg", "lambda"])


def _curve(df: pd.DataFrame, exp: str, qty: str, lam: float, angle: float | None = None):
    sub = df[(df["experiment"] == exp) & (df["kind"] == "curve") & (df["quantity"] == qty)]
    sub = sub[sub["lambda"] == lam]
    if angle is not None:
        sub = sub[sub["angle_deg"] == angle]
    return sub.sort_values("t")


def _never_marker(ax: Axes, x: float, color, label: str | None = None) -> None:
    """A marker pinned to the top of the axes at data x: 'never' (inf) values."""
    ax.plot(
        [x],
        [0.97],
        marker="^",
        ms=7,
        color=color,
        mec="black",
        mew=0.6,
        ls="none",
        transform=ax.get_xaxis_transform(),
        clip_on=False,
        label=label,
        zorder=5,
    )


def draw_applications(df: pd.DataFrame) -> Figure:
    """Six panels: reversal curves and relearn time, continual forgetting, transfer times."""
    curve_lams = np.sort(df.loc[df["curve_lambda"], "lambda"].unique())
    curve_lams = curve_lams[curve_lams >= 0]
    norm, cmap = lambda_norm(df["lambda"].unique()), lambda_cmap()

    def colour(lam: float):
        return "black" if lam == 0 else cmap(norm(lam))

    with figure_style():
        fig = new_figure(12.0, 7.6)
        (ax_a, ax_b, ax_c), (ax_d, ax_e, ax_f) = fig.subplots(2, 3)
        # (a) reversal: loss on −Σ after the flip
        fit = _scalar(df, "reversal", "fit_level")["value"].iloc[0]
        saddle = _scalar(df, "reversal", "saddle_loss")["value"].iloc[0]
        ax_a.axhline(saddle, color="0.55", ls="--", lw=0.8, label=r"saddle $W = 0$")
        ax_a.axhline(fit, color="0.55", ls=":", lw=1.0, label="relearned (1 % level)")
        for lam in curve_lams:
            c = _curve(df, "reversal", "loss_new_task", lam)
            ax_a.plot(
                c["t"][1:],
                c["value"][1:],
                color=colour(lam),
                lw=2.0 if lam == 0 else 1.3,
                label=rf"$\lambda = {lam:g}$" + (" (stuck)" if lam == 0 else ""),
            )
        ax_a.set(
            xscale="log",
            yscale="log",
            ylim=(fit * 1e-4, saddle * 20),
            xlabel=r"time since reversal $t/\tau$",
            ylabel=r"loss on $-\Sigma_{yx}$",
        )
        ax_a.set_title(r"(a) reversal $\Sigma_{yx} \to -\Sigma_{yx}$", loc="left")
        ax_a.legend(frameon=False, fontsize=6.5, loc="lower left", ncols=2)
        # (b) time to relearn vs |λ|
        rt = _scalar(df, "reversal", "relearn_time")
        _vs_abs_lambda(ax_b, rt, color="black", label="time to relearn")
        ax_b.set_ylabel(r"time to relearn $t/\tau$")
        ax_b.set_title("(b) relearning slows as λ → 0", loc="left")
        ax_b.legend(frameon=False, fontsize=6.5, loc="lower left")
        # (c) continual: loss on A while training on B
        lim = _scalar(df, "continual", "forgetting_limit")["value"].iloc[0]
        ax_c.axhline(
            lim, color="0.55", ls="--", lw=0.8, label=r"$\frac{1}{2}\|\Sigma_B-\Sigma_A\|^2$"
        )
        for lam in curve_lams:
            c = _curve(df, "continual", "loss_a", lam)
            ax_c.plot(
                c["t"][1:],
                c["value"][1:],
                color=colour(lam),
                lw=2.6 if lam == 0 else 1.3,
                label=rf"$\lambda = {lam:g}$",
            )
        ax_c.set(
            xscale="log", yscale="log", xlabel=r"time on task B $t/\tau$", ylabel="loss on task A"
        )
        ax_c.set_title("(c) continual learning A → B", loc="left")
        ax_c.legend(frameon=False, fontsize=6.5, loc="lower right")
        # (d) forgetting vs |λ|, and how fast
        fg = _scalar(df, "continual", "forgetting")
        tf = _scalar(df, "continual", "time_to_forget")
        _vs_abs_lambda(ax_d, fg, color="C3", label="forgetting of A", log_y=False)
        ax_d.axhline(
            lim, color="0.55", ls="--", lw=0.8, label=r"$\frac{1}{2}\|\Sigma_B-\Sigma_A\|^2$"
        )
        ax_d.set_ylim(0, 1.3 * max(fg["value"].max(), lim))
        ax_d.set_ylabel(
            r"forgetting: $\mathcal{L}_A$(after B) $-$ $\mathcal{L}_A$(after A)", color="C3"
        )
        ax_d2 = ax_d.twinx()
        _vs_abs_lambda(ax_d2, tf, color="C0", label="time to forget half (right axis)")
        ax_d2.set_ylabel(r"time to forget half $t/\tau$", color="C0")
        ax_d.set_title("(d) how much is forgotten vs how fast", loc="left")
        h1, l1 = ax_d.get_legend_handles_labels()
        h2, l2 = ax_d2.get_legend_handles_labels()
        ax_d.legend(h1 + h2, l1 + l2, frameon=False, fontsize=6.5, loc="lower left")
        # (e) transfer: time to fit B vs similarity
        tp = _scalar(df, "transfer", "time_pretrained")
        ts = _scalar(df, "transfer", "time_scratch")
        for lam in curve_lams:
            col = colour(lam)
            sub = tp[tp["lambda"] == lam]
            fin = sub[np.isfinite(sub["value"]) & (sub["value"] > 0)]
            ax_e.plot(
                fin["similarity"],
                fin["value"],
                "o-",
                color=col,
                ms=5 if lam == 0 else 3,
                lw=2.6 if lam == 0 else 1.3,
                label=rf"$\lambda = {lam:g}$",
            )
            for x in sub.loc[np.isinf(sub["value"]), "similarity"]:
                _never_marker(ax_e, x, col)
            ax_e.axhline(ts[ts["lambda"] == lam]["value"].median(), color=col, ls="--", lw=0.9)
        ax_e.set_yscale("log")
        ax_e.set_xlabel(r"task similarity $\cos\theta$ ($\theta$: rotation of B's output modes)")
        ax_e.set_ylabel(r"time to fit B $t/\tau$")
        ax_e.set_title("(e) transfer: pretrained on A (solid) vs scratch (dashed)", loc="left")
        ax_e.legend(frameon=False, fontsize=6.5, loc="lower left")
        # (f) time to fit B vs |λ| for several similarities
        angles = [a for a in (30.0, 90.0, 150.0, 180.0) if a in set(tp["angle_deg"])]
        for a_deg, col in zip(angles, sns.color_palette("crest", len(angles)), strict=True):
            sub = tp[tp["angle_deg"] == a_deg]
            sim = sub["similarity"].iloc[0]
            _vs_abs_lambda(
                ax_f,
                sub,
                color=col,
                label=rf"pretrained, $\theta = {a_deg:g}°$ ($\cos\theta = {sim:.2f}$)",
            )
        scr = ts[ts["angle_deg"] == ts["angle_deg"].min()]
        _vs_abs_lambda(ax_f, scr, color="black", label="from scratch", ls="--")
        ax_f.set_ylabel(r"time to fit B $t/\tau$")
        ax_f.set_title("(f) transfer vs λ", loc="left")
        ax_f.legend(frameon=False, fontsize=6, loc="lower left")
        n = int(df["n"].iloc[0])
        fig.suptitle(
            f"Applications solved exactly by chaining the closed form ({n}–{n}–{n}, task-aligned "
            f"init, scale {df['scale'].iloc[0]:g}; ▲ = never: the λ = 0 saddle; ★ = λ = 0)",
            fontsize=10,
        )
    return fig


def _vs_abs_lambda(ax, sub, *, color, label=None, ls="-", log_y=True) -> None:
    """Values vs |λ| on a log axis: λ > 0 filled dots over λ < 0 open circles (same colour),
    λ = 0 as ★ a decade left of the smallest |λ| (▲ at the top if it is inf)."""
    lam = sub["lambda"].to_numpy(float)
    val = sub["value"].to_numpy(float)
    nz = np.abs(lam[lam != 0])
    x0 = nz.min() / 10 if nz.size else 1.0
    for side, big in ((lam < 0, True), (lam > 0, False)):
        sel = side & np.isfinite(val)
        if not sel.any():
            continue
        o = np.argsort(np.abs(lam[sel]))
        x, y = np.abs(lam[sel])[o], val[sel][o]
        if big:
            ax.plot(x, y, ls="none", marker="o", ms=6, mfc="white", mec=color, mew=1.0)
        else:
            ax.plot(x, y, ls=ls, color=color, lw=1.1, marker="o", ms=2.8, label=label)
    zero = lam == 0
    if zero.any():
        if np.isinf(val[zero]).any():
            _never_marker(ax, x0, color)
        elif np.isfinite(val[zero]).any():
            ax.plot([x0], val[zero][:1], marker="*", ms=8, color=color, ls="none")
    ax.set_xscale("log")
    if log_y:
        ax.set_yscale("log")
    ax.set_xlabel(rf"$|\lambda|$ (dots λ > 0, circles λ < 0; λ = 0 at {x0:g})")


def caption_applications(df: pd.DataFrame) -> str:
    rt = _scalar(df, "reversal", "relearn_time").set_index("lambda")["value"]
    fg = _scalar(df, "continual", "forgetting")["value"]
    lim = _scalar(df, "continual", "forgetting_limit")["value"].iloc[0]
    tf = _scalar(df, "continual", "time_to_forget").set_index("lambda")["value"]
    tp = _scalar(df, "transfer", "time_pretrained")
    ts = _scalar(df, "transfer", "time_scratch")
    pos = sorted(x for x in rt.index if x > 0)
    sym = max(abs(rt[x] - rt[-x]) / rt[x] for x in pos if -x in rt.index and np.isfinite(rt[x]))
    rt_txt = ", ".join(f"λ = {x:g}: {_fmt(rt[x])}" for x in [0.0, *pos[:: max(1, len(pos) // 5)]])
    lazy = max(pos)
    sim_txt = []
    for lam in (0.0, lazy):
        p_ = tp[(tp["lambda"] == lam) & (tp["angle_deg"] == 30.0)]["value"]
        s_ = ts[(ts["lambda"] == lam) & (ts["angle_deg"] == 30.0)]["value"]
        if len(p_) and len(s_):
            sim_txt.append(f"λ = {lam:g}: {_fmt(p_.iloc[0])} vs {_fmt(s_.iloc[0])} from scratch")
    n = int(df["n"].iloc[0])
    return (
        f"Task sequences solved exactly by chaining the closed form ({n}–{n}–{n} net; task A = "
        f"random regression with s̃ = 3, 2.17, 1.33, 0.5; init aligned with A, product singular "
        f"values {df['scale'].iloc[0]:g}; {df['t_pretrain'].iloc[0]:g} τ on the first task, "
        f"then {df['t_max'].iloc[0]:g} τ on the second; λ is conserved, so the end state is "
        f"factored and the closed form continues). (a, b) Reversal Σyx → −Σyx: the "
        f"task-aligned λ = 0 net decays onto the saddle W = 0 and stays there (loss → "
        f"½‖Σyx‖²); every λ ≠ 0 escapes, and the time to reach 1 % of ½‖Σyx‖² grows like "
        f"ln(1/|λ|) as λ → 0 ({rt_txt}; λ ↔ −λ agree to {sym:.0e}). (c, d) Continual A → B "
        f"(random task B, sign of det matched to A's so that λ = 0 has no saddle): the "
        f"forgetting of A is {fg.min():.4g}–{fg.max():.4g} for every λ, i.e. "
        f"½‖Σ_B − Σ_A‖² = {lim:.4g} (B is learned exactly whatever λ): λ changes how fast A is "
        f"forgotten (half of it after {_fmt(tf.get(0.0, np.nan))} τ at λ = 0, "
        f"{_fmt(tf.get(lazy, np.nan))} τ at λ = {lazy:g}), not how much. (e, f) Transfer to "
        f"B(θ) = A with its output singular vectors rotated by θ in pairs (similarity cos θ); "
        f"time to reach 1 % of ½‖Σ_B‖² after pretraining on A (solid) vs from a B-aligned "
        f"init of the same λ and scale (dashed): at θ = 30°, {'; '.join(sim_txt)}. Pretraining "
        f"removes the rich plateau for similar tasks, slows down as B → −A and never fits "
        f"B = −A at λ = 0 (the reversal saddle); lazy nets fit B in ≈ τ/|λ| with or without "
        f"pretraining."
    )


# ============================================================ tables from the pipeline


def sweep_roles(points: Mapping[str, object]) -> dict[str, list[str]]:
    """Which configured sweeps feed which table-driven figure.

    Parameters
    ----------
    points : mapping of sweep name → plan
        A :class:`lrsweep.grid.SweepPlan` (its ``points``) or a dict of columns with at least
        n_in, n_out, width, depth, lambda, scale, status.

    Returns
    -------
    dict
        A "λ × scale grid" has at least 5 λ and 3 scale values.
        ``phase``: the sweep named ``square`` if it has a λ × scale grid, else the first sweep
        with a λ × scale grid that contains a square net (exact solver preferred);
        ``architecture``: every depth-2 sweep with a λ × scale grid (exact solver preferred);
        ``width_depth``: every sweep with more than one λ.
    """
    info = {}
    for name, plan in points.items():
        cols = getattr(plan, "points", plan)
        settings = getattr(plan, "settings", {}) or {}
        ok = np.asarray(cols["status"]) == "ok"
        uniq = {
            k: np.unique(np.asarray(cols[k])[ok])
            for k in ("lambda", "scale", "width", "depth", "n_in", "n_out")
        }
        square = np.any(
            (np.asarray(cols["n_in"]) == np.asarray(cols["width"]))
            & (np.asarray(cols["width"]) == np.asarray(cols["n_out"]))
            & ok
        )
        info[name] = {
            "grid": uniq["lambda"].size >= 5 and uniq["scale"].size >= 3,
            "square": bool(square),
            "depth2": bool(np.any(uniq["depth"] == 2)),
            "exact": settings.get("solver", "exact") in ("exact", "both"),
            "lambdas": uniq["lambda"].size > 1,
        }

    def pick(*conds: str) -> list[str]:
        return [n for n, i in info.items() if all(i[c] for c in conds)]

    if "square" in info and info["square"]["grid"]:
        phase = ["square"]
    else:
        phase = (pick("grid", "square", "exact") or pick("grid", "square") or pick("grid"))[:1]
    return {
        "phase": phase,
        "architecture": pick("grid", "depth2", "exact") or pick("grid", "depth2"),
        "width_depth": pick("lambdas"),
    }


def paper_inputs(target: str, points: Mapping[str, object], root: str = "results") -> dict:
    """Named input paths of a table-driven target: ``<table>_<k>`` → results/<sweep>/<table>.

    ``k`` numbers the sweeps of the target's role (:func:`sweep_roles`); each table carries its
    sweep name in its ``sweep`` column. Empty for computed targets.
    """
    if target not in TABLE_TARGETS:
        return {}
    sweeps = sweep_roles(points)[target]
    return {
        f"{table}_{k}": f"{root}/{sweep}/{table}.parquet"
        for k, sweep in enumerate(sweeps)
        for table in ("phase", "boundary")
    }


def table_inputs(target: str, plans: Mapping[str, object], root: str = "results") -> Callable:
    """A Snakemake input function (wildcards → named paths) for a table-driven target.

    Used as ``input: unpack(table_inputs("phase", PLANS))`` in workflow/rules/paper.smk, so
    that the rule file holds no function definitions.
    """

    def get_paper_tables(wildcards: object = None) -> dict:
        return paper_inputs(target, plans, root)

    get_paper_tables.__name__ = f"get_{target}_tables"
    return get_paper_tables


def table_for(target: str, inputs: Mapping[str, Path | str] | None) -> pd.DataFrame:
    """The tidy table of a table-driven target: its phase rows with the boundary crossings.

    Phase tables of all inputs are concatenated; ``lambda_neg``, ``lambda_pos`` and
    ``threshold`` of the boundary tables are joined on (sweep, solver, n_in, n_out, width,
    depth, scale). For ``phase`` only square nets are kept (if any).
    """
    tables: dict[str, list[pd.DataFrame]] = {t: [] for t in _TABLES}
    for key, path in (inputs or {}).items():
        kind = key.split("_", 1)[0]
        if kind not in tables:
            raise ValueError(f"input `{key}` must be named '<table>_<k>' with table in {_TABLES}")
        p = Path(path)
        if not p.is_file():
            raise ValueError(f"input table `{key}` not found: {p} does not exist; run the sweep")
        tables[kind].append(pd.read_parquet(p))
    if not tables["phase"]:
        return pd.DataFrame(columns=["sweep", *_FACETS, "lambda", "scale"])
    phase = pd.concat(tables["phase"], ignore_index=True)
    keys = ["sweep", *_FACETS, "scale"]
    if tables["boundary"]:
        bnd = pd.concat(tables["boundary"], ignore_index=True)
        cols = [c for c in ("threshold", "lambda_neg", "lambda_pos") if c in bnd.columns]
        phase = phase.merge(bnd[keys + cols], on=keys, how="left")
    if target == "phase":
        sq = (phase["n_in"] == phase["width"]) & (phase["width"] == phase["n_out"])
        if sq.any():
            phase = phase[sq]
    phase = phase.copy()
    phase["architecture"] = [
        _arch_kind(*r) for r in phase[["n_in", "width", "n_out"]].itertuples(index=False)
    ]
    return phase.reset_index(drop=True)


def _arch_kind(n_in: int, width: int, n_out: int) -> str:
    if n_in == width == n_out:
        return "square"
    if n_in > width == n_out:
        return "funnel"
    if n_out > width == n_in:
        return "anti-funnel"
    return "other"


def _threshold(df: pd.DataFrame) -> float:
    if "threshold" in df.columns and df["threshold"].notna().any():
        return float(df["threshold"].dropna().iloc[0])
    return LAZY_THRESHOLD


def _placeholder(text: str, title: str) -> Figure:
    with figure_style():
        fig = new_figure(7.0, 3.0)
        ax = fig.subplots()
        ax.axis("off")
        ax.text(
            0.5,
            0.5,
            textwrap.fill(text, 80),
            ha="center",
            va="center",
            fontsize=9,
            transform=ax.transAxes,
        )
        fig.suptitle(title, fontsize=10)
    return fig


def _sparse_symlog_ticks(ax: Axes, axis: str, values) -> None:
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


def _heatmap_grid(fig, df: pd.DataFrame, metrics, groups, titles, *, metrics_in_rows: bool):
    """Heatmaps of ``<metric>_mean`` over λ × scale for each (metric, group); shared axes.

    ``groups`` is a list of sub-frames (None = missing, with ``titles[k][1]`` as the note);
    one colour bar per metric (right of its row, or under its column). Every panel gets the
    kernel-distance threshold contour and the boundary table's crossings.
    """
    lambdas = np.sort(df["lambda"].unique())
    scales = np.sort(df["scale"].unique())
    xs, ys = AxisScale.for_values(lambdas), AxisScale.for_values(scales)
    thr = _threshold(df)
    shape = (len(metrics), len(groups)) if metrics_in_rows else (len(groups), len(metrics))
    axes = fig.subplots(*shape, squeeze=False, sharex=True, sharey=True)
    xs.apply(axes[0, 0], "x")
    ys.apply(axes[0, 0], "y")
    if xs.kind == "symlog":
        _sparse_symlog_ticks(axes[0, 0], "x", lambdas)
    xe, ye = xs.edges(axes[0, 0], "x", lambdas), ys.edges(axes[0, 0], "y", scales)
    for i, metric in enumerate(metrics):
        style = metric_style(metric)
        col = f"{metric}_mean"
        norm, extend = metric_norm(df[col], style)
        cmap = sns.color_palette(style.cmap, as_cmap=True)
        mesh = None
        line = axes[i] if metrics_in_rows else axes[:, i]
        for j, sub in enumerate(groups):
            ax = line[j]
            if sub is None or sub.empty:
                ax.axis("off")
                ax.text(
                    0.5,
                    0.5,
                    textwrap.fill(titles[j][1], 34),
                    ha="center",
                    va="center",
                    fontsize=7,
                    transform=ax.transAxes,
                )
                continue
            lam_g, sc_g = np.sort(sub["lambda"].unique()), np.sort(sub["scale"].unique())
            xe_g, ye_g = xs.edges(ax, "x", lam_g), ys.edges(ax, "y", sc_g)
            z = _pivot(sub, col, lam_g, sc_g)
            mesh = draw_heatmap(ax, z, xe_g, ye_g, norm=norm, cmap=cmap)
            zc = _pivot(sub, "kernel_distance_mean", lam_g, sc_g)
            draw_threshold_contour(ax, zc, lam_g, sc_g, thr, xs, ys)
            if {"lambda_neg", "lambda_pos"} <= set(sub.columns):
                draw_boundary_markers(
                    ax, sub[["scale", "lambda_neg", "lambda_pos"]].drop_duplicates("scale")
                )
            r, c = (i, j) if metrics_in_rows else (j, i)
            if r == 0:
                ax.set_title(titles[j][0] if metrics_in_rows else _METRIC_TITLES[metric])
            if c == 0:
                ax.set_ylabel(
                    "scale (init singular values)"
                    + ("" if metrics_in_rows else f"\n{titles[j][0]}")
                )
            if r == shape[0] - 1 or (
                metrics_in_rows and (i + 1 < len(metrics)) and groups[j] is None
            ):
                ax.set_xlabel(r"$\lambda$ (relative scale)")
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
            _decade_ticks(cb, norm)
    axes[0, 0].set_xlim(xe[0], xe[-1])
    axes[0, 0].set_ylim(ye[0], ye[-1])
    return axes


def _decade_ticks(cb, norm) -> None:
    """Readable colour-bar ticks for a log norm: 1-2-5 under 3 decades, decades otherwise."""
    if not isinstance(norm, mcolors.LogNorm):
        return
    axis = cb.ax.xaxis if cb.orientation == "horizontal" else cb.ax.yaxis
    axis.set_minor_formatter(mticker.NullFormatter())
    if norm.vmax / norm.vmin < 1e3:
        axis.set_major_locator(mticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        axis.set_major_formatter(mticker.FuncFormatter(lambda v, _: f"{v:g}"))


def _pivot(sub: pd.DataFrame, col: str, lambdas, scales) -> np.ndarray:
    wide = sub.pivot_table(index="scale", columns="lambda", values=col, aggfunc="mean")
    return wide.reindex(index=scales, columns=lambdas).to_numpy(float)


def _boundary_legend(fig: Figure, thr: float) -> None:
    from lrsweep.plots import CONTOUR_STYLE, MARKER_STYLE

    fig.legend(
        handles=[
            Line2D(
                [], [], label=rf"lazy/rich boundary $S(0,t_{{\max}}) = {thr:g}$", **CONTOUR_STYLE
            ),
            Line2D([], [], label="boundary crossings (boundary table)", **MARKER_STYLE),
        ],
        loc="outside lower center",
        ncols=2,
        frameon=False,
        fontsize=7,
    )


def _one_facet(df: pd.DataFrame) -> pd.DataFrame:
    """Depth 2 (or the smallest depth) and one solver (exact preferred)."""
    if df.empty:
        return df
    df = df[df["depth"] == df["depth"].min()]
    solvers = list(df["solver"].unique())
    return df[df["solver"] == ("exact" if "exact" in solvers else solvers[0])]


def draw_phase(df: pd.DataFrame) -> Figure:
    """Phase diagram: S(0, t_max), time to fit and NTK change over λ × scale (heatmaps)."""
    df = _one_facet(df)
    if df.empty:
        return _placeholder(
            "No sweep with a λ × scale grid in the config: add the `square` sweep of "
            "docs/paper.md.",
            "Lazy–rich phase diagram",
        )
    groups = [sub for _, sub in df.groupby(["n_in", "width", "n_out"], sort=True)]
    titles = [(arch_label(*sub[["n_in", "width", "n_out"]].iloc[0]), "") for sub in groups]
    with figure_style():
        fig = new_figure(3.0 * len(_PHASE_METRICS) + 0.6, 2.6 * len(groups) + 1.6)
        _heatmap_grid(fig, df, _PHASE_METRICS, groups, titles, metrics_in_rows=False)
        _boundary_legend(fig, _threshold(df))
        fig.suptitle(_phase_title(df, "Lazy–rich phase diagram"), fontsize=10)
    return fig


def _phase_title(df: pd.DataFrame, head: str) -> str:
    seeds = df["n_seeds"].max() if "n_seeds" in df.columns else np.nan
    solver = ", ".join(sorted(df["solver"].unique()))
    sweeps = ", ".join(sorted(df["sweep"].unique())) if "sweep" in df.columns else ""
    return f"{head} ({solver} solver, mean over {seeds:g} seeds; sweep {sweeps})"


_ARCH_ORDER = ("square", "funnel", "anti-funnel")
_ARCH_HELP = {
    "square": "square (N_i = N_h = N_o): no sweep in config",
    "funnel": "funnel (N_i > N_h = N_o): no sweep in config — add the `funnel` sweep "
    "of docs/paper.md",
    "anti-funnel": "anti-funnel (N_o > N_h = N_i): no sweep in config — add the "
    "`antifunnel` sweep of docs/paper.md",
}


def draw_architecture(df: pd.DataFrame) -> Figure:
    """Square, funnel and anti-funnel phase diagrams side by side, plus S vs λ cuts."""
    df = _one_facet(df)
    if df.empty:
        return _placeholder("No λ × scale sweeps in the config.", "Architecture comparison")
    groups, titles = [], []
    for kind in _ARCH_ORDER:
        sub = df[df["architecture"] == kind]
        if sub.empty:
            groups.append(None)
            titles.append(("", _ARCH_HELP[kind]))
            continue
        # one net per kind: the sweep (and architecture) with the largest λ × scale grid
        sizes = sub.groupby(["sweep", "n_in", "width", "n_out"]).size()
        sweep, *arch = sizes.idxmax()
        first = pd.Series(arch, index=["n_in", "width", "n_out"])
        sub = sub[
            (sub["sweep"] == sweep)
            & (sub[["n_in", "width", "n_out"]] == first.to_numpy()).all(axis=1)
        ]
        groups.append(sub)
        titles.append((arch_label(*first), ""))
    metrics = ("kernel_distance", "time_to_fit_90")
    with figure_style():
        fig = new_figure(3.3 * len(groups) + 1.4, 2.5 * (len(metrics) + 1) + 1.0)
        sub_figs = fig.subfigures(2, 1, height_ratios=[len(metrics), 1.05])
        _heatmap_grid(sub_figs[0], df, metrics, groups, titles, metrics_in_rows=True)
        _architecture_cuts(sub_figs[1], groups, titles, _threshold(df))
        _boundary_legend(fig, _threshold(df))
        fig.suptitle(
            _phase_title(df, "Which sign of λ is lazy depends on the architecture"), fontsize=10
        )
    return fig


def _architecture_cuts(fig, groups, titles, thr: float) -> None:
    """S(0, t_max) vs λ at the smallest and largest scale, one panel per architecture."""
    axes = fig.subplots(1, len(groups), squeeze=False, sharey=True, sharex=True)[0]
    present = [g for g in groups if g is not None]
    all_l = np.concatenate([g["lambda"].to_numpy(float) for g in present]) if present else [0.0]
    xs = AxisScale.for_values(all_l)
    xs.apply(axes[0], "x")
    if xs.kind == "symlog":
        _sparse_symlog_ticks(axes[0], "x", all_l)
    for ax, sub, (title, _msg) in zip(axes, groups, titles, strict=True):
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
        ax.set_xlabel(r"$\lambda$ (relative scale)")
        ax.set_title(f"{title}: cuts at fixed scale", fontsize=8)
        ax.legend(frameon=False, fontsize=6.5)
    axes[0].set_ylabel(r"kernel distance $S(0, t_{\max})$")


def draw_width_depth(df: pd.DataFrame) -> Figure:
    """S(0, t_max) and time to fit vs λ (lines: scale), vs width and vs depth (lines: λ)."""
    if df.empty:
        return _placeholder("No sweeps with several λ in the config.", "Width and depth")
    metrics = (
        ("kernel_distance", r"kernel distance $S(0, t_{\max})$"),
        ("time_to_fit_90", r"time to 90 % fit $t/\tau$"),
    )
    with figure_style():
        fig = new_figure(12.0, 6.4)
        axes = fig.subplots(2, 3, squeeze=False)
        lam_df = _one_facet(df[df["sweep"] == _widest(df, "scale")])
        width_df = df[df["sweep"] == _widest(df, "width")] if _varies(df, "width") else None
        depth_df = df[df["sweep"] == _widest(df, "depth")] if _varies(df, "depth") else None
        for i, (m, label) in enumerate(metrics):
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


def _varies(df: pd.DataFrame, axis: str) -> bool:
    return bool((df.groupby("sweep")[axis].nunique() > 1).any())


def _widest(df: pd.DataFrame, axis: str) -> str:
    return str(df.groupby("sweep")[axis].nunique().idxmax())


def _hold(sub: pd.DataFrame, fixed: Sequence[str]) -> tuple[pd.DataFrame, dict]:
    """Rows at one representative value of each ``fixed`` axis: square nets first, then the
    middle value (geometric middle for the scale)."""
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
            pick = vals[np.argmin(np.abs(np.log(vals) - np.log(vals).mean()))]
        elif c == "depth":
            pick = vals[0]
        else:
            pick = vals[len(vals) // 2]
        held[c] = pick
        sub = sub[sub[c] == pick]
    return sub, held


def _lambda_hues(lams: np.ndarray, k: int = 4) -> np.ndarray:
    """Up to ``k`` values of |λ| spread over the grid, 0 included if present."""
    mags = np.unique(np.abs(lams))
    if mags.size <= k:
        return mags
    return mags[np.unique(np.round(np.linspace(0, mags.size - 1, k)).astype(int))]


def _lines(ax, sub, x: str, hue: str, metric: str, *, missing: str = "") -> None:
    """``metric``_mean vs ``x``, one line per ``hue`` value; the other axes held fixed.

    λ hues: a few |λ| values; λ > 0 solid with dots, λ < 0 dashed with open circles (they
    coincide on square nets). Scale hues: up to 6 values spread over the grid.
    """
    if sub is None or sub.empty:
        ax.axis("off")
        ax.text(
            0.5,
            0.5,
            textwrap.fill(missing, 40),
            ha="center",
            va="center",
            fontsize=7.5,
            transform=ax.transAxes,
        )
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
        _sparse_symlog_ticks(ax, "x", sub[x])
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
    ax.set_xlabel(
        {
            "lambda": r"$\lambda$ (relative scale)",
            "width": r"hidden width $N_h$",
            "depth": "depth $L$ (weight layers)",
        }[x]
    )
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


def caption_table_target(target: str, df: pd.DataFrame) -> str:
    if df.empty:
        return f"{target}: no input tables (see docs/paper.md for the sweeps to configure)."
    thr = _threshold(df)
    sweeps = ", ".join(sorted(df["sweep"].unique()))
    arch = ", ".join(
        sorted({arch_label(*r) for r in df[["n_in", "width", "n_out"]].itertuples(index=False)})
    )
    lam = df["lambda"]
    source = (
        f"From the pipeline's aggregated tables of sweep(s) {sweeps} ({arch}; λ from "
        f"{lam.min():g} to {lam.max():g}, scale from {df['scale'].min():g} to "
        f"{df['scale'].max():g}; mean over seeds)."
    )
    contour = (
        f" Dashed contour: lazy/rich boundary S(0, t_max) = {thr:g}; diamonds: the boundary "
        "table's λ crossings."
    )
    if target == "phase":
        return (
            "Kernel distance S(0, t_max), time to 90 % of the loss decrease and NTK change "
            "‖K_T − K_0‖/‖K_0‖ over relative scale λ × absolute scale. "
            + source
            + contour
            + _boundary_text(df)
        )
    if target == "architecture":
        present = [k for k in _ARCH_ORDER if (df["architecture"] == k).any()]
        missing = [k for k in _ARCH_ORDER if k not in present]
        return (
            "Square, funnel (N_i > N_h = N_o) and anti-funnel (N_o > N_h = N_i) phase diagrams "
            "side by side, and S(0, t_max) vs λ at fixed scales. Square nets are symmetric in "
            "λ ↔ −λ; a funnel stays rich for λ → −∞ (its large input layer must rotate onto the "
            "task), an anti-funnel for λ → +∞. "
            + source
            + contour
            + _boundary_text(df)
            + (f" Missing in the config: {', '.join(missing)} (docs/paper.md)." if missing else "")
        )
    return (
        "S(0, t_max) and time to 90 % fit vs λ (lines: scale), vs hidden width (lines: λ; "
        "λ ≠ 0 only where admissible, N_h ≤ N_o for λ > 0, N_h ≤ N_i for λ < 0) and vs depth "
        "(lines: λ, simulation); the other axes are held at the value in each legend. " + source
    )


def _boundary_text(df: pd.DataFrame) -> str:
    """Where each architecture turns lazy at the smallest scale (boundary table crossings)."""
    if not {"lambda_neg", "lambda_pos"} <= set(df.columns):
        return ""
    parts = []
    for _, sub in _one_facet(df).groupby(["n_in", "width", "n_out"]):
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
    scale = _one_facet(df)["scale"].min()
    return f" At scale {scale:.2g}: " + "; ".join(parts) + "."


# ============================================================================ 8. summary


def draw_summary(images: Sequence[tuple[str, Path, str]], *, ncols: int = 2) -> Figure:
    """One page: each figure's PNG with its title and wrapped caption underneath."""
    n = len(images)
    nrows = max(1, -(-n // ncols))
    with figure_style():
        fig = Figure(figsize=(8.5 * ncols, 7.2 * nrows), layout="none")
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        FigureCanvasAgg(fig)
        grid = fig.add_gridspec(
            nrows,
            ncols,
            hspace=0.05,
            wspace=0.04,
            left=0.01,
            right=0.99,
            top=1 - 0.9 / (7.2 * nrows),
            bottom=0.005,
        )
        for k, (name, path, caption) in enumerate(images):
            cell = grid[k // ncols, k % ncols].subgridspec(
                2, 1, height_ratios=[4.2, 1.3], hspace=0.0
            )
            ax = fig.add_subplot(cell[0])
            ax.imshow(mimage.imread(str(path)), interpolation="antialiased")
            ax.set_axis_off()
            ax.set_title(f"({k + 1}) {name}", fontsize=13, fontweight="bold", loc="left")
            tx = fig.add_subplot(cell[1])
            tx.set_axis_off()
            tx.text(
                0,
                1,
                textwrap.fill(caption, 150),
                va="top",
                ha="left",
                fontsize=7.2,
                transform=tx.transAxes,
            )
        fig.suptitle(
            "lrsweep: reproduction of “From Lazy to Rich” (Dominé et al., ICLR 2025)",
            fontsize=18,
            y=1 - 0.25 / (7.2 * nrows),
        )
    return fig


# =========================================================================== entry point

_COMPUTED: dict[str, tuple[Callable, Callable, Callable]] = {
    "exact_vs_sim": (compute_exact_vs_sim, draw_exact_vs_sim, caption_exact_vs_sim),
    "singular_values": (compute_singular_values, draw_singular_values, caption_singular_values),
    "hierarchy": (compute_hierarchy, draw_hierarchy, caption_hierarchy),
    "applications": (compute_applications, draw_applications, caption_applications),
}
_DRAW_TABLE = {
    "phase": draw_phase,
    "architecture": draw_architecture,
    "width_depth": draw_width_depth,
}
_TITLES = {
    "exact_vs_sim": "Exact solution vs gradient descent",
    "singular_values": "Singular-value dynamics",
    "phase": "Lazy–rich phase diagram",
    "architecture": "Architecture",
    "hierarchy": "Semantic hierarchy",
    "width_depth": "Width and depth",
    "applications": "Applications",
}


@functools.cache
def code_fingerprint() -> str:
    """Short hash of the source behind the paper targets (shard modules, plots, this one).

    Passed as a rule param, so that Snakemake rebuilds the figures when that code changes.
    """
    return _solve_fingerprint((*SCIENCE_MODULES, "plots", "applications", "paper"))


def _save(name: str, out_dir: Path, df: pd.DataFrame, fig: Figure, caption: str) -> list[Path]:
    table = df.copy()
    table.columns = [str(c) for c in table.columns]
    paths = [atomic_write(out_dir / f"{name}.parquet", lambda p: table.to_parquet(p, index=False))]
    paths += save_figure(fig, out_dir / name)
    paths.append(
        atomic_write(
            out_dir / f"{name}.md",
            lambda p: p.write_text(f"**{_TITLES.get(name, name)}.** {caption}\n"),
        )
    )
    return paths


def make_target(
    name: str,
    out_dir: Path | str,
    inputs: Mapping[str, Path | str] | None = None,
    *,
    setup: Mapping[str, object] | None = None,
) -> list[Path]:
    """Build one paper target: table (Parquet), figure (PNG + PDF) and caption (Markdown).

    Parameters
    ----------
    name : str
        One of :data:`TARGETS`.
    out_dir : Path
        Output directory; files are ``<name>.parquet``, ``<name>.png``, ``<name>.pdf`` and
        ``<name>.md`` (for ``summary``: ``summary.png``, ``summary.pdf``, ``summary.parquet``).
    inputs : dict of str → Path, optional
        Table-driven targets: ``phase_<k>`` / ``boundary_<k>`` → the pipeline's
        ``results/<sweep>/phase.parquet`` / ``boundary.parquet`` (:func:`paper_inputs`).
        ``summary``: target name → figure PNG (its caption is read from the ``.md`` beside it).
        Computed targets take none.
    setup : dict, optional
        Computed targets only: overrides of the set-up (keys of :data:`EXACT_VS_SIM`,
        :data:`SINGULAR_VALUES`, :data:`HIERARCHY` or :data:`APPLICATIONS`), e.g. a coarser
        time grid for a quick look. The values used are written into the table.

    Returns
    -------
    list of Path
        The files written.
    """
    if name not in TARGETS:
        raise ValueError(f"`name` must be one of {list(TARGETS)}, got {name!r}")
    out_dir = Path(out_dir)
    if name in _COMPUTED:
        if inputs:
            raise ValueError(f"target {name!r} is computed here and takes no `inputs`")
        compute, draw, caption = _COMPUTED[name]
        defaults = {
            "exact_vs_sim": EXACT_VS_SIM,
            "singular_values": SINGULAR_VALUES,
            "hierarchy": HIERARCHY,
            "applications": APPLICATIONS,
        }[name]
        unknown = sorted(set(setup or {}) - set(defaults))
        if unknown:
            raise ValueError(
                f"`setup` keys {unknown} are not set-up values of {name!r}; "
                f"allowed: {sorted(defaults)}"
            )
        df = compute(**(setup or {}))
        return _save(name, out_dir, df, draw(df), caption(df))
    if setup:
        raise ValueError(f"`setup` applies to computed targets only, not {name!r}")
    if name in _DRAW_TABLE:
        df = table_for(name, inputs)
        return _save(name, out_dir, df, _DRAW_TABLE[name](df), caption_table_target(name, df))
    items = []
    for key, path in (inputs or {}).items():
        path = Path(path)
        if path.suffix != ".png" or not path.is_file():
            raise ValueError(f"summary input `{key}` must be an existing PNG, got {path}")
        md = path.with_suffix(".md")
        cap = md.read_text().strip() if md.is_file() else ""
        cap = cap.split("** ", 1)[1] if cap.startswith("**") and "** " in cap else cap
        items.append((_TITLES.get(key, key), path, cap))
    if not items:
        raise ValueError("`inputs` of the summary must name at least one figure PNG")
    table = pd.DataFrame(
        {
            "figure": [i[0] for i in items],
            "path": [str(i[1]) for i in items],
            "caption": [i[2] for i in items],
        }
    )
    fig = draw_summary(items)
    paths = [atomic_write(out_dir / "summary.parquet", lambda p: table.to_parquet(p, index=False))]
    return paths + save_figure(fig, out_dir / "summary", dpi=110)
