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
    "sizes": (4, 8),
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
    assert set(table["panel"]) == {"size", "bottleneck", "depth", "target_scale", "t_max"}
    conv = table[table["status"] == "converged"]
    lo, hi = conv["bracket_lo"], conv["bracket_hi"]  # the final bracket of the root
    assert ((lo <= conv["lambda_star"]) & (conv["lambda_star"] <= hi)).all()
    assert (hi - lo <= QUICK["rtol"] * conv["lambda_star"].abs()).all()
    assert set(table["setup_rtol"]) == {QUICK["rtol"]}  # the set-up is in the table


def test_size_panel_square_nets_symmetric_rectangular_one_sided(table):
    size = table[(table["panel"] == "size") & (table["status"] == "converged")]
    for family, sides in (
        ("square", {"positive", "negative"}),
        ("anti-funnel", {"positive"}),
        ("funnel", {"negative"}),
    ):
        got = size[size["family"] == family].groupby("x")["side"].apply(set)
        assert all(s == sides for s in got), (family, got)
    square = size[size["family"] == "square"].pivot(index="x", columns="side", values="lambda_star")
    np.testing.assert_allclose(square["positive"], -square["negative"], rtol=2 * QUICK["rtol"])
    neck = table[table["panel"] == "bottleneck"]
    assert set(neck["side"]) == {"positive", "negative"} and (neck["status"] == "none").all()


def test_deeper_nets_turn_lazy_at_smaller_lambda(table):
    depth = first(table, "depth")
    assert list(depth.index) == [2.0, 3.0] and depth[3.0] < 0.75 * depth[2.0]


def test_lambda_star_scales_with_the_task():
    """Σyx → kΣyx with W → √k W, t → t/k maps λ → kλ: λ* is proportional to the task's scale
    up to the (small, fixed) init scale and the finite horizon, which break the symmetry."""
    df = boundary.compute(
        target_scales=(0.5, 1.0, 2.0), sizes=(4,), depths=(2,), horizons=(3.0,), rtol=1e-5
    )
    task = first(df, "target_scale")
    slope = np.polyfit(np.log(task.index), np.log(task.to_numpy()), 1)[0]
    assert abs(slope - 1.0) < 0.05


def test_the_crossing_settles_with_the_horizon(table):
    horizon = first(table, "t_max")
    assert horizon[0.3] < 0.8 * horizon[3.0]  # a short horizon sees less of the rotation
    size4 = first(table[table["family"] == "square"], "size")[4.0]  # t_max = 30
    np.testing.assert_allclose(horizon[3.0], size4, rtol=1e-4)


def test_caption_reads_the_table(table):
    cap = boundary.caption(table)
    depth = first(table, "depth")
    assert f"2: {depth[2.0]:.3g}" in cap and f"3: {depth[3.0]:.3g}" in cap
    assert "8–4–8 net turns lazy on neither side" in cap
    assert "rtol 1e-05" in cap and "t_max = 5" in cap


def test_the_figure_draws_from_its_table_alone(table, tmp_path):
    table.to_parquet(tmp_path / "b.parquet", index=False)
    back = pd.read_parquet(tmp_path / "b.parquet")
    fig = boundary.draw(back)
    assert [ax.get_xlabel() for ax in fig.axes] == list(boundary.PANELS.values())
    drawn = {line.get_label() for ax in fig.axes for line in ax.get_lines()}
    assert {"N–N–N λ > 0", "N–N–N λ < 0", boundary.FAMILIES["funnel"]} <= drawn
    assert boundary.caption(back) == boundary.caption(table)


def test_make_target_writes_the_boundary_figure(tmp_path):
    setup = {**QUICK, "sizes": (4,), "depths": (2,), "horizons": (1.0,)}
    paths = experiments.make_target("boundary", tmp_path, setup=setup)
    fp = FigurePaths("boundary", tmp_path)
    assert paths == [fp.table, fp.png, fp.pdf, fp.caption]
    assert set(pd.read_parquet(fp.table)["setup_rtol"]) == {QUICK["rtol"]}
