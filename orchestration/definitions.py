"""The Dagster code location: every asset, check, job, schedule, sensor and resource.

Built once per process. The stores are resources whose paths default to the settings when a
run starts (see `orchestration.resources`); `WAREHOUSE_DB` is pinned here to its absolute path,
once, so dbt opens the same file as Dagster.

Loading it imports dagster-dbt with dbt, pandas and the project's modules: a few hundred
thousand objects that live as long as the process. Python's cyclic garbage collector would walk
all of them at every full collection while they are being made, and walk everything a run made
once more when the process exits, only for the process to end. So the collector is paused while
the definitions load (the command line's imports 2.46 -> 1.92 s); what they hold is then
frozen, never walked again; and at exit whatever is left is frozen too (a one-day update's exit
0.58-0.88 -> 0.11-0.17 s; docs/performance.md, twenty-fifth round). Objects are still
freed when their last reference goes; only reference cycles among frozen objects wait for the
process's end, as dbt's own launcher leaves them (orchestration/dbt_launcher.py).
"""

import atexit
import gc
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import dagster as dg


def _definitions() -> "dg.Definitions":
    """The Definitions (imported here so that they load while the collector is paused)."""
    import dagster as dg
    from dagster_dbt import DbtCliResource

    from orchestration import settings
    from orchestration.assets.dbt import dbt_project, warehouse_dbt_models
    from orchestration.assets.publish import build_serving_publication
    from orchestration.assets.raw import raw_assets
    from orchestration.assets.reference import reference_assets
    from orchestration.assets.surveillance import surveillance_assets
    from orchestration.jobs import daily_warehouse_schedule, ems_intake_job, warehouse_job
    from orchestration.resources import AlertStore, EmsInbox, ServingStore, WarehouseDuckDB
    from orchestration.sensors import ems_inbox_sensor, overdose_spike_sensor

    settings.export_warehouse_path()
    settings.ensure_event_batching()  # a range run's partition events reach the event log as batches

    built = [*raw_assets, *reference_assets, warehouse_dbt_models, *surveillance_assets]
    return dg.Definitions(
        assets=[*built, build_serving_publication(built)],
        jobs=[warehouse_job, ems_intake_job],
        sensors=[ems_inbox_sensor, overdose_spike_sensor],
        schedules=[daily_warehouse_schedule],
        resources={
            # resolved when a run starts, so a test or a run can point WAREHOUSE_DB elsewhere
            "duckdb": WarehouseDuckDB(
                database=dg.EnvVar("WAREHOUSE_DB"), connection_config={"memory_limit": settings.duckdb_memory_limit()}
            ),
            # dbt's project and flags; the build itself runs in the run's process (dbt_in_process.py)
            "dbt": DbtCliResource(
                project_dir=dbt_project,
                dbt_executable=settings.dbt_executable(),
                global_config_flags=["--log-level-file", settings.dbt_file_log_level()],
            ),
            "serving": ServingStore(),
            "alerts": AlertStore(),
            "ems_inbox": EmsInbox(),
        },
        # DuckDB admits one writing process: run steps in the run's own process, in order.
        executor=dg.in_process_executor,
    )


_collecting = gc.isenabled()
gc.disable()
try:
    defs = _definitions()
finally:
    gc.freeze()
    if _collecting:
        gc.enable()
atexit.register(gc.freeze)
