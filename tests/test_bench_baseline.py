"""The benchmark's baseline (bench/baseline.sql) computes what the pipeline computes.

bench/bench_pipeline.py reports the full build's time as a ratio to that plain DuckDB script, so
the script must do the same work: a baseline that skipped a rule or a column would be cheaper
than the pipeline for the wrong reason. Here both run over the same raw rows, with messy rows
added that each rule exists for, and the script's fact, quarantine decisions and monthly mart
must equal the pipeline's row for row. The two are written independently (dbt models and macros
against one SQL script), so each checks the other.
"""

import importlib.util
import json
import subprocess
import sys
from datetime import date
from pathlib import Path

import duckdb

from orchestration import settings
from tests.test_incremental import dbt, insert_raw_copy, multiset_differences

BASELINE = settings.PROJECT_ROOT / "bench" / "baseline.sql"
DAY = date(2024, 3, 5)
EARLIER_DAY = date(2024, 2, 20)

# (source row, the raw columns replaced in a copy of one of DAY's calls, the decision expected:
# quarantine reason, or the neighborhood the call is placed in and how)
MESSY_ROWS = [
    (910001, "null as recordId", ("missing_record_id", None)),
    (910002, "910000002 as recordId, null as callDateTime", ("unparseable_timestamp", None)),
    (910003, "910000003 as recordId, 0.0 as latitude, 0.0 as longitude", ("impossible_coordinates", None)),
    (910004, "910000004 as recordId, ' Urgent?' as priority", ("unknown_priority_code", None)),
    # the feed's name matched on the neighborhood's alternate name, or with an abbreviation
    (
        910005,
        "910000005 as recordId, '  fairmont ' as Neighborhood, ' P240910005 ' as callNumber, ' K-910005' as callKey, "
        "' 1500 N  CHARLES ST ' as incidentLocation, ' ne ' as district, ' 312 ' as PolicePost, "
        "'' as CouncilDistrict, ' 1201.00 ' as Census_Tracts",
        (None, ("FAIRMOUNT", "feed")),
    ),
    (910006, "910000006 as recordId, 'MT. VERNON' as Neighborhood", (None, ("MOUNT VERNON", "feed"))),
    (910007, "910000007 as recordId, 'Perkins Homes' as Neighborhood", (None, ("PERKINS", "feed"))),
    # a name that matches nothing: the neighborhood its point falls in
    (910008, "910000008 as recordId, 'Nowhere Village' as Neighborhood", (None, "point")),
    # descriptions run together, padded, abbreviated
    (910009, "910000009 as recordId, 'NARCOTICSOutside' as description", (None, None)),
    (910010, "910000010 as recordId, '  *LARCENCY  F/ AUTO** ' as description", (None, None)),
]


def _add_messy_rows(conn) -> int:
    """MESSY_ROWS into raw, each a copy of a call of DAY whose point has a neighborhood by
    point-in-polygon (only points that needed one are assigned), and a later copy of a record id
    of EARLIER_DAY (its older copy becomes the duplicate); the record id copied."""
    pointed = (
        "(latitude, longitude) in "
        "(select (latitude, longitude) from geography.point_assignments where method = 'within')"
    )
    for source_row, replace, _ in MESSY_ROWS:
        insert_raw_copy(conn, DAY, source_row, replace, where=pointed)
    record_id = conn.execute(
        "select recordId from raw.calls_for_service where _partition_date = ? order by _source_row limit 1",
        [EARLIER_DAY],
    ).fetchone()[0]
    insert_raw_copy(conn, DAY, 910011, f"{record_id} as recordId")
    return record_id


def bench_pipeline():
    """bench/bench_pipeline.py as a module (bench/ is scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(
        "bench_pipeline", settings.PROJECT_ROOT / "bench" / "bench_pipeline.py"
    )
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


def test_the_baseline_script_computes_the_pipelines_fact_quarantine_and_monthly_mart(warehouse_copy, tmp_path):
    with duckdb.connect(str(warehouse_copy)) as conn:
        duplicated_id = _add_messy_rows(conn)
    window = json.dumps({"partition_start": DAY.isoformat(), "partition_end": DAY.isoformat()})
    dbt(
        warehouse_copy,
        tmp_path / "target",
        "run",
        "-s",
        "+mart_call_volume_monthly",
        "quarantine_calls_for_service",
        "--vars",
        window,
    )

    conn = duckdb.connect()
    conn.execute(f"attach '{warehouse_copy}' as w (read_only)")
    conn.execute(Path(BASELINE).read_text())

    # the messy rows: the decisions written out above, in both implementations
    decided = conn.execute(
        """select source_row, quarantine_reason, neighborhood_resolved, geography_method
           from validated where partition_date = ? and source_row > 910000 order by source_row""",
        [DAY],
    ).fetchall()
    assert len(decided) == len(MESSY_ROWS) + 1  # and the reloaded id's new copy, kept
    for (source_row, _, (reason, placed)), (row, got_reason, neighborhood, method) in zip(
        MESSY_ROWS, decided[: len(MESSY_ROWS)], strict=True
    ):
        assert (row, got_reason) == (source_row, reason)
        if placed == "point":
            assert method.startswith("point_") and neighborhood is not None
        elif placed is not None:
            assert (neighborhood, method) == placed
    assert conn.execute(
        "select quarantine_reason from validated where record_id = ? order by loaded_at", [duplicated_id]
    ).fetchall() == [("duplicate_record_id",), (None,)]
    assert (
        conn.execute(
            "select count(*) from w.quarantine.calls_for_service where source_row > 910000 or record_id = ?",
            [duplicated_id],
        ).fetchone()[0]
        == 5
    )  # four held-back new rows and the older copy of the reloaded id
    # run-together, padded and misspelled descriptions take their rule's category (the seed's)
    assert conn.execute(
        """select call_id, t.call_category
           from fct join (select distinct call_type_key, call_category from call_types) t using (call_type_key)
           where call_id in (910000009, 910000010) order by call_id"""
    ).fetchall() == [(910000009, "drugs"), (910000010, "property")]

    # padded text is trimmed, empty text is NULL, the district upper case
    assert conn.execute(
        """select call_number, call_key, incident_location, district_code, police_post, council_district, census_tract
           from fct where call_id = 910000005"""
    ).fetchall() == [("P240910005", "K-910005", "1500 N  CHARLES ST", "NE", "312", None, "1201.00")]

    # every row of both: the fact (all its columns), the decisions, the monthly mart
    assert conn.execute("select count(*) from fct").fetchone()[0] > 90_000
    assert multiset_differences(conn, "select * from fct", "select * from w.marts.fct_calls_for_service") == 0
    assert (
        multiset_differences(
            conn,
            """select partition_date, source_row, loaded_at, quarantine_reason
               from validated where quarantine_reason is not null""",
            "select partition_date, source_row, loaded_at, quarantine_reason from w.quarantine.calls_for_service",
        )
        == 0
    )
    mart_columns = "month_start, call_category, csa, cast(call_count as bigint), cast(overdose_call_count as bigint)"
    assert (
        multiset_differences(
            conn,
            f"select {mart_columns} from mart_monthly",
            f"select {mart_columns} from w.marts.mart_call_volume_monthly",
        )
        == 0
    )
    # raw = fact + quarantine, in the baseline too
    assert (
        conn.execute("select count(*) from validated").fetchone()[0]
        == conn.execute("select count(*) from w.raw.calls_for_service").fetchone()[0]
    )


def test_the_full_build_as_the_issue_lists_it_leaves_out_generation_and_surveillance():
    """bench_pipeline.issue_scope_seconds: the full build without the landing step's generation
    (measured apart) and surveillance, summed over the build's runs."""
    bench = bench_pipeline()
    run = {
        "full_build": {
            "seconds": 100.0,
            "breakdown": {
                "outside_runs_seconds": 5.0,
                "runs": [
                    {"seconds": 70.0, "steps": {"landing__calls_for_service": 10.5, "warehouse_dbt_models": 50.0}},
                    {"seconds": 25.0, "steps": {"overdose_surveillance": 2.25, "serving__publication": 20.0}},
                ],
            },
        }
    }
    assert bench.issue_scope_seconds(run) == 87.25


def test_the_baseline_script_spells_the_dbt_projects_vars():
    """The plain script writes the dbt vars its rules use as literals; they must be the project's
    current values (settings.dbt_vars), so a changed var cannot leave the baseline on old rules."""
    script = BASELINE.read_text()
    dbt_vars = settings.dbt_vars()
    min_lon, min_lat, max_lon, max_lat = dbt_vars["city_extent"]
    margin = dbt_vars["city_box_margin_deg"]
    spelled = [
        f"timezone('{dbt_vars['local_timezone']}',",
        "not in (" + ", ".join(f"'{code}'" for code in dbt_vars["priority_codes"]) + ")",
        f"latitude between {round(min_lat - margin, 6)} and {round(max_lat + margin, 6)}",
        f"longitude between {round(min_lon - margin, 6)} and {round(max_lon + margin, 6)}",
        f"length(k.description_key) >= {dbt_vars['call_description_truncation_min_chars']}",
    ]
    assert [text for text in spelled if text not in script] == []


def test_the_persisted_baseline_writes_its_tables_as_the_pipeline_writes(warehouse_copy, tmp_path):
    """The bench's persisted baseline runs the script as the bench does (its BASELINE program, in a
    process of its own) into a database file, with the compression methods the pipeline's
    connections leave out (settings.DUCKDB_DISABLED_COMPRESSION): DuckDB's default would pack
    the text columns with FSST, which the pipeline does not pay for."""
    out = tmp_path / "baseline.duckdb"
    done = subprocess.run(
        [sys.executable, "-c", bench_pipeline().BASELINE, str(warehouse_copy), str(BASELINE), str(out)],
        cwd=settings.PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    fact_rows = int(done.stdout.split()[-1])
    disabled = {method.strip().lower() for method in settings.DUCKDB_DISABLED_COMPRESSION.split(",")}
    with duckdb.connect(str(out), read_only=True) as conn:
        conn.execute(f"attach '{warehouse_copy}' as w (read_only)")
        # the tables are in the file (not temporary), and the fact is the pipeline's
        assert fact_rows == conn.execute("select count(*) from fct").fetchone()[0]
        assert fact_rows == conn.execute("select count(*) from w.marts.fct_calls_for_service").fetchone()[0]
        used = {
            row[0].lower()
            for table in ("fct", "validated")
            for row in conn.execute(f"select distinct compression from pragma_storage_info('{table}')").fetchall()
        }
    assert used and not used & disabled, used
