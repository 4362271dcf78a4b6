rule aggregate_sweep:
    input:
        runs=get_shard_runs,
        trajectories=get_shard_trajectories,
    output:
        runs="results/{sweep}/runs.parquet",
        trajectories="results/{sweep}/trajectories.parquet",
        phase="results/{sweep}/phase.parquet",
        boundary="results/{sweep}/boundary.parquet",
    log:
        "logs/aggregate_sweep/{sweep}.log",
    conda:
        "../envs/lrsweep.yaml"
    params:
        settings=get_sweep_settings,
        code=CODE,
    script:
        "../scripts/aggregate_sweep.py"
