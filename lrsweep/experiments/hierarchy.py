"""Semantic hierarchy: hidden representations (RSMs) at convergence, rich vs lazy.

The 8-item hierarchy of :func:`lrsweep.tasks.semantic_hierarchy` (one-hot items, hierarchical
features) learned by an N_i–N_i–N_o net from a λ-balanced random init; the exact solution at
t_end is checked against the closed-form converged state (theory §3.4).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib import colors as mcolors
from matplotlib.cm import ScalarMappable
from matplotlib.figure import Figure

from lrsweep import applications as apps
from lrsweep.exact import converged, qqt, qqt_blocks
from lrsweep.experiments.base import Setup
from lrsweep.init import lambda_balanced
from lrsweep.plots import figure_style, new_figure
from lrsweep.tasks import HIERARCHY_ITEMS, semantic_hierarchy

__all__ = [
    "FEATURES",
    "HierarchySetup",
    "caption",
    "compute",
    "draw",
    "matrix",
    "rsm_structure",
    "tree_depth",
]

FEATURES = (
    "living",
    "animal/plant",
    "bird/fish",
    "tree/flower",
    "canary/robin",
    "salmon/sunfish",
    "oak/pine",
    "rose/daisy",
)
"""Names of the hierarchy's features (rows of Y of :func:`lrsweep.tasks.semantic_hierarchy`)."""


@dataclass(frozen=True)
class HierarchySetup(Setup):
    """Set-up of ``hierarchy`` (8 items, 8 features, N_h = 8 items)."""

    lambdas: tuple[float, ...] = (-10.0, 0.0, 10.0)
    """Lazy (input side large), rich, lazy (output side large)."""
    scale: float = 1e-3
    seed: int = 0
    """The first seed ≥ this with sign det W2W1(0) = sign det Σyx (no λ = 0 saddle) is used."""
    t_end: float = 60.0


def tree_depth() -> np.ndarray:
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
    n_o, n_i = sigma.shape
    target = np.sign(np.linalg.det(sigma))
    for s in range(seed, seed + 1000):
        W1, W2 = lambda_balanced(0.0, n_i, n_h, n_o, scale, seed=s)
        if np.sign(np.linalg.det(W2 @ W1)) == target:
            return s
    raise ValueError(f"no seed in [{seed}, {seed + 1000}) avoids the λ = 0 saddle")


def compute(setup: HierarchySetup | None = None, **overrides: object) -> pd.DataFrame:
    """RSMs W1ᵀW1 (items × items) and W2W2ᵀ (features × features) at convergence vs λ.

    Set-up: ``setup`` (default :class:`HierarchySetup`) with single values replaced by
    ``overrides``; the values used are in the table.

    Exact solution at t = t_end from a λ-balanced random init of width N_h = N_i (one unit
    per item) on the semantic hierarchy; its deviation from the converged state of theory
    §3.4 is recorded.

    Returns
    -------
    DataFrame
        Columns: lambda, rsm ('W1tW1' | 'W2W2t'), row, col (labels), i, j, value, normalized
        (value / max |value| of that RSM), converged_dev, and the set-up (scale, seed used,
        t_end).
    """
    p = (setup or HierarchySetup()).override(overrides, "hierarchy")
    sigma = semantic_hierarchy().sigma_yx
    n_o, n_i = sigma.shape
    lams = np.asarray(p.lambdas, float)
    seed = _no_saddle_seed(sigma, n_i, p.scale, p.seed)
    W1, W2 = apps.balanced_inits(lams, n_i, n_i, n_o, p.scale, seed=seed)
    q = qqt(W1, W2, sigma, [p.t_end])[0]
    dev = np.abs(q - converged(sigma, lams)).max(axis=(-2, -1))
    a, _, b = qqt_blocks(q, n_i)
    rows = []
    for name, mats, labels in (("W1tW1", a, HIERARCHY_ITEMS), ("W2W2t", b, FEATURES)):
        for k, lam in enumerate(lams):
            m = mats[k]
            peak = np.abs(m).max()
            for i in range(len(labels)):
                for j in range(len(labels)):
                    rows.append(
                        (lam, name, labels[i], labels[j], i, j, m[i, j], m[i, j] / peak, dev[k])
                    )
    df = pd.DataFrame(
        rows,
        columns=["lambda", "rsm", "row", "col", "i", "j", "value", "normalized", "converged_dev"],
    )
    df["scale"], df["seed"], df["t_end"] = p.scale, seed, p.t_end
    return df


def matrix(df: pd.DataFrame, lam: float, rsm: str, column: str = "value") -> np.ndarray:
    """One RSM (n × n) from the hierarchy table."""
    sub = df[(df["lambda"] == lam) & (df["rsm"] == rsm)]
    n = int(sub["i"].max()) + 1
    m = np.full((n, n), np.nan)
    m[sub["i"].to_numpy(), sub["j"].to_numpy()] = sub[column].to_numpy()
    return m


def _sizes(df: pd.DataFrame) -> tuple[int, int]:
    """Number of items (N_i = N_h) and of features (N_o) in the table."""
    return tuple(int(df.loc[df["rsm"] == r, "i"].max()) + 1 for r in ("W1tW1", "W2W2t"))


def caption(df: pd.DataFrame) -> str:
    """Set-up (read from the table) and the measured structure of each RSM."""
    lams = np.sort(df["lambda"].unique())
    n_items, n_features = _sizes(df)
    tree = tree_depth()
    parts = []
    for lam in lams:
        a = rsm_structure(matrix(df, lam, "W1tW1"), tree)
        b = rsm_structure(matrix(df, lam, "W2W2t"))
        parts.append(
            f"λ = {lam:g}: item RSM non-identity {a['non_identity']:.2f} (off-diagonal "
            f"{a['offdiag_ratio']:.3f}, tree correlation {a['tree_corr']:.2f}), feature RSM "
            f"non-identity {b['non_identity']:.2f}"
        )
    dev = df.groupby("lambda")["converged_dev"].first().max()
    return (
        f"Hidden representations of the {n_items}-item semantic hierarchy (one-hot items, "
        f"{n_features} hierarchical features; {n_items}–{n_items}–{n_features} net, λ-balanced "
        f"random init with product singular values {df['scale'].iloc[0]:g}, seed "
        f"{df['seed'].iloc[0]}) at t/τ = {df['t_end'].iloc[0]:g}: "
        "item RSM W1ᵀW1 (top) and feature RSM W2W2ᵀ (bottom), each divided by its largest "
        "|entry| (printed above each panel). Lines mark the tree's pairs and kingdoms. "
        f"'non-identity' = ‖M − (tr M/{n_items})I‖/‖M‖ (0 for an identity-like RSM); 'tree "
        "corr.' = correlation of the off-diagonal item similarities with the depth the items "
        "share in the tree. Rich (λ = 0): the item RSM ṼS̃Ṽᵀ has the hierarchy's blocks (pairs "
        "inside classes inside kingdoms); the features are orthogonal, so the feature RSM "
        "ŨS̃Ũᵀ is diagonal, graded from general to specific features. Lazy: the large layer's "
        "RSM is ≈ |λ|I, identity-like and task-agnostic (W1ᵀW1 for λ < 0, W2W2ᵀ for λ > 0), "
        "while the small layer's keeps the structure at a 1/|λ|-small scale (ṼS̃²Ṽᵀ/|λ|, "
        "theory §3.4). " + "; ".join(parts) + f". Max deviation from the closed-form converged "
        f"state (§3.4): {dev:.1e}."
    )


def draw(df: pd.DataFrame) -> Figure:
    """2 × n_λ heatmaps of the normalised RSMs, item / feature labels, diverging colours."""
    lams = np.sort(df["lambda"].unique())
    tree = tree_depth()
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
                m = matrix(df, lam, rsm, "normalized")
                raw = matrix(df, lam, rsm)
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
                    range(len(ticks)),
                    ticks if r == 1 or is_items else [],
                    rotation=90,
                    fontsize=6.5,
                )
                ax.set_yticks(range(len(ticks)), ticks if c == 0 else [], fontsize=6.5)
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
