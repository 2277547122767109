"""EMS daily reports: reading csv/xlsx, header validation, re-delivery, archive, sensor, quarantine."""

import json
import os
from datetime import date, datetime
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
import pytest
from openpyxl import Workbook

from orchestration.assets.raw import raw_naloxone_administrations
from orchestration.demo.naloxone import generate_naloxone
from orchestration.raw_tables import NALOXONE_COLUMNS
from orchestration.resources import EmsInbox, WarehouseDuckDB
from orchestration.sources.ems_inbox import EmsFileError, date_from_name, read_report, report_day

DAY = date(2024, 3, 12)
REAL = {"ops": {"raw__naloxone_administrations": {"config": {"source": "real"}}}}


SENSOR_RESOURCES = {"ems_inbox": EmsInbox()}  # its path: EMS_INBOX_DIR, set by the inbox fixture


def _report(day: date = DAY, seed: int = 1) -> pd.DataFrame:
    return generate_naloxone(day, day, seed=seed)


def write_csv(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_csv(path, index=False)
    return path


def write_xlsx(frame: pd.DataFrame, path: Path, bare_times: bool = True) -> Path:
    """An .xlsx as an EMS export writes it: real date cells, and times as time-of-day cells."""
    book = Workbook()
    sheet = book.active
    sheet.append(list(frame.columns))
    for row in frame.to_dict("records"):
        values = []
        for column in frame.columns:
            value = row[column]
            if column == "Incident Date":
                value = datetime.strptime(value, "%m/%d/%Y")
            elif column == "Times : Arrived on Scene Time" and bare_times:
                value = datetime.strptime(value, "%m/%d/%Y %H:%M:%S").time()
            values.append(value)
        sheet.append(values)
    book.save(path)
    return path


@pytest.fixture
def inbox(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "inbox"
    folder.mkdir()
    monkeypatch.setenv("EMS_INBOX_DIR", str(folder))
    return folder


@pytest.fixture
def db(tmp_path) -> Path:
    return tmp_path / "ems.duckdb"


def _materialize(db: Path, day: date = DAY) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [raw_naloxone_administrations],
        partition_key=day.isoformat(),
        resources={"duckdb": WarehouseDuckDB(database=str(db)), "ems_inbox": EmsInbox()},
        run_config=REAL,
        raise_on_error=False,
        instance=dg.DagsterInstance.ephemeral(),
    )


def _raw_count(db: Path, day: date = DAY) -> int:
    with duckdb.connect(str(db), read_only=True) as conn:
        return conn.execute(
            "select count(*) from raw.naloxone_administrations where _partition_date = ?", [day]
        ).fetchone()[0]


def test_csv_and_xlsx_reports_read_to_the_same_text(tmp_path):
    frame = _report()
    from_csv = read_report(write_csv(frame, tmp_path / "naloxone_2024-03-12.csv"))
    from_xlsx = read_report(write_xlsx(frame, tmp_path / "naloxone_2024-03-12.xlsx", bare_times=False))
    assert len(from_csv) == len(from_xlsx) == len(frame)
    pd.testing.assert_frame_equal(from_csv[list(NALOXONE_COLUMNS)], frame.reset_index(drop=True))
    pd.testing.assert_frame_equal(from_xlsx[list(NALOXONE_COLUMNS)], frame.reset_index(drop=True))
    assert from_csv["_source_row"].tolist() == list(range(1, len(frame) + 1))


def test_headers_match_regardless_of_case_and_spacing(tmp_path):
    frame = _report().rename(columns={"Patient Age": "patient  AGE ", "Incident Number": "INCIDENT NUMBER"})
    assert len(read_report(write_csv(frame, tmp_path / "r.csv"))) == len(frame)


def test_a_renamed_column_is_named_in_the_error(tmp_path):
    frame = _report().rename(columns={"Medication Response - to Med (E18.7)": "Medication Response (E18.7)"})
    frame = frame.drop(columns=["Patient Gender"])
    with pytest.raises(EmsFileError) as error:
        read_report(write_csv(frame, tmp_path / "r.csv"))
    message = str(error.value)
    assert "'Patient Gender'" in message
    assert "renamed to 'Medication Response (E18.7)'" in message
    assert "nothing was loaded" in message


def test_a_damaged_workbook_is_a_clear_error(tmp_path):
    path = tmp_path / "naloxone_2024-03-12.xlsx"
    path.write_bytes(b"PK\x03\x04 this is not really a workbook")
    with pytest.raises(EmsFileError, match="not a readable .xlsx"):
        read_report(path)


@pytest.mark.parametrize(
    ("name", "day"),
    [
        ("naloxone_2024-03-12.csv", DAY),
        ("Daily Naloxone Report 20240312.xlsx", DAY),
        ("report 03-12-2024.csv", DAY),
        ("report.csv", None),
    ],
)
def test_report_day_from_file_name(name, day):
    assert date_from_name(name) == day


def test_report_day_falls_back_to_the_incident_dates(tmp_path):
    assert report_day(write_csv(_report(), tmp_path / "report.csv")) == DAY


def test_a_report_loads_its_day_and_is_archived(inbox, db):
    frame = _report()
    write_xlsx(frame, inbox / "naloxone_2024-03-12.xlsx")
    result = _materialize(db)
    assert result.success
    assert _raw_count(db) == len(frame)
    assert not list(inbox.glob("*.xlsx"))
    assert (inbox / "archive" / "2024-03-12" / "naloxone_2024-03-12.xlsx").exists()


def test_a_redelivered_report_replaces_the_day(inbox, db):
    write_csv(_report(seed=1), inbox / "naloxone_2024-03-12.csv")
    assert _materialize(db).success
    first = _raw_count(db)
    corrected = _report(seed=2).head(5)
    path = write_csv(corrected, inbox / "naloxone_2024-03-12_corrected.csv")
    later = path.stat().st_mtime + 60
    os.utime(path, (later, later))
    assert _materialize(db).success
    assert first != 5 and _raw_count(db) == 5
    with duckdb.connect(str(db), read_only=True) as conn:
        sources = conn.execute("select distinct _source from raw.naloxone_administrations").fetchall()
    assert sources == [("naloxone_2024-03-12_corrected.csv",)]


def test_a_malformed_report_fails_the_run_and_loads_nothing(inbox, db):
    write_csv(_report(), inbox / "naloxone_2024-03-12.csv")
    assert _materialize(db).success
    before = _raw_count(db)
    bad = _report(seed=3).drop(columns=["Incident Location Latitude"])
    path = write_csv(bad, inbox / "naloxone_2024-03-12_v2.csv")
    later = path.stat().st_mtime + 60
    os.utime(path, (later, later))
    result = _materialize(db)
    assert not result.success
    error = result.get_step_failure_events()[0].event_specific_data.error
    failure = error.message + (error.cause.message if error.cause else "")
    assert "Incident Location Latitude" in failure
    assert _raw_count(db) == before  # the previous report's rows are intact
    assert path.exists()  # a rejected file stays in the inbox for a person to fix


def test_a_report_failing_a_blocking_check_loads_nothing_and_stays_in_the_inbox(inbox, db):
    """A readable report whose points all lie in Annapolis: the gate refuses it before it replaces
    anything; the failure names the check and the rows by file and row number, never a patient value."""
    write_csv(_report(), inbox / "naloxone_2024-03-12.csv")
    assert _materialize(db).success
    before = _raw_count(db)
    wrong = _report(seed=5)
    wrong["Incident Location Latitude"] = "38.978400"
    wrong["Incident Location Longitude"] = "-76.492200"
    path = write_csv(wrong, inbox / "naloxone_2024-03-12_v2.csv")
    later = path.stat().st_mtime + 60
    os.utime(path, (later, later))
    result = _materialize(db)
    assert not result.success
    error = result.get_step_failure_events()[0].event_specific_data.error
    failure = error.message + (error.cause.message if error.cause else "")
    assert "coordinates_inside_baltimore" in failure and "nothing was loaded" in failure
    assert _raw_count(db) == before and path.exists()
    [city] = [e for e in result.get_asset_check_evaluations() if e.check_name == "coordinates_inside_baltimore"]
    assert city.metadata["failing_count"].value == len(wrong)
    assert city.metadata["examples"].value[0] == "naloxone_2024-03-12_v2.csv, 1"
    for number in wrong["Incident Number"]:
        assert number not in failure and number not in str(city.metadata)


def test_the_sensor_requests_each_new_file_version_once(inbox, tmp_path):
    from orchestration.sensors import ems_inbox_sensor

    first = write_csv(_report(), inbox / "naloxone_2024-03-12.csv")
    write_csv(_report(date(2024, 3, 13)), inbox / "naloxone_2024-03-13.csv")
    (inbox / "notes.txt").write_text("not a report")
    instance = dg.DagsterInstance.ephemeral()
    with dg.build_sensor_context(instance=instance, resources=SENSOR_RESOURCES) as context:
        requests = ems_inbox_sensor(context)
        cursor = context.cursor
    assert sorted(r.partition_key for r in requests) == ["2024-03-12", "2024-03-13"]
    assert all(r.run_config == REAL for r in requests)
    with dg.build_sensor_context(instance=instance, cursor=cursor, resources=SENSOR_RESOURCES) as context:
        assert isinstance(ems_inbox_sensor(context), dg.SkipReason)
    later = first.stat().st_mtime + 60
    os.utime(first, (later, later))  # the same file delivered again
    with dg.build_sensor_context(instance=instance, cursor=cursor, resources=SENSOR_RESOURCES) as context:
        again = ems_inbox_sensor(context)
    assert [r.partition_key for r in again] == ["2024-03-12"]
    assert json.loads(context.cursor)["naloxone_2024-03-12.csv"].startswith("naloxone_2024-03-12.csv:")


@pytest.mark.slow
def test_a_real_report_flows_to_the_fact_and_quarantine(warehouse_copy, inbox):
    """An xlsx with bare arrival times and a row without coordinates, through the whole graph."""
    from orchestration.assets.dbt import warehouse_dbt_models
    from orchestration.assets.reference import point_assignments
    from orchestration.definitions import defs

    frame = _report(seed=9)
    frame.loc[0, ["Incident Location Latitude", "Incident Location Longitude"]] = ""
    frame.loc[1, "Incident Address"] = "1200 north caroline street."
    write_xlsx(frame, inbox / "naloxone_2024-03-12.xlsx")
    resources = defs.resources
    result = dg.materialize(
        [raw_naloxone_administrations],
        partition_key=DAY.isoformat(),
        resources=resources,
        run_config=REAL,
        instance=dg.DagsterInstance.ephemeral(),
    )
    assert result.success
    result = dg.materialize(
        [point_assignments, warehouse_dbt_models],
        resources=resources,
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    assert result.success
    with duckdb.connect(str(warehouse_copy), read_only=True) as conn:
        facts = conn.execute(
            """select count(*), count(arrived_on_scene_at_local),
            count(*) filter (where cast(arrived_on_scene_at_local as date) = incident_date)
            from restricted.fct_naloxone_administrations where partition_date = ?""",
            [DAY],
        ).fetchone()
        quarantined = conn.execute(
            """select quarantine_reason, count(*) from restricted.quarantine_naloxone_administrations
            where partition_date = ? group by 1""",
            [DAY],
        ).fetchall()
        address = conn.execute(
            """select incident_address from staging.stg_bchd_ems__naloxone_administrations
            where partition_date = ? and source_row = 2""",
            [DAY],
        ).fetchone()[0]
    assert quarantined == [("missing_coordinates", 1)]
    assert facts == (len(frame) - 1, len(frame) - 1, len(frame) - 1)
    assert address == "1200 N CAROLINE ST"
