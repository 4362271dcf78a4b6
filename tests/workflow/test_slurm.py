"""The cluster path on a real SLURM scheduler (issue 6).

Needs a running SLURM: `.ci/run` starts a one-node cluster with
`workflow/scripts/local-slurm.sh up` when it runs as root on Debian; elsewhere these tests
skip with the reason. The sweep runs through `--profile workflow/profiles/slurm` with only
the overrides a scheduler without accounting database needs (status via squeue, fast
polling) and a group size that gives several SLURM jobs.

One flow, because every SLURM round trip costs tens of seconds:
1. a shard job is made to fail on the cluster (fault injected through the environment,
   which sbatch exports to the job): the workflow fails and the job's error is in its log;
2. after the fix, the rerun resumes: the SLURM jobs that had finished are not redone;
3. the final tables equal those of a local `--cores 2` run of the same config, bit for bit.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from lrsweep import grid

pytestmark = [pytest.mark.slurm, pytest.mark.workflow, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SNAKEMAKE = str(BIN / "snakemake")

# exact solver (depth 2) and gradient descent (depth 3): 8 shards in all
CONFIG = {
    "plots": False,
    "sweeps": {
        "tiny": {
            "solver": "exact",
            "shard_size": 6,
            "time": {"t_max": 10.0, "n_points": 21, "spacing": "log"},
            "grid": {"lambda": [-3.0, -0.3, 0.0, 0.3, 3.0], "scale": [0.01, 0.1],
                     "seed": [0, 1], "n_in": [3], "n_out": [3], "width": [3]},
        },
        "deep": {
            "solver": "gd",
            "lr": 0.02,
            "shard_size": 2,
            "time": {"t_max": 4.0, "n_points": 5},
            "grid": {"lambda": [0.0, 0.5], "scale": [0.1], "depth": [3], "width": [3],
                     "seed": [0, 1], "n_in": [3], "n_out": [3]},
        },
    },
}

# the local scheduler has no accounting database: status through squeue, fast polling
SLURM_OVERRIDES = [
    "--slurm-status-command", "squeue",
    "--slurm-init-seconds-before-status-checks", "2",
    "--seconds-between-status-checks", "2",
    "--latency-wait", "5",
    "--jobs", "4",
    "--group-components", "solve=2",
]


def _slurm_running() -> str | None:
    if not shutil.which("sinfo"):
        return "SLURM is not installed (run `workflow/scripts/local-slurm.sh up` as root)"
    ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=30)
    if ping.returncode != 0 or "UP" not in ping.stdout:
        return "no SLURM controller answers `scontrol ping` (start one with local-slurm.sh up)"
    try:
        import snakemake_executor_plugin_slurm  # noqa: F401
    except ImportError:
        return "snakemake-executor-plugin-slurm is missing (pip install -e '.[slurm]')"
    return None


def _run(project: Path, *args: str, extra_env: dict | None = None, timeout: float = 300):
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra_env or {})
    cmd = [SNAKEMAKE, "-s", str(ROOT / "Snakefile"),
           "--workflow-profile", str(ROOT / "workflow/profiles/default"), *args]
    return subprocess.run(cmd, cwd=project, env=env, capture_output=True, text=True,
                          timeout=timeout)


def _project(path: Path) -> Path:
    path.mkdir()
    (path / "config.yaml").write_text(yaml.safe_dump(CONFIG, sort_keys=False))
    return path


def _tables(project: Path) -> dict[str, pd.DataFrame]:
    return {
        f"{sweep}/{name}": pd.read_parquet(project / "results" / sweep / f"{name}.parquet")
        for sweep in CONFIG["sweeps"]
        for name in ("runs", "trajectories", "phase")
    }


@pytest.fixture(scope="module")
def slurm_available():
    reason = _slurm_running()
    if reason:
        pytest.skip(reason)


def test_sweep_on_slurm_fails_visibly_resumes_and_matches_local(tmp_path, slurm_available):
    plan = grid.plan(grid.validate_config(CONFIG))
    shards = {sweep: list(p.shards) for sweep, p in plan.items()}
    assert len(shards["tiny"]) >= 3 and len(shards["deep"]) >= 2
    victim = f"tiny/{shards['tiny'][-1]}"

    cluster = _project(tmp_path / "slurm")
    slurm = ["--profile", str(ROOT / "workflow/profiles/slurm"), *SLURM_OVERRIDES]

    # 1. one shard job fails on the cluster: the workflow fails and says why
    failed = _run(cluster, *slurm, extra_env={"LRSWEEP_INJECT_FAILURE": victim})
    assert failed.returncode != 0, failed.stdout + failed.stderr
    slurm_logs = list((cluster / ".snakemake" / "slurm_logs").rglob("*.log"))
    assert slurm_logs, "no SLURM job logs: did the jobs run through sbatch?"
    job_logs = list((cluster / "logs" / "solve_shard").rglob("*.log"))
    messages = "\n".join(p.read_text() for p in slurm_logs + job_logs)
    assert f"injected failure in shard {victim}" in messages
    assert "Error in group solve" in failed.stdout + failed.stderr
    done = {p: p.stat().st_mtime_ns
            for p in (cluster / "results").rglob("shards/*.parquet")}
    assert done, "no SLURM job finished before the failure"
    assert not (cluster / "results" / "tiny" / "shards" / f"{shards['tiny'][-1]}.parquet").exists()

    # 2. after the fix the rerun resumes: finished shards are reused, not recomputed
    resumed = _run(cluster, *slurm)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    for path, mtime in done.items():
        assert path.stat().st_mtime_ns == mtime, f"{path.name} was recomputed"

    # 3. the cluster's tables equal a local run's, bit for bit
    local = _project(tmp_path / "local")
    ran = _run(local, "--cores", "2")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    here, there = _tables(local), _tables(cluster)
    for name, table in here.items():
        pd.testing.assert_frame_equal(there[name], table, check_exact=True, obj=name)
    assert (here["tiny/runs"]["status"] == "ok").all()
