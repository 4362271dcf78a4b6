"""Tests of lrsweep.plots on small synthetic tables following the pipeline schemas."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from matplotlib.figure import Figure

from lrsweep import io, plots, results
from lrsweep.paths import SweepPaths

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SQUARE, FUNNEL = (3, 3, 3), (6, 3, 3)  # (n_in, width, n_out)


def symlog_grid(n_side: int) -> np.ndarray:
    side = np.logspace(-1, 1, n_side)
    return np.concatenate([-side[::-1], [0.0], side])


def fake_kernel_distance(lam, scale, arch):
    """Plausible S(0, t_max): rich near λ = 0 and small scale; a funnel stays rich for λ < 0."""
    n_in, width, n_out = arch
    reach = np.abs(lam) / (0.3 * scale**2)
    s = 0.7 / (1 + reach**1.5)
    if n_in > width:
        s = np.where(lam < 0, 0.6 + 0.0 * s, s)
    return s


def make_runs(lambdas, scales, archs=(SQUARE,), depths=(2,), seeds=(0, 1), solver="exact"):
    rows, pid = [], 0
    for n_in, width, n_out in archs:
        for depth in depths:
            for lam in lambdas:
                for scale in scales:
                    for seed in seeds:
                        admissible = not (lam > 0 and width > n_out) and not (
                            lam < 0 and width > n_in
                        )
                        s = float(fake_kernel_distance(lam, scale, (n_in, width, n_out)))
                        t90 = 2.0 + 5.0 / (0.05 + abs(lam) + scale**2)
                        rows.append(
                            dict(
                                sweep="demo",
                                point_id=pid,
                                shard="s0",
                                solver=solver,
                                task="random",
                                n_in=n_in,
                                n_out=n_out,
                                width=width,
                                depth=depth,
                                **{"lambda": float(lam)},
                                scale=float(scale),
                                seed=seed,
                                status="ok" if admissible else "skipped",
                                reason="" if admissible else "inadmissible",
                                initial_loss=1.0,
                                final_loss=1e-6 * (1 + seed) * np.exp(-scale),
                                kernel_distance=s,
                                kernel_distance_max=s * 1.1,
                                ntk_change=2 * s,
                                weight_change=0.1,
                                weight_change_layers=[0.1] * depth,
                                time_to_fit_50=t90 / 2,
                                time_to_fit_90=t90,
                                time_to_fit_99=2 * t90,
                                regime="rich" if s > 0.05 else "lazy",
                                balance_drift=0.0,
                                exact_sim_deviation=np.nan,
                            )
                        )
                        pid += 1
    return pd.DataFrame(rows)


def make_phase(runs):
    ok = runs[runs["status"] == "ok"]
    keys = ["solver", "n_in", "n_out", "width", "depth", "lambda", "scale"]
    metrics = ["kernel_distance", "time_to_fit_90", "final_loss", "ntk_change"]
    agg = ok.groupby(keys)[metrics].agg(["mean", "std"])
    agg.columns = [f"{m}_{s}" for m, s in agg.columns]
    agg["n_seeds"] = ok.groupby(keys).size()
    return agg.reset_index()


def make_trajectories(runs, n_t=40, t_max=15.0):
    ok = runs[runs["status"] == "ok"]
    t = np.linspace(0, t_max, n_t)
    rows = []
    for r in ok.itertuples():
        lam = runs.loc[r.Index, "lambda"]
        rate = 1.0 + abs(lam)
        s0 = 0.01 * r.scale**2
        for k, tk in enumerate(t):
            sv = [a / (1 + (a / s0 - 1) * np.exp(-2 * a * rate * tk)) for a in (3.0, 2.0, 1.0)]
            rows.append(
                dict(
                    sweep=r.sweep,
                    point_id=r.point_id,
                    t=tk,
                    loss=0.5 * sum((a - s) ** 2 for a, s in zip((3.0, 2.0, 1.0), sv, strict=True)),
                    kernel_distance=r.kernel_distance * (1 - np.exp(-tk)) if k else 0.0,
                    singular_values=sv,
                )
            )
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def tables():
    runs = make_runs(symlog_grid(3), np.logspace(-1, 0.5, 5), archs=(SQUARE, FUNNEL))
    return runs, make_phase(runs), make_trajectories(runs[runs["seed"] == 0])


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory, tables):
    """The tables written as the pipeline writes them (lrsweep.io schemas, paths layout)."""
    paths = SweepPaths("demo", tmp_path_factory.mktemp("results"))
    runs, phase, traj = tables
    # curves exist for seed 0 only: those runs are shard "s0" (one dataset file)
    runs = runs.assign(shard=np.where(runs["seed"] == 0, "s0", "s1"))
    phase = phase.assign(sweep="demo", n_fit=phase["n_seeds"])
    boundary = dict(sweep=["demo"], solver=["exact"], n_in=[3], n_out=[3], width=[3], depth=[2])
    boundary = pd.DataFrame(
        {**boundary, "scale": [1.0], "threshold": [0.01], "lambda_neg": [-0.3], "lambda_pos": [0.3]}
    )
    for table, df, schema in (
        ("runs", runs, io.RUNS_SCHEMA),
        ("phase", phase, io.PHASE_SCHEMA),
        ("trajectories", traj, io.TRAJECTORIES_SCHEMA),
        ("boundary", boundary, io.BOUNDARY_SCHEMA),
    ):
        # columns the figures do not read are filled in (NaN, 0 or "")
        fill = {pa.types.is_floating: np.nan, pa.types.is_integer: 0, pa.types.is_string: "",
                pa.types.is_list: None}
        df = results.with_ratio_defaults(df)  # ratios 1: λ-balanced inits, one learning rate
        for f in schema:
            if f.name not in df.columns:
                df = df.assign(**{f.name: next(v for t, v in fill.items() if t(f.type))})
        if table == "trajectories":  # a one-file dataset (shard "s0", as in make_runs)
            df = df.sort_values(["point_id", "t"])
            io.write_table(pa.Table.from_pandas(df, preserve_index=False),
                           paths.shard_trajectories("s0"), schema)
            n_points = df["point_id"].nunique()
            io.write_table(pa.table({"shard": ["s0"], "file": ["s0.parquet"],
                                     "n_points": [n_points], "n_rows": [len(df)],
                                     "fingerprint": [""]}),
                           paths.trajectories, io.TRAJECTORY_INDEX_SCHEMA)
            continue
        io.write_table(pa.Table.from_pandas(df, preserve_index=False), paths.table(table), schema)
    return paths.dir


def colorbar_labels(fig: Figure) -> list[str]:
    return [ax.get_ylabel() for ax in fig.axes if hasattr(ax, "_colorbar")]


def heatmap_axes(fig: Figure):
    return [ax for ax in fig.axes if ax.get_visible() and not hasattr(ax, "_colorbar")]


# ------------------------------------------------------------------------- heatmaps


@pytest.mark.parametrize("metric", ["kernel_distance", "time_to_fit_90", "final_loss"])
def test_phase_heatmap_axes_scales_and_colourbar(tables, metric):
    _, phase, _ = tables
    fig = plots.phase_heatmaps(phase, metric, threshold=0.05)
    axes = heatmap_axes(fig)
    assert len(axes) == 2  # square and funnel
    assert [ax.get_title() for ax in axes] == ["square 3–3–3, L = 2", "funnel 6–3–3, L = 2"]
    for ax in axes:
        assert ax.get_xscale() == "symlog" and ax.get_yscale() == "log"
    assert axes[0].get_xlabel() == r"$\lambda$ (relative scale)"
    assert axes[0].get_ylabel() == "scale (absolute scale)"
    assert colorbar_labels(fig) == [plots.metric_style(metric).label]
    cbar = next(ax for ax in fig.axes if hasattr(ax, "_colorbar"))._colorbar
    assert isinstance(cbar.norm, plots.mcolors.LogNorm) == plots.metric_style(metric).log
    assert "mean over 2 seeds" in fig.get_suptitle()


def test_phase_heatmap_draws_boundary_contour_and_nodata_legend(tables):
    _, phase, _ = tables
    phase = phase.drop(index=phase.index[:3])  # e.g. failed points: cells without data
    fig = plots.phase_heatmaps(phase, "kernel_distance", threshold=0.05)
    contours = [ln for ax in heatmap_axes(fig) for ln in ax.get_lines()]
    assert contours, "expected the S = 0.05 contour to be drawn"
    labels = [t.get_text() for leg in fig.legends for t in leg.get_texts()]
    assert any("0.05" in s and "boundary" in s for s in labels)
    assert any(s.startswith("no data") for s in labels)


def test_contour_lies_between_grid_values_where_metric_crosses(tables):
    _, phase, _ = tables
    sq = phase[(phase["n_in"] == 3)]
    fig = plots.phase_heatmaps(sq, "kernel_distance", threshold=0.05)
    (ax,) = heatmap_axes(fig)
    xs = np.concatenate([ln.get_xdata() for ln in ax.get_lines()])
    # S falls with |λ|: the boundary is at |λ| > 0 on both sides of λ = 0
    assert (xs < 0).any() and (xs > 0).any() and np.all(np.abs(xs) > 0.01)


def test_boundary_markers_from_boundary_table(tables):
    _, phase, _ = tables
    sq = phase[phase["n_in"] == 3]
    scales = np.sort(sq["scale"].unique())
    boundary = pd.DataFrame(
        dict(
            solver="exact",
            n_in=3,
            n_out=3,
            width=3,
            depth=2,
            scale=scales,
            lambda_neg=-0.5 * scales,
            lambda_pos=np.where(scales > 1, np.nan, 0.5 * scales),
        )
    )
    fig = plots.phase_heatmaps(sq, "final_loss", threshold=0.05, boundary=boundary)
    (ax,) = heatmap_axes(fig)
    markers = [ln for ln in ax.get_lines() if ln.get_marker() == "D"]
    assert sum(len(ln.get_xdata()) for ln in markers) == 2 * len(scales) - (scales > 1).sum()
    labels = [t.get_text() for leg in fig.legends for t in leg.get_texts()]
    assert "boundary crossings (boundary table)" in labels


def test_facets_rows_by_depth_and_solver(tables):
    runs = make_runs([-1.0, 0.0, 1.0], [0.1, 1.0], depths=(2, 3), seeds=(0,))
    both = pd.concat([runs, make_runs([-1.0, 0.0, 1.0], [0.1, 1.0], seeds=(0,), solver="flow")])
    fig = plots.phase_heatmaps(make_phase(both), "kernel_distance")
    titles = sorted(ax.get_title() for ax in heatmap_axes(fig))
    assert titles == [
        "square 3–3–3, L = 2, exact",
        "square 3–3–3, L = 2, flow",
        "square 3–3–3, L = 3, exact",
    ]
    # only the bottom panel carries the x label; hidden grid slot stays invisible
    assert [ax.get_xlabel() != "" for ax in heatmap_axes(fig)].count(True) == 1


@pytest.mark.parametrize(
    ("lambdas", "scales", "xscale", "yscale"),
    [
        ([0.0], [1.0], "linear", "linear"),
        ([0.5], [0.1, 1.0, 10.0], "linear", "log"),
        ([-1.0, 0.0, 1.0], [2.0], "symlog", "linear"),
    ],
)
def test_degenerate_grids_still_draw(tmp_path, lambdas, scales, xscale, yscale):
    phase = make_phase(make_runs(lambdas, scales, seeds=(0,)))
    fig = plots.phase_heatmaps(phase, "kernel_distance")
    (ax,) = heatmap_axes(fig)
    assert (ax.get_xscale(), ax.get_yscale()) == (xscale, yscale)
    lo, hi = ax.get_xlim()
    assert lo < min(lambdas) <= max(lambdas) < hi
    if len(lambdas) == 1:
        assert [t.get_text() for t in ax.get_xticklabels()] == [f"{lambdas[0]:g}"]
    paths = plots.save_figure(fig, tmp_path / "deg")
    assert all(p.stat().st_size > 0 for p in paths)


def test_all_nan_metric_is_annotated(tables):
    _, phase, _ = tables
    phase = phase.assign(time_to_fit_90_mean=np.nan)
    fig = plots.phase_heatmaps(phase, "time_to_fit_90")
    texts = [t.get_text() for ax in heatmap_axes(fig) for t in ax.texts]
    assert texts == ["no finite values"] * 2
    assert colorbar_labels(fig) == [plots.metric_style("time_to_fit_90").label]


def test_phase_missing_column_raises(tables):
    _, phase, _ = tables
    msg = r"`phase` table is missing column\(s\) \['final_loss_mean'\]"
    with pytest.raises(ValueError, match=msg):
        plots.phase_heatmaps(phase.drop(columns="final_loss_mean"), "final_loss")
    with pytest.raises(ValueError, match=r"missing column\(s\) \['depth'\]"):
        plots.phase_heatmaps(phase.drop(columns="depth"), "kernel_distance")


def test_phase_duplicate_cells_raise(tables):
    _, phase, _ = tables
    with pytest.raises(ValueError, match="several rows for one cell"):
        plots.phase_heatmaps(pd.concat([phase, phase.iloc[:1]]), "kernel_distance")


# --------------------------------------------------------------------- trajectories


def test_trajectory_plot_axes_and_lambda_colourbar(tables):
    runs, _, traj = tables
    fig = plots.trajectory_plot(traj, runs, max_lines=5, threshold=0.05)
    axes = heatmap_axes(fig)
    assert len(axes) == 6  # 2 architectures × (loss, S, singular values)
    assert {ax.get_xlabel() for ax in axes[-3:]} == {r"time $t/\tau$"}
    assert axes[0].get_yscale() == "log"
    assert axes[1].get_ylabel() == r"kernel distance $S(0, t)$"
    assert colorbar_labels(fig) == [r"$\lambda$ (relative scale)"]
    cbar = next(ax for ax in fig.axes if hasattr(ax, "_colorbar"))._colorbar
    assert isinstance(cbar.norm, plots.mcolors.SymLogNorm)
    assert cbar.norm.vmin == -cbar.norm.vmax  # centred on λ = 0
    assert cbar.norm(0.0) == pytest.approx(0.5)
    assert "scale = " in fig.get_suptitle() and "seed 0" in fig.get_suptitle()


def test_select_runs_excludes_failed_and_limits_lines(tables):
    runs, _, _ = tables
    runs = runs.copy()
    runs.loc[runs["lambda"] == 0.0, "status"] = "failed"
    chosen = plots.select_runs(runs, max_lines=3)
    assert set(chosen["status"]) == {"ok"}
    assert chosen.groupby("n_in")["lambda"].nunique().max() <= 3
    assert chosen["scale"].nunique() == 1 and chosen["seed"].nunique() == 1
    assert 0.0 not in set(chosen["lambda"])


def test_trajectory_single_lambda_and_no_facets(tables):
    runs, _, traj = tables
    one = runs[runs["lambda"] == 0.0]
    fig = plots.trajectory_plot(traj, one, facet=False)
    assert len(heatmap_axes(fig)) == 3
    lines = heatmap_axes(fig)[0].get_lines()
    assert len(lines) == 1


def test_trajectory_errors(tables):
    runs, _, traj = tables
    with pytest.raises(ValueError, match=r"`trajectories` table is missing column\(s\) \['loss'\]"):
        plots.trajectory_plot(traj.drop(columns="loss"), runs)
    with pytest.raises(ValueError, match="no row with status 'ok'"):
        plots.trajectory_plot(traj, runs.assign(status="failed"))
    with pytest.raises(ValueError, match="no rows for the selected runs"):
        plots.trajectory_plot(traj.iloc[:0], runs)


# --------------------------------------------------------------------------- output


def test_plot_sweep_writes_valid_png_and_pdf(sweep_dir, tmp_path):
    out = tmp_path / "plots"
    paths = plots.plot_sweep(sweep_dir, out, dpi=60)
    names = sorted(p.name for p in paths)
    stems = ["phase_final_loss", "phase_kernel_distance", "phase_time_to_fit_90", "trajectories"]
    assert names == sorted(f"{s}.{e}" for s in stems for e in ("pdf", "png"))
    for p in paths:
        head = p.read_bytes()[:8]
        assert head == PNG_MAGIC if p.suffix == ".png" else head.startswith(b"%PDF-")
    assert sorted(p.name for p in out.iterdir()) == names  # no temp files left


@pytest.mark.parametrize(
    ("table", "column"),
    [
        ("phase", "time_to_fit_90_mean"),
        ("runs", "status"),
        ("trajectories", "singular_values"),
        ("boundary", "scale"),
    ],
)
def test_plot_sweep_missing_column_named(sweep_dir, tmp_path, table, column):
    d = tmp_path / "sweep"
    shutil.copytree(sweep_dir, d)
    f = d / "trajectories/s0.parquet" if table == "trajectories" else d / f"{table}.parquet"
    pd.read_parquet(f).drop(columns=column).to_parquet(f)
    name = "s0" if table == "trajectories" else table
    with pytest.raises(ValueError, match=rf"{name}.parquet` does not have the expected schema"):
        plots.plot_sweep(d, tmp_path / "out")
    assert not (tmp_path / "out").exists()  # checked before any drawing


def test_plot_sweep_missing_table_named(tmp_path):
    with pytest.raises(ValueError, match=r"table `.*phase.parquet` does not exist"):
        plots.plot_sweep(tmp_path, tmp_path / "out")


def test_save_figure_is_atomic_on_failure(tmp_path, monkeypatch):
    fig = Figure()
    fig.add_subplot().plot([0, 1])

    def broken(fh, **kwargs):
        fh.write(b"partial")
        raise RuntimeError("disk full")

    monkeypatch.setattr(fig, "savefig", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        plots.save_figure(fig, tmp_path / "fig")
    assert list(tmp_path.iterdir()) == []


def test_save_figure_replaces_existing(tmp_path):
    (tmp_path / "fig.png").write_bytes(b"old")
    fig = Figure()
    fig.add_subplot().plot([0, 1])
    (png,) = plots.save_figure(fig, tmp_path / "fig", formats=("png",))
    assert png.read_bytes()[:8] == PNG_MAGIC
    assert [p.name for p in tmp_path.iterdir()] == ["fig.png"]


def test_default_threshold_is_the_metrics_one(tables):
    from lrsweep.metrics import LAZY_THRESHOLD

    _, phase, _ = tables
    fig = plots.phase_heatmaps(phase, "kernel_distance")
    labels = [t.get_text() for leg in fig.legends for t in leg.get_texts()]
    assert any(f"= {LAZY_THRESHOLD:g}$" in s for s in labels)


def test_keys_and_architectures_come_from_io():
    from lrsweep import io

    assert sorted(plots.FACET_KEYS) == sorted(io.FACET_KEYS)
    assert plots.FACET_KEYS == ("solver", "n_in", "width", "n_out", "depth", "lr_ratio")
    kinds = [plots.arch_kind(*a) for a in ((4, 4, 4), (8, 4, 4), (4, 4, 8), (8, 4, 8))]
    assert kinds == ["square", "funnel", "anti-funnel", "other"]
    assert plots.arch_label(8, 4, 8) == "8–4–8" and plots.arch_label(8, 4, 4) == "funnel 8–4–4"


def test_draw_cells_averages_duplicate_cells_and_counts_contours(tables):
    _, phase, _ = tables
    sub = phase[(phase["n_in"] == 3) & (phase["depth"] == 2)]
    lam, sc = np.sort(sub["lambda"].unique()), np.sort(sub["scale"].unique())
    fig = Figure()
    ax = fig.add_subplot()
    scales = (plots.AxisScale.for_values(lam), plots.AxisScale.for_values(sc))
    scales[0].apply(ax, "x")
    scales[1].apply(ax, "y")
    twice = pd.concat([sub, sub.assign(kernel_distance_mean=3 * sub["kernel_distance_mean"])])
    style = plots.metric_style("kernel_distance")
    norm, _ = plots.metric_norm(twice["kernel_distance_mean"], style)
    _, z, lines = plots.draw_cells(
        ax, twice, "kernel_distance_mean", (lam, sc), scales, norm=norm, cmap=style.cmap,
        contour=("kernel_distance_mean", 0.05),
    )  # fmt: skip
    wide = sub.pivot(index="scale", columns="lambda", values="kernel_distance_mean")
    np.testing.assert_allclose(z, 2 * wide.reindex(index=sc, columns=lam).to_numpy())
    assert z.shape == (sc.size, lam.size) and lines >= 1
