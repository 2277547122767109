"""Raw ingestion assets: one per source table, keyed ["raw", <table>], loaded into schema `raw`.

Daily assets load a partition range in one run (BackfillPolicy.single_run) so a two-year
backfill is one generator call and one transaction, not 700 runs.
"""

from datetime import date, timedelta

import dagster as dg
import pandas as pd
from dagster_duckdb import DuckDBResource
from pydantic import Field

from orchestration import settings
from orchestration.demo.calls import generate_calls
from orchestration.demo.health import generate_health_indicators
from orchestration.demo.naloxone import generate_naloxone
from orchestration.demo.reference import neighborhood_frame
from orchestration.partitions import daily_partitions
from orchestration.raw_tables import CALLS, HEALTH, NALOXONE, NEIGHBORHOODS, RawTable
from orchestration.warehouse import partition_counts, replace_partitions, replace_table


class SourceConfig(dg.Config):
    """Run-time choice of the feed's source; empty means the environment's setting."""

    source: str | None = Field(
        default=None, description="demo or real; defaults to <FEED>_SOURCE, then BALTIMORE_SOURCE, then demo"
    )


def _resolve_source(feed: str, config: SourceConfig) -> str:
    if config.source:
        if config.source not in settings.SOURCE_CHOICES:
            raise dg.Failure(f"source must be one of {settings.SOURCE_CHOICES}, got {config.source!r}")
        return config.source
    return settings.source_for(feed)


def partition_days(context: dg.AssetExecutionContext) -> tuple[date, date]:
    """Inclusive first and last local day of the partitions this run materializes."""
    window = context.partition_time_window
    return window.start.date(), (window.end - timedelta(days=1)).date()


def real_source_unavailable(feed: str) -> dg.Failure:
    return dg.Failure(
        f"{feed}: the 'real' source connector is not part of this build; set {feed.upper()}_SOURCE=demo",
    )


def local_day_of_epoch_ms(epoch_ms: pd.Series) -> pd.Series:
    """Local (America/New_York) calendar day of epoch-millisecond UTC instants."""
    return (
        pd.to_datetime(epoch_ms, unit="ms", utc=True)
        .dt.tz_convert(settings.LOCAL_TZ)
        .dt.tz_localize(None)
        .dt.normalize()
    )


def _load_result(
    conn, table: RawTable, frame: pd.DataFrame, start: date, end: date, source: str
) -> dg.MaterializeResult:
    loaded = replace_partitions(conn, table, frame, start, end, source)
    per_day = partition_counts(conn, table, start, end)
    n_days = (end - start).days + 1
    counts = list(per_day.values()) or [0]
    return dg.MaterializeResult(
        metadata={
            # one day: the partition's row count; a range run reports what it loaded in all
            ("dagster/row_count" if n_days == 1 else "rows_loaded"): dg.MetadataValue.int(loaded),
            "source": source,
            "window": f"{start}..{end}",
            "days_in_window": n_days,
            "days_with_rows": len(per_day),
            "min_rows_per_day": min(counts),
            "max_rows_per_day": max(counts),
            "table": table.qualified,
        }
    )


@dg.asset(
    key=["raw", "calls_for_service"],
    group_name="ingest",
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    kinds={"python", "duckdb"},
    description="911 calls for service as the Open Baltimore ArcGIS layers return them, one row per call.",
)
def raw_calls_for_service(
    context: dg.AssetExecutionContext, config: SourceConfig, duckdb: DuckDBResource
) -> dg.MaterializeResult:
    start, end = partition_days(context)
    source = _resolve_source("calls", config)
    if source != "demo":
        raise real_source_unavailable("calls")
    frame = generate_calls(start, end, settings.demo_seed())
    frame["_partition_date"] = local_day_of_epoch_ms(frame["callDateTime"])
    context.log.info(f"generated {len(frame):,} demo calls for {start}..{end}")
    with duckdb.get_connection() as conn:
        return _load_result(conn, CALLS, frame, start, end, source)


@dg.asset(
    key=["raw", "naloxone_administrations"],
    group_name="ingest",
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    kinds={"python", "duckdb"},
    description=(
        "EMS naloxone administrations, one row per patient, in the layout of BCHD's Daily Naloxone "
        "Report. Contains protected health information: restricted."
    ),
)
def raw_naloxone_administrations(
    context: dg.AssetExecutionContext, config: SourceConfig, duckdb: DuckDBResource
) -> dg.MaterializeResult:
    start, end = partition_days(context)
    source = _resolve_source("ems", config)
    if source != "demo":
        raise real_source_unavailable("ems")
    frame = generate_naloxone(start, end, settings.demo_seed())
    frame["_partition_date"] = pd.to_datetime(frame["Incident Date"], format="%m/%d/%Y")
    context.log.info(f"generated {len(frame):,} demo naloxone administrations for {start}..{end}")
    with duckdb.get_connection() as conn:
        return _load_result(conn, NALOXONE, frame, start, end, source)


@dg.asset(
    key=["raw", "neighborhoods"],
    group_name="ingest",
    kinds={"python", "duckdb"},
    description="Neighborhood reference: neighborhood -> CSA -> ZIP and police district, with a point and population.",
)
def raw_neighborhoods(config: SourceConfig, duckdb: DuckDBResource) -> dg.MaterializeResult:
    source = _resolve_source("health", config)
    if source != "demo":
        raise real_source_unavailable("health")
    frame = neighborhood_frame()
    with duckdb.get_connection() as conn:
        n = replace_table(conn, NEIGHBORHOODS, frame, source)
    return dg.MaterializeResult(
        metadata={"dagster/row_count": n, "csas": int(frame["csa"].nunique()), "source": source}
    )


@dg.asset(
    key=["raw", "csa_health_indicators"],
    group_name="ingest",
    kinds={"python", "duckdb"},
    description="Health and socioeconomic indicators by CSA, in the layout of BCHD's Neighborhood Health Profile.",
)
def raw_csa_health_indicators(config: SourceConfig, duckdb: DuckDBResource) -> dg.MaterializeResult:
    source = _resolve_source("health", config)
    if source != "demo":
        raise real_source_unavailable("health")
    frame = generate_health_indicators(settings.demo_seed())
    with duckdb.get_connection() as conn:
        n = replace_table(conn, HEALTH, frame, source)
    return dg.MaterializeResult(metadata={"dagster/row_count": n, "source": source})


raw_assets = [raw_calls_for_service, raw_naloxone_administrations, raw_neighborhoods, raw_csa_health_indicators]
