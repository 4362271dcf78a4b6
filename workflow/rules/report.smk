report: "../report/workflow.rst"


rule summarize_sweep:
    input:
        runs=str(SWEEP.runs),
        phase=str(SWEEP.phase),
        boundary=str(SWEEP.boundary),
    output:
        report(
            str(SWEEP.summary),
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
