"""Compare two results directories table by table: are the Parquet tables the same?

Every ``*.parquet`` file below OLD must exist below NEW (and the other way round) and be
equal as a DataFrame (``pandas.testing.assert_frame_equal``, exact: same columns, dtypes,
index and values, NaN equal to NaN). Figures and captions (``*.png``, ``*.md``) are
compared byte for byte and their differences listed for information only.

Run:  python benchmarks/compare_results.py OLD NEW [--quiet]

Exit code 0 if every table is equal, 1 otherwise (a table missing on one side counts).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

TABLES = "*.parquet"
INFO = ("*.png", "*.md")


def files(root: Path, pattern: str) -> set[Path]:
    """Paths (relative to ``root``) of the files below ``root`` matching ``pattern``."""
    return {p.relative_to(root) for p in root.rglob(pattern) if p.is_file()}


def table_difference(old: Path, new: Path) -> str | None:
    """None if the two Parquet files hold equal DataFrames, else what differs."""
    a, b = pd.read_parquet(old), pd.read_parquet(new)
    try:
        pd.testing.assert_frame_equal(a, b, check_exact=True)
    except AssertionError as exc:
        if list(a.columns) != list(b.columns) or a.shape != b.shape:
            return f"columns {list(a.columns)} {a.shape} vs {list(b.columns)} {b.shape}"
        parts = [f"{c}: {_column_difference(a[c], b[c])}" for c in a.columns]
        parts = [p for p in parts if not p.endswith(": None")]
        return "; ".join(parts) or " ".join(str(exc).split())[:300]
    return None


def _column_difference(a: pd.Series, b: pd.Series) -> str | None:
    """None if equal, else the dtypes or the number of differing rows and the first one."""
    try:
        pd.testing.assert_series_equal(a, b, check_exact=True)
        return None
    except AssertionError:
        pass
    if a.dtype != b.dtype:
        return f"dtype {a.dtype} vs {b.dtype}"
    differs = [not _same(x, y) for x, y in zip(a, b, strict=True)]
    if not any(differs):
        return "values differ"
    i = differs.index(True)
    return f"{sum(differs)} of {len(a)} rows differ, first row {i}: {a.iloc[i]!r} vs {b.iloc[i]!r}"


def _same(x: object, y: object) -> bool:
    """Exact equality of two cells, NaN equal to NaN, lists compared element by element."""
    try:
        return bool(pd.isna(x) and pd.isna(y)) or bool(x == y)
    except (TypeError, ValueError):  # arrays (list columns)
        return bool(pd.Series(list(x)).equals(pd.Series(list(y))))


def compare(old: Path, new: Path, *, quiet: bool = False) -> int:
    """Print the comparison of ``old`` and ``new`` file by file; return the number of
    differing tables (missing ones included)."""
    bad = 0
    for pattern, is_table in [(TABLES, True), *((p, False) for p in INFO)]:
        kind = "table" if is_table else "info"
        a, b = files(old, pattern), files(new, pattern)
        differ = 0
        for rel in sorted(a | b):
            diff = None
            if rel not in b or rel not in a:
                status = "only in " + ("OLD" if rel in a else "NEW")
            elif is_table:
                diff = table_difference(old / rel, new / rel)
                status = "same" if diff is None else "DIFFERENT"
            else:
                same = (old / rel).read_bytes() == (new / rel).read_bytes()
                status = "same" if same else "differs"
            differ += status != "same"
            if status != "same" or not quiet:
                print(f"{kind:5s} {status:12s} {rel}", flush=True)
            if diff is not None:
                print(f"      {diff[:400]}")
        print(f"{pattern}: {len(a | b)} compared, {differ} different or missing", flush=True)
        bad += differ if is_table else 0
    return bad


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("old", type=Path, help="reference results directory")
    parser.add_argument("new", type=Path, help="results directory to check")
    parser.add_argument("--quiet", action="store_true", help="print only the differences")
    args = parser.parse_args(argv)
    for d in (args.old, args.new):
        if not d.is_dir():
            parser.error(f"{d} is not a directory")
    return 1 if compare(args.old, args.new, quiet=args.quiet) else 0


if __name__ == "__main__":
    sys.exit(main())
