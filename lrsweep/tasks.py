"""Regression tasks with exactly whitened inputs (Σxx = XXᵀ/P = I).

A :class:`Task` holds inputs ``X`` of shape (N_i, P) and targets ``Y`` of shape (N_o, P)
(columns are samples, as in theory.md §1) and their correlations Σyx = YXᵀ/P and
Σxx = XXᵀ/P. The exact solver needs Σxx = I; every constructor here guarantees it to
round-off.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from lrsweep._validate import as_array, positive, positive_int

__all__ = [
    "Task",
    "haar_orthogonal",
    "random_regression",
    "semantic_hierarchy",
    "from_arrays",
    "load_dataset",
    "make_task",
    "whiten",
]


@dataclass(frozen=True, eq=False)
class Task:
    """A linear regression task.

    Attributes
    ----------
    X : ndarray, shape (N_i, P)
        Inputs, one column per sample.
    Y : ndarray, shape (N_o, P)
        Targets, one column per sample.
    name : str
        Short label used in tables and plots.
    """

    X: np.ndarray
    Y: np.ndarray
    name: str = "task"
    meta: dict = field(default_factory=dict)

    @property
    def n_in(self) -> int:
        return self.X.shape[0]

    @property
    def n_out(self) -> int:
        return self.Y.shape[0]

    @property
    def n_samples(self) -> int:
        return self.X.shape[1]

    @cached_property
    def sigma_yx(self) -> np.ndarray:
        """Σyx = YXᵀ/P, shape (N_o, N_i)."""
        return self.Y @ self.X.T / self.n_samples

    @cached_property
    def sigma_xx(self) -> np.ndarray:
        """Σxx = XXᵀ/P, shape (N_i, N_i)."""
        return self.X @ self.X.T / self.n_samples

    @cached_property
    def sigma_yy(self) -> np.ndarray:
        """Σyy = YYᵀ/P, shape (N_o, N_o)."""
        return self.Y @ self.Y.T / self.n_samples

    @cached_property
    def svd(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Full SVD Σyx = U diag(s) Vᵀ: U (N_o, N_o), s (min(N_i, N_o),), V (N_i, N_i)."""
        U, s, Vt = np.linalg.svd(self.sigma_yx, full_matrices=True)
        return U, s, Vt.T


def haar_orthogonal(n: int, rng: np.random.Generator) -> np.ndarray:
    """A Haar-random orthogonal matrix, shape (n, n) (QR of a Gaussian with sign fix)."""
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return q * np.sign(np.diag(r))


def _orthonormal_columns(p: int, k: int, rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((p, k)))
    return q * np.sign(np.diag(r))


def random_regression(
    n_in: int,
    n_out: int,
    n_samples: int | None = None,
    *,
    singular_values: np.ndarray | list[float] | None = None,
    seed: int = 0,
    target_scale: float = 1.0,
) -> Task:
    """Random regression task Σyx = Ũ diag(s̃) Ṽᵀ with exactly whitened inputs.

    Inputs are X = √P·Qᵀ with Q (P × N_i) having orthonormal columns, so XXᵀ/P = I;
    targets are Y = Σyx X (noise-free), so YXᵀ/P = Σyx exactly. Ũ, Ṽ are Haar-random.

    Parameters
    ----------
    n_in, n_out : int
        N_i and N_o.
    n_samples : int, optional
        P ≥ N_i; default ``max(n_in, 10)``.
    singular_values : array_like, shape (min(N_i, N_o),), optional
        s̃ (non-negative). Default: evenly spaced from 3 down to 0.5, times ``target_scale``.
    seed : int
        Seed of the task's own generator.
    target_scale : float
        Multiplies the default singular values (ignored when ``singular_values`` is given).
    """
    n_in = positive_int(n_in, "n_in")
    n_out = positive_int(n_out, "n_out")
    n_samples = max(n_in, 10) if n_samples is None else positive_int(n_samples, "n_samples")
    if n_samples < n_in:
        raise ValueError(
            f"`n_samples`={n_samples} must be >= n_in={n_in} for inputs to be whitened"
        )
    m = min(n_in, n_out)
    if singular_values is None:
        s = positive(target_scale, "target_scale") * np.linspace(3.0, 0.5, m)
    else:
        s = as_array(singular_values, "singular_values", ndim=1)
        if s.shape != (m,):
            raise ValueError(
                f"`singular_values` must have min(n_in, n_out)={m} entries, got {s.shape[0]}"
            )
        if np.any(s < 0):
            raise ValueError("`singular_values` must be non-negative")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), n_in, n_out, n_samples]))
    U = haar_orthogonal(n_out, rng)
    V = haar_orthogonal(n_in, rng)
    sigma_yx = U[:, :m] @ np.diag(s) @ V[:, :m].T
    X = np.sqrt(n_samples) * _orthonormal_columns(n_samples, n_in, rng).T
    return Task(X=X, Y=sigma_yx @ X, name="random", meta={"seed": int(seed)})


#: Item names of the semantic hierarchy task, in column order.
HIERARCHY_ITEMS = ("canary", "robin", "salmon", "sunfish", "oak", "pine", "rose", "daisy")


def semantic_hierarchy() -> Task:
    """The 8-item semantic hierarchy task (Saxe et al. 2019), one-hot inputs.

    Features (rows of Y, ±1 or 0): living thing; animal (+1) / plant (−1); bird/fish
    (animals only); tree/flower (plants only); one feature per pair (canary/robin,
    salmon/sunfish, oak/pine, rose/daisy). Inputs are one-hot items scaled by √P so that
    Σxx = I, giving Σyx = Y/√8 with singular values 1, 1, 1/√2, 1/√2, 1/2 (×4).
    """
    Y = np.array(
        [
            [1, 1, 1, 1, 1, 1, 1, 1],
            [1, 1, 1, 1, -1, -1, -1, -1],
            [1, 1, -1, -1, 0, 0, 0, 0],
            [0, 0, 0, 0, 1, 1, -1, -1],
            [1, -1, 0, 0, 0, 0, 0, 0],
            [0, 0, 1, -1, 0, 0, 0, 0],
            [0, 0, 0, 0, 1, -1, 0, 0],
            [0, 0, 0, 0, 0, 0, 1, -1],
        ],
        dtype=float,
    )
    p = Y.shape[1]
    return Task(X=np.sqrt(p) * np.eye(p), Y=Y, name="hierarchy", meta={"items": HIERARCHY_ITEMS})


def whiten(X: np.ndarray, *, rcond: float = 1e-10) -> np.ndarray:
    """ZCA-whiten inputs X (N_i, P) so that XXᵀ/P = I: X ↦ Σxx^{-1/2} X.

    Raises
    ------
    ValueError
        If P < N_i or Σxx is rank-deficient (smallest eigenvalue ≤ rcond · largest).
    """
    n_in, p = X.shape
    if p < n_in:
        raise ValueError(
            f"cannot whiten inputs: need at least n_in={n_in} samples, got P={p}; "
            "add samples or reduce the input dimension"
        )
    evals, evecs = np.linalg.eigh(X @ X.T / p)
    if evals[0] <= rcond * evals[-1]:
        raise ValueError(
            "cannot whiten inputs: the input covariance is rank-deficient "
            f"(eigenvalue ratio {evals[0] / evals[-1]:.3g} <= rcond={rcond:g}); "
            "drop linearly dependent input columns"
        )
    return (evecs / np.sqrt(evals)) @ evecs.T @ X


def from_arrays(
    inputs: object, targets: object, *, name: str = "data", center: bool = False
) -> Task:
    """A task from a user dataset, whitened on load.

    Parameters
    ----------
    inputs : array_like, shape (P, N_i)
        One row per sample (the usual table layout).
    targets : array_like, shape (P, N_o)
        One row per sample.
    center : bool
        Subtract the per-feature mean of inputs and targets before whitening.
    """
    x = as_array(inputs, "inputs", ndim=(1, 2))
    y = as_array(targets, "targets", ndim=(1, 2))
    x = x[:, None] if x.ndim == 1 else x
    y = y[:, None] if y.ndim == 1 else y
    if x.shape[0] != y.shape[0]:
        raise ValueError(
            f"`inputs` and `targets` must have the same number of rows (samples), "
            f"got {x.shape[0]} and {y.shape[0]}"
        )
    if center:
        x = x - x.mean(axis=0)
        y = y - y.mean(axis=0)
    return Task(X=whiten(x.T), Y=y.T.copy(), name=name)


def load_dataset(
    path: str | os.PathLike,
    *,
    input_columns: list[str] | None = None,
    target_columns: list[str] | None = None,
    center: bool = False,
) -> Task:
    """Load a dataset file and whiten it: Parquet/CSV (columns) or NPZ (arrays ``X``, ``Y``).

    For tables, inputs default to the columns whose names start with ``x`` and targets to
    those starting with ``y``; NPZ files hold ``X`` (P, N_i) and ``Y`` (P, N_o).
    """
    path = Path(path)
    if not path.exists():
        raise ValueError(f"dataset file `{path}` does not exist")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        with np.load(path) as data:
            missing = {"X", "Y"} - set(data.files)
            if missing:
                raise ValueError(
                    f"NPZ dataset `{path}` must hold arrays 'X' and 'Y', missing {sorted(missing)}"
                )
            return from_arrays(data["X"], data["Y"], name=path.stem, center=center)
    import pandas as pd

    if suffix == ".parquet":
        frame = pd.read_parquet(path)
    elif suffix == ".csv":
        frame = pd.read_csv(path)
    else:
        raise ValueError(f"dataset file `{path}` must end in .parquet, .csv or .npz")
    xcols = input_columns or [c for c in frame.columns if str(c).lower().startswith("x")]
    ycols = target_columns or [c for c in frame.columns if str(c).lower().startswith("y")]
    for label, cols in (("input", xcols), ("target", ycols)):
        if not cols:
            raise ValueError(
                f"dataset `{path}` has no {label} columns: name them x*/y* or pass "
                f"`{label}_columns`"
            )
        unknown = [c for c in cols if c not in frame.columns]
        if unknown:
            raise ValueError(f"dataset `{path}` has no columns {unknown}")
    return from_arrays(
        frame[xcols].to_numpy(float), frame[ycols].to_numpy(float), name=path.stem, center=center
    )


def make_task(kind: str, **params: object) -> Task:
    """Build a task by name: ``random`` (kwargs of :func:`random_regression`),
    ``hierarchy`` or ``file`` (kwargs of :func:`load_dataset`, with ``path``)."""
    if kind == "random":
        return random_regression(**params)  # type: ignore[arg-type]
    if kind == "hierarchy":
        if params:
            raise ValueError(f"task `hierarchy` takes no parameters, got {sorted(params)}")
        return semantic_hierarchy()
    if kind == "file":
        return load_dataset(**params)  # type: ignore[arg-type]
    raise ValueError(f"task `kind` must be one of 'random', 'hierarchy', 'file', got {kind!r}")
