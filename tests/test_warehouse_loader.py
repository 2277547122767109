"""Raw loads replace their window atomically: idempotent, never partial, never outside the window."""

from datetime import date
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from orchestration.demo.calls import generate_calls
from orchestration.raw_tables import CALLS
from orchestration.sql_rules import local_day_of_epoch_ms
from orchestration.warehouse import LoadError, replace_partitions


@pytest.fixture
def conn(tmp_path):
    with duckdb.connect(str(tmp_path / "w.duckdb")) as c:
        yield c


def _calls(start: date, end: date) -> pd.DataFrame:
    frame = generate_calls(start, end, seed=11)
    frame["_partition_date"] = local_day_of_epoch_ms(frame["callDateTime"])
    return frame


def _count(conn) -> int:
    return conn.execute("select count(*) from raw.calls_for_service").fetchone()[0]


def test_reloading_a_partition_replaces_it(conn):
    days = _calls(date(2024, 5, 1), date(2024, 5, 3))
    replace_partitions(conn, CALLS, days, date(2024, 5, 1), date(2024, 5, 3), "demo")
    first = _count(conn)
    one_day = _calls(date(2024, 5, 2), date(2024, 5, 2))
    replace_partitions(conn, CALLS, one_day, date(2024, 5, 2), date(2024, 5, 2), "demo")
    assert _count(conn) == first == len(days)
    assert conn.execute("select count(distinct recordId) from raw.calls_for_service").fetchone()[0] == first


def test_rows_outside_the_window_are_refused_and_nothing_changes(conn):
    replace_partitions(
        conn, CALLS, _calls(date(2024, 5, 1), date(2024, 5, 1)), date(2024, 5, 1), date(2024, 5, 1), "demo"
    )
    before = _count(conn)
    wrong = _calls(date(2024, 5, 1), date(2024, 5, 2))
    with pytest.raises(LoadError, match="outside the window"):
        replace_partitions(conn, CALLS, wrong, date(2024, 5, 1), date(2024, 5, 1), "demo")
    assert _count(conn) == before


def test_a_failing_insert_leaves_the_previous_partition_intact(conn):
    good = _calls(date(2024, 5, 1), date(2024, 5, 1))
    replace_partitions(conn, CALLS, good, date(2024, 5, 1), date(2024, 5, 1), "demo")
    bad = good.copy()
    bad["recordId"] = "not a number"  # the CAST fails after the DELETE ran inside the transaction
    with pytest.raises(duckdb.ConversionException):
        replace_partitions(conn, CALLS, bad, date(2024, 5, 1), date(2024, 5, 1), "demo")
    assert _count(conn) == len(good)
    # the load's setting is put back after the rollback (the aborted transaction refused a SET)
    assert conn.execute("select current_setting('preserve_insertion_order')").fetchone()[0] is True


def test_rows_that_do_not_say_their_position_are_refused(conn, tmp_path):
    """An insert that need not keep its input's order cannot number the rows itself: a relation
    without `_source_row` is refused, and nothing changes."""
    from orchestration.warehouse import load_transaction, replace_rows

    good = _calls(date(2024, 5, 1), date(2024, 5, 1))
    replace_partitions(conn, CALLS, good, date(2024, 5, 1), date(2024, 5, 1), "demo")
    path = tmp_path / "unnumbered.parquet"
    good.to_parquet(path)  # no _source_row: `replace_partitions` numbered its own copy
    with pytest.raises(LoadError, match="_source_row"), load_transaction(conn):
        replace_rows(conn, CALLS, f"read_parquet('{path}')", date(2024, 5, 1), date(2024, 5, 1), "demo")
    assert _count(conn) == len(good)


def test_a_frame_missing_a_declared_column_is_refused(conn):
    frame = _calls(date(2024, 5, 1), date(2024, 5, 1)).drop(columns=["description"])
    with pytest.raises(LoadError, match="description"):
        replace_partitions(conn, CALLS, frame, date(2024, 5, 1), date(2024, 5, 1), "demo")


def test_a_table_from_an_older_version_gains_the_declared_columns(conn):
    from orchestration.raw_tables import HEALTH
    from orchestration.warehouse import replace_table

    conn.execute("create schema raw")
    conn.execute('create table raw.csa_health_indicators ("CSA" varchar, "Population" double)')
    frame = pd.DataFrame({**{c: [None] for c in HEALTH.source_columns}, "CSA": ["Canton"], "Population": [8100.0]})
    assert replace_table(conn, HEALTH, frame, "demo") == 1
    columns = [
        c
        for (c,) in conn.execute(
            "select column_name from information_schema.columns where table_name = 'csa_health_indicators'"
        ).fetchall()
    ]
    assert "CSA_as_published" in columns and "LifeExpectancy" in columns


def test_a_landed_window_streams_in_chunks_and_loads_any_day_of_it(conn, tmp_path):
    """A range lands chunk by chunk into one Parquet file; a load of one of its days reads only
    that day's rows from it, through DuckDB, numbered as they were landed."""
    from orchestration.demo.calls import iter_calls
    from orchestration.landing import land_chunks, landed
    from orchestration.warehouse import load_transaction, replace_rows

    first, last = date(2024, 3, 9), date(2024, 3, 12)
    frames = [f.assign(_partition_date=local_day_of_epoch_ms(f["callDateTime"])) for f in iter_calls(first, last, 3, 2)]
    path, rows = land_chunks(tmp_path / "w.duckdb", CALLS.name, iter(frames), first, last, "demo", "test")
    whole = pd.concat(frames, ignore_index=True)
    assert rows == len(whole) and path.exists()
    day = date(2024, 3, 10)
    window = landed(tmp_path / "w.duckdb", CALLS.name, day, day)
    assert not window.exact and window.days == {day}
    expected = whole[pd.to_datetime(whole["_partition_date"]).dt.date == day]
    with load_transaction(conn):
        assert replace_rows(conn, CALLS, window.relation, day, day, "demo") == len(expected)
    loaded = conn.execute(
        'select "recordId", "_source_row" from raw.calls_for_service order by "_source_row"'
    ).fetchall()
    assert [r for r, _ in loaded] == expected["recordId"].tolist()
    assert [s for _, s in loaded] == [i + 1 for i in expected.index]  # positions in the landed range
    # the insert drops insertion order for itself only: the connection's setting is as it was
    assert conn.execute("select current_setting('preserve_insertion_order')").fetchone()[0] is True
    # a relation holding rows of other days is refused, as a frame would be
    with pytest.raises(LoadError, match="outside the window"):
        replace_rows(conn, CALLS, f"read_parquet('{path}')", day, day, "demo")


def test_an_empty_landed_window_stages_nothing_and_names_no_day(conn, tmp_path):
    """A day the source answered with nothing lands as an empty file with the declared columns:
    the load sees no days with rows (so the empty-day refusal can judge it) and inserts 0 rows."""
    from orchestration.demo.calls import generate_calls
    from orchestration.landing import land_chunks, landed
    from orchestration.warehouse import replace_rows

    day = date(2024, 3, 10)
    empty = generate_calls(day, day, 3).head(0).assign(_partition_date=pd.Series(dtype="datetime64[ns]"))
    _, rows = land_chunks(tmp_path / "w.duckdb", CALLS.name, [empty], day, day, "demo", "test")
    window = landed(tmp_path / "w.duckdb", CALLS.name, day, day)
    assert rows == 0 and window.exact and window.days == set()
    assert replace_rows(conn, CALLS, window.relation, day, day, "demo") == 0


def test_a_load_whose_process_dies_before_its_commit_leaves_the_previous_rows(tmp_path):
    """A load writes straight into raw inside its transaction: a process killed mid-load (after
    the delete and the insert, before the commit) leaves the committed rows and nothing else."""
    import subprocess
    import sys

    db = tmp_path / "w.duckdb"
    day = date(2024, 5, 1)
    with duckdb.connect(str(db)) as conn:
        replace_partitions(conn, CALLS, _calls(day, day), day, day, "demo")
        before = conn.execute("select count(*), sum(recordId) from raw.calls_for_service").fetchone()
        conn.execute("create schema raw_pending; create table raw_pending.calls_for_service (x int)")
    script = f"""
import os, duckdb
from datetime import date
from pathlib import Path
from orchestration.raw_tables import CALLS
from orchestration.warehouse import replace_rows
from tests.test_warehouse_loader import _calls
conn = duckdb.connect({str(db)!r})
conn.execute("BEGIN TRANSACTION")
day = date(2024, 5, 1)
frame = _calls(day, day).head(10)
print(replace_rows(conn, CALLS, frame, day, day, "demo"), flush=True)
os._exit(3)  # dies: no commit, no rollback, no close
"""
    root = Path(__file__).resolve().parents[1]
    died = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=root)
    assert died.returncode == 3 and died.stdout.strip() == "10", died.stderr
    with duckdb.connect(str(db)) as conn:
        assert conn.execute("select count(*), sum(recordId) from raw.calls_for_service").fetchone() == before
        # the schema older versions staged loads in (PHI) is dropped by the next load
        replace_partitions(conn, CALLS, _calls(day, day), day, day, "demo")
        schemas = {s for (s,) in conn.execute("select schema_name from information_schema.schemata").fetchall()}
        assert "raw_pending" not in schemas


def test_landed_demo_days_are_the_staging_rules_local_days_across_dst():
    """The generator names each call's partition itself (the day it drew the call in); staging's
    rule (local day of callDateTime) must give the same day, on both DST changes too."""
    from orchestration.demo.calls import iter_call_tables

    for first, last in ((date(2024, 3, 9), date(2024, 3, 11)), (date(2024, 11, 2), date(2024, 11, 4))):
        table = pd.concat([t.to_pandas() for t in iter_call_tables(first, last, seed=5, chunk_days=2)])
        by_rule = local_day_of_epoch_ms(table["callDateTime"]).dt.date
        named = pd.to_datetime(table["_partition_date"]).dt.date
        assert len(table) > 9000 and (by_rule == named).all()
        assert set(named) == {first, first + pd.Timedelta(days=1), last}


def test_the_window_check_finds_every_row_off_its_day_reading_two_rows_a_day(conn):
    """The calls' window check evaluates the local-day rule on each day's first and last instant
    only; rows moved a day off in either direction must still be counted one by one, as the
    row-by-row scan (no `local_time_order`) counts them."""
    import dataclasses

    from orchestration.checks.raw_checks import CALLS_SPEC, check_timestamps_in_window

    first, last = date(2024, 3, 9), date(2024, 3, 11)  # spans the spring DST change
    replace_partitions(conn, CALLS, _calls(first, last), first, last, "demo")
    day_ms = 86_400_000
    conn.execute(
        f"""update raw.calls_for_service set "callDateTime" = "callDateTime" + {day_ms + 3_600_000}
            where "recordId" in (select "recordId" from raw.calls_for_service where _partition_date = '{first}'
                                 order by "recordId" limit 3 offset 500)"""
    )
    conn.execute(
        f"""update raw.calls_for_service set "callDateTime" = "callDateTime" - {day_ms}
            where "recordId" in (select "recordId" from raw.calls_for_service where _partition_date = '{last}'
                                 order by "recordId" limit 2 offset 900)"""
    )
    rows = "(select * from raw.calls_for_service)"
    fast = check_timestamps_in_window(conn, CALLS_SPEC, rows)
    slow = check_timestamps_in_window(conn, dataclasses.replace(CALLS_SPEC, local_time_order=None), rows)
    assert fast.metadata["failing_count"].value == slow.metadata["failing_count"].value == 5
    assert fast.metadata["rows_checked"].value == slow.metadata["rows_checked"].value == _count(conn)
    assert sorted(fast.metadata["examples"].value) == sorted(slow.metadata["examples"].value)
    assert not fast.passed
    clean = "(select * from raw.calls_for_service where _partition_date = '2024-03-10')"
    assert check_timestamps_in_window(conn, CALLS_SPEC, clean).metadata["failing_count"].value == 0


def test_boundaries_are_read_in_file_order_whatever_order_the_table_holds(conn):
    """The first polygon in file order wins a shared edge, so the layers are read back by the
    position each polygon had in its file (`_source_row`), not in the table's order."""
    from orchestration.assets.reference import boundary_frame, load_layers
    from orchestration.demo.boundaries import demo_layers
    from orchestration.raw_tables import BOUNDARIES
    from orchestration.warehouse import replace_table

    layers = demo_layers()
    frame = boundary_frame(layers, {})
    frame["_source_row"] = range(1, len(frame) + 1)
    replace_table(conn, BOUNDARIES, frame.iloc[::-1].reset_index(drop=True), "demo")  # stored backwards
    assert conn.execute("select name from raw.boundaries limit 1").fetchone()[0] == frame["name"].iloc[-1]
    read = load_layers(conn)
    assert {k: v.names for k, v in read.items()} == {k: v.names for k, v in layers.items()}
