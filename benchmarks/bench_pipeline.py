"""Benchmark: the sharded pipeline vs a one-job-per-point Snakemake layout; DAG build time.

1. Wall time of ``snakemake --cores 2`` on the same grid (default 2000 points, exact solver,
   20 λ × 20 scale × 5 seeds on a 4-4-4 net) with
   - this pipeline (shards of ~1000 points, one batched solver call each), and
   - a one-job-per-point layout: one Snakemake job per point, running the very same
     solver code (``lrsweep.solve.run_shard`` on a one-point spec), then one gather job.
   Reports the ratio (target ≥ 20×).
2. Wall time of the dry run (DAG construction) of this pipeline for a 10⁵-point grid
   (target ≤ 10 s), and of the one-job-per-point layout for the 2000-point grid.

Usage::

    python benchmarks/bench_pipeline.py                 # full benchmark (~15-20 min on 2 cores)
    python benchmarks/bench_pipeline.py --points 200    # quick look
    python benchmarks/bench_pipeline.py --skip-naive    # only this pipeline and the DAG test

Results are printed and written to benchmarks/out/bench_pipeline.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SNAKEMAKE = str(BIN / "snakemake") if (BIN / "snakemake").exists() else "snakemake"
PROFILE = str(ROOT / "workflow/profiles/default")

NAIVE_SNAKEFILE = '''\
import json

SPECS = json.load(open("specs.json"))


rule all:
    input:
        "table.parquet",


def point_spec(wildcards):
    return SPECS[wildcards.pid]


rule solve_point:
    output:
        runs="points/{pid}.parquet",
        trajectories="points/{pid}.trajectories.parquet",
        crossings="points/{pid}.crossings.parquet",
    params:
        spec=point_spec,
    script:
        "solve_point.py"


rule gather:
    input:
        expand("points/{pid}.parquet", pid=SPECS),
    output:
        "table.parquet",
    script:
        "gather.py"
'''

SOLVE_POINT = '''\
from lrsweep.solve import run_shard
from lrsweep.spec import ShardSpec

spec = ShardSpec.from_params(snakemake.params.spec)
run_shard(spec, snakemake.output.runs, snakemake.output.trajectories,
          snakemake.output.crossings, log=None)
'''

GATHER = '''\
from lrsweep import io

table = io.read_tables(snakemake.input, io.shard_schema())
io.write_table(table, snakemake.output[0], io.shard_schema())
'''


def grid_config(n_points: int, seeds: int = 5) -> dict:
    """A λ × scale × seed grid of about ``n_points`` points (exact solver, 4-4-4)."""
    side = max(1, round(math.sqrt(n_points / seeds)))
    return {
        "plots": False,
        "sweeps": {
            "bench": {
                "solver": "exact",
                "time": {"t_max": 30.0, "n_points": 121, "spacing": "log"},
                "grid": {
                    "lambda": {"linspace": {"start": -10.0, "stop": 10.0, "num": side}},
                    "scale": {"logspace": {"start": 0.001, "stop": 3.0, "num": side}},
                    "seed": list(range(seeds)),
                    "n_in": 4, "n_out": 4, "width": 4,
                },
            }
        },
    }


def env() -> dict:
    """PATH with the venv's scripts and, unless a SLURM controller answers, a fast-failing
    `scontrol`: the SLURM executor plugin (imported by every snakemake call) otherwise waits
    10 s for `scontrol show config`, which is not part of what is measured here."""
    e = dict(os.environ)
    paths = [str(BIN)]
    if not _slurm_up():
        shim = Path(tempfile.mkdtemp(prefix="lrsweep-noslurm-"))
        (shim / "scontrol").write_text("#!/bin/sh\nexit 1\n")
        (shim / "scontrol").chmod(0o755)
        paths.append(str(shim))
    e["PATH"] = os.pathsep.join([*paths, e.get("PATH", "")])
    return e


def _slurm_up() -> bool:
    try:
        ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=15)
    except (OSError, subprocess.SubprocessError):
        return True  # no scontrol: nothing to work around
    return ping.returncode == 0 and "UP" in ping.stdout


def timed(cmd: list[str], cwd: Path) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env(), capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"command failed: {' '.join(cmd)}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return wall


def pipeline_cmd(*extra: str) -> list[str]:
    return [SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "--workflow-profile", PROFILE,
            "--cores", "2", *extra]


def run_pipeline(cfg: dict, work: Path, dry: bool = False) -> float:
    work.mkdir(parents=True)
    (work / "config.yaml").write_text(yaml.safe_dump(cfg))
    return timed(pipeline_cmd(*(["-n"] if dry else [])), work)


def run_naive(cfg: dict, work: Path, dry: bool = False) -> float:
    from lrsweep.grid import plan

    p = plan({**cfg, "sweeps": {"bench": {**cfg["sweeps"]["bench"], "shard_size": 1}}})["bench"]
    specs = {
        str(p.shard_spec(s).points["point_id"][0]): p.shard_spec(s).to_params()
        for s in p.shards
    }
    work.mkdir(parents=True)
    (work / "Snakefile").write_text(NAIVE_SNAKEFILE)
    (work / "solve_point.py").write_text(SOLVE_POINT)
    (work / "gather.py").write_text(GATHER)
    (work / "specs.json").write_text(json.dumps(specs))
    cmd = [SNAKEMAKE, "--cores", "2", "--scheduler", "greedy", *(["-n"] if dry else [])]
    return timed(cmd, work)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--points", type=int, default=2000, help="grid size for the run comparison")
    ap.add_argument("--dag-points", type=int, default=100_000, help="grid size for the DAG test")
    ap.add_argument("--skip-naive", action="store_true", help="skip the one-job-per-point runs")
    args = ap.parse_args()

    from lrsweep.grid import plan

    cfg = grid_config(args.points)
    n = plan(cfg)["bench"].n_points
    big = grid_config(args.dag_points, seeds=10)
    n_big = plan(big)["bench"].n_points
    out: dict[str, float | int] = {"points": n, "dag_points": n_big}
    with tempfile.TemporaryDirectory(prefix="lrsweep-bench-") as tmp:
        tmp = Path(tmp)
        out["pipeline_run_s"] = run_pipeline(cfg, tmp / "pipeline")
        print(f"this pipeline, {n} points:        {out['pipeline_run_s']:8.1f} s", flush=True)
        out["pipeline_dag_s"] = run_pipeline(big, tmp / "dag", dry=True)
        print(f"dry run (DAG), {n_big} points:   {out['pipeline_dag_s']:8.1f} s "
              f"(target <= 10 s)", flush=True)
        if not args.skip_naive:
            out["naive_dag_s"] = run_naive(cfg, tmp / "naive-dag", dry=True)
            print(f"one job per point, dry run, {n} points: {out['naive_dag_s']:8.1f} s",
                  flush=True)
            out["naive_run_s"] = run_naive(cfg, tmp / "naive")
            print(f"one job per point, {n} points:   {out['naive_run_s']:8.1f} s", flush=True)
            out["ratio"] = out["naive_run_s"] / out["pipeline_run_s"]
            print(f"ratio (one job per point / pipeline): {out['ratio']:.1f}x (target >= 20x)")
    dest = ROOT / "benchmarks/out/bench_pipeline.json"
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(json.dumps(out, indent=2) + "\n")
    print(f"-> {dest}")


if __name__ == "__main__":
    main()
