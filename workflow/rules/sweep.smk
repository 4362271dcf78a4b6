rule solve_shard:
    input:
        get_task_files,
    output:
        **{kind: str(SWEEP.shard_file(kind, "{shard}")) for kind in SHARD_FILES},
    log:
        "logs/solve_shard/{sweep}/{shard}.log",
    benchmark:
        str(SWEEP.benchmark("solve_shard", "{shard}"))
    conda:
        "../envs/lrsweep.yaml"
    threads: 1
    params:
        spec=get_shard_spec,
        code=CODE,
    script:
        "../scripts/solve_shard.py"
