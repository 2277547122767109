"""Loading into the working DuckDB: idempotent partition replacement, in one transaction.

A load deletes the window it covers and inserts the new rows inside a single transaction,
so re-materializing a partition replaces it (never duplicates it) and a failed load leaves
the previous rows of that window untouched.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date

import duckdb
import pandas as pd

from orchestration.raw_tables import RawTable


class LoadError(RuntimeError):
    """A load that would put rows outside its partition window or lacks declared columns."""


@contextmanager
def transaction(conn: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Commit what the block did, or roll all of it back if it raised."""
    conn.execute("BEGIN TRANSACTION")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def ensure_table(conn: duckdb.DuckDBPyConnection, table: RawTable) -> None:
    """Create the table, or add the declared columns an older version of it lacks."""
    conn.execute("CREATE SCHEMA IF NOT EXISTS raw")
    conn.execute(table.ddl())
    present = {
        c
        for (c,) in conn.execute(
            "select column_name from information_schema.columns where table_schema = 'raw' and table_name = ?",
            [table.name],
        ).fetchall()
    }
    for column, column_type in table.all_columns():
        if column not in present:
            conn.execute(f'ALTER TABLE {table.qualified} ADD COLUMN "{column}" {column_type}')


def _insert(conn: duckdb.DuckDBPyConnection, table: RawTable, frame: pd.DataFrame, source: str) -> None:
    missing = [c for c in table.source_columns if c not in frame.columns]
    if missing:
        raise LoadError(f"{table.qualified}: incoming rows lack columns {missing}")
    cols = list(table.source_columns) + (["_partition_date"] if table.partitioned else [])
    incoming = frame[cols].copy()
    # a frame may say per row where it came from (a file name, its row); else the load's source
    incoming["_source"] = frame["_source"] if "_source" in frame.columns else source
    incoming["_source_row"] = frame["_source_row"] if "_source_row" in frame.columns else range(1, len(frame) + 1)
    conn.register("incoming_rows", incoming)
    try:
        target = ", ".join(f'"{c}"' for c in [*cols, "_source", "_source_row"])
        select = (
            ", ".join(f'CAST("{c}" AS {t})' for c, t in table.columns)
            + (', CAST("_partition_date" AS DATE)' if table.partitioned else "")
            + ', "_source", "_source_row"'
        )
        conn.execute(
            f'INSERT INTO {table.qualified} ({target}, "_loaded_at") SELECT {select}, now() FROM incoming_rows'
        )
    finally:
        conn.unregister("incoming_rows")


def replace_partitions(
    conn: duckdb.DuckDBPyConnection,
    table: RawTable,
    frame: pd.DataFrame,
    start: date,
    end: date,
    source: str,
    days: list[date] | None = None,
) -> int:
    """Replace the rows of days [start, end] of `table` with `frame` (which carries `_partition_date`).

    With `days`, only those days of the window are replaced (the others keep their rows): a
    folder of daily reports replaces the days it has reports for. Returns the number of rows
    inserted. Raises `LoadError` (and changes nothing) if a row falls outside the days replaced.
    """
    if not table.partitioned:
        raise LoadError(f"{table.qualified} is not partitioned")
    if "_partition_date" not in frame.columns:
        raise LoadError(f"{table.qualified}: incoming rows lack _partition_date")
    dates = pd.to_datetime(frame["_partition_date"]).dt.date
    allowed = set(days) if days is not None else None
    misplaced = (dates < start) | (dates > end) | dates.isna()
    if allowed is not None:
        misplaced |= ~dates.isin(allowed)
    outside = frame[misplaced]
    if len(outside):
        raise LoadError(
            f"{table.qualified}: {len(outside)} rows fall outside the window {start}..{end}, "
            f"e.g. {sorted(set(dates[outside.index].astype(str)))[:3]}"
        )
    ensure_table(conn, table)
    with transaction(conn):
        if allowed is None:
            conn.execute(f'DELETE FROM {table.qualified} WHERE "_partition_date" BETWEEN ? AND ?', [start, end])
        elif allowed:
            conn.execute(
                f'DELETE FROM {table.qualified} WHERE list_contains(?::DATE[], "_partition_date")', [sorted(allowed)]
            )
        _insert(conn, table, frame, source)
    return len(frame)


def replace_table(conn: duckdb.DuckDBPyConnection, table: RawTable, frame: pd.DataFrame, source: str) -> int:
    """Replace all rows of an unpartitioned table with `frame`, atomically."""
    ensure_table(conn, table)
    with transaction(conn):
        conn.execute(f"DELETE FROM {table.qualified}")
        _insert(conn, table, frame, source)
    return len(frame)


def partition_counts(conn: duckdb.DuckDBPyConnection, table: RawTable, start: date, end: date) -> dict[str, int]:
    rows = conn.execute(
        f'SELECT "_partition_date"::VARCHAR, count(*) FROM {table.qualified} '
        f'WHERE "_partition_date" BETWEEN ? AND ? GROUP BY 1 ORDER BY 1',
        [start, end],
    ).fetchall()
    return {d: n for d, n in rows}
