"""Tests of lrsweep.results: filters, phase aggregation, boundary, aggregate, describe."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lrsweep import io, results
from lrsweep.grid import plan
from lrsweep.merge import merge_sweep, solve_and_merge
from lrsweep.paths import SweepPaths


def runs_frame() -> pd.DataFrame:
    rows = []
    for lam in (-1.0, 0.0, 1.0):
        for seed in (0, 1, 2):
            rows.append({"sweep": "s", "solver": "exact", "n_in": 4, "n_out": 4, "width": 4,
                         "depth": 2, "lambda": lam, "scale": 0.1, "seed": seed,
                         "status": "failed" if (lam == 1.0 and seed == 2) else "ok",
                         "kernel_distance": 0.1 * (1 + seed) * (2 - abs(lam)),
                         "time_to_fit_90": np.nan if seed == 0 else float(seed),
                         "final_loss": 1e-9, "ntk_change": 0.5, "lambda_eff": lam,
                         "kernel_distance_predicted": np.nan,
                         "kernel_distance_prediction_error": np.nan})
            r = rows[-1]
            r["regime"] = ("" if r["status"] != "ok" else "stalled" if seed == 0
                           else "lazy" if r["kernel_distance"] <= 0.2 else "rich")
    rows.append({**rows[0], "lambda": 2.0, "status": "skipped", "kernel_distance": np.nan,
                 "regime": ""})
    return pd.DataFrame(rows)


def test_filter_frame():
    df = runs_frame()
    assert len(results.filter_frame(df, lambda_=0.0)) == 3
    assert len(results.filter_frame(df, where={"lambda": 1.0 + 1e-12})) == 3
    assert len(results.filter_frame(df, seed=[0, 1], status="ok")) == 6
    assert len(results.filter_frame(df, kernel_distance=lambda s: s > 0.35)) == 2
    with pytest.raises(ValueError, match="cannot filter on `lam`: no such column"):
        results.filter_frame(df, lam=0.0)


def test_phase_table():
    ph = results.phase_table(runs_frame())
    assert list(ph.columns) == io.PHASE_SCHEMA.names
    assert len(ph) == 4 and ph["lambda"].tolist() == [-1.0, 0.0, 1.0, 2.0]
    cell = ph[ph["lambda"] == 0.0].iloc[0]
    assert cell["n_seeds"] == 3
    # seed 0 stalled; seeds 1, 2 have S = 0.4, 0.6 (rich)
    assert (cell["n_fit"], cell["n_stalled"], cell["n_rich"], cell["n_lazy"]) == (2, 1, 2, 0)
    lazy = ph[ph["lambda"] == -1.0].iloc[0]  # S = 0.1, 0.2, 0.3: stalled, lazy, rich
    assert (lazy["n_stalled"], lazy["n_lazy"], lazy["n_rich"]) == (1, 1, 1)
    np.testing.assert_allclose(cell["kernel_distance_mean"], 0.4)
    np.testing.assert_allclose(cell["kernel_distance_std"], 0.2)
    np.testing.assert_allclose(cell["time_to_fit_90_mean"], 1.5)  # NaN (never) left out
    assert (ph["layer_ratio"] == 1.0).all() and (ph["lr_ratio"] == 1.0).all()  # defaults
    failed = ph[ph["lambda"] == 1.0].iloc[0]
    assert failed["n_seeds"] == 2
    np.testing.assert_allclose(failed["kernel_distance_mean"], 0.15)
    skipped = ph[ph["lambda"] == 2.0].iloc[0]
    assert skipped["n_seeds"] == 0 and np.isnan(skipped["kernel_distance_mean"])


def test_boundary_interpolates_in_log_lambda():
    lam = np.array([-10.0, -1.0, 0.0, 1.0, 10.0, 100.0])
    s = np.array([0.001, 0.1, 0.2, 0.2, 0.1, 0.001])
    ph = pd.DataFrame({"sweep": "s", "solver": "exact", "n_in": 4, "n_out": 4, "width": 4,
                       "depth": 2, "lambda": lam, "scale": 0.1, "kernel_distance_mean": s})
    b = results.boundary_table(ph, threshold=0.01)
    assert list(b.columns) == io.BOUNDARY_SCHEMA.names and len(b) == 1
    np.testing.assert_allclose(b["lambda_neg"][0], -10 ** (0.09 / 0.099))
    np.testing.assert_allclose(b["lambda_pos"][0], 10 ** (1 + 0.09 / 0.099))
    b = results.boundary_table(ph, threshold=0.5)  # never rich: no crossing
    assert np.isnan(b["lambda_neg"][0]) and np.isnan(b["lambda_pos"][0])
    b = results.boundary_table(ph.assign(kernel_distance_mean=[0.3, 0.3, 0.3, 0.3, 0.3, 0.0]),
                               threshold=0.15)
    assert np.isnan(b["lambda_neg"][0])
    np.testing.assert_allclose(b["lambda_pos"][0], 10 ** 1.5)


def test_boundary_crossing_next_to_zero_is_linear():
    ph = pd.DataFrame({"sweep": "s", "solver": "exact", "n_in": 4, "n_out": 4, "width": 4,
                       "depth": 2, "lambda": [0.0, 1.0], "scale": 0.1,
                       "kernel_distance_mean": [0.3, 0.1]})
    np.testing.assert_allclose(results.boundary_table(ph, 0.2)["lambda_pos"][0], 0.5)


@pytest.fixture
def sweep_dir(tmp_path):
    """A small sweep solved and aggregated without Snakemake (one skipped point)."""
    cfg = {"solver": "exact", "shard_size": 4, "time": {"t_max": 15.0, "n_points": 21},
           "grid": {"lambda": [-4.0, 0.0, 4.0], "scale": [0.01, 0.3], "width": [4, 5],
                    "seed": [0, 1]}}
    p = plan({"sweeps": {"s": cfg}})["s"]
    paths = SweepPaths("s", tmp_path)
    solve_and_merge(p, paths)
    return paths.dir, p


def test_aggregate_tables(sweep_dir):
    d, p = sweep_dir
    runs = results.load_runs(d)
    assert len(runs) == p.n_points == 24
    # shards in plan order, then the skipped points
    ok_first = np.concatenate([p.shard_spec(s).points["point_id"] for s in p.shards])
    assert runs["point_id"].tolist()[: ok_first.size] == ok_first.tolist()
    assert set(runs["point_id"]) == set(p.points["point_id"])
    skipped = runs[runs["status"] == "skipped"]
    assert len(skipped) == 8 and (skipped["width"] == 5).all() and (skipped["lambda"] != 0).all()
    assert skipped["reason"].str.contains("needs widths").all()
    assert (skipped["regime"] == "").all() and (skipped["shard"] == "").all()
    ok = runs[runs["status"] == "ok"]
    assert set(ok["regime"]) <= {"lazy", "rich", "stalled"}
    # λ = 0: rich, unless the seed sits on the saddle (stalled, one mode never learnt)
    zero = ok[ok["lambda"] == 0.0]
    assert (zero["regime"] == "rich").any()
    assert ((zero["regime"] == "rich") | (zero["fit_fraction"] < 0.99)).all()
    traj = results.load_trajectories(d, lambda_=0.0, width=4)
    assert len(traj) == 4 * 21 and {"scale", "seed", "t", "loss"} <= set(traj.columns)
    assert traj.groupby("point_id")["t"].apply(lambda t: t.is_monotonic_increasing).all()
    tables = results.load_sweep(d)
    assert len(tables.phase) == 12 and len(tables.boundary) == 4
    w5 = results.load_phase(d, width=5)
    assert (w5.loc[w5["lambda"] != 0, "n_seeds"] == 0).all()


def test_aggregate_rejects_missing_shards(sweep_dir):
    d, p = sweep_dir
    paths = SweepPaths.of(d)
    paths.shard_runs(p.shards[0]).unlink()
    with pytest.raises(ValueError, match=f"shard file {paths.shard_runs(p.shards[0])} is missing"):
        merge_sweep(p, paths)


def test_describe(sweep_dir):
    d, _ = sweep_dir
    text = results.describe(d)
    assert text.startswith("sweep `s` (")
    assert "24 runs: ok 16, skipped 8, failed 0" in text
    assert "== exact: N_i=4 N_h=4 N_o=4 L=2 (2-2 seeds per cell) ==" in text
    assert "lazy/rich boundary: lambda where mean kernel distance falls to 0.01" in text
    with pytest.raises(ValueError, match="`metric`='nope' is not in the phase table"):
        results.describe(d, metric="nope")
