"""What the paper experiments share: set-ups with validated overrides, and number formats."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import NamedTuple, Self

import numpy as np

from lrsweep import applications as apps
from lrsweep.simulate import gradient_descent
from lrsweep.tasks import Task, random_regression

__all__ = ["T_LABEL", "GradientDescentRun", "GradientDescentSetup", "Setup", "fmt"]

T_LABEL = r"time $t/\tau$"
"""Axis label of time, in units of τ = 1/η (gradient-descent step k is t/τ = kη)."""


@dataclass(frozen=True)
class Setup:
    """Base of an experiment's set-up: a frozen dataclass of plain values (numbers, tuples).

    Each computed experiment subclasses it with its defaults; the values used are written
    into the experiment's table, and its caption reads them from there.
    """

    def override(self, overrides: Mapping[str, object] | Setup | None, target: str) -> Self:
        """A copy with ``overrides`` applied (a mapping of field → value, or a whole set-up).

        Raises
        ------
        ValueError
            If a key is not a field of this set-up (naming the allowed ones), or a value
            is a sequence where a number is expected or the other way round.
        TypeError
            If ``overrides`` is a set-up of another experiment.
        """
        if overrides is None:
            return self
        if isinstance(overrides, Setup):
            if type(overrides) is not type(self):
                raise TypeError(
                    f"`setup` of {target!r} must be a {type(self).__name__} or a mapping, "
                    f"got a {type(overrides).__name__}"
                )
            return overrides
        allowed = sorted(f.name for f in fields(self))
        unknown = sorted(set(overrides) - set(allowed))
        if unknown:
            raise ValueError(
                f"`setup` keys {unknown} are not set-up values of {target!r}; allowed: {allowed}"
            )
        values = {}
        for key, value in overrides.items():
            many = isinstance(getattr(self, key), tuple)
            if many != isinstance(value, (list, tuple, range, np.ndarray)):
                kind = "a sequence" if many else "a single value"
                raise ValueError(f"`setup` value {key}={value!r} of {target!r} must be {kind}")
            values[key] = tuple(value) if many else value
        return replace(self, **values)


class GradientDescentRun(NamedTuple):
    """Gradient descent from λ-balanced inits (:meth:`GradientDescentSetup.run`)."""

    task: Task
    lambdas: np.ndarray
    """(n_λ,)"""
    t: np.ndarray
    """(n_t,) times t/τ"""
    W1: np.ndarray
    """(n_λ, N_h, N_i) inits"""
    W2: np.ndarray
    """(n_λ, N_o, N_h) inits"""
    w1s: np.ndarray
    """(n_t, n_λ, N_h, N_i) gradient-descent weights at ``t``"""
    w2s: np.ndarray
    """(n_t, n_λ, N_o, N_h)"""


@dataclass(frozen=True)
class GradientDescentSetup(Setup):
    """An n–n–n net trained by gradient descent on a random regression task.

    The task is ``random_regression(n, n, n_samples, seed=task_seed)`` (whitened inputs); the
    inits are λ-balanced with product singular values ``scale`` (rotations from ``seed``);
    gradient descent at rate η = ``lr`` is recorded at ``n_t`` times t/τ in [0, ``t_max``].
    """

    n: int = 3
    """N_i = N_h = N_o."""
    n_samples: int = 10
    """P, the number of inputs of the task."""
    task_seed: int = 0
    """Seed of :func:`lrsweep.tasks.random_regression`."""
    lambdas: tuple[float, ...] = (0.0,)
    scale: float = 1e-3
    seed: int = 0
    lr: float = 1e-3
    """Gradient-descent learning rate η (t/τ = kη)."""
    t_max: float = 10.0
    n_t: int = 201

    def task(self) -> Task:
        """The random regression task."""
        return random_regression(self.n, self.n, self.n_samples, seed=self.task_seed)

    def run(self, *, aligned: bool = False) -> GradientDescentRun:
        """Gradient descent from the inits (task-aligned singular vectors if ``aligned``)."""
        task, n = self.task(), self.n
        lams = np.asarray(self.lambdas, float)
        t = np.linspace(0.0, self.t_max, self.n_t)
        bases = (task.svd[0], task.svd[2]) if aligned else None
        W1, W2 = apps.balanced_inits(lams, n, n, n, self.scale, seed=self.seed, aligned=bases)
        w1s, w2s = gradient_descent([W1, W2], task.sigma_yx, t, self.lr)
        return GradientDescentRun(task, lams, t, W1, W2, w1s, w2s)


def fmt(x: float) -> str:
    """A measured number for a caption: 3 significant digits, '∞' (never) or 'n/a'."""
    return "∞" if np.isinf(x) else ("n/a" if np.isnan(x) else f"{x:.3g}")
