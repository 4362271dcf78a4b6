"""Figures of a sweep, drawn from its tables only (no science is computed here).

Every function takes pandas DataFrames with the column names of the pipeline tables
(``runs``, ``trajectories``, ``phase``, ``boundary``; see the README) and returns a
:class:`matplotlib.figure.Figure` built on the Agg canvas, without pyplot, so nothing is
displayed and no global backend is changed. :func:`save_figure` writes PNG and PDF
atomically; :func:`plot_sweep` draws a sweep's standard figure set.

Conventions of the figures:

- λ (relative scale) goes through 0 and spans decades: its axis is ``symlog`` with the
  linear range set to the smallest non-zero |λ| of the grid. The absolute scale is on a
  ``log`` axis when positive and spanning a decade or more.
- Heatmap cells are centred on the grid values, with edges halfway between neighbours in
  the axis' own (log/symlog) coordinates. Cells with no data (inadmissible, skipped or
  failed points; a time to fit never reached) are hatched grey.
- The lazy/rich boundary is the contour ``kernel_distance_mean == threshold`` (default
  ``lrsweep.metrics.LAZY_THRESHOLD``), interpolated linearly in the axes' log/symlog
  coordinates, plus the λ crossings of ``boundary.parquet`` ('lambda_*' columns) as markers.
- Time is in units of τ (``t/τ``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import contourpy
import matplotlib.patheffects as pe
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib import colors as mcolors
from matplotlib import rc_context
from matplotlib import ticker as mticker
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle

from lrsweep import io, results
from lrsweep.io import PHASE_KEYS, atomic_write
from lrsweep.measures import PlotStyle, measures
from lrsweep.metrics import LAZY_THRESHOLD
from lrsweep.paths import SweepPaths

__all__ = [
    "CONTOUR_STYLE",
    "MARKER_STYLE",
    "figure_style",
    "new_figure",
    "ARCH_KEYS",
    "FACET_KEYS",
    "AxisScale",
    "arch_kind",
    "arch_label",
    "boundary_legend",
    "colorbar_log_ticks",
    "draw_boundary_markers",
    "draw_cells",
    "draw_heatmap",
    "draw_threshold_contour",
    "facet_title",
    "facets",
    "lambda_cmap",
    "lambda_norm",
    "metric_norm",
    "metric_style",
    "phase_heatmaps",
    "plot_sweep",
    "require_columns",
    "save_figure",
    "select_runs",
    "trajectory_plot",
]

ARCH_KEYS = ("n_in", "width", "n_out")
"""Columns naming an architecture N_i–N_h–N_o (input side first)."""
_arch = iter(ARCH_KEYS)
FACET_KEYS = tuple(next(_arch) if k in ARCH_KEYS else k for k in io.FACET_KEYS)
"""Columns that split a sweep into separate panels: :data:`lrsweep.io.FACET_KEYS` with the
architecture in :data:`ARCH_KEYS` order, the order panels are sorted in."""
RUN_KEYS = ("sweep", "point_id", *FACET_KEYS, "lambda", "scale", "seed", "status")
TRAJECTORY_COLUMNS = ("sweep", "point_id", "t", "loss", "kernel_distance", "singular_values")
HEATMAP_METRICS = ("kernel_distance", "time_to_fit_90", "final_loss")
"""Metrics drawn by :func:`plot_sweep` (``<metric>_mean`` columns of ``phase``)."""

LOG_DECADES = 10
"""Widest colour range of a log-scaled metric, in decades below its maximum."""
NODATA_LABEL = "no data (inadmissible, skipped or failed)"
PANEL_SIZE = (2.9, 2.5)
"""Width, height in inches of one heatmap panel."""
DPI = 200

_NODATA_STYLE = {"facecolor": "0.92", "edgecolor": "0.7", "hatch": "////", "linewidth": 0}
CONTOUR_STYLE = {
    "color": "black",
    "linestyle": (0, (4, 2)),
    "linewidth": 1.3,
    "path_effects": [pe.Stroke(linewidth=3.2, foreground="white"), pe.Normal()],
}
MARKER_STYLE = {
    "marker": "D",
    "markersize": 4,
    "markerfacecolor": "white",
    "markeredgecolor": "black",
    "linestyle": "none",
}


# --------------------------------------------------------------------------- helpers


def require_columns(df: pd.DataFrame, columns: Sequence[str], name: str) -> None:
    """Raise ValueError naming the table and its missing columns, if any are missing."""
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"`{name}` must be a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(
            f"`{name}` table is missing column(s) {missing}; it needs {list(columns)} "
            f"(got {list(df.columns)}); regenerate it with the pipeline's aggregate step"
        )


@contextlib.contextmanager
def figure_style() -> Iterator[None]:
    """Seaborn 'ticks' style at paper size, PDF fonts embedded as TrueType."""
    rc = {"pdf.fonttype": 42, "figure.constrained_layout.use": True, "axes.titlesize": 9}
    with sns.axes_style("ticks"), sns.plotting_context("paper"), rc_context(rc):
        yield


def new_figure(width: float, height: float, *, layout: str = "constrained") -> Figure:
    """A pyplot-free Figure of ``width`` × ``height`` inches on an Agg canvas."""
    fig = Figure(figsize=(width, height), layout=layout)
    FigureCanvasAgg(fig)
    return fig


def _finite(values) -> np.ndarray:
    v = np.asarray(values, dtype=float).ravel()
    return v[np.isfinite(v)]


@dataclass(frozen=True)
class AxisScale:
    """Axis scale chosen for a set of grid values: 'linear', 'log' or 'symlog'."""

    kind: str
    linthresh: float = 1.0

    @classmethod
    def for_values(cls, values) -> AxisScale:
        """symlog if any value is <= 0 (and some is not 0), log if positive over >= 1 decade."""
        v = _finite(values)
        if v.size == 0:
            return cls("linear")
        nonzero = np.abs(v[v != 0])
        if np.any(v <= 0):
            return cls("symlog", float(nonzero.min())) if nonzero.size else cls("linear")
        return cls("log") if v.max() / v.min() >= 10 else cls("linear")

    def apply(self, ax: Axes, axis: str) -> None:
        """Set this scale on ``ax``'s ``axis`` ('x' or 'y')."""
        setter = ax.set_xscale if axis == "x" else ax.set_yscale
        if self.kind == "symlog":
            setter("symlog", linthresh=self.linthresh, linscale=1.0)
        else:
            setter(self.kind)

    def edges(self, ax: Axes, axis: str, centres: np.ndarray) -> np.ndarray:
        """Cell edges around sorted ``centres``: midpoints in the axis' own coordinates."""
        tr = (ax.xaxis if axis == "x" else ax.yaxis).get_transform()
        tc = tr.transform(np.asarray(centres, float).reshape(-1, 1)).ravel()
        if tc.size == 1:
            half = 0.5 * self._unit(tr, float(centres[0]))
            te = np.array([tc[0] - half, tc[0] + half])
        else:
            mid = 0.5 * (tc[1:] + tc[:-1])
            te = np.concatenate([[2 * tc[0] - mid[0]], mid, [2 * tc[-1] - mid[-1]]])
        return tr.inverted().transform(te.reshape(-1, 1)).ravel()

    def _unit(self, tr, centre: float) -> float:
        """Width of one cell when there is one grid value: a decade, or |value| if linear."""
        if self.kind == "linear":
            return abs(centre) if centre != 0 else 1.0
        ref = self.linthresh if self.kind == "symlog" else abs(centre)
        a, b = tr.transform(np.array([[ref], [10 * ref]])).ravel()
        return float(b - a)

    def to_axis(self, ax: Axes, axis: str, values: np.ndarray) -> np.ndarray:
        tr = (ax.xaxis if axis == "x" else ax.yaxis).get_transform()
        return tr.transform(np.asarray(values, float).reshape(-1, 1)).ravel()

    def from_axis(self, ax: Axes, axis: str, values: np.ndarray) -> np.ndarray:
        tr = (ax.xaxis if axis == "x" else ax.yaxis).get_transform().inverted()
        return tr.transform(np.asarray(values, float).reshape(-1, 1)).ravel()


def metric_style(metric: str) -> PlotStyle:
    """How ``metric`` is drawn: its style in the measure registry (:mod:`lrsweep.measures`),
    else a linear viridis scale labelled with its name; a missing value means no data."""
    style = next((m.style for m in measures() if m.name == metric and m.style), None)
    style = style or PlotStyle(metric.replace("_", " "))
    return style if style.nan_label else replace(style, nan_label=NODATA_LABEL)


def metric_norm(values, style: PlotStyle) -> tuple[mcolors.Normalize, str]:
    """Colour normalisation shared by all panels, and the colour bar's ``extend``."""
    v = _finite(values)
    if style.log:
        pos = v[v > 0]
        if pos.size == 0:
            return mcolors.LogNorm(0.1, 1.0), "neither"
        vmax = float(pos.max())
        vmin = max(float(pos.min()), vmax * 10.0**-style.decades)
        vmin = vmin if vmin < vmax else vmax / 10
        return mcolors.LogNorm(vmin, vmax), "min" if v.min() < vmin else "neither"
    if v.size == 0:
        return mcolors.Normalize(0.0, 1.0), "neither"
    vmin = float(v.min())
    vmax = float(v.max())
    if vmax <= vmin:
        vmax = vmin + (abs(vmin) if vmin != 0 else 1.0)
    return mcolors.Normalize(vmin, vmax), "neither"


def lambda_norm(lambdas) -> mcolors.SymLogNorm:
    """Diverging colour scale for λ, symmetric about λ = 0 and logarithmic beyond the grid's
    smallest non-zero |λ|."""
    lam = _finite(lambdas)
    nonzero = np.abs(lam[lam != 0])
    lim = float(nonzero.max()) if nonzero.size else 1.0
    thresh = float(nonzero.min()) if nonzero.size else 0.1
    thresh = min(thresh, lim / 10) if nonzero.size and thresh == lim else thresh
    return mcolors.SymLogNorm(linthresh=thresh, linscale=1.0, vmin=-lim, vmax=lim, base=10)


def lambda_cmap() -> mcolors.Colormap:
    """Seaborn 'icefire' (dark at λ = 0, so λ ≈ 0 lines stay visible), pale ends cut off."""
    base = sns.color_palette("icefire", as_cmap=True)
    return mcolors.ListedColormap(base(np.linspace(0.1, 0.9, 256)), name="icefire_cut")


def arch_kind(n_in: int, width: int, n_out: int) -> str:
    """'square' (N_i = N_h = N_o), 'funnel' (N_i > N_h = N_o), 'anti-funnel' (N_o > N_h = N_i)
    or 'other'."""
    if n_in == width == n_out:
        return "square"
    if n_in > width == n_out:
        return "funnel"
    if n_out > width == n_in:
        return "anti-funnel"
    return "other"


def arch_label(n_in: int, width: int, n_out: int) -> str:
    """'square 3–3–3' style name of an architecture N_i–N_h–N_o (:func:`arch_kind`)."""
    kind = arch_kind(n_in, width, n_out)
    return f"{'' if kind == 'other' else kind + ' '}{n_in}–{width}–{n_out}"


def facet_title(key: Mapping[str, object], show_solver: bool) -> str:
    """Panel title of one facet: architecture, depth and (when several) solver."""
    text = f"{arch_label(key['n_in'], key['width'], key['n_out'])}, L = {key['depth']}"
    if key.get("lr_ratio", 1.0) != 1.0:
        text += rf", $\eta_{{l+1}}/\eta_l$ = {key['lr_ratio']:g}"
    return f"{text}, {key['solver']}" if show_solver else text


def facets(df: pd.DataFrame, keys: Sequence[str] = FACET_KEYS) -> list[tuple[dict, pd.DataFrame]]:
    """Split ``df`` by ``keys`` (sorted), as (key dict, sub-table) pairs."""
    return [
        (dict(zip(keys, k if isinstance(k, tuple) else (k,), strict=True)), sub)
        for k, sub in df.groupby(list(keys), sort=True)
    ]


def _row_key(key: Mapping[str, object]) -> tuple:
    return key["solver"], key["depth"], key.get("lr_ratio", 1.0)


def _facet_grid(keys: list[dict]) -> tuple[list[tuple], list[tuple]]:
    """Rows = (solver, depth, learning-rate ratio) combinations, columns = architectures."""
    rows = sorted({_row_key(k) for k in keys})
    cols = sorted({tuple(k[a] for a in ARCH_KEYS) for k in keys})
    return rows, cols


def _label_outer(axes: np.ndarray, present: np.ndarray, xlabel: str, ylabel: str) -> None:
    """Axis labels and tick labels only on the outer panels of the present ones."""
    nrows, ncols = present.shape
    for i in range(nrows):
        for j in range(ncols):
            if not present[i, j]:
                continue
            ax = axes[i, j]
            bottom = not present[i + 1 :, j].any()
            left = not present[i, :j].any()
            ax.tick_params(labelbottom=bottom, labelleft=left)
            ax.set_xlabel(xlabel if bottom else "")
            ax.set_ylabel(ylabel if left else "")


# --------------------------------------------------------------------------- heatmaps


#: Axis labels of the phase diagram's horizontal axis (:func:`lrsweep.io.phase_axis`).
AXIS_LABELS = {
    "lambda": r"$\lambda$ (relative scale)",
    "layer_ratio": r"layer ratio $\sigma_{l+1}/\sigma_l$ (× preset)",
}
#: Vertical axis label, by horizontal axis (λ-balanced or Gaussian inits).
SCALE_LABELS = {"lambda": "scale (absolute scale)", "layer_ratio": r"scale ($\sigma$ multiplier)"}


def _grid(df: pd.DataFrame, column: str, lambdas, scales, x: str = "lambda") -> np.ndarray:
    """(n_scale, n_x) values of ``column`` (mean per cell), NaN where a cell is absent."""
    wide = df.pivot_table(index="scale", columns=x, values=column, aggfunc="mean")
    return wide.reindex(index=scales, columns=lambdas).to_numpy(dtype=float)


def draw_heatmap(ax: Axes, z: np.ndarray, x_edges, y_edges, *, norm, cmap) -> object:
    """Cells of ``z`` (n_y, n_x) between the given edges, over a hatched no-data background."""
    ax.add_patch(Rectangle((0, 0), 1, 1, transform=ax.transAxes, zorder=0, **_NODATA_STYLE))
    mesh = ax.pcolormesh(
        x_edges,
        y_edges,
        np.ma.masked_invalid(z),
        norm=norm,
        cmap=cmap,
        shading="flat",
        edgecolors="face",
        linewidth=0.1,
        zorder=1,
    )
    ax.set_xlim(x_edges[0], x_edges[-1])
    ax.set_ylim(y_edges[0], y_edges[-1])
    return mesh


def draw_threshold_contour(
    ax: Axes,
    z: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    level: float,
    xscale: AxisScale,
    yscale: AxisScale,
    *,
    style: Mapping[str, object] | None = None,
) -> int:
    """Contour ``z == level`` over cell centres (x, y), interpolated linearly in the axes'
    (log/symlog) coordinates, drawn as lines (:data:`CONTOUR_STYLE` unless ``style`` is
    given, e.g. with a ``label``). Returns the number of lines drawn."""
    if z.shape[0] < 2 or z.shape[1] < 2 or np.isfinite(z).sum() < 4:
        return 0
    tx, ty = xscale.to_axis(ax, "x", x), yscale.to_axis(ax, "y", y)
    gen = contourpy.contour_generator(x=tx, y=ty, z=np.ma.masked_invalid(z), line_type="Separate")
    lines = gen.lines(level)
    kw = {"zorder": 3, **(CONTOUR_STYLE if style is None else style)}
    for k, line in enumerate(lines):
        ax.plot(
            xscale.from_axis(ax, "x", line[:, 0]),
            yscale.from_axis(ax, "y", line[:, 1]),
            **(kw if k == 0 else {**kw, "label": "_nolegend_"}),
        )
    return len(lines)


def boundary_lambda_columns(boundary: pd.DataFrame) -> list[str]:
    """λ-crossing columns of a boundary table: 'lambda_neg' and 'lambda_pos' of a grid sweep,
    'lambda_star_mean' of a search sweep (its spread is not a λ)."""
    return [c for c in boundary.columns if c.startswith("lambda_") and not c.endswith("_std")]


def draw_boundary_markers(ax: Axes, boundary: pd.DataFrame) -> int:
    """Markers at the λ crossings of a boundary table (one row per scale). Returns count."""
    n = 0
    for col in boundary_lambda_columns(boundary):
        ok = boundary[[col, "scale"]].dropna()
        if len(ok):
            ax.plot(ok[col], ok["scale"], zorder=4, **MARKER_STYLE)
            n += len(ok)
    return n


def phase_heatmaps(
    phase: pd.DataFrame,
    metric: str,
    *,
    threshold: float | None = None,
    boundary: pd.DataFrame | None = None,
    boundary_metric: str = "kernel_distance",
    title: str | None = None,
) -> Figure:
    """Heatmaps of ``<metric>_mean`` over λ × scale, one panel per architecture, depth, solver.

    Columns are architectures N_i–N_h–N_o; rows are (solver, depth) combinations. All panels
    share the grid, the axis scales and one colour bar. The lazy/rich boundary is overlaid as
    the contour ``<boundary_metric>_mean == threshold`` and, if ``boundary`` is given, as
    markers at its λ crossings.

    Parameters
    ----------
    phase : DataFrame
        The phase table: one row per cell (solver, n_in, n_out, width, depth, lambda, scale)
        with a ``<metric>_mean`` column (and ``n_seeds``, used in the title if present).
    metric : str
        Metric name, e.g. 'kernel_distance', 'time_to_fit_90', 'final_loss'.
    threshold : float, optional
        Level of the boundary contour; default ``lrsweep.metrics.LAZY_THRESHOLD``.
    boundary : DataFrame, optional
        The boundary table (solver, n_in, n_out, width, depth, scale, 'lambda_*' columns).
    boundary_metric : str
        Metric whose ``_mean`` is contoured at ``threshold`` (skipped if absent from phase).
    title : str, optional
        Figure title; default names the metric and the number of seeds per cell.

    Returns
    -------
    Figure
        Heatmap axes carry ``xlabel`` 'λ (relative scale)', ``ylabel`` 'scale (absolute
        scale)'; the colour bar is labelled with the metric's name and units.
    """
    column = f"{metric}_mean"
    phase = results.with_ratio_defaults(phase)
    require_columns(phase, [*PHASE_KEYS, column], "phase")
    if boundary is not None:
        boundary = results.with_ratio_defaults(boundary)
        require_columns(boundary, [*FACET_KEYS, "scale"], "boundary")
    threshold = LAZY_THRESHOLD if threshold is None else float(threshold)
    style = metric_style(metric)
    x = io.phase_axis(phase) if len(phase) else "lambda"
    lambdas = np.sort(phase[x].dropna().unique())
    scales = np.sort(phase["scale"].dropna().unique())
    if lambdas.size == 0 or scales.size == 0:
        raise ValueError("`phase` table has no rows with a finite `lambda` and `scale`")
    dupes = phase.duplicated(list(PHASE_KEYS))
    if dupes.any():
        row = phase.loc[dupes, list(PHASE_KEYS)].iloc[0].to_dict()
        raise ValueError(f"`phase` table has several rows for one cell, e.g. {row}")
    xscale, yscale = AxisScale.for_values(lambdas), AxisScale.for_values(scales)
    norm, extend = metric_norm(phase[column], style)
    cmap = sns.color_palette(style.cmap, as_cmap=True)
    groups = facets(phase)
    rows, cols = _facet_grid([k for k, _ in groups])
    show_solver = phase["solver"].nunique() > 1

    with figure_style():
        fig = new_figure(PANEL_SIZE[0] * len(cols) + 1.2, PANEL_SIZE[1] * len(rows) + 0.9)
        axes = fig.subplots(len(rows), len(cols), squeeze=False, sharex=True, sharey=True)
        xscale.apply(axes[0, 0], "x")
        yscale.apply(axes[0, 0], "y")
        present = np.zeros(axes.shape, bool)
        _single_value_ticks(axes[0, 0], lambdas, scales)
        drawn = {"contour": 0, "markers": 0, "nodata": False}
        mesh = None
        for key, sub in groups:
            i = rows.index(_row_key(key))
            j = cols.index(tuple(key[a] for a in ARCH_KEYS))
            ax, present[i, j] = axes[i, j], True
            mesh, z, n_lines = draw_cells(
                ax,
                sub,
                column,
                (lambdas, scales),
                (xscale, yscale),
                norm=norm,
                cmap=cmap,
                contour=(f"{boundary_metric}_mean", threshold),
                x=x,
            )
            drawn["nodata"] |= bool(np.isnan(z).any())
            drawn["contour"] += n_lines
            if not np.isfinite(z).any():
                ax.text(
                    0.5,
                    0.5,
                    "no finite values",
                    transform=ax.transAxes,
                    ha="center",
                    va="center",
                    fontsize=8,
                    zorder=5,
                )
            if boundary is not None and x == "lambda":
                mask = np.logical_and.reduce([boundary[k] == v for k, v in key.items()])
                drawn["markers"] += draw_boundary_markers(ax, boundary[mask])
            ax.set_title(facet_title(key, show_solver))
        for ax in axes[~present]:
            ax.set_visible(False)
        _label_outer(axes, present, AXIS_LABELS[x], SCALE_LABELS[x])
        cbar = fig.colorbar(mesh, ax=axes[present].tolist(), extend=extend, shrink=0.9)
        cbar.set_label(style.label)
        colorbar_log_ticks(cbar, norm)
        boundary_legend(
            fig,
            threshold,
            contour=bool(drawn["contour"]),
            markers=bool(drawn["markers"]),
            nodata=style.nan_label if drawn["nodata"] else None,
            boundary_metric=boundary_metric,
            handlelength=2.5,
        )
        fig.suptitle(title or _heatmap_title(phase, style), fontsize=10)
    return fig


def draw_cells(
    ax: Axes,
    cells: pd.DataFrame,
    column: str,
    grid: tuple[np.ndarray, np.ndarray],
    scales: tuple[AxisScale, AxisScale],
    *,
    norm: mcolors.Normalize,
    cmap: mcolors.Colormap,
    contour: tuple[str, float] | None = None,
    x: str = "lambda",
) -> tuple[object, np.ndarray, int]:
    """Heatmap of ``cells[column]`` on the (λ, scale) ``grid`` of cell centres and, with
    ``contour = (column, level)``, that column's contour at ``level`` (if it has the column).

    Returns the mesh (for a colour bar), the (n_scale, n_λ) values and the contour line count.
    """
    (lam, sc), (xs, ys) = grid, scales
    z = _grid(cells, column, lam, sc, x)
    mesh = draw_heatmap(ax, z, xs.edges(ax, "x", lam), ys.edges(ax, "y", sc), norm=norm, cmap=cmap)
    lines = 0
    if contour is not None and contour[0] in cells.columns:
        zc = _grid(cells, contour[0], lam, sc, x)
        lines = draw_threshold_contour(ax, zc, lam, sc, contour[1], xs, ys)
    return mesh, z, lines


def _single_value_ticks(ax: Axes, lambdas: np.ndarray, scales: np.ndarray) -> None:
    """A grid axis with one value gets one tick, at that value, not a continuous scale."""
    if lambdas.size == 1:
        ax.set_xticks(lambdas, [f"{lambdas[0]:g}"])
    if scales.size == 1:
        ax.set_yticks(scales, [f"{scales[0]:g}"])


def colorbar_log_ticks(cbar, norm: mcolors.Normalize) -> None:
    """Readable ticks on a log colour bar: 1-2-5 numbers under 3 decades, else decades only."""
    if not isinstance(norm, mcolors.LogNorm):
        return
    axis = cbar.ax.xaxis if cbar.orientation == "horizontal" else cbar.ax.yaxis
    axis.set_minor_formatter(mticker.NullFormatter())
    if norm.vmax / norm.vmin < 1e3:
        axis.set_major_locator(mticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        axis.set_major_formatter(mticker.FuncFormatter(lambda v, _: f"{v:g}"))


def _heatmap_title(phase: pd.DataFrame, style: PlotStyle) -> str:
    text = style.label.split(" (")[0].split(" $")[0]
    if "n_seeds" in phase.columns and phase["n_seeds"].notna().any():
        lo, hi = int(phase["n_seeds"].min()), int(phase["n_seeds"].max())
        seeds = f"{hi}" if lo == hi else f"{lo}–{hi}"
        text += f", mean over {seeds} seed{'s' if hi > 1 else ''} per cell"
    return text[0].upper() + text[1:]


def boundary_legend(
    fig: Figure,
    threshold: float,
    *,
    contour: bool = True,
    markers: bool = True,
    nodata: str | None = None,
    boundary_metric: str = "kernel_distance",
    **kwargs,
) -> None:
    """Legend below the panels for the boundary contour, its markers and no-data cells
    (``nodata``: the label of the hatched cells, None for no entry); ``kwargs`` go to
    :meth:`Figure.legend`."""
    name = "S(0, t_{\\max})" if boundary_metric == "kernel_distance" else boundary_metric
    handles = []
    if contour:
        handles.append(
            Line2D([], [], label=f"lazy/rich boundary ${name} = {threshold:g}$", **CONTOUR_STYLE)
        )
    if markers:
        handles.append(Line2D([], [], label="boundary crossings (boundary table)", **MARKER_STYLE))
    if nodata is not None:
        handles.append(Patch(label=nodata, **_NODATA_STYLE))
    if handles:
        fig.legend(
            handles=handles,
            loc="outside lower center",
            ncols=min(len(handles), 3),
            frameon=False,
            fontsize=7,
            **kwargs,
        )


# ------------------------------------------------------------------------ trajectories


def select_runs(
    runs: pd.DataFrame,
    *,
    max_lines: int = 9,
    scale: float | None = None,
    seed: int | None = None,
) -> pd.DataFrame:
    """Runs to draw as trajectories: status 'ok', one scale, one seed, at most
    ``max_lines`` λ values per facet spread evenly over the sorted λ grid.

    ``scale`` defaults to the grid value closest to the geometric middle of the scales,
    ``seed`` to the smallest seed.
    """
    runs = results.with_ratio_defaults(runs)
    require_columns(runs, RUN_KEYS, "runs")
    if max_lines < 1:
        raise ValueError(f"`max_lines` must be >= 1, got {max_lines}")
    ok = runs[runs["status"] == "ok"]
    if ok.empty:
        raise ValueError("`runs` table has no row with status 'ok': nothing to plot")
    scales = np.sort(ok["scale"].unique())
    if scale is None:
        pos = scales[scales > 0]
        mid = np.sqrt(pos.min() * pos.max()) if pos.size else np.median(scales)
        scale = float(scales[np.argmin(np.abs(scales - mid))])
    seed = int(ok["seed"].min()) if seed is None else seed
    ok = ok[np.isclose(ok["scale"], scale) & (ok["seed"] == seed)]
    if ok.empty:
        raise ValueError(f"`runs` has no 'ok' run at scale={scale}, seed={seed}")
    x = io.phase_axis(ok)
    picked = []
    for _, sub in facets(ok):
        lams = np.sort(sub[x].unique())
        idx = np.unique(np.round(np.linspace(0, lams.size - 1, min(max_lines, lams.size))))
        picked.append(sub[sub[x].isin(lams[idx.astype(int)])])
    return pd.concat(picked).sort_values([*FACET_KEYS, x])


def _stack(values: pd.Series) -> np.ndarray:
    """(n_t, m) array from a column of per-time lists, NaN-padded if lengths differ."""
    rows = [np.asarray(v, dtype=float).ravel() for v in values]
    m = max((r.size for r in rows), default=0)
    out = np.full((len(rows), m), np.nan)
    for i, r in enumerate(rows):
        out[i, : r.size] = r
    return out


def _time_scale(t) -> AxisScale:
    v = _finite(t)
    if v.size and v.min() > 0 and v.max() / v.min() >= 100:
        return AxisScale("log")
    return AxisScale("linear")


def _loss_limits(loss) -> tuple[AxisScale, tuple[float, float] | None]:
    """Log axis for a positive loss spanning a decade; bottom at most LOG_DECADES down."""
    v = _finite(loss)
    pos = v[v > 0]
    if pos.size and pos.max() / pos.min() >= 10:
        top = float(pos.max())
        return AxisScale("log"), (max(float(pos.min()), top * 10.0**-LOG_DECADES) / 2, top * 2)
    return AxisScale("linear"), None


_TRAJECTORY_PANELS = (
    ("loss", r"loss $\mathcal{L}$"),
    ("kernel_distance", r"kernel distance $S(0, t)$"),
    ("singular_values", r"singular values of $W_L \cdots W_1$"),
)


def trajectory_plot(
    trajectories: pd.DataFrame,
    runs: pd.DataFrame,
    *,
    facet: bool = True,
    max_lines: int = 9,
    scale: float | None = None,
    seed: int | None = None,
    threshold: float | None = None,
) -> Figure:
    """Loss, kernel distance S(0, t) and singular values of the end-to-end map vs t/τ,
    coloured by λ.

    One row per facet (architecture, depth, solver) if ``facet``, else only the first facet;
    columns are the three quantities. Runs are chosen by :func:`select_runs` (status 'ok',
    one scale, one seed, up to ``max_lines`` λ); the figure title states the scale and seed.
    The λ colour bar is diverging, centred on λ = 0 and symlog beyond the smallest |λ|.
    ``threshold`` (default ``lrsweep.metrics.LAZY_THRESHOLD``) is marked on the S(0, t)
    panels, whose axis is symlog (linear below threshold/10) so lazy and rich runs separate.

    Parameters
    ----------
    trajectories : DataFrame
        Long table: sweep, point_id, t (t/τ), loss, kernel_distance, singular_values (lists).
    runs : DataFrame
        Runs table; joined on (sweep, point_id) for λ, scale, seed and architecture.
    """
    require_columns(trajectories, TRAJECTORY_COLUMNS, "trajectories")
    chosen = select_runs(runs, max_lines=max_lines, scale=scale, seed=seed)
    threshold = LAZY_THRESHOLD if threshold is None else float(threshold)
    data = trajectories.merge(chosen, on=["sweep", "point_id"], suffixes=("", "_run"))
    if data.empty:
        raise ValueError(
            "`trajectories` has no rows for the selected runs (join on sweep, point_id); "
            f"selected point_ids: {chosen['point_id'].tolist()[:10]}"
        )
    groups = facets(data)
    groups = groups if facet else groups[:1]
    x = io.phase_axis(data)
    colour = _line_colour(data, x)
    norm, cmap = lambda_norm(colour), lambda_cmap()
    show_solver = data["solver"].nunique() > 1
    tscale = _time_scale(data["t"])
    lscale, llim = _loss_limits(data["loss"])

    with figure_style():
        fig = new_figure(10.0, 2.5 * len(groups) + 0.6)
        axes = fig.subplots(len(groups), 3, squeeze=False, sharex=True)
        for i, (key, sub) in enumerate(groups):
            for j, (_, label) in enumerate(_TRAJECTORY_PANELS):
                tscale.apply(axes[i, j], "x")
                axes[i, j].set_ylabel(label)
            lscale.apply(axes[i, 0], "y")
            axes[i, 1].set_yscale("symlog", linthresh=threshold / 10, linscale=0.5)
            if llim:
                axes[i, 0].set_ylim(*llim)
            _draw_runs(axes[i], sub, norm, cmap, x)
            axes[i, 1].axhline(
                threshold, color="0.4", linestyle=":", linewidth=1, label=f"threshold {threshold:g}"
            )
            axes[i, 1].legend(loc="best", frameon=False, fontsize=7)
            axes[i, 0].set_title(facet_title(key, show_solver), loc="left", fontweight="bold")
        for ax in axes[-1]:
            ax.set_xlabel(r"time $t/\tau$")
        cbar = fig.colorbar(
            ScalarMappable(norm=norm, cmap=cmap), ax=axes.ravel().tolist(), shrink=0.9, pad=0.02
        )
        cbar.set_label(AXIS_LABELS[x] if x == "lambda" else r"$\log_2$ " + AXIS_LABELS[x])
        sc, sd = chosen["scale"].iloc[0], chosen["seed"].iloc[0]
        fig.suptitle(f"Training trajectories at scale = {sc:.3g}, seed {sd}", fontsize=10)
    return fig


def _line_colour(df: pd.DataFrame, x: str) -> np.ndarray:
    """The value a run's line is coloured by: λ, or log₂ of the layer ratio (Gaussian inits),
    both diverging about the balanced value 0."""
    v = df[x].to_numpy(float)
    return v if x == "lambda" else np.log2(v)


def _draw_runs(row: np.ndarray, sub: pd.DataFrame, norm, cmap, x: str = "lambda") -> None:
    """One line per run (colour = λ or the layer ratio) in the loss, S(0, t) and
    singular-value panels."""
    for (value, _), run in sub.groupby([x, "point_id"], sort=True):
        run = run.sort_values("t")
        color = cmap(norm(_line_colour(pd.DataFrame({x: [value]}), x)[0]))
        t = run["t"].to_numpy(float)
        row[0].plot(t, run["loss"].to_numpy(float), color=color, linewidth=1.2)
        row[1].plot(t, run["kernel_distance"].to_numpy(float), color=color, linewidth=1.2)
        sv = _stack(run["singular_values"])
        if sv.size:
            row[2].plot(t, sv, color=color, linewidth=1.0)


# ---------------------------------------------------------------------------- output


def save_figure(
    fig: Figure, stem: Path | str, *, formats: Sequence[str] = ("png", "pdf"), dpi: int = DPI
) -> list[Path]:
    """Write ``fig`` to ``<stem>.<fmt>`` for each format, atomically.

    Each file is drawn into a dot-prefixed temporary file in the same directory and moved
    into place with :func:`os.replace`, so a partial figure is never seen under the final
    name; the temporary file is removed if drawing fails.
    """
    stem = Path(stem)

    def draw(fmt: str) -> Callable[[Path], None]:
        def write(tmp: Path) -> None:
            with open(tmp, "xb") as fh, figure_style():
                fig.savefig(fh, format=fmt, dpi=dpi)

        return write

    return [atomic_write(stem.with_name(f"{stem.name}.{fmt}"), draw(fmt)) for fmt in formats]


def plot_sweep(
    sweep_dir: Path | str,
    out_dir: Path | str,
    *,
    threshold: float | None = None,
    formats: Sequence[str] = ("png", "pdf"),
    dpi: int = DPI,
) -> list[Path]:
    """Draw a sweep's figure set from its tables and return the written paths.

    Reads ``phase.parquet``, ``runs.parquet``, the curves of the runs drawn from the
    trajectory dataset (:func:`select_runs`) and ``boundary.parquet`` if present from
    ``sweep_dir`` and writes, for each format: ``phase_kernel_distance``,
    ``phase_time_to_fit_90``, ``phase_final_loss`` and ``trajectories`` into ``out_dir``. All
    tables and columns are checked before drawing; a missing one raises ValueError naming it.
    """
    sweep_dir, out_dir = Path(sweep_dir), Path(out_dir)
    phase = results.load_phase(sweep_dir)
    runs = results.load_runs(sweep_dir)
    drawn = select_runs(runs)["point_id"].tolist()
    traj = results.load_trajectories(sweep_dir, point_id=drawn, join=False)
    has_boundary = SweepPaths.of(sweep_dir).boundary.is_file()
    boundary = results.load_boundary(sweep_dir) if has_boundary else None
    threshold = LAZY_THRESHOLD if threshold is None else float(threshold)
    figures = {
        f"phase_{m}": (phase_heatmaps, (phase, m), {"boundary": boundary}) for m in HEATMAP_METRICS
    }
    figures["trajectories"] = (trajectory_plot, (traj, runs), {})
    paths = []
    for name, (draw, args, kwargs) in figures.items():
        fig = draw(*args, threshold=threshold, **kwargs)
        paths += save_figure(fig, out_dir / name, formats=formats, dpi=dpi)
    return paths
