"""Loading into the working DuckDB: staged loads, then idempotent partition replacement.

A load is first *staged*: its rows go to `raw_pending.<table>` under a load id, where the
blocking checks judge exactly those rows. Only a passing load is *committed*: one transaction
deletes the days it covers from `raw.<table>` and moves its rows in, so re-materializing a
partition replaces it (never duplicates it), and a failing load (or a failed commit) leaves
the previous rows untouched. A refused load is discarded from the pending table.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date

import duckdb
import pandas as pd

from orchestration.raw_tables import PENDING_SCHEMA, RawTable


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


def _insert(
    conn: duckdb.DuckDBPyConnection,
    table: RawTable,
    frame: pd.DataFrame,
    source: str,
    into: str | None = None,
    load_id: str | None = None,
) -> int:
    if "_source_row" not in frame.columns:  # the position in the frame, as loaded
        frame = frame.assign(_source_row=range(1, len(frame) + 1))
    conn.register("incoming_rows", frame)
    try:
        return _insert_from(conn, table, "incoming_rows", source, into, load_id)
    finally:
        conn.unregister("incoming_rows")


def _columns_of(conn: duckdb.DuckDBPyConnection, relation: str) -> list[str]:
    return [d[0] for d in conn.execute(f"select * from {relation} limit 0").description]


def _insert_from(
    conn: duckdb.DuckDBPyConnection,
    table: RawTable,
    relation: str,
    source: str,
    into: str | None = None,
    load_id: str | None = None,
) -> int:
    """Insert a relation's rows (a registered frame, a Parquet file) into `into`, typed as declared;
    returns how many."""
    present = set(_columns_of(conn, relation))
    missing = [c for c in table.source_columns if c not in present]
    if missing:
        raise LoadError(f"{table.qualified}: incoming rows lack columns {missing}")
    typed = list(table.columns) + ([("_partition_date", "DATE")] if table.partitioned else [])
    select = [f'CAST("{c}" AS {t})' for c, t in typed]
    # provenance the rows carry (report day, arrival), else NULL
    select += [f'CAST("{c}" AS {t})' if c in present else f"CAST(NULL AS {t})" for c, t in table.provenance]
    typed += list(table.provenance)
    # rows may say where they came from (a file name, its row); else the load's source and position
    select.append('"_source"' if "_source" in present else "?")
    select.append('"_source_row"' if "_source_row" in present else "row_number() over ()")
    params = [] if "_source" in present else [source]
    target = ", ".join(f'"{c}"' for c, _ in typed) + ', "_source", "_source_row", "_loaded_at"'
    if load_id is not None:
        target += ', "_load_id"'
        params.append(load_id)
    return conn.execute(
        f"INSERT INTO {into or table.qualified} ({target}) "
        f"SELECT {', '.join(select)}, now(){', ?' if load_id is not None else ''} FROM {relation}",
        params,
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


def pending_rows(table: RawTable, load_id: str) -> str:
    """SQL relation of the rows a staged load holds (for the checks)."""
    quoted = load_id.replace("'", "''")
    return f"(select * exclude (_load_id) from {table.pending} where _load_id = '{quoted}')"


def stage(
    conn: duckdb.DuckDBPyConnection,
    table: RawTable,
    rows: pd.DataFrame | str,
    load_id: str,
    start: date,
    end: date,
    source: str,
    days: list[date] | None = None,
) -> int:
    """Put a load's rows (days [start, end], or only `days` of it) in the pending table under `load_id`.

    `rows` is a frame, or a SQL relation (a landed Parquet file, read by DuckDB without passing
    through pandas). Raises `LoadError` (and stages nothing) if a row falls outside the days the
    load covers. `raw.<table>` is not touched. Returns the number of rows staged.
    """
    if isinstance(rows, str):
        if days is not None:
            raise LoadError(f"{table.qualified}: a relation is loaded for a whole window, not chosen days")
        _check_window_sql(conn, table, rows, start, end)
    else:
        _check_window(table, rows, start, end, days)
    ensure_table(conn, table)
    conn.execute(f"CREATE SCHEMA IF NOT EXISTS {PENDING_SCHEMA}")
    conn.execute(table.ddl(table.pending, (("_load_id", "VARCHAR"),)))
    with transaction(conn):
        # one writer at a time (the writer pool): anything else pending was left by a run that
        # died between staging and commit, and is dropped rather than kept (EMS rows are PHI)
        conn.execute(f"DELETE FROM {table.pending}")
        if isinstance(rows, str):
            staged = _insert_from(conn, table, rows, source, into=table.pending, load_id=load_id)
        else:
            staged = _insert(conn, table, rows, source, into=table.pending, load_id=load_id)
    return staged


def commit(
    conn: duckdb.DuckDBPyConnection,
    table: RawTable,
    load_id: str,
    start: date,
    end: date,
    days: list[date] | None = None,
) -> int:
    """Replace days [start, end] (or only `days`) of `raw.<table>` with the staged load, in one transaction."""
    columns = ", ".join(f'"{c}"' for c, _ in table.all_columns())
    with transaction(conn):
        if days is None:
            conn.execute(f'DELETE FROM {table.qualified} WHERE "_partition_date" BETWEEN ? AND ?', [start, end])
        elif days:
            conn.execute(
                f'DELETE FROM {table.qualified} WHERE list_contains(?::DATE[], "_partition_date")', [sorted(days)]
            )
        conn.execute(
            f"INSERT INTO {table.qualified} ({columns}) SELECT {columns} FROM {table.pending} WHERE _load_id = ?",
            [load_id],
        )
        moved = conn.execute(f"DELETE FROM {table.pending} WHERE _load_id = ?", [load_id]).fetchone()[0]
    return moved


def discard(conn: duckdb.DuckDBPyConnection, table: RawTable, load_id: str) -> None:
    """Drop a refused load from the pending table (raw.<table> was never touched)."""
    exists = conn.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
        [PENDING_SCHEMA, table.name],
    ).fetchone()[0]
    if exists:
        conn.execute(f"DELETE FROM {table.pending} WHERE _load_id = ?", [load_id])


def replace_partitions(
    conn: duckdb.DuckDBPyConnection,
    table: RawTable,
    frame: pd.DataFrame,
    start: date,
    end: date,
    source: str,
    days: list[date] | None = None,
) -> int:
    """Stage and commit at once, without checks in between (reference loads, tests, tools)."""
    load_id = f"direct-{uuid.uuid4().hex}"
    try:
        stage(conn, table, frame, load_id, start, end, source, days)
        return commit(conn, table, load_id, start, end, days)
    except BaseException:
        discard(conn, table, load_id)
        raise


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
