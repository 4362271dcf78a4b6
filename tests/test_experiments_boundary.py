"""The ``boundary`` paper target: λ* searched along λ for the settings each panel moves.

The search itself is tested against brute-force bisection in test_search.py; here, the
figure's table carries the physics its caption claims, and the caption reads its numbers off
the table.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lrsweep import experiments
from lrsweep.experiments import boundary
from lrsweep.paths import FigurePaths

QUICK = {
    "widths": (2, 4, 6, 8),
    "sizes": (4, 8),
    "scales": (0.1, 10.0),
    "depths": (2, 3),
    "depth_t_max": 5.0,
    "target_scales": (0.5, 2.0),
    "horizons": (0.3, 3.0),
    "rtol": 1e-5,
}


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return boundary.compute(**QUICK)


def first(df: pd.DataFrame, panel: str, side: str = "positive") -> pd.Series:
    sel = (df["panel"] == panel) & (df["side"] == side) & (df["crossing"] == 0)
    return df[sel & (df["status"] == "converged")].set_index("x")["lambda_star"].sort_index()


def test_every_panel_is_searched_to_the_set_up_precision(table):
    assert set(table["panel"]) == set(boundary.PANELS)
    conv = table[table["status"] == "converged"]
    lo, hi = conv["bracket_lo"], conv["bracket_hi"]  # the final bracket of the root
    assert ((lo <= conv["lambda_star"]) & (conv["lambda_star"] <= hi)).all()
    assert (hi - lo <= QUICK["rtol"] * conv["lambda_star"].abs()).all()
    assert set(table["setup_rtol"]) == {QUICK["rtol"]}  # the set-up is in the table


def test_a_side_turns_lazy_only_where_its_large_layer_is_square(table):
    """At N_i = 4, N_o = 8: λ < 0 (admissible for N_h ≤ 4) turns lazy at N_h = N_i only,
    λ > 0 at N_h = N_o only; the bottleneck N_h = 2 and N_h = 6 stay rich up to ±100."""
    width = table[table["panel"] == "width"]
    lazy = {(r.x, r.side) for r in width.itertuples() if r.status == "converged"}
    assert lazy == {(4.0, "negative"), (8.0, "positive")}
    admissible = {(r.x, r.side) for r in width.itertuples()}
    assert admissible == {(w, "positive") for w in (2.0, 4.0, 6.0, 8.0)} | {
        (w, "negative") for w in (2.0, 4.0)}  # fmt: skip
    size = table[(table["panel"] == "size") & (table["status"] == "converged")]
    for family, sides in (("square", {"positive", "negative"}), ("anti-funnel", {"positive"}),
                          ("funnel", {"negative"})):  # fmt: skip
        got = size[size["family"] == boundary.FAMILIES[family]].groupby("x")["side"].apply(set)
        assert len(got) and all(s == sides for s in got), (family, got)
    square = size[size["family"] == boundary.FAMILIES["square"]]
    square = square.pivot(index="x", columns="side", values="lambda_star")
    np.testing.assert_allclose(square["positive"], -square["negative"], rtol=2 * QUICK["rtol"])


def test_a_square_nets_boundary_does_not_depend_on_the_init_scale(table):
    """A square net's λ-balanced random init has isotropic W1ᵀW1(0), W2W2ᵀ(0), so K_0 ∝ I
    and S(0, t) depends on K_t alone, which forgets the init scale as t grows (theory §6.2);
    the funnel's K_0 is not isotropic and its λ* moves with the scale."""
    scale = table[(table["panel"] == "scale") & (table["side"] == "positive")]
    by = scale.pivot(index="x", columns="family", values="lambda_star")
    np.testing.assert_allclose(by["4–4–4"][10.0], by["4–4–4"][0.1], rtol=1e-5)
    assert by["8–4–4"][10.0] > 2 * by["8–4–4"][0.1]


def test_deeper_nets_turn_lazy_at_smaller_lambda(table):
    depth = first(table, "depth")
    assert list(depth.index) == [2.0, 3.0] and depth[3.0] < 0.75 * depth[2.0]


def test_lambda_star_scales_with_the_task():
    """Σyx → kΣyx with W → √k W, t → t/k maps λ → kλ: λ* is proportional to the task's scale
    up to the (small, fixed) init scale and the finite horizon, which break the symmetry."""
    df = boundary.compute(
        target_scales=(0.5, 1.0, 2.0),
        sizes=(4,),
        depths=(2,),
        horizons=(3.0,),
        rtol=1e-5,
        widths=(4,),
        scales=(0.1,),
        depth_t_max=1.0,
    )
    task = first(df, "target_scale")
    slope = np.polyfit(np.log(task.index), np.log(task.to_numpy()), 1)[0]
    assert abs(slope - 1.0) < 0.05


def test_the_crossing_settles_with_the_horizon(table):
    horizon = first(table, "t_max")
    assert horizon[0.3] < 0.8 * horizon[3.0]  # a short horizon sees less of the rotation
    size4 = first(table[table["family"] == "N–N–N"], "size")[4.0]  # t_max = 30
    np.testing.assert_allclose(horizon[3.0], size4, rtol=1e-4)


def test_caption_reads_the_table(table):
    cap = boundary.caption(table)
    depth = first(table, "depth")
    assert f"2: {depth[2.0]:.3g}" in cap and f"3: {depth[3.0]:.3g}" in cap
    assert "lazy λ < 0 at N_h = 4; λ > 0 at N_h = 8; 4 of 6 width sides stay rich" in cap
    assert "rtol 1e-05" in cap and "t_max = 5" in cap


def test_the_figure_draws_from_its_table_alone(table, tmp_path):
    table.to_parquet(tmp_path / "b.parquet", index=False)
    back = pd.read_parquet(tmp_path / "b.parquet")
    fig = boundary.draw(back)
    assert [ax.get_xlabel() for ax in fig.axes] == list(boundary.PANELS.values())
    drawn = {line.get_label() for ax in fig.axes for line in ax.get_lines()}
    assert {"N–N–N λ > 0", "N–N–N λ < 0", "N–N–4 λ < 0", "8–4–4 λ > 0"} <= drawn
    assert "λ > 0: none ≤ 100" in drawn
    assert boundary.caption(back) == boundary.caption(table)


def test_make_target_writes_the_boundary_figure(tmp_path):
    setup = {
        **QUICK,
        "widths": (4,),
        "sizes": (4,),
        "depths": (2,),
        "horizons": (1.0,),
        "scales": (0.1,),
        "target_scales": (1.0,),
        "depth_t_max": 1.0,
    }
    paths = experiments.make_target("boundary", tmp_path, setup=setup)
    fp = FigurePaths("boundary", tmp_path)
    assert paths == [fp.table, fp.png, fp.pdf, fp.caption]
    assert set(pd.read_parquet(fp.table)["setup_rtol"]) == {QUICK["rtol"]}
