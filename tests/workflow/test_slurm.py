"""The cluster path on a real SLURM scheduler (issue 6).

Needs a running SLURM: `.ci/run` starts a one-node cluster with
`workflow/scripts/local-slurm.sh up` when it runs as root on Debian; elsewhere these tests
skip with the reason. The sweep runs through `--profile workflow/profiles/slurm` with only
the overrides a scheduler without accounting database needs (status via squeue, fast
polling) and a group size computed from the shard count, as the README tells users to.

The solver jobs go to SLURM in groups (`groups` / `group-components`), not as SLURM job
arrays: with snakemake-executor-plugin-slurm 2.6.0-2.8.0 a failing or late first array task
fails every other task of its array (upstream #447), see README "Running on a cluster".
A wrapper named `sbatch` first on PATH counts the submissions.

One flow, because every SLURM round trip costs seconds:
1. a shard job is made to fail on the cluster (fault injected through the environment,
   which sbatch exports to the job): the workflow fails and the job's error is in its log;
2. after the fix, the rerun resumes: only the failed group is resubmitted, the shards of
   the groups that had finished are not redone;
3. the final tables equal those of a local `--cores 2` run of the same config, bit for bit;
   one sbatch call per group of shards and per aggregate / summary job, no arrays.
"""

from __future__ import annotations

import math
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from lrsweep import grid, results

pytestmark = [pytest.mark.slurm, pytest.mark.workflow, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SNAKEMAKE = str(BIN / "snakemake")

# exact solver (depth 2): 31 shards of 1-9 points; gradient descent (depth 3): 2 shards
CONFIG = {
    "plots": False,
    "sweeps": {
        "wide": {
            "solver": "exact",
            "shard_size": 6,
            "time": {"t_max": 10.0, "n_points": 21, "spacing": "log"},
            "grid": {"lambda": [-3.0, -1.0, -0.5, -0.3, -0.1, 0.0, 0.1, 0.3, 1.0, 3.0],
                     "scale": [0.01, 0.1, 1.0], "seed": [0, 1],
                     "n_in": [2, 3], "n_out": [2, 3], "width": [3]},
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
# SLURM jobs wanted for the shards; the group size follows from the shard count
GROUP_JOBS = 6

# the local scheduler has no accounting database: status through squeue, fast polling;
# `--cores 1` as the README says (width of a group job)
SLURM_OVERRIDES = [
    "--slurm-status-command", "squeue",
    "--slurm-init-seconds-before-status-checks", "2",
    "--seconds-between-status-checks", "2",
    "--latency-wait", "5",
    "--cores", "1",
    "--jobs", str(GROUP_JOBS + 2),
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
    env["PATH"] = os.pathsep.join([str(project.parent / "bin"), str(BIN), env.get("PATH", "")])
    env.update(extra_env or {})
    cmd = [SNAKEMAKE, "-s", str(ROOT / "Snakefile"),
           "--workflow-profile", str(ROOT / "workflow/profiles/default"), *args]
    return subprocess.run(cmd, cwd=project, env=env, capture_output=True, text=True,
                          timeout=timeout)


def _count_sbatch(tmp_path: Path) -> Path:
    """Put an `sbatch` first on PATH that logs each call (one line) and runs the real one."""
    real, log = shutil.which("sbatch"), tmp_path / "sbatch.log"
    assert real, "sbatch not found"
    (tmp_path / "bin").mkdir()
    wrapper = tmp_path / "bin" / "sbatch"
    wrapper.write_text(
        "#!/bin/sh\n"
        'line="sbatch"\n'
        'for a in "$@"; do case "$a" in --array*|--comment*|rule_*) line="$line $a";; esac; done\n'
        f'echo "$line" >> {shlex.quote(str(log))}\n'
        f'exec {shlex.quote(real)} "$@"\n'
    )
    wrapper.chmod(0o755)
    return log


def _calls(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def _solver_calls(calls: list[str]) -> list[str]:
    """The submissions of shard groups (the others are one per rule job)."""
    return [c for c in calls if "aggregate_sweep" not in c and "summarize_sweep" not in c]


def _project(path: Path) -> Path:
    path.mkdir()
    (path / "config.yaml").write_text(yaml.safe_dump(CONFIG, sort_keys=False))
    return path


def _tables(project: Path) -> dict[str, pd.DataFrame]:
    """Every table of every sweep (the trajectory dataset read whole, by point id)."""
    return {
        f"{sweep}/{name}": table
        for sweep in CONFIG["sweeps"]
        for name, table in results.load_sweep(project / "results" / sweep)._asdict().items()
    }


@pytest.fixture(scope="module")
def slurm_available():
    reason = _slurm_running()
    if reason:
        pytest.skip(reason)


def test_sweep_on_slurm_fails_visibly_resumes_and_matches_local(tmp_path, slurm_available):
    plan = grid.plan(grid.validate_config(CONFIG))
    shards = {sweep: list(p.shards) for sweep, p in plan.items()}
    n_shards = sum(map(len, shards.values()))
    assert len(shards["wide"]) >= 30 and len(shards["deep"]) >= 2
    group_size = math.ceil(n_shards / GROUP_JOBS)
    n_groups = math.ceil(n_shards / group_size)
    victim = f"wide/{shards['wide'][-1]}"

    sbatch_log = _count_sbatch(tmp_path)
    cluster = _project(tmp_path / "slurm")
    slurm = ["--profile", str(ROOT / "workflow/profiles/slurm"), *SLURM_OVERRIDES,
             "--group-components", f"solve={group_size}"]

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
    assert not (cluster / "results" / "wide" / "shards" / f"{shards['wide'][-1]}.parquet").exists()
    # every group of shards went out at once, one sbatch call each
    first = _calls(sbatch_log)
    assert len(_solver_calls(first)) == n_groups, first

    # 2. after the fix the rerun resumes: only the failed group is resubmitted, the
    #    shards of the other groups are reused, not recomputed
    resumed = _run(cluster, *slurm)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    for path, mtime in done.items():
        assert path.stat().st_mtime_ns == mtime, f"{path.name} was recomputed"
    redone = n_shards - len(done) // 2  # two files per shard
    assert 1 <= redone <= group_size, f"{redone} shards redone, groups of {group_size}"

    # 3. the cluster's tables equal a local run's, bit for bit
    local = _project(tmp_path / "local")
    ran = _run(local, "--cores", "2")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    here, there = _tables(local), _tables(cluster)
    for name, table in here.items():
        pd.testing.assert_frame_equal(there[name], table, check_exact=True, obj=name)
    wide = plan["wide"]
    assert (here["wide/runs"]["status"] == "ok").sum() == wide.n_points - wide.n_skipped

    # sbatch calls (= SLURM jobs, no arrays): the groups, the resubmitted group, and one
    # aggregate and one summary job per sweep
    calls = _calls(sbatch_log)
    assert not [c for c in calls if "--array" in c], calls
    solve_calls = _solver_calls(calls)
    assert all("solve" in c for c in solve_calls), solve_calls
    assert len(solve_calls) == n_groups + 1, calls
    for rule in ("aggregate_sweep", "summarize_sweep"):
        assert len([c for c in calls if rule in c]) == len(CONFIG["sweeps"]), calls
    assert len(calls) == n_groups + 1 + 2 * len(CONFIG["sweeps"])
