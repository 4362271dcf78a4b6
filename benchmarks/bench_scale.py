"""Sweeps at scale through the real Snakemake workflow: time, throughput, peak memory per rule.

Workload (issue 11): exact sweeps over 4 architectures (n_in, n_out ∈ {4, 8}, width 4), λ
on a symlog grid, log-spaced scales, seeds; 121 log-spaced saved times; tables only
(`plots: false`). For each size the pipeline runs from scratch with `--cores 2` and the
default workflow profile, as the README's command does. Reported:

- wall time end to end and points/s; solver throughput per core (points / summed shard time);
- peak RSS of every rule from Snakemake's `benchmark:` files (max_rss), and of the snakemake
  process itself;
- the planning cost of a 10⁷-point config (`lrsweep check-config`, `snakemake -n`);
- reading the curves of 1,000 points from the largest sweep (random ids, and one λ).

Ratios are against the smallest size of the same run: throughput should stay flat and the
aggregate step's memory should not grow with the number of points.

Run:  python benchmarks/bench_scale.py             (10⁴ and 10⁵ points, ≈ 5 min)
      python benchmarks/bench_scale.py --million   (also 10⁶ points, ≈ 30 min on 2 cores)
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SNAKEMAKE = str(BIN / "snakemake")
LRSWEEP = str(BIN / "lrsweep")
PROFILE = str(ROOT / "workflow/profiles/default")
OUT = ROOT / "benchmarks/out/scale"


def config(n_points: int, *, max_points: int = 2_000_000) -> dict:
    """≈ n_points: 4 architectures × 41 λ × n_scale scales × n_seed seeds."""
    per_arch = n_points / 4 / 41
    n_seed = max(1, round(np.sqrt(per_arch / 10)))
    n_scale = max(1, round(per_arch / n_seed))
    return {
        "plots": False,
        "sweeps": {
            "scale": {
                "solver": "exact",
                "max_points": max_points,
                "time": {"t_max": 30.0, "n_points": 121, "spacing": "log"},
                "grid": {
                    "lambda": {"symlog": {"min": 0.01, "max": 100.0, "per_side": 20}},
                    "scale": {"logspace": {"start": 1e-3, "stop": 3.0, "num": n_scale}},
                    "seed": {"range": {"start": 0, "stop": n_seed}},
                    "n_in": [4, 8],
                    "n_out": [4, 8],
                    "width": [4],
                },
            }
        },
    }


def env() -> dict:
    e = dict(os.environ)
    shim = OUT / "bin"  # a fast-failing `scontrol`: no SLURM plugin probe (see tests/workflow)
    shim.mkdir(parents=True, exist_ok=True)
    (shim / "scontrol").write_text("#!/bin/sh\nexit 1\n")
    (shim / "scontrol").chmod(0o755)
    e["PATH"] = os.pathsep.join([str(BIN), str(shim), e.get("PATH", "")])
    return e


def timed(cmd: list[str], cwd: Path) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB of the largest process of the command's tree), from
    GNU time (its %M: the largest of the process and its waited-for descendants)."""
    marker = "LRSWEEP-TIME"
    full = ["/usr/bin/time", "-f", f"{marker} %e %M", *cmd]
    proc = subprocess.run(full, cwd=cwd, env=env(), capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    line = next(ln for ln in proc.stderr.splitlines()[::-1] if ln.startswith(marker))
    wall, kb = line.split()[1:]
    return float(wall), float(kb) / 1024


def rule_benchmarks(project: Path) -> dict[str, dict[str, float]]:
    """Per rule: jobs, summed seconds and largest max_rss (MB) from the benchmark files."""
    out: dict[str, dict[str, float]] = {}
    for tsv in (project / "results/scale/benchmarks").glob("*/*.tsv"):
        with open(tsv) as fh:
            row = next(csv.DictReader(fh, delimiter="\t"))
        r = out.setdefault(tsv.parent.name, {"jobs": 0, "seconds": 0.0, "max_rss": 0.0})
        r["jobs"] += 1
        r["seconds"] += float(row["s"])
        r["max_rss"] = max(r["max_rss"], float(row["max_rss"]) if row["max_rss"] != "NA" else 0)
    return out


def run_size(n: int) -> dict:
    project = OUT / f"n{n}"
    shutil.rmtree(project, ignore_errors=True)
    project.mkdir(parents=True)
    (project / "config.yaml").write_text(yaml.safe_dump(config(n)))
    plan_wall, _ = timed([LRSWEEP, "check-config"], project)
    cmd = [SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "--workflow-profile", PROFILE, "--cores", "2"]
    wall, rss = timed(cmd, project)
    from lrsweep import results

    runs = results.load_runs(project / "results/scale", status="ok")
    rules = rule_benchmarks(project)
    disk = sum(f.stat().st_size for f in (project / "results/scale").rglob("*.parquet"))
    return {
        "points": len(runs),
        "wall": wall,
        "rate": len(runs) / wall,
        "solve_rate": len(runs) / rules["solve_shard"]["seconds"],
        "rules": rules,
        "snakemake_rss": rss,
        "disk_mb": disk / 1e6,
        "check_config": plan_wall,
        "project": project,
    }


def plan_ten_million() -> dict:
    project = OUT / "plan1e7"
    shutil.rmtree(project, ignore_errors=True)
    project.mkdir(parents=True)
    cfg = config(10_000_000, max_points=20_000_000)
    (project / "config.yaml").write_text(yaml.safe_dump(cfg))
    check = timed([LRSWEEP, "check-config"], project)
    dry = [SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "--workflow-profile", PROFILE, "-n"]
    return {"check_config": check, "dry_run": timed(dry, project)}


def query(project: Path) -> dict:
    from lrsweep import results

    d = project / "results/scale"
    runs = results.load_runs(d, status="ok")
    rng = np.random.default_rng(0)
    ids = rng.choice(runs["point_id"].to_numpy(), size=min(1000, len(runs)), replace=False)
    t0 = time.perf_counter()
    random_curves = results.load_trajectories(d, point_id=list(ids), join=False)
    t_random = time.perf_counter() - t0
    lam = np.sort(runs["lambda"].unique())[len(runs["lambda"].unique()) // 3]
    t0 = time.perf_counter()
    one_lam = results.load_trajectories(d, lambda_=float(lam), n_in=8)
    t_lam = time.perf_counter() - t0
    return {
        "random": (len(ids), t_random, len(random_curves)),
        "lambda": (one_lam["point_id"].nunique(), t_lam, len(one_lam)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--million", action="store_true", help="also run 10^6 points (~30 min)")
    ap.add_argument("--sizes", type=int, nargs="*", help="override the sizes")
    args = ap.parse_args()
    sizes = args.sizes or [10_000, 100_000] + ([1_000_000] if args.million else [])
    rows = [run_size(n) for n in sizes]
    base = rows[0]
    print(
        f"{'points':>9} {'wall s':>8} {'points/s':>9} {'solve/core':>10} {'vs first':>8} "
        f"{'solve_shard RSS':>15} {'aggregate RSS':>13} {'snakemake RSS':>13} {'disk MB':>8}"
    )
    for r in rows:
        agg = r["rules"]["aggregate_sweep"]
        print(
            f"{r['points']:>9,} {r['wall']:>8.1f} {r['rate']:>9.0f} {r['solve_rate']:>10.0f} "
            f"{r['solve_rate'] / base['solve_rate']:>8.2f} "
            f"{r['rules']['solve_shard']['max_rss']:>12.0f} MB {agg['max_rss']:>10.0f} MB "
            f"{r['snakemake_rss']:>10.0f} MB {r['disk_mb']:>8.0f}"
        )
        print(
            "          per rule: "
            + "; ".join(
                f"{k} {v['jobs']:.0f} jobs {v['seconds']:.1f} s max {v['max_rss']:.0f} MB"
                for k, v in sorted(r["rules"].items())
            )
        )
    q = query(rows[-1]["project"])
    for kind, (n, sec, n_rows) in q.items():
        print(
            f"curves of {n} points ({kind}) out of {rows[-1]['points']:,}: {sec:.2f} s, "
            f"{n_rows:,} rows"
        )
    plan = plan_ten_million()
    print(
        f"10^7-point plan: lrsweep check-config {plan['check_config'][0]:.1f} s, "
        f"{plan['check_config'][1]:.0f} MB; snakemake -n {plan['dry_run'][0]:.1f} s, "
        f"{plan['dry_run'][1]:.0f} MB"
    )


if __name__ == "__main__":
    main()
