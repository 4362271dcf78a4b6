"""The paper targets drawn from sweep tables (phase, architecture, width_depth).

They are fed phase/boundary tables built here through the exact solver (lrsweep.exact +
lrsweep.metrics) and written with the pipeline's schemas (lrsweep.io), so the physics checks
do not depend on a sweep having been run.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from matplotlib.figure import Figure

from lrsweep import experiments, io
from lrsweep.exact import qqt, qqt_blocks
from lrsweep.experiments import architecture, phase, tables, width_depth
from lrsweep.init import lambda_balanced
from lrsweep.metrics import kernel_distance, loss, ntk_grams_from_qqt, time_to_fit
from lrsweep.paths import FigurePaths, SweepPaths
from lrsweep.results import boundary_table
from lrsweep.tasks import random_regression

TABLE_TARGETS = {"phase": phase, "architecture": architecture, "width_depth": width_depth}


def _phase_rows(sweep, n_in, width, n_out, lams, scales, seeds=(0,)):
    """Pipeline-like phase rows from the exact solver (mean over seeds)."""
    task = random_regression(n_in, n_out, seed=0)
    t = np.concatenate([[0.0], np.geomspace(1e-3, 40.0, 80)])
    rows = []
    for lam in lams:
        if (lam > 0 and width > n_out) or (lam < 0 and width > n_in):
            continue
        for sc in scales:
            vals = []
            for seed in seeds:
                W1, W2 = lambda_balanced(lam, n_in, width, n_out, sc, seed=seed)
                q = qqt(W1, W2, task.sigma_yx, t)
                g = ntk_grams_from_qqt(q, n_in)
                S = kernel_distance((g[0][0], g[1][0]), (g[0][-1], g[1][-1]))
                L = loss(qqt_blocks(q, n_in)[1], task.sigma_yx)
                vals.append((float(S), float(time_to_fit(t, L, 0.9)), float(L[-1])))
            v = np.mean(vals, axis=0)
            rows.append({"sweep": sweep, "solver": "exact", "n_in": n_in, "n_out": n_out,
                         "width": width, "depth": 2, "lambda": float(lam), "scale": sc,
                         "n_seeds": len(seeds), "n_fit": int(np.isfinite(v[1])) * len(seeds),
                         "n_stalled": int(not np.isfinite(v[1])) * len(seeds),
                         "n_lazy": 0, "n_rich": int(np.isfinite(v[1])) * len(seeds),
                         "n_undefined": 0,
                         "kernel_distance_mean": v[0], "kernel_distance_std": 0.0,
                         "time_to_fit_90_mean": v[1], "time_to_fit_90_std": 0.0,
                         "final_loss_mean": v[2], "final_loss_std": 0.0,
                         "ntk_change_mean": v[0], "ntk_change_std": 0.0,
                         "layer_ratio": 1.0, "lr_ratio": 1.0,
                         "lambda_eff_mean": float(lam), "lambda_eff_std": 0.0,
                         "kernel_distance_predicted_mean": np.nan,
                         "kernel_distance_predicted_std": np.nan,
                         "kernel_distance_prediction_error_mean": np.nan,
                         "kernel_distance_prediction_error_std": np.nan})  # fmt: skip
    return pd.DataFrame(rows)


def _write(df: pd.DataFrame, path: Path, schema: pa.Schema) -> Path:
    return io.write_table(pa.Table.from_pandas(df, preserve_index=False), path, schema)


LAMS = (-30.0, -3.0, -0.3, 0.0, 0.3, 3.0, 30.0)
SCALES = (0.01, 0.3)


@pytest.fixture(scope="module")
def sweep_tables(tmp_path_factory) -> dict[str, Path]:
    """Inputs phase_<k> / boundary_<k> of four sweeps written in the pipeline's layout."""
    root = tmp_path_factory.mktemp("results")
    frames = {
        "square": _phase_rows("square", 4, 4, 4, LAMS, SCALES),
        "funnel": _phase_rows("funnel", 8, 4, 4, LAMS, SCALES),
        "antifunnel": _phase_rows("antifunnel", 4, 4, 8, LAMS, SCALES),
        "width": pd.concat(
            [_phase_rows("width", 4, w, 4, (-1.0, 0.0, 1.0), (0.1,)) for w in (2, 4, 8)]
        ),  # fmt: skip
    }
    paths = {}
    for k, (name, df) in enumerate(frames.items()):
        sweep = SweepPaths(name, root)
        paths[f"phase_{k}"] = _write(df, sweep.phase, io.PHASE_SCHEMA)
        paths[f"boundary_{k}"] = _write(
            boundary_table(df, 0.01), sweep.boundary, io.BOUNDARY_SCHEMA
        )
    return paths


def _kd(df, lam, scale=0.01):
    row = df[np.isclose(df["lambda"], lam) & np.isclose(df["scale"], scale)]
    return float(row["kernel_distance_mean"].iloc[0])


def test_phase_table_square_kernel_distance_falls_with_abs_lambda(sweep_tables):
    df = phase.compute(sweep_tables)  # every sweep: phase keeps the square nets
    assert set(df["architecture"]) == {"square"} and set(df["sweep"]) == {"square", "width"}
    df = df[df["sweep"] == "square"]
    for sign in (1, -1):
        ks = [_kd(df, sign * x) for x in (0.3, 3.0, 30.0)]
        assert ks[0] > ks[1] > ks[2]
    assert _kd(df, 30.0) < 0.01 < _kd(df, 0.0)  # lazy at large |λ|, rich at 0
    assert _kd(df, -3.0) == pytest.approx(_kd(df, 3.0), rel=0.05)  # symmetric
    assert {"lambda_neg", "lambda_pos", "threshold"} <= set(df.columns)
    b = df.drop_duplicates("scale")
    assert np.all(b["lambda_neg"] < 0) and np.all(b["lambda_pos"] > 0)


def test_architecture_table_shows_the_funnel_asymmetry(sweep_tables):
    df = architecture.compute(sweep_tables)
    fun = df[df["architecture"] == "funnel"]
    anti = df[df["architecture"] == "anti-funnel"]
    assert _kd(fun, -30.0) > 100 * _kd(fun, 30.0)  # funnel: λ → −∞ stays rich
    assert _kd(anti, 30.0) > 100 * _kd(anti, -30.0)  # anti-funnel: the mirror image
    assert _kd(fun, -30.0) > 0.01 > _kd(fun, 30.0)


def test_table_reader_checks_the_schema(sweep_tables, tmp_path):
    bad = tmp_path / "phase.parquet"
    pd.read_parquet(sweep_tables["phase_0"]).drop(columns="n_fit").to_parquet(bad)
    with pytest.raises(ValueError, match="does not have the expected schema"):
        tables.read({"phase_0": bad})


def test_table_targets_write_files(sweep_tables, tmp_path):
    for name, module in TABLE_TARGETS.items():
        paths = experiments.make_target(name, tmp_path, sweep_tables)
        fp = FigurePaths(name, tmp_path)
        assert paths == [fp.table, fp.png, fp.pdf, fp.caption]
        assert all(p.stat().st_size > 0 for p in paths)
        fig = module.draw(pd.read_parquet(fp.table))  # re-plot from the saved table
        assert isinstance(fig, Figure)
    cap = FigurePaths("architecture", tmp_path).caption.read_text()
    assert "Missing in the config" not in cap
    assert "funnel 8–4–4 lazy for λ > " in cap and "(rich for all λ < 0)" in cap
    only_square = {k: v for k, v in sweep_tables.items() if k.endswith("_0")}
    experiments.make_target("architecture", tmp_path / "a2", only_square)
    cap = FigurePaths("architecture", tmp_path / "a2").caption.read_text()
    assert "anti-funnel" in cap.split("Missing")[1]


def test_table_targets_without_sweeps_draw_a_placeholder(tmp_path):
    for name in TABLE_TARGETS:
        paths = experiments.make_target(name, tmp_path, {})
        assert paths[1].is_file()
        assert "no input tables" in paths[-1].read_text()


def test_placeholders_point_to_sweeps_docs_paper_defines():
    """Every sweep a placeholder panel asks for is a valid sweep of docs/paper.md."""
    import re

    import yaml

    from lrsweep.grid import plan

    docs = (Path(__file__).resolve().parents[1] / "docs" / "paper.md").read_text()
    blocks = [yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", docs, re.S)]
    sweeps = {n: s for b in blocks if "sweeps" in b for n, s in b["sweeps"].items()}
    plans = plan({"sweeps": sweeps})
    assert {"square", "funnel", "antifunnel", "width", "depth"} <= set(plans)
    roles = experiments.sweep_roles(plans)
    assert roles["phase"] == ["square"]
    assert {"square", "funnel", "antifunnel"} <= set(roles["architecture"])
    info = tables.sweep_info(plans)
    assert not info["width"].grid and info["depth"].lambdas


def test_sweep_selection_and_inputs():
    def pts(lams, scales, n_in, width, n_out, depth=(2,)):
        grid = np.array(np.meshgrid(lams, scales, depth, indexing="ij")).reshape(3, -1)
        n = grid.shape[1]
        return {"lambda": grid[0], "scale": grid[1], "depth": grid[2],
                "n_in": np.full(n, n_in), "width": np.full(n, width), "n_out": np.full(n, n_out),
                "status": np.array(["ok"] * n)}  # fmt: skip

    lams, scales = [-1, -0.1, 0, 0.1, 1], [0.01, 0.1, 1]
    plans = {
        "funnel": pts(lams, scales, 8, 4, 4),
        "square": pts(lams, scales, 4, 4, 4),
        "depth": pts([-1, 0, 1], [0.1], 4, 4, 4, depth=(2, 3)),
        "width": pts(lams, [0.1, 1], 4, 8, 4),  # 2 scales: not a phase grid
    }
    roles = experiments.sweep_roles(plans)
    assert roles == {"phase": ["square"], "architecture": ["funnel", "square"],
                     "width_depth": ["funnel", "square", "depth", "width"]}  # fmt: skip
    inputs = experiments.paper_inputs("architecture", plans)
    assert inputs == {
        "phase_0": "results/funnel/phase.parquet",
        "boundary_0": "results/funnel/boundary.parquet",
        "phase_1": "results/square/phase.parquet",
        "boundary_1": "results/square/boundary.parquet",
    }
    assert experiments.paper_inputs("hierarchy", plans) == {}
    summary = experiments.paper_inputs("summary", plans, "out")
    assert summary["phase"] == "out/paper/phase/phase.png" and len(summary) == 9
    # without a sweep named `square`, phase takes the first grid with a square net
    del plans["square"]
    plans["check"] = pts(lams, scales, 3, 3, 3)
    assert experiments.sweep_roles(plans)["phase"] == ["check"]


def test_search_sweeps_feed_no_table_driven_figure():
    """A search sweep has no λ grid (its phase and boundary tables are of another kind): no
    figure drawn from sweep tables selects it, also when it is the only sweep run."""
    from lrsweep.grid import plan

    search = {"grid": {"lambda": {"search": {"per_side": 4}}, "scale": [0.01, 0.1, 1.0],
                       "n_in": [4], "n_out": [4], "width": [4]}}  # fmt: skip
    grid_ = {"grid": {**search["grid"],
                      "lambda": {"symlog": {"min": 0.1, "max": 10.0, "per_side": 3}}}}
    plans = plan({"sweeps": {"searched": search, "gridded": grid_}})
    assert experiments.sweep_roles(plans) == {
        "phase": ["gridded"], "architecture": ["gridded"], "width_depth": ["gridded"]}  # fmt: skip
    only = plan({"sweeps": {"searched": search}})
    assert experiments.sweep_roles(only) == {"phase": [], "architecture": [], "width_depth": []}
    runs = {"lambda": np.array([-1.0, -0.5, 0.5, 1.0, 2.0]), "scale": np.array([0.1] * 5),
            "depth": np.full(5, 2), "n_in": np.full(5, 4), "width": np.full(5, 4),
            "n_out": np.full(5, 4), "status": np.array(["ok"] * 5),
            "role": np.array(["bracket"] * 3 + ["iterate"] * 2)}  # fmt: skip
    assert not experiments.sweep_roles({"s": runs})["width_depth"]
