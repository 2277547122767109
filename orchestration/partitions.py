"""Partitioning shared by every time-partitioned asset (one definition, so jobs can mix them)."""

from __future__ import annotations

import dagster as dg

# Calls go back to 2013 on Open Baltimore; a partition is one local (America/New_York) day.
daily_partitions = dg.DailyPartitionsDefinition(start_date="2013-01-01", timezone="America/New_York")

# DuckDB admits one writing process. Every step that opens the working database claims a slot
# of this pool; the instance limits it to one (data/dagster_home/dagster.yaml, see Makefile),
# so steps of concurrent runs (the schedule and the EMS sensor) take turns instead of failing
# on the file lock. Within a run, the in-process executor already runs steps one at a time.
WRITER_POOL = "warehouse_writer"
