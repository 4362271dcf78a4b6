"""Rule aggregate_sweep: check a sweep's shard files and merge them (lrsweep.merge)."""

import sys
from pathlib import Path

from lrsweep.grid import plan_sweep
from lrsweep.merge import merge_sweep
from lrsweep.paths import SweepPaths

sm = snakemake  # noqa: F821 (injected by Snakemake)
sys.stdout = sys.stderr = open(sm.log[0], "w", buffering=1)  # noqa: SIM115
merge_sweep(
    plan_sweep(sm.wildcards.sweep, sm.params.settings),
    SweepPaths.of(Path(sm.output.runs).parent),
)
