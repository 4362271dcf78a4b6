rule solve_shard:
    input:
        get_task_files,
    output:
        runs="results/{sweep}/shards/{shard}.parquet",
        trajectories="results/{sweep}/shards/{shard}.trajectories.parquet",
    log:
        "logs/solve_shard/{sweep}/{shard}.log",
    benchmark:
        "results/{sweep}/benchmarks/solve_shard/{shard}.tsv"
    conda:
        "../envs/lrsweep.yaml"
    threads: 1
    params:
        spec=get_shard_spec,
        code=CODE,
    script:
        "../scripts/solve_shard.py"
