"""The one registry of paper targets, and :func:`make_target`, which builds any of them.

Every figure is a :class:`Target`: its name, title, where its data comes from (computed from a
set-up, or the sweep tables it selects), its compute / draw / caption functions and its
report caption and label. :func:`make_target`, the workflow's rules
(``workflow/rules/paper.smk``: one rule per target, its inputs from :func:`paper_inputs`, its
outputs from :class:`lrsweep.paths.FigurePaths`), the ``summary`` page and the report all
read :data:`FIGURES`; adding a figure is one module and one entry here.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from lrsweep.experiments import (
    applications,
    architecture,
    boundary,
    exact_vs_sim,
    hierarchy,
    phase,
    singular_values,
    standard_inits,
    summary,
    tables,
    width_depth,
)
from lrsweep.experiments.base import Setup
from lrsweep.io import atomic_write
from lrsweep.paths import SUMMARY, FigurePaths, SweepPaths
from lrsweep.plots import DPI, save_figure
from lrsweep.solve import SCIENCE_MODULES
from lrsweep.solve import code_fingerprint as _fingerprint


@dataclass(frozen=True)
class Target:
    """One paper target: how its table is made, drawn and described.

    A computed figure has a ``setup`` class: ``compute(setup)`` returns its table. A figure
    drawn from the sweep tables has a ``select`` function choosing the configured sweeps it
    reads: ``compute(inputs)`` turns their tables into its table. The summary page has
    neither: ``compute(inputs, root, titles)`` lists the figures. ``draw`` and ``caption``
    take the table only.
    """

    name: str
    title: str
    """Title of the figure (bold in its caption file, the summary page and the report)."""
    compute: Callable[..., pd.DataFrame]
    draw: Callable[[pd.DataFrame], Figure]
    label: str
    """Report label, after the figure's number."""
    description: str
    """Report caption (reStructuredText); the measured numbers are in the caption file."""
    caption: Callable[[pd.DataFrame], str] | None = None
    """The caption file's text, from the table (None: no caption file)."""
    setup: type[Setup] | None = None
    select: Callable[[Mapping[str, tables.SweepInfo]], list[str]] | None = None
    dpi: int = DPI

    @property
    def computed(self) -> bool:
        """True if computed from a set-up (else drawn from sweep tables or figures)."""
        return self.setup is not None

    @property
    def report_caption(self) -> str:
        """Caption of the figure in ``snakemake --report`` (reStructuredText)."""
        text = f"**{self.title}** (target ``{self.name}``). {self.description}"
        if self.caption is not None:
            name = FigurePaths(self.name).caption.name
            text += f" The set-up and the numbers measured on the data are in ``{name}``."
        return text


FIGURES: dict[str, Target] = {
    t.name: t
    for t in (
        Target(
            "exact_vs_sim",
            "Exact solution vs gradient descent",
            exact_vs_sim.compute,
            exact_vs_sim.draw,
            caption=exact_vs_sim.caption,
            label="exact vs simulation",
            description="Entries of the network function W2W1, the loss, W1ᵀW1, W2W2ᵀ and NTK "
            "entries over t/τ, one column per λ: the closed form (``lrsweep.exact.qqt``, "
            "dashed) over simulated gradient descent (solid, step k at t/τ = kη) on a small "
            "random regression task. The maximum deviation per quantity is printed beside "
            "each row; it is the O(η) discretisation error of gradient descent.",
            setup=exact_vs_sim.ExactVsSimSetup,
        ),
        Target(
            "singular_values",
            "Singular-value dynamics",
            singular_values.compute,
            singular_values.draw,
            caption=singular_values.caption,
            label="singular values",
            description="Singular values a_k(t) of W2W1 for a task-aligned λ-balanced init. "
            "Dashed: closed form of τ da/dt = √(λ²+4a²)(s̃ − a); solid: gradient descent. "
            "λ ≈ 0 is sigmoidal (a plateau, then a fast rise, one mode after another); large "
            "\\|λ\\| is exponential (fastest at t = 0, straight lines of 1 − a/s̃ on a log axis).",
            setup=singular_values.SingularValuesSetup,
        ),
        Target(
            "phase",
            "Lazy–rich phase diagram",
            phase.compute,
            phase.draw,
            caption=phase.caption,
            label="phase diagram",
            description="Kernel distance S(0, t_max), time to 90 % of the loss decrease and "
            "NTK change over relative scale λ (symlog) × absolute scale (log) for square "
            "networks, from the aggregated tables of the configured sweep (``square`` if "
            "defined). Dashed contour: the lazy/rich boundary at the sweep's regime "
            "threshold; diamonds: the λ crossings of ``boundary.parquet``.",
            select=phase.select,
        ),
        Target(
            "architecture",
            "Architecture",
            architecture.compute,
            architecture.draw,
            caption=architecture.caption,
            label="architecture",
            description="The same diagrams for square, funnel (N_i > N_h = N_o) and "
            "anti-funnel (N_o > N_h = N_i) networks side by side, plus S(0, t_max) vs λ at "
            "fixed scales: square nets are symmetric in λ ↔ −λ; a funnel stays rich for "
            "λ → −∞ and an anti-funnel for λ → +∞ (the large layer must rotate onto the task). "
            "Architectures missing from the config are named in the empty panels.",
            select=architecture.select,
        ),
        Target(
            "hierarchy",
            "Semantic hierarchy",
            hierarchy.compute,
            hierarchy.draw,
            caption=hierarchy.caption,
            label="semantic hierarchy",
            description="RSMs W1ᵀW1 (items) and W2W2ᵀ (features) of a network trained to "
            "convergence (exact solution) on the 8-item hierarchy from a λ-balanced random "
            "init, for a lazy λ < 0, the rich λ = 0 and a lazy λ > 0; each panel is divided by "
            "its largest entry. Rich: the item RSM has the tree's blocks. Lazy: the large "
            "layer's RSM is ≈ \\|λ\\|I (identity-like); the small layer's keeps the structure "
            "at a 1/\\|λ\\| scale.",
            setup=hierarchy.HierarchySetup,
        ),
        Target(
            "width_depth",
            "Width and depth",
            width_depth.compute,
            width_depth.draw,
            caption=width_depth.caption,
            label="width and depth",
            description="Kernel distance S(0, t_max) and time to 90 % fit vs λ (lines: "
            "absolute scale), vs hidden width (lines: λ, λ ≠ 0 only where admissible) and vs "
            "depth (lines: λ, simulated gradient descent), so that the four sweep axes appear "
            "in one figure. Axes not varied in a panel are held at the value named in its "
            "legend.",
            select=width_depth.select,
        ),
        Target(
            "boundary",
            "Where the lazy–rich boundary lies",
            boundary.compute,
            boundary.draw,
            caption=boundary.caption,
            label="boundary",
            description="The boundary λ* where S(0, t_max) crosses the regime threshold, found "
            "on each side of λ = 0 by root finding along λ (``lrsweep.search``, the solver of "
            "the search sweeps) rather than read off a grid, against the layer size (square "
            "nets, and rectangular nets whose large layer is square), the depth (gradient "
            "flow), the task's scale and the horizon t_max.",
            setup=boundary.BoundarySetup,
        ),
        Target(
            "standard_inits",
            "Where standard initialisations fall",
            standard_inits.compute,
            standard_inits.draw,
            caption=standard_inits.caption,
            label="standard inits",
            description="Gaussian two-layer inits (LeCun, Xavier, He × a multiplier, with a "
            "ratio between the layers' scales): kernel distance S(0, t_max) of simulated "
            "gradient flow over multiplier × layer ratio (Xavier coordinates) for a funnel, a "
            "square and an anti-funnel net, with the regime contour, the contour where the "
            "expected imbalance λ̄ changes sign and the presets marked at their own simulated S. "
            "The ratio acts through λ_eff: large multipliers turn lazy at the ratio ends the "
            "architecture allows. Bottom: the λ_eff-balanced prediction (theory §6.2) against "
            "the outer width at hidden width 2, errors with fitted power laws next to S itself.",
            setup=standard_inits.StandardInitsSetup,
        ),
        Target(
            "applications",
            "Applications",
            applications.compute,
            applications.draw,
            caption=applications.caption,
            label="applications",
            description="Task sequences solved by chaining the closed form, task-aligned "
            "inits. Reversal (Σyx → −Σyx): λ = 0 stays on the saddle W = 0 forever, the time "
            "to relearn grows like ln(1/\\|λ\\|) as λ → 0. Continual learning (A → B): the "
            "forgetting of A is the same for every λ, only its speed depends on λ. Transfer "
            "(A → A with its output singular vectors rotated by θ): time to fit B vs λ and vs "
            "similarity cos θ, pretrained vs from scratch.",
            setup=applications.ApplicationsSetup,
        ),
    )
}
"""The paper's figures, in paper order (their report labels are numbered in this order)."""

TARGETS: dict[str, Target] = {
    **FIGURES,
    SUMMARY: Target(
        SUMMARY,
        "Summary",
        summary.compute,
        summary.draw,
        label="summary",
        description="Every paper figure with its caption on one page (the numbers in the "
        "captions are measured on the figure's data).",
        dpi=110,
    ),
}
"""Every target :func:`make_target` builds: :data:`FIGURES` and the summary page."""


def report_label(name: str) -> dict[str, str]:
    """Labels of a target's figure in ``snakemake --report``: number and name."""
    return {"figure": f"{list(TARGETS).index(name) + 1} {TARGETS[name].label}"}


def sweep_roles(points: Mapping[str, object]) -> dict[str, list[str]]:
    """The configured sweeps each table-driven figure reads (its ``select``).

    Parameters
    ----------
    points : mapping of sweep name → plan
        :class:`lrsweep.grid.SweepPlan` objects, or dicts of columns (see
        :func:`lrsweep.experiments.tables.sweep_info`).
    """
    info = tables.sweep_info(points)
    return {name: t.select(info) for name, t in FIGURES.items() if not t.computed}


def paper_inputs(
    name: str, points: Mapping[str, object], root: Path | str = "results"
) -> dict[str, str]:
    """Named input paths of target ``name`` (for a Snakemake rule and :func:`make_target`).

    Table-driven figures: ``<table>_<k>`` → ``<root>/<sweep>/<table>.parquet`` for the k-th
    sweep they select (phase and boundary tables); computed figures: none; the summary: each
    figure's name → its PNG.
    """
    if name == SUMMARY:
        return {n: str(FigurePaths(n, root).png) for n in FIGURES}
    target = _target(name)
    if target.computed:
        return {}
    sweeps = target.select(tables.sweep_info(points))
    return {
        f"{table}_{k}": str(SweepPaths(sweep, root).table(table))
        for k, sweep in enumerate(sweeps)
        for table in tables.INPUT_TABLES
    }


def _target(name: str) -> Target:
    if name not in TARGETS:
        raise ValueError(f"`name` must be one of {list(TARGETS)}, got {name!r}")
    return TARGETS[name]


@functools.cache
def code_fingerprint() -> str:
    """Short hash of the source behind the paper targets (the science, plots, this package).

    Passed as a rule param, so that Snakemake rebuilds the figures when that code changes.
    """
    here = Path(__file__).parent
    package = tuple(f"{here.name}/{p.stem}" for p in sorted(here.glob("*.py")))
    return _fingerprint((*SCIENCE_MODULES, "plots", "applications", "paths", *package))


def make_target(
    name: str,
    root: Path | str = "results",
    inputs: Mapping[str, Path | str] | None = None,
    *,
    setup: Mapping[str, object] | Setup | None = None,
) -> list[Path]:
    """Build one paper target: table (Parquet), figure (PNG + PDF) and caption (Markdown).

    Parameters
    ----------
    name : str
        One of :data:`TARGETS`.
    root : Path
        Results directory; the files are those of ``FigurePaths(name, root)``:
        ``<root>/paper/<name>/<name>.{parquet,png,pdf,md}`` (the summary page:
        ``<root>/summary.{parquet,png,pdf}``).
    inputs : dict of str → Path, optional
        Table-driven figures: ``phase_<k>`` / ``boundary_<k>`` → a sweep's ``phase.parquet``
        / ``boundary.parquet`` (:func:`paper_inputs`). ``summary``: target name → figure PNG
        (its caption is read from the target's caption file under ``root``). Computed
        figures take none.
    setup : dict or Setup, optional
        Computed figures only: overrides of their set-up (the fields of its
        :attr:`Target.setup` class), e.g. a coarser time grid for a quick look. The values
        used are written into the table.

    Returns
    -------
    list of Path
        The files written: table, PNG, PDF, caption (none for the summary).
    """
    target = _target(name)
    paths = FigurePaths(name, root)
    if target.computed:
        if inputs:
            raise ValueError(f"target {name!r} is computed here and takes no `inputs`")
        df = target.compute(target.setup().override(setup, name))
    elif setup:
        raise ValueError(f"`setup` applies to computed targets only, not {name!r}")
    elif name == SUMMARY:
        df = target.compute(inputs, root, {n: t.title for n, t in FIGURES.items()})
    else:
        df = target.compute(inputs)
    fig = target.draw(df)
    table = df.copy()
    table.columns = [str(c) for c in table.columns]
    written = [atomic_write(paths.table, lambda p: table.to_parquet(p, index=False))]
    written += save_figure(fig, paths.png.with_suffix(""), dpi=target.dpi)
    if target.caption is not None:
        text = f"**{target.title}.** {target.caption(df)}\n"
        written.append(atomic_write(paths.caption, lambda p: p.write_text(text)))
    return written
