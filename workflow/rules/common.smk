# Named lookups from the config to paths and params. The config is checked and the plan
# (points, admissibility, seeds, shards) made by lrsweep.grid; nothing is computed here.
import sys

from snakemake.exceptions import WorkflowError

import lrsweep
from lrsweep.grid import ConfigError, plan, validate_config
from lrsweep.paths import SHARD_FILES, SUMMARY, TABLES, FigurePaths, SweepPaths
from lrsweep.solve import code_fingerprint

try:
    SETTINGS = validate_config(config)  # the config with every default filled in
    PLANS = plan(SETTINGS)
except ConfigError as exc:
    raise WorkflowError(f"invalid config: {exc}") from None

CODE = f"lrsweep {lrsweep.__version__} ({code_fingerprint()})"
# Path patterns of every sweep's files (lrsweep.paths is the one place they are spelled).
SWEEP = SweepPaths("{sweep}")

if workflow.is_main_process:
    for sweep_plan in PLANS.values():
        print(sweep_plan.summary(), file=sys.stderr)


wildcard_constraints:
    sweep="[A-Za-z0-9][A-Za-z0-9_-]*",
    shard="[a-z]+-i[0-9]+-o[0-9]+-w[0-9]+-d[0-9]+-[0-9a-f]{8}",


def plots_enabled():
    """Figures are drawn unless the config says `plots: false`."""
    return SETTINGS["plots"]


def get_shard_spec(wildcards):
    """Plain-Python description (and fingerprint) of one shard's work."""
    return PLANS[wildcards.sweep].shard_spec(wildcards.shard).to_params()


def get_task_files(wildcards):
    """The dataset file of a `file` task, so that editing it reruns the sweep."""
    task = PLANS[wildcards.sweep].settings["task"]
    return [task["path"]] if task["kind"] == "file" else []


def get_shard_files(wildcards):
    """Every shard's runs, trajectories and crossings files of a sweep, by kind (unpack)."""
    paths = SweepPaths(wildcards.sweep)
    shards = PLANS[wildcards.sweep].shards
    return {
        kind: [str(paths.shard_file(kind, s)) for s in shards] for kind in SHARD_FILES
    }


def get_sweep_settings(wildcards):
    """The validated settings of one sweep (the aggregate step re-plans skipped points)."""
    return PLANS[wildcards.sweep].settings


def get_allow_failures_flag(wildcards):
    """`--allow-failures` if the sweep accepts having no ok point (`allow_failures: true`)."""
    return (
        "--allow-failures" if PLANS[wildcards.sweep].settings["allow_failures"] else ""
    )


def get_threshold(wildcards):
    return PLANS[wildcards.sweep].settings["regime_threshold"]


def get_final_output():
    """Tables, summary and (if enabled) figures of every sweep, and the paper summary page."""
    targets = []
    for sweep in PLANS:
        paths = SweepPaths(sweep)
        targets += [str(paths.table(table)) for table in TABLES]
        targets += [str(paths.summary), str(paths.status)]
        if plots_enabled():
            targets.append(str(paths.plots))
    if plots_enabled() and SETTINGS["paper"]:
        # the paper's figures on one page (paper.smk)
        targets.append(str(FigurePaths(SUMMARY).png))
    return targets


def print_results():
    """Tell the user how every sweep went and where its results are (called on success)."""
    print("\nlrsweep results:", file=sys.stderr)
    for sweep in PLANS:
        paths = SweepPaths(sweep)
        status = paths.status.read_text().strip() if paths.status.is_file() else ""
        print(f"  {paths.dir}/  {status}", file=sys.stderr)
    print(
        "  tables: runs.parquet, trajectories/ (a dataset), phase.parquet, boundary.parquet; "
        f"summary.txt{', plots/' if plots_enabled() else ''}",
        file=sys.stderr,
    )
    print(
        "  inspect: lrsweep show results/<sweep>;  report: snakemake --report "
        "results/report.html --workflow-profile workflow/profiles/default",
        file=sys.stderr,
    )
