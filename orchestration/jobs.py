"""The jobs: the warehouse job with its daily schedule, and the EMS intake job the inbox sensor starts."""

import dagster as dg

NALOXONE_KEY = dg.AssetKey(["raw", "naloxone_administrations"])

# Every asset, raw to marts: a partition (or range) of the raw feeds, then dbt on top. Both jobs
# take their partitions (orchestration.partitions.daily_partitions) from their assets.
warehouse_job = dg.define_asset_job(
    "warehouse_job",
    selection=dg.AssetSelection.all(),
    description="Load the raw feeds for the selected days, then build every dbt model and run its tests.",
)

# 02:00 America/New_York (the partitions' time zone) every day: yesterday's partition and
# everything downstream of it.
daily_warehouse_schedule = dg.build_schedule_from_partitioned_job(
    warehouse_job,
    name="daily_warehouse_schedule",
    hour_of_day=2,
    minute_of_hour=0,
    default_status=dg.DefaultScheduleStatus.RUNNING,
)

ems_intake_job = dg.define_asset_job(
    "ems_intake_job",
    selection=dg.AssetSelection.assets(NALOXONE_KEY).downstream(),
    description="Load one day's EMS naloxone report from the inbox and rebuild everything downstream.",
)
