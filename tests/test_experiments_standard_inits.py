"""The ``standard_inits`` paper target: Gaussian inits on the lazy–rich map (theory §6.2).

The science (presets, the λ_eff-balanced prediction) is tested in test_standard.py; here, the
figure's table carries the physics its caption claims (the layer ratio acts through λ_eff, as
the architecture allows; the prediction improves with the outer width), the preset markers sit
at the presets' σ, the kernel distance is the pipeline's, and the caption reads the table.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lrsweep import experiments
from lrsweep import standard as sd
from lrsweep.dynamics import solve_dynamics
from lrsweep.experiments import standard_inits as si
from lrsweep.measures import Outcome
from lrsweep.paths import FigurePaths
from lrsweep.tasks import random_regression

QUICK = {
    "n_multipliers": 5,
    "n_ratios": 5,
    "n_seeds": 1,
    "width_sizes": (4, 8, 16),
    "width_seeds": 4,
}
"""Multipliers 0.1 … 3 and ratios 1/8, 0.35, 1, 2.8, 8 (the default ranges), one seed."""
TINY = {"shapes": ((4, 4, 4),), "n_multipliers": 2, "n_ratios": 3, "n_seeds": 1}


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return si.compute(**QUICK)


@pytest.fixture(scope="module")
def width_table() -> pd.DataFrame:
    """The default width panel (n = 4 … 64, 12 seeds), a tiny phase diagram."""
    return si.compute(**TINY)


def cells(df: pd.DataFrame, arch: str) -> pd.DataFrame:
    """Mean S per cell, multipliers as rows, ratios as columns."""
    sub = df[(df["panel"] == "phase") & (df["architecture"] == arch)]
    return sub.pivot_table(index="multiplier", columns="ratio", values="kernel_distance")


def test_the_layer_ratio_acts_through_lambda_eff_as_the_architecture_allows(table):
    """Small inits are rich at every ratio. At the largest multiplier the ratio decides: the
    square net is rich near λ̄ = 0 (r = 1) and lazy at both ends (|λ_eff| large); the funnel
    8–4–4 turns lazy only at large r (λ_eff > 0), the anti-funnel 4–4–8 only at small r
    (λ_eff < 0): the wide layer of the other side has to rotate onto the task (theory §2)."""
    thr = QUICK.get("threshold", 0.01)
    rich, lazy = (lambda s: s > thr), (lambda s: s <= thr)
    for arch in ("8–4–4", "4–4–4", "4–4–8"):
        S = cells(table, arch)
        assert (S.iloc[0] > 10 * thr).all(), arch  # m = 0.1: rich everywhere
        top = S.iloc[-1]
        lo, mid, hi = top.iloc[0], top.loc[1.0], top.iloc[-1]
        assert rich(mid) and mid > 10 * min(lo, hi), (arch, top)
        assert {"8–4–4": rich(lo) and lazy(hi), "4–4–4": lazy(lo) and lazy(hi),
                "4–4–8": lazy(lo) and rich(hi)}[arch], (arch, top)  # fmt: skip
    square = cells(table, "4–4–4").iloc[-1]
    assert square.loc[1.0] > 50 * max(square.iloc[0], square.iloc[-1])
    # the sign of the expected imbalance follows the ratio, and the measured λ_eff follows it
    ph = table[table["panel"] == "phase"]
    assert (np.sign(ph["lambda_expected"]) == np.sign(np.log(ph["ratio"] / r0(ph)))).all()
    big = ph[np.abs(np.log(ph["ratio"])) > 1.5]  # r = 1/8 and 8
    assert (np.sign(big["lambda_eff"]) == np.sign(big["lambda_expected"])).all()


def r0(ph: pd.DataFrame) -> pd.Series:
    """λ̄ = 0 ratio of each row's net: r² = N_i b_1²/(N_o b_2²) in Xavier coordinates."""
    out = {}
    for arch in ph["architecture"].unique():
        n_i, n_h, n_o = (int(v) for v in arch.split("–"))
        out[arch] = np.sqrt(n_i / (n_i + n_h) / (n_o / (n_h + n_o)))
    return ph["architecture"].map(out)


@pytest.mark.parametrize("widths", [(8, 4, 4), (4, 4, 4), (4, 4, 8), (3, 7, 5), (16, 2, 16)])
@pytest.mark.parametrize("name", ["lecun", "xavier", "he", "constant"])
def test_preset_coordinates_reproduce_the_preset_sigmas(name, widths):
    m, r = si.preset_coordinates(name, widths)
    np.testing.assert_allclose(
        sd.preset_sigmas("xavier", widths, m, r), sd.preset_sigmas(name, widths), rtol=1e-13
    )
    m2, r2 = si.preset_coordinates(name, widths, base="he")
    np.testing.assert_allclose(
        sd.preset_sigmas("he", widths, m2, r2), sd.preset_sigmas(name, widths), rtol=1e-13
    )


def test_the_preset_rows_are_the_presets(table):
    pres = table[table["panel"] == "preset"]
    assert set(pres["preset"]) == set(si.MARKERS)
    for row in pres.itertuples():
        shape = (row.n_in, row.width, row.n_out)
        np.testing.assert_allclose(
            [row.sigma_1, row.sigma_2], sd.preset_sigmas(row.preset, shape), rtol=1e-12
        )
    square = pres[pres["architecture"] == "4–4–4"].set_index("preset")
    # for a square net LeCun is Xavier, He is √2 × it at the same ratio
    np.testing.assert_allclose(square.loc["lecun", "kernel_distance"],
                               square.loc["xavier", "kernel_distance"], rtol=1e-12)  # fmt: skip
    np.testing.assert_allclose(square.loc["he", ["multiplier", "ratio"]].to_numpy(float),
                               [np.sqrt(2), 1.0], rtol=1e-12)  # fmt: skip


def test_the_kernel_distance_is_the_pipelines():
    """S(0, t_max) of the figure (rtol 1e-6) equals the pipeline's: ``Outcome`` of the
    ``flow`` solver at its default tolerance, for Gaussian inits from lazy to rich."""
    shape = (4, 4, 4)
    task = random_regression(4, 4, seed=0)
    m, r = np.array([0.1, 1.0, 3.0, 3.0]), np.array([1.0, 1.0, 0.125, 8.0])
    ws = sd.gaussian_init(shape, sd.preset_sigmas("xavier", shape, m, r), [0, 1, 2, 3])
    t = np.array([0.0, 30.0])
    ref = Outcome(solve_dynamics(ws, task.sigma_yx, t, method="flow"), task.sigma_yx, 4)
    _, _, dist, status = si._flow(ws, task.sigma_yx, t, 1e-6)
    assert (status == 0).all()
    np.testing.assert_allclose(dist[-1], ref.kernel_distance[-1], rtol=1e-4, atol=1e-8)


def test_the_prediction_improves_with_the_outer_width(width_table):
    """Theory §6.2: at N_h = 2 the off-balance of D and |S_sim − S_pred| fall with n = N_i =
    N_o by more than 3 standard errors (and the trajectory error by more than 2), while S_sim
    itself grows towards 1; the fits in the table are refits of its width rows."""
    width = width_table[width_table["panel"] == "width"]
    assert sorted(width["x"].unique()) == [4.0, 8.0, 16.0, 32.0, 64.0]
    assert width["prediction_admissible"].astype(bool).all() and (width["status"] == 0).all()
    fits = width_table[width_table["panel"] == "fit"].set_index("quantity")
    for col in si.ERRORS:
        k = np.polyfit(np.log(width["x"]), np.log(width[col].astype(float)), 1)[0]
        np.testing.assert_allclose(fits.loc[col, "slope"], k, rtol=1e-10)
        assert fits.loc[col, "n_fit"] == len(width)
    t = fits["slope"] / fits["slope_se"]
    assert t["kernel_distance_error"] < -3 and t["off_balance"] < -3, t
    assert t["trajectory_error"] < -2, t
    s_sim = width.groupby("x")["kernel_distance"].mean()
    assert s_sim.is_monotonic_increasing and s_sim.iloc[-1] > 0.9
    s_pred = width.groupby("x")["kernel_distance_predicted"].mean()
    np.testing.assert_allclose(s_pred, s_sim, atol=0.1)


def test_the_table_records_its_set_up(table):
    assert set(table["panel"]) == set(si.PANELS)
    n_phase = 3 * QUICK["n_multipliers"] * QUICK["n_ratios"] * QUICK["n_seeds"]
    assert (table["panel"] == "phase").sum() == n_phase
    assert (table["panel"] == "preset").sum() == 3 * len(si.MARKERS) * QUICK["n_seeds"]
    width = table[table["panel"] == "width"]
    assert len(width) == len(QUICK["width_sizes"]) * QUICK["width_seeds"]
    for col in ("multiplier", "ratio", "sigma_1", "sigma_2", "lambda_expected", "lambda_eff",
                "kernel_distance", "kernel_distance_predicted", "trajectory_error",
                "off_balance", "slope", "slope_se"):  # fmt: skip
        assert col in table.columns, col
    assert set(table["setup_width_seeds"]) == {QUICK["width_seeds"]}
    assert set(table["setup_preset"]) == {"xavier"} and set(table["setup_threshold"]) == {0.01}
    ph = table[table["panel"] == "phase"]
    np.testing.assert_allclose(sorted(ph["multiplier"].unique()), np.geomspace(0.1, 3.0, 5))
    np.testing.assert_allclose(sorted(ph["ratio"].unique()), np.geomspace(1 / 8, 8, 5))
    with pytest.raises(ValueError, match="`preset` must be one of"):
        si.compute(preset="kaiming", **TINY)


def test_caption_reads_the_table(table):
    cap = si.caption(table)
    fits = table[table["panel"] == "fit"].set_index("quantity")
    f = fits.loc["kernel_distance_error"]
    assert f"|S_sim − S_pred| ∝ n^({f['slope']:+.2f} ± {f['slope_se']:.2f})" in cap
    pres = si._presets(table).set_index(["architecture", "preset"])
    he = pres.loc[("8–4–4", "he")]
    assert f"he at (m, r) = (1.32, 1.15): S = {he['kernel_distance']:.3g}, rich" in cap
    assert "4–4–4: " in cap and "lazy at the smallest r and the largest r" in cap
    assert "λ̄ = 0 at r = 1.15" in cap and "n = 4–16" in cap and "4 seeds per n" in cap
    other = si.compute(**TINY, t_max=10.0, width_ratio=3.0, width_sizes=(4, 8, 16, 32),
                       width_seeds=3, threshold=0.02)  # fmt: skip
    cap2 = si.caption(other)
    assert "t_max = 10" in cap2 and "ratio 3" in cap2 and "n = 4–32" in cap2
    assert "3 seeds per n" in cap2 and "lazy where S ≤ 0.02" in cap2
    assert "8–4–4" not in cap2 and "t_max = 30" not in cap2


def test_the_figure_draws_from_its_table_alone(table, tmp_path):
    table.to_parquet(tmp_path / "s.parquet", index=False)
    back = pd.read_parquet(tmp_path / "s.parquet")
    fig = si.draw(back)
    titles = [ax.get_title() for ax in fig.axes]
    assert {"funnel 8–4–4 (N_i–N_h–N_o)", "anti-funnel 4–4–8 (N_i–N_h–N_o)"} <= set(titles)
    drawn = {line.get_label() for ax in fig.axes for line in ax.get_lines()}
    assert {"S = 0.01", r"$\bar\lambda = 0$ (expected imbalance)"} <= drawn
    assert any(label.startswith("he (S = ") for label in drawn)
    assert any(r"$n^{" in label for label in drawn)  # the fitted power laws
    assert si.caption(back) == si.caption(table)


def test_make_target_writes_the_standard_inits_figure(tmp_path):
    setup = {**TINY, "width_sizes": (4, 8, 16), "width_seeds": 3}
    paths = experiments.make_target("standard_inits", tmp_path, setup=setup)
    fp = FigurePaths("standard_inits", tmp_path)
    assert paths == [fp.table, fp.png, fp.pdf, fp.caption]
    assert set(pd.read_parquet(fp.table)["setup_width_seeds"]) == {3}
    assert fp.caption.read_text().startswith("**Where standard initialisations fall.**")
