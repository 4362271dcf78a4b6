# The paper's figures: one rule per target of the registry lrsweep.experiments.FIGURES,
#   snakemake --cores all --workflow-profile workflow/profiles/default fig_exact_vs_sim
# writes results/paper/<target>/<target>.{png,pdf,parquet,md} (lrsweep.paths.FigurePaths);
# `summary` collects them into results/summary.png. Figures drawn from sweep tables read
# those of the configured sweeps they select (lrsweep.experiments.paper_inputs); the others
# are computed in seconds. Needs PLANS (common.smk).
from lrsweep.experiments import (
    FIGURES,
    SUMMARY,
    TARGETS,
    code_fingerprint,
    paper_inputs,
    report_label,
)
from lrsweep.paths import FigurePaths

PAPER_CODE = code_fingerprint()


for target in FIGURES.values():

    rule:
        name:
            f"fig_{target.name}"
        input:
            **paper_inputs(target.name, PLANS),
        output:
            png=report(
                str(FigurePaths(target.name).png),
                caption="../report/paper.rst",
                category="paper",
                labels=report_label(target.name),
            ),
            pdf=str(FigurePaths(target.name).pdf),
            table=str(FigurePaths(target.name).table),
            caption=str(FigurePaths(target.name).caption),
        log:
            f"logs/paper/fig_{target.name}.log",
        conda:
            "../envs/lrsweep.yaml"
        params:
            target=target.name,
            report_caption=target.report_caption,
            code=PAPER_CODE,
        script:
            "../scripts/paper_figure.py"


rule summary:
    input:
        **paper_inputs(SUMMARY, PLANS),
    output:
        png=report(
            str(FigurePaths(SUMMARY).png),
            caption="../report/paper.rst",
            category="paper",
            labels=report_label(SUMMARY),
        ),
        pdf=str(FigurePaths(SUMMARY).pdf),
        table=str(FigurePaths(SUMMARY).table),
    log:
        "logs/paper/summary.log",
    conda:
        "../envs/lrsweep.yaml"
    params:
        target=SUMMARY,
        report_caption=TARGETS[SUMMARY].report_caption,
        code=PAPER_CODE,
    script:
        "../scripts/paper_figure.py"
