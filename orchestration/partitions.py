"""Partitioning shared by every time-partitioned asset (one definition, so jobs can mix them)."""

from __future__ import annotations

import dagster as dg

# Calls go back to 2013 on Open Baltimore; a partition is one local (America/New_York) day.
daily_partitions = dg.DailyPartitionsDefinition(start_date="2013-01-01", timezone="America/New_York")
