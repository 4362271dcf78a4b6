"""A search sweep through the snakemake CLI: tables, resume, determinism, results API, plots."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from test_pipeline import make_project, smk, solve_jobs

from lrsweep import results

pytestmark = [pytest.mark.workflow, pytest.mark.slow]

CFG = {
    "plots": True,
    "sweeps": {
        "edge": {
            "shard_size": 4,
            "time": {"t_max": 20.0, "n_points": 31, "spacing": "log"},
            "grid": {
                "lambda": {"search": {"min": 0.1, "max": 50.0, "per_side": 6}},
                "scale": [0.05, 0.2],
                "seed": [0, 1],
                "n_in": [4, 8],
                "n_out": [4],
                "width": [4, 6],
            },
        }
    },
}


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    project = make_project(tmp_path_factory.mktemp("search"), CFG)
    smk(project, "--cores", "2")
    return project


def test_search_sweep_tables(project):
    d = project / "results/edge"
    crossings = results.load_crossings(d)
    # 2 archs x 2 widths x 2 scales x 2 seeds lines; width 6 > n_out 4 leaves λ > 0 out
    assert set(crossings["status"]) <= {"converged", "none", "skipped"}
    skipped = crossings[crossings["status"] == "skipped"]
    # width 6: wider than n_out = 4 (no λ > 0) and, for n_in = 4, than n_in (no λ < 0)
    assert (skipped["width"] == 6).all() and len(skipped) == 12
    assert set(skipped.loc[skipped["n_in"] == 8, "side"]) == {"positive"}
    assert skipped["reason"].str.contains("needs widths").all()
    sq = crossings[(crossings.n_in == 4) & (crossings.width == 4)
                   & (crossings.status == "converged")]
    assert set(sq["side"]) == {"negative", "positive"}
    np.testing.assert_allclose(np.abs(sq["lambda_star"]), 4.19, rtol=0.02)
    runs = results.load_runs(d)
    assert set(runs["role"]) == {"bracket", "iterate"} and (runs["status"] == "ok").all()
    boundary = results.load_boundary(d)
    assert {"lambda_star_mean", "lambda_star_std", "n_lines", "side"} <= set(boundary.columns)
    phase = results.load_phase(d)  # over the bracket points: 12 λ per cell
    assert phase.groupby(["n_in", "width", "scale"]).size().max() == 12
    curves = results.load_trajectories(d, role="iterate", n_in=4, width=4)
    assert curves["point_id"].nunique() == runs.query("role == 'iterate' and n_in == 4 "
                                                      "and width == 4").shape[0]
    assert (project / "results/edge/plots/phase_kernel_distance.png").is_file()
    assert "lazy/rich boundary (searched)" in (d / "summary.txt").read_text()


def test_search_sweep_resumes_and_is_deterministic(project, tmp_path):
    out = smk(project, "--cores", "2", "-n").stdout
    assert not solve_jobs(out)  # nothing left to do
    again = make_project(tmp_path / "again", CFG)
    smk(again, "--cores", "2", "--config", "plots=False")
    for table in ("crossings.parquet", "runs.parquet", "boundary.parquet"):
        a = (project / "results/edge" / table).read_bytes()
        b = (again / "results/edge" / table).read_bytes()
        assert a == b, table
    # a lost shard (and the tables built from it) is redone alone
    victim = next((again / "results/edge/shards").glob("*.crossings.parquet"))
    victim.unlink()
    (again / "results/edge/runs.parquet").unlink()
    jobs = solve_jobs(smk(again, "--cores", "2", "-n").stdout)
    assert jobs == [f"results/edge/shards/{victim.name.removesuffix('.crossings.parquet')}"]
    shutil.rmtree(again)
