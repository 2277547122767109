"""EMS daily reports: reading csv/xlsx, header validation, re-delivery, archive, sensor, quarantine."""

import json
import os
from datetime import date, datetime, timedelta
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


def _materialize(db: Path, day: date = DAY, last: date | None = None, run_config=None) -> dg.ExecuteInProcessResult:
    """The EMS asset for `day` (or the range day..last), real source."""
    from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

    ranged = last is not None and last != day
    return dg.materialize(
        [raw_naloxone_administrations],
        partition_key=None if ranged else day.isoformat(),
        tags={ASSET_PARTITION_RANGE_START_TAG: day.isoformat(), ASSET_PARTITION_RANGE_END_TAG: last.isoformat()}
        if ranged
        else None,
        resources={"duckdb": WarehouseDuckDB(database=str(db)), "ems_inbox": EmsInbox()},
        run_config=run_config or REAL,
        raise_on_error=False,
        instance=dg.DagsterInstance.ephemeral(),
    )


def _failure_text(result: dg.ExecuteInProcessResult) -> str:
    error = result.get_step_failure_events()[0].event_specific_data.error
    return error.message + (error.cause.message if error.cause else "")


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
    # archived under the report's day with its arrival number, which later rebuilds keep
    assert (inbox / "archive" / "2024-03-12" / "000001__naloxone_2024-03-12.xlsx").exists()


def _by_incident(db, day: date = DAY) -> dict[str, list[str]]:
    with duckdb.connect(str(db), read_only=True) as conn:
        rows = conn.execute(
            'select "Incident Number", _source from raw.naloxone_administrations where _partition_date = ? '
            "order by _source_row",
            [day],
        ).fetchall()
    out: dict[str, list[str]] = {}
    for number, source in rows:
        out.setdefault(number, []).append(source)
    return out


def test_a_corrected_delivery_wins_per_incident_and_never_double_counts(inbox, db):
    """The corrected file re-delivers 5 patients' rows: those incidents come from it (all their
    patients), the others stay from the first file; nobody is counted twice."""
    first = _report(seed=1)
    write_csv(first, inbox / "naloxone_2024-03-12.csv")
    assert _materialize(db).success
    corrected = _report(seed=2).head(5)
    corrected["Patient Age"] = "99"
    write_csv(corrected, inbox / "naloxone_2024-03-12_corrected.csv")
    assert _materialize(db).success
    redelivered = set(corrected["Incident Number"])
    expected = len(first[~first["Incident Number"].isin(redelivered)]) + len(corrected)
    assert _raw_count(db) == expected
    incidents = _by_incident(db)
    assert set(incidents) == set(first["Incident Number"]) | redelivered
    for number, sources in incidents.items():
        want = "naloxone_2024-03-12_corrected.csv" if number in redelivered else "naloxone_2024-03-12.csv"
        assert set(sources) == {want}, number
    # the same file delivered a third time, under another name: nothing changes in the counts
    write_csv(corrected, inbox / "naloxone_2024-03-12_corrected_again.csv")
    assert _materialize(db).success
    assert _raw_count(db) == expected


def test_reports_archived_before_arrivals_were_recorded_still_load(inbox, db):
    """An archive from the newest-file-per-day era (`archive/<day>/<name>`, no arrival number): its
    rows load, the newer of two copies wins, and a new delivery beats both."""
    folder = inbox / "archive" / "2024-03-12"
    folder.mkdir(parents=True)
    old = _report(seed=1)
    newer = old.copy()
    newer["Patient Age"] = "50"
    write_csv(old, folder / "naloxone_2024-03-12.csv")
    write_csv(newer, folder / "naloxone_2024-03-12_v2.csv")
    stamp = (folder / "naloxone_2024-03-12.csv").stat().st_mtime
    os.utime(folder / "naloxone_2024-03-12_v2.csv", (stamp + 60, stamp + 60))
    assert _materialize(db).success
    assert _raw_count(db) == len(old)
    assert set(sum(_by_incident(db).values(), [])) == {"naloxone_2024-03-12_v2.csv"}
    write_csv(old.head(3), inbox / "naloxone_2024-03-12_v3.csv")
    assert _materialize(db).success
    assert _raw_count(db) == len(old)  # re-delivered incidents replace, none doubles
    assert "naloxone_2024-03-12_v3.csv" in set(sum(_by_incident(db).values(), []))


def test_an_empty_report_changes_nothing_and_is_archived(inbox, db):
    write_csv(_report(), inbox / "naloxone_2024-03-12.csv")
    assert _materialize(db).success
    before = _raw_count(db)
    write_csv(_report().head(0), inbox / "naloxone_2024-03-12_empty.csv")  # headers only
    assert _materialize(db).success
    assert _raw_count(db) == before
    assert not list(inbox.glob("*.csv")) and list((inbox / "archive").rglob("*_empty.csv"))


def test_two_files_for_one_day_are_both_read(inbox, db):
    frame = _report(seed=1)
    numbers = frame["Incident Number"]
    half = next(i for i in range(len(frame) // 2, len(frame)) if numbers.iloc[i] != numbers.iloc[i - 1])
    morning, evening = frame.iloc[:half], frame.iloc[half:]  # split between incidents
    write_csv(morning, inbox / "naloxone_2024-03-12_am.csv")
    write_csv(evening, inbox / "naloxone_2024-03-12_pm.csv")
    assert _materialize(db).success
    assert _raw_count(db) == len(frame)
    assert set(sum(_by_incident(db).values(), [])) == {"naloxone_2024-03-12_am.csv", "naloxone_2024-03-12_pm.csv"}


def test_arrival_order_not_modification_time_decides(inbox, db):
    """The sensor saw B after A, but B was copied with an older timestamp: B still wins."""
    a = _report(seed=1).head(4)
    b = a.copy()
    b["Medication Response - to Med (E18.7)"] = "Unchanged"
    write_csv(a, inbox / "a.csv")
    write_csv(b, inbox / "b.csv")
    old = (inbox / "a.csv").stat().st_mtime - 3600
    os.utime(inbox / "b.csv", (old, old))  # by modification time B would be first
    arrivals = {"a.csv": 1, "b.csv": 2}
    run_config = {"ops": {"raw__naloxone_administrations": {"config": {"source": "real", "arrivals": arrivals}}}}
    assert _materialize(db, run_config=run_config).success
    with duckdb.connect(str(db), read_only=True) as conn:
        responses = conn.execute(
            'select distinct "Medication Response - to Med (E18.7)", _source from raw.naloxone_administrations'
        ).fetchall()
    assert responses == [("Unchanged", "b.csv")]


def test_bchds_sample_shape_loads_on_its_incident_dates(inbox, db):
    """Like BCHD's public sample: named for 2019-02-14, 119 patients in 90 incidents of 2018-01-01..07
    (31, 5, 33, 16, 8, 19, 7 a day), M/F and B/W codes, bare times, per-file incident numbers."""
    per_day = [31, 5, 33, 16, 8, 19, 7]
    rows, number = [], 0
    rng = __import__("numpy").random.default_rng(5)
    for offset, n in enumerate(per_day):
        day = date(2018, 1, 1) + timedelta(days=offset)
        patients = 0
        while patients < n:
            number += 1
            size = min(n - patients, 1 + int(rng.random() < 0.3) + int(rng.random() < 0.1))
            for _ in range(size):
                rows.append(
                    {
                        "Incident Date": day.strftime("%m/%d/%Y"),
                        "Incident Number": str(number),
                        "Patient Age": str(int(rng.integers(18, 70))),
                        "Patient Gender": "M" if rng.random() < 0.7 else "F",
                        "Patient Race (E6.12)": "B" if rng.random() < 0.6 else "W",
                        "Incident Address": "2334 DRUID PARK DR",
                        "Primary Impression": "Naloxone Reversal",
                        "Incident Location Latitude": f"{39.29 + rng.random() * 0.05:.6f}",
                        "Incident Location Longitude": f"{-76.65 + rng.random() * 0.05:.10f}",
                        "Times : Arrived on Scene Time": f"{int(rng.integers(0, 24)):02d}:00:00",
                        "Destination Code (E20.2)": "Hopkins",
                        "Medication Administered (E18.3)": "Naloxone",
                        "Medication Response - to Med (E18.7)": "Improved",
                        "Medication Dosage (E18.5)": "0.5",
                        "Destination Patient Disposition (E20.10)": "Transported",
                    }
                )
            patients += size
    sample = pd.DataFrame(rows)
    write_csv(sample, inbox / "Daily-Naloxone-Data-2019-02-14.csv")
    result = _materialize(db, day=date(2018, 1, 1), last=date(2018, 1, 7))
    assert result.success
    with duckdb.connect(str(db), read_only=True) as conn:
        counts = conn.execute(
            'select _partition_date, count(*), count(distinct "Incident Number"), min(_report_date) '
            "from raw.naloxone_administrations group by 1 order by 1"
        ).fetchall()
    assert [c[1] for c in counts] == per_day and sum(c[2] for c in counts) == number
    assert {c[3] for c in counts} == {date(2019, 2, 14)}
    materialization = result.get_asset_materialization_events()[-1]
    assert materialization.materialization.metadata["rows_far_from_report_date"].value == 119
    # the report is named a year after its incidents: they load with a warning that counts them


def test_duplicate_headers_are_refused_by_name(tmp_path):
    frame = _report()
    frame["patient age"] = frame["Patient Age"]
    with pytest.raises(EmsFileError, match="duplicate column.*'Patient Age' and 'patient age'"):
        read_report(write_csv(frame, tmp_path / "dup.csv"))


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
    failure = _failure_text(result)
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
    failure = _failure_text(result)
    assert "coordinates_inside_baltimore" in failure and "nothing was loaded" in failure
    assert _raw_count(db) == before and path.exists()
    [city] = [e for e in result.get_asset_check_evaluations() if e.check_name == "coordinates_inside_baltimore"]
    assert city.metadata["failing_count"].value == len(wrong)
    assert city.metadata["examples"].value[0] == "naloxone_2024-03-12_v2.csv, 1"
    for number in wrong["Incident Number"]:
        assert number not in failure and number not in str(city.metadata)


def _tick(instance, cursor=None, skip_reasons: list | None = None):
    from orchestration.sensors import ems_inbox_sensor

    with dg.build_sensor_context(instance=instance, cursor=cursor, resources=SENSOR_RESOURCES) as context:
        result = ems_inbox_sensor(context)
        if skip_reasons is not None and isinstance(result, dg.SkipReason):
            skip_reasons.append(result.skip_message)
        return (result if isinstance(result, list) else []), context.cursor


def test_the_sensor_requests_each_stable_file_version_once_for_its_incident_days(inbox):
    from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

    first = write_csv(_report(), inbox / "naloxone_2024-03-12.csv")
    two_days = pd.concat([_report(date(2024, 3, 13)), _report(date(2024, 3, 14), seed=3)], ignore_index=True)
    write_csv(two_days, inbox / "naloxone_2024-03-14.csv")
    (inbox / "notes.txt").write_text("not a report")
    instance = dg.DagsterInstance.ephemeral()
    requests, cursor = _tick(instance)
    assert requests == []  # first sight: a file may still be being copied
    requests, cursor = _tick(instance, cursor)
    by_file = {r.tags["ems_report"]: r for r in requests}
    assert by_file["naloxone_2024-03-12.csv"].partition_key == "2024-03-12"
    ranged = by_file["naloxone_2024-03-14.csv"]
    assert (ranged.tags[ASSET_PARTITION_RANGE_START_TAG], ranged.tags[ASSET_PARTITION_RANGE_END_TAG]) == (
        "2024-03-13",
        "2024-03-14",
    )
    assert all(r.tags["dagster/max_retries"] == "2" for r in requests)
    arrivals = [r.run_config["ops"]["raw__naloxone_administrations"]["config"]["arrivals"] for r in requests]
    assert sorted(arrivals[-1].values()) == [1, 2]  # each stable file gets the next arrival number
    requests, cursor = _tick(instance, cursor)
    assert requests == []  # requested once
    later = first.stat().st_mtime + 60
    os.utime(first, (later, later))  # the same file delivered again
    assert _tick(instance, cursor)[0] == []  # changed: wait one tick
    requests, cursor = _tick(instance, _tick(instance, cursor)[1])
    again, cursor = _tick(instance, cursor)
    assert [r.tags["ems_report"] for r in requests + again] == ["naloxone_2024-03-12.csv"]
    config = (requests + again)[0].run_config["ops"]["raw__naloxone_administrations"]["config"]
    assert config["arrivals"]["naloxone_2024-03-12.csv"] == 3  # a later arrival than both earlier files


def test_a_file_still_growing_is_not_read(inbox):
    path = write_csv(_report(), inbox / "naloxone_2024-03-12.csv")
    instance = dg.DagsterInstance.ephemeral()
    cursor = None
    for _ in range(3):
        with open(path, "a") as f:
            f.write(",".join(["03/12/2024"] + [""] * (len(NALOXONE_COLUMNS) - 1)) + "\n")
        requests, cursor = _tick(instance, cursor)
        assert requests == []
    requests, cursor = _tick(instance, cursor)
    assert [r.tags["ems_report"] for r in requests] == ["naloxone_2024-03-12.csv"]


def test_a_file_for_a_day_without_a_partition_is_skipped_and_the_others_served(inbox):
    from orchestration import settings

    tomorrow = settings.today_local() + timedelta(days=1)
    future = write_csv(_report(tomorrow), inbox / f"naloxone_{tomorrow}.csv")
    write_csv(_report(), inbox / "naloxone_2024-03-12.csv")
    instance = dg.DagsterInstance.ephemeral()
    requests, cursor = _tick(instance, _tick(instance)[1])
    assert [r.tags["ems_report"] for r in requests] == ["naloxone_2024-03-12.csv"]
    warned = json.loads(cursor)["warned"]
    assert warned == [f"{future.name}:{future.stat().st_mtime:.0f}:{future.stat().st_size}"]
    reasons: list[str] = []
    assert _tick(instance, cursor, reasons)[0] == []
    assert reasons == [f"no new stable reports in {inbox}"]  # warned once, not every tick
    assert future.exists()  # left for a person (or for the day it names, once it has ended)


def test_a_file_whose_runs_fail_is_requested_again_a_bounded_number_of_times(inbox):
    from orchestration.sensors import MAX_REQUESTS

    write_csv(_report(), inbox / "naloxone_2024-03-12.csv")
    with dg.instance_for_test() as instance:
        requests, cursor = _tick(instance, _tick(instance)[1])
        assert len(requests) == 1
        fingerprint = requests[0].tags["ems_fingerprint"]
        asked = 1
        for _ in range(MAX_REQUESTS + 2):
            # the run of the last request failed (Dagster's own retries of it included)
            instance.add_run(
                dg.DagsterRun(
                    job_name="ems_intake_job",
                    run_id=__import__("uuid").uuid4().hex,
                    status=dg.DagsterRunStatus.FAILURE,
                    tags={"ems_fingerprint": fingerprint},
                )
            )
            requests, cursor = _tick(instance, cursor)
            asked += len(requests)
            if requests:
                assert requests[0].run_key == f"{fingerprint}#{asked}"
    assert asked == MAX_REQUESTS
    assert fingerprint in json.loads(cursor)["warned"]  # reported once: "gave up, the file stays in the inbox"


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
