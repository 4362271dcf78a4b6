"""Tests of lrsweep.solve: shards → tables, batching, failures, solver agreement."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lrsweep import io, solve
from lrsweep.grid import plan
from lrsweep.spec import ShardSpec


def specs(**kw) -> list[ShardSpec]:
    p = plan({"sweeps": {"s": kw}})["s"]
    return [p.shard_spec(s) for s in p.shards]


def frames(spec):
    runs, traj = solve.solve_points(spec)
    return runs.to_pandas(), traj.to_pandas()


EXACT = {
    "time": {"t_max": 15.0, "n_points": 31},
    "grid": {"lambda": [-3.0, 0.0, 3.0], "scale": [0.01, 0.5], "seed": [0, 1]},
}


def test_exact_shard_tables():
    (spec,) = specs(**EXACT)
    runs, traj = solve.solve_points(spec)
    assert runs.schema == io.shard_schema() and traj.schema == io.trajectories_schema()
    df, tr = runs.to_pandas(), traj.to_pandas()
    assert len(df) == 12 and (df["status"] == "ok").all() and (df["reason"] == "").all()
    assert df["point_id"].tolist() == list(spec.points["point_id"])
    assert df["lambda"].tolist() == list(spec.points["lambda"])
    assert len(tr) == 12 * 31
    assert np.allclose(tr.loc[tr["t"] == 0, "kernel_distance"], 0.0)
    sv = np.stack(tr["singular_values"].to_numpy())
    assert sv.shape == (12 * 31, 4) and np.all(np.diff(sv, axis=1) <= 1e-12)
    assert (df["final_loss"] < 1e-6 * df["initial_loss"]).all()
    assert df["weight_change"].isna().all()  # exact: QQᵀ does not fix the weights
    assert (df["balance_drift"] < 1e-10).all()
    assert df["exact_sim_deviation"].isna().all()
    assert (df["time_to_fit_50"] < df["time_to_fit_90"]).all()
    assert (df["time_to_fit_90"] < df["time_to_fit_99"]).all()
    assert (df["kernel_distance_max"] >= df["kernel_distance"] - 1e-15).all()


def test_lazy_at_large_lambda_for_square_net():
    (spec,) = specs(**EXACT)
    df, _ = frames(spec)
    kd = df.groupby("lambda")["kernel_distance"].mean()
    assert kd[3.0] < kd[0.0] / 3 and kd[-3.0] < kd[0.0] / 3


def test_batched_equals_one_by_one():
    (spec,) = specs(**EXACT)
    batch, _ = frames(spec)
    for k in (0, 5, 11):
        single, _ = frames(spec.select(k))
        for col in ("final_loss", "kernel_distance", "ntk_change", "time_to_fit_90"):
            np.testing.assert_allclose(
                single[col].iloc[0], batch[col].iloc[k], rtol=1e-10, atol=1e-300
            )


def test_results_do_not_depend_on_shard_size():
    big = specs(**EXACT)
    small = specs(**EXACT, shard_size=2)
    assert len(small) > 1
    a = frames(big[0])[0].set_index("point_id").sort_index()
    b = pd.concat([frames(s)[0] for s in small]).set_index("point_id").sort_index()
    for col in ("final_loss", "kernel_distance", "ntk_change"):
        np.testing.assert_allclose(a[col], b[col], rtol=1e-12, atol=1e-300)


def test_both_solvers_agree():
    (spec,) = specs(
        solver="both",
        time={"t_max": 10.0, "n_points": 11},
        grid={"lambda": [-2.0, 1.0], "scale": [0.3], "n_in": 3, "n_out": 3, "width": 3},
    )
    df, _ = frames(spec)
    assert (df["status"] == "ok").all()
    assert (df["exact_sim_deviation"] < 1e-6).all()
    assert np.isfinite(np.stack(df["weight_change_layers"].to_numpy())).all()


def test_deep_flow_and_gd():
    (flow,) = specs(
        solver="flow",
        time={"t_max": 10.0, "n_points": 11},
        grid={"lambda": [0.5], "scale": [0.3], "depth": 3, "n_in": 2, "n_out": 2, "width": 2},
    )
    df, _ = frames(flow)
    assert df["status"].tolist() == ["ok"] and len(df["weight_change_layers"][0]) == 3
    assert df["balance_drift"][0] < 1e-6
    (gd,) = specs(
        solver="gd",
        lr=0.05,
        time={"t_max": 10.0, "n_points": 11},
        grid={"lambda": [0.5], "scale": [0.3], "depth": 3, "n_in": 2, "n_out": 2, "width": 2},
    )
    dg, _ = frames(gd)
    np.testing.assert_allclose(dg["final_loss"], df["final_loss"], atol=1e-3)


def test_diverging_gradient_descent_is_a_failed_point():
    (spec,) = specs(
        solver="gd",
        lr=0.2,
        time={"t_max": 40.0, "n_points": 3},
        grid={"lambda": [0.0, 20.0], "scale": [0.5]},
    )
    df, tr = frames(spec)
    assert df["status"].tolist() == ["ok", "failed"]
    assert "diverged" in df["reason"][1]
    assert np.isnan(df["final_loss"][1]) and set(tr["point_id"]) == {df["point_id"][0]}


def test_a_failing_point_does_not_lose_its_shard(monkeypatch):
    from lrsweep._validate import lambda_of

    real = solve.solve_dynamics

    def flaky(weights, *args, **kw):
        if np.any(np.isclose(lambda_of(*weights), 3.0)):
            raise np.linalg.LinAlgError("singular matrix")
        return real(weights, *args, **kw)

    monkeypatch.setattr(solve, "solve_dynamics", flaky)
    (spec,) = specs(**EXACT)
    df, tr = frames(spec)
    bad = df["lambda"] == 3.0
    assert (df.loc[bad, "status"] == "failed").all()
    assert (df.loc[bad, "reason"] == "LinAlgError: singular matrix").all()
    assert (df.loc[~bad, "status"] == "ok").all() and df.loc[~bad, "final_loss"].notna().all()
    assert len(tr) == (~bad).sum() * 31


def test_init_failure_is_recorded(monkeypatch):
    import lrsweep.init

    real = lrsweep.init.lambda_balanced_deep

    def picky(lam, *args, **kw):
        if lam == 0.0:
            raise ValueError("no init here")
        return real(lam, *args, **kw)

    def picky_stack(lam, *args, **kw):  # the batched init; a failure falls back to per point
        if 0.0 in list(lam):
            raise ValueError("no init here")
        return real_stack(lam, *args, **kw)

    real_stack = lrsweep.init.lambda_balanced_stack
    monkeypatch.setattr(lrsweep.init, "lambda_balanced_deep", picky)
    monkeypatch.setattr(lrsweep.init, "lambda_balanced_stack", picky_stack)
    (spec,) = specs(**EXACT)
    df, _ = frames(spec)
    assert (df.loc[df["lambda"] == 0.0, "reason"] == "init failed: no init here").all()
    assert (df.loc[df["lambda"] != 0.0, "status"] == "ok").all()


def test_progress_lines_and_run_shard(tmp_path, capsys):
    import sys

    (spec,) = specs(**EXACT)
    solve.run_shard(spec, tmp_path / "r.parquet", tmp_path / "t.parquet",
                    tmp_path / "c.parquet", log=sys.stdout)
    out = capsys.readouterr().out
    assert f"[{spec.shard}] 12/12 points (" in out and "points/s, 0 failed)" in out
    assert "status counts {'ok': 12}" in out
    assert io.read_table(tmp_path / "r.parquet", io.shard_schema()).num_rows == 12


def test_hierarchy_task_and_code_fingerprint():
    task = solve.build_task({"kind": "hierarchy"}, 8, 8)
    assert task.name == "hierarchy"
    with pytest.raises(ValueError, match="has n_in=8, n_out=8, but the point has n_in=4"):
        solve.build_task({"kind": "hierarchy"}, 4, 4)
    fp = solve.code_fingerprint()
    assert isinstance(fp, str) and len(fp) == 16 and fp == solve.code_fingerprint()


def test_injected_failure_hook(tmp_path, monkeypatch):
    (spec,) = specs(**EXACT)
    monkeypatch.setenv("LRSWEEP_INJECT_FAILURE", f"s/{spec.shard}")
    with pytest.raises(RuntimeError, match=f"injected failure in shard s/{spec.shard}"):
        solve.run_shard(spec, tmp_path / "r.parquet", tmp_path / "t.parquet",
                        tmp_path / "c.parquet", log=None)
    assert not (tmp_path / "r.parquet").exists()


def test_bottleneck_time_to_fit_is_measured_towards_the_reachable_loss():
    # width 2 < min(n_in, n_out) = 4: the loss cannot reach 0, only ½ Σ_{k>2} s̃_k²
    (spec,) = specs(
        time={"t_max": 40.0, "n_points": 81},
        grid={
            "lambda": [0.0, 2.0],
            "scale": [0.01],
            "width": [2],
            "n_in": [4],
            "n_out": [4],
            "seed": [0, 1],
        },
    )
    df, _ = frames(spec)
    task = spec.task.build(4, 4)
    s = np.linalg.svd(task.sigma_yx, compute_uv=False)
    floor = 0.5 * np.sum(s[2:] ** 2)
    assert floor > 0.1
    np.testing.assert_allclose(df["final_loss"], floor, rtol=1e-6)
    assert np.isfinite(df["time_to_fit_90"]).all()
    assert (df["time_to_fit_50"] < df["time_to_fit_90"]).all()


# ------------------------------------------ the optimised shard against a per-point reference


def _reference_point(spec, task, i, t):
    """One point solved and measured the plain way: its own init, qqt of that one run,
    explicit grams, the generic kernel distance, np.linalg.svd at every time."""
    from lrsweep import exact, grid, metrics
    from lrsweep.init import lambda_balanced_deep

    s = spec.shape
    lam, scale, seed = (spec.points[k][i] for k in ("lambda", "scale", "seed"))
    rng = np.random.default_rng(
        grid.point_seed(spec.sweep_seed, seed, s.n_in, s.n_out, s.width, s.depth)
    )
    W1, W2 = lambda_balanced_deep(lam, s.widths, scale, seed=rng)
    q = exact.qqt(W1, W2, task.sigma_yx, t, lam=lam)  # (n_t, n, n)
    W = q[:, s.n_in :, : s.n_in]
    g = metrics.ntk_grams_from_qqt(q, s.n_in)
    g_0, g_end = (metrics.KernelGrams(g.out_grams[k], g.in_grams[k]) for k in (0, -1))
    return {
        "loss": metrics.loss(W, task.sigma_yx),
        "kernel_distance": metrics.kernel_distance(g_0, g),
        "singular_values": np.linalg.svd(W, compute_uv=False),
        "ntk_change": metrics.relative_kernel_change(g_0, g_end),
        "q_norm": np.linalg.norm(q, axis=(-2, -1)),
    }


@pytest.mark.parametrize("shape", [(4, 4, 4), (8, 4, 8), (3, 2, 5)])
def test_shard_matches_a_per_point_reference(shape):
    """Tolerances: the curves differ from the reference by round-off only.

    - loss: |Δ| ≤ 1e-12·loss + 4ε‖QQᵀ‖_F·√(2·loss) (an error δW ~ ε‖QQᵀ‖ of W changes
      ½‖W − Σyx‖² by ‖W − Σyx‖·δW);
    - S(0, t) and the NTK change: 1e-10 relative or 1e-14 absolute;
    - singular values: 1e-8 relative for σ ≥ 1e-4·σ_max, 8ε·σ_max absolute below (eigvalsh
      of a Gram matrix, SVD where that is not accurate: metrics.SVD_RATIO).
    """
    from lrsweep import metrics

    n_in, width, n_out = shape
    (spec,) = specs(
        time={"t_max": 30.0, "n_points": 41, "spacing": "log"},
        grid={
            "lambda": [-1e3, -3.0, -0.01, 0.0, 0.01, 3.0, 1e3],
            "scale": [1e-12, 1e-3, 1.0, 3.0],
            "seed": [0, 1],
            "n_in": n_in,
            "n_out": n_out,
            "width": width,
        },
    )
    df, tr = frames(spec)
    assert (df["status"] == "ok").mean() > 0.9, df.loc[df["status"] != "ok", "reason"]
    task = spec.task.build(n_in, n_out)
    t = spec.time.grid()
    curves = tr.set_index("point_id")
    for i, point in enumerate(spec.points["point_id"]):
        if df["status"][i] != "ok":
            continue
        ref = _reference_point(spec, task, i, t)
        got = curves.loc[point]
        loss = got["loss"].to_numpy()
        eps = np.finfo(float).eps
        tol = 1e-12 * ref["loss"] + 4 * eps * ref["q_norm"] * np.sqrt(2 * ref["loss"])
        assert np.all(np.abs(loss - ref["loss"]) <= tol), point
        kd = got["kernel_distance"].to_numpy()
        assert np.all(np.abs(kd - ref["kernel_distance"]) <= 1e-10 * ref["kernel_distance"] + 1e-14)
        sv, sv_ref = np.stack(got["singular_values"].to_numpy()), ref["singular_values"]
        top = sv_ref[:, :1]
        big = sv_ref >= 1e-4 * top
        assert np.all(np.abs(sv - sv_ref)[big] <= 1e-8 * sv_ref[big]), point
        assert np.all((np.abs(sv - sv_ref) <= 8 * np.finfo(float).eps * top)[~big]), point
        nc = df["ntk_change"][i]
        assert abs(nc - ref["ntk_change"]) <= 1e-10 * ref["ntk_change"] + 1e-14
        assert df["kernel_distance"][i] == kd[-1] and df["final_loss"][i] == loss[-1]
        fit = metrics.time_to_fit(
            t,
            ref["loss"],
            (0.9,),
            final_loss=metrics.lowest_loss(task.sigma_yx, spec.shape.bottleneck),
        )[0]
        np.testing.assert_allclose(df["time_to_fit_90"][i], fit, rtol=1e-8)
