"""lrsweep: lazy and rich learning regimes of linear networks.

Exact gradient-flow solutions for λ-balanced two-layer linear networks (Dominé et al.,
"From Lazy to Rich: Exact Learning Dynamics in Deep Linear Networks", ICLR 2025), a
batched simulator for any depth, lazy/rich measures, and a Snakemake sweep pipeline.

The public names of the science modules are re-exported here; the pipeline modules
(``grid``, ``io``, ``solve``, ``results``, ``plots``, ``cli``) are imported by name.
"""

from lrsweep.dynamics import SOLVERS, Solution, solve_dynamics
from lrsweep.exact import (
    aligned_singular_values,
    converged,
    network_function,
    qqt,
    qqt_blocks,
)
from lrsweep.init import gaussian, imbalances, lambda_balanced
from lrsweep.metrics import (
    end_to_end,
    kernel_distance,
    loss,
    ntk_grams,
    ntk_grams_from_qqt,
    relative_kernel_change,
    relative_weight_change,
    time_to_fit,
)
from lrsweep.tasks import Task, from_arrays, load_dataset, random_regression, semantic_hierarchy

__version__ = "0.1.0"

__all__ = [
    "SOLVERS",
    "Solution",
    "Task",
    "aligned_singular_values",
    "converged",
    "end_to_end",
    "from_arrays",
    "gaussian",
    "imbalances",
    "kernel_distance",
    "lambda_balanced",
    "load_dataset",
    "loss",
    "network_function",
    "ntk_grams",
    "ntk_grams_from_qqt",
    "qqt",
    "qqt_blocks",
    "random_regression",
    "relative_kernel_change",
    "relative_weight_change",
    "semantic_hierarchy",
    "solve_dynamics",
    "time_to_fit",
]
