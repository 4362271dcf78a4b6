"""The paper targets (lrsweep.paper): the data behind each figure shows the physics, the
figures and tables are written, and the tables re-plot without recomputing.

Table-driven targets are fed phase/boundary tables built here through the exact solver
(lrsweep.exact + lrsweep.metrics) in the pipeline's column layout, so the physics checks do
not depend on a sweep having been run.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from lrsweep import paper
from lrsweep.exact import aligned_singular_values, qqt, qqt_blocks
from lrsweep.init import lambda_balanced
from lrsweep.metrics import kernel_distance, loss, ntk_grams_from_qqt, time_to_fit
from lrsweep.results import boundary_table
from lrsweep.tasks import random_regression

ROOT = Path(__file__).resolve().parents[1]

# ----------------------------------------------------------------- computed targets


@pytest.fixture(scope="module")
def evs() -> pd.DataFrame:
    return paper.compute_exact_vs_sim(t_max=6.0, n_t=61)


def test_exact_vs_sim_deviation_is_small_and_first_order_in_lr(evs):
    dev = paper._deviations(evs, ["quantity"]).set_index("quantity")
    assert set(dev.index) == {"network_function", "loss", "W1tW1", "W2W2t", "ntk"}
    assert dev["rel"].max() < 1e-2  # η = 1e-3
    half = paper._deviations(paper.compute_exact_vs_sim(t_max=6.0, n_t=61, lr=5e-4), ["quantity"])
    ratio = dev["dev"].max() / half["dev"].max()
    assert 1.5 < ratio < 2.5  # O(η): halving η halves the deviation


def test_exact_vs_sim_shows_rich_and_lazy_representations(evs):
    ex = evs[evs["source"] == "exact"]

    def diag_change(qty, lam):
        sub = ex[
            (ex["quantity"] == qty) & (ex["lambda"] == lam) & ex["entry"].isin(["11", "22", "33"])
        ]
        first = sub[sub["t"] == sub["t"].min()]["value"].to_numpy()
        last = sub[sub["t"] == sub["t"].max()]["value"].to_numpy()
        return np.max(np.abs(last - first) / np.abs(first))

    # lazy: the large layer's Gram stays ≈ |λ|I (W2W2ᵀ for λ > 0, W1ᵀW1 for λ < 0)
    assert diag_change("W2W2t", 10.0) < 0.1
    assert diag_change("W1tW1", -10.0) < 0.1
    # rich: both Grams grow from ≈ 0 by orders of magnitude
    assert diag_change("W1tW1", 0.0) > 10 and diag_change("W2W2t", 0.0) > 10
    final = ex[(ex["quantity"] == "loss") & (ex["t"] == ex["t"].max())]
    assert np.all(final["value"] < 0.05)  # every λ has (nearly) learned the task by t = 6τ


@pytest.fixture(scope="module")
def svs() -> pd.DataFrame:
    return paper.compute_singular_values(lambdas=(0.0, 1.0, 30.0), t_max=8.0, n_t=321)


def test_singular_values_sigmoid_at_zero_exponential_at_large_lambda(svs):
    rich, lazy = paper.sv_shape(svs, 0.0), paper.sv_shape(svs, 30.0)
    # rich: a plateau, then the fastest rise late, far steeper than the start
    assert rich["t_fastest"] > 0.5 and rich["slope_ratio"] > 50
    early = svs[(svs["source"] == "exact") & (svs["lambda"] == 0) & (svs["mode"] == 1)]
    assert early[early["t"] <= 0.5]["a_over_s"].max() < 0.05
    # lazy: fastest at t = 0 and concave throughout — exponential approach
    assert lazy["t_fastest"] == 0.0 and lazy["concave"]
    assert lazy["t_half"] < 0.1 * rich["t_half"]
    # exact vs GD
    ex, gd = svs[svs["source"] == "exact"], svs[svs["source"] == "gd"]
    assert np.abs(ex["a"].to_numpy() - gd["a"].to_numpy()).max() < 0.05


def test_singular_values_depend_on_abs_lambda_only():
    t = np.linspace(0, 3, 31)
    a = aligned_singular_values(np.full((2, 2), 1e-3), np.array([2.0, 0.5]), [-3.0, 3.0], t)
    np.testing.assert_allclose(a[:, 0], a[:, 1], rtol=1e-12)


@pytest.fixture(scope="module")
def hier() -> pd.DataFrame:
    return paper.compute_hierarchy()


def test_hierarchy_rich_rsm_has_the_tree_blocks(hier):
    rsm = paper.hierarchy_matrix(hier, 0.0, "W1tW1")
    tree = paper._tree_depth()
    for i in range(8):  # same pair > same kingdom > other kingdom, for every item
        pair = rsm[i, tree[i] == 3]
        kingdom = rsm[i, tree[i] == 2]
        other = rsm[i, tree[i] == 1]
        assert pair.min() > kingdom.max() > other.max() - 1e-12
    st = paper.rsm_structure(rsm, tree)
    assert st["tree_corr"] > 0.9 and st["non_identity"] > 0.2
    assert hier["converged_dev"].max() < 1e-8  # converged state of theory §3.4


def test_hierarchy_lazy_rsm_is_identity_like(hier):
    items_neg = paper.rsm_structure(paper.hierarchy_matrix(hier, -10.0, "W1tW1"))
    feats_pos = paper.rsm_structure(paper.hierarchy_matrix(hier, 10.0, "W2W2t"))
    rich_items = paper.rsm_structure(paper.hierarchy_matrix(hier, 0.0, "W1tW1"))
    rich_feats = paper.rsm_structure(paper.hierarchy_matrix(hier, 0.0, "W2W2t"))
    assert items_neg["non_identity"] < 0.02 < rich_items["non_identity"]
    assert feats_pos["non_identity"] < 0.02 < rich_feats["non_identity"]


@pytest.fixture(scope="module")
def app() -> pd.DataFrame:
    return paper.compute_applications(
        lambdas=(0.0, 1e-3, 0.1, 10.0), curve_lambdas=(0.0, 0.1, 10.0),
        angles_deg=(0, 30, 90, 180), n_t=121,
    )  # fmt: skip


def test_applications_table_shows_saddle_forgetting_and_transfer(app):
    rt = paper._scalar(app, "reversal", "relearn_time").set_index("lambda")["value"]
    assert np.isinf(rt[0.0])
    assert rt[10.0] < rt[0.1] < rt[1e-3] < np.inf
    assert rt[-0.1] == pytest.approx(rt[0.1])
    fg = paper._scalar(app, "continual", "forgetting")["value"]
    lim = paper._scalar(app, "continual", "forgetting_limit")["value"].iloc[0]
    np.testing.assert_allclose(fg, lim, rtol=1e-8)
    tp = paper._scalar(app, "transfer", "time_pretrained")
    ts = paper._scalar(app, "transfer", "time_scratch")
    at = tp.set_index(["angle_deg", "lambda"])["value"]
    sc = ts.set_index(["angle_deg", "lambda"])["value"]
    assert np.isinf(at[(180.0, 0.0)]) and at[(0.0, 0.0)] == 0.0
    assert at[(30.0, 0.0)] < 0.2 * sc[(30.0, 0.0)]
    np.testing.assert_allclose(tp["similarity"], np.cos(np.deg2rad(tp["angle_deg"])), atol=1e-12)


def test_figures_draw_from_their_tables(evs, svs, hier, app, tmp_path):
    for name, df in (("exact_vs_sim", evs), ("singular_values", svs), ("hierarchy", hier),
                     ("applications", app)):  # fmt: skip
        path = tmp_path / f"{name}.parquet"
        df.to_parquet(path, index=False)
        back = pd.read_parquet(path)
        draw = getattr(paper, f"draw_{name}")
        fig = draw(back)
        assert isinstance(fig, Figure)
        labels = " ".join(ax.get_xlabel() + ax.get_ylabel() for ax in fig.axes)
        if name != "hierarchy":
            assert r"t/\tau" in labels  # time axes in units of τ
        else:
            assert "RSM" in labels  # the colour bar is named
        cap = getattr(paper, f"caption_{name}")(back)
        assert "λ" in cap and len(cap) > 200


# ------------------------------------------------------------------- table targets


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
                         "n_seeds": len(seeds), "kernel_distance_mean": v[0],
                         "kernel_distance_std": 0.0, "time_to_fit_90_mean": v[1],
                         "time_to_fit_90_std": 0.0, "final_loss_mean": v[2],
                         "final_loss_std": 0.0, "ntk_change_mean": v[0],
                         "ntk_change_std": 0.0})  # fmt: skip
    return pd.DataFrame(rows)


LAMS = (-30.0, -3.0, -0.3, 0.0, 0.3, 3.0, 30.0)
SCALES = (0.01, 0.3)


@pytest.fixture(scope="module")
def sweep_tables(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("sweeps")
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
        paths[f"phase_{k}"] = d / f"{name}_phase.parquet"
        df.to_parquet(paths[f"phase_{k}"], index=False)
        paths[f"boundary_{k}"] = d / f"{name}_boundary.parquet"
        boundary_table(df, 0.01).to_parquet(paths[f"boundary_{k}"], index=False)
    return paths


def _kd(df, lam, scale=0.01):
    row = df[np.isclose(df["lambda"], lam) & np.isclose(df["scale"], scale)]
    return float(row["kernel_distance_mean"].iloc[0])


def test_phase_table_square_kernel_distance_falls_with_abs_lambda(sweep_tables):
    df = paper.table_for("phase", {k: v for k, v in sweep_tables.items() if k.endswith("_0")})
    assert set(df["architecture"]) == {"square"}
    for sign in (1, -1):
        ks = [_kd(df, sign * x) for x in (0.3, 3.0, 30.0)]
        assert ks[0] > ks[1] > ks[2]
    assert _kd(df, 30.0) < 0.01 < _kd(df, 0.0)  # lazy at large |λ|, rich at 0
    assert _kd(df, -3.0) == pytest.approx(_kd(df, 3.0), rel=0.05)  # symmetric
    assert {"lambda_neg", "lambda_pos", "threshold"} <= set(df.columns)
    b = df.drop_duplicates("scale")
    assert np.all(b["lambda_neg"] < 0) and np.all(b["lambda_pos"] > 0)


def test_architecture_table_shows_the_funnel_asymmetry(sweep_tables):
    df = paper.table_for("architecture", sweep_tables)
    fun = df[df["architecture"] == "funnel"]
    anti = df[df["architecture"] == "anti-funnel"]
    assert _kd(fun, -30.0) > 100 * _kd(fun, 30.0)  # funnel: λ → −∞ stays rich
    assert _kd(anti, 30.0) > 100 * _kd(anti, -30.0)  # anti-funnel: the mirror image
    assert _kd(fun, -30.0) > 0.01 > _kd(fun, 30.0)


def test_table_targets_write_files(sweep_tables, tmp_path):
    for name in paper.TABLE_TARGETS:
        paths = paper.make_target(name, tmp_path / name, sweep_tables)
        assert [p.suffix for p in paths] == [".parquet", ".png", ".pdf", ".md"]
        assert all(p.stat().st_size > 0 for p in paths)
        table = pd.read_parquet(paths[0])
        fig = getattr(paper, f"draw_{name}")(table)  # re-plot from the saved table
        assert isinstance(fig, Figure)
    cap = (tmp_path / "architecture" / "architecture.md").read_text()
    assert "Missing in the config" not in cap
    only_square = {k: v for k, v in sweep_tables.items() if k.endswith("_0")}
    paper.make_target("architecture", tmp_path / "a2", only_square)
    assert "anti-funnel" in (tmp_path / "a2" / "architecture.md").read_text().split("Missing")[1]


def test_table_targets_without_sweeps_draw_a_placeholder(tmp_path):
    paths = paper.make_target("width_depth", tmp_path, {})
    assert paths[1].is_file()
    assert "no input tables" in paths[-1].read_text()


def test_sweep_roles_and_inputs():
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
    roles = paper.sweep_roles(plans)
    assert roles == {"phase": ["square"], "architecture": ["funnel", "square"],
                     "width_depth": ["funnel", "square", "depth", "width"]}  # fmt: skip
    inputs = paper.paper_inputs("architecture", plans)
    assert inputs == {
        "phase_0": "results/funnel/phase.parquet",
        "boundary_0": "results/funnel/boundary.parquet",
        "phase_1": "results/square/phase.parquet",
        "boundary_1": "results/square/boundary.parquet",
    }
    assert paper.paper_inputs("hierarchy", plans) == {}
    assert paper.table_inputs("phase", plans)(None) == paper.paper_inputs("phase", plans)


# --------------------------------------------------------------- entry point, summary


def test_make_target_computed_and_summary(tmp_path):
    quick = {
        "exact_vs_sim": {"t_max": 4.0, "n_t": 21, "lr": 2e-3},
        "singular_values": {"lambdas": (0.0, 10.0), "t_max": 6.0, "n_t": 61, "lr": 2e-3},
        "hierarchy": {},
        "applications": {"lambdas": (0.0, 0.1, 10.0), "curve_lambdas": (0.0, 10.0),
                         "angles_deg": (0, 90, 180), "n_t": 41},
    }  # fmt: skip
    pngs = {}
    for name, setup in quick.items():
        paths = paper.make_target(name, tmp_path / name, setup=setup)
        assert {p.suffix for p in paths} == {".parquet", ".png", ".pdf", ".md"}
        assert all(p.is_file() and p.stat().st_size > 0 for p in paths)
        assert not list((tmp_path / name).glob(".*.tmp"))  # atomic writes leave no temp files
        pngs[name] = next(p for p in paths if p.suffix == ".png")
    out = paper.make_target("summary", tmp_path, pngs)
    assert {p.name for p in out} == {"summary.png", "summary.pdf", "summary.parquet"}
    table = pd.read_parquet(tmp_path / "summary.parquet")
    assert len(table) == 4 and table["caption"].str.len().min() > 100


def test_make_target_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="`name` must be one of"):
        paper.make_target("fig1", tmp_path)
    with pytest.raises(ValueError, match="takes no `inputs`"):
        paper.make_target("hierarchy", tmp_path, {"phase_0": tmp_path / "x.parquet"})
    with pytest.raises(ValueError, match=r"`setup` keys \['bogus'\]"):
        paper.make_target("hierarchy", tmp_path, setup={"bogus": 1})
    with pytest.raises(ValueError, match="must be named '<table>_<k>'"):
        paper.make_target("phase", tmp_path, {"tables": tmp_path / "x.parquet"})
    with pytest.raises(ValueError, match="not found"):
        paper.make_target("phase", tmp_path, {"phase_0": tmp_path / "missing.parquet"})
    with pytest.raises(ValueError, match="at least one figure PNG"):
        paper.make_target("summary", tmp_path, {})


@pytest.mark.slow
@pytest.mark.workflow
def test_paper_rules_resolve_in_a_dry_run(tmp_path):
    """paper.smk parses next to the pipeline's rules and `summary` resolves to all figures."""
    snakefile = tmp_path / "Snakefile"
    rules = ROOT / "workflow" / "rules"
    includes = "\n".join(
        f'include: "{rules / name}.smk"'
        for name in ("common", "sweep", "aggregate", "plot", "report", "paper")
    )
    snakefile.write_text(f'configfile: "{ROOT / "config.yaml"}"\n{includes}\n')
    exe = Path(sys.executable).parent / "snakemake"
    proc = subprocess.run(
        [str(exe), "-s", str(snakefile), "-n", "--cores", "1", "summary"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    for rule in ("fig_exact_vs_sim", "fig_singular_values", "fig_phase", "fig_architecture",
                 "fig_hierarchy", "fig_width_depth", "fig_applications", "summary"):  # fmt: skip
        assert f"rule {rule}:" in proc.stdout + proc.stderr
