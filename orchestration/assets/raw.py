"""Raw ingestion assets: one per source table, keyed ["raw", <table>], loaded into schema `raw`.

Daily assets load a whole partition range per run: `make run` loads its two-plus years with one
generator call and one transaction, and a backfill runs 31 days at a time instead of a run a day.
"""

from datetime import date

import dagster as dg
import pandas as pd
from dagster_duckdb import DuckDBResource
from pydantic import Field

from orchestration import settings
from orchestration.partitions import WRITER_POOL, daily_partitions, partition_days
from orchestration.raw_tables import CALLS, NALOXONE, RawTable
from orchestration.resources import EmsInbox
from orchestration.source_config import SourceConfig, resolve_source
from orchestration.sources import ems_inbox as ems_reports
from orchestration.sources.arcgis import ArcGISCallsClient, LayerRegistry
from orchestration.sql_rules import ems_incident_day, local_day_of_epoch_ms
from orchestration.warehouse import partition_counts, replace_partitions


class CallsConfig(SourceConfig):
    """Calls: source, plus the ArcGIS layer registry overrides and paging concurrency."""

    layers: dict[str, str] = Field(
        default_factory=dict,
        description="year -> layer path under OPEN_BALTIMORE_ARCGIS_URL, overriding the built-in registry",
    )
    max_workers: int = Field(default=4, description="pages fetched at once per layer")


def fetch_real_calls(context: dg.AssetExecutionContext, config: CallsConfig, start: date, end: date) -> pd.DataFrame:
    """Calls of start..end from Open Baltimore, each with the local day it belongs to."""
    registry = LayerRegistry({int(year): path for year, path in config.layers.items()})
    client = ArcGISCallsClient(registry=registry, max_workers=config.max_workers)
    frame = client.fetch(
        start,
        end,
        progress=lambda layer, first, last, n: context.log.info(f"{layer}: {first}..{last} fetched {n:,} calls"),
    )
    # an unreadable timestamp cannot name its day: it stays with the window's first day and
    # reaches quarantine as unparseable_timestamp
    frame["_partition_date"] = local_day_of_epoch_ms(frame["callDateTime"]).fillna(pd.Timestamp(start))
    return frame


def load_ems_inbox(
    context: dg.AssetExecutionContext, duckdb: DuckDBResource, inbox: EmsInbox, start: date, end: date
) -> dg.MaterializeResult:
    """Load the newest report of each day in the window from EMS_INBOX_DIR, then archive them.

    Every report is read and validated before anything is written, so a malformed file fails
    the run with nothing loaded. Days without a report keep what they had.
    """
    folder = inbox.folder()
    reports = ems_reports.reports_for_days(folder, start, end)
    frames = []
    for day, report in sorted(reports.items()):
        frame = ems_reports.read_report(report.path)
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
        context.log.warning(f"no EMS reports in {folder} for {start}..{end}: nothing loaded")
    with duckdb.get_connection() as conn:
        loaded = replace_partitions(conn, NALOXONE, frame, start, end, "real", days=sorted(reports))
    archived = [str(ems_reports.archive_report(folder, r).relative_to(folder)) for r in reports.values()]
    return dg.MaterializeResult(
        metadata={
            "rows_loaded": loaded,
            "source": "real",
            "inbox": str(folder),
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
        from orchestration.demo.calls import generate_calls

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
    context: dg.AssetExecutionContext, config: SourceConfig, duckdb: DuckDBResource, ems_inbox: EmsInbox
) -> dg.MaterializeResult:
    start, end = partition_days(context)
    source = resolve_source("ems", config)
    if source == "demo":
        from orchestration.demo.naloxone import generate_naloxone

        frame = generate_naloxone(start, end, settings.demo_seed())
        frame["_partition_date"] = ems_incident_day(frame["Incident Date"])
        context.log.info(f"generated {len(frame):,} demo naloxone administrations for {start}..{end}")
        with duckdb.get_connection() as conn:
            return _load_result(conn, NALOXONE, frame, start, end, source)
    return load_ems_inbox(context, duckdb, ems_inbox, start, end)


raw_assets = [raw_calls_for_service, raw_naloxone_administrations]
