"""Rule aggregate_sweep: merge shard files into the sweep's tables (lrsweep.results)."""

import sys

from lrsweep.results import aggregate

sm = snakemake  # noqa: F821 (injected by Snakemake)
sys.stdout = sys.stderr = open(sm.log[0], "w", buffering=1)  # noqa: SIM115
aggregate(
    sm.wildcards.sweep,
    sm.params.settings,
    sm.input.runs,
    sm.input.trajectories,
    runs=sm.output.runs,
    trajectories=sm.output.trajectories,
    phase=sm.output.phase,
    boundary=sm.output.boundary,
)
