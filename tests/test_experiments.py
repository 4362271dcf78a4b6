"""The computed paper targets (lrsweep.experiments): the data behind each figure shows the
physics, captions follow the set-up in the table, the figures and tables are written, the
tables re-plot without recomputing, and the registry drives make_target and the workflow.

Table-driven targets are tested in test_experiments_tables.py.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from lrsweep import experiments
from lrsweep.exact import aligned_singular_values
from lrsweep.experiments import (
    applications,
    boundary,
    exact_vs_sim,
    hierarchy,
    singular_values,
    standard_inits,
)
from lrsweep.paths import FigurePaths

ROOT = Path(__file__).resolve().parents[1]
COMPUTED = {
    "exact_vs_sim": exact_vs_sim,
    "singular_values": singular_values,
    "hierarchy": hierarchy,
    "applications": applications,
    "boundary": boundary,  # tested in test_experiments_boundary.py
    "standard_inits": standard_inits,  # tested in test_experiments_standard_inits.py
}

# ----------------------------------------------------------------------- exact vs sim


@pytest.fixture(scope="module")
def evs() -> pd.DataFrame:
    return exact_vs_sim.compute(t_max=6.0, n_t=61)


def test_exact_vs_sim_deviation_is_small_and_first_order_in_lr(evs):
    dev = exact_vs_sim.deviations(evs).set_index("quantity")
    assert set(dev.index) == {"network_function", "loss", "W1tW1", "W2W2t", "ntk"}
    assert dev["rel"].max() < 1e-2  # η = 1e-3
    half = exact_vs_sim.deviations(exact_vs_sim.compute(t_max=6.0, n_t=61, lr=5e-4))
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


def test_exact_vs_sim_ntk_entries_are_those_of_the_explicit_ntk(evs):
    """The NTK rows equal entries of metrics.ntk_matrix built from the GD weights."""
    from lrsweep import applications as apps
    from lrsweep.metrics import ntk_matrix
    from lrsweep.simulate import gradient_descent
    from lrsweep.tasks import random_regression

    p = exact_vs_sim.ExactVsSimSetup(t_max=6.0, n_t=61)
    task = random_regression(p.n, p.n, p.n_samples, seed=p.task_seed)
    W1, W2 = apps.balanced_inits(np.asarray(p.lambdas), p.n, p.n, p.n, p.scale, seed=p.seed)
    t = np.linspace(0.0, p.t_max, p.n_t)
    w1s, w2s = gradient_descent([W1, W2], task.sigma_yx, t, p.lr)
    K = ntk_matrix([w1s[-1], w2s[-1]], task.X).reshape(-1, p.n, p.n_samples, p.n, p.n_samples)
    ntk = evs[(evs["quantity"] == "ntk") & (evs["source"] == "gd") & (evs["t"] == t[-1])]
    for (a, n), (b, m) in exact_vs_sim.NTK_PAIRS:
        entry = f"({a + 1},{n + 1}),({b + 1},{m + 1})"
        got = ntk[ntk["entry"] == entry].sort_values("lambda")["value"].to_numpy()
        np.testing.assert_allclose(got, K[:, a, n, b, m], rtol=1e-10)


# ------------------------------------------------------------------- singular values


@pytest.fixture(scope="module")
def svs() -> pd.DataFrame:
    return singular_values.compute(lambdas=(0.0, 1.0, 30.0), t_max=8.0, n_t=321)


def test_singular_values_sigmoid_at_zero_exponential_at_large_lambda(svs):
    rich, lazy = singular_values.shape(svs, 0.0), singular_values.shape(svs, 30.0)
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


# ------------------------------------------------------------------------- hierarchy


@pytest.fixture(scope="module")
def hier() -> pd.DataFrame:
    return hierarchy.compute()


def test_hierarchy_rich_rsm_has_the_tree_blocks(hier):
    rsm = hierarchy.matrix(hier, 0.0, "W1tW1")
    tree = hierarchy.tree_depth()
    for i in range(8):  # same pair > same kingdom > other kingdom, for every item
        pair = rsm[i, tree[i] == 3]
        kingdom = rsm[i, tree[i] == 2]
        other = rsm[i, tree[i] == 1]
        assert pair.min() > kingdom.max() > other.max() - 1e-12
    st = hierarchy.rsm_structure(rsm, tree)
    assert st["tree_corr"] > 0.9 and st["non_identity"] > 0.2
    assert hier["converged_dev"].max() < 1e-8  # converged state of theory §3.4


def test_hierarchy_lazy_rsm_is_identity_like(hier):
    items_neg = hierarchy.rsm_structure(hierarchy.matrix(hier, -10.0, "W1tW1"))
    feats_pos = hierarchy.rsm_structure(hierarchy.matrix(hier, 10.0, "W2W2t"))
    rich_items = hierarchy.rsm_structure(hierarchy.matrix(hier, 0.0, "W1tW1"))
    rich_feats = hierarchy.rsm_structure(hierarchy.matrix(hier, 0.0, "W2W2t"))
    assert items_neg["non_identity"] < 0.02 < rich_items["non_identity"]
    assert feats_pos["non_identity"] < 0.02 < rich_feats["non_identity"]


# ---------------------------------------------------------------------- applications


@pytest.fixture(scope="module")
def app() -> pd.DataFrame:
    return applications.compute(
        lambdas=(0.0, 1e-3, 0.1, 10.0), curve_lambdas=(0.0, 0.1, 10.0),
        angles_deg=(0, 30, 90, 180), n_t=121,
    )  # fmt: skip


def test_applications_table_shows_saddle_forgetting_and_transfer(app):
    rt = applications.scalar(app, "reversal", "relearn_time").set_index("lambda")["value"]
    assert np.isinf(rt[0.0])
    assert rt[10.0] < rt[0.1] < rt[1e-3] < np.inf
    assert rt[-0.1] == pytest.approx(rt[0.1])
    fg = applications.scalar(app, "continual", "forgetting")["value"]
    lim = applications.scalar(app, "continual", "forgetting_limit")["value"].iloc[0]
    np.testing.assert_allclose(fg, lim, rtol=1e-8)
    tp = applications.scalar(app, "transfer", "time_pretrained")
    ts = applications.scalar(app, "transfer", "time_scratch")
    at = tp.set_index(["angle_deg", "lambda"])["value"]
    sc = ts.set_index(["angle_deg", "lambda"])["value"]
    assert np.isinf(at[(180.0, 0.0)]) and at[(0.0, 0.0)] == 0.0
    assert at[(30.0, 0.0)] < 0.2 * sc[(30.0, 0.0)]
    np.testing.assert_allclose(tp["similarity"], np.cos(np.deg2rad(tp["angle_deg"])), atol=1e-12)


# -------------------------------------------------------------- figures and captions


def test_figures_draw_from_their_tables(evs, svs, hier, app, tmp_path):
    for name, df in (("exact_vs_sim", evs), ("singular_values", svs), ("hierarchy", hier),
                     ("applications", app)):  # fmt: skip
        path = tmp_path / f"{name}.parquet"
        df.to_parquet(path, index=False)
        back = pd.read_parquet(path)
        fig = COMPUTED[name].draw(back)
        assert isinstance(fig, Figure)
        labels = " ".join(ax.get_xlabel() + ax.get_ylabel() for ax in fig.axes)
        if name != "hierarchy":
            assert r"t/\tau" in labels  # time axes in units of τ
        else:
            assert "RSM" in labels  # the colour bar is named
        cap = COMPUTED[name].caption(back)
        assert "λ" in cap and len(cap) > 200


def test_captions_follow_a_changed_setup():
    """Set-up values in a caption are read from the table, not written into the text."""
    cap = exact_vs_sim.caption(exact_vs_sim.compute(n=2, n_samples=4, t_max=1.0, n_t=11))
    assert "2–2–2 network" in cap and "P = 4" in cap and "3–3–3" not in cap
    assert "s̃ = 3, 1.75, 0.5" not in cap and "s̃ = 3, 0.5" in cap  # the 2-2 task's s̃
    assert "five NTK entries" in cap  # only the entries a 2-output net has
    cap = exact_vs_sim.caption(exact_vs_sim.compute(lambdas=(-1.0, 1.0), t_max=1.0, n_t=11))
    assert "λ ∈ {-1, 1}" in cap and "3–3–3" in cap and "s̃ = 3, 1.75, 0.5" in cap

    svs = singular_values.compute(n=2, lambdas=(0.0, 5.0), t_max=4.0, n_t=81)
    cap = singular_values.caption(svs)
    assert "(2–2–2, s̃ = 3, 0.5, a_k(0) = 0.001)" in cap and "λ ∈ {0, 5}" in cap

    cap = hierarchy.caption(hierarchy.compute(lambdas=(-3.0, 0.0), t_end=40.0, scale=2e-3))
    assert "8–8–8 net" in cap and "product singular values 0.002" in cap
    assert "t/τ = 40" in cap and "λ = -3:" in cap and "λ = 10" not in cap

    default = applications.ApplicationsSetup()
    app = applications.compute(
        n=2, lambdas=(0.0, 0.1, 10.0), curve_lambdas=(0.0, 10.0),
        angles_deg=(0, 45, 90, 180), n_t=61, level=0.05,
    )  # fmt: skip
    cap = applications.caption(app)
    assert "(2–2–2 net" in cap and "s̃ = 3, 0.5" in cap and "2.17" not in cap
    assert "5 % of ½‖Σyx‖²" in cap and "1 %" not in cap and default.level == 0.01
    assert "at θ = 45°, λ = 0:" in cap and "θ = 30°" not in cap  # the angle nearest 30°


def test_setup_overrides_are_validated():
    with pytest.raises(ValueError, match=r"`setup` keys \['bogus'\] .* allowed: \['lambdas'"):
        hierarchy.compute(bogus=1)
    with pytest.raises(ValueError, match="lambdas=0.5 of 'hierarchy' must be a sequence"):
        hierarchy.compute(lambdas=0.5)
    with pytest.raises(ValueError, match="t_end=.* must be a single value"):
        hierarchy.compute(t_end=[1.0, 2.0])
    with pytest.raises(TypeError, match="must be a HierarchySetup or a mapping"):
        experiments.make_target("hierarchy", setup=applications.ApplicationsSetup())
    p = hierarchy.HierarchySetup().override({"lambdas": [0.0, 1.0]}, "hierarchy")
    assert p.lambdas == (0.0, 1.0) and p.scale == hierarchy.HierarchySetup.scale


# --------------------------------------------------------- registry, make_target, summary


def test_make_target_computed_and_summary(tmp_path):
    quick = {
        "exact_vs_sim": {"t_max": 4.0, "n_t": 21, "lr": 2e-3},
        "singular_values": {"lambdas": (0.0, 10.0), "t_max": 6.0, "n_t": 61, "lr": 2e-3},
        "hierarchy": hierarchy.HierarchySetup(t_end=50.0),
        "applications": {"lambdas": (0.0, 0.1, 10.0), "curve_lambdas": (0.0, 10.0),
                         "angles_deg": (0, 90, 180), "n_t": 41},
    }  # fmt: skip
    pngs = {}
    for name, setup in quick.items():
        paths = experiments.make_target(name, tmp_path, setup=setup)
        fp = FigurePaths(name, tmp_path)
        assert paths == [fp.table, fp.png, fp.pdf, fp.caption]
        assert all(p.is_file() and p.stat().st_size > 0 for p in paths)
        assert not list(fp.dir.glob(".*.tmp"))  # atomic writes leave no temp files
        pngs[name] = fp.png
    table = pd.read_parquet(FigurePaths("hierarchy", tmp_path).table)
    assert set(table["t_end"]) == {50.0}  # the set-up used is in the table
    out = experiments.make_target("summary", tmp_path, pngs)
    assert out == [tmp_path / f"summary.{ext}" for ext in ("parquet", "png", "pdf")]
    table = pd.read_parquet(tmp_path / "summary.parquet")
    assert list(table["figure"]) == [experiments.FIGURES[n].title for n in quick]
    assert table["caption"].str.len().min() > 100 and not table["caption"].str.startswith("*").any()


def test_make_target_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="`name` must be one of"):
        experiments.make_target("fig1", tmp_path)
    with pytest.raises(ValueError, match="takes no `inputs`"):
        experiments.make_target("hierarchy", tmp_path, {"phase_0": tmp_path / "x.parquet"})
    with pytest.raises(ValueError, match=r"`setup` keys \['bogus'\]"):
        experiments.make_target("hierarchy", tmp_path, setup={"bogus": 1})
    with pytest.raises(ValueError, match="computed targets only"):
        experiments.make_target("phase", tmp_path, setup={"t_max": 1.0})
    with pytest.raises(ValueError, match="must be named '<table>_<k>'"):
        experiments.make_target("phase", tmp_path, {"tables": tmp_path / "x.parquet"})
    with pytest.raises(ValueError, match="missing.parquet` does not exist"):
        experiments.make_target("phase", tmp_path, {"phase_0": tmp_path / "missing.parquet"})
    with pytest.raises(ValueError, match="at least one figure PNG"):
        experiments.make_target("summary", tmp_path, {})
    assert not list(tmp_path.rglob("*.*"))


def test_registry_is_complete():
    """Every figure has a module with compute/draw/caption, a title, a report label; computed
    figures a set-up, table-driven ones a sweep selection; the summary comes last."""
    assert list(experiments.TARGETS) == [*experiments.FIGURES, experiments.SUMMARY]
    labels = [experiments.report_label(n)["figure"] for n in experiments.TARGETS]
    assert labels[0] == "1 exact vs simulation" and labels[-1] == "10 summary"
    for name, t in experiments.FIGURES.items():
        assert t.name == name and t.title and t.caption is not None
        assert (t.setup is None) != (t.select is None)
        assert name in t.report_caption and f"{name}.md" in t.report_caption
    assert {n for n, t in experiments.FIGURES.items() if t.computed} == set(COMPUTED)
    assert len(experiments.code_fingerprint()) == 16


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
    for rule in [*(f"fig_{name}" for name in experiments.FIGURES), "summary"]:
        assert f"rule {rule}:" in proc.stdout + proc.stderr
