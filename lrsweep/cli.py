"""The ``lrsweep`` command: thin wrappers that parse, call the package and print.

Library errors (ValueError/TypeError/OSError) become one line ``Error: ...`` on stderr and
exit code 1.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from lrsweep.paths import SHARD_FILES, SweepPaths

__all__ = ["main"]

_EPILOG = """\
Commands:
  solve         one run: final loss, kernel distance, time to fit (optionally its trajectory)
  check-config  validate a config and print each sweep's plan
  run-shard     solve shards of a sweep outside Snakemake
  aggregate     merge a sweep's shards into runs/trajectories/phase/boundary tables
  show          print a sweep's phase table and where the lazy/rich boundary lies
  status        how a sweep went: points by status and regime; fails if none is ok
  plot          draw a sweep's figures

The pipeline: snakemake --cores 2 --workflow-profile workflow/profiles/default

Example:
  lrsweep solve --n-in 4 --n-hidden 4 --n-out 4 --lam 2 --scale 0.1
"""


def _parser() -> argparse.ArgumentParser:
    fmt = argparse.RawDescriptionHelpFormatter
    p = argparse.ArgumentParser(
        prog="lrsweep",
        description="Lazy and rich learning regimes of linear networks.",
        epilog=_EPILOG,
        formatter_class=fmt,
    )
    p.add_argument("--version", action="store_true", help="print the version and exit")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    def add(name: str, help_: str, example: str) -> argparse.ArgumentParser:
        return sub.add_parser(
            name,
            help=help_,
            description=help_,
            formatter_class=fmt,
            epilog=f"Example:\n  {example}",
        )

    s = add(
        "solve",
        "Solve one run and print its summary metrics.",
        "lrsweep solve --n-in 4 --n-hidden 4 --n-out 4 --lam 2 --scale 0.1 --out traj.parquet",
    )
    s.add_argument("--n-in", type=int, default=4, help="input dimension N_i (default 4)")
    s.add_argument("--n-hidden", type=int, default=4, help="hidden width N_h (default 4)")
    s.add_argument("--n-out", type=int, default=4, help="output dimension N_o (default 4)")
    s.add_argument("--depth", type=int, default=2, help="weight layers L (default 2)")
    s.add_argument("--lam", type=float, default=0.0, help="relative scale lambda (default 0)")
    s.add_argument(
        "--scale",
        type=float,
        default=0.1,
        help="absolute scale: init product singular values (default 0.1)",
    )
    s.add_argument("--seed", type=int, default=0, help="init seed (default 0)")
    s.add_argument(
        "--solver",
        choices=["auto", "exact", "flow", "gd", "both"],
        default="auto",
        help="auto = exact at depth 2, flow otherwise (default auto)",
    )
    s.add_argument(
        "--task",
        choices=["random", "hierarchy"],
        default="random",
        help="regression task (default random)",
    )
    s.add_argument("--task-seed", type=int, default=0, help="seed of the random task (default 0)")
    s.add_argument("--aligned", action="store_true", help="align the init with the task's SVD")
    s.add_argument("--t-max", type=float, default=20.0, help="last time t/tau (default 20)")
    s.add_argument("--n-points", type=int, default=201, help="saved times (default 201)")
    s.add_argument(
        "--spacing",
        choices=["linear", "log"],
        default="linear",
        help="time spacing (default linear)",
    )
    s.add_argument("--lr", type=float, default=0.05, help="learning rate for gd (default 0.05)")
    s.add_argument("--out", type=Path, help="write the trajectory (t, loss, ...) to this Parquet")

    c = add(
        "check-config",
        "Validate a config and print the plan of each sweep.",
        "lrsweep check-config config.yaml",
    )
    c.add_argument(
        "config",
        type=Path,
        nargs="?",
        default=Path("config.yaml"),
        help="config file (default config.yaml)",
    )

    r = add(
        "run-shard",
        "Solve shards of a sweep outside Snakemake (same files as the pipeline).",
        "lrsweep run-shard --sweep phase --shard exact-i4-o4-w4-d2-1a2b3c4d",
    )
    r.add_argument(
        "--config", type=Path, default=Path("config.yaml"), help="config file (default config.yaml)"
    )
    r.add_argument("--sweep", required=True, help="sweep name")
    r.add_argument(
        "--shard",
        action="append",
        default=[],
        help="shard name (repeatable); omit to list the shards",
    )
    r.add_argument("--all", action="store_true", help="solve every shard of the sweep")
    r.add_argument(
        "--results", type=Path, default=Path("results"), help="results directory (default results)"
    )

    a = add(
        "aggregate",
        "Merge a sweep's shard files into its runs/trajectories/phase/boundary.",
        "lrsweep aggregate --sweep phase",
    )
    a.add_argument(
        "--config", type=Path, default=Path("config.yaml"), help="config file (default config.yaml)"
    )
    a.add_argument("--sweep", required=True, help="sweep name")
    a.add_argument(
        "--results", type=Path, default=Path("results"), help="results directory (default results)"
    )

    w = add(
        "show",
        "Print a sweep's phase table and where the lazy/rich boundary lies.",
        "lrsweep show results/phase --metric time_to_fit_90",
    )
    w.add_argument("sweep_dir", type=Path, help="results/<sweep>")
    w.add_argument(
        "--metric",
        default="kernel_distance",
        help="phase metric to tabulate over lambda x scale (default kernel_distance)",
    )
    w.add_argument("--out", type=Path, help="also write the text to this file")

    st = add(
        "status",
        "Print how a sweep went (points by status and regime, commonest failures); exit 1 "
        "if no point is ok.",
        "lrsweep status results/phase",
    )
    st.add_argument("sweep_dir", type=Path, help="results/<sweep>")
    st.add_argument("--allow-failures", action="store_true", help="exit 0 even if no point is ok")
    st.add_argument("--out", type=Path, help="also write the line to this file")

    o = add(
        "plot",
        "Draw a sweep's figures (PNG and PDF) from its tables.",
        "lrsweep plot results/phase --out results/phase/plots",
    )
    o.add_argument("sweep_dir", type=Path, help="results/<sweep>")
    o.add_argument("--out", type=Path, help="output directory (default <sweep_dir>/plots)")
    o.add_argument(
        "--threshold",
        type=float,
        help="kernel-distance level of the lazy/rich boundary (default: the package's)",
    )
    return p


# -------------------------------------------------------------------------------- commands


def _solve(args: argparse.Namespace) -> None:
    import numpy as np

    from lrsweep import grid, io, solve
    from lrsweep.measures import measures

    if args.out is not None:
        _check_out(args.out, "--out")
    solver = args.solver if args.solver != "auto" else ("exact" if args.depth == 2 else "flow")
    cfg = {
        "sweeps": {
            "cli": {
                "solver": solver,
                "lr": args.lr,
                "shard_size": 1,
                "task": {"kind": args.task, "seed": args.task_seed},
                "init": {"aligned": args.aligned},
                "time": {"t_max": args.t_max, "n_points": args.n_points, "spacing": args.spacing},
                "on_invalid": "skip",
                "grid": {
                    "n_in": args.n_in,
                    "n_out": args.n_out,
                    "width": args.n_hidden,
                    "depth": args.depth,
                    "lambda": args.lam,
                    "scale": args.scale,
                    "seed": args.seed,
                },
            }
        }
    }
    if args.task != "random":
        cfg["sweeps"]["cli"]["grid"].pop("n_in")
        cfg["sweeps"]["cli"]["grid"].pop("n_out")
    try:
        p = grid.plan(cfg)["cli"]
    except grid.ConfigError as exc:  # name the command-line option, not the config key
        msg = str(exc)
        for key, opt in _SOLVE_OPTIONS.items():
            msg = msg.replace(f"config key `sweeps.cli.{key}`", f"`{opt}`")
        raise ValueError(msg) from None
    if p.n_skipped:
        raise ValueError(f"inadmissible run: {next(p.skipped_columns())['reason'][0]}")
    runs, traj = solve.solve_points(p.shard_spec(p.shards[0]))
    row = runs.to_pylist()[0]
    if row["status"] != "ok":
        raise ValueError(f"the run failed: {row['reason']}")
    from lrsweep.metrics import regime

    label = str(regime(row["kernel_distance"], fit_fraction=row["fit_fraction"]))
    print(
        f"{solver} solver, N_i={row['n_in']} N_h={row['width']} N_o={row['n_out']} "
        f"L={args.depth}, lambda={args.lam:g}, scale={args.scale:g}, seed={args.seed}, "
        f"t_max={args.t_max:g} tau"
    )
    for m in measures():
        if m.summary and m.applies_to(solver):
            value = row[m.name]
            print(f"  {m.label:<31}{'n/a' if value is None or np.isnan(value) else f'{value:.6g}'}")
    print(f"  {'regime':<31}{label}")
    if args.out is not None:
        io.write_table(traj, args.out, io.trajectories_schema())
        print(
            f"trajectory ({traj.num_rows} rows: {', '.join(traj.column_names[2:])}) -> {args.out}"
        )


def _check_out(path: Path, option: str) -> None:
    """Refuse an output file whose directory does not exist (nothing is created silently)."""
    if not path.parent.is_dir():
        raise ValueError(
            f"`{option}` {path}: directory {path.parent} does not exist; create it first"
        )


_SOLVE_OPTIONS = {
    "grid.n_in": "--n-in",
    "grid.n_out": "--n-out",
    "grid.width": "--n-hidden",
    "grid.depth": "--depth",
    "grid.lambda": "--lam",
    "grid.scale": "--scale",
    "grid.seed": "--seed",
    "time.t_max": "--t-max",
    "time.n_points": "--n-points",
    "lr": "--lr",
    "task.seed": "--task-seed",
}


def _check_config(args: argparse.Namespace) -> None:
    from lrsweep import grid

    cfg = grid.load_config(args.config)
    plans = grid.plan(cfg)
    for p in plans.values():
        print(p.summary())
    idle = [n for n in cfg["sweeps"] if n not in plans]
    note = f"; not run (config key `run`): {', '.join(idle)}" if idle else ""
    print(f"{args.config}: OK ({len(plans)} sweep(s) to run{note})")


def _load_plan(config: Path, sweep: str):
    from lrsweep import grid

    return grid.plan(grid.load_config(config), sweeps=[sweep])[sweep]


def _run_shard(args: argparse.Namespace) -> None:
    from lrsweep import solve

    p = _load_plan(args.config, args.sweep)
    shards = list(p.shards) if args.all else args.shard
    if not shards:
        print(p.summary())
        print("\n".join(p.shards))
        return
    paths = SweepPaths(args.sweep, args.results)
    for shard in shards:
        files = [paths.shard_file(kind, shard) for kind in SHARD_FILES]
        solve.run_shard(p.shard_spec(shard), *files, log=sys.stdout)


def _aggregate(args: argparse.Namespace) -> None:
    from lrsweep.merge import merge_sweep

    merge_sweep(_load_plan(args.config, args.sweep), SweepPaths(args.sweep, args.results))


def _show(args: argparse.Namespace) -> None:
    from lrsweep import results

    _print_text(lambda: results.describe(args.sweep_dir, metric=args.metric), args.out)


def _status(args: argparse.Namespace) -> None:
    from lrsweep import results

    _print_text(
        lambda: results.sweep_status(args.sweep_dir, allow_failures=args.allow_failures), args.out
    )


def _print_text(make: Callable[[], str], out: Path | None) -> None:
    """Print ``make()`` and, with ``--out``, also write it atomically (checked before ``make``)."""
    from lrsweep.io import atomic_write

    if out is not None:
        _check_out(out, "--out")
    text = make()
    print(text)
    if out is not None:
        atomic_write(out, lambda tmp: tmp.write_text(text + "\n", encoding="utf-8"))


def _plot(args: argparse.Namespace) -> None:
    try:
        from lrsweep.plots import plot_sweep
    except ImportError as exc:
        raise ValueError(
            f"plotting is not available ({exc}); install lrsweep with its plotting dependencies"
        ) from None
    out = args.out if args.out is not None else SweepPaths.of(args.sweep_dir).plots
    kwargs = {} if args.threshold is None else {"threshold": args.threshold}
    paths = plot_sweep(args.sweep_dir, out, **kwargs)
    for path in paths:
        print(path)


_COMMANDS = {
    "solve": _solve,
    "check-config": _check_config,
    "run-shard": _run_shard,
    "aggregate": _aggregate,
    "show": _show,
    "status": _status,
    "plot": _plot,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``lrsweep`` console script; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.version:
        from lrsweep import __version__

        print(f"lrsweep {__version__}")
        return 0
    if args.command is None:
        parser.print_help()
        return 1
    try:
        _COMMANDS[args.command](args)
    except (ValueError, TypeError, OSError) as exc:
        msg = " ".join(str(exc).split())
        print(f"Error: {msg}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
