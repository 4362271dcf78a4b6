"""Rules fig_* and summary: build one paper target (lrsweep.experiments.make_target)."""

import sys
from pathlib import Path

from lrsweep.experiments import make_target

sm = snakemake  # noqa: F821 (injected by Snakemake)
sys.stdout = sys.stderr = open(sm.log[0], "w", buffering=1)  # noqa: SIM115
inputs = {name: Path(path) for name, path in sm.input.items()}
written = make_target(sm.params.target, inputs=inputs)
missing = [p for p in sm.output if Path(p) not in written]
if missing:
    raise RuntimeError(f"make_target({sm.params.target!r}) did not write {missing}")
print("wrote", *written, sep="\n  ")
