"""Solve a shard of grid points: task, inits, one batched solver call, measures, tables.

A shard (:class:`lrsweep.spec.ShardSpec`) is a set of points of one shape (n_in, n_out,
width, depth) and one solver. :func:`solve_points` builds the task once, draws each point's
λ-balanced init from its own seed, hands the batch to
:func:`lrsweep.dynamics.solve_dynamics`, and evaluates every registered measure
(:mod:`lrsweep.measures`: one runs column each) and curve (one trajectories column each).

A point whose init or solve raises, or whose solution is not finite, gets status
``failed`` and the error as ``reason``; the rest of the shard goes on.
"""

from __future__ import annotations

import functools
import hashlib
import os
import sys
import time
import warnings
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import pyarrow as pa

from lrsweep import grid, io
from lrsweep.dynamics import solve_dynamics
from lrsweep.measures import CURVES, Outcome, measures
from lrsweep.merge import FINGERPRINT_KEY
from lrsweep.spec import Shape, ShardSpec, TaskSpec
from lrsweep.tasks import Task

__all__ = [
    "MAX_CHUNK",
    "MEMORY_BUDGET",
    "build_task",
    "code_fingerprint",
    "run_shard",
    "solve_points",
]

#: Memory (bytes) for the intermediates of one batched solver call; bigger shards are chunked.
MEMORY_BUDGET = 256 * 2**20
#: Most points per solver call.
MAX_CHUNK = 512
#: Seconds between two progress lines in the job log.
PROGRESS_EVERY = 2.0

#: Modules whose source defines a shard's numbers (hashed by :func:`code_fingerprint`).
SCIENCE_MODULES = (
    "_validate",
    "tasks",
    "init",
    "exact",
    "simulate",
    "metrics",
    "fitting",
    "config",
    "grid",
    "io",
    "spec",
    "dynamics",
    "measures",
    "merge",
    "solve",
    "standard",
)


@functools.cache
def code_fingerprint(modules: Sequence[str] = SCIENCE_MODULES) -> str:
    """Short hash of the source of lrsweep ``modules`` (default: a shard's science modules).

    Snakemake does not track imported modules; passing this as a rule param makes the
    outputs rerun when (and only when) that code changes.
    """
    h = hashlib.blake2b(digest_size=8)
    here = Path(__file__).parent
    for name in modules:
        path = here / f"{name}.py"
        h.update(name.encode())
        h.update(path.read_bytes() if path.is_file() else b"<missing>")
    return h.hexdigest()


def build_task(task: Mapping[str, Any] | TaskSpec, n_in: int, n_out: int) -> Task:
    """The :class:`~lrsweep.tasks.Task` of a sweep's ``task`` settings for one architecture."""
    spec = task if isinstance(task, TaskSpec) else TaskSpec.from_settings(task)
    return spec.build(n_in, n_out)


def _chunk_size(shape: Shape, n_t: int) -> int:
    """Points per solver call so that the (n_t, B, ...) intermediates fit MEMORY_BUDGET.

    Per point and time: QQᵀ or the weights, and L output/input grams, a few copies each.
    """
    widths = shape.widths
    floats = (
        (shape.n_in + shape.n_out) ** 2
        + shape.depth * (shape.n_in**2 + shape.n_out**2)
        + sum(a * b for a, b in zip(widths[:-1], widths[1:], strict=True))
    )
    return int(max(1, min(MAX_CHUNK, MEMORY_BUDGET // (8 * 4 * n_t * floats))))


def _init_weights(spec: ShardSpec, task: Task, rows: np.ndarray, fail: Callable) -> tuple:
    """Inits of the given rows (one generator per point), stacked on axis 0.

    λ-balanced: all rows at once (:func:`lrsweep.init.lambda_balanced_stack`, the same
    numbers as one :func:`lrsweep.init.lambda_balanced_deep` call per point); if some point
    is invalid, one by one, so that each failure is reported with its point. Gaussian:
    σ_l of the preset × the point's scale and the group's layer ratio
    (:func:`lrsweep.standard.preset_sigmas`, :func:`lrsweep.standard.gaussian_init`).
    """
    from lrsweep.init import lambda_balanced_deep, lambda_balanced_stack

    s = spec.shape
    aligned = task if spec.init.aligned else None
    lam, scale, seed = spec.points["lambda"], spec.points["scale"], spec.points["seed"]

    def generator(i: int) -> np.random.Generator:
        seq = grid.point_seed(spec.sweep_seed, seed[i], s.n_in, s.n_out, s.width, s.depth)
        return np.random.default_rng(seq)

    index = rows.tolist()
    if spec.init.gaussian:
        from lrsweep.standard import gaussian_init, preset_sigmas

        sigmas = preset_sigmas(spec.init.preset, s.widths, scale[rows], spec.layer_ratio)
        layers = gaussian_init(s.widths, sigmas, [generator(i) for i in index])
        return np.asarray(rows, dtype=np.int64), layers
    try:
        layers = lambda_balanced_stack(
            [lam[i] for i in index],
            s.widths,
            [scale[i] for i in index],
            [generator(i) for i in index],
            aligned=aligned,
        )
    except (ValueError, np.linalg.LinAlgError):
        pass
    else:
        return np.asarray(rows, dtype=np.int64), layers
    good, layers = [], []
    for i in index:
        try:
            ws = lambda_balanced_deep(
                lam[i], s.widths, scale[i], seed=generator(i), aligned=aligned
            )
        except (ValueError, np.linalg.LinAlgError) as exc:
            fail(i, f"init failed: {exc}")
            continue
        good.append(i)
        layers.append(ws)
    if not good:
        return np.array([], dtype=np.int64), []
    return np.array(good), [np.stack(ls) for ls in zip(*layers, strict=True)]


def _evaluate(
    spec: ShardSpec, task: Task, t: np.ndarray, weights: list[np.ndarray], lam: np.ndarray
) -> tuple[Outcome, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Solve one batch and evaluate every registered measure and curve on it."""
    rates = spec.rates
    lam = None if spec.init.gaussian else lam
    sol = solve_dynamics(
        weights, task.sigma_yx, t, method=spec.solver, lam=lam, lr=spec.lr, rates=rates
    )
    outcome = Outcome(sol, task.sigma_yx, spec.shape.bottleneck, weights, rates)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows of failed points
        values = {m.name: m.compute(outcome) for m in measures()}
        curves = {c.name: c.compute(outcome) for c in CURVES.values()}
    return outcome, values, curves


def solve_points(
    spec: ShardSpec, *, role: str = "grid", log: TextIO | None = None
) -> tuple[pa.Table, pa.Table]:
    """Solve every point of a shard; return its (shard rows, trajectory rows) tables.

    Parameters
    ----------
    spec : ShardSpec
        From :meth:`lrsweep.grid.SweepPlan.shard_spec`: solver, task, init, time grid, sweep
        seed, shape, and the points (ids, λ, scale, seed).
    role : str
        The ``role`` column of the rows (:data:`lrsweep.io.ROLES`).
    log : text stream, optional
        Receives progress lines (points done / total, rate).

    Returns
    -------
    runs : pyarrow.Table
        One row per point with :func:`lrsweep.io.shard_schema`, in spec order.
    trajectories : pyarrow.Table
        :func:`lrsweep.io.trajectories_schema`, rows of ``ok`` points, point-major.
    """
    t0 = time.perf_counter()
    s = spec.shape
    n = spec.n_solved
    t = spec.time.grid()
    n_t = t.size
    status = np.full(n, "ok", dtype=object)
    reason = np.full(n, "", dtype=object)
    cols = {
        m.name: np.full(n, "", dtype=object)
        if m.dtype == "str"
        else np.full((n, w) if (w := m.width(s.depth)) else n, np.nan)
        for m in measures()
    }
    curves: dict[str, np.ndarray] = {}

    def fail(i: int, message: str) -> None:
        status[i], reason[i] = "failed", message

    def say(msg: str) -> None:
        if log is not None:
            print(f"[{spec.shard}] {msg}", file=log, flush=True)

    task_name = spec.task.kind
    try:
        task = spec.task.build(s.n_in, s.n_out)
        task_name = task.name
    except (ValueError, OSError) as exc:
        status[:], reason[:] = "failed", f"task failed: {exc}"
        task = None
    step = _chunk_size(s, n_t)
    say(f"{spec.solver} solver, shape {asdict(s)}, {n} points, {n_t} times, chunks of {step}")
    last = -np.inf
    for start in range(0, n if task is not None else 0, step):
        rows, weights = _init_weights(spec, task, np.arange(start, min(start + step, n)), fail)
        batches = [(rows, weights)]
        while batches:
            rows, weights = batches.pop()
            if rows.size == 0:
                continue
            try:
                lam = spec.column("lambda")[rows]
                outcome, values, traj = _evaluate(spec, task, t, weights, lam)
            except (ValueError, ArithmeticError, np.linalg.LinAlgError) as exc:
                if rows.size == 1:
                    fail(int(rows[0]), f"{type(exc).__name__}: {exc}")
                else:  # isolate the failing point(s): solve one by one
                    batches += [
                        (rows[j : j + 1], [w[j : j + 1] for w in weights]) for j in range(rows.size)
                    ]
                continue
            sol = outcome.solution
            finite = sol.success & np.all(np.isfinite(outcome.loss), axis=0)
            for j in np.flatnonzero(~finite).tolist():
                fail(
                    int(rows[j]),
                    sol.message[j]
                    if not sol.success[j]
                    else "non-finite loss along the trajectory",
                )
            for m in measures("diagnostic"):
                for j, why in m.violations(spec.solver, values[m.name]).items():
                    if status[rows[j]] == "ok":
                        fail(int(rows[j]), why)
            for name, v in values.items():
                cols[name][rows] = v
            for name, v in traj.items():
                if name not in curves:
                    curves[name] = np.full((n_t, n, *v.shape[2:]), np.nan)
                curves[name][:, rows] = v
        done = min(start + step, n)
        now = time.perf_counter()
        if now - last >= PROGRESS_EVERY or done == n:
            last = now
            rate = done / max(now - t0, 1e-9)
            n_failed = int(np.count_nonzero(status == "failed"))
            say(f"{done}/{n} points ({rate:.1f} points/s, {n_failed} failed)")
    bad = status != "ok"
    for c in cols.values():
        c[bad] = "" if c.dtype == object else np.nan
    return _tables(spec, task_name, status, reason, cols, t, curves, role)


def _list_array(values: np.ndarray) -> pa.Array:
    """A list<float64> array from a 2-d (rows, k) numpy array."""
    rows, k = values.shape
    offsets = pa.array((np.arange(rows + 1) * k).astype(np.int32))
    return pa.ListArray.from_arrays(offsets, pa.array(values.ravel(), type=pa.float64()))


def _tables(spec: ShardSpec, task_name, status, reason, cols, t, curves, role):
    n = status.size
    vector = {m.name for m in measures() if m.vector}
    runs = {
        "sweep": [spec.sweep] * n,
        "point_id": spec.column("point_id", np.int64),
        "shard": [spec.shard] * n,
        "solver": [spec.solver] * n,
        "task": [task_name] * n,
        **{a: np.full(n, getattr(spec.shape, a), dtype=np.int64) for a in grid.SHAPE_AXES},
        **{a: np.full(n, v, dtype=np.float64) for a, v in spec.ratios.items()},
        "lambda": spec.column("lambda"),
        "scale": spec.column("scale"),
        "seed": spec.column("seed", np.int64),
        "role": [role] * n,
        "status": status,
        "reason": reason,
        **{k: _list_array(v) if k in vector else v for k, v in cols.items()},
    }
    ok = np.flatnonzero(status == "ok")
    ok = ok[np.argsort(runs["point_id"][ok], kind="stable")]  # the dataset is sorted by id
    n_t = t.size
    traj: dict[str, Any] = {
        "sweep": [spec.sweep] * (ok.size * n_t),
        "point_id": np.repeat(runs["point_id"][ok], n_t),
        "t": np.tile(t, ok.size),
    }
    for c in CURVES.values():
        v = curves.get(c.name)
        if c.vector:
            k = v.shape[-1] if v is not None else 0
            flat = np.swapaxes(v[:, ok], 0, 1).reshape(-1, k) if v is not None else np.zeros((0, 0))
            traj[c.name] = _list_array(flat)
        else:
            traj[c.name] = v[:, ok].T.ravel() if v is not None else np.zeros(0)
    return (
        io.to_table(runs, io.shard_schema()),
        io.to_table(traj, io.trajectories_schema()),
    )


def run_shard(
    spec: ShardSpec,
    runs_path: str | Path,
    trajectories_path: str | Path,
    crossings_path: str | Path,
    *,
    log: TextIO | None = sys.stderr,
) -> None:
    """Solve a shard and write its three files atomically (the ``solve_shard`` job).

    A grid shard solves its points (:func:`solve_points`); a search shard searches λ on
    its line-sides (:func:`lrsweep.search.search_shard`) and also writes the crossings
    (empty for a grid shard). Every file carries the shard's fingerprint.

    Test hook: if the environment variable ``LRSWEEP_INJECT_FAILURE`` equals
    ``<sweep>/<shard>``, the job fails before solving (used to test failure handling of
    executors, e.g. on SLURM, which exports the environment to the job).
    """
    from lrsweep.search import search_shard

    if os.environ.get("LRSWEEP_INJECT_FAILURE") == f"{spec.sweep}/{spec.shard}":
        raise RuntimeError(f"injected failure in shard {spec.sweep}/{spec.shard}")
    t0 = time.perf_counter()
    if spec.search is None:
        runs, traj = solve_points(spec, log=log)
        crossings = io.CROSSINGS_SCHEMA.empty_table()
    else:
        runs, traj, crossings = search_shard(spec, log=log)
    stamp = {FINGERPRINT_KEY: spec.fingerprint().encode()}
    io.write_table(
        traj,
        trajectories_path,
        io.trajectories_schema(),
        metadata=stamp,
        row_group_size=io.TRAJECTORY_ROW_GROUP * spec.time.n_points,
    )
    io.write_table(crossings, crossings_path, io.CROSSINGS_SCHEMA, metadata=stamp)
    io.write_table(runs, runs_path, io.shard_schema(), metadata=stamp)
    if log is not None:
        counts = Counter(runs.column("status").to_pylist())
        print(
            f"[{spec.shard}] wrote {runs_path}, {trajectories_path} and {crossings_path} in "
            f"{time.perf_counter() - t0:.1f} s; status counts {dict(counts)}",
            file=log,
            flush=True,
        )
