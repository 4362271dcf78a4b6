rule plot_sweep:
    input:
        runs="results/{sweep}/runs.parquet",
        trajectories="results/{sweep}/trajectories.parquet",
        phase="results/{sweep}/phase.parquet",
        boundary="results/{sweep}/boundary.parquet",
    output:
        report(
            directory("results/{sweep}/plots"),
            patterns=["{name}.png"],
            caption="../report/plots.rst",
            category="{sweep}",
            subcategory="figures",
        ),
    log:
        "logs/plot_sweep/{sweep}.log",
    conda:
        "../envs/lrsweep.yaml"
    params:
        threshold=get_threshold,
    shell:
        "lrsweep plot $(dirname {input.phase}) --out {output} --threshold {params.threshold}"
        " > {log} 2>&1"
