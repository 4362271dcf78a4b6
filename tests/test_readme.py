"""The README's Python examples run as written (in a scratch directory)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
BLOCKS = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)


def test_readme_has_python_examples():
    assert len(BLOCKS) >= 2


def test_science_example_runs_and_is_lazy_at_large_lambda():
    scope: dict = {}
    exec(BLOCKS[0], scope)  # noqa: S102 - the README's own example
    S = scope["S"]
    assert S.shape == (200,) and S[0] == pytest.approx(0.0, abs=1e-12)
    assert np.all(np.isfinite(S)) and 0 < S[-1] < 0.1


def test_results_example_runs_on_a_sweep(tmp_path, monkeypatch):
    from lrsweep import grid
    from lrsweep.merge import solve_and_merge
    from lrsweep.paths import SweepPaths

    cfg = {
        "sweeps": {
            "phase": {
                "time": {"t_max": 10.0, "n_points": 11},
                "grid": {
                    "lambda": [-3.0, 0.0, 3.0],
                    "scale": [0.1],
                    "n_in": [4, 8],
                    "n_out": [4, 8],
                    "seed": [0, 1],
                },
            }
        }
    }
    solve_and_merge(grid.plan(cfg)["phase"], SweepPaths("phase", tmp_path / "results"))
    monkeypatch.chdir(tmp_path)
    exec(BLOCKS[1], {})  # noqa: S102 - the README's own example


def test_trajectory_query_example_runs_on_a_sweep(tmp_path, monkeypatch, capsys):
    from lrsweep import grid
    from lrsweep.merge import solve_and_merge
    from lrsweep.paths import SweepPaths

    cfg = {
        "sweeps": {
            "phase": {
                "time": {"t_max": 10.0, "n_points": 11},
                "grid": {"lambda": [-3.0, 0.0, 3.0], "scale": [0.01, 0.1], "n_in": [4, 8],
                         "n_out": [4], "seed": [0, 1]},
            }
        }
    }
    solve_and_merge(grid.plan(cfg)["phase"], SweepPaths("phase", tmp_path / "results"))
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(BLOCKS[2], scope)  # noqa: S102 - the README's own example
    curves = scope["curves"]
    assert set(curves["lambda"]) == {0.0} and set(curves["n_in"]) == {8}
    assert set(curves["seed"]) == {0} and curves["point_id"].nunique() == 2  # two scales
    assert "0.01" in capsys.readouterr().out
