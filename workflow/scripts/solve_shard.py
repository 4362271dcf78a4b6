"""Rule solve_shard: solve one shard's points as one batch (lrsweep.solve.run_shard)."""

import sys

from lrsweep.solve import run_shard
from lrsweep.spec import ShardSpec

sm = snakemake  # noqa: F821 (injected by Snakemake)
log = open(sm.log[0], "w", buffering=1)  # noqa: SIM115
sys.stdout = sys.stderr = log  # warnings and tracebacks go to the job log too
run_shard(
    ShardSpec.from_params(sm.params.spec),
    sm.output.runs,
    sm.output.trajectories,
    sm.output.crossings,
    log=log,
)
