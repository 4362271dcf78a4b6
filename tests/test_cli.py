"""Tests of the ``lrsweep`` command line: help, solve, check-config, shards, show, plot."""

from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pytest
import yaml

from lrsweep import io
from lrsweep.cli import _parser, main

COMMANDS = ["solve", "check-config", "run-shard", "aggregate", "show", "status", "plot"]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_help_ends_with_an_example():
    assert _parser().format_help().rstrip().splitlines()[-2:] == [
        "Example:", "  lrsweep solve --n-in 4 --n-hidden 4 --n-out 4 --lam 2 --scale 0.1"]
    subs = _parser()._subparsers._group_actions[0].choices  # noqa: SLF001
    assert sorted(subs) == sorted(COMMANDS)
    for name, sub in subs.items():
        lines = sub.format_help().rstrip().splitlines()
        assert lines[-2] == "Example:" and lines[-1].startswith(f"  lrsweep {name}"), name


def test_console_script_help():
    exe = shutil.which("lrsweep")
    if exe is None:
        pytest.skip("lrsweep console script not installed")
    out = subprocess.run([exe, "--help"], capture_output=True, text=True, check=True).stdout
    assert "Example:" in out


def test_solve_summary_and_trajectory(capsys, tmp_path):
    out_file = tmp_path / "traj.parquet"
    code, out, err = run(capsys, "solve", "--n-in", "4", "--n-hidden", "4", "--n-out", "4",
                         "--lam", "2", "--scale", "0.1", "--out", str(out_file))
    assert code == 0, err
    assert out.startswith("exact solver, N_i=4 N_h=4 N_o=4 L=2, lambda=2, scale=0.1")
    for label in ("final loss", "kernel distance S(0, t_max)", "time to fit 90% (t/tau)",
                  "regime"):
        assert f"  {label}" in out
    traj = io.read_table(out_file, io.TRAJECTORIES_SCHEMA)
    assert traj.num_rows == 201
    assert np.all(np.diff(traj.column("loss").to_numpy()) <= 1e-12)


def test_solve_deep_uses_the_simulator(capsys):
    code, out, err = run(capsys, "solve", "--depth", "3", "--lam", "0.5", "--scale", "0.3",
                         "--n-in", "2", "--n-hidden", "2", "--n-out", "2", "--t-max", "10",
                         "--n-points", "11")
    assert code == 0, err
    assert out.startswith("flow solver") and "relative weight change" in out


def test_solve_errors_are_one_line(capsys):
    code, out, err = run(capsys, "solve", "--lam", "1", "--n-hidden", "8")
    assert code == 1 and out == ""
    assert err.startswith("Error: inadmissible run: `lam`=1 > 0 needs widths non-decreasing")
    assert err.count("\n") == 1
    code, _, err = run(capsys, "solve", "--n-hidden", "0")
    assert code == 1 and err == "Error: `--n-hidden` = 0: values must be >= 1 (got 0)\n"
    code, _, err = run(capsys, "solve", "--depth", "3", "--solver", "exact")
    assert code == 1 and "solver 'exact' needs depth 2" in err
    # out-of-range integers: one line, not an OverflowError traceback
    code, _, err = run(capsys, "solve", "--seed", "100000000000000000000")
    assert code == 1 and err == (
        "Error: `--seed` = 100000000000000000000: values must be <= 9223372036854775807 "
        "(got 100000000000000000000)\n"
    )
    code, _, err = run(capsys, "solve", "--n-hidden", str(10**20))
    assert code == 1 and err.startswith("Error: `--n-hidden` = 100000000000000000000: values")


def test_solve_refuses_an_output_in_a_missing_directory(capsys, tmp_path):
    target = tmp_path / "missing" / "dir" / "x.parquet"
    code, out, err = run(capsys, "solve", "--out", str(target))
    assert code == 1 and out == "" and not (tmp_path / "missing").exists()
    assert err == (
        f"Error: `--out` {target}: directory {target.parent} does not exist; create it first\n"
    )


def test_solve_reports_what_float64_cannot_do(capsys):
    # the exact solver carries λ exactly: the same S(0, t_max) at a scale where the weights
    # cannot hold λ = 2 any more (theory §7) ...
    base = ["solve", "--lam", "2", "--t-max", "20"]
    code, small, _ = run(capsys, *base, "--scale", "0.1")
    code, huge, _ = run(capsys, *base, "--scale", "1e20")
    assert code == 0

    def value(out, label):
        return float(next(ln for ln in out.splitlines() if label in ln).split()[-1])

    assert value(huge, "kernel distance S(0, t_max)") == pytest.approx(
        value(small, "kernel distance S(0, t_max)"), rel=1e-8
    )
    # ... which the simulators refuse, and beyond float64's range nobody computes
    code, _, err = run(capsys, *base, "--scale", "1e20", "--solver", "flow")
    assert code == 1 and "lambda is not resolved by float64 weights at this scale" in err
    code, _, err = run(capsys, "solve", "--lam", "0", "--scale", "1e150")
    assert code == 1 and "weight scale ‖W_l‖²+‖W_(l+1)‖² = 8e+150 is above 1e+100" in err
    # a run that did not learn is stalled, not lazy
    code, out, _ = run(capsys, "solve", "--lam", "0", "--scale", "0")
    assert code == 0 and out.rstrip().endswith("regime                         stalled")


@pytest.fixture
def project(tmp_path, monkeypatch):
    cfg = {"sweeps": {"tiny": {"shard_size": 3, "time": {"t_max": 10.0, "n_points": 11},
                               "grid": {"lambda": [-2.0, 0.0, 2.0], "seed": [0, 1],
                                        "width": [4, 6]}}}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_check_config(capsys, project):
    code, out, _ = run(capsys, "check-config")
    assert code == 0
    assert "sweep `tiny` (exact): 12 points (2 width x 3 lambda x 2 seed), 8 to solve" in out
    assert "4 skipped (inadmissible)" in out and out.rstrip().endswith("OK (1 sweep(s) to run)")
    (project / "bad.yaml").write_text("sweeps: {tiny: {grid: {width: -1}}}")
    code, _, err = run(capsys, "check-config", "bad.yaml")
    assert code == 1
    assert err == "Error: config key `sweeps.tiny.grid.width` = -1: values must be >= 1 (got -1)\n"


def test_run_shard_aggregate_show(capsys, project):
    code, out, _ = run(capsys, "run-shard", "--sweep", "tiny")
    shards = [ln for ln in out.splitlines() if ln.startswith("exact-")]
    assert code == 0 and len(shards) >= 2
    code, out, _ = run(capsys, "run-shard", "--sweep", "tiny", "--all")
    assert code == 0 and out.count("status counts") == len(shards)
    code, out, err = run(capsys, "aggregate", "--sweep", "tiny")
    assert code == 0, err
    assert "12 runs" in out and (project / "results/tiny/phase.parquet").is_file()
    code, out, _ = run(capsys, "show", "results/tiny", "--out", "summary.txt")
    assert code == 0 and "lazy/rich boundary" in out
    assert (project / "summary.txt").read_text().strip() == out.strip()
    code, _, err = run(capsys, "show", "results/none")
    assert code == 1 and err.startswith("Error: table `results/none/runs.parquet` does not exist")
    code, _, err = run(capsys, "run-shard", "--sweep", "nope")
    assert code == 1 and "no sweep named ['nope']" in err
    code, out, _ = run(capsys, "status", "results/tiny", "--out", "status.txt")
    assert code == 0 and out.startswith("sweep `tiny`: 12 points: ok 8, failed 0, skipped 4")
    assert (project / "status.txt").read_text() == out


def test_status_fails_a_sweep_without_ok_points(capsys, project):
    cfg = {"sweeps": {"tiny": {"grid": {"lambda": [1.0], "width": [8]}}}}  # all inadmissible
    (project / "config.yaml").write_text(yaml.safe_dump(cfg))
    run(capsys, "run-shard", "--sweep", "tiny", "--all")
    assert run(capsys, "aggregate", "--sweep", "tiny")[0] == 0
    code, _, err = run(capsys, "status", "results/tiny")
    assert code == 1 and err.count("\n") == 1
    assert "ok 0, failed 0, skipped 1" in err and "set `allow_failures: true`" in err
    code, out, _ = run(capsys, "status", "results/tiny", "--allow-failures")
    assert code == 0 and "ok 0" in out


def test_check_config_names_the_sweeps_run_leaves_out(capsys, project):
    cfg = yaml.safe_load((project / "config.yaml").read_text())
    cfg["sweeps"]["other"] = {"grid": {"lambda": [0.0]}}
    cfg["run"] = ["other"]
    (project / "config.yaml").write_text(yaml.safe_dump(cfg))
    code, out, _ = run(capsys, "check-config")
    assert code == 0 and "sweep `tiny`" not in out and "sweep `other`" in out
    assert out.rstrip().endswith("OK (1 sweep(s) to run; not run (config key `run`): tiny)")


def test_plot(capsys, project):
    pytest.importorskip("lrsweep.plots")
    run(capsys, "run-shard", "--sweep", "tiny", "--all")
    run(capsys, "aggregate", "--sweep", "tiny")
    code, out, err = run(capsys, "plot", "results/tiny", "--threshold", "0.01")
    assert code == 0, err
    assert "results/tiny/plots/phase_kernel_distance.png" in out


def test_module_entry_point():
    out = subprocess.run([sys.executable, "-m", "lrsweep.cli", "--version"], capture_output=True,
                         text=True, check=True).stdout
    assert out.startswith("lrsweep ")
