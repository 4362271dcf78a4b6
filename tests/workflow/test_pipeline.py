"""End-to-end tests of the Snakemake workflow on tiny configs, through the snakemake CLI.

Each test works in a temporary directory (``-s <repo>/Snakefile``, cwd = project dir with
its own config.yaml) with ``--cores 2`` and the default workflow profile, as the README
command does.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from lrsweep import results

pytestmark = [pytest.mark.workflow, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SNAKEMAKE = str(BIN / "snakemake") if (BIN / "snakemake").exists() else "snakemake"
PROFILE = str(ROOT / "workflow/profiles/default")
TABLES = ("runs", "trajectories", "phase", "boundary")

TINY = {
    "plots": False,
    "sweeps": {
        # exact solver, square 4-4-4 and funnel 8-4-4, small lambda x scale grid
        "square": {
            "solver": "exact",
            "shard_size": 12,
            "time": {"t_max": 20.0, "n_points": 41, "spacing": "log"},
            "grid": {"lambda": {"symlog": {"min": 0.1, "max": 30.0, "per_side": 4}},
                     "scale": [0.01, 0.1], "seed": [0, 1], "n_in": [4, 8], "n_out": [4],
                     "width": [4]},
        },
        # simulator at depth 2 and 3; width 5 > n_in = n_out = 4 is skipped for lambda != 0
        "deep": {
            "solver": "gd",
            "lr": 0.01,
            "time": {"t_max": 10.0, "n_points": 11},
            "grid": {"lambda": [-0.5, 0.0, 0.5], "scale": [0.1], "depth": [2, 3],
                     "width": [4, 5], "seed": [0]},
        },
    },
}


def _no_slurm_probe() -> Path:
    """A bin dir whose `scontrol` fails at once.

    Snakemake imports every installed executor plugin; the SLURM plugin then runs
    `scontrol show config` with a 10 s timeout, which every snakemake call pays where
    `sinfo` exists but no controller answers. These tests never submit to SLURM.
    """
    shim = Path(tempfile.mkdtemp(prefix="lrsweep-noslurm-"))
    (shim / "scontrol").write_text("#!/bin/sh\nexit 1\n")
    (shim / "scontrol").chmod(0o755)
    return shim


SHIM = _no_slurm_probe()


def env() -> dict:
    e = dict(os.environ)
    # the `lrsweep` console script, and a fast-failing `scontrol`
    e["PATH"] = os.pathsep.join([str(BIN), str(SHIM), e.get("PATH", "")])
    return e


def smk(project: Path, *args: str, check: bool = True, timeout: float = 240):
    cmd = [SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "--workflow-profile", PROFILE, *args]
    proc = subprocess.run(cmd, cwd=project, env=env(), capture_output=True, text=True,
                          timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def make_project(path: Path, config: dict) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def read(project: Path, sweep: str) -> dict[str, pd.DataFrame]:
    d = project / "results" / sweep
    return dict(zip(TABLES, results.load_sweep(d), strict=True))


def assert_same_tables(a: Path, b: Path) -> None:
    for sweep in TINY["sweeps"]:
        ta, tb = read(a, sweep), read(b, sweep)
        for name in TABLES:
            pd.testing.assert_frame_equal(ta[name], tb[name], check_exact=True, obj=name)


def incomplete(project: Path) -> set[str]:
    """Outputs Snakemake marks as incomplete (its .snakemake/incomplete/<b64 path> files)."""
    d = project / ".snakemake/incomplete"
    names = [f.name for f in d.iterdir() if f.name != "migration_underway"] if d.is_dir() else []
    return {base64.urlsafe_b64decode(n).decode() for n in names}


def solve_jobs(dry_run_output: str) -> list[str]:
    """Shard outputs that a dry run would (re)compute."""
    return re.findall(r"output: (results/[\w-]+/shards/[\w-]+)\.parquet", dry_run_output)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """One complete run of the tiny config (with plots if lrsweep.plots exists)."""
    cfg = {**TINY, "plots": True}
    project = make_project(tmp_path_factory.mktemp("reference"), cfg)
    proc = smk(project, "--cores", "2")
    (project / "stderr.txt").write_text(proc.stderr)
    return project


# ----------------------------------------------------------------------------- e2e


def test_end_to_end_tables(reference):
    err = (reference / "stderr.txt").read_text()
    assert "sweep `square` (exact): 72 points" in err
    assert "sweep `deep` (gd): 12 points" in err and "4 skipped (inadmissible)" in err
    assert "lrsweep results:" in err and "results/square/" in err  # onsuccess
    for sweep in TINY["sweeps"]:
        d = reference / "results" / sweep
        assert (d / "summary.txt").read_text().startswith(f"sweep `{sweep}`")
        logs = list((reference / "logs/solve_shard" / sweep).glob("*.log"))
        assert logs and all("points/s" in log.read_text() for log in logs)
        assert list((d / "benchmarks/solve_shard").glob("*.tsv"))
    deep = read(reference, "deep")["runs"]
    assert deep["status"].value_counts().to_dict() == {"ok": 8, "skipped": 4}
    skipped = deep[deep["status"] == "skipped"]
    assert (skipped["width"] == 5).all() and skipped["reason"].str.len().gt(0).all()
    ok = deep[deep["status"] == "ok"]
    assert ok["weight_change_layers"].map(len).tolist() == ok["depth"].tolist()


def test_physics_in_the_tables(reference):
    phase = read(reference, "square")["phase"]
    assert (phase["n_seeds"] == 2).all() and len(phase) == 9 * 2 * 2
    sq = phase[(phase["n_in"] == 4) & (phase["scale"] == 0.01)].set_index("lambda")
    kd = sq["kernel_distance_mean"]
    # square net: lazy for |lambda| -> infinity, symmetric in lambda <-> -lambda
    for side in (1, -1):
        lams = sorted((lam for lam in kd.index if side * lam >= 1), key=abs)
        assert np.all(np.diff(kd[lams].to_numpy()) < 0), kd
    np.testing.assert_allclose(kd[30.0], kd[-30.0], rtol=1e-6)
    assert kd[30.0] < 1e-3 < 0.05 < kd[0.0]
    # funnel 8-4-4: lambda -> -inf stays rich (the wide input layer must rotate)
    fun = phase[(phase["n_in"] == 8) & (phase["scale"] == 0.01)].set_index("lambda")
    assert fun.loc[-30.0, "kernel_distance_mean"] > 100 * fun.loc[30.0, "kernel_distance_mean"]
    bound = read(reference, "square")["boundary"]
    b_sq = bound[bound["n_in"] == 4]
    np.testing.assert_allclose(b_sq["lambda_neg"], -b_sq["lambda_pos"], rtol=1e-6)
    assert bound.loc[bound["n_in"] == 8, "lambda_neg"].isna().all()
    runs = read(reference, "square")["runs"].set_index(["n_in", "lambda"])
    assert set(runs.loc[(4, 30.0), "regime"]) == set(runs.loc[(4, -30.0), "regime"]) == {"lazy"}
    # the funnel at λ = -30 learns slowly (its wide layer rotates, theory §3.4): its kernel
    # has moved far, but by t_max = 20 it has not fit yet, so it is stalled, not lazy
    slow = runs.loc[(8, -30.0)]
    assert set(slow["regime"]) == {"stalled"} and (slow["kernel_distance"] > 0.1).all()
    assert (slow["fit_fraction"] > 0.5).all()


def test_plots_report_and_nothing_left_to_do(reference):
    if importlib_find("lrsweep.plots"):
        assert (reference / "results/square/plots/phase_kernel_distance.png").is_file()
        smk(reference, "--report", "results/report.html")
        assert "phase_kernel_distance.png" in (reference / "results/report.html").read_text()
    proc = smk(reference, "--cores", "2", "-n")
    assert "Nothing to be done" in proc.stdout + proc.stderr


def importlib_find(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


# ---------------------------------------------------------------------- reliability


def test_same_config_same_bits(reference, tmp_path):
    again = make_project(tmp_path / "again", TINY)
    smk(again, "--cores", "2")
    assert_same_tables(reference, again)
    for sweep in TINY["sweeps"]:
        a = (reference / "results" / sweep / "runs.parquet").read_bytes()
        b = (again / "results" / sweep / "runs.parquet").read_bytes()
        assert a == b


def test_sigkill_then_documented_recovery(reference, tmp_path):
    project = make_project(tmp_path / "killed", TINY)
    cmd = [SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "--workflow-profile", PROFILE,
           "--cores", "1"]
    proc = subprocess.Popen(cmd, cwd=project, env=env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    shards = project / "results/square/shards"
    deadline = time.monotonic() + 120
    written = shards.parent / "trajectories"
    while time.monotonic() < deadline and not list(written.glob("[!_]*.parquet")):
        time.sleep(0.05)
    time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)  # the whole run: snakemake and its running job
    proc.wait()
    # shards Snakemake had recorded as complete (no incomplete marker) must be reused
    in_flight = incomplete(project)
    done_before = {p.name: p.stat().st_mtime_ns for p in shards.glob("[!.]*.parquet")
                   if f"results/square/shards/{p.name}" not in in_flight}
    assert done_before, "no shard finished before the kill"
    assert not (project / "results/square/runs.parquet").exists(), "run finished before kill"
    # The documented recovery: unlock once, then the same command again.
    smk(project, "--unlock")
    smk(project, "--cores", "2")
    assert_same_tables(reference, project)
    for name, mtime in done_before.items():  # finished shards were reused, not recomputed
        assert (shards / name).stat().st_mtime_ns == mtime, name
    assert not list(project.glob("results/*/*.tmp")), "stray temp tables"


def test_changed_grid_reruns_only_affected_shards(reference, tmp_path):
    project = tmp_path / "changed"
    shutil.copytree(reference, project, symlinks=True)
    cfg = yaml.safe_load((project / "config.yaml").read_text())
    # one more lambda value inside the square sweep's grid
    base = results.load_runs(reference / "results/square")["lambda"].unique().tolist()
    cfg["sweeps"]["square"]["grid"]["lambda"] = sorted(base + [0.5])
    (project / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    out = smk(project, "--cores", "2", "-n").stdout
    jobs = solve_jobs(out)
    n_square = len({p.name for p in (project / "results/square/shards").glob("[!.]*.parquet")
                    if "trajectories" not in p.name})
    assert jobs and all(j.startswith("results/square/") for j in jobs)
    assert len(jobs) < n_square, (jobs, n_square)
    # a solver setting of the other sweep reruns that sweep's shards only
    cfg["sweeps"]["deep"]["lr"] = 0.005
    (project / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    jobs = solve_jobs(smk(project, "--cores", "2", "-n").stdout)
    assert {j.split("/")[1] for j in jobs} == {"square", "deep"}
    assert len([j for j in jobs if j.startswith("results/square/")]) < n_square
    smk(project, "--cores", "2")
    runs = results.load_runs(project / "results/square")
    assert len(runs) == 80 and (runs["status"] == "ok").all()


def test_bad_config_stops_before_any_job(tmp_path):
    bad = {"sweeps": {"s": {"grid": {"width": [-3, 4]}}}}
    proc = smk(make_project(tmp_path / "bad", bad), "--cores", "2", check=False)
    assert proc.returncode != 0
    assert "config key `sweeps.s.grid.width` = [-3, 4]: values must be >= 1" in proc.stderr
    unknown = {"sweeps": {"s": {"grdi": {}}}}
    proc = smk(make_project(tmp_path / "unknown", unknown), "--cores", "2", check=False)
    assert proc.returncode != 0 and "'grdi' was unexpected" in proc.stderr
    strict = {"sweeps": {"s": {"on_invalid": "error", "grid": {"lambda": 1.0, "width": 8}}}}
    proc = smk(make_project(tmp_path / "strict", strict), "--cores", "2", check=False)
    assert proc.returncode != 0 and "set `sweeps.s.on_invalid: skip`" in proc.stderr
    assert not (tmp_path / "strict/results").exists()


# ----------------------------------------------------------------------------- lint


def test_lint_is_clean():
    proc = smk(ROOT, "--lint", check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Congratulations, your workflow is in a good condition!" in proc.stdout + proc.stderr


def test_snakefmt_check():
    exe = BIN / "snakefmt"
    if not exe.exists():
        pytest.skip("snakefmt not installed")
    files = [str(ROOT / "Snakefile"), str(ROOT / "workflow/rules")]
    proc = subprocess.run([str(exe), "--check", *files], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_slurm_profile_dry_run(tmp_path):
    pytest.importorskip("snakemake_executor_plugin_slurm")
    project = make_project(tmp_path / "slurm", TINY)
    proc = smk(project, "--profile", str(ROOT / "workflow/profiles/slurm"), "-n")
    out = proc.stdout + proc.stderr
    assert "Using profiles" in out and "solve_shard" in out
