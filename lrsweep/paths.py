"""Where every file of the pipeline lives: one object per sweep, one per paper figure.

The workflow rules, the CLI, :mod:`lrsweep.results`, :mod:`lrsweep.plots` and the paper
experiments all take their paths from here, so a layout change is made once. Built with a
wildcard as the name (``SweepPaths("{sweep}")``) the same object gives Snakemake's patterns.

Layout (``root`` is ``results`` by default)::

    <root>/<sweep>/runs.parquet            one row per grid point
    <root>/<sweep>/trajectories/           one row per (point, t): a Parquet dataset, one
                                           <shard>.parquet per solver job, and
                                           _index.parquet listing the checked files
    <root>/<sweep>/phase.parquet           mean and spread over seeds per cell
    <root>/<sweep>/boundary.parquet        where the lazy/rich boundary lies
    <root>/<sweep>/crossings.parquet       search sweeps: every crossing of every line
    <root>/<sweep>/summary.txt             ``lrsweep show``
    <root>/<sweep>/status.txt              ``lrsweep status``: point counts, failure reasons
    <root>/<sweep>/plots/                  figures
    <root>/<sweep>/shards/<shard>.parquet  runs of a solver job (merged into runs.parquet)
    <root>/paper/<target>/<target>.{png,pdf,parquet,md}
    <root>/summary.{png,pdf,parquet}       the paper's summary page (target ``summary``)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["FigurePaths", "SUMMARY", "SweepPaths", "TABLES"]

#: The aggregated tables of a sweep, in the order they are written (``crossings`` is empty
#: but for search sweeps).
TABLES = ("runs", "trajectories", "phase", "boundary", "crossings")
#: The paper target whose files sit in ``<root>`` itself: the summary page of all figures.
SUMMARY = "summary"


#: The files a solver job writes for its shard.
SHARD_FILES = ("runs", "trajectories", "crossings")


@dataclass(frozen=True)
class SweepPaths:
    """Paths of one sweep's outputs (``sweep`` may be a wildcard such as ``"{sweep}"``)."""

    sweep: str
    root: Path = Path("results")

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @classmethod
    def of(cls, sweep_dir: str | Path) -> SweepPaths:
        """The paths of the sweep whose directory is ``sweep_dir`` (``<root>/<sweep>``)."""
        d = Path(sweep_dir)
        return cls(d.name, d.parent)

    @property
    def dir(self) -> Path:
        return self.root / self.sweep

    def table(self, name: str) -> Path:
        """The file of one of :data:`TABLES` (for ``trajectories``, the dataset's index)."""
        if name not in TABLES:
            raise ValueError(f"`name` must be one of {list(TABLES)}, got {name!r}")
        if name == "trajectories":
            return self.trajectory_dir / "_index.parquet"
        return self.dir / f"{name}.parquet"

    @property
    def trajectory_dir(self) -> Path:
        """The trajectory dataset: one ``<shard>.parquet`` per solver job."""
        return self.dir / "trajectories"

    @property
    def runs(self) -> Path:
        return self.table("runs")

    @property
    def trajectories(self) -> Path:
        return self.table("trajectories")

    @property
    def phase(self) -> Path:
        return self.table("phase")

    @property
    def boundary(self) -> Path:
        return self.table("boundary")

    @property
    def crossings(self) -> Path:
        return self.table("crossings")

    @property
    def summary(self) -> Path:
        return self.dir / "summary.txt"

    @property
    def status(self) -> Path:
        return self.dir / "status.txt"

    @property
    def plots(self) -> Path:
        return self.dir / "plots"

    @property
    def shards(self) -> Path:
        return self.dir / "shards"

    def shard_file(self, kind: str, shard: str) -> Path:
        """The file of one of :data:`SHARD_FILES` written for ``shard``."""
        if kind not in SHARD_FILES:
            raise ValueError(f"`kind` must be one of {list(SHARD_FILES)}, got {kind!r}")
        return getattr(self, f"shard_{kind}")(shard)

    def shard_runs(self, shard: str) -> Path:
        """The runs file written by the solver job of ``shard``."""
        return self.shards / f"{shard}.parquet"

    def shard_crossings(self, shard: str) -> Path:
        """The crossings found by the solver job of ``shard`` (search sweeps; else empty)."""
        return self.shards / f"{shard}.crossings.parquet"

    def shard_trajectories(self, shard: str) -> Path:
        """The trajectories file written by the solver job of ``shard`` (a dataset file)."""
        return self.trajectory_dir / f"{shard}.parquet"

    def benchmark(self, rule: str, job: str | None = None) -> Path:
        """Snakemake's ``benchmark:`` file (wall time, max RSS) of a job of ``rule``."""
        return self.dir / "benchmarks" / rule / f"{job or self.sweep}.tsv"


@dataclass(frozen=True)
class FigurePaths:
    """The four files of one paper target: figure (PNG, PDF), tidy table and caption."""

    target: str
    root: Path = Path("results")

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @property
    def dir(self) -> Path:
        return self.root if self.target == SUMMARY else self.root / "paper" / self.target

    @property
    def png(self) -> Path:
        return self.dir / f"{self.target}.png"

    @property
    def pdf(self) -> Path:
        return self.dir / f"{self.target}.pdf"

    @property
    def table(self) -> Path:
        return self.dir / f"{self.target}.parquet"

    @property
    def caption(self) -> Path:
        return self.dir / f"{self.target}.md"
