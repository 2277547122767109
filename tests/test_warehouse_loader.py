"""Raw loads replace their window atomically: idempotent, never partial, never outside the window."""

from datetime import date

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
    from orchestration.warehouse import commit, stage

    first, last = date(2024, 3, 9), date(2024, 3, 12)
    frames = [f.assign(_partition_date=local_day_of_epoch_ms(f["callDateTime"])) for f in iter_calls(first, last, 3, 2)]
    path, rows = land_chunks(tmp_path / "w.duckdb", CALLS.name, iter(frames), first, last, "demo", "test")
    whole = pd.concat(frames, ignore_index=True)
    assert rows == len(whole) and path.exists()
    day = date(2024, 3, 10)
    window = landed(tmp_path / "w.duckdb", CALLS.name, day, day)
    assert not window.exact and window.days == {day}
    expected = whole[pd.to_datetime(whole["_partition_date"]).dt.date == day]
    assert stage(conn, CALLS, window.relation, "L", day, day, "demo") == len(expected)
    commit(conn, CALLS, "L", day, day)
    loaded = conn.execute(
        'select "recordId", "_source_row" from raw.calls_for_service order by "_source_row"'
    ).fetchall()
    assert [r for r, _ in loaded] == expected["recordId"].tolist()
    assert [s for _, s in loaded] == [i + 1 for i in expected.index]  # positions in the landed range
    # a relation holding rows of other days is refused, as a frame would be
    with pytest.raises(LoadError, match="outside the window"):
        stage(conn, CALLS, f"read_parquet('{path}')", "L2", day, day, "demo")


def test_an_empty_landed_window_stages_nothing_and_names_no_day(conn, tmp_path):
    """A day the source answered with nothing lands as an empty file with the declared columns:
    the load sees no days with rows (so the empty-day refusal can judge it) and stages 0 rows."""
    from orchestration.demo.calls import generate_calls
    from orchestration.landing import land_chunks, landed
    from orchestration.warehouse import stage

    day = date(2024, 3, 10)
    empty = generate_calls(day, day, 3).head(0).assign(_partition_date=pd.Series(dtype="datetime64[ns]"))
    _, rows = land_chunks(tmp_path / "w.duckdb", CALLS.name, [empty], day, day, "demo", "test")
    window = landed(tmp_path / "w.duckdb", CALLS.name, day, day)
    assert rows == 0 and window.exact and window.days == set()
    assert stage(conn, CALLS, window.relation, "L", day, day, "demo") == 0
