"""The per-run measures: one registry from which the tables, the CLI and the plots derive.

Each :class:`Measure` is a column of ``runs.parquet``: its name, what it means (with its
unit), how it is computed from a solved batch (an :class:`Outcome`), whether the phase table
averages it over seeds, how ``lrsweep solve`` labels it and how figures draw it. The runs,
shard and phase schemas (:mod:`lrsweep.io`), the solver's columns (:mod:`lrsweep.solve`),
the CLI summary and the plot styles are all built from :func:`measures`, so a new measure is
one :func:`register` call and its function::

    register(Measure("loss_ratio", "final over initial loss (dimensionless)",
                     lambda o: o.loss[-1] / o.loss[0], label="final / initial loss",
                     phase=True))

:data:`CURVES` does the same for the per-(run, t) columns of ``trajectories.parquet``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pyarrow as pa

from lrsweep import metrics, standard
from lrsweep.dynamics import Solution
from lrsweep.exact import stack_q
from lrsweep.metrics import KernelGrams

__all__ = [
    "CURVES",
    "Curve",
    "Measure",
    "Outcome",
    "PlotStyle",
    "measures",
    "register",
    "unregister",
]

#: Fractions of the loss decrease whose times are recorded (``time_to_fit_<p>``).
FIT_PERCENTS = (50, 90, 99)


@dataclass(frozen=True)
class PlotStyle:
    """How figures draw a measure: axis label (LaTeX), colormap and colour scale.

    ``log`` measures get a logarithmic colour scale spanning at most ``decades`` below their
    maximum; ``nan_label`` names what a missing value means.
    """

    label: str
    cmap: str = "viridis"
    log: bool = False
    decades: float = 10.0
    nan_label: str | None = None


class Outcome:
    """A solved batch with its task: the curves that measures are computed from.

    Every curve is computed once, on first use (``cached_property``), and shared by all
    measures. Failed runs have zeroed trajectories, so their values are finite garbage that
    the caller discards.

    Parameters
    ----------
    solution : Solution
        From :func:`lrsweep.dynamics.solve_dynamics`, batch of B runs.
    sigma_yx : ndarray, shape (N_o, N_i)
        The task (whitened inputs).
    bottleneck : int
        The narrowest layer width (sets the lowest reachable loss).
    init_weights : list of ndarray, optional
        W_l(0), shape (B, N_l, N_{l−1}): the inits (for the imbalance and the prediction;
        default the solution's own weights at t = 0).
    rates : ndarray, shape (L,) or (B, L), optional
        Per-layer learning-rate multipliers ρ_l the runs were solved with (default 1).
    """

    def __init__(
        self,
        solution: Solution,
        sigma_yx: np.ndarray,
        bottleneck: int,
        init_weights: list[np.ndarray] | None = None,
        rates: np.ndarray | None = None,
    ) -> None:
        self.solution = solution
        self.sigma_yx = sigma_yx
        self.bottleneck = bottleneck
        self._init_weights = init_weights
        self.rates = rates

    @property
    def t(self) -> np.ndarray:
        return self.solution.t

    @property
    def n_runs(self) -> int:
        return self.solution.n_runs

    def nan(self) -> np.ndarray:
        """A (B,) column of NaN, for measures that do not apply."""
        return np.full(self.n_runs, np.nan)

    @cached_property
    def loss(self) -> np.ndarray:
        """Excess loss ½‖W − Σyx‖_F² at every saved time, (n_t, B)."""
        return metrics.loss(self.solution.W, self.sigma_yx)

    @cached_property
    def grams_0(self) -> KernelGrams:
        return self.solution.grams_at(0)

    @cached_property
    def grams_end(self) -> KernelGrams:
        return self.solution.grams_at(-1)

    @cached_property
    def kernel_distance(self) -> np.ndarray:
        """S(0, t) at every saved time, (n_t, B)."""
        sol = self.solution
        if sol.depth != 2:
            return metrics.kernel_distance(self.grams_0, sol.grams)
        out, inn = sol.two_layer_grams  # depth 2: the grams are [W2W2ᵀ, I] and [I, W1ᵀW1]
        return metrics.two_layer_kernel_distance(out[0], inn[0], out, inn)

    @cached_property
    def lowest_loss(self) -> float:
        """The lowest excess loss the bottleneck allows (0 without a bottleneck)."""
        return float(metrics.lowest_loss(self.sigma_yx, self.bottleneck))

    @cached_property
    def time_to_fit(self) -> np.ndarray:
        """t/τ to each of :data:`FIT_PERCENTS` of the reachable decrease, (3, B)."""
        fractions = tuple(p / 100 for p in FIT_PERCENTS)
        return metrics.time_to_fit(self.t, self.loss, fractions, final_loss=self.lowest_loss)

    @cached_property
    def singular_values(self) -> np.ndarray:
        """Singular values of W(t), descending, (n_t, B, min(N_i, N_o))."""
        sol = self.solution
        factors = None
        if sol.factor is not None:  # W = Y_o Y_iᵀ: an h × h problem when h < min(N_i, N_o)
            n_in = sol.W.shape[-1]
            factors = (sol.factor[..., n_in:, :], sol.factor[..., :n_in, :])
        return metrics.singular_values(sol.W, rank=self.bottleneck, factors=factors)

    @cached_property
    def init_weights(self) -> list[np.ndarray] | None:
        """W_l(0) of every run, (B, N_l, N_{l−1}) each (None if unknown: exact without inits)."""
        if self._init_weights is not None:
            return self._init_weights
        sol = self.solution.companion or self.solution
        return None if sol.weights is None else [w[0] for w in sol.weights]

    @cached_property
    def imbalance(self) -> standard.ImbalanceSummary | None:
        """Eigenvalue summary of the rate-weighted conserved D_l of the inits (theory §6.2)."""
        ws = self.init_weights
        return None if ws is None else standard.imbalance_summary(ws, self.rates)

    def pairs(self, field: str) -> np.ndarray:
        """(B, L − 1) of an :class:`~lrsweep.standard.ImbalanceSummary` field (NaN if unknown)."""
        if self.imbalance is None:
            return np.full((self.n_runs, self.solution.depth - 1), np.nan)
        return getattr(self.imbalance, field)

    @cached_property
    def prediction(self) -> standard.PredictedMeasures | None:
        """The exact solution of each two-layer run's λ_eff-balanced counterpart (same
        W2W1(0) and rate-weighted λ_eff, theory §6.2), for simulated runs only."""
        sol = self.solution
        if sol.depth != 2 or sol.method not in ("flow", "gd") or self.init_weights is None:
            return None
        W1, W2 = self.init_weights
        fractions = tuple(p / 100 for p in FIT_PERCENTS)
        return standard.predicted_measures(
            W1,
            W2,
            self.sigma_yx,
            self.t,
            self.rates,
            fractions=fractions,
            lowest_loss=self.lowest_loss,
        )

    def predicted(self, name: str) -> np.ndarray:
        """(B,) predicted value of a measure (``kernel_distance``, ``final_loss``,
        ``time_to_fit_<p>``); NaN without a prediction or where it is inadmissible."""
        p = self.prediction
        if p is None:
            return self.nan()
        if name.startswith("time_to_fit_"):
            return p.time_to_fit[FIT_PERCENTS.index(int(name.rsplit("_", 1)[1]))]
        return getattr(p, name)

    @cached_property
    def weight_change(self) -> tuple[np.ndarray, np.ndarray]:
        """(per layer (B, L), overall (B,)) relative weight change at t_max; NaN for exact."""
        sol = self.solution.companion or self.solution
        if sol.weights is None:
            return np.full((self.n_runs, self.solution.depth), np.nan), self.nan()
        return metrics.relative_weight_change(
            [w[-1] for w in sol.weights], [w[0] for w in sol.weights]
        )


@dataclass(frozen=True)
class Measure:
    """One per-run column of ``runs.parquet``.

    Attributes
    ----------
    name : str
        Column name.
    description : str
        What it is, with its unit (docs, schema metadata).
    compute : callable
        ``compute(outcome) -> ndarray`` of shape (B,), or (B, k) for ``per_layer``.
    label : str
        Label in ``lrsweep solve``'s summary.
    kind : {'metric', 'diagnostic'}
        Diagnostics check the solution rather than describe the dynamics; they follow the
        ``regime`` column in the runs table.
    phase : bool
        Averaged (mean, std) over seeds in ``phase.parquet``.
    summary : bool
        Printed by ``lrsweep solve``.
    per_layer : bool
        A list<float64> column (one value per layer), never averaged or printed.
    per_pair : bool
        A list<float64> column (one value per consecutive layer pair, input side first).
    dtype : {'float', 'str'}
        Value type of a per-run column (``str``: a label, '' where it does not apply).
    solvers : tuple of str or None
        Solvers it applies to (None: all); others get NaN and the CLI omits it.
    style : PlotStyle or None
        How figures draw it (None: linear viridis, labelled with the name).
    tolerance : dict of str → float, optional
        Diagnostics: per solver, the largest value of an ``ok`` run; a run above it is
        ``failed`` with a reason that names the measure, its value and this tolerance.
    """

    name: str
    description: str
    compute: Callable[[Outcome], np.ndarray]
    label: str = ""
    kind: str = "metric"
    phase: bool = False
    summary: bool = True
    per_layer: bool = False
    per_pair: bool = False
    dtype: str = "float"
    solvers: tuple[str, ...] | None = None
    style: PlotStyle | None = None
    tolerance: Mapping[str, float] | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("metric", "diagnostic"):
            raise ValueError(f"`kind` must be 'metric' or 'diagnostic', got {self.kind!r}")
        if not self.label:
            object.__setattr__(self, "label", self.name.replace("_", " "))
        if self.dtype not in ("float", "str"):
            raise ValueError(f"`dtype` must be 'float' or 'str', got {self.dtype!r}")

    @property
    def vector(self) -> bool:
        """A list column (per layer or per layer pair)."""
        return self.per_layer or self.per_pair

    @property
    def numeric(self) -> bool:
        """One number per run (can be averaged, searched, plotted)."""
        return not self.vector and self.dtype == "float"

    def width(self, depth: int) -> int | None:
        """Values per run of a list column at ``depth`` (None for a per-run column)."""
        return depth if self.per_layer else depth - 1 if self.per_pair else None

    @property
    def arrow_type(self) -> pa.DataType:
        if self.vector:
            return pa.list_(pa.float64())
        return pa.string() if self.dtype == "str" else pa.float64()

    def applies_to(self, solver: str) -> bool:
        return self.solvers is None or solver in self.solvers

    def violations(self, solver: str, values: np.ndarray) -> dict[int, str]:
        """Rows whose value exceeds this measure's tolerance for ``solver``, with the reason."""
        tol = (self.tolerance or {}).get(solver)
        if tol is None:
            return {}
        return {
            int(i): f"diagnostic `{self.name}` = {values[i]:.3g} is above its tolerance {tol:g} "
            f"for solver {solver} ({self.description})"
            for i in np.flatnonzero(values > tol)
        }


@dataclass(frozen=True)
class Curve:
    """One per-(run, t) column of ``trajectories.parquet``.

    ``compute(outcome)`` returns (n_t, B), or (n_t, B, k) for a list column (``vector``).
    """

    name: str
    description: str
    compute: Callable[[Outcome], np.ndarray]
    vector: bool = False


_NODATA = "no data (inadmissible, skipped or failed)"


def _time_to_fit(k: int, p: int) -> Measure:
    return Measure(
        f"time_to_fit_{p}",
        f"t/τ at which the excess loss has fallen by {p} % of the way from its initial value "
        "to the lowest loss the narrowest layer allows (NaN if not by t_max)",
        lambda o: o.time_to_fit[k],
        label=f"time to fit {p}% (t/tau)",
        phase=p == 90,
        style=PlotStyle(
            f"time to {p}% of loss decrease ($t/\\tau$)",
            "magma",
            log=True,
            nan_label=f"not reached by $t_{{\\max}}$ / {_NODATA}",
        ),
    )


_SIMULATED: dict[str, Callable[[Outcome], np.ndarray]] = {
    "kernel_distance": lambda o: o.kernel_distance[-1],
    "final_loss": lambda o: o.loss[-1],
    **{f"time_to_fit_{p}": (lambda o, k=k: o.time_to_fit[k]) for k, p in enumerate(FIT_PERCENTS)},
}


def _exact_sim_deviation(o: Outcome) -> np.ndarray:
    sim = o.solution.companion
    if sim is None or o.solution.q is None:
        return o.nan()
    Q = stack_q(*sim.weights)
    q_sim = Q @ np.swapaxes(Q, -1, -2)
    num = np.max(np.linalg.norm(o.solution.q - q_sim, axis=(-2, -1)), axis=0)
    den = np.max(np.linalg.norm(q_sim, axis=(-2, -1)), axis=0)
    return num / np.maximum(den, 1e-300)


_RATE_WEIGHTED = (
    "of the learning-rate-weighted conserved D_l = eta_(l+1)^-1 W_(l+1)^T W_(l+1) - "
    "eta_l^-1 W_l W_l^T at t = 0 (rates relative to their geometric mean; theory §6.1, §6.2)"
)


def _imbalance_measures() -> list[Measure]:
    """The init's measured imbalance: λ_eff and the spread of D_l's eigenvalues per pair."""
    return [
        Measure(
            "lambda_eff",
            f"mean eigenvalue tr(D_l)/N_l {_RATE_WEIGHTED}, averaged over the layer pairs "
            "(weight² units; equals lambda for lambda-balanced inits)",
            lambda o: np.mean(o.pairs("lam_eff"), axis=-1),
            label="lambda_eff (imbalance)",
            phase=True,
            style=PlotStyle(r"$\lambda_{\mathrm{eff}}$ (measured imbalance)", "coolwarm"),
        ),
        Measure(
            "off_balance",
            "largest over layer pairs of ‖D_l − lambda_eff I‖_F / ‖D_l‖_F (dimensionless, 0 iff "
            "lambda-balanced; O(1) round-off when D_l ≈ 0)",
            lambda o: np.max(o.pairs("off_balance"), axis=-1),
            label="off-balance of the init",
        ),
        *(
            Measure(
                name,
                f"{what} {_RATE_WEIGHTED}, per layer pair (input side first)",
                lambda o, f=field: o.pairs(f),
                per_pair=True,
                summary=False,
            )
            for name, field, what in (
                ("lambda_eff_pairs", "lam_eff", "mean eigenvalue"),
                ("imbalance_min_pairs", "eig_min", "smallest eigenvalue"),
                ("imbalance_max_pairs", "eig_max", "largest eigenvalue"),
                ("off_balance_pairs", "off_balance", "‖D_l − lambda_eff I‖_F / ‖D_l‖_F"),
            )
        ),
    ]


#: Measures predicted for simulated two-layer runs (``<name>_predicted``, ``..._error``).
PREDICTED = ("kernel_distance", "final_loss", "time_to_fit_90")
_SHORT = {
    "kernel_distance": "S(0, t_max)",
    "final_loss": "final loss",
    "time_to_fit_90": "time to fit 90%",
}


def _prediction_status(o: Outcome) -> np.ndarray:
    p = o.prediction
    if p is None:
        return np.full(o.n_runs, "", dtype=object)
    out = np.where(p.prediction.reason == "", "ok", p.prediction.reason).astype(object)
    return out


def _prediction_measures() -> list[Measure]:
    """The λ_eff-balanced prediction of simulated two-layer runs, and its error (§6.2)."""
    out = []
    for name in PREDICTED:
        out += [
            Measure(
                f"{name}_predicted",
                f"{name} of the exact solution from the lambda_eff-balanced init with the same "
                "W2 W1(0) (depth 2, flow and gd; NaN where inadmissible; theory §6.2)",
                lambda o, n=name: o.predicted(n),
                label=f"{_SHORT[name]} predicted",
                phase=name == "kernel_distance",
                solvers=("flow", "gd"),
            ),
            Measure(
                f"{name}_prediction_error",
                f"{name}_predicted − {name} (the simulated run's)",
                lambda o, n=name: o.predicted(n) - _SIMULATED[n](o),
                label=f"{_SHORT[name]} pred. error",
                phase=name == "kernel_distance",
                solvers=("flow", "gd"),
            ),
        ]
    out.append(
        Measure(
            "prediction_status",
            "ok, or why the lambda_eff-balanced prediction is 'inadmissible: ...' (no "
            "lambda-balanced pair of these widths) or 'not determined: ...' (one valid choice "
            "of several); '' where no prediction is made (exact solver, depth > 2)",
            _prediction_status,
            dtype="str",
            solvers=("flow", "gd"),
            summary=False,
        )
    )
    return out


_MEASURES: dict[str, Measure] = {}


def register(measure: Measure) -> Measure:
    """Add ``measure`` to the registry (after the existing ones of its kind); returns it."""
    if measure.name in _MEASURES:
        raise ValueError(f"a measure named {measure.name!r} is already registered")
    _MEASURES[measure.name] = measure
    return measure


def unregister(name: str) -> None:
    """Remove a registered measure (e.g. one a test added)."""
    _MEASURES.pop(name)


def measures(kind: str | None = None) -> list[Measure]:
    """The registered measures in column order (metrics, then diagnostics), or one kind."""
    kinds = ("metric", "diagnostic") if kind is None else (kind,)
    return [m for k in kinds for m in _MEASURES.values() if m.kind == k]


for _m in (
    Measure(
        "initial_loss",
        "excess loss ½‖W − Σyx‖_F² at t = 0 (whitened inputs; 0 at the optimum)",
        lambda o: o.loss[0],
    ),
    Measure(
        "final_loss",
        "excess loss at t_max",
        lambda o: o.loss[-1],
        phase=True,
        style=PlotStyle(r"final loss $\mathcal{L}(t_{\max})$", "cividis", log=True),
    ),
    Measure(
        "fit_fraction",
        "fraction of the reachable loss decrease made by t_max, (L_0 - L_T)/(L_0 - L_min); "
        f"runs below {metrics.FIT_FRACTION:g} are labelled stalled",
        lambda o: metrics.fit_fraction(o.loss[0], o.loss[-1], o.lowest_loss),
        label="fit fraction at t_max",
    ),
    Measure(
        "kernel_distance",
        "kernel distance S(0, t_max) = 1 − cos(K_0, K_t_max) of the NTK (dimensionless)",
        lambda o: o.kernel_distance[-1],
        label="kernel distance S(0, t_max)",
        phase=True,
        style=PlotStyle(r"kernel distance $S(0, t_{\max})$", log=True, decades=4),
    ),
    Measure(
        "kernel_distance_max",
        "max over saved times of S(0, t)",
        lambda o: np.nanmax(o.kernel_distance, axis=0),
        label="max kernel distance",
        style=PlotStyle(r"max kernel distance $\max_t S(0, t)$", log=True, decades=4),
    ),
    Measure(
        "ntk_change",
        "relative NTK change ‖K_t_max − K_0‖_F / ‖K_0‖_F",
        lambda o: metrics.relative_kernel_change(o.grams_0, o.grams_end),
        label="relative NTK change",
        phase=True,
        style=PlotStyle(r"NTK change $\|K_T - K_0\| / \|K_0\|$", log=True, decades=4),
    ),
    Measure(
        "weight_change",
        "relative weight change ‖θ(t_max) − θ(0)‖/‖θ(0)‖ (NaN for exact: QQᵀ does not fix "
        "the weights)",
        lambda o: o.weight_change[1],
        label="relative weight change",
    ),
    Measure(
        "weight_change_layers",
        "relative weight change per layer, input side first",
        lambda o: o.weight_change[0],
        per_layer=True,
        summary=False,
    ),
    *(_time_to_fit(k, p) for k, p in enumerate(FIT_PERCENTS)),
    *_imbalance_measures(),
    *_prediction_measures(),
    Measure(
        "balance_drift",
        "largest change of the conserved W_(l+1)^T W_(l+1) - W_l W_l^T along the trajectory, "
        "relative to the largest ‖W_l‖² + ‖W_(l+1)‖² (exact: its trace against lambda·N_h)",
        lambda o: o.solution.balance_drift,
        kind="diagnostic",
        # measured ≤ 1e-13 (exact) and ≤ 1e-9 (flow); gradient descent does not conserve it
        tolerance={"exact": 1e-8, "both": 1e-8, "flow": 1e-6},
    ),
    Measure(
        "riccati_residual",
        "relative residual of the Riccati equation at t_max, ‖dq/dt − (Fq + qF − q²)‖_F / "
        "(2‖F‖‖q‖_F + ‖q‖_F²), dq/dt by central differences (exact and both)",
        lambda o: o.solution.residual,
        label="Riccati residual at t_max",
        kind="diagnostic",
        solvers=("exact", "both"),
        # ≈ 150 × the relative error of QQᵀ (lrsweep.dynamics.FD_STEP): above 1e-6 the
        # closed form is off by more than ~1e-8; measured ≤ 1e-7 for |λ| ≤ 1e6, t ≤ 1e3
        # except anti-funnels at λ = 1e6, t = 1e3 (3.7e-6, error 1e-8 against the ODE)
        tolerance={"exact": 1e-6, "both": 1e-6},
    ),
    Measure(
        "exact_sim_deviation",
        "max_t ‖QQᵀ_exact − QQᵀ_flow‖_F / max_t ‖QQᵀ_flow‖_F (solver both)",
        _exact_sim_deviation,
        label="exact vs simulation deviation",
        kind="diagnostic",
        solvers=("both",),
    ),
):
    register(_m)


#: Columns of trajectories.parquet besides (sweep, point_id, t), by name.
CURVES: dict[str, Curve] = {
    c.name: c
    for c in (
        Curve("loss", "excess loss at t", lambda o: o.loss),
        Curve("kernel_distance", "kernel distance S(0, t)", lambda o: o.kernel_distance),
        Curve(
            "singular_values",
            "singular values of the end-to-end map, descending",
            lambda o: o.singular_values,
            vector=True,
        ),
    )
}
