"""The quality gate: raw checks, quarantine, write-audit-publish, and one writer at a time."""

import hashlib
import json
import subprocess
import sys
import textwrap
import time
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
import numpy as np
import pandas as pd
import pytest

from orchestration import settings
from orchestration.assets.publish import PUBLICATION_KEY, ServingLayout
from orchestration.checks import raw_checks
from orchestration.demo.calls import generate_calls
from orchestration.raw_tables import CALLS
from orchestration.sql_rules import local_day_of_epoch_ms
from orchestration.warehouse import replace_partitions
from tests.conftest import makefile_instance_config, patch_demo_calls, run_in_location

pytestmark = pytest.mark.slow
DAY = date(2024, 3, 6)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _publication(serving: Path) -> str:
    with duckdb.connect(str(serving), read_only=True) as conn:
        return conn.execute("select publication_id from meta.publication").fetchone()[0]


# --- raw checks, on a table the test loads itself -------------------------------------------------


@pytest.fixture
def loaded(tmp_path):
    """A raw calls table with 3 clean days, then a 4th day with known faults, as its latest load."""
    conn = duckdb.connect(str(tmp_path / "checks.duckdb"))
    clean = generate_calls(date(2024, 3, 1), date(2024, 3, 3), seed=2)
    clean["_partition_date"] = local_day_of_epoch_ms(clean["callDateTime"])
    replace_partitions(conn, CALLS, clean, date(2024, 3, 1), date(2024, 3, 3), "demo")
    bad = generate_calls(DAY, DAY, seed=2)
    bad["_partition_date"] = pd.Timestamp(DAY)
    bad.loc[:29, ["latitude", "longitude"]] = [0.0, 0.0]  # 30 impossible points
    bad.loc[10:13, "callDateTime"] = bad.loc[10:13, "callDateTime"] - 86_400_000 * 2  # 4 from another day
    bad.loc[20:60, "recordId"] = None  # 41 without a key
    bad.loc[70:72, "recordId"] = bad.loc[0, "recordId"]  # 3 duplicates of one key (4 copies)
    time.sleep(0.01)
    replace_partitions(conn, CALLS, bad, DAY, DAY, "demo")
    yield conn, bad
    conn.close()


def test_raw_checks_count_exactly_the_injected_faults(loaded):
    conn, bad = loaded
    n = len(bad)
    spec = raw_checks.CALLS_SPEC
    min_lon, min_lat, max_lon, max_lat = settings.city_extent()
    m = float(settings.dbt_vars()["city_box_margin_deg"])
    points = bad.dropna(subset=["latitude"])
    inside = points["latitude"].between(min_lat - m, max_lat + m) & points["longitude"].between(
        min_lon - m, max_lon + m
    )
    outside = points[~inside]
    rows = raw_checks.run_rows(spec, DAY, DAY)  # the faulty day only: checks judge what they are given
    window = raw_checks.check_timestamps_in_window(conn, spec, rows)
    assert not window.passed and window.metadata["failing_count"].value == 4
    assert len(window.metadata["examples"].value) == 4
    city = raw_checks.check_coordinates_in_city(conn, spec, rows)
    assert len(outside) >= 30  # the injected ones, plus any demo point jittered past the city line
    assert not city.passed and city.metadata["failing_count"].value == len(outside)
    assert city.metadata["threshold"].value == spec.max_outside_city_share
    nulls = raw_checks.check_key_null_rates(conn, spec, rows)
    assert not nulls.passed
    assert nulls.metadata["failing_columns"].value == {
        '"recordId"': {"null_rows": 41, "null_rate": round(41 / n, 6), "threshold": 0.001, "chance_at_threshold": 0.0}
    }
    dupes = raw_checks.check_duplicate_keys(conn, spec, DAY, DAY)
    assert not dupes.passed and dupes.severity == dg.AssetCheckSeverity.WARN
    assert dupes.metadata["failing_count"].value == 1  # one key, loaded 4 times
    assert raw_checks.check_schema(conn, spec, rows).passed
    # the clean days alone pass: a check judges the rows it is handed, not the newest load
    clean = raw_checks.run_rows(spec, date(2024, 3, 1), date(2024, 3, 3))
    assert raw_checks.check_coordinates_in_city(conn, spec, clean).passed
    assert raw_checks.check_key_null_rates(conn, spec, clean).passed


def test_raw_checks_pass_on_a_clean_load_and_name_schema_drift(tmp_path):
    with duckdb.connect(str(tmp_path / "checks.duckdb")) as conn:
        clean = generate_calls(DAY, DAY, seed=2)
        clean["_partition_date"] = local_day_of_epoch_ms(clean["callDateTime"])
        replace_partitions(conn, CALLS, clean, DAY, DAY, "demo")
        spec = raw_checks.CALLS_SPEC
        rows = raw_checks.run_rows(spec, DAY, DAY)
        for check in (
            raw_checks.check_timestamps_in_window,
            raw_checks.check_coordinates_in_city,
            raw_checks.check_key_null_rates,
            raw_checks.check_schema,
        ):
            assert check(conn, spec, rows).passed, check.__name__
        assert raw_checks.check_freshness(conn, spec, DAY, DAY).passed
        # an upstream rename leaves a declared column empty; a type change shows in the catalog
        conn.execute('update raw.calls_for_service set "Neighborhood" = null')
        conn.execute('alter table raw.calls_for_service alter "PolicePost" type integer using null')
        drift = raw_checks.check_schema(conn, raw_checks.CALLS_SPEC, rows)
        problems = drift.metadata["problems"].value
        assert not drift.passed
        assert any(p.startswith("Neighborhood: empty") for p in problems)
        assert any(p.startswith("PolicePost: INTEGER") for p in problems)


def test_volume_check_flags_a_day_far_from_its_weekday_median(tmp_path):
    with duckdb.connect(str(tmp_path / "checks.duckdb")) as conn:
        history = generate_calls(date(2024, 2, 1), date(2024, 2, 29), seed=2)
        history["_partition_date"] = local_day_of_epoch_ms(history["callDateTime"])
        replace_partitions(conn, CALLS, history, date(2024, 2, 1), date(2024, 2, 29), "demo")
        thin = generate_calls(date(2024, 3, 1), date(2024, 3, 1), seed=2).head(1000)  # a third of a day
        thin["_partition_date"] = local_day_of_epoch_ms(thin["callDateTime"])
        time.sleep(0.01)
        replace_partitions(conn, CALLS, thin, date(2024, 3, 1), date(2024, 3, 1), "demo")
        result = raw_checks.check_volume(conn, raw_checks.CALLS_SPEC, date(2024, 3, 1), date(2024, 3, 1))
        # a run's day with no rows at all counts as 0, far below its weekday median
        empty = raw_checks.check_volume(conn, raw_checks.CALLS_SPEC, date(2024, 3, 2), date(2024, 3, 2))
    assert not empty.passed and empty.metadata["examples"].value[0]["rows"] == 0
    assert not result.passed
    [flagged] = result.metadata["examples"].value
    fridays = history[pd.to_datetime(history["_partition_date"]).dt.dayofweek == 4]
    median = float(np.median(fridays.groupby("_partition_date").size().tail(4)))  # Feb 2024's four Fridays
    assert flagged == {"day": "2024-03-01", "rows": 1000, "weekday_median": median, "ratio": round(1000 / median, 3)}


# --- quarantine through dbt ------------------------------------------------------------------------


def test_a_corrupted_partition_is_quarantined_with_reasons_and_reconciles(warehouse_copy, session_instance):
    from orchestration.assets.dbt import warehouse_dbt_models
    from orchestration.definitions import defs

    def reasons(day):
        with duckdb.connect(str(warehouse_copy), read_only=True) as conn:
            return dict(
                conn.execute(
                    "select quarantine_reason, count(*) from quarantine.calls_for_service "
                    "where partition_date = ? group by 1",
                    [day],
                ).fetchall()
            )

    before = reasons(DAY)
    clean_row = (
        "latitude between 39.25 and 39.33 and longitude between -76.68 and -76.56 "
        "and priority in ('Low', 'Medium', 'High') and _partition_date = date '2024-03-06' and _source_row < 1000000"
    )
    with duckdb.connect(str(warehouse_copy)) as conn:
        conn.execute(f"""insert into raw.calls_for_service select * replace (_source_row + 1000000 as _source_row,
            now() as _loaded_at)
            from raw.calls_for_service where {clean_row} order by recordId limit 7""")
        conn.execute(f"""insert into raw.calls_for_service select * replace (recordId + 9000 as recordId,
            null as callDateTime, _source_row + 2000000 as _source_row, now() as _loaded_at)
            from raw.calls_for_service where {clean_row} order by recordId limit 3""")
        conn.execute(f"""insert into raw.calls_for_service select * replace (recordId + 9100 as recordId,
            0.0 as latitude, 0.0 as longitude, _source_row + 3000000 as _source_row, now() as _loaded_at)
            from raw.calls_for_service where {clean_row} order by recordId limit 4""")
        conn.execute(f"""insert into raw.calls_for_service select * replace (recordId + 9200 as recordId,
            'P9' as priority, _source_row + 4000000 as _source_row, now() as _loaded_at)
            from raw.calls_for_service where {clean_row} order by recordId limit 2""")
    result = dg.materialize(
        [warehouse_dbt_models], resources=defs.resources, instance=session_instance, raise_on_error=False
    )
    assert result.success
    after = reasons(DAY)
    injected = {
        "duplicate_record_id": 7,
        "unparseable_timestamp": 3,
        "impossible_coordinates": 4,
        "unknown_priority_code": 2,
    }
    assert after == {k: before.get(k, 0) + injected.get(k, 0) for k in set(before) | set(injected)}
    with duckdb.connect(str(warehouse_copy), read_only=True) as conn:
        row = conn.execute(
            """select raw_rows, fact_rows, quarantined_rows, duplicate_rows, unparseable_timestamp_rows
            from marts.mart_partition_quality where table_name = 'calls_for_service' and partition_date = ?""",
            [DAY],
        ).fetchone()
        raw_n = conn.execute("select count(*) from raw.calls_for_service where _partition_date = ?", [DAY]).fetchone()
    assert row[0] == raw_n[0] == row[1] + row[2]
    assert row[2] == sum(after.values()) and row[3:] == (after["duplicate_record_id"], 3)


# --- write-audit-publish --------------------------------------------------------------------------


def test_a_failing_blocking_check_prevents_publish(warehouse_copy, session_instance, monkeypatch):
    from orchestration.run_all import run_range

    serving = settings.serving_path()
    checksum, publication = _sha256(serving), _publication(serving)

    def corrupted(start, end, seed):
        frame = generate_calls(start, end, seed)
        frame.loc[frame.index[::10], ["latitude", "longitude"]] = [0.0, 0.0]  # 10% impossible points
        return frame

    patch_demo_calls(monkeypatch, corrupted)
    result = run_range(DAY, DAY, instance=session_instance)
    assert not result.success
    failed = [e for e in result.get_asset_check_evaluations() if not e.passed]
    assert [(e.asset_key.path[-1], e.check_name) for e in failed] == [
        ("calls_for_service", "coordinates_inside_baltimore")
    ]
    assert failed[0].metadata["failing_count"].value > 300
    published = [e for e in result.get_asset_materialization_events() if e.asset_key.path[0] == "serving"]
    assert published == []
    assert _sha256(serving) == checksum and _publication(serving) == publication

    # publishing on its own is refused too, naming the failed check
    alone = run_in_location([PUBLICATION_KEY], session_instance)
    assert not alone.success
    error = alone.get_step_failure_events()[0].event_specific_data.error
    assert "blocking check(s) did not pass" in error.message + (error.cause.message if error.cause else "")
    assert _sha256(serving) == checksum


READER = textwrap.dedent("""
    import json, os, sys, time, duckdb
    serving, stop, out, progress = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
    seen, reads, errors = [], 0, []
    deadline = time.time() + 300
    while not os.path.exists(stop) and time.time() < deadline:
        try:
            # resolve the one pointer once: database and Parquet of the same publication
            current = os.path.realpath(os.path.join(os.path.dirname(serving), "current"))
            with duckdb.connect(os.path.join(current, os.path.basename(serving)), read_only=True) as conn:
                pub_id, counts = conn.execute("select publication_id, row_counts from meta.publication").fetchone()
                for table, n in json.loads(counts).items():
                    got = conn.execute(f"select count(*) from marts.{table}").fetchone()[0]
                    if got != n:
                        errors.append(f"{pub_id} {table}: {got} rows, publication says {n}")
            parquet = json.load(open(os.path.join(current, "parquet", "_publication.json")))
            if parquet["publication_id"] != pub_id:
                errors.append(f"database {pub_id} beside Parquet {parquet['publication_id']}")
            with duckdb.connect() as mem:
                profile = os.path.join(current, "parquet", "mart_csa_profile.parquet")
                got = mem.execute("select count(*) from read_parquet(?)", [profile]).fetchone()[0]
            if got != json.loads(counts)["mart_csa_profile"]:
                errors.append(f"{pub_id} mart_csa_profile.parquet: {got} rows")
            reads += 1
            if not seen or seen[-1] != pub_id:
                seen.append(pub_id)
                with open(progress, "a") as f:  # the test waits for each id here before switching again
                    print(pub_id, file=f)
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
    json.dump({"reads": reads, "seen": seen, "errors": errors}, open(out, "w"))
""")


def test_a_reader_never_sees_a_half_published_state(warehouse_copy, session_instance, tmp_path):
    from orchestration.run_all import run_range

    serving = settings.serving_path()
    stop, out, progress = tmp_path / "stop", tmp_path / "reader.json", tmp_path / "seen.txt"
    layout = ServingLayout(serving)
    # every check passes again (an earlier test left failures), and the layout has its `current` pointer
    assert run_range(date(2024, 3, 10), date(2024, 3, 12), instance=session_instance).success
    published = [layout.current_id()]
    reader = subprocess.Popen([sys.executable, "-c", READER, str(serving), str(stop), str(out), str(progress)])

    def reader_has_seen(publication_id: str) -> None:
        """Wait until the reader read `publication_id`: each switch then happens while it reads, and
        it sees every publication however slowly it starts or loops (a fixed sleep once did not)."""
        deadline = time.monotonic() + 120
        while publication_id not in (progress.read_text().split() if progress.exists() else []):
            assert reader.poll() is None and time.monotonic() < deadline, f"the reader never read {publication_id}"
            time.sleep(0.05)

    try:
        reader_has_seen(published[0])
        for _ in range(3):
            assert run_in_location([PUBLICATION_KEY], session_instance).success
            published.append(layout.current_id())
            reader_has_seen(published[-1])
    finally:
        stop.touch()
        reader.wait(timeout=60)
    report = json.loads(out.read_text())
    assert report["errors"] == []
    assert report["seen"] == published  # each publication, in order, none half-published
    assert len(set(published)) == 4


def test_a_publication_switches_database_and_parquet_together_and_cleans_up(
    warehouse_copy, session_instance, tmp_path, monkeypatch
):
    """A serving path with a quote in it; leftovers of a crashed publish; an interrupted publish."""
    import orchestration.assets.publish as publish_module
    from orchestration.run_all import run_range

    serving = tmp_path / "O'Brien's share" / "warehouse.duckdb"
    monkeypatch.setenv("SERVING_DB", str(serving))
    layout = ServingLayout(serving)
    layout.publications.mkdir(parents=True)
    crashed = layout.publications / "20200101T000000-deadbeef.building"
    crashed.mkdir()
    (crashed / "warehouse.duckdb").write_bytes(b"half written")
    old = [layout.publications / f"2020010{i}T000000-0000000{i}" for i in (2, 3)]
    for folder in old:
        folder.mkdir()
    # a whole run first (an earlier test may have left failed checks), which publishes once
    assert run_range(date(2024, 3, 10), date(2024, 3, 10), instance=session_instance).success
    for _ in range(2):
        assert run_in_location([PUBLICATION_KEY], session_instance).success
    assert not crashed.exists()
    # publications of 2020 are gone; the three of the last minute stay (a reader may hold one)
    assert not any(folder.exists() for folder in old)
    current = layout.current.resolve()
    with duckdb.connect(str(serving), read_only=True) as conn:
        pub_id = conn.execute("select publication_id from meta.publication").fetchone()[0]
    assert current.name == pub_id and serving.resolve() == current / "warehouse.duckdb"
    assert (serving.parent / "parquet").resolve() == current / "parquet"
    assert json.loads((current / "parquet" / "_publication.json").read_text())["publication_id"] == pub_id
    assert len(list(layout.publications.iterdir())) == 3

    def interrupted() -> str:
        raise KeyboardInterrupt  # Ctrl-C while the new publication is being written

    monkeypatch.setattr(publish_module, "git_commit", interrupted)
    assert not run_in_location([PUBLICATION_KEY], session_instance).success
    assert layout.current.resolve() == current  # still the last good publication, whole
    assert not list(layout.publications.glob("*.building"))
    with duckdb.connect(str(serving), read_only=True) as conn:
        assert conn.execute("select publication_id from meta.publication").fetchone()[0] == pub_id


@pytest.mark.parametrize("fault", ["the copy fails", "interrupted while copying"])
def test_a_publication_whose_file_copy_fails_or_is_interrupted_leaves_the_last_one_whole(
    warehouse_copy, session_instance, monkeypatch, fault
):
    """The previous publication's file is copied in a thread while the working marts are
    summarized: a failed copy fails the publication with the copy's own error, and an interrupt
    during a slow copy waits for it before the unfinished folder is removed (no thread writing
    into a removed folder, nothing left behind)."""
    import shutil

    import orchestration.assets.publish as publish_module
    from orchestration.run_all import run_range

    serving = settings.serving_path()
    layout = ServingLayout(serving)
    assert run_range(date(2024, 3, 10), date(2024, 3, 10), instance=session_instance).success
    current, pub_id = layout.current.resolve(), _publication(serving)
    copies: list[tuple[Path, float]] = []
    copyfile, rmtree = shutil.copyfile, shutil.rmtree  # the module's own, before they are replaced

    def slow_copy(source, target):
        time.sleep(1.0)
        copyfile(source, target)
        copies.append((Path(target), time.monotonic()))

    def full_disk(source, target):
        raise OSError(28, "No space left on device")

    removed: dict[Path, float] = {}

    def recorded_rmtree(path, ignore_errors=False):
        removed.setdefault(Path(path), time.monotonic())
        rmtree(path, ignore_errors=ignore_errors)

    def interrupted(conn, tables):
        raise KeyboardInterrupt

    monkeypatch.setattr(publish_module.shutil, "rmtree", recorded_rmtree)
    if fault == "the copy fails":
        monkeypatch.setattr(publish_module.shutil, "copyfile", full_disk)
    else:
        monkeypatch.setattr(publish_module.shutil, "copyfile", slow_copy)
        monkeypatch.setattr(publish_module, "summarize_working", interrupted)
    result = run_in_location([PUBLICATION_KEY], session_instance)
    assert not result.success
    if fault == "the copy fails":
        (failure,) = result.get_step_failure_events()
        error = failure.event_specific_data.error.cause  # the step's own error, under Dagster's wrapper
        assert error.cls_name == "OSError" and "No space left on device" in error.message
    else:
        ((copy, copied_at),) = copies
        assert copy.parent.name.endswith(".building") and copy.parent in removed
        assert copied_at <= removed[copy.parent]  # the copy ended before its folder was removed
    assert layout.current.resolve() == current and _publication(serving) == pub_id
    assert not list(layout.publications.glob("*.building"))


def test_publication_metadata_describes_what_was_published(built):
    with duckdb.connect(str(settings.serving_path()), read_only=True) as conn:
        pub = conn.execute("select git_commit, partitions, row_counts, check_results from meta.publication").fetchone()
        schemas = {s for (s,) in conn.execute("select distinct table_schema from information_schema.tables").fetchall()}
    git, partitions, counts, checks = pub[0], json.loads(pub[1]), json.loads(pub[2]), json.loads(pub[3])
    assert len(git) >= 40 or git == "unknown"
    from tests.conftest import TEST_END, TEST_START

    assert partitions["calls_for_service"]["days"] == str((TEST_END - TEST_START).days + 1)
    with duckdb.connect(str(built[0]), read_only=True) as conn:
        assert (
            counts["fct_calls_for_service"]
            == conn.execute("select count(*) from marts.fct_calls_for_service").fetchone()[0]
        )
    assert schemas == {"marts", "meta"}  # no raw, staging, restricted or quarantine rows
    assert len(checks) > 50 and all(c["passed"] for c in checks if c["blocking"])
    parquet = settings.serving_path().parent / "parquet" / "mart_csa_profile.parquet"
    assert len(pd.read_parquet(parquet)) == counts["mart_csa_profile"]


# --- one writer at a time --------------------------------------------------------------------------


def test_every_step_that_opens_the_working_database_claims_the_writer_pool():
    from orchestration.definitions import defs
    from orchestration.partitions import WRITER_POOL

    graph = defs.resolve_asset_graph()
    landing = dg.AssetKey(["landing", "calls_for_service"])
    for assets_def in graph.assets_defs:
        if assets_def.is_executable and landing not in assets_def.keys:
            assert assets_def.op.pool == WRITER_POOL, assets_def.keys
    # the network fetch lands Parquet beside the warehouse without taking the writer slot
    assert graph.get(landing).assets_def.op.pool is None
    for checks_def in defs.asset_checks or []:
        assert checks_def.op.pool == WRITER_POOL
    assert defs.executor.name == "in_process"


def test_the_makefile_instance_config_limits_the_writer_pool_to_one(tmp_path):
    """`make run`/`make dev` write DAGSTER_HOME/dagster.yaml; its pool limit must load as 1."""
    import yaml

    from orchestration.partitions import WRITER_POOL

    config = yaml.safe_load(makefile_instance_config(tmp_path / "home").read_text())
    with dg.instance_for_test(overrides=config) as instance:
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 1
        assert instance.event_log_storage.get_concurrency_info(WRITER_POOL).slot_count in (0, 1)
        # failed EMS intake runs are retried: run retries are on (each run says how many via its tags)
        assert instance.run_retries_enabled and instance.run_retries_max_retries == 0
        # a range run's partition events are written a batch per transaction
        assert type(instance.event_log_storage).__name__ == "BatchingSqliteEventLogStorage"


def test_ems_duplicates_are_incidents_reported_on_two_days(tmp_path):
    from orchestration.demo.naloxone import generate_naloxone
    from orchestration.raw_tables import NALOXONE

    with duckdb.connect(str(tmp_path / "checks.duckdb")) as conn:
        frames = []
        for day in (date(2024, 3, 1), date(2024, 3, 2)):
            frame = generate_naloxone(day, day, seed=4)
            frame["_partition_date"] = pd.Timestamp(day)
            frames.append(frame)
        frames[0].loc[1, "Incident Number"] = frames[0].loc[0, "Incident Number"]  # two patients, one incident
        frames[1].loc[0, "Incident Number"] = frames[0].loc[5, "Incident Number"]  # re-reported the next day
        both = pd.concat(frames, ignore_index=True)
        replace_partitions(conn, NALOXONE, both, date(2024, 3, 1), date(2024, 3, 2), "real")
        result = raw_checks.check_duplicate_keys(conn, raw_checks.NALOXONE_SPEC, date(2024, 3, 1), date(2024, 3, 2))
    assert not result.passed
    assert result.metadata["failing_count"].value == 1
    # the example says where the copies are (source, row), never the incident number (PHI)
    [example] = result.metadata["examples"].value
    assert frames[0].loc[5, "Incident Number"] not in example
    assert "real:6" in example and f"real:{len(frames[0]) + 1}" in example
    assert "2024-03-01" in example and "2024-03-02" in example


def test_duplicate_keys_are_those_of_the_run_days_unless_the_run_covers_every_day(tmp_path):
    """A run judges the keys of its own days against the whole table; a run over every day the
    table holds (a full build) skips that filter, and must count the same keys."""
    from orchestration.demo.naloxone import generate_naloxone
    from orchestration.raw_tables import NALOXONE

    days = [date(2024, 3, 1), date(2024, 3, 2), date(2024, 3, 3)]
    with duckdb.connect(str(tmp_path / "checks.duckdb")) as conn:
        frames = []
        for day in days:
            frame = generate_naloxone(day, day, seed=7)
            frame["_partition_date"] = pd.Timestamp(day)
            frames.append(frame)
        frames[1].loc[0, "Incident Number"] = frames[0].loc[0, "Incident Number"]  # days 1 and 2 only
        frames[2].loc[0, "Incident Number"] = frames[0].loc[3, "Incident Number"]  # days 1 and 3
        replace_partitions(conn, NALOXONE, pd.concat(frames, ignore_index=True), days[0], days[-1], "real")

        def failing(start, end):
            result = raw_checks.check_duplicate_keys(conn, raw_checks.NALOXONE_SPEC, start, end)
            return result.metadata["failing_count"].value

        assert failing(days[2], days[2]) == 1  # the key it shares with day 1, not days 1-2's
        assert failing(days[1], days[1]) == 1
        assert failing(days[1], days[2]) == 2
        assert failing(days[0], days[2]) == 2  # every day: no filter, the same two keys
        assert failing(date(2024, 2, 1), date(2024, 3, 31)) == 2


def test_check_examples_are_the_same_whatever_order_the_rows_were_inserted_in(tmp_path):
    """Loads do not keep their input's order, so a check's examples are its first failing rows
    by value: the same rows loaded forwards and backwards give the same examples."""
    day = date(2024, 5, 1)
    calls = generate_calls(day, day, seed=3)
    calls["_partition_date"] = local_day_of_epoch_ms(calls["callDateTime"])
    calls["_source_row"] = range(1, len(calls) + 1)
    calls[["latitude", "longitude"]] = [39.29, -76.61]  # every call downtown (no demo outliers) ...
    calls.loc[calls.index[:9], "latitude"] = 45.0  # ... but nine, far north of Baltimore
    expected = sorted(calls.loc[calls.index[:9], ["recordId", "_source_row"]].itertuples(index=False))[:5]
    seen = []
    for name, frame in (("forwards", calls), ("backwards", calls.iloc[::-1].reset_index(drop=True))):
        with duckdb.connect(str(tmp_path / f"{name}.duckdb")) as conn:
            replace_partitions(conn, CALLS, frame, day, day, "demo")
            result = raw_checks.check_coordinates_in_city(
                conn, raw_checks.CALLS_SPEC, raw_checks.run_rows(raw_checks.CALLS_SPEC, day, day)
            )
        assert result.metadata["failing_count"].value == 9
        seen.append(result.metadata["examples"].value)
    assert seen[0] == seen[1] == [f"{r}, {n}" for r, n in expected]


def test_the_binomial_tail_matches_direct_sums():
    from math import comb

    def direct(k, n, p):
        return sum(comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k, n + 1))

    assert raw_checks.binomial_upper_tail(1, 9, 0.1) == pytest.approx(1 - 0.9**9)
    for k, n, p in [(5, 9, 0.1), (3, 40, 0.01), (12, 200, 0.02), (0, 10, 0.5), (11, 10, 0.5)]:
        assert raw_checks.binomial_upper_tail(k, n, p) == pytest.approx(direct(k, n, p), rel=1e-9, abs=1e-300)


@pytest.mark.parametrize(("missing", "passes"), [(0, True), (1, True), (2, True), (5, False), (9, False)])
def test_a_small_ems_day_is_judged_by_how_unlikely_its_missing_points_are(missing, passes):
    """One missing point among a day's nine patients is 11% (over the 10% limit) and common by
    chance; five of nine (P = 0.0009 at the limit) is a broken export."""
    from orchestration.checks.raw_checks import NALOXONE_SPEC, check_key_null_rates
    from orchestration.demo.naloxone import generate_naloxone

    report = generate_naloxone(date(2024, 3, 12), date(2024, 3, 12), seed=1, inject_clusters=False)
    report = pd.concat([report] * 3).head(9).reset_index(drop=True)
    report["Incident Location Latitude"] = ["39.29"] * 9
    report.loc[: missing - 1, "Incident Location Latitude"] = ""
    with duckdb.connect() as conn:
        conn.register("staged", report)
        result = check_key_null_rates(conn, NALOXONE_SPEC, "staged")
    assert result.passed is passes


@pytest.mark.parametrize(
    ("unreadable_share", "published", "failed_checks"),
    [
        # a few percent of new spellings: warnings to review, the marts are still published
        (0.04, True, {"assert_call_type_coverage_target"}),
        # a fifth of all calls unreadable (a renamed or emptied field): under the floor, nothing published
        (0.20, False, {"assert_call_type_coverage_floor", "assert_call_type_coverage_target"}),
    ],
)
def test_only_the_coverage_floor_blocks_publication(
    warehouse_copy, session_instance, unreadable_share, published, failed_checks
):
    from orchestration.run_all import run_range

    serving = settings.serving_path()
    before = _publication(serving)
    with duckdb.connect(str(warehouse_copy)) as conn:
        n = conn.execute("select count(*) from raw.calls_for_service").fetchone()[0]
        # codes no rule knows, on a spread of calls of every day but DAY (which the run reloads)
        conn.execute(
            """update raw.calls_for_service set description = 'ZX' || (recordId % 37), _loaded_at = now()
            where hash(recordId) % 10000 < ? and _partition_date <> ?""",
            [int(unreadable_share * 10000 * n / (n - 3500)), DAY],
        )
    result = run_range(DAY, DAY, instance=session_instance)
    failed = {e.check_name for e in result.get_asset_check_evaluations() if not e.passed}
    # besides the demo's usual warnings (its spike; its rare spellings first seen in the last week)
    usual = {
        "no_active_overdose_spike",
        "row_count_near_weekday_median",
        "assert_no_new_unclassified_call_descriptions",
    }
    assert failed - usual == failed_checks
    assert (_publication(serving) != before) is published
    assert result.success is published


def test_freshness_reports_the_newest_local_time_across_the_fall_back_hour(tmp_path):
    """Only rows near the newest instant are converted; the repeated hour of a DST change is where
    the newest instant is not the newest local time."""
    from zoneinfo import ZoneInfo

    day = date(2024, 11, 3)  # 02:00 EDT becomes 01:00 EST
    calls = generate_calls(day, day, seed=2).head(3).copy()
    utc = pd.to_datetime(["2024-11-03 04:10", "2024-11-03 05:50", "2024-11-03 06:30"], utc=True)
    calls["callDateTime"] = (utc.asi8 // 1_000_000).astype("int64")  # epoch ms
    calls["_partition_date"] = pd.Timestamp(day)
    local = [t.tz_convert(ZoneInfo("America/New_York")).replace(tzinfo=None) for t in utc]
    assert [str(t.time()) for t in local] == ["00:10:00", "01:50:00", "01:30:00"]  # the last instant is earlier
    with duckdb.connect(str(tmp_path / "checks.duckdb")) as conn:
        replace_partitions(conn, CALLS, calls, day, day, "demo")
        result = raw_checks.check_freshness(conn, raw_checks.CALLS_SPEC, day, day)
    assert result.metadata["newest_record_local"].value == "2024-11-03 01:50:00"
    assert not result.passed  # 22 hours before the end of the day
