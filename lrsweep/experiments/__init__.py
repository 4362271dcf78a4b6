"""The paper's results as pipeline targets: compute a tidy table, draw from the table only.

Reproduces the results of Dominé et al., "From Lazy to Rich: Exact Learning Dynamics in Deep
Linear Networks" (ICLR 2025; theory.md §5), one module per result:

- computed (seconds each, from a set-up dataclass): :mod:`~lrsweep.experiments.exact_vs_sim`,
  :mod:`~lrsweep.experiments.singular_values`, :mod:`~lrsweep.experiments.hierarchy`,
  :mod:`~lrsweep.experiments.applications`, :mod:`~lrsweep.experiments.boundary` (λ* by root
  finding, about 20 s), :mod:`~lrsweep.experiments.standard_inits` (Gaussian inits on the
  lazy–rich map, about 20 s);
- drawn from the sweep pipeline's aggregated tables (``results/<sweep>/phase.parquet`` and
  ``boundary.parquet`` of the sweeps each selects, :mod:`~lrsweep.experiments.tables`):
  :mod:`~lrsweep.experiments.phase`, :mod:`~lrsweep.experiments.architecture`,
  :mod:`~lrsweep.experiments.width_depth`;
- :mod:`~lrsweep.experiments.summary` collects the figures and captions on one page.

Each module has ``compute`` (→ tidy table), ``draw`` (table → figure, through
:mod:`lrsweep.plots`) and ``caption`` (table → text: the set-up values are read from the table,
so a changed set-up cannot contradict its caption). :data:`FIGURES` registers them;
:func:`make_target` writes a target's files (:class:`lrsweep.paths.FigurePaths`):

- ``<target>.parquet``: the tidy table behind the figure (re-plot without recomputing);
- ``<target>.png`` and ``<target>.pdf``: the figure, drawn from that table only;
- ``<target>.md``: the caption, with the set-up values and the measured numbers.

Time is in units of τ = 1/η everywhere (gradient-descent step k at learning rate η is
t/τ = kη).
"""

from lrsweep.experiments.registry import (
    FIGURES,
    SUMMARY,
    TARGETS,
    Target,
    code_fingerprint,
    make_target,
    paper_inputs,
    report_label,
    sweep_roles,
)

__all__ = [
    "FIGURES",
    "SUMMARY",
    "TARGETS",
    "Target",
    "code_fingerprint",
    "make_target",
    "paper_inputs",
    "report_label",
    "sweep_roles",
]
