"""Partitioning shared by every time-partitioned asset (one definition, so jobs can mix them)."""

from __future__ import annotations

from datetime import date, timedelta

import dagster as dg

from orchestration import settings

# Calls go back to 2013 on Open Baltimore; a partition is one local day.
FIRST_DAY = "2013-01-01"
daily_partitions = dg.DailyPartitionsDefinition(start_date=FIRST_DAY, timezone=settings.LOCAL_TZ_NAME)

# DuckDB admits one writing process. Every step that opens the working database claims a slot
# of this pool; the instance limits it to one (data/dagster_home/dagster.yaml, see Makefile),
# so steps of concurrent runs (the schedule and the EMS sensor) take turns instead of failing
# on the file lock. Within a run, the in-process executor already runs steps one at a time.
WRITER_POOL = "warehouse_writer"


def partition_days(context: dg.AssetExecutionContext) -> tuple[date, date]:
    """Inclusive first and last local day of the partitions this run materializes."""
    window = context.partition_time_window
    return window.start.date(), (window.end - timedelta(days=1)).date()
