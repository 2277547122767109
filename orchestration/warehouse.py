"""Loading into the working DuckDB: idempotent partition replacement, judged before it commits.

A load opens one transaction, deletes the days it covers from `raw.<table>` and inserts its
rows (`replace_rows`). Inside that transaction the load's days hold exactly its rows, so the
blocking checks judge them there (`load_rows`); only a passing load commits. A failing load,
a failed commit or a process that dies mid-load rolls back, and the previous rows are untouched;
nothing of it is visible to any other connection. Re-materializing a partition replaces it,
never duplicates it. The rows are written once (DuckDB writes a large uncommitted insert
straight to the file, and a rollback frees it).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date

import duckdb
import pandas as pd

from orchestration.raw_tables import LEGACY_PENDING_SCHEMA, RawTable


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
    # loads were once staged in a schema of their own; what a dead run left there may be PHI
    conn.execute(f"DROP SCHEMA IF EXISTS {LEGACY_PENDING_SCHEMA} CASCADE")
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


@contextmanager
def setting(conn: duckdb.DuckDBPyConnection, name: str, value: object) -> Iterator[None]:
    """A DuckDB setting changed for the block, then put back as it was."""
    before = conn.execute(f"SELECT current_setting('{name}')").fetchone()[0]
    conn.execute(f"SET {name} = ?", [value])
    try:
        yield
    finally:
        conn.execute(f"SET {name} = ?", [before])


@contextmanager
def load_transaction(conn: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """`transaction` for loads: its inserts need not keep their input's order (each row carries
    its position, `_source_row`). Keeping it made ten years of landed calls cost 3-5 s more to
    insert and as much again to checkpoint when the connection closed (docs/performance.md,
    seventeenth round). The setting is put back after the commit or rollback: an aborted
    transaction refuses even a SET."""
    with setting(conn, "preserve_insertion_order", False), transaction(conn):
        yield


def _insert(conn: duckdb.DuckDBPyConnection, table: RawTable, frame: pd.DataFrame, source: str) -> int:
    if "_source_row" not in frame.columns:  # the position in the frame, as loaded
        frame = frame.assign(_source_row=range(1, len(frame) + 1))
    conn.register("incoming_rows", frame)
    try:
        return _insert_from(conn, table, "incoming_rows", source)
    finally:
        conn.unregister("incoming_rows")


def _columns_of(conn: duckdb.DuckDBPyConnection, relation: str) -> list[str]:
    return [d[0] for d in conn.execute(f"select * from {relation} limit 0").description]


def _insert_from(conn: duckdb.DuckDBPyConnection, table: RawTable, relation: str, source: str) -> int:
    """Insert a relation's rows (a registered frame, a Parquet file) into `raw.<table>`, typed as
    declared; returns how many."""
    present = set(_columns_of(conn, relation))
    missing = [c for c in table.source_columns if c not in present]
    if missing:
        raise LoadError(f"{table.qualified}: incoming rows lack columns {missing}")
    typed = list(table.columns) + ([("_partition_date", "DATE")] if table.partitioned else [])
    select = [f'CAST("{c}" AS {t})' for c, t in typed]
    # provenance the rows carry (report day, arrival), else NULL
    select += [f'CAST("{c}" AS {t})' if c in present else f"CAST(NULL AS {t})" for c, t in table.provenance]
    typed += list(table.provenance)
    # rows say their position (a frame's is added by `_insert`, a landed file's by landing), and
    # may say where they came from (a file name); else the load's source. The insert need not
    # keep their order (`load_transaction`), so it cannot number them itself.
    if "_source_row" not in present:
        raise LoadError(f"{table.qualified}: incoming rows lack _source_row, their position in the load")
    select.append('"_source"' if "_source" in present else "?")
    select.append('"_source_row"')
    params = [] if "_source" in present else [source]
    target = ", ".join(f'"{c}"' for c, _ in typed) + ', "_source", "_source_row", "_loaded_at"'
    return conn.execute(
        f"INSERT INTO {table.qualified} ({target}) SELECT {', '.join(select)}, now() FROM {relation}", params
    ).fetchone()[0]


def _check_window(table: RawTable, frame: pd.DataFrame, start: date, end: date, days: list[date] | None) -> None:
    if not table.partitioned:
        raise LoadError(f"{table.qualified} is not partitioned")
    if "_partition_date" not in frame.columns:
        raise LoadError(f"{table.qualified}: incoming rows lack _partition_date")
    dates = pd.to_datetime(frame["_partition_date"]).dt.date
    misplaced = (dates < start) | (dates > end) | dates.isna()
    if days is not None:
        misplaced |= ~dates.isin(set(days))
    outside = frame[misplaced]
    if len(outside):
        raise LoadError(
            f"{table.qualified}: {len(outside)} rows fall outside the window {start}..{end}, "
            f"e.g. {sorted(set(dates[outside.index].astype(str)))[:3]}"
        )


def _check_window_sql(conn: duckdb.DuckDBPyConnection, table: RawTable, relation: str, start: date, end: date) -> None:
    if not table.partitioned:
        raise LoadError(f"{table.qualified} is not partitioned")
    if "_partition_date" not in _columns_of(conn, relation):
        raise LoadError(f"{table.qualified}: incoming rows lack _partition_date")
    n, examples = conn.execute(
        f"""select count(*), list(distinct cast(d as varchar))[1:3] from (
            select cast("_partition_date" as date) as d from {relation}) where d is null or d not between ? and ?""",
        [start, end],
    ).fetchone()
    if n:
        raise LoadError(f"{table.qualified}: {n} rows fall outside the window {start}..{end}, e.g. {examples}")


def load_rows(table: RawTable, start: date, end: date, days: list[date] | None = None) -> str:
    """SQL relation of `raw.<table>`'s rows in the load's days: inside the load's transaction,
    exactly the rows it inserted (what the blocking checks judge)."""
    if days is not None:
        listed = ", ".join(f"DATE '{d}'" for d in sorted(days)) or "NULL"
        return f"(select * from {table.qualified} where _partition_date in ({listed}))"
    return f"(select * from {table.qualified} where _partition_date between DATE '{start}' and DATE '{end}')"


def replace_rows(
    conn: duckdb.DuckDBPyConnection,
    table: RawTable,
    rows: pd.DataFrame | str,
    start: date,
    end: date,
    source: str,
    days: list[date] | None = None,
) -> int:
    """Inside the caller's transaction, replace days [start, end] (or only `days`) of `raw.<table>`
    with the incoming rows; returns how many were inserted.

    `rows` is a frame, or a SQL relation (a landed Parquet file, read by DuckDB without passing
    through pandas). Raises `LoadError`, having changed nothing, if a row falls outside the days
    the load covers.
    """
    if isinstance(rows, str):
        if days is not None:
            raise LoadError(f"{table.qualified}: a relation is loaded for a whole window, not chosen days")
        _check_window_sql(conn, table, rows, start, end)
    else:
        _check_window(table, rows, start, end, days)
    ensure_table(conn, table)
    if days is None:
        conn.execute(f'DELETE FROM {table.qualified} WHERE "_partition_date" BETWEEN ? AND ?', [start, end])
    elif days:
        conn.execute(f'DELETE FROM {table.qualified} WHERE list_contains(?::DATE[], "_partition_date")', [sorted(days)])
    if isinstance(rows, str):
        return _insert_from(conn, table, rows, source)
    return _insert(conn, table, rows, source)


def replace_partitions(
    conn: duckdb.DuckDBPyConnection,
    table: RawTable,
    frame: pd.DataFrame,
    start: date,
    end: date,
    source: str,
    days: list[date] | None = None,
) -> int:
    """Replace days at once, without checks in between (reference loads, tests, tools)."""
    with load_transaction(conn):
        return replace_rows(conn, table, frame, start, end, source, days)


def replace_table(conn: duckdb.DuckDBPyConnection, table: RawTable, frame: pd.DataFrame, source: str) -> int:
    """Replace all rows of an unpartitioned table with `frame`, atomically."""
    ensure_table(conn, table)
    # a plain transaction: a few hundred reference rows, nothing to gain by dropping their order
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
