"""Tests of lrsweep.io: table schemas (the contract with the plots) and atomic Parquet I/O."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lrsweep import io

F, N, S = pa.float64(), pa.int64(), pa.string()

RUNS_CONTRACT = {
    "sweep": S, "point_id": N, "shard": S, "solver": S, "task": S, "n_in": N, "n_out": N,
    "width": N, "depth": N, "layer_ratio": F, "lr_ratio": F, "lambda": F, "scale": F,
    "seed": N, "role": S, "status": S, "reason": S,
    "initial_loss": F, "final_loss": F, "fit_fraction": F, "kernel_distance": F,
    "kernel_distance_max": F, "ntk_change": F, "weight_change": F,
    "weight_change_layers": pa.list_(F), "time_to_fit_50": F, "time_to_fit_90": F,
    "time_to_fit_99": F,
    # the init's measured imbalance (theory §6.2), per run and per layer pair
    "lambda_eff": F, "off_balance": F, "lambda_eff_pairs": pa.list_(F),
    "imbalance_min_pairs": pa.list_(F), "imbalance_max_pairs": pa.list_(F),
    "off_balance_pairs": pa.list_(F),
    # the λ_eff-balanced prediction of simulated depth-2 runs
    "kernel_distance_predicted": F, "kernel_distance_prediction_error": F,
    "final_loss_predicted": F, "final_loss_prediction_error": F,
    "time_to_fit_90_predicted": F, "time_to_fit_90_prediction_error": F,
    "prediction_status": S,
    "regime": S, "balance_drift": F, "riccati_residual": F,
    "exact_sim_deviation": F,
}


def test_runs_schema_matches_the_contract():
    assert {f.name: f.type for f in io.RUNS_SCHEMA} == RUNS_CONTRACT
    assert io.SHARD_SCHEMA.names == [n for n in io.RUNS_SCHEMA.names if n != "regime"]


def test_every_runs_column_documents_itself():
    described = [f.name for f in io.RUNS_SCHEMA if f.metadata and b"description" in f.metadata]
    assert "regime" in described and "riccati_residual" in described
    text = io.RUNS_SCHEMA.field("regime").metadata[b"description"].decode()
    for label in ("stalled", "lazy", "rich", "undefined"):
        assert f"{label}:" in text


def test_trajectory_phase_boundary_schemas():
    assert {f.name: f.type for f in io.TRAJECTORIES_SCHEMA} == {
        "sweep": S, "point_id": N, "t": F, "loss": F, "kernel_distance": F,
        "singular_values": pa.list_(F)}
    names = io.PHASE_SCHEMA.names
    for key in ("solver", "n_in", "n_out", "width", "depth", "lambda", "scale", "n_seeds",
                "n_fit", "n_lazy", "n_rich", "n_stalled", "n_undefined"):
        assert key in names
    for m in ("kernel_distance", "time_to_fit_90", "final_loss", "ntk_change"):
        assert io.PHASE_SCHEMA.field(f"{m}_mean").type == F
        assert io.PHASE_SCHEMA.field(f"{m}_std").type == F
    assert io.BOUNDARY_SCHEMA.names[-2:] == ["lambda_neg", "lambda_pos"]
    assert "lambda" not in io.BOUNDARY_SCHEMA.names and "scale" in io.BOUNDARY_SCHEMA.names


def _traj(n: int = 3) -> pa.Table:
    return io.to_table({
        "sweep": ["a"] * n, "point_id": np.arange(n), "t": np.linspace(0, 1, n),
        "loss": [1.0, np.nan, 0.5][:n], "kernel_distance": np.zeros(n),
        "singular_values": [[2.0, 1.0]] * n,
    }, io.TRAJECTORIES_SCHEMA)


def test_to_table_casts_and_keeps_nan():
    t = _traj()
    assert t.schema == io.TRAJECTORIES_SCHEMA
    assert t.column("loss").null_count == 0 and np.isnan(t.column("loss").to_numpy()[1])
    with pytest.raises(ValueError, match=r"missing \['t'\], unexpected \['time'\]"):
        io.to_table({**{k: t.column(k) for k in t.column_names if k != "t"}, "time": [0.0]},
                    io.TRAJECTORIES_SCHEMA)


def test_write_is_atomic_and_reads_check_the_schema(tmp_path):
    path = tmp_path / "sub" / "x.parquet"
    io.write_table(_traj(), path, io.TRAJECTORIES_SCHEMA)
    assert sorted(p.name for p in path.parent.iterdir()) == ["x.parquet"]  # no temp left
    back = io.read_table(path, io.TRAJECTORIES_SCHEMA)
    assert back.schema == io.TRAJECTORIES_SCHEMA
    assert back.to_pandas().equals(_traj().to_pandas())
    io.write_table(_traj(2), path, io.TRAJECTORIES_SCHEMA)  # replace
    assert io.read_table(path, io.TRAJECTORIES_SCHEMA).num_rows == 2
    with pytest.raises(ValueError, match="does not have the expected schema"):
        io.read_table(path, io.PHASE_SCHEMA)
    with pytest.raises(ValueError, match="does not exist; run the pipeline"):
        io.read_table(tmp_path / "none.parquet", io.PHASE_SCHEMA)


def test_write_casts_to_the_schema(tmp_path):
    t = _traj().cast(pa.schema([f.with_type(pa.float32()) if f.name == "t" else f
                                for f in io.TRAJECTORIES_SCHEMA]))
    io.write_table(t, tmp_path / "x.parquet", io.TRAJECTORIES_SCHEMA)
    assert pq.read_schema(tmp_path / "x.parquet").field("t").type == F


def test_stray_temp_file_is_not_read(tmp_path):
    io.write_table(_traj(), tmp_path / "a.parquet", io.TRAJECTORIES_SCHEMA)
    (tmp_path / ".b.parquet.tmp").write_bytes(b"partial")
    out = io.read_tables([tmp_path / "a.parquet", tmp_path / "a.parquet"], io.TRAJECTORIES_SCHEMA)
    assert out.num_rows == 6
    assert io.read_tables([], io.TRAJECTORIES_SCHEMA).num_rows == 0
