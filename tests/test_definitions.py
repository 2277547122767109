"""The code location loads, the graph is connected, and the schedule targets yesterday."""

from datetime import datetime

import dagster as dg
import pytest

from orchestration import settings


@pytest.fixture(scope="module")
def defs(session_warehouse):
    from orchestration.definitions import defs

    return defs


def test_definitions_validate(defs):
    dg.Definitions.validate_loadable(defs)


def test_dbt_sources_are_the_raw_assets(defs):
    graph = defs.resolve_asset_graph()
    staging = graph.get(dg.AssetKey(["staging", "stg_open_baltimore__calls_for_service"]))
    assert dg.AssetKey(["raw", "calls_for_service"]) in staging.parent_keys
    fct = graph.get(dg.AssetKey(["restricted", "fct_naloxone_administrations"]))
    assert fct.group_name == "restricted"
    assert graph.get(dg.AssetKey(["marts", "mart_csa_profile"])).group_name == "marts"
    assert graph.get(dg.AssetKey(["raw", "calls_for_service"])).group_name == "ingest"


def test_dbt_tests_are_asset_checks(defs):
    graph = defs.resolve_asset_graph()
    checks = {
        key.name for key in graph.asset_check_keys if key.asset_key == dg.AssetKey(["marts", "fct_calls_for_service"])
    }
    assert "unique_fct_calls_for_service_call_id" in checks


def test_daily_schedule_requests_yesterdays_partition(defs):
    schedule = defs.resolve_schedule_def("daily_warehouse_schedule")
    assert schedule.cron_schedule == "0 2 * * *"
    assert schedule.execution_timezone == "America/New_York"
    with dg.build_schedule_context(
        scheduled_execution_time=datetime(2025, 7, 4, 2, 0, tzinfo=settings.LOCAL_TZ)
    ) as context:
        requests = schedule.evaluate_tick(context).run_requests
    assert [r.partition_key for r in requests] == ["2025-07-03"]


def test_unknown_source_setting_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("BALTIMORE_SOURCE", "production")
    with pytest.raises(ValueError, match="BALTIMORE_SOURCE must be one of"):
        settings.source_for("calls")
    monkeypatch.setenv("CALLS_SOURCE", "demo")
    assert settings.source_for("calls") == "demo"


def test_an_unset_file_setting_without_shared_copies_names_itself(monkeypatch, tmp_path):
    monkeypatch.delenv("CSA_BOUNDARIES", raising=False)
    monkeypatch.setattr(settings, "SHARED_DATA_DIR", tmp_path / "shared" / "data")
    with pytest.raises(settings.SettingError, match="CSA_BOUNDARIES is not set"):
        settings.file_location("CSA_BOUNDARIES")
    monkeypatch.setenv("CSA_BOUNDARIES", "/data/csa.geojson")
    assert settings.file_location("CSA_BOUNDARIES") == "/data/csa.geojson"
