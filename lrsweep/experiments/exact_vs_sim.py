"""Exact solution vs gradient descent (paper Fig. 2 set-up): every quantity of the closed form
over simulated gradient descent on a small random regression task.

Time is in units of τ = 1/η: gradient-descent step k at learning rate η is t/τ = kη.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from lrsweep.exact import qqt, qqt_blocks
from lrsweep.experiments.base import T_LABEL, GradientDescentSetup
from lrsweep.experiments.panels import gd_exact_legend
from lrsweep.metrics import loss as excess_loss
from lrsweep.metrics import ntk_grams_from_qqt
from lrsweep.plots import figure_style, new_figure

__all__ = ["ExactVsSimSetup", "caption", "compute", "deviations", "draw"]


@dataclass(frozen=True)
class ExactVsSimSetup(GradientDescentSetup):
    """Set-up of ``exact_vs_sim``: the paper's 3–3–3 random regression with P = 10, random
    (not task-aligned) init directions; seed 0 has sign det W2W1(0) = sign det Σyx (no λ = 0
    saddle)."""

    lambdas: tuple[float, ...] = (-10.0, -2.0, 0.0, 2.0, 10.0)
    scale: float = 0.05
    t_max: float = 10.0
    n_t: int = 201


#: Written into the table (the rest is in its lambda and t columns).
_TABLE_SETUP = ("n", "n_samples", "scale", "seed", "task_seed", "lr")

#: NTK entries K[(a,n),(b,m)] shown: (output a, sample n), (output b, sample m), 0-based.
NTK_PAIRS = (
    ((0, 0), (0, 0)),
    ((0, 0), (0, 1)),
    ((0, 1), (0, 1)),
    ((0, 0), (1, 0)),
    ((1, 0), (1, 1)),
    ((2, 2), (2, 2)),
)


def _ntk_pairs(n_out: int, n_samples: int) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """The :data:`NTK_PAIRS` that exist for ``n_out`` outputs and ``n_samples`` samples."""
    return [
        pair
        for pair in NTK_PAIRS
        if max(pair[0][0], pair[1][0]) < n_out and max(pair[0][1], pair[1][1]) < n_samples
    ]


def _ntk_entries(q: np.ndarray, n_in: int, X: np.ndarray, pairs) -> np.ndarray:
    """Entries K[(a,n),(b,m)] of the NTK K = Σ_l O_l ⊗ XᵀC_lX for ``pairs``, shape (..., k).

    The grams O_l, C_l are :func:`lrsweep.metrics.ntk_grams_from_qqt` of QQᵀ.
    """
    out, inn = ntk_grams_from_qqt(q, n_in)
    g = X.T @ inn @ X  # (..., L, P, P)
    entries = [out[..., :, a, b] * g[..., :, n, m] for (a, n), (b, m) in pairs]
    return np.stack([e[..., 1] + e[..., 0] for e in entries], axis=-1)


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


def compute(setup: ExactVsSimSetup | None = None, **overrides: object) -> pd.DataFrame:
    """Exact solution and gradient descent side by side on a small random regression task.

    Set-up: ``setup`` (default :class:`ExactVsSimSetup`) with single values replaced by
    ``overrides``; the values used are in the table.

    Quantities over t/τ for each λ: network function W2W1 (all entries), loss, W1ᵀW1 and
    W2W2ᵀ (upper triangles) and the NTK entries :data:`NTK_PAIRS` (theory §4; those that
    exist for N_o = n outputs and P samples).

    Returns
    -------
    DataFrame
        Columns: t, lambda, entry, value, quantity, source ('exact' | 'gd') and the set-up
        (n, n_samples, scale, seed, task_seed, lr).
    """
    p = (setup or ExactVsSimSetup()).override(overrides, "exact_vs_sim")
    n = p.n
    task, lams, t, W1, W2, w1s, w2s = p.run()
    q_gd = np.concatenate([np.swapaxes(w1s, -1, -2), w2s], axis=-2)
    sources = {
        "exact": qqt(W1, W2, task.sigma_yx, t),
        "gd": q_gd @ np.swapaxes(q_gd, -1, -2),
    }
    iu = np.triu_indices(n)
    ij = [f"{i + 1}{j + 1}" for i in range(n) for j in range(n)]
    tri = [f"{i + 1}{j + 1}" for i, j in zip(*iu, strict=True)]
    pairs = _ntk_pairs(n, p.n_samples)
    ntk = [f"({a + 1},{c + 1}),({b + 1},{d + 1})" for (a, c), (b, d) in pairs]
    frames = []
    cols = {k: getattr(p, k) for k in _TABLE_SETUP}
    for source, q in sources.items():
        a, f, b = qqt_blocks(q, n)
        parts = {
            "network_function": (f.reshape(*f.shape[:2], -1), ij),
            "loss": (excess_loss(f, task.sigma_yx)[..., None], ["loss"]),
            "W1tW1": (a[..., iu[0], iu[1]], tri),
            "W2W2t": (b[..., iu[0], iu[1]], tri),
            "ntk": (_ntk_entries(q, n, task.X, pairs), ntk),
        }
        for name, (vals, labels) in parts.items():
            frames.append(_long(vals, t, lams, labels, quantity=name, source=source, **cols))
    return pd.concat(frames, ignore_index=True)


def deviations(df: pd.DataFrame, keys: Sequence[str] = ("quantity",)) -> pd.DataFrame:
    """Max |gd − exact| per group of ``keys``, absolute (dev) and relative to max |exact|."""
    wide = df.pivot_table(
        index=[*keys, "entry", "t"], columns="source", values="value", aggfunc="first"
    ).reset_index()
    wide["dev"] = (wide["gd"] - wide["exact"]).abs()
    wide["size"] = wide["exact"].abs()
    g = wide.groupby(list(keys))
    out = g[["dev", "size"]].max()
    out["rel"] = out["dev"] / out["size"]
    return out.reset_index()


def task_singular_values(df: pd.DataFrame) -> np.ndarray:
    """s̃ of the task the table was computed on (its n, n_samples and task_seed columns)."""
    setup = ExactVsSimSetup(**{c: int(df[c].iloc[0]) for c in ("n", "n_samples", "task_seed")})
    return setup.task().svd[1]


_ROWS = (
    ("network_function", r"network function $W_2W_1$"),
    ("loss", r"loss $\mathcal{L}$"),
    ("W1tW1", r"$W_1^\top W_1$"),
    ("W2W2t", r"$W_2W_2^\top$"),
    ("ntk", r"NTK entries $K_{(a,n),(b,m)}$"),
)
#: Gradient descent (wide, light) under the exact solution (thin, dashed).
_SOURCE_STYLES = (
    ("gd", {"lw": 2.6, "alpha": 0.35, "ls": "-"}),
    ("exact", {"lw": 1.0, "alpha": 1.0, "ls": "--"}),
)


def caption(df: pd.DataFrame) -> str:
    """Set-up (read from the table and its task) and the measured deviations."""
    dev = deviations(df)
    n, p = int(df["n"].iloc[0]), int(df["n_samples"].iloc[0])
    lams = ", ".join(f"{x:g}" for x in np.sort(df["lambda"].unique()))
    s = ", ".join(f"{x:.3g}" for x in task_singular_values(df))
    per = "; ".join(f"{r.quantity} {r.dev:.1e} ({r.rel:.1e} rel.)" for r in dev.itertuples())
    return (
        f"Exact solution (dashed) over simulated gradient descent (solid, η = "
        f"{df['lr'].iloc[0]:g}, t/τ = kη) for a {n}–{n}–{n} network on a random regression task "
        f"(P = {p}, whitened inputs, s̃ = {s}), λ ∈ {{{lams}}}, λ-balanced init with "
        f"random directions and product singular values {df['scale'].iloc[0]:g} (seed "
        f"{df['seed'].iloc[0]}). Rows: entries of W2W1, the loss, upper triangles of W1ᵀW1 and "
        f"W2W2ᵀ, and {_count(df.loc[df['quantity'] == 'ntk', 'entry'].nunique())} NTK entries "
        f"K = I⊗XᵀW1ᵀW1X + W2W2ᵀ⊗XᵀX. λ ≈ 0 learns in sigmoidal "
        f"stages with large representation changes; large |λ| learns exponentially while the "
        f"large layer's Gram (W2W2ᵀ for λ > 0, W1ᵀW1 for λ < 0) stays ≈ |λ|I. Max |GD − exact| "
        f"over time, λ and entries: {per}. The deviation is the O(η) discretisation error of "
        f"gradient descent."
    )


def _count(k: int) -> str:
    """A small count in words."""
    words = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
    return words[k] if k < len(words) else str(k)


def draw(df: pd.DataFrame) -> Figure:
    """Grid (quantity × λ) of gradient descent (solid, light) under the exact solution (dashed)."""
    lams = np.sort(df["lambda"].unique())
    dev = deviations(df)
    lr = float(df["lr"].iloc[0])
    palette = sns.color_palette("tab10", 10)
    n = df["n"].iloc[0]
    with figure_style():
        fig = new_figure(2.3 * lams.size + 0.6, 1.75 * len(_ROWS) + 0.9)
        axes = fig.subplots(len(_ROWS), lams.size, sharex=True, sharey="row", squeeze=False)
        for i, (qty, label) in enumerate(_ROWS):
            sub = df[df["quantity"] == qty]
            entries = list(dict.fromkeys(sub["entry"]))
            for j, lam in enumerate(lams):
                ax = axes[i, j]
                cell = sub[sub["lambda"] == lam]
                for k, e in enumerate(entries):
                    for src, style in _SOURCE_STYLES:
                        line = cell[(cell["entry"] == e) & (cell["source"] == src)]
                        ax.plot(line["t"], line["value"], color=palette[k % 10], **style)
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
            ax.set_xlabel(T_LABEL)
        gd_exact_legend(fig, lr, gd_width=_SOURCE_STYLES[0][1]["lw"], exact="exact solution")
        fig.suptitle(
            f"Exact solution vs gradient descent, {n}–{n}–{n} net, random regression "
            f"(P = {df['n_samples'].iloc[0]}); max |GD − exact| / max |exact| = "
            f"{dev['rel'].max():.1e}",
            fontsize=10,
        )
    return fig
