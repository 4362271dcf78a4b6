"""The summary page: every paper figure with its title and caption on one page."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from pathlib import Path

import matplotlib.image as mimage
import pandas as pd
from matplotlib.figure import Figure

from lrsweep.paths import FigurePaths
from lrsweep.plots import figure_style, new_figure

__all__ = ["compute", "draw"]

HEADLINE = "lrsweep: reproduction of “From Lazy to Rich” (Dominé et al., ICLR 2025)"


def compute(
    inputs: Mapping[str, Path | str] | None, root: Path | str, titles: Mapping[str, str]
) -> pd.DataFrame:
    """The page's table: one row per figure (title, PNG path, caption).

    Parameters
    ----------
    inputs : mapping of target name → PNG
        The figures, in page order; each caption is read from the target's caption file
        (:class:`lrsweep.paths.FigurePaths` under ``root``) without its bold title.
    titles : mapping of target name → title
    """
    rows = []
    for key, path in (inputs or {}).items():
        path = Path(path)
        if path.suffix != ".png" or not path.is_file():
            raise ValueError(f"summary input `{key}` must be an existing PNG, got {path}")
        md = FigurePaths(key, root).caption
        cap = md.read_text().strip() if md.is_file() else ""
        cap = cap.split("** ", 1)[1] if cap.startswith("**") and "** " in cap else cap
        rows.append((titles.get(key, key), str(path), cap))
    if not rows:
        raise ValueError("`inputs` of the summary must name at least one figure PNG")
    return pd.DataFrame(rows, columns=["figure", "path", "caption"])


def draw(df: pd.DataFrame, *, ncols: int = 2) -> Figure:
    """One page: each figure's PNG (read from ``path``) with its title and wrapped caption."""
    nrows = max(1, -(-len(df) // ncols))
    with figure_style():
        fig = new_figure(8.5 * ncols, 7.2 * nrows, layout="none")
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
        for k, row in enumerate(df.itertuples(index=False)):
            cell = grid[k // ncols, k % ncols].subgridspec(
                2, 1, height_ratios=[4.2, 1.3], hspace=0.0
            )
            ax = fig.add_subplot(cell[0])
            ax.imshow(mimage.imread(row.path), interpolation="antialiased")
            ax.set_axis_off()
            ax.set_title(f"({k + 1}) {row.figure}", fontsize=13, fontweight="bold", loc="left")
            tx = fig.add_subplot(cell[1])
            tx.set_axis_off()
            tx.text(
                0,
                1,
                textwrap.fill(row.caption, 150),
                va="top",
                ha="left",
                fontsize=7.2,
                transform=tx.transAxes,
            )
        fig.suptitle(HEADLINE, fontsize=18, y=1 - 0.25 / (7.2 * nrows))
    return fig
