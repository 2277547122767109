"""Raw write-audit-publish: a load is staged, its blocking checks judge exactly its rows, and only
a passing load replaces the partition. Faults are injected into the demo generator the assets call."""

from datetime import date, timedelta

import dagster as dg
import duckdb
import pytest

from orchestration.assets.raw import landing_calls_for_service, raw_calls_for_service
from orchestration.demo.calls import generate_calls
from orchestration.resources import WarehouseDuckDB
from orchestration.settings import city_extent
from tests.conftest import patch_demo_calls

DAY = date(2024, 3, 7)  # a Thursday


def _materialize(db, partition: date = DAY, allow_empty: bool = False) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [landing_calls_for_service, raw_calls_for_service],
        partition_key=partition.isoformat(),
        resources={"duckdb": WarehouseDuckDB(database=str(db))},
        run_config={
            "ops": {
                "landing__calls_for_service": {"config": {"source": "demo"}},
                "raw__calls_for_service": {"config": {"allow_empty_days": allow_empty}},
            }
        },
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )


def _fingerprint(db, day: date = DAY) -> tuple[int, int]:
    with duckdb.connect(str(db), read_only=True) as conn:
        return conn.execute(
            "select count(*), coalesce(sum(recordId), 0) from raw.calls_for_service where _partition_date = ?", [day]
        ).fetchone()


def _failure_text(result: dg.ExecuteInProcessResult) -> str:
    error = result.get_step_failure_events()[0].event_specific_data.error
    return error.message + (error.cause.message if error.cause else "")


def test_a_load_failing_a_blocking_check_replaces_nothing(tmp_path, monkeypatch):
    db = tmp_path / "w.duckdb"
    assert _materialize(db).success
    before = _fingerprint(db)
    assert before[0] > 3000

    corrupted_rows = []

    def corrupted(start, end, seed):
        frame = generate_calls(start, end, seed)
        hit = frame.index[::10]
        frame.loc[hit, ["latitude", "longitude"]] = [0.0, 0.0]  # 10%: an ArcGIS "no point" placeholder gone wrong
        corrupted_rows.append(len(hit))
        return frame

    patch_demo_calls(monkeypatch, corrupted)
    result = _materialize(db)
    assert not result.success
    assert _fingerprint(db) == before  # the good rows are still there, untouched
    with duckdb.connect(str(db), read_only=True) as conn:  # the refused load left nothing behind
        assert conn.execute("select count(*) from raw.calls_for_service").fetchone()[0] == before[0]
    text = _failure_text(result)
    assert "coordinates_inside_baltimore" in text and "nothing was loaded" in text
    [city] = [e for e in result.get_asset_check_evaluations() if e.check_name == "coordinates_inside_baltimore"]
    assert not city.passed
    # every injected (0, 0) point fails; demo points are otherwise inside the box (extent + margin)
    assert city.metadata["failing_count"].value == corrupted_rows[0]
    # the warning checks never ran: the load stopped at the gate
    assert not [e for e in result.get_asset_check_evaluations() if e.check_name == "newest_record_is_fresh"]


def test_an_empty_answer_for_a_day_with_rows_is_refused_unless_allowed(tmp_path, monkeypatch):
    db = tmp_path / "w.duckdb"
    assert _materialize(db).success
    before = _fingerprint(db)
    patch_demo_calls(monkeypatch, lambda start, end, seed: generate_calls(start, end, seed).head(0))
    refused = _materialize(db)
    assert not refused.success
    assert "returned no rows for 1 day(s)" in _failure_text(refused)
    assert _fingerprint(db) == before
    allowed = _materialize(db, allow_empty=True)
    assert allowed.success
    assert _fingerprint(db) == (0, 0)


def test_a_new_day_with_nothing_where_its_weekday_had_rows_is_refused(tmp_path, monkeypatch):
    """What a new yearly ArcGIS service looks like from the old layer: days that return nothing."""
    db = tmp_path / "w.duckdb"
    first = DAY - timedelta(days=28)
    for offset in range(0, 28, 7):  # four Thursdays of history
        assert _materialize(db, first + timedelta(days=offset)).success
    patch_demo_calls(monkeypatch, lambda start, end, seed: generate_calls(start, end, seed).head(0))
    refused = _materialize(db)
    assert not refused.success
    assert "the same weekday had a median of" in _failure_text(refused)
    # a day with no history at all (a fresh warehouse) may be empty: nothing says it should not be
    assert _materialize(tmp_path / "fresh.duckdb").success


def test_a_run_checks_its_own_days_not_the_newest_load(tmp_path):
    """Two days loaded by two runs: each run's checks count that run's rows only."""
    db = tmp_path / "w.duckdb"
    first = _materialize(db, DAY)
    second = _materialize(db, DAY + timedelta(days=1))
    assert first.success and second.success
    for result, day in ((first, DAY), (second, DAY + timedelta(days=1))):
        [nulls] = [e for e in result.get_asset_check_evaluations() if e.check_name == "key_null_rates_under_thresholds"]
        expected = generate_calls(day, day, 20130101)
        assert nulls.metadata["rows_checked"].value == len(expected)


@pytest.mark.parametrize("margin_factor", [0.5, 2.0])
def test_the_city_box_margin_is_what_the_gate_uses(tmp_path, monkeypatch, margin_factor):
    """A whole load shifted just outside the city's extent passes within the margin and fails beyond it."""
    from orchestration import settings

    margin = float(settings.dbt_vars()["city_box_margin_deg"])
    min_lon = city_extent()[0]

    def shifted(start, end, seed):
        frame = generate_calls(start, end, seed)
        frame["longitude"] = min_lon - margin * margin_factor
        return frame

    patch_demo_calls(monkeypatch, shifted)
    result = _materialize(tmp_path / "w.duckdb")
    assert result.success == (margin_factor < 1)


def test_a_load_reads_what_landed_and_consumes_it_only_when_committed(tmp_path, monkeypatch):
    db = tmp_path / "w.duckdb"
    alone = dg.materialize(
        [raw_calls_for_service],
        partition_key=DAY.isoformat(),
        resources={"duckdb": WarehouseDuckDB(database=str(db))},
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    assert not alone.success and "nothing landed for calls_for_service" in _failure_text(alone)
    landed = tmp_path / "landing" / "calls_for_service" / f"{DAY}_{DAY}.parquet"
    assert _materialize(db).success
    assert not landed.exists()  # committed: the landed window is consumed

    def corrupted(start, end, seed):
        frame = generate_calls(start, end, seed)
        frame.loc[frame.index[::10], ["latitude", "longitude"]] = [0.0, 0.0]
        return frame

    patch_demo_calls(monkeypatch, corrupted)
    assert not _materialize(db).success
    assert landed.exists()  # refused: kept for a person to look at, or for a retry
