"""The Dagster code location: every asset, check, job, schedule, sensor and resource.

Built once per process. The stores are resources whose paths default to the settings when a
run starts (see `orchestration.resources`); `WAREHOUSE_DB` is pinned here to its absolute path,
once, so dbt opens the same file as Dagster.
"""

import gc

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

_built = [*raw_assets, *reference_assets, warehouse_dbt_models, *surveillance_assets]

defs = dg.Definitions(
    assets=[*_built, build_serving_publication(_built)],
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

# The definitions (and the dagster, dbt and pandas modules under them) live as long as the
# process. Frozen, Python's collector no longer walks them on every full collection, nor once
# more at exit: about 2 s of a one-day update's process (docs/performance.md).
gc.freeze()
