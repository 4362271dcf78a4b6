"""Throughput of the shard solver: points per second per core of ``lrsweep.solve.solve_points``.

Workload (issue 11, item 6): one shard per shape (N_i, N_h, N_o) = (4, 4, 4), (8, 4, 8),
(8, 8, 8) of the exact solver, each holding the 27 λ × 12 scale × 3 seed = 972 points of a
realistic sweep: λ on a symlog grid ±(0.01 … 100) and 0, scales geomspace(1e-3, 3), seeds
0, 1, 2, a random task, 121 saved times (0, then geomspace(t_max/1000, t_max, 120),
t_max = 30), every metric and curve. Targets: ≥ 1500 points/s for (4, 4, 4) and ≥ 800 for
(8, 4, 8) and (8, 8, 8), on one core.

Baseline, measured in the same run: the same shards through the code of ``--baseline``
(default :data:`BASELINE_REF`, the last commit before the speed-up; extracted with
``git archive`` into a temporary directory). Both versions run in worker subprocesses
pinned to one thread (``OMP_NUM_THREADS=1`` etc.), alternately, and the best of
``--rounds`` × ``--repeats`` timings is reported for each. "Per core" rates are from the
process's CPU time (``time.process_time``), which other jobs on a busy machine disturb much
less than the wall clock (reported alongside). The tables of the two versions are compared
column by column (largest relative difference) as a check that only the speed changed.

Run::

    python benchmarks/bench_shard.py                     # ~1-2 min
    python benchmarks/bench_shard.py --repeats 5
    python benchmarks/bench_shard.py --profile 8,4,8     # cProfile of the current code

Results are printed and written to benchmarks/out/bench_shard.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
#: The code before the shard speed-up (branch ``perf`` of issue 11 starts here).
BASELINE_REF = "cfac707"
SHAPES = ((4, 4, 4), (8, 4, 8), (8, 8, 8))
#: Points per second per core the issue asks for, by shape.
TARGETS = {(4, 4, 4): 1500, (8, 4, 8): 800, (8, 8, 8): 800}
#: Single-threaded BLAS/LAPACK and numexpr, whatever the machine.
ONE_THREAD = {
    k: "1"
    for k in (
        "OMP_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        "MKL_NUM_THREADS",
        "VECLIB_MAXIMUM_THREADS",
        "NUMEXPR_NUM_THREADS",
    )
}


def sweep_config(n_in: int, width: int, n_out: int) -> dict:
    """The benchmark sweep of one shape (972 points)."""
    return {
        "grid": {
            "lambda": {"symlog": {"min": 0.01, "max": 100.0, "per_side": 13}},
            "scale": {"logspace": {"start": 1e-3, "stop": 3.0, "num": 12}},
            "seed": [0, 1, 2],
            "width": [width],
            "n_in": [n_in],
            "n_out": [n_out],
        },
        "task": {"kind": "random"},
        "time": {"t_max": 30.0, "n_points": 121, "spacing": "log"},
        "shard_size": 1000,
    }


def shard(shape: tuple[int, int, int]):
    """One ShardSpec holding every point of the shape's sweep (the lrsweep on sys.path)."""
    from lrsweep.grid import plan

    p = plan({"sweeps": {"bench": sweep_config(*shape)}})["bench"]
    specs = [p.shard_spec(s) for s in p.shards]
    points = {k: np.concatenate([s.points[k] for s in specs]) for k in specs[0].points}
    if hasattr(specs[0], "with_points"):  # compact plans: specs hold index ranges
        return specs[0].with_points(points)
    return dataclasses.replace(specs[0], points=points)


def worker(repeats: int, out: Path | None, shapes=SHAPES) -> dict:
    """Time solve_points on ``shapes`` (best of ``repeats``); optionally save the tables."""
    import pyarrow.parquet as pq

    import lrsweep
    from lrsweep import solve

    result = {"lrsweep": str(Path(lrsweep.__file__).parent), "shapes": {}}
    for shape in shapes:
        spec = shard(shape)
        best, best_wall = np.inf, np.inf
        for _ in range(repeats):
            start, start_wall = time.process_time(), time.perf_counter()
            runs, traj = solve.solve_points(spec)
            best = min(best, time.process_time() - start)
            best_wall = min(best_wall, time.perf_counter() - start_wall)
        name = "x".join(map(str, shape))
        result["shapes"][name] = {"points": spec.n_points, "seconds": best, "wall": best_wall}
        if out is not None:
            pq.write_table(runs, out / f"runs_{name}.parquet")
            pq.write_table(traj, out / f"traj_{name}.parquet")
    return result


def run_worker(pythonpath: Path, repeats: int, out: Path | None, shapes: str) -> dict:
    env = {**os.environ, **ONE_THREAD, "PYTHONPATH": str(pythonpath)}
    cmd = [sys.executable, __file__, "--worker", "--repeats", str(repeats), "--shapes", shapes]
    if out is not None:
        cmd += ["--out", str(out)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.exit(f"worker failed ({pythonpath}):\n{proc.stderr}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    if not Path(result["lrsweep"]).resolve().is_relative_to(pythonpath.resolve()):
        sys.exit(f"worker imported {result['lrsweep']}, expected a package under {pythonpath}")
    return result


def _as_matrix(column) -> np.ndarray | None:
    """A float or list<float> table column as a 2-d float array (None for other types)."""
    import pyarrow as pa

    kind = column.type
    if pa.types.is_list(kind) and pa.types.is_floating(kind.value_type):
        values = column.to_numpy(zero_copy_only=False)
        return np.stack(values) if len(values) else np.zeros((0, 0))
    if pa.types.is_floating(kind):
        return column.to_numpy().reshape(-1, 1)
    return None


def compare(new_dir: Path, base_dir: Path) -> dict[str, dict[str, tuple[float, float]]]:
    """Largest (relative, absolute) difference per numeric column of the two versions' tables.

    Relative: |new − base| / max(|base|, floor) with floor 1e-12 of the column's largest
    magnitude for scalar columns (round-off zeros do not count as relative differences) and
    1e-4 of the row's largest value for list columns (the singular values: their rule is
    1e-8 relative above 1e-4·σ_max, ~ε·σ_max absolute below). Columns only in one version
    are skipped; a different NaN pattern counts as inf.
    """
    import pyarrow.parquet as pq

    diffs: dict[str, dict[str, tuple[float, float]]] = {}
    for path in sorted(new_dir.glob("*.parquet")):
        new, base = pq.read_table(path), pq.read_table(base_dir / path.name)
        worst = {}
        for name in new.column_names:
            if name not in base.column_names or name in ("sweep", "shard", "point_id", "t"):
                continue
            a, b = _as_matrix(new.column(name)), _as_matrix(base.column(name))
            if a is None or b is None or a.size == 0 or a.shape != b.shape:
                continue
            if not np.array_equal(np.isnan(a), np.isnan(b)):
                worst[name] = (float("inf"), float("inf"))
                continue
            both = np.isfinite(a) & np.isfinite(b)
            if not np.any(both):
                continue
            if a.shape[1] > 1:  # a list column, one row per (point, t)
                floor = 1e-4 * np.max(np.abs(b), axis=1, keepdims=True) + 1e-300
            else:
                floor = 1e-12 * np.max(np.abs(b[both])) + 1e-300
            d = np.abs(a - b)
            rel = d / np.maximum(np.abs(b), floor)
            worst[name] = (float(np.max(rel[both])), float(np.max(d[both])))
        diffs[path.stem] = worst
    return diffs


def profile(shape: tuple[int, int, int]) -> None:
    import cProfile
    import pstats

    from lrsweep import solve

    spec = shard(shape)
    solve.solve_points(spec)  # warm-up (imports, caches)
    prof = cProfile.Profile(time.process_time)
    prof.runcall(solve.solve_points, spec)
    pstats.Stats(prof).sort_stats("tottime").print_stats(25)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="timings per version (best)")
    parser.add_argument("--rounds", type=int, default=2, help="alternations new/baseline")
    parser.add_argument("--baseline", default=BASELINE_REF, help="git ref of the baseline")
    parser.add_argument("--profile", metavar="NI,NH,NO", help="profile the current code")
    parser.add_argument(
        "--shapes",
        default=";".join(",".join(map(str, s)) for s in SHAPES),
        help="NI,NH,NO;... (default: the three shapes of the issue)",
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    shapes = [tuple(int(x) for x in s.split(",")) for s in args.shapes.split(";")]
    if args.worker:
        print(json.dumps(worker(args.repeats, args.out, shapes)))
        return
    if args.profile:
        if any(os.environ.get(k) != v for k, v in ONE_THREAD.items()):  # before numpy loads BLAS
            os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, **ONE_THREAD})
        profile(tuple(int(x) for x in args.profile.split(",")))
        return

    commit = subprocess.run(
        ["git", "rev-parse", "--short", args.baseline], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "lrsweep"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        base_src = tmp / "baseline"
        base_src.mkdir()
        archive = subprocess.run(
            ["git", "archive", args.baseline, "lrsweep", "workflow/schemas"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(base_src)], input=archive, check=True)
        tables = {"new": tmp / "new", "baseline": tmp / "base"}
        for d in tables.values():
            d.mkdir()
        best = {(v, clock): {} for v in ("new", "baseline") for clock in ("seconds", "wall")}
        points: dict[str, int] = {}
        for r in range(args.rounds):
            for version, path in (("new", ROOT), ("baseline", base_src)):
                res = run_worker(
                    path, args.repeats, tables[version] if r == 0 else None, args.shapes
                )
                for name, v in res["shapes"].items():
                    points[name] = v["points"]
                    for clock in ("seconds", "wall"):
                        b = best[version, clock]
                        b[name] = min(b.get(name, np.inf), v[clock])
        diffs = compare(tables["new"], tables["baseline"])

    print(
        f"solve_points, exact solver, 121 times, one thread; best of {args.rounds} x "
        f"{args.repeats}; new = {head}{' + uncommitted changes' if dirty else ''}, "
        f"baseline = {commit}"
    )
    print("points/s per core from CPU time (process_time); wall clock in brackets")
    print(
        f"{'shape':>8} {'points':>7} {'baseline pts/s':>17} {'new pts/s':>17} {'speed-up':>9} "
        f"{'target':>7}"
    )
    rows = {}
    for shape in shapes:
        name = "x".join(map(str, shape))
        rate = {k: points[name] / best[k][name] for k in best}
        rows[name] = {
            "points": points[name],
            "baseline_points_per_s": rate["baseline", "seconds"],
            "new_points_per_s": rate["new", "seconds"],
            "baseline_points_per_s_wall": rate["baseline", "wall"],
            "new_points_per_s_wall": rate["new", "wall"],
            "speedup": rate["new", "seconds"] / rate["baseline", "seconds"],
            "target": TARGETS.get(shape, 0),
        }
        cells = [
            f"{rate[v, 'seconds']:>7.0f} ({rate[v, 'wall']:>5.0f})" for v in ("baseline", "new")
        ]
        print(
            f"{name:>8} {points[name]:>7d} {cells[0]:>17} {cells[1]:>17} "
            f"{rows[name]['speedup']:>8.2f}x {TARGETS.get(shape, 0):>7d}"
        )
    print("largest difference new vs baseline, relative (absolute), per table and column:")
    for table, cols in diffs.items():
        shown = ", ".join(f"{k} {r:.1e} ({a:.1e})" for k, (r, a) in cols.items())
        print(f"  {table}: {shown}")
    out = ROOT / "benchmarks" / "out"
    out.mkdir(exist_ok=True)
    report = {"baseline": commit, "new": head, "dirty": bool(dirty), "shapes": rows}
    report["max_relative_difference"] = diffs
    (out / "bench_shard.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
