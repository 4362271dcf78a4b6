report: "../report/workflow.rst"


rule summarize_sweep:
    input:
        runs="results/{sweep}/runs.parquet",
        phase="results/{sweep}/phase.parquet",
        boundary="results/{sweep}/boundary.parquet",
    output:
        report(
            "results/{sweep}/summary.txt",
            caption="../report/summary.rst",
            category="{sweep}",
            subcategory="tables",
        ),
    log:
        "logs/summarize_sweep/{sweep}.log",
    conda:
        "../envs/lrsweep.yaml"
    shell:
        "lrsweep show $(dirname {input.phase}) --out {output} > {log} 2>&1"


onsuccess:
    print_results()
