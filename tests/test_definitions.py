"""The code location loads (with Python's collector paused), the graph is connected, and the
schedule targets yesterday."""

import subprocess
import sys
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


# A process that loads the code location, as Dagster's run and code-server processes do (dagster
# imported first, the module compiled first, as its cached bytecode would be): it counts the collector's passes while
# the definitions load, prints the collector's state afterwards, makes new objects, and at exit
# (its handler registered first, so it runs after the code location's own) prints whether those
# objects were frozen rather than left to the interpreter's last walk.
LOAD_DEFINITIONS = """
import atexit, gc, importlib.util, sys
import dagster  # imported before the code location, as in Dagster's processes
case = sys.argv[1]
importlib.util.find_spec("orchestration.definitions").loader.get_code("orchestration.definitions")  # compiled
if case == "collector off":
    gc.disable()
if case == "a module fails to import":
    sys.modules["orchestration.sensors"] = None
gc.collect()  # the few objects made before the load pauses the collector cannot start a pass
passes = []
gc.callbacks.append(lambda phase, info: passes.append(info["generation"]) if phase == "start" else None)
def at_exit():  # the objects left for the collector: not those made after the load
    print("frozen at exit:", len(gc.get_objects()) < len(made))
atexit.register(at_exit)
try:
    import orchestration.definitions
    print("loaded")
except ImportError:
    print("load failed")
print("passes while loading:", len(passes))
print("collector on:", gc.isenabled())
after_load = gc.get_freeze_count()
print("frozen after load:", after_load > 100_000)
made = [[i] for i in range(50_000)]
"""
FROZEN = ["frozen after load: True", "frozen at exit: True"]


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("as a process loads it", ["loaded", "passes while loading: 0", "collector on: True", *FROZEN]),
        # a caller that turned the collector off keeps it off
        ("collector off", ["loaded", "passes while loading: 0", "collector on: False", *FROZEN]),
        # a failed load leaves the collector on, as it found it
        ("a module fails to import", ["load failed", "passes while loading: 0", "collector on: True"]),
    ],
)
def test_the_collector_is_paused_while_the_definitions_load_and_skips_the_walk_at_exit(
    session_warehouse, case, expected
):
    """Python's collector does not walk the objects of dagster, dbt and pandas while the
    definitions load (no pass at all), is on again afterwards unless the caller had it off, and
    the objects a run makes are frozen at exit rather than walked (orchestration/definitions.py)."""
    proc = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", LOAD_DEFINITIONS, case],
        cwd=settings.PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    if case == "a module fails to import":
        lines = [line for line in lines if not line.startswith("frozen")]
    assert lines == expected
