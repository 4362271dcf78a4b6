"""Solve a shard of grid points: task, inits, batched solver call, metrics, tables.

A shard (:meth:`lrsweep.grid.SweepPlan.shard_spec`) is a set of points of one shape
(n_in, n_out, width, depth) and one solver. :func:`solve_points` builds the task once, draws
each point's λ-balanced init from its own seed, and hands the whole batch to the solver:

- ``exact``: :func:`lrsweep.exact.qqt` (depth 2), QQᵀ(t) for all points at once;
- ``flow``: :func:`lrsweep.simulate.gradient_flow`;
- ``gd``: :func:`lrsweep.simulate.gradient_descent` with step ``lr`` (t/τ = kη);
- ``both``: exact and flow side by side; the metrics come from the exact solution, the
  weight change from the flow, and ``exact_sim_deviation`` = max_t ‖QQᵀ_exact − QQᵀ_flow‖_F
  / max_t ‖QQᵀ_flow‖_F.

Metrics per point (all from :mod:`lrsweep.metrics`; t_max = last saved time):

- loss = excess loss ℒ − ℒ* = ½‖W − Σyx‖_F² (whitened inputs; ℒ* = 0 for noise-free
  tasks), ``initial_loss`` / ``final_loss`` at t = 0 / t_max;
- ``kernel_distance`` S(0, t_max) and ``kernel_distance_max`` = max_t S(0, t);
- ``ntk_change`` ‖K_{t_max} − K_0‖_F / ‖K_0‖_F;
- ``weight_change`` ‖θ(t_max) − θ(0)‖/‖θ(0)‖ and per layer (NaN for ``exact``: QQᵀ does not
  determine the weights themselves);
- ``time_to_fit_{50,90,99}``: first t where the excess loss has fallen by that fraction of
  its initial value (NaN if not by t_max);
- ``balance_drift``: max over t and layer pairs of the change of the conserved imbalance
  W_{l+1}ᵀW_{l+1} − W_lW_lᵀ, relative to ‖W_{l+1}(0)‖² + ‖W_l(0)‖² (Frobenius); for
  ``exact`` only its trace (= λ·N_h) is available from QQᵀ.

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
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import pyarrow as pa

from lrsweep import grid, io
from lrsweep.tasks import Task, make_task

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
    "grid",
    "io",
    "solve",
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


@functools.cache
def _cached_task(kind: str, items: tuple) -> Task:
    return make_task(kind, **dict(items))


def build_task(task: Mapping[str, Any], n_in: int, n_out: int) -> Task:
    """The :class:`~lrsweep.tasks.Task` of a sweep's ``task`` settings for one architecture."""
    kind = task["kind"]
    if kind == "random":
        params: dict[str, Any] = {
            "n_in": n_in,
            "n_out": n_out,
            "seed": task.get("seed", 0),
            "target_scale": task.get("target_scale", 1.0),
        }
        if task.get("n_samples") is not None:
            params["n_samples"] = task["n_samples"]
        if task.get("singular_values") is not None:
            params["singular_values"] = tuple(task["singular_values"])
    elif kind == "hierarchy":
        params = {}
    else:
        params = {"path": task["path"], "center": bool(task.get("center", False))}
    out = _cached_task(kind, tuple(sorted(params.items())))
    if (out.n_in, out.n_out) != (n_in, n_out):
        raise ValueError(
            f"task {kind!r} has n_in={out.n_in}, n_out={out.n_out}, but the point has "
            f"n_in={n_in}, n_out={n_out}"
        )
    return out


# ------------------------------------------------------------------------------- solvers


def _exact(weights, task: Task, t: np.ndarray, spec: Mapping) -> dict[str, Any]:
    from lrsweep import exact, metrics

    W1, W2 = weights
    q = exact.qqt(W1, W2, task.sigma_yx, t)  # (n_t, B, N_i+N_o, N_i+N_o)
    n_in = task.n_in
    a, W, b = exact.qqt_blocks(q, n_in)
    grams = metrics.ntk_grams_from_qqt(q, n_in)
    n_h = W1.shape[-2]
    # QQᵀ holds tr(W2ᵀW2 − W1W1ᵀ) = λN_h; a drift Δλ of λI has Frobenius norm |Δλ|√N_h, the
    # same measure as the simulators' ‖ΔD‖_F / (‖W1‖² + ‖W2‖²)
    gap = np.trace(b, axis1=-2, axis2=-1) - np.trace(a, axis1=-2, axis2=-1)
    size = np.trace(b[0], axis1=-2, axis2=-1) + np.trace(a[0], axis1=-2, axis2=-1)
    drift = np.max(np.abs(gap - gap[0]), axis=0) / np.maximum(size, 1e-300) / np.sqrt(n_h)
    nan = np.full(W.shape[1], np.nan)
    return {
        "W": W,
        "grams": grams,
        "q": q,
        "weight_change": nan,
        "weight_change_layers": np.full((W.shape[1], 2), np.nan),
        "balance_drift": drift,
        "ok": np.ones(W.shape[1], dtype=bool),
        "message": "",
    }


def _simulated(weights, task: Task, t: np.ndarray, spec: Mapping) -> dict[str, Any]:
    from lrsweep import init, metrics, simulate

    if spec["solver"] == "gd":
        ws = simulate.gradient_descent(weights, task.sigma_yx, t, spec["lr"])
        ok = np.ones(weights[0].shape[0], dtype=bool)
        message = "gradient descent diverged (non-finite weights); lower `lr`"
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # failures reported per point
            ws, info = simulate.gradient_flow(weights, task.sigma_yx, t, full_output=True)
        ok = np.asarray(info.status) == 0
        message = f"gradient flow failed ({info.message})"
    ok &= np.logical_and.reduce([np.all(np.isfinite(w), axis=(0, 2, 3)) for w in ws])
    # failed runs are reported per point; zero them so the batch's metrics stay finite
    ws = [np.where(ok[None, :, None, None], w, 0.0) for w in ws]
    per_layer, overall = metrics.relative_weight_change([w[-1] for w in ws], weights)
    d0 = init.imbalances(weights)
    dt = init.imbalances(ws)
    drift = np.zeros(weights[0].shape[0])
    for l, (x0, xt) in enumerate(zip(d0, dt, strict=True)):  # noqa: E741
        scale = np.sum(weights[l] ** 2, axis=(-2, -1)) + np.sum(weights[l + 1] ** 2, axis=(-2, -1))
        dev = np.max(np.linalg.norm(xt - x0, axis=(-2, -1)), axis=0)
        drift = np.maximum(drift, dev / np.maximum(scale, 1e-300))
    return {
        "W": metrics.end_to_end(ws),
        "grams": metrics.ntk_grams(ws),
        "weights_t": ws,
        "weight_change": overall,
        "weight_change_layers": per_layer,
        "balance_drift": drift,
        "ok": ok,
        "message": message,
    }


def _both(weights, task: Task, t: np.ndarray, spec: Mapping) -> dict[str, Any]:
    res = _exact(weights, task, t, spec)
    sim = _simulated(weights, task, t, {**spec, "solver": "flow"})
    W1, W2 = sim["weights_t"]
    Q = np.concatenate([np.swapaxes(W1, -1, -2), W2], axis=-2)
    q_sim = Q @ np.swapaxes(Q, -1, -2)
    num = np.max(np.linalg.norm(res["q"] - q_sim, axis=(-2, -1)), axis=0)
    den = np.max(np.linalg.norm(q_sim, axis=(-2, -1)), axis=0)
    res.update(
        weight_change=sim["weight_change"],
        weight_change_layers=sim["weight_change_layers"],
        deviation=num / np.maximum(den, 1e-300),
        ok=sim["ok"],
        message=sim["message"],
    )
    return res


_SOLVERS: dict[str, Callable[..., dict[str, Any]]] = {
    "exact": _exact,
    "flow": _simulated,
    "gd": _simulated,
    "both": _both,
}


def _metrics(
    res: Mapping[str, Any], task: Task, t: np.ndarray, bottleneck: int
) -> dict[str, np.ndarray]:
    """Per-point summary metrics and per-(t, point) curves from a solver result.

    Time to fit is measured towards the lowest loss the bottleneck width allows
    (:func:`lrsweep.metrics.lowest_loss`; 0 unless a layer is narrower than min(N_i, N_o)).
    """
    from lrsweep import metrics
    from lrsweep.metrics import KernelGrams

    grams = res["grams"]
    g0 = KernelGrams(grams.out_grams[0], grams.in_grams[0])
    gT = KernelGrams(grams.out_grams[-1], grams.in_grams[-1])
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows of failed points
        loss = metrics.loss(res["W"], task.sigma_yx)  # (n_t, B)
        dist = metrics.kernel_distance(g0, grams)  # (n_t, B)
        floor = float(metrics.lowest_loss(task.sigma_yx, bottleneck))
        ttf = metrics.time_to_fit(t, loss, (0.5, 0.9, 0.99), final_loss=floor)  # (3, B)
        sv = np.linalg.svd(res["W"], compute_uv=False)  # (n_t, B, m)
        return {
            "loss": loss,
            "dist": dist,
            "sv": sv,
            "initial_loss": loss[0],
            "final_loss": loss[-1],
            "kernel_distance": dist[-1],
            "kernel_distance_max": np.nanmax(dist, axis=0),
            "ntk_change": metrics.relative_kernel_change(g0, gT),
            "time_to_fit_50": ttf[0],
            "time_to_fit_90": ttf[1],
            "time_to_fit_99": ttf[2],
        }


def _chunk_size(spec: Mapping, n_t: int) -> int:
    """Points per solver call so that the (n_t, B, ...) intermediates fit MEMORY_BUDGET.

    Per point and time: QQᵀ or the weights, and L output/input grams, a few copies each.
    """
    s = spec["shape"]
    widths = [s["n_in"]] + [s["width"]] * (s["depth"] - 1) + [s["n_out"]]
    floats = (
        (s["n_in"] + s["n_out"]) ** 2
        + s["depth"] * (s["n_in"] ** 2 + s["n_out"] ** 2)
        + sum(a * b for a, b in zip(widths[:-1], widths[1:], strict=True))
    )
    return int(max(1, min(MAX_CHUNK, MEMORY_BUDGET // (8 * 4 * n_t * floats))))


# ---------------------------------------------------------------------------------- batch

_METRIC_COLUMNS = (
    "initial_loss",
    "final_loss",
    "kernel_distance",
    "kernel_distance_max",
    "ntk_change",
    "weight_change",
    "time_to_fit_50",
    "time_to_fit_90",
    "time_to_fit_99",
    "balance_drift",
    "exact_sim_deviation",
)


def _init_weights(spec: Mapping, task: Task, rows: np.ndarray, fail: Callable) -> tuple:
    """λ-balanced inits of the given rows (one generator per point), stacked on axis 0."""
    from lrsweep.init import lambda_balanced_deep, layer_widths

    s = spec["shape"]
    widths = layer_widths(s["n_in"], s["width"], s["n_out"], depth=s["depth"])
    aligned = task if spec["init"].get("aligned") else None
    good, layers = [], []
    for i in rows.tolist():
        seq = grid.point_seed(
            spec["sweep_seed"], spec["seed"][i], s["n_in"], s["n_out"], s["width"], s["depth"]
        )
        try:
            ws = lambda_balanced_deep(
                spec["lambda"][i],
                widths,
                spec["scale"][i],
                seed=np.random.default_rng(seq),
                aligned=aligned,
            )
        except (ValueError, np.linalg.LinAlgError) as exc:
            fail(i, f"init failed: {exc}")
            continue
        good.append(i)
        layers.append(ws)
    if not good:
        return np.array([], dtype=np.int64), []
    return np.array(good), [np.stack(ls) for ls in zip(*layers, strict=True)]


def solve_points(
    spec: Mapping[str, Any], *, log: TextIO | None = None
) -> tuple[pa.Table, pa.Table]:
    """Solve every point of a shard spec; return its (shard rows, trajectory rows) tables.

    Parameters
    ----------
    spec : mapping
        :meth:`lrsweep.grid.SweepPlan.shard_spec`: solver, task, init, time, sweep_seed,
        shape, and the per-point lists point_id, lambda, scale, seed (plus lr for gd).
    log : text stream, optional
        Receives progress lines (points done / total, rate).

    Returns
    -------
    runs : pyarrow.Table
        One row per point with :data:`lrsweep.io.SHARD_SCHEMA`, in spec order.
    trajectories : pyarrow.Table
        :data:`lrsweep.io.TRAJECTORIES_SCHEMA`, rows of ``ok`` points, point-major.
    """
    t0 = time.perf_counter()
    s = spec["shape"]
    n = len(spec["point_id"])
    t = grid.time_grid(spec["time"])
    n_t = t.size
    depth = s["depth"]
    status = np.full(n, "ok", dtype=object)
    reason = np.full(n, "", dtype=object)
    cols = {c: np.full(n, np.nan) for c in _METRIC_COLUMNS}
    layers = np.full((n, depth), np.nan)
    curves = {k: np.full((n_t, n), np.nan) for k in ("loss", "dist")}
    sv = None

    def fail(i: int, message: str) -> None:
        status[i], reason[i] = "failed", message

    def say(msg: str) -> None:
        if log is not None:
            print(f"[{spec['shard']}] {msg}", file=log, flush=True)

    task_name = spec["task"]["kind"]
    try:
        task = build_task(spec["task"], s["n_in"], s["n_out"])
        task_name = task.name
    except (ValueError, OSError) as exc:
        status[:], reason[:] = "failed", f"task failed: {exc}"
        task = None
    solver = _SOLVERS[spec["solver"]]
    step = _chunk_size(spec, n_t)
    say(f"{spec['solver']} solver, shape {s}, {n} points, {n_t} times, chunks of {step}")
    last = -np.inf
    for start in range(0, n if task is not None else 0, step):
        rows, weights = _init_weights(spec, task, np.arange(start, min(start + step, n)), fail)
        batches = [(rows, weights)]
        while batches:
            rows, weights = batches.pop()
            if rows.size == 0:
                continue
            try:
                res = solver(weights, task, t, spec)
                m = _metrics(res, task, t, min(s["n_in"], s["width"], s["n_out"]))
            except (ValueError, ArithmeticError, np.linalg.LinAlgError) as exc:
                if rows.size == 1:
                    fail(int(rows[0]), f"{type(exc).__name__}: {exc}")
                else:  # isolate the failing point(s): solve one by one
                    batches += [
                        (rows[j : j + 1], [w[j : j + 1] for w in weights]) for j in range(rows.size)
                    ]
                continue
            finite = res["ok"] & np.all(np.isfinite(m["loss"]), axis=0)
            for j in np.flatnonzero(~finite).tolist():
                fail(
                    int(rows[j]),
                    res["message"] if not res["ok"][j] else "non-finite loss along the trajectory",
                )
            for c in (
                "initial_loss",
                "final_loss",
                "kernel_distance",
                "kernel_distance_max",
                "ntk_change",
                "time_to_fit_50",
                "time_to_fit_90",
                "time_to_fit_99",
            ):
                cols[c][rows] = m[c]
            cols["weight_change"][rows] = res["weight_change"]
            cols["balance_drift"][rows] = res["balance_drift"]
            if "deviation" in res:
                cols["exact_sim_deviation"][rows] = res["deviation"]
            layers[rows] = res["weight_change_layers"]
            curves["loss"][:, rows] = m["loss"]
            curves["dist"][:, rows] = m["dist"]
            if sv is None:
                sv = np.full((n_t, n, m["sv"].shape[-1]), np.nan)
            sv[:, rows] = m["sv"]
        done = min(start + step, n)
        now = time.perf_counter()
        if now - last >= PROGRESS_EVERY or done == n:
            last = now
            rate = done / max(now - t0, 1e-9)
            n_failed = int(np.count_nonzero(status == "failed"))
            say(f"{done}/{n} points ({rate:.1f} points/s, {n_failed} failed)")
    bad = status != "ok"
    for c in cols:
        cols[c][bad] = np.nan
    layers[bad] = np.nan
    return _tables(spec, task_name, status, reason, cols, layers, t, curves, sv)


def _list_array(values: np.ndarray) -> pa.Array:
    """A list<float64> array from a 2-d (rows, k) numpy array."""
    rows, k = values.shape
    offsets = pa.array((np.arange(rows + 1) * k).astype(np.int32))
    return pa.ListArray.from_arrays(offsets, pa.array(values.ravel(), type=pa.float64()))


def _tables(spec, task_name, status, reason, cols, layers, t, curves, sv):
    n = status.size
    s = spec["shape"]
    runs = {
        "sweep": [spec["sweep"]] * n,
        "point_id": np.asarray(spec["point_id"], dtype=np.int64),
        "shard": [spec["shard"]] * n,
        "solver": [spec["solver"]] * n,
        "task": [task_name] * n,
        **{a: np.full(n, s[a], dtype=np.int64) for a in grid.SHAPE_AXES},
        "lambda": np.asarray(spec["lambda"], dtype=np.float64),
        "scale": np.asarray(spec["scale"], dtype=np.float64),
        "seed": np.asarray(spec["seed"], dtype=np.int64),
        "status": status,
        "reason": reason,
        **cols,
        "weight_change_layers": _list_array(layers),
    }
    ok = np.flatnonzero(status == "ok")
    n_t = t.size
    m = sv.shape[-1] if sv is not None else 0
    traj = {
        "sweep": [spec["sweep"]] * (ok.size * n_t),
        "point_id": np.repeat(runs["point_id"][ok], n_t),
        "t": np.tile(t, ok.size),
        "loss": curves["loss"][:, ok].T.ravel(),
        "kernel_distance": curves["dist"][:, ok].T.ravel(),
        "singular_values": _list_array(
            np.swapaxes(sv[:, ok], 0, 1).reshape(-1, m) if sv is not None else np.zeros((0, 0))
        ),
    }
    return io.to_table(runs, io.SHARD_SCHEMA), io.to_table(traj, io.TRAJECTORIES_SCHEMA)


def run_shard(
    spec: Mapping[str, Any],
    runs_path: str | Path,
    trajectories_path: str | Path,
    *,
    log: TextIO | None = sys.stderr,
) -> tuple[Path, Path]:
    """Solve a shard and write its two Parquet files atomically (the ``solve_shard`` job).

    Test hook: if the environment variable ``LRSWEEP_INJECT_FAILURE`` equals
    ``<sweep>/<shard>``, the job fails before solving (used to test failure handling of
    executors, e.g. on SLURM, which exports the environment to the job).
    """
    if os.environ.get("LRSWEEP_INJECT_FAILURE") == f"{spec['sweep']}/{spec['shard']}":
        raise RuntimeError(f"injected failure in shard {spec['sweep']}/{spec['shard']}")
    t0 = time.perf_counter()
    runs, traj = solve_points(spec, log=log)
    io.write_table(traj, trajectories_path, io.TRAJECTORIES_SCHEMA)
    io.write_table(runs, runs_path, io.SHARD_SCHEMA)
    if log is not None:
        counts = {
            str(k): int(v)
            for k, v in zip(
                *np.unique(
                    runs.column("status").to_numpy(zero_copy_only=False), return_counts=True
                ),
                strict=True,
            )
        }
        print(
            f"[{spec['shard']}] wrote {runs_path} and {trajectories_path} in "
            f"{time.perf_counter() - t0:.1f} s; status counts {counts}",
            file=log,
            flush=True,
        )
    return Path(runs_path), Path(trajectories_path)
