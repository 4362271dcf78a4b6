"""Applications solved exactly by chaining the closed form: reversal, continual and transfer
learning (:mod:`lrsweep.applications`; paper §6, theory §5).

λ is conserved, so the state at the end of a task is again λ-balanced and the closed form
continues on the next task. All inits are task-aligned.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from lrsweep import applications as apps
from lrsweep.experiments.base import Setup, fmt
from lrsweep.plots import figure_style, lambda_cmap, lambda_norm, new_figure
from lrsweep.tasks import random_regression

__all__ = ["ApplicationsSetup", "caption", "compute", "curve", "draw", "scalar"]


@dataclass(frozen=True)
class ApplicationsSetup(Setup):
    """Set-up of ``applications`` (task-aligned inits)."""

    n: int = 4
    """N_i = N_h = N_o (even: the transfer rotation pairs all modes)."""
    task_seed: int = 0
    """Task A: ``random_regression(n, n, seed=task_seed)``."""
    task_b_seed: int = 1
    """Continual task B (sign of its det matched to A's, see the caption)."""
    lambdas: tuple[float, ...] = (0.0, 1e-4, 1e-3, 1e-2, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0)
    """|λ| values; each is run with both signs."""
    curve_lambdas: tuple[float, ...] = (0.0, 1e-2, 0.1, 1.0, 10.0)
    """λ whose loss curves are kept in the table."""
    angles_deg: tuple[float, ...] = tuple(range(0, 181, 15))
    """Transfer: rotations θ of B's output singular vectors."""
    scale: float = 1e-3
    seed: int = 0
    t_pretrain: float = 30.0
    t_max: float = 30.0
    n_t: int = 301
    level: float = apps.FIT_LEVEL
    """'Fitted' = loss ≤ level × ½‖Σ‖² (the loss of W = 0)."""


#: Written into the table as columns.
_TABLE_SETUP = ("n", "scale", "seed", "task_seed", "task_b_seed", "t_pretrain", "t_max", "level")
#: Transfer angles drawn in panel (f) and quoted in the caption (the table's nearest ones).
_SHOWN_ANGLES = (30.0, 90.0, 150.0, 180.0)


def _continual_task_b(a: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Random task B with det Σ_B of the sign of det Σ_A (first output row flipped if not)."""
    b = random_regression(n, n, seed=seed).sigma_yx.copy()
    if np.sign(np.linalg.det(b)) != np.sign(np.linalg.det(a)):
        b[0] *= -1
    return b


def compute(setup: ApplicationsSetup | None = None, **overrides: object) -> pd.DataFrame:
    """Reversal, continual and transfer learning solved exactly by chaining (applications).

    Set-up: ``setup`` (default :class:`ApplicationsSetup`) with single values replaced by
    ``overrides``; the values used are in the table.

    Returns
    -------
    DataFrame
        Long table with columns experiment ('reversal' | 'continual' | 'transfer'), kind
        ('curve' | 'scalar'), quantity, lambda, angle_deg, similarity, t (time since the task
        switch; NaN for scalars), value; plus the set-up columns and curve_lambda.
    """
    p = (setup or ApplicationsSetup()).override(overrides, "applications")
    n = p.n
    a = random_regression(n, n, seed=p.task_seed).sigma_yx
    b = _continual_task_b(a, n, p.task_b_seed)
    base = np.asarray(p.lambdas, float)
    lams = np.unique(np.concatenate([-base, base])) + 0.0  # no −0.0
    kw = {"scale": p.scale, "seed": p.seed, "n_t": p.n_t}
    rev = apps.reversal_learning(
        a, lams, t_pretrain=p.t_pretrain, t_max=p.t_max, level=p.level, **kw
    )
    con = apps.continual_learning(a, b, lams, t_a=p.t_pretrain, t_b=p.t_max, **kw)
    ang = np.asarray(p.angles_deg, float)
    tra = apps.transfer_learning(
        a, lams, np.deg2rad(ang), t_pretrain=p.t_pretrain, t_max=p.t_max, level=p.level, **kw
    )
    frames = []

    def add(exp, kind, qty, values, lam, t=np.nan, angle=np.nan, sim=np.nan):
        frames.append(
            pd.DataFrame(
                {
                    "experiment": exp,
                    "kind": kind,
                    "quantity": qty,
                    "lambda": lam,
                    "angle_deg": angle,
                    "similarity": sim,
                    "t": t,
                    "value": np.ravel(values),
                }
            )
        )

    def add_curve(exp, qty, values, t):
        add(exp, "curve", qty, values, np.tile(lams, t.size), t=np.repeat(t, L))

    L = lams.size
    add_curve("reversal", "loss_new_task", rev.loss, rev.t)
    add("reversal", "scalar", "relearn_time", rev.relearn_time, lams)
    add("reversal", "scalar", "pretrain_loss", rev.pretrain_loss, lams)
    add("reversal", "scalar", "fit_level", np.full(L, rev.level_abs), lams)
    add("reversal", "scalar", "saddle_loss", np.full(L, 0.5 * np.sum(a**2)), lams)
    t_loc, sl = con.sequence.local(1)
    add_curve("continual", "loss_a", con.loss_a[sl], t_loc)
    add_curve("continual", "loss_b", con.loss_b[sl], t_loc)
    add("continual", "scalar", "forgetting", con.forgetting, lams)
    add("continual", "scalar", "forgetting_limit", np.full(L, con.forgetting_limit), lams)
    add("continual", "scalar", "time_to_forget", con.time_to_forget, lams)
    A = ang.size
    sim = np.repeat(tra.similarity, L)
    for qty, vals in (("time_pretrained", tra.time_pretrained), ("time_scratch", tra.time_scratch)):
        add("transfer", "scalar", qty, vals, np.tile(lams, A), angle=np.repeat(ang, L), sim=sim)
    add("transfer", "scalar", "fit_level", np.full(L, tra.level_abs), lams)
    curve_l = np.isin(lams, np.asarray(p.curve_lambdas, float))
    for qty, vals in (("loss_pretrained", tra.loss_pretrained), ("loss_scratch", tra.loss_scratch)):
        v = vals[:, :, curve_l]
        nt, _, nl = v.shape
        add(
            "transfer",
            "curve",
            qty,
            v,
            np.tile(lams[curve_l], nt * A),
            t=np.repeat(tra.t, A * nl),
            angle=np.tile(np.repeat(ang, nl), nt),
            sim=np.tile(np.repeat(tra.similarity, nl), nt),
        )
    df = pd.concat(frames, ignore_index=True)
    for k in _TABLE_SETUP:
        df[k] = getattr(p, k)
    df["curve_lambda"] = df["lambda"].isin(np.asarray(p.curve_lambdas, float))
    return df


def scalar(df: pd.DataFrame, exp: str, qty: str) -> pd.DataFrame:
    """Rows of one scalar quantity of one experiment, sorted by angle and λ."""
    sub = df[(df["experiment"] == exp) & (df["kind"] == "scalar") & (df["quantity"] == qty)]
    return sub.sort_values(["angle_deg", "lambda"])


def curve(
    df: pd.DataFrame, exp: str, qty: str, lam: float, angle: float | None = None
) -> pd.DataFrame:
    """One loss curve (rows sorted by t) of one experiment, λ and (transfer) angle."""
    sub = df[(df["experiment"] == exp) & (df["kind"] == "curve") & (df["quantity"] == qty)]
    sub = sub[sub["lambda"] == lam]
    if angle is not None:
        sub = sub[sub["angle_deg"] == angle]
    return sub.sort_values("t")


def _shown_angles(df: pd.DataFrame) -> list[float]:
    """The table's transfer angles θ > 0 (B ≠ A) nearest to :data:`_SHOWN_ANGLES`, each once."""
    have = np.unique(scalar(df, "transfer", "time_pretrained")["angle_deg"])
    have = have[have > 0] if np.any(have > 0) else have
    return list(dict.fromkeys(float(have[np.argmin(np.abs(have - a))]) for a in _SHOWN_ANGLES))


def _task_singular_values(df: pd.DataFrame) -> np.ndarray:
    """s̃ of task A (the table's n and task_seed columns)."""
    n, seed = int(df["n"].iloc[0]), int(df["task_seed"].iloc[0])
    return random_regression(n, n, seed=seed).svd[1]


def _percent(df: pd.DataFrame) -> str:
    """The fit level of the table as a percentage, e.g. '1 %'."""
    return f"{100 * df['level'].iloc[0]:g} %"


def _never_marker(ax: Axes, x: float, color, label: str | None = None) -> None:
    """A marker pinned to the top of the axes at data x: 'never' (inf) values."""
    ax.plot(
        [x],
        [0.97],
        marker="^",
        ms=7,
        color=color,
        mec="black",
        mew=0.6,
        ls="none",
        transform=ax.get_xaxis_transform(),
        clip_on=False,
        label=label,
        zorder=5,
    )


def _vs_abs_lambda(ax, sub, *, color, label=None, ls="-", log_y=True) -> None:
    """Values vs |λ| on a log axis: λ > 0 filled dots over λ < 0 open circles (same colour),
    λ = 0 as ★ a decade left of the smallest |λ| (▲ at the top if it is inf)."""
    lam = sub["lambda"].to_numpy(float)
    val = sub["value"].to_numpy(float)
    nz = np.abs(lam[lam != 0])
    x0 = nz.min() / 10 if nz.size else 1.0
    for side, big in ((lam < 0, True), (lam > 0, False)):
        sel = side & np.isfinite(val)
        if not sel.any():
            continue
        o = np.argsort(np.abs(lam[sel]))
        x, y = np.abs(lam[sel])[o], val[sel][o]
        if big:
            ax.plot(x, y, ls="none", marker="o", ms=6, mfc="white", mec=color, mew=1.0)
        else:
            ax.plot(x, y, ls=ls, color=color, lw=1.1, marker="o", ms=2.8, label=label)
    zero = lam == 0
    if zero.any():
        if np.isinf(val[zero]).any():
            _never_marker(ax, x0, color)
        elif np.isfinite(val[zero]).any():
            ax.plot([x0], val[zero][:1], marker="*", ms=8, color=color, ls="none")
    ax.set_xscale("log")
    if log_y:
        ax.set_yscale("log")
    ax.set_xlabel(rf"$|\lambda|$ (dots λ > 0, circles λ < 0; λ = 0 at {x0:g})")


def _loss_curves(ax, df, exp, qty, lams, colour, lw_zero: float, note_zero: str = "") -> None:
    """Loss curves of one experiment after the task switch (t > 0), one line per λ; λ = 0
    is drawn ``lw_zero`` wide and its label gets ``note_zero``."""
    for lam in lams:
        c = curve(df, exp, qty, lam)
        ax.plot(
            c["t"][1:],
            c["value"][1:],
            color=colour(lam),
            lw=lw_zero if lam == 0 else 1.3,
            label=rf"$\lambda = {lam:g}$" + (note_zero if lam == 0 else ""),
        )


def caption(df: pd.DataFrame) -> str:
    """Set-up (read from the table and its task A) and the measured times and losses."""
    rt = scalar(df, "reversal", "relearn_time").set_index("lambda")["value"]
    fg = scalar(df, "continual", "forgetting")["value"]
    lim = scalar(df, "continual", "forgetting_limit")["value"].iloc[0]
    tf = scalar(df, "continual", "time_to_forget").set_index("lambda")["value"]
    tp = scalar(df, "transfer", "time_pretrained")
    ts = scalar(df, "transfer", "time_scratch")
    pos = sorted(x for x in rt.index if x > 0)
    sym = max(abs(rt[x] - rt[-x]) / rt[x] for x in pos if -x in rt.index and np.isfinite(rt[x]))
    rt_txt = ", ".join(f"λ = {x:g}: {fmt(rt[x])}" for x in [0.0, *pos[:: max(1, len(pos) // 5)]])
    lazy = max(pos)
    angle = _shown_angles(df)[0]
    sim_txt = []
    for lam in (0.0, lazy):
        p_ = tp[(tp["lambda"] == lam) & (tp["angle_deg"] == angle)]["value"]
        s_ = ts[(ts["lambda"] == lam) & (ts["angle_deg"] == angle)]["value"]
        if len(p_) and len(s_):
            sim_txt.append(f"λ = {lam:g}: {fmt(p_.iloc[0])} vs {fmt(s_.iloc[0])} from scratch")
    n = int(df["n"].iloc[0])
    s = ", ".join(f"{x:.3g}" for x in _task_singular_values(df))
    level = _percent(df)
    return (
        f"Task sequences solved exactly by chaining the closed form ({n}–{n}–{n} net; task A = "
        f"random regression with s̃ = {s}; init aligned with A, product singular "
        f"values {df['scale'].iloc[0]:g}; {df['t_pretrain'].iloc[0]:g} τ on the first task, "
        f"then {df['t_max'].iloc[0]:g} τ on the second; λ is conserved, so the end state is "
        f"factored and the closed form continues). (a, b) Reversal Σyx → −Σyx: the "
        f"task-aligned λ = 0 net decays onto the saddle W = 0 and stays there (loss → "
        f"½‖Σyx‖²); every λ ≠ 0 escapes, and the time to reach {level} of ½‖Σyx‖² grows like "
        f"ln(1/|λ|) as λ → 0 ({rt_txt}; λ ↔ −λ agree to {sym:.0e}). (c, d) Continual A → B "
        f"(random task B, sign of det matched to A's so that λ = 0 has no saddle): the "
        f"forgetting of A is {fg.min():.4g}–{fg.max():.4g} for every λ, i.e. "
        f"½‖Σ_B − Σ_A‖² = {lim:.4g} (B is learned exactly whatever λ): λ changes how fast A is "
        f"forgotten (half of it after {fmt(tf.get(0.0, np.nan))} τ at λ = 0, "
        f"{fmt(tf.get(lazy, np.nan))} τ at λ = {lazy:g}), not how much. (e, f) Transfer to "
        f"B(θ) = A with its output singular vectors rotated by θ in pairs (similarity cos θ); "
        f"time to reach {level} of ½‖Σ_B‖² after pretraining on A (solid) vs from a B-aligned "
        f"init of the same λ and scale (dashed): at θ = {angle:g}°, {'; '.join(sim_txt)}. "
        f"Pretraining removes the rich plateau for similar tasks, slows down as B → −A and never "
        f"fits B = −A at λ = 0 (the reversal saddle); lazy nets fit B in ≈ τ/|λ| with or without "
        f"pretraining."
    )


def draw(df: pd.DataFrame) -> Figure:
    """Six panels: reversal curves and relearn time, continual forgetting, transfer times."""
    curve_lams = np.sort(df.loc[df["curve_lambda"], "lambda"].unique())
    curve_lams = curve_lams[curve_lams >= 0]
    norm, cmap = lambda_norm(df["lambda"].unique()), lambda_cmap()

    def colour(lam: float):
        return "black" if lam == 0 else cmap(norm(lam))

    with figure_style():
        fig = new_figure(12.0, 7.6)
        (ax_a, ax_b, ax_c), (ax_d, ax_e, ax_f) = fig.subplots(2, 3)
        # (a) reversal: loss on −Σ after the flip
        fit = scalar(df, "reversal", "fit_level")["value"].iloc[0]
        saddle = scalar(df, "reversal", "saddle_loss")["value"].iloc[0]
        ax_a.axhline(saddle, color="0.55", ls="--", lw=0.8, label=r"saddle $W = 0$")
        ax_a.axhline(fit, color="0.55", ls=":", lw=1.0, label=f"relearned ({_percent(df)} level)")
        _loss_curves(ax_a, df, "reversal", "loss_new_task", curve_lams, colour, 2.0, " (stuck)")
        ax_a.set(
            xscale="log",
            yscale="log",
            ylim=(fit * 1e-4, saddle * 20),
            xlabel=r"time since reversal $t/\tau$",
            ylabel=r"loss on $-\Sigma_{yx}$",
        )
        ax_a.set_title(r"(a) reversal $\Sigma_{yx} \to -\Sigma_{yx}$", loc="left")
        ax_a.legend(frameon=False, fontsize=6.5, loc="lower left", ncols=2)
        # (b) time to relearn vs |λ|
        rt = scalar(df, "reversal", "relearn_time")
        _vs_abs_lambda(ax_b, rt, color="black", label="time to relearn")
        ax_b.set_ylabel(r"time to relearn $t/\tau$")
        ax_b.set_title("(b) relearning slows as λ → 0", loc="left")
        ax_b.legend(frameon=False, fontsize=6.5, loc="lower left")
        # (c) continual: loss on A while training on B
        lim = scalar(df, "continual", "forgetting_limit")["value"].iloc[0]
        lim_label = r"$\frac{1}{2}\|\Sigma_B-\Sigma_A\|^2$"
        ax_c.axhline(lim, color="0.55", ls="--", lw=0.8, label=lim_label)
        _loss_curves(ax_c, df, "continual", "loss_a", curve_lams, colour, 2.6)
        ax_c.set(
            xscale="log", yscale="log", xlabel=r"time on task B $t/\tau$", ylabel="loss on task A"
        )
        ax_c.set_title("(c) continual learning A → B", loc="left")
        ax_c.legend(frameon=False, fontsize=6.5, loc="lower right")
        # (d) forgetting vs |λ|, and how fast
        fg = scalar(df, "continual", "forgetting")
        tf = scalar(df, "continual", "time_to_forget")
        _vs_abs_lambda(ax_d, fg, color="C3", label="forgetting of A", log_y=False)
        ax_d.axhline(lim, color="0.55", ls="--", lw=0.8, label=lim_label)
        ax_d.set_ylim(0, 1.3 * max(fg["value"].max(), lim))
        ax_d.set_ylabel(
            r"forgetting: $\mathcal{L}_A$(after B) $-$ $\mathcal{L}_A$(after A)", color="C3"
        )
        ax_d2 = ax_d.twinx()
        _vs_abs_lambda(ax_d2, tf, color="C0", label="time to forget half (right axis)")
        ax_d2.set_ylabel(r"time to forget half $t/\tau$", color="C0")
        ax_d.set_title("(d) how much is forgotten vs how fast", loc="left")
        h1, l1 = ax_d.get_legend_handles_labels()
        h2, l2 = ax_d2.get_legend_handles_labels()
        ax_d.legend(h1 + h2, l1 + l2, frameon=False, fontsize=6.5, loc="lower left")
        # (e) transfer: time to fit B vs similarity
        tp = scalar(df, "transfer", "time_pretrained")
        ts = scalar(df, "transfer", "time_scratch")
        for lam in curve_lams:
            col = colour(lam)
            sub = tp[tp["lambda"] == lam]
            fin = sub[np.isfinite(sub["value"]) & (sub["value"] > 0)]
            ax_e.plot(
                fin["similarity"],
                fin["value"],
                "o-",
                color=col,
                ms=5 if lam == 0 else 3,
                lw=2.6 if lam == 0 else 1.3,
                label=rf"$\lambda = {lam:g}$",
            )
            for x in sub.loc[np.isinf(sub["value"]), "similarity"]:
                _never_marker(ax_e, x, col)
            ax_e.axhline(ts[ts["lambda"] == lam]["value"].median(), color=col, ls="--", lw=0.9)
        ax_e.set_yscale("log")
        ax_e.set_xlabel(r"task similarity $\cos\theta$ ($\theta$: rotation of B's output modes)")
        ax_e.set_ylabel(r"time to fit B $t/\tau$")
        ax_e.set_title("(e) transfer: pretrained on A (solid) vs scratch (dashed)", loc="left")
        ax_e.legend(frameon=False, fontsize=6.5, loc="lower left")
        # (f) time to fit B vs |λ| for several similarities
        angles = _shown_angles(df)
        for a_deg, col in zip(angles, sns.color_palette("crest", len(angles)), strict=True):
            sub = tp[tp["angle_deg"] == a_deg]
            sim = sub["similarity"].iloc[0]
            _vs_abs_lambda(
                ax_f,
                sub,
                color=col,
                label=rf"pretrained, $\theta = {a_deg:g}°$ ($\cos\theta = {sim:.2f}$)",
            )
        scr = ts[ts["angle_deg"] == ts["angle_deg"].min()]
        _vs_abs_lambda(ax_f, scr, color="black", label="from scratch", ls="--")
        ax_f.set_ylabel(r"time to fit B $t/\tau$")
        ax_f.set_title("(f) transfer vs λ", loc="left")
        ax_f.legend(frameon=False, fontsize=6, loc="lower left")
        n = int(df["n"].iloc[0])
        fig.suptitle(
            f"Applications solved exactly by chaining the closed form ({n}–{n}–{n}, task-aligned "
            f"init, scale {df['scale'].iloc[0]:g}; ▲ = never: the λ = 0 saddle; ★ = λ = 0)",
            fontsize=10,
        )
    return fig
