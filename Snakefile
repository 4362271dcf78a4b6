# lrsweep: lazy-rich phase diagrams of linear networks.
# Run:       snakemake --cores 2 --workflow-profile workflow/profiles/default
# On SLURM:  add --profile workflow/profiles/slurm
# Recovery after a killed run: snakemake --unlock, then the same command again.
from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config.yaml"


validate(config, "workflow/schemas/config.schema.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/sweep.smk"
include: "workflow/rules/aggregate.smk"
include: "workflow/rules/plot.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/paper.smk"


rule all:
    default_target: True
    input:
        get_final_output(),
