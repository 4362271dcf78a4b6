rule plot_sweep:
    input:
        **{table: str(SWEEP.table(table)) for table in TABLES},
    output:
        report(
            directory(str(SWEEP.plots)),
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
