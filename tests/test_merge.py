"""Tests of lrsweep.merge: streaming merge, exact phase partials, shard integrity, recovery."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lrsweep import io, results
from lrsweep.grid import plan
from lrsweep.merge import (
    FINGERPRINT_KEY,
    combine_partials,
    merge_sweep,
    phase_partials,
    solve_and_merge,
)
from lrsweep.paths import TABLES, SweepPaths
from lrsweep.solve import run_shard

CFG = {
    "solver": "exact",
    "shard_size": 6,
    "time": {"t_max": 10.0, "n_points": 11, "spacing": "log"},
    "grid": {"lambda": [-3.0, 0.0, 3.0], "scale": [0.01, 0.3], "width": [4, 5], "seed": [0, 1]},
}


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    """A sweep solved and merged without faults: the reference tables."""
    p = plan({"sweeps": {"s": CFG}})["s"]
    paths = SweepPaths("s", tmp_path_factory.mktemp("clean"))
    solve_and_merge(p, paths)
    return p, paths


def tables(paths: SweepPaths) -> dict[str, pd.DataFrame]:
    out = {t: pd.read_parquet(paths.table(t)) for t in ("runs", "phase", "boundary")}
    out["curves"] = results.load_trajectories(paths.dir)
    return out


def assert_same(a: SweepPaths, b: SweepPaths) -> None:
    ta, tb = tables(a), tables(b)
    for name in ta:
        pd.testing.assert_frame_equal(ta[name], tb[name], check_exact=True, obj=name)


@pytest.fixture
def work(clean, tmp_path):
    p, paths = clean
    shutil.copytree(paths.dir, tmp_path / "s")
    return p, SweepPaths("s", tmp_path)


def stamp_like(path, table: pa.Table) -> pa.Table:
    """``table`` with the fingerprint metadata of the file at ``path``."""
    fp = pq.read_schema(path).metadata[FINGERPRINT_KEY]
    return table.replace_schema_metadata({FINGERPRINT_KEY: fp})


def corrupt_foreign(p, paths):
    a, b = p.shards[:2]
    shutil.copy(paths.shard_trajectories(b), paths.shard_trajectories(a))
    return a, "was written for another shard or plan"


def corrupt_empty(p, paths):
    shard = p.shards[0]
    path = paths.shard_trajectories(shard)
    empty = stamp_like(path, io.trajectories_schema().empty_table())
    pq.write_table(empty, path)
    return shard, "has 0 rows, expected"


def corrupt_unstamped_empty(p, paths):
    shard = p.shards[0]
    pq.write_table(io.trajectories_schema().empty_table(), paths.shard_trajectories(shard))
    return shard, "(fingerprint none, expected"


def corrupt_duplicate(p, paths):
    shard = p.shards[1]
    path = paths.shard_trajectories(shard)
    t = pq.read_table(path)
    pq.write_table(stamp_like(path, pa.concat_tables([t, t.slice(0, 11)])), path)
    return shard, "rows, expected"


def corrupt_shuffled(p, paths):
    shard = p.shards[1]
    path = paths.shard_trajectories(shard)
    t = pq.read_table(path)
    pq.write_table(stamp_like(path, t.take(pa.array(np.arange(t.num_rows)[::-1]))), path)
    return shard, "duplicate, missing or foreign (point_id, t) rows"


def corrupt_truncated(p, paths):
    shard = p.shards[2]
    path = paths.shard_trajectories(shard)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return shard, "is truncated or corrupt"


def corrupt_missing(p, paths):
    shard = p.shards[0]
    paths.shard_trajectories(shard).unlink()
    return shard, "is missing"


def corrupt_runs(p, paths):
    shard = p.shards[0]
    paths.shard_runs(shard).write_bytes(b"not parquet")
    return shard, "is truncated or corrupt"


@pytest.mark.parametrize(
    "corrupt",
    [corrupt_foreign, corrupt_empty, corrupt_unstamped_empty, corrupt_duplicate,
     corrupt_shuffled, corrupt_truncated, corrupt_missing, corrupt_runs],
)
def test_a_bad_shard_is_named_moved_aside_and_resolved_again(clean, work, corrupt):
    p, paths = work
    shard, problem = corrupt(p, paths)
    with pytest.raises(ValueError) as err:
        merge_sweep(p, paths)
    message = str(err.value)
    assert "\n" not in message and problem in message
    assert f"shard file {paths.dir}" in message and shard in message
    assert "run the same snakemake command again" in message
    # both files of that shard moved aside: the workflow will solve it (and only it) again
    assert not paths.shard_runs(shard).exists() and not paths.shard_trajectories(shard).exists()
    missing = [s for s in p.shards if not paths.shard_runs(s).exists()]
    assert missing == [shard]
    for s in missing:
        spec = p.shard_spec(s)
        run_shard(spec, paths.shard_runs(s), paths.shard_trajectories(s),
                  paths.shard_crossings(s), log=None)
    merge_sweep(p, paths)
    assert_same(clean[1], paths)


def test_a_rerun_does_not_loop_on_the_same_error(work):
    p, paths = work
    corrupt_truncated(p, paths)
    with pytest.raises(ValueError, match="is truncated or corrupt"):
        merge_sweep(p, paths)
    with pytest.raises(ValueError, match="is missing"):  # moved aside: now missing, to re-solve
        merge_sweep(p, paths)


def test_phase_partials_combine_exactly(clean):
    _, paths = clean
    runs = pd.read_parquet(paths.runs)
    whole = combine_partials([phase_partials(runs)])
    shuffled = runs.sample(frac=1.0, random_state=0)
    parts = [shuffled.iloc[k::5] for k in range(5)]
    split = combine_partials([phase_partials(part) for part in parts])
    # exact up to round-off: a spread is known to ε·|mean| (it is a difference of values)
    for col in whole.columns:
        a, b = whole[col].to_numpy(), split[col].to_numpy()
        if col.endswith("_std"):
            scale = np.nanmax(np.abs(whole[col.replace("_std", "_mean")].to_numpy()))
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-14 * scale, err_msg=col)
        elif a.dtype.kind == "f":
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=0, err_msg=col)
        else:
            assert (a == b).all(), col
    # against a plain groupby over the ok runs
    ok = runs[runs["status"] == "ok"]
    g = ok.groupby(list(io.PHASE_KEYS))["kernel_distance"]
    ref = pd.DataFrame({"mean": g.mean(), "std": g.std()}).reset_index()
    got = whole.merge(ref, on=list(io.PHASE_KEYS))
    np.testing.assert_allclose(got["kernel_distance_mean"], got["mean"], rtol=1e-12)
    np.testing.assert_allclose(got["kernel_distance_std"], got["std"], rtol=1e-9, atol=1e-15)


def test_filtered_curves_equal_the_rows_of_a_full_read(clean):
    p, paths = clean
    full = results.load_trajectories(paths.dir)
    assert len(full) == (p.n_points - p.n_skipped) * 11
    some = results.load_trajectories(paths.dir, lambda_=3.0, scale=0.3)
    ref = full[np.isclose(full["lambda"], 3.0) & np.isclose(full["scale"], 0.3)]
    pd.testing.assert_frame_equal(some, ref.reset_index(drop=True), check_exact=True)
    ids = full["point_id"].unique()[[1, 5, 7]]
    picked = results.load_trajectories(paths.dir, point_id=list(ids), join=False)
    assert picked["point_id"].unique().tolist() == list(ids)
    ref = full[full["point_id"].isin(ids)].drop(columns=list(results.RUN_PARAMETERS))
    ref = ref.set_index("point_id").loc[list(ids)].reset_index()[picked.columns]
    pd.testing.assert_frame_equal(picked, ref, check_exact=True)
    none = results.load_trajectories(paths.dir, lambda_=123.0)
    assert none.empty and "loss" in none.columns


def test_every_table_is_written_and_the_index_lists_the_checked_files(clean):
    p, paths = clean
    assert all(paths.table(t).is_file() for t in TABLES)
    index = pd.read_parquet(paths.trajectories)
    assert index["shard"].tolist() == list(p.shards)
    assert (index["n_rows"] == index["n_points"] * 11).all()
    for row in index.itertuples():
        assert row.fingerprint == p.shard_spec(row.shard).fingerprint()
