"""Raw ingestion assets: one per source table, keyed ["raw", <table>], loaded into schema `raw`.

Daily assets load a whole partition range per run: `make run` loads its two-plus years with one
generator call and one transaction, and a backfill runs 31 days at a time instead of a run a day.
"""

from datetime import date, timedelta

import dagster as dg
import pandas as pd
from dagster_duckdb import DuckDBResource
from pydantic import Field

from orchestration import settings
from orchestration.demo.calls import generate_calls
from orchestration.demo.naloxone import generate_naloxone
from orchestration.partitions import WRITER_POOL, daily_partitions
from orchestration.raw_tables import CALLS, NALOXONE, RawTable
from orchestration.sources import ems_inbox
from orchestration.sources.arcgis import ArcGISCallsClient, LayerRegistry
from orchestration.warehouse import partition_counts, replace_partitions


class SourceConfig(dg.Config):
    """Run-time choice of the feed's source; empty means the environment's setting."""

    source: str | None = Field(
        default=None, description="demo or real; defaults to <FEED>_SOURCE, then BALTIMORE_SOURCE, then demo"
    )


class CallsConfig(SourceConfig):
    """Calls: source, plus the ArcGIS layer registry overrides and paging concurrency."""

    layers: dict[str, str] = Field(
        default_factory=dict,
        description="year -> layer path under OPEN_BALTIMORE_ARCGIS_URL, overriding the built-in registry",
    )
    max_workers: int = Field(default=4, description="pages fetched at once per layer")


def resolve_source(feed: str, config: SourceConfig) -> str:
    if config.source:
        if config.source not in settings.SOURCE_CHOICES:
            raise dg.Failure(f"source must be one of {settings.SOURCE_CHOICES}, got {config.source!r}")
        return config.source
    return settings.source_for(feed)


def partition_days(context: dg.AssetExecutionContext) -> tuple[date, date]:
    """Inclusive first and last local day of the partitions this run materializes."""
    window = context.partition_time_window
    return window.start.date(), (window.end - timedelta(days=1)).date()


def local_day_of_epoch_ms(epoch_ms: pd.Series) -> pd.Series:
    """Local (America/New_York) calendar day of epoch-millisecond UTC instants."""
    return (
        pd.to_datetime(epoch_ms, unit="ms", utc=True)
        .dt.tz_convert(settings.LOCAL_TZ)
        .dt.tz_localize(None)
        .dt.normalize()
    )


def fetch_real_calls(context: dg.AssetExecutionContext, config: CallsConfig, start: date, end: date) -> pd.DataFrame:
    """Calls of start..end from Open Baltimore, a month at a time so a backfill logs its progress."""
    registry = LayerRegistry({int(year): path for year, path in config.layers.items()})
    client = ArcGISCallsClient(registry=registry, max_workers=config.max_workers)
    frames = []
    for layer, first, last in registry.slices(start, end):
        month_start = first
        while month_start <= last:
            month_end = min(last, (month_start.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1))
            part = client.fetch_slice(layer, month_start, month_end)
            # an unreadable timestamp cannot name its day: it stays with the slice's first day
            # and reaches quarantine as unparseable_timestamp
            days_ = local_day_of_epoch_ms(part["callDateTime"].astype("float64"))
            part["_partition_date"] = days_.fillna(pd.Timestamp(month_start))
            frames.append(part)
            context.log.info(f"{layer}: {month_start}..{month_end} fetched {len(part):,} calls")
            month_start = month_end + timedelta(days=1)
    return pd.concat(frames, ignore_index=True)


def load_ems_inbox(
    context: dg.AssetExecutionContext, duckdb: DuckDBResource, start: date, end: date
) -> dg.MaterializeResult:
    """Load the newest report of each day in the window from EMS_INBOX_DIR, then archive them.

    Every report is read and validated before anything is written, so a malformed file fails
    the run with nothing loaded. Days without a report keep what they had.
    """
    inbox = ems_inbox.inbox_dir()
    reports = ems_inbox.reports_for_days(inbox, start, end)
    frames = []
    for day, report in sorted(reports.items()):
        frame = ems_inbox.read_report(report.path)
        frame["_partition_date"] = pd.Timestamp(day)
        frame["_source"] = report.path.name
        frames.append(frame)
        context.log.info(f"{report.path.name}: {len(frame):,} administrations for {day}")
    frame = (
        pd.concat(frames, ignore_index=True)
        if frames
        else pd.DataFrame(columns=[*NALOXONE.source_columns, "_partition_date", "_source", "_source_row"])
    )
    if not reports:
        context.log.warning(f"no EMS reports in {inbox} for {start}..{end}: nothing loaded")
    with duckdb.get_connection() as conn:
        loaded = replace_partitions(conn, NALOXONE, frame, start, end, "real", days=sorted(reports))
    archived = [str(ems_inbox.archive_report(inbox, r).relative_to(inbox)) for r in reports.values()]
    return dg.MaterializeResult(
        metadata={
            "rows_loaded": loaded,
            "source": "real",
            "inbox": str(inbox),
            "reports": dg.MetadataValue.json({str(d): r.path.name for d, r in sorted(reports.items())}),
            "archived": dg.MetadataValue.json(archived),
        }
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
    pool=WRITER_POOL,
    partitions_def=daily_partitions,
    # a month a run: a year's backfill is 12 runs, and a failure costs at most a month
    backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=31),
    kinds={"python", "duckdb"},
    description="911 calls for service as the Open Baltimore ArcGIS layers return them, one row per call.",
)
def raw_calls_for_service(
    context: dg.AssetExecutionContext, config: CallsConfig, duckdb: DuckDBResource
) -> dg.MaterializeResult:
    start, end = partition_days(context)
    source = resolve_source("calls", config)
    if source == "demo":
        frame = generate_calls(start, end, settings.demo_seed())
        frame["_partition_date"] = local_day_of_epoch_ms(frame["callDateTime"])
        context.log.info(f"generated {len(frame):,} demo calls for {start}..{end}")
    else:
        frame = fetch_real_calls(context, config, start, end)
    with duckdb.get_connection() as conn:
        return _load_result(conn, CALLS, frame, start, end, source)


@dg.asset(
    key=["raw", "naloxone_administrations"],
    group_name="ingest",
    pool=WRITER_POOL,
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=31),
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
    source = resolve_source("ems", config)
    if source == "demo":
        frame = generate_naloxone(start, end, settings.demo_seed())
        frame["_partition_date"] = pd.to_datetime(frame["Incident Date"], format="%m/%d/%Y")
        context.log.info(f"generated {len(frame):,} demo naloxone administrations for {start}..{end}")
        with duckdb.get_connection() as conn:
            return _load_result(conn, NALOXONE, frame, start, end, source)
    return load_ems_inbox(context, duckdb, start, end)


raw_assets = [raw_calls_for_service, raw_naloxone_administrations]
