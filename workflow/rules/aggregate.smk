rule aggregate_sweep:
    input:
        unpack(get_shard_files),
    output:
        **{table: str(SWEEP.table(table)) for table in TABLES},
    log:
        "logs/aggregate_sweep/{sweep}.log",
    benchmark:
        str(SWEEP.benchmark("aggregate_sweep"))
    conda:
        "../envs/lrsweep.yaml"
    params:
        settings=get_sweep_settings,
        code=CODE,
    script:
        "../scripts/aggregate_sweep.py"


# A few milliseconds: run where Snakemake runs, not as a cluster job.
rule check_sweep:
    input:
        runs=str(SWEEP.runs),
    output:
        str(SWEEP.status),
    log:
        "logs/check_sweep/{sweep}.log",
    localrule: True
    conda:
        "../envs/lrsweep.yaml"
    params:
        allow=get_allow_failures_flag,
    shell:
        "lrsweep status $(dirname {input.runs}) --out {output} {params.allow} > {log} 2>&1"
