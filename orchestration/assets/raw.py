"""Raw ingestion assets: one per source table, keyed ["raw", <table>], loaded into schema `raw`.

Calls are fetched (or generated) by `landing/calls_for_service`, which does not hold the
warehouse's writer slot, and loaded by `raw/calls_for_service`; EMS reports are read from the
inbox by `raw/naloxone_administrations`. Every load is staged, audited by its blocking checks and
committed in one transaction only when they pass (`load_audited`). Daily assets load a whole
partition range per run: `make run` loads its years in one run, and a backfill runs 31 days at a
time instead of a run a day.
"""

from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import pandas as pd
from dagster_duckdb import DuckDBResource
from pydantic import Field

from orchestration import landing, settings
from orchestration.checks.raw_checks import (
    CALLS_SPEC,
    NALOXONE_SPEC,
    RawCheckSpec,
    audit_loaded,
    audit_staged,
    check_specs,
)
from orchestration.partitions import WRITER_POOL, daily_partitions, partition_days
from orchestration.raw_tables import CALLS, RawTable
from orchestration.resources import EmsInbox
from orchestration.source_config import LoadConfig, SourceConfig, resolve_source
from orchestration.sources import ems_inbox as ems_reports
from orchestration.sources.arcgis import ArcGISCallsClient, LayerRegistry
from orchestration.sources.http import SourceError
from orchestration.sql_rules import ems_incident_day, local_day_of_epoch_ms
from orchestration.warehouse import ensure_table, load_rows, load_transaction, partition_counts, replace_rows


class CallsConfig(SourceConfig):
    """Calls: source, plus the ArcGIS layer registry overrides and paging concurrency."""

    layers: dict[str, str] = Field(
        default_factory=dict,
        description="year -> layer path under OPEN_BALTIMORE_ARCGIS_URL, overriding the built-in registry",
    )
    max_workers: int = Field(default=4, description="pages fetched at once per layer")
    discover_layers: bool = Field(
        default=True, description="read yearly layers from the ArcGIS services directory (<base>?f=json)"
    )


def fetch_real_calls(
    context: dg.AssetExecutionContext, config: CallsConfig, start: date, end: date
) -> tuple[pd.DataFrame, list[str]]:
    """Calls of start..end from Open Baltimore, each with the local day it belongs to, and the layers read."""
    client = ArcGISCallsClient(max_workers=config.max_workers)
    discovered: dict[int, str] = {}
    if config.discover_layers:
        try:
            discovered = client.discover_layers()
        except SourceError as exc:  # the directory is a convenience: the built-in table still works
            context.log.warning(f"the ArcGIS services directory could not be read ({exc}); using the built-in layers")
    client.registry = LayerRegistry({int(year): path for year, path in config.layers.items()}, discovered)
    layers = sorted({layer for layer, _, _ in client.registry.slices(start, end)})
    frame = client.fetch(
        start,
        end,
        progress=lambda layer, first, last, n: context.log.info(f"{layer}: {first}..{last} fetched {n:,} calls"),
    )
    # an unreadable timestamp cannot name its day: it stays with the window's first day and
    # reaches quarantine as unparseable_timestamp
    frame["_partition_date"] = local_day_of_epoch_ms(frame["callDateTime"]).fillna(pd.Timestamp(start))
    return frame, layers


class EmsConfig(SourceConfig, LoadConfig):
    """EMS: source, plus what the inbox sensor knows about the reports it requested."""

    arrivals: dict[str, int] = Field(
        default_factory=dict,
        description="file name -> arrival order as the inbox sensor saw the files (else: modification time)",
    )
    far_days: int = Field(
        default=7, description="rows whose incident date is more than this many days from their report's day warn"
    )


def load_ems_inbox(
    context: dg.AssetExecutionContext,
    duckdb: DuckDBResource,
    inbox: EmsInbox,
    config: EmsConfig,
    start: date,
    end: date,
) -> Iterator:
    """Load every report's rows whose incident dates fall in the window; archive the reports once committed.

    Every report (pending and archived) is read, the latest delivery of each incident kept, and the
    rows staged and audited before anything is written: a malformed file or a failing blocking
    check fails the run with nothing loaded and the files left in the inbox. Days of the window
    that no report covers keep what they had.
    """
    folder = inbox.folder()
    reports = ems_reports.all_reports(folder, config.arrivals)
    read = {r.path: ems_reports.report_rows(r) for r in reports}  # each file read once
    frame = ems_reports.rows_for_window(list(read.values()), start, end)
    days = sorted(set(pd.to_datetime(frame["_partition_date"]).dt.date)) if len(frame) else []
    pending = [r for r in reports if r.path.parent == folder]
    spans = {r.name: ems_reports.span_of(read[r.path], r) for r in pending}
    within = [r for r in pending if start <= spans[r.name][0] and spans[r.name][1] <= end]
    for report in pending:
        if report not in within:
            first, last = spans[report.name]
            context.log.warning(
                f"{report.name}: rows for {first}..{last} reach outside {start}..{end}; it stays pending"
            )
    lag = (pd.to_datetime(frame["_partition_date"]) - pd.to_datetime(frame["_report_date"])).abs().dt.days
    far = int((lag > config.far_days).sum()) if len(frame) else 0
    if far:
        context.log.warning(
            f"{far} row(s) have an incident date more than {config.far_days} days from their report's day "
            "(loaded on their incident dates)"
        )
    if not reports:
        context.log.warning(f"no EMS reports in {folder}: nothing loaded")
    with duckdb.get_connection() as conn:
        yield from load_audited(
            context,
            conn,
            NALOXONE_SPEC,
            frame,
            start,
            end,
            "real",
            days,
            config.allow_empty_days,
            origin=f"{len(reports)} report(s) in {folder}",
            metadata={
                "inbox": str(folder),
                "reports_read": len(reports),
                "reports_delivering_rows": int(frame["_source"].nunique()) if len(frame) else 0,
                "rows_far_from_report_date": far,
            },
        )
    # only after the commit: a refused file stays in the inbox for a person to fix
    archived = [str(ems_reports.archive_report(folder, r).relative_to(folder)) for r in within]
    if archived:
        context.log.info(f"archived {archived}")


def incoming_days(rows: pd.DataFrame | landing.Landed) -> set[date]:
    """Days a load has rows for."""
    if isinstance(rows, landing.Landed):
        return rows.days
    return set(pd.to_datetime(rows["_partition_date"]).dt.date) if len(rows) else set()


def empty_days(conn, table: RawTable, incoming: set[date], days: list[date]) -> list[str]:
    """Days of the load that arrive with no rows although the table knows rows for them, or the same
    weekday over the 28 days before had rows: an empty answer there is a broken feed, not a quiet day."""
    missing = sorted(d for d in days if d not in incoming)
    if not missing:
        return []
    rows = conn.execute(
        f"""
        with days as (select unnest(?::DATE[]) as day),
        daily as (select _partition_date as day, count(*) as n from {table.qualified} group by 1)
        select d.day, coalesce(max(e.n), 0) as existing, coalesce(median(h.n), 0) as weekday_median
        from days d
        left join daily e on e.day = d.day
        left join daily h on isodow(h.day) = isodow(d.day) and h.day >= d.day - interval 28 day and h.day < d.day
        group by d.day order by d.day""",
        [missing],
    ).fetchall()
    return [
        f"{day}: 0 rows where the table has {existing} and the same weekday had a median of {median:g}"
        for day, existing, median in rows
        if existing or median >= 1
    ]


def load_audited(
    context: dg.AssetExecutionContext,
    conn,
    spec: RawCheckSpec,
    rows: pd.DataFrame | landing.Landed,
    start: date,
    end: date,
    source: str,
    days: list[date] | None,
    allow_empty_days: bool,
    origin: str,
    metadata: dict | None = None,
) -> Iterator:
    """Replace the load's days with its rows (a frame, or a landed Parquet window DuckDB reads
    itself) in one transaction, run the blocking checks on exactly those rows, and commit only if
    all pass.

    Yields the check results and the materialization; raises `dg.Failure` (having changed nothing
    in `raw`) when a blocking check fails or the load would empty days that had rows.
    """
    table = spec.table
    ensure_table(conn, table)
    covered = days if days is not None else [start + timedelta(days=i) for i in range((end - start).days + 1)]
    emptied = empty_days(conn, table, incoming_days(rows), covered)
    if emptied and not allow_empty_days:
        raise dg.Failure(
            f"{table.qualified}: {origin} returned no rows for {len(emptied)} day(s) that should have some; "
            f"nothing was loaded and the previous rows are kept (set allow_empty_days to load them empty on purpose): "
            + "; ".join(emptied[:3]),
            metadata={"empty_days": dg.MetadataValue.json(emptied[:31])},
        )
    # one transaction: the load's days are replaced, judged, and kept only if every blocking check passes
    with load_transaction(conn):
        rows_in = rows.relation if isinstance(rows, landing.Landed) else rows
        loaded = replace_rows(conn, table, rows_in, start, end, source, days)
        results = audit_staged(conn, spec, load_rows(table, start, end, days))
        yield from results
        failed = [r for r in results if not r.passed]
        if failed:  # raising rolls the load back
            raise dg.Failure(
                f"{table.qualified}: blocking check(s) {[r.check_name for r in failed]} failed on the {loaded:,} rows "
                f"from {origin}; nothing was loaded and the previous rows are kept",
                metadata={
                    r.check_name: dg.MetadataValue.json(
                        {
                            "failing_count": r.metadata["failing_count"].value,
                            "examples": r.metadata["examples"].value if "examples" in r.metadata else [],
                        }
                    )
                    for r in failed
                },
            )
    yield from audit_loaded(conn, spec, start, end)
    per_day = partition_counts(conn, table, start, end)
    n_days = (end - start).days + 1
    counts = list(per_day.values()) or [0]
    yield dg.MaterializeResult(
        metadata={
            # one day: the partition's row count; a range run reports what it loaded in all
            ("dagster/row_count" if n_days == 1 else "rows_loaded"): dg.MetadataValue.int(loaded),
            "source": source,
            "window": f"{start}..{end}",
            "days_in_window": n_days,
            "days_replaced": len(covered),
            "days_with_rows": len(per_day),
            "min_rows_per_day": min(counts),
            "max_rows_per_day": max(counts),
            "table": table.qualified,
            **(metadata or {}),
        }
    )


@dg.asset(
    key=["landing", "calls_for_service"],
    group_name="ingest",
    partitions_def=daily_partitions,
    # a month a run: a year's backfill is 12 runs, and a failure costs at most a month
    backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=31),
    kinds={"python", "parquet"},
    description="911 calls fetched from the Open Baltimore ArcGIS layers (or generated in demo mode), landed as "
    "Parquet without holding the warehouse's writer slot, so a slow server never blocks other writers.",
)
def landing_calls_for_service(
    context: dg.AssetExecutionContext, config: CallsConfig, duckdb: DuckDBResource
) -> dg.MaterializeResult:
    start, end = partition_days(context)
    source = resolve_source("calls", config)
    if source == "demo":
        from orchestration.demo.calls import iter_call_tables

        chunks = iter_call_tables(start, end, settings.demo_seed())  # Arrow tables with _partition_date
        origin = "the demo generator"
        path, rows = landing.land_chunks(Path(duckdb.database), CALLS.name, chunks, start, end, source, origin)
        context.log.info(f"generated {rows:,} demo calls for {start}..{end}")
    else:
        frame, layers = fetch_real_calls(context, config, start, end)
        origin = "the ArcGIS layer(s) " + ", ".join(layers)
        path, rows = landing.land_chunks(Path(duckdb.database), CALLS.name, [frame], start, end, source, origin)
    return dg.MaterializeResult(
        metadata={
            "rows": rows,
            "source": source,
            "origin": origin,
            "path": str(path),
            "window": f"{start}..{end}",
        }
    )


@dg.asset(
    key=["raw", "calls_for_service"],
    group_name="ingest",
    pool=WRITER_POOL,
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=31),
    deps=[landing_calls_for_service],
    kinds={"python", "duckdb"},
    check_specs=check_specs(CALLS_SPEC),
    description="911 calls for service as the Open Baltimore ArcGIS layers return them, one row per call.",
)
def raw_calls_for_service(context: dg.AssetExecutionContext, config: LoadConfig, duckdb: DuckDBResource) -> Iterator:
    start, end = partition_days(context)
    try:
        window = landing.landed(Path(duckdb.database), CALLS.name, start, end)
    except landing.LandingError as exc:
        raise dg.Failure(str(exc)) from exc
    with duckdb.get_connection() as conn:
        yield from load_audited(
            context,
            conn,
            CALLS_SPEC,
            window,
            start,
            end,
            window.source,
            None,
            config.allow_empty_days,
            window.origin,
        )
    landing.consume(window)


@dg.asset(
    key=["raw", "naloxone_administrations"],
    group_name="ingest",
    pool=WRITER_POOL,
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=31),
    kinds={"python", "duckdb"},
    check_specs=check_specs(NALOXONE_SPEC),
    description=(
        "EMS naloxone administrations, one row per patient, in the layout of BCHD's Daily Naloxone "
        "Report. Contains protected health information: restricted."
    ),
)
def raw_naloxone_administrations(
    context: dg.AssetExecutionContext, config: EmsConfig, duckdb: DuckDBResource, ems_inbox: EmsInbox
) -> Iterator:
    start, end = partition_days(context)
    source = resolve_source("ems", config)
    if source == "demo":
        from orchestration.demo.naloxone import generate_naloxone

        frame = generate_naloxone(start, end, settings.demo_seed())
        frame["_partition_date"] = ems_incident_day(frame["Incident Date"])
        frame["_report_date"] = frame["_partition_date"]  # a demo day's report holds that day
        context.log.info(f"generated {len(frame):,} demo naloxone administrations for {start}..{end}")
        with duckdb.get_connection() as conn:
            yield from load_audited(
                context,
                conn,
                NALOXONE_SPEC,
                frame,
                start,
                end,
                source,
                None,
                config.allow_empty_days,
                "the demo generator",
            )
    else:
        yield from load_ems_inbox(context, duckdb, ems_inbox, config, start, end)


raw_assets = [landing_calls_for_service, raw_calls_for_service, raw_naloxone_administrations]
