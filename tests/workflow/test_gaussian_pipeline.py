"""Gaussian inits with layer and learning-rate ratios through the snakemake CLI (issue 13)."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from test_pipeline import ROOT, make_project, smk, solve_jobs

from lrsweep import grid, results

pytestmark = [pytest.mark.workflow, pytest.mark.slow]

CFG = {
    "plots": True,
    "sweeps": {
        "gauss": {
            "solver": "flow",
            "init": {"kind": "gaussian", "preset": "he"},
            "time": {"t_max": 20.0, "n_points": 21, "spacing": "log"},
            "grid": {
                "scale": [0.3, 1.5],
                "layer_ratio": [0.25, 1.0, 4.0],
                "lr_ratio": [1.0, 4.0],
                "seed": [0, 1],
                "n_in": [4, 8],
                "n_out": [4],
            },
        }
    },
}


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    project = make_project(tmp_path_factory.mktemp("gauss"), CFG)
    smk(project, "--cores", "2")
    return project


def test_gaussian_sweep_tables_and_plots(project):
    d = project / "results/gauss"
    runs = results.load_runs(d)
    assert len(runs) == 2 * 3 * 2 * 2 * 2 and (runs.status == "ok").all()
    assert runs["lambda"].isna().all() and set(runs.layer_ratio) == {0.25, 1.0, 4.0}
    assert (runs.prediction_status == "ok").all()  # width 4 = min(n_in, n_out): admissible
    assert runs.balance_drift.max() <= 1e-6  # the rate-weighted imbalance is conserved
    # the ratio moves the measured imbalance through 0 at every multiplier and seed
    for _, line in runs.groupby(["n_in", "lr_ratio", "scale", "seed"]):
        lam = line.sort_values("layer_ratio").lambda_eff.to_numpy()
        assert np.all(np.diff(lam) > 0)
    phase = results.load_phase(d)
    assert len(phase) == 2 * 3 * 2 * 2 and (phase.n_seeds == 2).all()
    assert {"lambda_eff_mean", "kernel_distance_prediction_error_mean"} <= set(phase.columns)
    curves = results.load_trajectories(d, layer_ratio=4.0, lr_ratio=4.0, n_in=8)
    assert curves.point_id.nunique() == 4 and (curves.layer_ratio == 4.0).all()
    for name in ("phase_kernel_distance", "trajectories"):
        assert (d / "plots" / f"{name}.png").stat().st_size > 10_000
    summary = (d / "summary.txt").read_text()
    assert "rows: layer_ratio" in summary and "lr_ratio=4" in summary


def test_gaussian_sweep_is_complete(project):
    """Nothing left to do after the run (bit-for-bit reruns: tests/workflow/test_pipeline.py)."""
    assert not solve_jobs(smk(project, "--cores", "2", "-n").stdout)


def test_the_readme_example_config_plans():
    cfg = yaml.safe_load((ROOT / "workflow/examples/standard_inits.yaml").read_text())
    plan = grid.plan(cfg)["standard_inits"]
    assert plan.n_points == 784 and plan.settings["init"]["kind"] == "gaussian"
    assert np.unique(plan.points["point_id"]).size == plan.n_points
