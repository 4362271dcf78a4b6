"""Tests of lrsweep.grid: schema, defaults, semantic checks, points, seeds and shards."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from lrsweep import grid
from lrsweep.grid import ConfigError, axis_values, plan, point_ids, shard_bounds, validate_config
from lrsweep.spec import ShardSpec

ROOT = Path(__file__).resolve().parents[1]


def sweep(**kw) -> dict:
    return {"sweeps": {"s": kw}}


# ------------------------------------------------------------------------------ schema


def test_package_schema_is_the_workflow_schema():
    assert grid.SCHEMA_PATH.resolve() == (ROOT / "workflow/schemas/config.schema.yaml").resolve()


def _walk(schema: dict, path: str = ""):
    for name, sub in schema.get("properties", {}).items():
        yield f"{path}.{name}".lstrip("."), sub
    for name, sub in schema.get("$defs", {}).items():
        yield from _walk(sub, f"$defs.{name}")


def test_every_schema_key_is_described_and_defaulted():
    schema = grid.load_schema()
    for defn in [schema, *schema["$defs"].values()]:
        if defn.get("type") == "object":
            assert defn.get("additionalProperties") is False
    for key, sub in _walk(schema):
        if key in ("sweeps",) or key.startswith(
            ("$defs.range_spec", "$defs.real_axis", "$defs.int_range")
        ):
            continue
        assert "description" in sub or "$ref" in sub, key
        assert "default" in sub, f"`{key}` has no default"


def test_defaults_are_filled_and_input_untouched():
    raw = sweep()
    cfg = validate_config(raw)
    s = cfg["sweeps"]["s"]
    assert raw == sweep()
    assert cfg["plots"] is True
    assert s["solver"] == "exact" and s["on_invalid"] == "skip"
    assert s["time"] == {"t_max": 20.0, "n_points": 101, "spacing": "linear", "t_min": None}
    assert s["grid"]["lambda"] == [0.0] and s["grid"]["n_in"] is None
    assert s["regime_threshold"] == 0.01


def test_regime_threshold_default_matches_metrics():
    from lrsweep.metrics import LAZY_THRESHOLD

    props = grid.load_schema()["$defs"]["sweep"]["properties"]
    assert props["regime_threshold"]["default"] == LAZY_THRESHOLD


def test_default_config_file_is_valid():
    plans = plan(grid.load_config(ROOT / "config.yaml"))
    assert {"phase", "depth"} <= set(plans)
    phase = plans["phase"]
    lam = np.unique(phase.points["lambda"])
    assert lam.size >= 20 and np.unique(phase.points["scale"]).size >= 20
    assert np.unique(phase.points["n_in"]).tolist() == [4, 8]  # square and funnel


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        (sweep(grdi={}),
         "config key `sweeps.s`: Additional properties are not allowed ('grdi' was unexpected)"),
        ({"sweeps": {}}, "config key `sweeps` = {}: {} should be non-empty"),
        ({}, "'sweeps' is a required property"),
        (sweep(solver="magic"), "config key `sweeps.s.solver` = 'magic': 'magic' is not one of"),
        (sweep(grid={"width": [-3, 4]}),
         "config key `sweeps.s.grid.width` = [-3, 4]: values must be >= 1 (got -3)"),
        (sweep(grid={"depth": 1}), "config key `sweeps.s.grid.depth` = 1: values must be >= 2"),
        (sweep(grid={"width": "wide"}),
         "config key `sweeps.s.grid.width` = 'wide': must be an integer, a non-empty list of "
         "integers"),
        (sweep(grid={"lambda": []}),
         "config key `sweeps.s.grid.lambda` = []: [] should be non-empty"),
        (sweep(grid={"lambda": [1.0, 1.0]}), "duplicate value(s) [1.0]"),
        (sweep(grid={"scale": {"logspace": {"start": 0, "stop": 1, "num": 3}}}),
         "config key `sweeps.s.grid.scale.logspace`"),
        (sweep(grid={"scale": [-0.1]}), "the absolute scale must be >= 0"),
        (sweep(time={"t_max": -1}), "config key `sweeps.s.time.t_max` = -1"),
        (sweep(time={"spacing": "log", "t_min": 50, "t_max": 10}),
         "config key `sweeps.s.time.t_min` = 50: must be < t_max"),
        (sweep(solver="gd", lr=0.3), "config key `sweeps.s.lr` = 0.3: gradient descent saves"),
        (sweep(task={"kind": "hierarchy"}, grid={"n_in": 4}),
         "config key `sweeps.s.grid.n_in` = 4: task kind 'hierarchy' has n_in=8"),
        (sweep(task={"n_samples": 3}, grid={"n_in": [2, 6]}),
         "config key `sweeps.s.task.n_samples` = 3: must be >= every n_in"),
        (sweep(task={"singular_values": [1.0]}), "config key `sweeps.s.task.singular_values`"),
        (sweep(task={"kind": "file"}), "config key `sweeps.s.task.path` = None"),
        (sweep(task={"kind": "file", "path": "nope.npz"}), "does not exist"),
        ({"sweeps": {"bad/name": {}}}, "config key `sweeps`"),
    ],
)
def test_bad_configs_name_key_and_value(cfg, message):
    with pytest.raises(ConfigError) as info:
        plan(cfg)
    assert message in str(info.value)


def test_load_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        grid.load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("sweeps: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        grid.load_config(bad)


# -------------------------------------------------------------------------------- axes


def test_axis_generators():
    np.testing.assert_allclose(axis_values({"linspace": {"start": 0, "stop": 1, "num": 3}}),
                               [0, 0.5, 1])
    np.testing.assert_allclose(axis_values({"logspace": {"start": 0.01, "stop": 1, "num": 3}}),
                               [0.01, 0.1, 1])
    sym = axis_values({"symlog": {"min": 0.1, "max": 10, "per_side": 3}})
    np.testing.assert_allclose(sym, [-10, -1, -0.1, 0, 0.1, 1, 10])
    assert axis_values(2.5).tolist() == [2.5]
    assert axis_values([3, 1, 2], integer=True).tolist() == [1, 2, 3]
    assert axis_values([-0.0, 1.0]).tolist() == [0.0, 1.0]
    assert np.signbit(axis_values([-0.0])[0]) == np.False_


def test_time_grid():
    t = grid.time_grid({"t_max": 10.0, "n_points": 5, "spacing": "linear", "t_min": None})
    np.testing.assert_allclose(t, [0, 2.5, 5, 7.5, 10])
    t = grid.time_grid({"t_max": 10.0, "n_points": 4, "spacing": "log", "t_min": None})
    np.testing.assert_allclose(t, [0, 0.01, 0.316227766, 10])


# ------------------------------------------------------------------------ admissibility


def test_inadmissible_points_are_skipped_with_reason():
    p = plan(sweep(solver="flow", grid={"lambda": [-1.0, 0.0, 1.0], "width": [2, 8],
                                        "depth": [2, 3], "n_in": 4, "n_out": 4}))["s"]
    st_ = p.points["status"]
    assert p.n_points == 12 and p.n_skipped == 4
    skipped = {k: np.concatenate([c[k] for c in p.skipped_columns()])
               for k in ("width", "lambda", "reason", "point_id")}
    assert set(skipped["width"].tolist()) == {8} and 0.0 not in skipped["lambda"].tolist()
    assert set(skipped["point_id"]) == set(p.points["point_id"][st_ == "skipped"])
    assert all("needs widths" in r for r in skipped["reason"])
    assert all(s == "" for s in p.points["shard"][st_ == "skipped"])
    assert "4 skipped (inadmissible): 2 with lambda < 0 and width > n_in; 2 with lambda > 0" \
        in p.summary()


def test_exact_needs_depth_two():
    p = plan(sweep(solver="exact", grid={"depth": [2, 3]}))["s"]
    assert p.n_skipped == 1
    assert "solver 'exact' needs depth 2 (got depth=3); use solver flow or gd" in \
        next(p.skipped_columns())["reason"][0]


def test_on_invalid_error_is_fatal():
    with pytest.raises(ConfigError) as info:
        plan(sweep(on_invalid="error", grid={"lambda": [0.0, 1.0], "width": 8}))
    msg = str(info.value)
    assert "sweep `s`: 1 of 2 grid points are inadmissible" in msg
    assert "set `sweeps.s.on_invalid: skip`" in msg


# --------------------------------------------------------------------- ids and shards


def test_point_ids_depend_on_the_point_only():
    base = plan(sweep(grid={"lambda": [-1.0, 1.0], "seed": [0, 1]}))["s"]
    more = plan(sweep(grid={"lambda": [1.0, 0.5, -1.0], "seed": [1, 0]}))["s"]
    keys = zip(base.points["lambda"].tolist(), base.points["seed"].tolist(), strict=True)
    ids = dict(zip(keys, base.points["point_id"].tolist(), strict=True))
    for lam, seed, pid in zip(more.points["lambda"].tolist(), more.points["seed"].tolist(),
                              more.points["point_id"].tolist(), strict=True):
        if (lam, seed) in ids:
            assert ids[(lam, seed)] == pid
    assert np.all(more.points["point_id"] >= 0)
    assert np.unique(more.points["point_id"]).size == more.n_points


def test_point_ids_distinguish_every_parameter():
    n = len(grid.AXES) + 1
    cols = {a: np.zeros(n, dtype=np.int64 if a in grid.INT_AXES else float) for a in grid.AXES}
    for a in grid.RATIO_AXES:
        cols[a][:] = 1.0
    for k, a in enumerate(grid.AXES):
        cols[a][k + 1] = 2
    assert np.unique(point_ids(cols)).size == n


def test_ratio_axes_at_one_leave_point_ids_unchanged():
    """Sweeps without layer or learning-rate ratios keep the ids they had before those axes."""
    rng = np.random.default_rng(0)
    base = {a: rng.integers(1, 9, 50) for a in grid.SHAPE_AXES + ("seed",)}
    base |= {"lambda": rng.normal(size=50), "scale": rng.uniform(size=50)}
    ones = {a: np.ones(50) for a in grid.RATIO_AXES}
    np.testing.assert_array_equal(point_ids(base), point_ids({**base, **ones}))
    other = point_ids({**base, **ones, "lr_ratio": np.full(50, 2.0)})
    assert not np.any(other == point_ids(base))
    swapped = point_ids({**base, "layer_ratio": np.full(50, 2.0), "lr_ratio": np.ones(50)})
    assert not np.any(other == swapped)
    # neighbouring floats on the two axes (4 and 4 + 1 ulp, as geomspace gives) stay apart
    up = np.nextafter(4.0, 5.0)
    a = point_ids({**base, "layer_ratio": np.full(50, up), "lr_ratio": np.ones(50)})
    b = point_ids({**base, "layer_ratio": np.ones(50), "lr_ratio": np.full(50, 4.0)})
    assert not np.any(a == b)


def test_a_plan_over_ratio_axes_has_distinct_ids_and_shards():
    sweep = {"solver": "flow", "init": {"kind": "gaussian"},
             "grid": {"scale": {"logspace": {"start": 0.1, "stop": 3.0, "num": 7}},
                      "layer_ratio": {"logspace": {"start": 0.125, "stop": 8.0, "num": 7}},
                      "lr_ratio": [0.25, 1.0, 4.0], "seed": [0, 1], "n_in": [4, 8]}}
    p = plan({"sweeps": {"g": sweep}})["g"]
    assert np.unique(p.points["point_id"]).size == p.n_points == 2 * 7 * 3 * 7 * 2
    assert len(set(p.shards)) == len(p.shards) == sum(len(g.shards) for g in p.groups)


def test_point_seed_is_common_across_lambda_and_scale():
    a = grid.point_seed(0, 1, 4, 4, 4, 2).generate_state(4)
    b = grid.point_seed(0, 1, 4, 4, 4, 2).generate_state(4)
    c = grid.point_seed(0, 2, 4, 4, 4, 2).generate_state(4)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


@given(st.integers(1, 400), st.integers(1, 60))
def test_shard_bounds_partition(n, target):
    ids = point_ids({a: np.arange(n) if a == "lambda" else np.zeros(n, dtype=np.int64)
                     for a in grid.AXES})
    bounds = shard_bounds(ids, target)
    assert bounds[0][0] == 0 and bounds[-1][1] == n
    assert all(b[0] == a[1] for a, b in zip(bounds[:-1], bounds[1:], strict=True))
    sizes = [b - a for a, b in bounds]
    assert max(sizes) <= 2 * target
    assert all(s >= max(target // 2, 1) for s in sizes[:-1])


def test_adding_a_lambda_changes_few_shards():
    lam = np.linspace(-3, 3, 61).round(6).tolist()
    cfg = {"grid": {"lambda": lam, "scale": [0.01, 0.1, 1.0], "seed": [0, 1]}, "shard_size": 24}
    before = plan(sweep(**cfg))["s"]
    cfg["grid"]["lambda"] = sorted(lam + [0.05])
    after = plan(sweep(**cfg))["s"]
    assert len(before.shards) >= 10
    assert len(set(after.shards) - set(before.shards)) <= 2


def test_shards_group_one_shape_and_solver():
    p = plan(sweep(solver="flow", grid={"width": [2, 3], "depth": [2, 3], "lambda": [0.0]}))["s"]
    assert len(p.shards) == 4
    for shard in p.shards:
        spec = p.shard_spec(shard)
        rows = p.points["shard"] == shard
        assert shard.startswith(f"flow-i4-o4-w{spec.shape.width}-d{spec.shape.depth}-")
        assert set(p.points["width"][rows].tolist()) == {spec.shape.width}
        assert p.points["point_id"][rows].tolist() == spec.points["point_id"].tolist()
    with pytest.raises(ValueError, match="has no shard 'nope'"):
        p.shard_spec("nope")


def test_shard_params_are_plain_python_and_minimal():
    p = plan(sweep(solver="flow", grid={"lambda": [0.0, 1.0]}))["s"]
    spec = p.shard_spec(p.shards[0])
    params = spec.to_params()
    assert eval(repr(params)) == params  # noqa: S307 - plain values only (Snakemake stores repr)
    assert ShardSpec.from_params(params) == spec
    assert "lr" not in params
    changed = plan(sweep(solver="flow", lr=0.01, grid={"lambda": [0.0, 1.0]}))["s"]
    assert changed.shard_spec(changed.shards[0]).to_params() == params
    gd = plan(sweep(solver="gd", lr=0.01, grid={"lambda": [0.0, 1.0]}))["s"]
    assert gd.shard_spec(gd.shards[0]).to_params()["lr"] == 0.01


def test_large_grid_plans_fast():
    cfg = sweep(grid={"lambda": {"linspace": {"start": -5, "stop": 5, "num": 100}},
                      "scale": {"logspace": {"start": 1e-3, "stop": 1, "num": 100}},
                      "seed": list(range(10))})
    t0 = time.perf_counter()
    p = plan(cfg)["s"]
    specs = [p.shard_spec(s) for s in p.shards]
    assert time.perf_counter() - t0 < 5.0
    assert sum(s.n_points for s in specs) == 100_000


def test_config_yaml_round_trip(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(sweep(grid={"lambda": [0.5]})))
    assert grid.load_config(path)["sweeps"]["s"]["grid"]["lambda"] == [0.5]
