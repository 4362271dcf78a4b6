"""Failures are loud, config errors are one line, and a --configfile runs exactly its plan.

Through the snakemake CLI on tiny configs, as the README's commands run (issue 9).
"""

from __future__ import annotations

import subprocess

import pandas as pd
import pytest
import yaml
from test_pipeline import BIN, env, make_project, smk, solve_jobs

from lrsweep import results

pytestmark = [pytest.mark.workflow, pytest.mark.slow]

GOOD = {
    "solver": "exact",
    "time": {"t_max": 10.0, "n_points": 11},
    "grid": {"lambda": [0.0, 2.0], "scale": [0.1]},
}
DIVERGING = {
    "solver": "gd",
    "lr": 5.0,
    "time": {"t_max": 100.0, "n_points": 5},
    "grid": {"lambda": [0.0, 1.0], "scale": [1.0], "width": [3], "n_in": [3], "n_out": [3]},
}


def lrsweep(project, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "lrsweep"), *args], cwd=project, env=env(),
                          capture_output=True, text=True, timeout=120)


def test_a_sweep_without_ok_points_fails_the_run_and_keeps_its_table(tmp_path):
    project = make_project(tmp_path / "p", {"plots": False, "sweeps": {"good": GOOD,
                                                                        "bad": DIVERGING}})
    proc = smk(project, "--cores", "2", check=False)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "sweep `bad`: 2 points: ok 0, failed 2, skipped 0" in out
    assert "gradient descent diverged" in out and "no point is ok" in out
    assert "set `allow_failures: true` for sweep `bad`" in out
    # nothing is lost: the failing sweep's table is there, with the reason of every point
    runs = results.load_runs(project / "results/bad")
    assert (runs["status"] == "failed").all() and runs["reason"].str.len().gt(0).all()
    assert (project / "results/good/status.txt").is_file()

    cfg = yaml.safe_load((project / "config.yaml").read_text())
    cfg["sweeps"]["bad"]["allow_failures"] = True
    (project / "config.yaml").write_text(yaml.safe_dump(cfg))
    proc = smk(project, "--cores", "2")
    # the end-of-run message counts the points of every sweep
    assert "results/good/  sweep `good`: 2 points: ok 2, failed 0, skipped 0" in proc.stderr
    assert "results/bad/  sweep `bad`: 2 points: ok 0, failed 2" in proc.stderr


@pytest.mark.parametrize(
    "sweep",
    [
        {"grid": {"lambda": [0.0]}, "bogus": 1},
        {"time": {"t_max": 0}},
        {"solver": "exact2"},
        {"grid": {"width": [100000000000000000000]}},
        {"grid": {"seed": [-1]}},
    ],
)
def test_snakemake_shows_the_one_line_of_check_config(tmp_path, sweep):
    project = make_project(tmp_path / "p", {"sweeps": {"s": sweep}})
    expected = lrsweep(project, "check-config").stderr.strip()
    assert expected.startswith("Error: config key `sweeps.s") and "\n" not in expected
    proc = smk(project, "-n", check=False)
    assert proc.returncode != 0
    out = (proc.stdout + proc.stderr).strip()
    assert f"invalid config: {expected.removeprefix('Error: ')}" in out
    # no schema dump: the message plus Snakemake's own framing (profile note, file, line)
    assert len(out.splitlines()) <= 4, out


def test_a_configfile_replaces_config_yaml_and_run_selects_sweeps(tmp_path):
    project = make_project(tmp_path / "p", {"sweeps": {"default_a": GOOD, "default_b": GOOD}})
    (project / "mine.yaml").write_text(yaml.safe_dump({"sweeps": {"mine": GOOD}}))
    proc = smk(project, "-n", "--configfile", "mine.yaml")
    planned = [ln.split("`")[1] for ln in (proc.stdout + proc.stderr).splitlines()
               if ln.startswith("sweep `")]
    assert planned == ["mine"]
    check = lrsweep(project, "check-config", "mine.yaml").stdout
    assert [ln.split("`")[1] for ln in check.splitlines() if ln.startswith("sweep `")] == planned

    proc = smk(project, "-n", "--config", "run=[default_b]")
    planned = [ln.split("`")[1] for ln in (proc.stdout + proc.stderr).splitlines()
               if ln.startswith("sweep `")]
    assert planned == ["default_b"]
    assert "results/default_a" not in proc.stdout

    proc = smk(project, "-n", "--config", "run=[nope]", check=False)
    assert proc.returncode != 0
    assert "config key `run` names ['nope']" in proc.stdout + proc.stderr


def test_a_corrupt_shard_is_named_and_one_rerun_solves_exactly_it(tmp_path):
    project = make_project(tmp_path / "p", {"plots": False, "sweeps": {
        "good": {**GOOD, "shard_size": 2, "grid": {"lambda": [-2.0, 0.0, 2.0],
                                                    "scale": [0.1, 0.2], "seed": [0, 1]}}}})
    smk(project, "--cores", "2")
    before = {t: results.load_runs(project / "results/good") for t in ("runs",)}
    curves = results.load_trajectories(project / "results/good")
    files = sorted((project / "results/good/trajectories").glob("[!_]*.parquet"))
    victim = files[1]
    victim.write_bytes(victim.read_bytes()[:100])  # truncated
    proc = smk(project, "--cores", "2", check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert f"shard file results/good/trajectories/{victim.name} is truncated or corrupt" in out
    assert "run the same snakemake command again to solve exactly that shard" in out
    proc = smk(project, "--cores", "2")  # the documented recovery: the same command
    solved = solve_jobs(proc.stdout + proc.stderr)
    assert solved == [f"results/good/shards/{victim.stem}"]
    pd.testing.assert_frame_equal(results.load_runs(project / "results/good"), before["runs"])
    pd.testing.assert_frame_equal(results.load_trajectories(project / "results/good"), curves)
