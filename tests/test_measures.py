"""Tests of lrsweep.measures: the one registry behind the runs/phase columns and the CLI."""

from __future__ import annotations

import numpy as np
import pytest

from lrsweep import cli, io, measures, results, solve
from lrsweep.grid import plan
from lrsweep.measures import Measure, PlotStyle
from lrsweep.merge import solve_and_merge
from lrsweep.paths import SweepPaths

SWEEP = {
    "solver": "exact",
    "time": {"t_max": 10.0, "n_points": 21},
    "grid": {"lambda": [-2.0, 0.0, 2.0], "scale": [0.1], "seed": [0, 1]},
}


@pytest.fixture
def loss_ratio():
    """A measure added through the registry alone (removed after the test)."""
    m = measures.register(
        Measure(
            "loss_ratio",
            "final over initial excess loss (dimensionless)",
            lambda o: o.loss[-1] / o.loss[0],
            label="final / initial loss",
            phase=True,
            style=PlotStyle("final / initial loss", log=True),
        )
    )
    yield m
    measures.unregister(m.name)


def test_a_registered_measure_reaches_runs_phase_and_cli(loss_ratio, tmp_path, capsys):
    p = plan({"sweeps": {"s": SWEEP}})["s"]
    paths = SweepPaths("s", tmp_path)
    solve_and_merge(p, paths)
    runs = results.load_runs(paths.dir)
    np.testing.assert_allclose(runs["loss_ratio"], runs["final_loss"] / runs["initial_loss"])
    phase = results.load_phase(paths.dir)
    for lam, cell in runs.groupby("lambda"):
        row = phase[phase["lambda"] == lam]
        np.testing.assert_allclose(row["loss_ratio_mean"], cell["loss_ratio"].mean())
        np.testing.assert_allclose(row["loss_ratio_std"], cell["loss_ratio"].std())

    assert cli.main(["solve", "--lam", "2", "--scale", "0.1", "--t-max", "10"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if "final / initial loss" in x)
    assert float(line.split()[-1]) < 1e-10


def test_schemas_follow_the_registry(loss_ratio):
    names = io.runs_schema().names
    metric_names = [m.name for m in measures.measures("metric")]
    diag_names = [m.name for m in measures.measures("diagnostic")]
    assert "loss_ratio" in metric_names and "loss_ratio" in names
    # metrics, then the regime label, then diagnostics
    assert names.index("regime") > max(names.index(n) for n in metric_names)
    assert names.index("regime") < min(names.index(n) for n in diag_names)
    assert "loss_ratio_mean" in io.phase_schema().names
    field = io.runs_schema().field("loss_ratio")
    assert field.metadata[b"description"].decode() == loss_ratio.description


def test_registry_rejects_duplicates_and_bad_kinds():
    with pytest.raises(ValueError, match="already registered"):
        measures.register(Measure("final_loss", "again", lambda o: o.loss[-1]))
    with pytest.raises(ValueError, match="`kind` must be 'metric' or 'diagnostic'"):
        Measure("x", "y", lambda o: o.loss[-1], kind="other")


def test_solver_specific_measures_are_nan_elsewhere():
    p = plan({"sweeps": {"s": SWEEP}})["s"]
    runs, _ = solve.solve_points(p.shard_spec(p.shards[0]))
    df = runs.to_pandas()
    assert df["exact_sim_deviation"].isna().all()  # applies to solver 'both' only
    (dev,) = [m for m in measures.measures() if m.name == "exact_sim_deviation"]
    assert dev.applies_to("both") and not dev.applies_to("exact")
