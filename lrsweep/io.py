"""Pipeline tables: one explicit pyarrow schema per table, atomic writes, explicit reads.

Directory reads (``pd.read_parquet(dir)``, ``pyarrow.dataset``) take the schema from the
first file, drop columns that appear later, and pick up stray temp files; so every table
here has one :class:`pyarrow.Schema`, every write casts to it and goes through a
dot-prefixed temp file renamed into place (:func:`write_table`), and readers take an
explicit list of files (:func:`read_tables`).

Tables (column names are a contract with :mod:`lrsweep.plots`; see docs/pipeline.md). The
measure columns come from the registry :mod:`lrsweep.measures`, so the schemas are built by
functions (a measure registered at run time is in them); ``RUNS_SCHEMA`` etc. give the
current ones:

- ``runs`` (``results/<sweep>/runs.parquet``): one row per grid point (:func:`runs_schema`);
  shard files ``results/<sweep>/shards/<shard>.parquet`` hold the same columns except
  ``regime``, which the aggregate step labels (:func:`shard_schema`);
- ``trajectories``: long table, one row per (point, t) (:func:`trajectories_schema`);
- ``phase``: mean and spread over seeds per cell (:func:`phase_schema`);
- ``boundary``: λ where the mean kernel distance crosses the threshold (:data:`BOUNDARY_SCHEMA`).
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "BOUNDARY_SCHEMA",
    "CROSSINGS_SCHEMA",
    "FACET_KEYS",
    "ROLES",
    "SEARCH_BOUNDARY_SCHEMA",
    "TRAJECTORY_INDEX_SCHEMA",
    "table_writer",
    "PHASE_KEYS",
    "phase_metrics",
    "phase_schema",
    "runs_schema",
    "shard_schema",
    "trajectories_schema",
    "empty_table",
    "read_table",
    "phase_axis",
    "read_tables",
    "to_table",
    "write_table",
]

_f64, _i64, _str = pa.float64(), pa.int64(), pa.string()

#: Parameter columns shared by runs and phase tables.
PARAMETERS = [
    ("n_in", _i64),
    ("n_out", _i64),
    ("width", _i64),
    ("depth", _i64),
    ("layer_ratio", _f64),  # Gaussian inits: sigma ratio between layers (1 otherwise)
    ("lr_ratio", _f64),  # learning-rate ratio between layers (1: one rate)
    ("lambda", _f64),  # NaN for Gaussian inits (not an input; lambda_eff is measured)
    ("scale", _f64),
    ("seed", _i64),
]

#: Keys of one panel (facet) of a sweep: the solver, the architecture, the learning-rate ratio.
FACET_KEYS = ("solver", "n_in", "n_out", "width", "depth", "lr_ratio")
#: Keys of one phase-table cell (a facet at one layer ratio, λ and scale).
PHASE_KEYS = (*FACET_KEYS, "layer_ratio", "lambda", "scale")


def phase_axis(table: pd.DataFrame) -> str:
    """The phase diagram's horizontal axis: ``lambda``, or ``layer_ratio`` for Gaussian
    inits (whose λ is NaN: not an input)."""
    return "lambda" if table["lambda"].notna().any() else "layer_ratio"


#: Identity of a run, before its parameters.
_RUN_ID = [("sweep", _str), ("point_id", _i64), ("shard", _str), ("solver", _str), ("task", _str)]
#: Outcome of a run, after its parameters.
_RUN_STATUS = [("status", _str), ("reason", _str)]  # ok | skipped | failed; why not ok


def _measure_fields(kind: str) -> list[pa.Field]:
    from lrsweep.measures import measures

    return [
        pa.field(m.name, m.arrow_type, metadata={"description": m.description})
        for m in measures(kind)
    ]


def _regime_field() -> pa.Field:
    from lrsweep.metrics import REGIMES

    labels = "; ".join(f"{k}: {v}" for k, v in REGIMES.items())
    return pa.field(
        "regime", _str, metadata={"description": f"'' unless status is ok; else {labels}"}
    )


def regime_counts() -> tuple[str, ...]:
    """Phase-table columns counting each regime label per cell (``n_<label>``)."""
    from lrsweep.metrics import REGIMES

    return tuple(f"n_{label}" for label in REGIMES)


def shard_schema() -> pa.Schema:
    """Columns of a solver job's runs file: the runs table without ``regime``."""
    return pa.schema([f for f in runs_schema() if f.name != "regime"])


#: What a run was solved for (``role`` in runs.parquet).
ROLES = {
    "grid": "a point of the sweep's grid",
    "bracket": "search sweeps: a bracket point of a line (log-spaced |lambda| from min to max)",
    "iterate": "search sweeps: a root-finding iterate between two bracket points",
}


def runs_schema() -> pa.Schema:
    """``runs.parquet``: identity, parameters, role, status, the registered measures
    (:func:`lrsweep.measures.measures`: metrics, then ``regime``, then diagnostics)."""
    roles = "; ".join(f"{k}: {v}" for k, v in ROLES.items())
    return pa.schema(
        [
            *_RUN_ID,
            *PARAMETERS,
            pa.field("role", _str, metadata={"description": roles}),
            *_RUN_STATUS,
            *_measure_fields("metric"),
            _regime_field(),
            *_measure_fields("diagnostic"),
        ]
    )


def trajectories_schema() -> pa.Schema:
    """``trajectories.parquet``: one row per (point, t), a column per registered curve."""
    from lrsweep.measures import CURVES

    return pa.schema(
        [
            ("sweep", _str),
            ("point_id", _i64),
            ("t", _f64),  # t/τ
            *[(c.name, pa.list_(_f64) if c.vector else _f64) for c in CURVES.values()],
        ]
    )


def phase_metrics() -> tuple[str, ...]:
    """Measures averaged over seeds in the phase table (``phase=True`` in the registry)."""
    from lrsweep.measures import measures

    return tuple(m.name for m in measures() if m.phase)


def phase_schema() -> pa.Schema:
    """``phase.parquet``: one row per cell, counts and mean/std over seeds."""
    return pa.schema(
        [
            ("sweep", _str),
            ("solver", _str),
            *[p for p in PARAMETERS if p[0] != "seed"],
            ("n_seeds", _i64),  # runs with status ok in the cell
            ("n_fit", _i64),  # of those, runs that fit by t_max (lazy, rich, undefined)
            *[(c, _i64) for c in regime_counts()],
            *[(f"{m}_{s}", _f64) for m in phase_metrics() for s in ("mean", "std")],
        ]
    )


#: Points per row group of a trajectory file (``lrsweep.solve`` writes them so): a read of a
#: few points decodes at most this many points' rows per point asked for, and finds a point's
#: row group from its rank among its shard's ok points without reading the file's footer.
TRAJECTORY_ROW_GROUP = 16

#: ``trajectories/_index.parquet``: the files of the trajectory dataset, written once every
#: one of them has been checked against the plan (:func:`lrsweep.merge.merge_sweep`).
TRAJECTORY_INDEX_SCHEMA = pa.schema(
    [
        ("shard", _str),
        ("file", _str),  # name within the trajectories directory
        ("n_points", _i64),  # ok points in it
        ("n_rows", _i64),  # n_points x saved times
        ("fingerprint", _str),  # of the shard's spec
    ]
)

#: ``crossings.parquet`` (search sweeps): one row per (line, side, crossing), or per line-side
#: without a crossing (crossing −1) or skipped (inadmissible side).
CROSSINGS_SCHEMA = pa.schema(
    [
        ("sweep", _str),
        ("solver", _str),
        ("task", _str),
        *[p for p in PARAMETERS if p[0] != "lambda"],
        ("side", _str),  # negative | positive
        ("crossing", _i64),  # 0, 1, ... outward from lambda = 0; -1: none on this side
        ("measure", _str),
        ("threshold", _f64),
        ("lambda_star", _f64),  # NaN unless status converged
        ("measure_at_star", _f64),
        ("bracket_lo", _f64),  # the final bracket (lambda); the searched range if none
        ("bracket_hi", _f64),
        ("evaluations", _i64),
        ("status", _str),  # converged | none | failed | skipped
        ("reason", _str),
        ("measure_min", _f64),  # range of the measure over the line-side's bracket points
        ("measure_max", _f64),
    ]
)

#: ``boundary.parquet`` of a search sweep: λ* over seeds per cell, side and crossing index.
SEARCH_BOUNDARY_SCHEMA = pa.schema(
    [
        ("sweep", _str),
        ("solver", _str),
        *[p for p in PARAMETERS if p[0] not in ("lambda", "seed")],
        ("side", _str),
        ("crossing", _i64),
        ("measure", _str),
        ("threshold", _f64),
        ("n_lines", _i64),  # seeds whose line-side has this crossing (converged)
        ("lambda_star_mean", _f64),
        ("lambda_star_std", _f64),
    ]
)

BOUNDARY_SCHEMA = pa.schema(
    [
        ("sweep", _str),
        ("solver", _str),
        *[p for p in PARAMETERS if p[0] not in ("lambda", "seed")],
        ("threshold", _f64),
        ("lambda_neg", _f64),  # crossing on the λ < 0 side, NaN if none
        ("lambda_pos", _f64),  # crossing on the λ > 0 side, NaN if none
    ]
)


_CURRENT = {
    "RUNS_SCHEMA": runs_schema,
    "SHARD_SCHEMA": shard_schema,
    "TRAJECTORIES_SCHEMA": trajectories_schema,
    "PHASE_SCHEMA": phase_schema,
    "PHASE_METRICS": phase_metrics,
}


def __getattr__(name: str) -> object:
    """``RUNS_SCHEMA``, ``SHARD_SCHEMA``, ``TRAJECTORIES_SCHEMA``, ``PHASE_SCHEMA``,
    ``PHASE_METRICS``: the current value of the function of the same name."""
    if name in _CURRENT:
        return _CURRENT[name]()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def to_table(columns: Mapping[str, object], schema: pa.Schema) -> pa.Table:
    """Build a table with exactly ``schema``'s columns, in order, cast to its types.

    Raises
    ------
    ValueError
        If a column is missing or an unexpected one is given (names them).
    """
    missing = [n for n in schema.names if n not in columns]
    extra = [n for n in columns if n not in schema.names]
    if missing or extra:
        raise ValueError(
            f"table columns do not match the schema: missing {missing}, unexpected {extra}"
        )
    arrays = []
    for f in schema:
        col = columns[f.name]
        if isinstance(col, np.ndarray) and col.dtype == object and pa.types.is_string(f.type):
            col = col.tolist()
        arrays.append(pa.array(col, type=f.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def empty_table(schema: pa.Schema) -> pa.Table:
    """A zero-row table with ``schema``."""
    return schema.empty_table()


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` on a dot-prefixed temporary file beside ``path``, then rename it.

    :func:`os.replace` makes the file appear whole or not at all, so a reader never sees a
    partial output under the final name; the temporary file is removed if ``write`` fails
    (an interrupted process leaves at most a dot-prefixed file, which no reader lists).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_table(
    table: pa.Table,
    path: str | os.PathLike,
    schema: pa.Schema,
    *,
    metadata: Mapping[bytes, bytes] | None = None,
    row_group_size: int | None = None,
) -> Path:
    """Write ``table`` (cast to ``schema``) to ``path`` atomically (:func:`atomic_write`),
    with extra schema ``metadata`` (e.g. a shard's fingerprint) and row groups of at most
    ``row_group_size`` rows."""
    if table.schema.remove_metadata() != schema:
        table = table.select(schema.names).cast(schema)
    if metadata:
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), **metadata})
    return atomic_write(
        path,
        lambda tmp: pq.write_table(table, tmp, compression="zstd", row_group_size=row_group_size),
    )


@contextlib.contextmanager
def table_writer(
    path: str | os.PathLike, schema: pa.Schema
) -> Iterator[Callable[[pa.Table], None]]:
    """Stream tables into one Parquet file, atomically: ``with table_writer(p, s) as write:``.

    Each ``write(table)`` appends (cast to ``schema``) as its own row group(s); the file
    appears under its name only when the block ends without an error (:func:`atomic_write`).
    """
    done = False
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    writer = pq.ParquetWriter(tmp, schema, compression="zstd")
    try:

        def write(table: pa.Table) -> None:
            if table.schema.remove_metadata() != schema:
                table = table.select(schema.names).cast(schema)
            writer.write_table(table)

        yield write
        writer.close()
        os.replace(tmp, path)
        done = True
    finally:
        if not done:
            writer.close()
            tmp.unlink(missing_ok=True)


def read_table(
    path: str | os.PathLike, schema: pa.Schema, *, columns: Sequence[str] | None = None
) -> pa.Table:
    """Read one Parquet file and check that it has ``schema`` (names and types); with
    ``columns``, read only those (after checking the whole schema)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"table `{path}` does not exist; run the pipeline to create it")
    got = pq.read_schema(path)
    if got.remove_metadata() != schema:
        raise ValueError(
            f"table `{path}` does not have the expected schema; expected {schema.names}, "
            f"got {got.names}; rerun the step that writes it"
        )
    table = pq.read_table(path, columns=list(columns) if columns is not None else None)
    # also restores the list item names Parquet renames
    return table.cast(pa.schema([schema.field(n) for n in table.column_names]))


def read_tables(paths: Sequence[str | os.PathLike], schema: pa.Schema) -> pa.Table:
    """Read an explicit list of Parquet files with one schema and concatenate them in order."""
    tables = [read_table(p, schema) for p in paths]
    return pa.concat_tables(tables) if tables else empty_table(schema)
