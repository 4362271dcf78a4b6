"""lrsweep: lazy and rich learning regimes of linear networks.

Exact gradient-flow solutions for λ-balanced two-layer linear networks (Dominé et al.,
"From Lazy to Rich: Exact Learning Dynamics in Deep Linear Networks", ICLR 2025), a
batched simulator for any depth, lazy/rich measures, and a Snakemake sweep pipeline.
"""

__version__ = "0.1.0"
