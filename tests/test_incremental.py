"""Incremental call models (macros/incremental_days.sql): a run rebuilds only the days that changed,
and the result equals a full rebuild, whatever happened to raw in between.

The expected tables come from dbt's --full-refresh over the same raw rows: a plain select over
every row, with none of the bookkeeping under test.
"""

import json
import os
import shutil
import subprocess
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from orchestration import settings
from orchestration.assets.dbt import RUN_WINDOW_TABLE, build_args, partition_window, write_run_window
from tests.conftest import run_in_location

# model -> (schema, table)
MODELS = {
    "int_calls_for_service__validated": ("intermediate", "int_calls_for_service__validated"),
    "fct_calls_for_service": ("marts", "fct_calls_for_service"),
    "quarantine_calls_for_service": ("quarantine", "calls_for_service"),
    "mart_call_volume_monthly": ("marts", "mart_call_volume_monthly"),
}
SELECT = list(MODELS)
DAILY = SELECT[:3]  # by day; the mart is by month (macros/incremental_months.sql)
# the naloxone models, incremental by report day (macros/incremental_naloxone.sql)
NALOXONE = {
    "int_naloxone_administrations__located": ("restricted", "int_naloxone_administrations__located"),
    "fct_naloxone_administrations": ("restricted", "fct_naloxone_administrations"),
    "quarantine_naloxone_administrations": ("restricted", "quarantine_naloxone_administrations"),
}


def dbt(database: Path, target: Path, *args: str) -> None:
    """Run dbt on `database` (its own target folder, so the session's manifest is left alone, and
    its log in it: `statements`)."""
    done = subprocess.run(
        [
            settings.dbt_executable(),
            *args,
            "--profiles-dir",
            ".",
            "--target-path",
            str(target),
            "--log-path",
            str(target),
        ],
        cwd=settings.DBT_PROJECT_DIR,
        env={**os.environ, "WAREHOUSE_DB": str(database)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:]


# every held-back call as the staging view stages it, with its reason: what the quarantine must hold
AS_STAGED = """
    select s.partition_date, v.quarantine_reason, s.record_id, s.call_key, s.call_number, s.call_epoch_ms,
           s.description_raw, s.neighborhood, s.source_row, s.load_source, s.loaded_at
    from staging.stg_open_baltimore__calls_for_service s
    join intermediate.int_calls_for_service__validated v using (partition_date, source_row, loaded_at)
    where v.quarantine_reason is not null"""


def multiset_differences(conn, left: str, right: str) -> int:
    """Rows of one select that are not in the other, both ways, as multisets (0: the same rows)."""
    return sum(
        conn.execute(f"select count(*) from ({a} except all {b})").fetchone()[0]
        for a, b in ((left, right), (right, left))
    )


def insert_raw_copy(conn, day: date, source_row: int, replace: str, where: str = "true") -> None:
    """A new load of one of `day`'s raw calls (the first by position among those `where` selects),
    its columns replaced by `replace` (`<expression> as <column>, ...`), at `source_row`."""
    conn.execute(
        f"""insert into raw.calls_for_service
            select * replace ({replace}, {source_row} as _source_row, now() as _loaded_at)
            from raw.calls_for_service where _partition_date = ? and ({where})
            order by _source_row limit 1""",
        [day],
    )


def quarantine_differs_from_staging(conn) -> int:
    """Rows of the calls' quarantine that are not the staging view's held-back rows, and the reverse
    (multisets): the quarantine stages raw rows itself (macro staged_open_baltimore_calls)."""
    return multiset_differences(conn, AS_STAGED, "select * from quarantine.calls_for_service")


def rebuilt(conn, model: str) -> set[date]:
    schema, table = MODELS[model]
    return {
        d
        for (d,) in conn.execute(
            f"select day from incremental_state.\"{schema}__{table}__days\" where status = 'rebuilt'"
        ).fetchall()
    }


def rebuilt_months(conn) -> set[date]:
    return {
        m
        for (m,) in conn.execute(
            'select month_start from incremental_state."marts__mart_call_volume_monthly__months" '
            "where status = 'rebuilt'"
        ).fetchall()
    }


def differences(path: Path, other: Path, model: str) -> int:
    """Rows in one database's table and not in the other's, both ways (as multisets)."""
    relation = ".".join({**MODELS, **NALOXONE}[model])
    with duckdb.connect(str(path)) as conn:
        conn.execute(f"attach '{other}' as other (read_only)")
        return multiset_differences(conn, f"select * from {relation}", f"select * from other.{relation}")


def test_partition_window_comes_from_the_run_tags():
    assert partition_window({"dagster/partition": "2024-03-05"}) == (date(2024, 3, 5), date(2024, 3, 5))
    assert partition_window(
        {"dagster/asset_partition_range_start": "2024-03-01", "dagster/asset_partition_range_end": "2024-03-07"}
    ) == (date(2024, 3, 1), date(2024, 3, 7))
    assert partition_window({}) is None
    with pytest.raises(ValueError):
        partition_window({"dagster/partition": "2024-03-05'; drop table raw.calls_for_service; --"})
    # no --vars: the window goes through a table, so dbt's parsed project stays valid from day to day
    assert build_args(full_refresh=False) == ["build"]
    assert build_args(full_refresh=True) == ["build", "--full-refresh"]


def test_an_incremental_build_equals_a_full_build_after_reloads_corrections_and_an_emptied_day(
    warehouse_copy, tmp_path
):
    reloaded, sharing, emptied = date(2024, 3, 5), date(2024, 2, 20), date(2024, 3, 1)
    with duckdb.connect(str(warehouse_copy)) as conn:
        days_before = conn.execute("select count(distinct _partition_date) from raw.calls_for_service").fetchone()[0]
        record_id, description = conn.execute(
            """select call_id, d.description_raw from marts.fct_calls_for_service f
               join intermediate.int_calls_for_service__validated d on d.record_id = f.call_id
               where f.partition_date = ? limit 1""",
            [sharing],
        ).fetchone()
        # a late report re-sends the reloaded day: a copy of a record first sent on another day,
        # ten rows gone, a corrected description
        conn.execute(
            """insert into raw.calls_for_service
               select * replace (cast(? as date) as _partition_date, 999999 as _source_row, now() as _loaded_at)
               from raw.calls_for_service where _partition_date = ? and cast(recordId as bigint) = ?""",
            [reloaded, sharing, record_id],
        )
        conn.execute(
            """delete from raw.calls_for_service where _partition_date = ? and _source_row in (
                   select _source_row from raw.calls_for_service where _partition_date = ? and _source_row < 999999
                   order by _source_row limit 10)""",
            [reloaded, reloaded],
        )
        conn.execute(
            """update raw.calls_for_service set description = ?, _loaded_at = now()
               where _partition_date = ? and _source_row < 999999""",
            [description, reloaded],
        )
        conn.execute("delete from raw.calls_for_service where _partition_date = ?", [emptied])
    # the window names only the emptied day: the reloaded day is found by its load time, the
    # sharing day by its record id
    window = json.dumps({"partition_start": emptied.isoformat(), "partition_end": emptied.isoformat()})
    dbt(warehouse_copy, tmp_path / "target", "run", "-s", *DAILY, "--vars", window)
    # the monthly mart did not run with them (a failed or skipped run): it catches up later
    dbt(warehouse_copy, tmp_path / "target", "run", "-s", "mart_call_volume_monthly")

    full = tmp_path / "full" / warehouse_copy.name
    full.parent.mkdir()
    shutil.copy(warehouse_copy, full)
    dbt(full, tmp_path / "target", "run", "-s", *SELECT, "--full-refresh")
    for model in MODELS:
        assert differences(warehouse_copy, full, model) == 0, model

    with duckdb.connect(str(warehouse_copy), read_only=True) as conn:
        days = rebuilt(conn, "int_calls_for_service__validated")
        assert {reloaded, sharing, emptied} <= days
        assert len(days) < days_before / 2, f"rebuilt {len(days)} of {days_before} days"
        assert rebuilt(conn, "fct_calls_for_service") == days
        assert rebuilt(conn, "quarantine_calls_for_service") == days
        assert rebuilt_months(conn) == {date(d.year, d.month, 1) for d in days}
        copies = dict(
            conn.execute(
                """select partition_date, quarantine_reason from intermediate.int_calls_for_service__validated
                   where record_id = ?""",
                [record_id],
            ).fetchall()
        )
        # the newer copy wins, in the day that was not in the window too
        assert copies == {reloaded: None, sharing: "duplicate_record_id"}
        # the older copy is quarantined as staging stages it, from its own load
        assert quarantine_differs_from_staging(conn) == 0
        assert conn.execute(
            "select count(*) from marts.fct_calls_for_service where partition_date = ?", [emptied]
        ).fetchone() == (0,)


def test_a_held_back_call_is_quarantined_as_staging_stages_it(warehouse_copy, tmp_path):
    """The quarantine stages only the raw rows it holds (with staging's macro) instead of joining
    the staging view; the rows it keeps are the view's, padded and empty text included."""
    day = date(2024, 3, 5)
    with duckdb.connect(str(warehouse_copy)) as conn:
        # three messy rows a feed could send: copies of one of the day's calls, each held back
        for source_row, replace in [
            (
                900001,
                "null as recordId, '  K-900001 ' as callKey, ' P240900001' as callNumber, "
                "'  COMMON ASSAULT  ' as description, '' as Neighborhood",
            ),
            (
                900002,
                "900000002 as recordId, 'K-900002' as callKey, '' as callNumber, "
                "'' as description, '  Bolton Hill ' as Neighborhood, 0.0 as latitude, 0.0 as longitude",
            ),
            (
                900003,
                "900000003 as recordId, 'K-900003' as callKey, 'P240900003' as callNumber, "
                "'SILENT 911' as description, '   ' as Neighborhood, 'Urgent?' as priority",
            ),
        ]:
            insert_raw_copy(conn, day, source_row, replace)
        epoch = conn.execute(
            "select callDateTime from raw.calls_for_service where _partition_date = ? and _source_row = 900001", [day]
        ).fetchone()[0]
    window = json.dumps({"partition_start": day.isoformat(), "partition_end": day.isoformat()})
    dbt(warehouse_copy, tmp_path / "target", "run", "-s", *DAILY, "--vars", window)
    with duckdb.connect(str(warehouse_copy), read_only=True) as conn:
        held = conn.execute(
            """select source_row, quarantine_reason, record_id, call_key, call_number, call_epoch_ms,
                      description_raw, neighborhood, load_source
               from quarantine.calls_for_service where partition_date = ? and source_row > 900000
               order by source_row""",
            [day],
        ).fetchall()
        assert held == [
            (900001, "missing_record_id", None, "K-900001", "P240900001", epoch, "COMMON ASSAULT", None, "demo"),
            (900002, "impossible_coordinates", 900000002, "K-900002", None, epoch, None, "Bolton Hill", "demo"),
            (900003, "unknown_priority_code", 900000003, "K-900003", "P240900003", epoch, "SILENT 911", None, "demo"),
        ]
        # every quarantined row, the new ones and the session's, is the staging view's row
        assert conn.execute(f"select count(*) from ({AS_STAGED})").fetchone()[0] > len(held)
        assert quarantine_differs_from_staging(conn) == 0


def test_a_run_without_changes_rebuilds_no_day_and_a_new_reference_rebuilds_every_day(warehouse_copy, tmp_path):
    dbt(warehouse_copy, tmp_path / "target", "run", "-s", *SELECT)
    with duckdb.connect(str(warehouse_copy)) as conn:
        assert rebuilt(conn, "int_calls_for_service__validated") == set()
        assert rebuilt(conn, "fct_calls_for_service") == set()
        assert rebuilt(conn, "quarantine_calls_for_service") == set()
        assert rebuilt_months(conn) == set()
        # a neighborhood's name key now points elsewhere: every call's resolution may change
        conn.execute(
            """update intermediate.int_reference__neighborhood_names set neighborhood_normalized = 'UNKNOWN PLACE'
               where name_key = (select min(name_key) from intermediate.int_reference__neighborhood_names)"""
        )
        days = conn.execute("select count(distinct _partition_date) from raw.calls_for_service").fetchone()[0]
    dbt(warehouse_copy, tmp_path / "target", "run", "-s", *SELECT)
    with duckdb.connect(str(warehouse_copy), read_only=True) as conn:
        assert len(rebuilt(conn, "int_calls_for_service__validated")) == days
        assert len(rebuilt(conn, "quarantine_calls_for_service")) == days
        months = conn.execute("select count(distinct month_start) from marts.mart_call_volume_monthly").fetchone()[0]
        assert len(rebuilt_months(conn)) == months


def test_a_daily_run_passes_its_day_to_dbt_and_rebuilds_that_day(warehouse_copy):
    from orchestration.assets.dbt import warehouse_dbt_models

    day = date(2024, 3, 10)  # the DST change
    with duckdb.connect(str(warehouse_copy)) as conn:
        assert rebuilt(conn, "fct_calls_for_service") == set()  # the session's build passed its tests
        # a row of the day leaves raw without a new load time: only the window can rebuild the day
        conn.execute(
            """delete from raw.calls_for_service where _partition_date = ?
               and _source_row = (select min(_source_row) from raw.calls_for_service where _partition_date = ?)""",
            [day, day],
        )
    with dg.DagsterInstance.ephemeral() as instance:
        result = run_in_location(list(warehouse_dbt_models.keys), instance, partition_key=day.isoformat())
    assert result.success
    with duckdb.connect(str(warehouse_copy), read_only=True) as conn:
        # the fact logged the day for the monthly mart, which rebuilt its month alone; every
        # day-scoped test passed, so the day left the ledger (orchestration/assets/rebuilt_days.py)
        assert rebuilt_months(conn) == {date(2024, 3, 1)}
        assert rebuilt(conn, "fct_calls_for_service") == set()
        raw, fact, quarantined = conn.execute(
            """select (select count(*) from raw.calls_for_service where _partition_date = $1),
                      (select count(*) from marts.fct_calls_for_service where partition_date = $1),
                      (select count(*) from quarantine.calls_for_service where partition_date = $1)""",
            [day],
        ).fetchone()
        assert raw == fact + quarantined > 0
        # the window is cleared once dbt has run: a later dbt run by hand is not widened by it
        assert conn.execute(f"select count(*) from {RUN_WINDOW_TABLE}").fetchone()[0] == 0


def _day_scoped_tests_passed(database: Path) -> None:
    """Clear the ledgers' rebuilt days, as Dagster does after a build whose day-scoped tests all
    passed (a dbt run by hand leaves them for the next run's tests)."""
    with duckdb.connect(str(database)) as conn:
        for model in DAILY:
            schema, table = MODELS[model]
            conn.execute(f"delete from incremental_state.\"{schema}__{table}__days\" where status = 'rebuilt'")


def test_the_window_table_and_command_line_vars_both_name_the_days_to_rebuild(warehouse_copy, tmp_path):
    """The macro reads `RUN_WINDOW_TABLE` (what Dagster writes) unless vars are given by hand."""
    dbt(warehouse_copy, tmp_path / "target", "run", "-s", *SELECT)  # settle: nothing left to rebuild
    write_run_window(str(warehouse_copy), (date(2024, 3, 3), date(2024, 3, 4)))
    dbt(warehouse_copy, tmp_path / "target", "run", "-s", *SELECT)
    with duckdb.connect(str(warehouse_copy)) as conn:
        assert rebuilt(conn, "fct_calls_for_service") == {date(2024, 3, 3), date(2024, 3, 4)}
    _day_scoped_tests_passed(warehouse_copy)
    window = json.dumps({"partition_start": "2024-03-06", "partition_end": "2024-03-06"})
    dbt(warehouse_copy, tmp_path / "target", "run", "-s", *SELECT, "--vars", window)
    with duckdb.connect(str(warehouse_copy)) as conn:
        assert rebuilt(conn, "fct_calls_for_service") == {date(2024, 3, 6)}
    # not yet tested: the day stays rebuilt through the next run, which adds none
    write_run_window(str(warehouse_copy), None)
    dbt(warehouse_copy, tmp_path / "target", "run", "-s", *SELECT)
    with duckdb.connect(str(warehouse_copy)) as conn:
        assert rebuilt(conn, "fct_calls_for_service") == {date(2024, 3, 6)}
    _day_scoped_tests_passed(warehouse_copy)
    dbt(warehouse_copy, tmp_path / "target", "run", "-s", *SELECT)
    with duckdb.connect(str(warehouse_copy)) as conn:
        assert rebuilt(conn, "fct_calls_for_service") == set()


def test_the_day_scoped_tests_of_each_ledger_are_found():
    from orchestration.assets.dbt import dbt_project
    from orchestration.assets.rebuilt_days import scoped_tests

    manifest = json.loads(dbt_project.manifest_path.read_text())
    found = scoped_tests(manifest)
    names = {ledger: {manifest["nodes"][uid]["name"] for uid in uids} for ledger, uids in found.items()}
    assert set(names) == {"intermediate__int_calls_for_service__validated__days", "marts__fct_calls_for_service__days"}
    assert {
        "unique_fct_calls_for_service_call_id",
        "not_null_fct_calls_for_service_call_id",
        "not_null_fct_calls_for_service_time_of_day_key",
        "relationships_fct_calls_for_service_date_key__date_key__ref_dim_date_",
    } <= names["marts__fct_calls_for_service__days"]
    # every test naming a ledger anywhere in its configuration is found, however it is written
    naming = {
        uid
        for uid, node in manifest["nodes"].items()
        if node["resource_type"] == "test"
        and "__days" in json.dumps([node["config"].get("where"), (node.get("test_metadata") or {}).get("kwargs")])
    }
    assert naming == set().union(*found.values())


def test_a_ledger_is_cleared_only_when_each_scoped_test_passed_or_warned():
    """orchestration/assets/rebuilt_days.py on a small ledger: an `error` test must pass, a `warn`
    test must have run (its warning does not block, and would otherwise keep the day forever), an
    unselected test keeps the days, a ledger no test reads is cleared, no ledger is no error."""
    from orchestration.assets.rebuilt_days import checked_tests, clear_checked_days

    where = "partition_date in (select day from incremental_state.\"marts__f__days\" where status = 'rebuilt')"
    manifest = {
        "nodes": {
            "test.e": {"resource_type": "test", "config": {"where": where, "severity": "ERROR"}},
            "test.w": {"resource_type": "test", "config": {"where": where, "severity": "warn"}},
            "model.f": {"resource_type": "model", "config": {}},
        }
    }
    with duckdb.connect() as conn:
        assert clear_checked_days(conn, manifest, set()) == []  # a warehouse without ledgers yet

        def ledgers_after(passed: set[str], evaluated: set[str]) -> dict[str, int]:
            conn.execute("drop schema if exists incremental_state cascade")
            conn.execute("create schema incremental_state")
            for ledger in ("marts__f__days", "quarantine__q__days"):
                conn.execute(f'create table incremental_state."{ledger}" (day date, status varchar)')
                conn.execute(
                    f"""insert into incremental_state."{ledger}" values
                        (date '2024-03-01', 'rebuilt'), (date '2024-03-02', 'pending')"""
                )
            clear_checked_days(conn, manifest, checked_tests(manifest, passed, evaluated))
            return {
                ledger: conn.execute(
                    f"""select count(*) from incremental_state."{ledger}" where status = 'rebuilt'"""
                ).fetchone()[0]
                for ledger in ("marts__f__days", "quarantine__q__days")
            }

        # both ran; the warning failed: cleared (pending days are never touched: one row left)
        assert ledgers_after({"test.e"}, {"test.e", "test.w"}) == {"marts__f__days": 0, "quarantine__q__days": 0}
        assert conn.execute('select count(*) from incremental_state."marts__f__days"').fetchone()[0] == 1
        # the error test failed: the day stays
        assert ledgers_after({"test.w"}, {"test.e", "test.w"}) == {"marts__f__days": 1, "quarantine__q__days": 0}
        # the warn test was not run (a run of other assets): the day stays
        assert ledgers_after({"test.e"}, {"test.e"}) == {"marts__f__days": 1, "quarantine__q__days": 0}
    # dbt takes a severity in any case
    manifest["nodes"]["test.w"]["config"]["severity"] = "WARN"
    assert checked_tests(manifest, {"test.e"}, {"test.e", "test.w"}) == {"test.e", "test.w"}


def test_a_day_whose_scoped_test_failed_stays_in_the_tests_scope_until_they_pass(warehouse_copy):
    """A day-scoped test that failed on a day fails again in the next day's run (the publication
    audits each check's latest result, so a pass on the next day alone would publish the bad
    day); once the day is repaired and every scoped test passes, the days leave the ledger."""
    from orchestration.assets.dbt import warehouse_dbt_models

    bad_day, next_day, other_day = date(2024, 3, 12), date(2024, 3, 13), date(2024, 2, 20)
    with duckdb.connect(str(warehouse_copy)) as conn:
        assert rebuilt(conn, "fct_calls_for_service") == set()  # the session's build passed its tests
        # a build of bad_day left a call without its time of day, and a second copy of a call of
        # another day; its tests failed, and the ledger kept the day as the build left it
        call_id, hour = conn.execute(
            "select call_id, time_of_day_key from marts.fct_calls_for_service where partition_date = ? limit 1",
            [bad_day],
        ).fetchone()
        conn.execute("update marts.fct_calls_for_service set time_of_day_key = null where call_id = ?", [call_id])
        copied = conn.execute(
            """insert into marts.fct_calls_for_service
               select * replace (cast(? as date) as partition_date) from marts.fct_calls_for_service
               where partition_date = ? limit 1 returning call_id""",
            [bad_day, other_day],
        ).fetchone()[0]
        conn.execute(
            """insert into incremental_state."marts__fct_calls_for_service__days" values (?, 'rebuilt')""", [bad_day]
        )

    def run_next_day():
        with dg.DagsterInstance.ephemeral() as instance:
            result = run_in_location(list(warehouse_dbt_models.keys), instance, partition_key=next_day.isoformat())
        return result, {e.check_name: e.passed for e in result.get_asset_check_evaluations()}

    failed, checks = run_next_day()
    assert not failed.success
    assert checks["not_null_fct_calls_for_service_time_of_day_key"] is False
    # the copy's other day was not rebuilt: the rebuilt day's ids are looked for in every day
    assert checks["unique_fct_calls_for_service_call_id"] is False
    with duckdb.connect(str(warehouse_copy)) as conn:
        assert {bad_day, next_day} <= rebuilt(conn, "fct_calls_for_service")
        conn.execute("update marts.fct_calls_for_service set time_of_day_key = ? where call_id = ?", [hour, call_id])
        conn.execute(
            "delete from marts.fct_calls_for_service where call_id = ? and partition_date = ?", [copied, bad_day]
        )

    repaired, checks = run_next_day()
    assert repaired.success
    assert checks["not_null_fct_calls_for_service_time_of_day_key"] is True
    assert checks["unique_fct_calls_for_service_call_id"] is True
    with duckdb.connect(str(warehouse_copy), read_only=True) as conn:
        assert rebuilt(conn, "fct_calls_for_service") == set()


def _parquet_file(folder: Path, table: str, year: int) -> Path:
    return folder / "parquet" / table / f"year={year}" / "data.parquet"


def _assert_published_tables_equal_working_ones(conn, tables: list[str]) -> None:
    """Each table of the publication attached as `pub` holds the working table's rows, no more."""
    for table in tables:
        relation = f"marts.{table}"
        assert multiset_differences(conn, f"select * from {relation}", f"select * from pub.{relation}") == 0, table


def test_a_publication_rewrites_only_changed_days_and_links_unchanged_years(warehouse_copy, session_instance):
    """Publishing again after a change of one day and of one mart without days: the serving
    tables equal the working ones; the fact's other year and the unchanged marts keep their
    Parquet files (hard links, same inode); the changed year and the changed mart are new."""
    from orchestration.assets.publish import PUBLICATION_KEY, ServingLayout
    from orchestration.run_all import run_range

    layout = ServingLayout(settings.serving_path())
    # every blocking check passes again: a test run before this one may have left a failure
    # (test_quality_gate's refused publication does), and the publication would be refused
    assert run_range(date(2024, 3, 10), date(2024, 3, 10), instance=session_instance).success
    with duckdb.connect(str(warehouse_copy)) as conn:
        # a second year: a day of 2023, copied from a day of the range with new ids
        conn.execute(
            """insert into marts.fct_calls_for_service select * replace (call_id + 800000000 as call_id,
                   partition_date - interval 366 day as partition_date)
               from marts.fct_calls_for_service where partition_date = date '2024-03-01'"""
        )
    assert run_in_location([PUBLICATION_KEY], session_instance).success
    first = layout.current_folder()
    with duckdb.connect(str(warehouse_copy)) as conn:
        conn.execute(
            """delete from marts.fct_calls_for_service where call_id in (select call_id
                   from marts.fct_calls_for_service where partition_date = date '2024-03-05' limit 5)"""
        )
        conn.execute(
            "delete from marts.mart_overdose_weekly where rowid = (select min(rowid) from marts.mart_overdose_weekly)"
        )
        assert conn.execute("select count(*) from marts.mart_unclassified_call_descriptions").fetchone()[0] > 0
        conn.execute("delete from marts.mart_unclassified_call_descriptions")  # a mart that became empty
        marts = conn.execute("select table_name from duckdb_tables() where schema_name = 'marts'").fetchall()
        tables = [t for (t,) in marts]
    result = run_in_location([PUBLICATION_KEY], session_instance)
    assert result.success
    second = layout.current_folder()
    assert second != first
    [materialization] = result.get_asset_materialization_events()
    changes = materialization.materialization.metadata["changes"].value
    assert changes["fct_calls_for_service"] == {"by_day": True, "days_rewritten": 1, "years": [2024]}
    emptied = "mart_unclassified_call_descriptions"
    assert changes[emptied] == {"by_day": False, "rewritten": True}
    # a mart with a date column is compared and rewritten by its values: one week of it here
    weekly = {"by_day": False, "rewritten": True, "sliced_by": "period_start", "slices_rewritten": 1}
    assert changes["mart_overdose_weekly"] == weekly
    assert changes["mart_overdose_daily"]["sliced_by"] == "day"
    unchanged = sorted(t for t, c in changes.items() if c.get("rewritten") is False)
    # every other table without days is left as it was (the two with days are compared by day)
    assert set(unchanged) == set(changes) - {
        "fct_calls_for_service",
        "mart_partition_quality",
        "mart_overdose_weekly",
        emptied,
    }
    assert {"dim_date", "dim_geography", "mart_csa_profile", "mart_overdose_monthly"} <= set(unchanged)

    fact = "fct_calls_for_service"
    assert os.stat(_parquet_file(second, fact, 2023)).st_ino == os.stat(_parquet_file(first, fact, 2023)).st_ino
    assert os.stat(_parquet_file(second, fact, 2024)).st_ino != os.stat(_parquet_file(first, fact, 2024)).st_ino
    for table in unchanged:
        file = Path("parquet") / f"{table}.parquet"
        assert os.stat(second / file).st_ino == os.stat(first / file).st_ino, table
    weekly = Path("parquet") / "mart_overdose_weekly.parquet"
    assert os.stat(second / weekly).st_ino != os.stat(first / weekly).st_ino
    with duckdb.connect(str(warehouse_copy), read_only=True) as conn:
        conn.execute(f"attach '{second / warehouse_copy.name}' as pub (read_only)")
        _assert_published_tables_equal_working_ones(conn, tables)
        # the publication keeps its per-day summary, which the next one compares against
        assert conn.execute(
            f"""select count(*) from (
                    (select day, n, h from pub.meta.day_summaries where table_name = '{fact}'
                     except all
                     select partition_date, count(*), sum(hash(t)) from pub.marts.{fact} as t group by 1)
                    union all
                    (select partition_date, count(*), sum(hash(t)) from pub.marts.{fact} as t group by 1
                     except all
                     select day, n, h from pub.meta.day_summaries where table_name = '{fact}'))"""
        ).fetchone() == (0,)
        files = str(second / "parquet" / fact / "*" / "*.parquet")
        assert conn.execute(
            f"""select count(*) from (select * exclude (year) from read_parquet('{files}', hive_partitioning = true)
                except all select * from marts.{fact})"""
        ).fetchone() == (0,)
        assert (
            conn.execute(f"select count(*) from read_parquet('{files}')").fetchone()
            == conn.execute(f"select count(*) from marts.{fact}").fetchone()
        )

    # a publication written before summaries were kept: the next one hashes its copy instead
    with duckdb.connect(str(second / warehouse_copy.name)) as conn:
        conn.execute("delete from meta.day_summaries")
    with duckdb.connect(str(warehouse_copy)) as conn:
        conn.execute("update marts.fct_calls_for_service set priority = 'Low' where partition_date = date '2024-03-07'")
        # a row without a day in a sliced mart: no slice holds it, so the mart is rewritten whole
        conn.execute(
            "insert into marts.mart_overdose_daily "
            "select * replace (null as day) from marts.mart_overdose_daily limit 1"
        )
    result = run_in_location([PUBLICATION_KEY], session_instance)
    assert result.success
    [materialization] = result.get_asset_materialization_events()
    changes = materialization.materialization.metadata["changes"].value
    assert changes[fact] == {"by_day": True, "days_rewritten": 1, "years": [2024]}
    assert changes["mart_overdose_daily"] == {"by_day": False, "rewritten": True}
    # an empty table has no summary row: found equal to its (empty) published copy all the same
    assert changes[emptied] == {"by_day": False, "rewritten": False}
    assert changes["mart_overdose_weekly"]["rewritten"] is changes["dim_date"]["rewritten"] is False
    with duckdb.connect(str(warehouse_copy), read_only=True) as conn:
        conn.execute(f"attach '{layout.current_folder() / warehouse_copy.name}' as pub (read_only)")
        _assert_published_tables_equal_working_ones(conn, tables)

    # rows written into the serving file by other means, under days its stored summaries do not
    # hold (so no day compares as changed): the row counts differ, and the tables are rewritten
    with duckdb.connect(str(layout.current_folder() / warehouse_copy.name)) as conn:
        for table, column in ((fact, "partition_date"), ("mart_overdose_weekly", "period_start")):
            conn.execute(
                f"insert into marts.{table} select * replace (date '1999-01-04' as {column}) from marts.{table} limit 2"
            )
    result = run_in_location([PUBLICATION_KEY], session_instance)
    assert result.success
    [materialization] = result.get_asset_materialization_events()
    changes = materialization.materialization.metadata["changes"].value
    assert changes[fact].get("rewritten") is changes["mart_overdose_weekly"].get("rewritten") is True
    assert "rows" in changes[fact].get("repaired", "") and "rows" in changes["mart_overdose_weekly"].get("repaired", "")
    assert changes["mart_overdose_monthly"]["rewritten"] is False
    with duckdb.connect(str(warehouse_copy), read_only=True) as conn:
        conn.execute(f"attach '{layout.current_folder() / warehouse_copy.name}' as pub (read_only)")
        _assert_published_tables_equal_working_ones(conn, tables)
        files = str(layout.current_folder() / "parquet" / fact / "*" / "*.parquet")
        assert (
            conn.execute(f"select count(*) from read_parquet('{files}')").fetchone()
            == conn.execute(f"select count(*) from marts.{fact}").fetchone()
        )


def test_point_assignments_add_new_points_and_reassign_all_when_the_polygons_change(warehouse_copy, session_instance):
    from orchestration.assets.reference import point_assignments
    from orchestration.definitions import defs

    def assign() -> dict:
        result = dg.materialize([point_assignments], resources=defs.resources, instance=session_instance)
        [event] = result.get_asset_materialization_events()
        return {k: v.value for k, v in event.materialization.metadata.items()}

    with duckdb.connect(str(warehouse_copy)) as conn:
        # new calls at points no call had: with no neighborhood name, with a blank one, and with a
        # neighborhood's own name (placed by that name, so its point needs no assignment)
        named = conn.execute("select min(neighborhood) from raw.neighborhoods").fetchone()[0]
        for i, (name, lat, lon) in enumerate(
            [(None, 39.301234, -76.612345), ("   ", 39.302345, -76.613456), (named, 39.303456, -76.614567)]
        ):
            conn.execute(
                f"""insert into raw.calls_for_service select * replace (
                       ?::varchar as Neighborhood, ? as latitude, ? as longitude,
                       _source_row + 7000000 + {i} as _source_row, now() as _loaded_at)
                   from raw.calls_for_service where _partition_date = date '2024-03-06' limit 1""",
                [name, lat, lon],
            )
    added = assign()
    assert added["points_assigned_now"] == 2 and added["reassigned_every_point"] is False
    with duckdb.connect(str(warehouse_copy)) as conn:
        incremental = set(conn.execute("select * from geography.point_assignments").fetchall())
        # the polygons changed (a re-delivered boundary file): every point is assigned again
        conn.execute(
            """update raw.boundaries set geometry_wkt = geometry_wkt || ' '
               where layer = 'neighborhood' and name = (select min(name) from raw.boundaries
                                                       where layer = 'neighborhood')"""
        )
    again = assign()
    assert again["reassigned_every_point"] is True
    with duckdb.connect(str(warehouse_copy), read_only=True) as conn:
        assert set(conn.execute("select * from geography.point_assignments").fetchall()) == incremental
        assert again["points_assigned_now"] == len(incremental)
        points = {(lat, lon) for lat, lon, _, _ in incremental}
        assert {(39.301234, -76.612345), (39.302345, -76.613456)} <= points
        assert (39.303456, -76.614567) not in points


@pytest.mark.parametrize(
    "legacy_column",
    ["object_id bigint", "call_key varchar"],
    ids=["every_staging_column", "the_fact_and_quarantine_columns"],
)
def test_legacy_relations_are_dropped_and_a_wide_validated_table_is_rebuilt(warehouse_copy, tmp_path, legacy_column):
    """Relations of earlier versions are dropped before dbt builds. A validated-calls table of an
    old layout (every staging column; then every column the fact and the quarantine read) is
    rebuilt in the new one, equal to a full refresh."""
    from orchestration.assets.dbt import drop_legacy_relations

    with duckdb.connect(str(warehouse_copy)) as conn:
        conn.execute("create view staging.stg_health__csa_indicators as select 1 as x")  # a legacy name
        conn.execute(f"alter table intermediate.int_calls_for_service__validated add column {legacy_column}")
    assert drop_legacy_relations(str(warehouse_copy)) == [
        "staging.stg_health__csa_indicators",
        "intermediate.int_calls_for_service__validated",
    ]
    assert drop_legacy_relations(str(warehouse_copy)) == []  # nothing left to drop
    dbt(warehouse_copy, tmp_path / "target", "build", "--select", *SELECT)
    with duckdb.connect(str(warehouse_copy), read_only=True) as conn:
        names = {t for (t,) in conn.execute("select table_name from information_schema.tables").fetchall()}
        columns = {
            c
            for (c,) in conn.execute(
                "select column_name from information_schema.columns "
                "where table_name = 'int_calls_for_service__validated'"
            ).fetchall()
        }
    assert "stg_health__csa_indicators" not in names
    assert legacy_column.split()[0] not in columns
    assert {"record_id", "quarantine_reason", "called_at_local", "neighborhood_resolved"} <= columns
    full = tmp_path / "full" / warehouse_copy.name
    full.parent.mkdir()
    shutil.copy(warehouse_copy, full)
    dbt(full, tmp_path / "target_full", "build", "--select", *SELECT, "--full-refresh")
    assert differences(warehouse_copy, full, "int_calls_for_service__validated") == 0


def test_the_scoped_unique_test_groups_every_id_when_every_day_is_in_scope(warehouse_copy, tmp_path):
    """`unique_among_rows` picks its form as it runs: the plain grouping when every row is in its
    scope (a full build), the probe of the scoped ids otherwise; both find the same duplicate."""
    name = "unique_fct_calls_for_service_call_id"
    target = tmp_path / "target"
    ledger = 'incremental_state."marts__fct_calls_for_service__days"'

    def run_test() -> tuple[str, int | None, str]:
        subprocess.run(
            [settings.dbt_executable(), "test", "--select", name, "--profiles-dir", ".", "--target-path", str(target)],
            cwd=settings.DBT_PROJECT_DIR,
            env={**os.environ, "WAREHOUSE_DB": str(warehouse_copy)},
            capture_output=True,
            check=False,
        )
        (result,) = json.loads((target / "run_results.json").read_text())["results"]
        (compiled,) = target.glob(f"compiled/**/{name}.sql")
        return result["status"], result["failures"], compiled.read_text()

    day, other_day = date(2024, 3, 12), date(2024, 2, 20)
    with duckdb.connect(str(warehouse_copy)) as conn:
        conn.execute(
            """insert into marts.fct_calls_for_service
               select * replace (cast(? as date) as partition_date) from marts.fct_calls_for_service
               where partition_date = ? limit 1""",
            [day, other_day],
        )
        conn.execute(f"insert into {ledger} select distinct partition_date, 'rebuilt' from marts.fct_calls_for_service")
    status, failures, sql = run_test()
    assert (status, failures) == ("fail", 1)
    assert "every row in scope" in sql and "values_to_check" not in sql
    with duckdb.connect(str(warehouse_copy)) as conn:
        conn.execute(f"delete from {ledger} where day <> ?", [day])  # a daily update's scope: the copy's day
    status, failures, sql = run_test()
    assert (status, failures) == ("fail", 1)
    assert "values_to_check" in sql
    with duckdb.connect(str(warehouse_copy)) as conn:
        conn.execute(f"update {ledger} set day = ?", [date(2024, 3, 13)])  # neither copy in scope
    assert run_test()[:2] == ("pass", 0)


def test_a_day_reloaded_after_the_validation_leaves_the_fact_and_fails_the_reconciliation(warehouse_copy, tmp_path):
    """The fact and the quarantine take a call's columns from staging and its decision from the
    validated table, matched on the row's identity (day, position, load). A day reloaded after
    the validated table was built and then rebuilt in the fact and quarantine alone (a run by
    hand selecting only them) has no decided row: its calls do not enter the fact undecided, and
    raw = fact + quarantine fails for that day. Building the validated table too restores it."""
    day, target = date(2024, 3, 5), tmp_path / "target"

    def counts() -> tuple[int, int, int]:
        with duckdb.connect(str(warehouse_copy), read_only=True) as conn:
            return tuple(
                conn.execute(f"select count(*) from {relation} where {column} = ?", [day]).fetchone()[0]
                for relation, column in (
                    ("raw.calls_for_service", "_partition_date"),
                    ("marts.fct_calls_for_service", "partition_date"),
                    ("quarantine.calls_for_service", "partition_date"),
                )
            )

    def reconciliation() -> tuple[str, int | None]:
        subprocess.run(
            [settings.dbt_executable(), "test", "--select", "fct_calls_for_service,test_name:reconciles_with_raw"]
            + ["--profiles-dir", ".", "--target-path", str(target)],
            cwd=settings.DBT_PROJECT_DIR,
            env={**os.environ, "WAREHOUSE_DB": str(warehouse_copy)},
            capture_output=True,
            check=False,
        )
        (result,) = json.loads((target / "run_results.json").read_text())["results"]
        return result["status"], result["failures"]

    raw_rows, fact_rows, quarantined = counts()
    assert raw_rows > 0 and raw_rows == fact_rows + quarantined
    assert reconciliation() == ("pass", 0)
    with duckdb.connect(str(warehouse_copy)) as conn:  # the same rows, loaded again
        conn.execute(
            "update raw.calls_for_service set _loaded_at = _loaded_at + interval 1 hour where _partition_date = ?",
            [day],
        )
    window = json.dumps({"partition_start": str(day)})
    dbt(warehouse_copy, target, "run", "-s", "fct_calls_for_service", "quarantine_calls_for_service", "--vars", window)
    assert counts() == (raw_rows, 0, 0)
    assert reconciliation() == ("fail", 1)  # that one day
    dbt(warehouse_copy, target, "run", "-s", *DAILY, "--vars", window)
    assert counts() == (raw_rows, fact_rows, quarantined)
    assert reconciliation() == ("pass", 0)


def naloxone_rebuilt(conn) -> dict[str, set[date]]:
    return {
        model: {
            d
            for (d,) in conn.execute(
                f"select day from incremental_state.\"{schema}__{table}__days\" where status = 'rebuilt'"
            ).fetchall()
        }
        for model, (schema, table) in NALOXONE.items()
    }


def test_naloxone_models_rebuild_the_changed_report_days_and_equal_a_full_build(warehouse_copy, tmp_path):
    """A report re-sent with a corrected response and a patient fewer, a report withdrawn, and
    the window's day: only those days are rebuilt, and the three tables equal a full rebuild."""
    target = tmp_path / "target"
    dbt(warehouse_copy, target, "run", "-s", *NALOXONE)  # nothing changed since the session's build
    with duckdb.connect(str(warehouse_copy)) as conn:
        assert naloxone_rebuilt(conn) == {model: set() for model in NALOXONE}
        days = [
            d
            for (d,) in conn.execute(
                "select distinct _partition_date from raw.naloxone_administrations order by 1"
            ).fetchall()
        ]
        reloaded, emptied, window_day = days[3], days[5], days[8]
        before = dict(
            conn.execute("select _partition_date, count(*) from raw.naloxone_administrations group by 1").fetchall()
        )
        assert before[reloaded] >= 2
        # the corrected report: one patient fewer, the first one's response now "Unchanged"
        conn.execute(
            """delete from raw.naloxone_administrations where _partition_date = $1 and _source_row = (
                   select max(_source_row) from raw.naloxone_administrations where _partition_date = $1)""",
            [reloaded],
        )
        conn.execute(
            """update raw.naloxone_administrations set "Medication Response - to Med (E18.7)" = 'Unchanged',
               _loaded_at = now() where _partition_date = ?""",
            [reloaded],
        )
        conn.execute("delete from raw.naloxone_administrations where _partition_date = ?", [emptied])
    window = json.dumps({"partition_start": window_day.isoformat(), "partition_end": window_day.isoformat()})
    dbt(warehouse_copy, target, "run", "-s", *NALOXONE, "--vars", window)
    with duckdb.connect(str(warehouse_copy), read_only=True) as conn:
        assert naloxone_rebuilt(conn) == {model: {reloaded, emptied, window_day} for model in NALOXONE}
        assert conn.execute(
            "select count(*) from restricted.int_naloxone_administrations__located where partition_date = ?",
            [reloaded],
        ).fetchone() == (before[reloaded] - 1,)
        assert conn.execute(
            "select count(*) from restricted.fct_naloxone_administrations where partition_date = ?", [emptied]
        ).fetchone() == (0,)
        assert conn.execute(
            """select count(*) from restricted.fct_naloxone_administrations
               where partition_date = ? and is_nonfatal_overdose""",
            [reloaded],
        ).fetchone() == (0,)  # no patient of the corrected report improved any more
    full = tmp_path / "full" / warehouse_copy.name
    full.parent.mkdir()
    shutil.copy(warehouse_copy, full)
    dbt(full, target, "run", "-s", *NALOXONE, "--full-refresh")
    assert {model: differences(warehouse_copy, full, model) for model in NALOXONE} == dict.fromkeys(NALOXONE, 0)
    # what the rows derive from changed (a response added to the accepted ones): every day
    responses = json.dumps({"medication_responses": ["Improved", "Unchanged", "Worse", "Not Recorded", "Other"]})
    dbt(warehouse_copy, target, "run", "-s", *NALOXONE, "--vars", responses)
    with duckdb.connect(str(warehouse_copy), read_only=True) as conn:
        now = {
            d for (d,) in conn.execute("select distinct _partition_date from raw.naloxone_administrations").fetchall()
        }
        # (the days rebuilt before stay in the ledger until Dagster clears them: the emptied one too)
        assert emptied not in now
        assert naloxone_rebuilt(conn) == {model: now | {emptied} for model in NALOXONE}


def test_a_changed_code_digest_rebuilds_every_day_of_the_model_and_what_reads_it(warehouse_copy, tmp_path):
    """The digest Dagster writes before a build (orchestration/assets/incremental_code.py) is part
    of the fingerprint: a fix to the staging SQL or its macros rebuilds the whole history."""
    located = "restricted__int_naloxone_administrations__located"
    with duckdb.connect(str(warehouse_copy)) as conn:
        digests = dict(conn.execute("select relation, digest from incremental_state.model_code").fetchall())
        assert len(digests) == 7 and located in digests  # written by the session's Dagster build
        conn.execute("update incremental_state.model_code set digest = 'staging fixed' where relation = ?", [located])
        days = {
            d for (d,) in conn.execute("select distinct _partition_date from raw.naloxone_administrations").fetchall()
        }
    dbt(warehouse_copy, tmp_path / "target", "run", "-s", *NALOXONE, *DAILY)
    with duckdb.connect(str(warehouse_copy), read_only=True) as conn:
        assert naloxone_rebuilt(conn) == {model: days for model in NALOXONE}
        assert rebuilt(conn, "int_calls_for_service__validated") == set()  # another model's digest: unchanged


def statements(target: Path, model: str) -> list[str]:
    """The SQL statements dbt ran against the model's table, as its debug log (in `target`) has
    them: how the rows got there. Read from the end of the log back to the model's last start."""
    schema, table = {**MODELS, **NALOXONE}[model]
    log = (target / "dbt.log").read_text()
    run = log[log.rindex(f"Began running node model.baltimore_warehouse.{model}") :]
    run = run[: run.index(f"Finished running node model.baltimore_warehouse.{model}")]
    return [line for line in run.splitlines() if f'"{schema}"."{table}' in line]


def replaced(target: Path, model: str) -> bool:
    """The model's rows were written into a new table that was renamed into place."""
    lines = statements(target, model)
    if any(line.lstrip().startswith("delete from") for line in lines):
        return False
    table = {**MODELS, **NALOXONE}[model][1]
    assert any(f"{table}__dbt_tmp" in line for line in lines), lines
    return True


def test_a_rebuild_of_every_day_replaces_each_table_once_and_equals_a_full_refresh(warehouse_copy, tmp_path):
    """When every day a table holds is rebuilt (macros/materializations/incremental.sql), the
    model's rows are written once into a new table, and the result is what a full refresh
    builds; a daily run keeps deleting and inserting its days in the same table."""
    with duckdb.connect(str(warehouse_copy)) as conn:
        # a neighborhood's name key now points elsewhere: the validated calls' fingerprint changes,
        # so every day of them is rebuilt, and with them every day of the fact and the quarantine
        conn.execute(
            """update intermediate.int_reference__neighborhood_names set neighborhood_normalized = 'UNKNOWN PLACE'
               where name_key = (select min(name_key) from intermediate.int_reference__neighborhood_names)"""
        )
        days = {d for (d,) in conn.execute("select distinct _partition_date from raw.calls_for_service").fetchall()}
    full = tmp_path / "full" / warehouse_copy.name
    full.parent.mkdir()
    shutil.copy(warehouse_copy, full)
    dbt(warehouse_copy, tmp_path / "target", "run", "-s", *DAILY)
    dbt(full, tmp_path / "target_full", "run", "-s", *DAILY, "--full-refresh")
    for model in DAILY:
        assert differences(warehouse_copy, full, model) == 0, model
    assert all(replaced(tmp_path / "target", model) for model in DAILY)
    with duckdb.connect(str(warehouse_copy), read_only=True) as conn:
        assert rebuilt(conn, "int_calls_for_service__validated") == days
        assert rebuilt(conn, "fct_calls_for_service") == days
        assert (
            conn.execute(
                "select count(*) from intermediate.int_calls_for_service__validated "
                "where neighborhood_resolved = 'UNKNOWN PLACE'"
            ).fetchone()[0]
            > 0
        )
    _day_scoped_tests_passed(warehouse_copy)
    day = max(days)
    window = json.dumps({"partition_start": day.isoformat(), "partition_end": day.isoformat()})
    dbt(warehouse_copy, tmp_path / "target", "run", "-s", *DAILY, "--vars", window)
    assert not any(replaced(tmp_path / "target", model) for model in DAILY)
    with duckdb.connect(str(warehouse_copy), read_only=True) as conn:
        assert rebuilt(conn, "fct_calls_for_service") == {day}


def test_a_row_outside_the_rebuilt_days_keeps_the_table_and_the_row(warehouse_copy, tmp_path):
    """A row that no pending day covers (here one with no day at all) would be lost by writing the
    select alone: the model then deletes and inserts the pending days in its table."""
    with duckdb.connect(str(warehouse_copy)) as conn:
        conn.execute(
            """insert into marts.fct_calls_for_service
               select * replace (cast(null as date) as partition_date) from marts.fct_calls_for_service limit 1"""
        )
        conn.execute("update incremental_state.\"marts__fct_calls_for_service__state\" set fingerprint = 'reset'")
        days = {
            d for (d,) in conn.execute("select distinct partition_date from marts.fct_calls_for_service").fetchall()
        }
    dbt(warehouse_copy, tmp_path / "target", "run", "-s", "fct_calls_for_service")
    assert not replaced(tmp_path / "target", "fct_calls_for_service")
    with duckdb.connect(str(warehouse_copy), read_only=True) as conn:
        assert rebuilt(conn, "fct_calls_for_service") == days - {None}
        assert conn.execute(
            "select count(*) from marts.fct_calls_for_service where partition_date is null"
        ).fetchone() == (1,)


def test_an_empty_table_takes_the_days_it_rebuilds_in_one_write(warehouse_copy, tmp_path):
    """An empty table has no row outside any day: a one-day run writes that day's rows into a new
    table, the same rows the day had before the table was emptied."""
    with duckdb.connect(str(warehouse_copy)) as conn:
        day, before = conn.execute(
            "select partition_date, count(*) from marts.fct_calls_for_service group by all order by 1 desc limit 1"
        ).fetchone()
        conn.execute("delete from marts.fct_calls_for_service")
    _day_scoped_tests_passed(warehouse_copy)
    window = json.dumps({"partition_start": day.isoformat(), "partition_end": day.isoformat()})
    dbt(warehouse_copy, tmp_path / "target", "run", "-s", "fct_calls_for_service", "--vars", window)
    assert replaced(tmp_path / "target", "fct_calls_for_service")
    with duckdb.connect(str(warehouse_copy), read_only=True) as conn:
        assert conn.execute(
            "select partition_date, count(*) from marts.fct_calls_for_service group by all"
        ).fetchall() == [(day, before)]


def test_a_column_added_to_a_fact_rebuilds_every_day_into_the_new_layout(warehouse_copy, tmp_path):
    """A change to a model's SQL rebuilds every day (its fingerprint names its SQL), so a column
    it adds reaches every row; written through the temporary table, `on_schema_change='fail'`
    stopped such a change until someone ran a full refresh."""
    project = tmp_path / "project"
    shutil.copytree(settings.DBT_PROJECT_DIR, project, ignore=shutil.ignore_patterns("target", "logs", "dbt_packages"))
    model = project / "models" / "marts" / "core" / "fct_calls_for_service.sql"
    sql = model.read_text()
    assert sql.count("\nselect\n") == 1, "the fact's final select moved: adjust the test"
    model.write_text(sql.replace("\nselect\n", "\nselect\n    1 as added_in_a_fix,\n"))
    done = subprocess.run(
        [settings.dbt_executable(), "run", "-s", "fct_calls_for_service", "--profiles-dir", ".", "--log-path", "logs"],
        cwd=project,
        env={**os.environ, "WAREHOUSE_DB": str(warehouse_copy)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:]
    assert replaced(project / "logs", "fct_calls_for_service")
    with duckdb.connect(str(warehouse_copy), read_only=True) as conn:
        rows, filled = conn.execute(
            "select count(*), count(added_in_a_fix) from marts.fct_calls_for_service"
        ).fetchone()
        passed = conn.execute(
            "select count(*) from intermediate.int_calls_for_service__validated where quarantine_reason is null"
        ).fetchone()[0]
    assert rows == filled == passed > 0


def test_the_incremental_materialization_is_the_adapters_but_for_the_marked_branch():
    """The project's incremental materialization is dbt-duckdb's with one branch added: after an
    upgrade of dbt-duckdb this fails until the copy is taken from the new version again."""
    import dbt.include.duckdb

    installed = (Path(dbt.include.duckdb.PACKAGE_PATH) / "macros" / "materializations" / "incremental.sql").read_text()
    ours = (settings.DBT_PROJECT_DIR / "macros" / "materializations" / "incremental.sql").read_text()
    header_end = ours.index("-#}\n") + len("-#}\n")
    begin, end = ours.index("  {#-- baltimore_warehouse: begin"), ours.index("  {#-- baltimore_warehouse: end --#}\n")
    added = ours[begin : end + len("  {#-- baltimore_warehouse: end --#}\n")]
    assert "replaces_every_day" in added
    assert ours[header_end:begin] + ours[begin + len(added) :] == installed
