# lrsweep: lazy-rich phase diagrams of linear networks.
# Run:       snakemake --cores 2 --workflow-profile workflow/profiles/default
# On SLURM:  add --profile workflow/profiles/slurm
# Recovery after a killed run: snakemake --unlock, then the same command again.
# Own config: --configfile my.yaml replaces config.yaml instead of being merged into it, so
# that `snakemake --configfile my.yaml` runs the plan `lrsweep check-config my.yaml` shows.
# The config is validated by lrsweep (common.smk) against workflow/schemas/config.schema.yaml.
from snakemake.utils import min_version

min_version("9.0")


if not workflow.overwrite_configfiles:

    configfile: "config.yaml"


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
