# The paper's figures (issue 5), one target rule each:
#   snakemake --cores all --workflow-profile workflow/profiles/default fig_exact_vs_sim
# writes results/paper/<target>/<target>.{png,pdf,parquet,md}; `summary` collects them into
# results/summary.png. fig_phase, fig_architecture and fig_width_depth draw the aggregated
# tables of the configured sweeps that lrsweep.paper.sweep_roles picks (by name and grid);
# the other figures are computed by lrsweep.paper in seconds. Needs PLANS (common.smk).
from lrsweep.paper import code_fingerprint, table_inputs

PAPER_CODE = code_fingerprint()


rule fig_exact_vs_sim:
    output:
        png=report(
            "results/paper/exact_vs_sim/exact_vs_sim.png",
            caption="../report/paper_exact_vs_sim.rst",
            category="paper",
            labels={"figure": "1 exact vs simulation"},
        ),
        pdf="results/paper/exact_vs_sim/exact_vs_sim.pdf",
        table="results/paper/exact_vs_sim/exact_vs_sim.parquet",
        caption="results/paper/exact_vs_sim/exact_vs_sim.md",
    log:
        "logs/paper/fig_exact_vs_sim.log",
    conda:
        "../envs/lrsweep.yaml"
    params:
        target="exact_vs_sim",
        code=PAPER_CODE,
    script:
        "../scripts/paper_figure.py"


rule fig_singular_values:
    output:
        png=report(
            "results/paper/singular_values/singular_values.png",
            caption="../report/paper_singular_values.rst",
            category="paper",
            labels={"figure": "2 singular values"},
        ),
        pdf="results/paper/singular_values/singular_values.pdf",
        table="results/paper/singular_values/singular_values.parquet",
        caption="results/paper/singular_values/singular_values.md",
    log:
        "logs/paper/fig_singular_values.log",
    conda:
        "../envs/lrsweep.yaml"
    params:
        target="singular_values",
        code=PAPER_CODE,
    script:
        "../scripts/paper_figure.py"


rule fig_phase:
    input:
        unpack(table_inputs("phase", PLANS)),
    output:
        png=report(
            "results/paper/phase/phase.png",
            caption="../report/paper_phase.rst",
            category="paper",
            labels={"figure": "3 phase diagram"},
        ),
        pdf="results/paper/phase/phase.pdf",
        table="results/paper/phase/phase.parquet",
        caption="results/paper/phase/phase.md",
    log:
        "logs/paper/fig_phase.log",
    conda:
        "../envs/lrsweep.yaml"
    params:
        target="phase",
        code=PAPER_CODE,
    script:
        "../scripts/paper_figure.py"


rule fig_architecture:
    input:
        unpack(table_inputs("architecture", PLANS)),
    output:
        png=report(
            "results/paper/architecture/architecture.png",
            caption="../report/paper_architecture.rst",
            category="paper",
            labels={"figure": "4 architecture"},
        ),
        pdf="results/paper/architecture/architecture.pdf",
        table="results/paper/architecture/architecture.parquet",
        caption="results/paper/architecture/architecture.md",
    log:
        "logs/paper/fig_architecture.log",
    conda:
        "../envs/lrsweep.yaml"
    params:
        target="architecture",
        code=PAPER_CODE,
    script:
        "../scripts/paper_figure.py"


rule fig_hierarchy:
    output:
        png=report(
            "results/paper/hierarchy/hierarchy.png",
            caption="../report/paper_hierarchy.rst",
            category="paper",
            labels={"figure": "5 semantic hierarchy"},
        ),
        pdf="results/paper/hierarchy/hierarchy.pdf",
        table="results/paper/hierarchy/hierarchy.parquet",
        caption="results/paper/hierarchy/hierarchy.md",
    log:
        "logs/paper/fig_hierarchy.log",
    conda:
        "../envs/lrsweep.yaml"
    params:
        target="hierarchy",
        code=PAPER_CODE,
    script:
        "../scripts/paper_figure.py"


rule fig_width_depth:
    input:
        unpack(table_inputs("width_depth", PLANS)),
    output:
        png=report(
            "results/paper/width_depth/width_depth.png",
            caption="../report/paper_width_depth.rst",
            category="paper",
            labels={"figure": "6 width and depth"},
        ),
        pdf="results/paper/width_depth/width_depth.pdf",
        table="results/paper/width_depth/width_depth.parquet",
        caption="results/paper/width_depth/width_depth.md",
    log:
        "logs/paper/fig_width_depth.log",
    conda:
        "../envs/lrsweep.yaml"
    params:
        target="width_depth",
        code=PAPER_CODE,
    script:
        "../scripts/paper_figure.py"


rule fig_applications:
    output:
        png=report(
            "results/paper/applications/applications.png",
            caption="../report/paper_applications.rst",
            category="paper",
            labels={"figure": "7 applications"},
        ),
        pdf="results/paper/applications/applications.pdf",
        table="results/paper/applications/applications.parquet",
        caption="results/paper/applications/applications.md",
    log:
        "logs/paper/fig_applications.log",
    conda:
        "../envs/lrsweep.yaml"
    params:
        target="applications",
        code=PAPER_CODE,
    script:
        "../scripts/paper_figure.py"


rule summary:
    input:
        exact_vs_sim="results/paper/exact_vs_sim/exact_vs_sim.png",
        singular_values="results/paper/singular_values/singular_values.png",
        phase="results/paper/phase/phase.png",
        architecture="results/paper/architecture/architecture.png",
        hierarchy="results/paper/hierarchy/hierarchy.png",
        width_depth="results/paper/width_depth/width_depth.png",
        applications="results/paper/applications/applications.png",
    output:
        png=report(
            "results/summary.png",
            caption="../report/paper_summary.rst",
            category="paper",
            labels={"figure": "8 summary"},
        ),
        pdf="results/summary.pdf",
        table="results/summary.parquet",
    log:
        "logs/paper/summary.log",
    conda:
        "../envs/lrsweep.yaml"
    params:
        target="summary",
        code=PAPER_CODE,
    script:
        "../scripts/paper_figure.py"
