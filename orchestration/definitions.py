"""The Dagster code location: every asset, check, job, schedule and resource."""

import dagster as dg
from dagster_dbt import DbtCliResource
from dagster_duckdb import DuckDBResource

from orchestration import settings
from orchestration.assets.dbt import dbt_project, warehouse_dbt_models
from orchestration.assets.publish import serving_publication
from orchestration.assets.raw import raw_assets
from orchestration.assets.reference import reference_assets
from orchestration.assets.surveillance import surveillance_assets, surveillance_checks
from orchestration.checks.raw_checks import raw_checks
from orchestration.jobs import daily_warehouse_schedule, warehouse_job
from orchestration.sensors import ems_inbox_sensor, ems_intake_job, overdose_spike_sensor


def build_definitions() -> dg.Definitions:
    """Definitions against the warehouse named by `WAREHOUSE_DB` when this is called."""
    return dg.Definitions(
        assets=[*raw_assets, *reference_assets, warehouse_dbt_models, *surveillance_assets, serving_publication],
        asset_checks=[*raw_checks, *surveillance_checks],
        jobs=[warehouse_job, ems_intake_job],
        sensors=[ems_inbox_sensor, overdose_spike_sensor],
        schedules=[daily_warehouse_schedule],
        resources={
            "duckdb": DuckDBResource(database=str(settings.export_warehouse_env())),
            "dbt": DbtCliResource(project_dir=dbt_project, dbt_executable=settings.dbt_executable()),
        },
        # DuckDB admits one writing process: run steps in the run's own process, in order.
        executor=dg.in_process_executor,
    )


defs = build_definitions()
