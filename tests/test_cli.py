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
