"""Materialize every asset for a range of days (surveillance for the last day), then summarize what was built.

This is what `make run` calls. The run goes through the Dagster instance in `DAGSTER_HOME`
(the Makefile points it at `data/dagster_home`), so `make dev` shows it in the UI afterwards.
"""

import sys
import time
import warnings
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from orchestration import settings
from orchestration.partitions import FIRST_DAY
from orchestration.sources import ems_inbox as ems_reports

SUMMARY_SCHEMAS = ("raw", "marts", "restricted", "quarantine")


class RangeRun:
    """The runs that materialized a range: everything over the range, then the newest day's surveillance.

    Scanning every day of a multi-year demo range would take half an hour; surveillance and
    publication run for the last day only (the daily schedule and the EMS sensor run them for
    their own day). A backfill of past analysis days materializes their partitions.
    """

    def __init__(self, results: list[dg.ExecuteInProcessResult]):
        self.results = results

    @property
    def success(self) -> bool:
        return all(r.success for r in self.results)

    @property
    def run_id(self) -> str:
        return ", ".join(r.run_id for r in self.results)

    def get_asset_check_evaluations(self):
        return [e for r in self.results for e in r.get_asset_check_evaluations()]

    def get_asset_materialization_events(self):
        return [e for r in self.results for e in r.get_asset_materialization_events()]

    def get_step_failure_events(self):
        return [e for r in self.results for e in r.get_step_failure_events()]


def run_range(start: date, end: date, instance: dg.DagsterInstance | None = None, log_level: str = "INFO") -> RangeRun:
    """`warehouse_job` over the partitions start..end, surveillance and publish for `end` only
    (one run when start == end, as the daily update is)."""
    from orchestration.assets.publish import PUBLICATION_KEY
    from orchestration.assets.surveillance import overdose_surveillance
    from orchestration.definitions import defs

    job = defs.resolve_job_def("warehouse_job")
    graph = defs.resolve_asset_graph()
    last_day_only = {*overdose_surveillance.keys, PUBLICATION_KEY}
    range_keys = [k for k in graph.materializable_asset_keys if k not in last_day_only]
    instance = instance or dg.DagsterInstance.get()
    run_config = {"loggers": {"console": {"config": {"log_level": log_level}}}}

    def execute(selection: list[dg.AssetKey], **partition: Any) -> dg.ExecuteInProcessResult:
        return job.execute_in_process(
            instance=instance, raise_on_error=False, run_config=run_config, asset_selection=selection, **partition
        )

    if start == end:  # one day (the daily update): one run of everything for that partition
        return RangeRun([execute([*range_keys, *last_day_only], partition_key=end.isoformat())])
    tags = {ASSET_PARTITION_RANGE_START_TAG: start.isoformat(), ASSET_PARTITION_RANGE_END_TAG: end.isoformat()}
    results = [execute(range_keys, tags=tags)]
    if results[0].success:
        results.append(execute(list(last_day_only), partition_key=end.isoformat()))
    return RangeRun(results)


# How long the summary waits for another run's writer step to let go of the warehouse file
# (DuckDB admits no reader beside a writer in another process). A writer step is seconds
# long; a whole ten-year build's dbt step a few minutes, beyond which the summary says so.
SUMMARY_WAIT_SECONDS = 300.0


def open_read_only(path: str, wait_seconds: float = SUMMARY_WAIT_SECONDS) -> duckdb.DuckDBPyConnection:
    """The warehouse, read-only, once no other process holds its write lock.

    Runs take turns through the writer pool, but the summary of `make run` reads outside any
    step: while a run launched from the UI is in a writer step, opening the file fails with
    DuckDB's "Could not set lock". Retried with growing pauses (0.1 s doubling, at most 2 s)
    until `wait_seconds`, saying once that it waits; then that error is raised, and the summary
    prints it."""
    deadline, pause, told = time.monotonic() + wait_seconds, 0.1, False
    while True:
        try:
            return duckdb.connect(path, read_only=True)
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or time.monotonic() + pause > deadline:
                raise
        if not told:
            print(f"  another run is writing {path}: waiting up to {wait_seconds:.0f} s to read it", flush=True)
            told = True
        time.sleep(pause)
        pause = min(pause * 2, 2.0)


def table_counts(path: str, schemas: tuple[str, ...] = SUMMARY_SCHEMAS) -> list[tuple[str, str, int]]:
    """(schema, table, rows) for every table in `schemas`."""
    with open_read_only(path) as conn:
        tables = conn.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_type = 'BASE TABLE' and table_schema in ({}) order by 1, 2".format(
                ", ".join("?" for _ in schemas)
            ),
            list(schemas),
        ).fetchall()
        return [(s, t, conn.execute(f'select count(*) from {s}."{t}"').fetchone()[0]) for s, t in tables]


def print_ems_intake(path: str, days: list[date]) -> None:
    """What the EMS reports put into the fact table and what they sent to quarantine, by day."""
    if not days:
        return
    with open_read_only(path) as conn:
        rows = conn.execute(
            """
            select r.day, r.raw_rows, coalesce(f.fact_rows, 0), coalesce(q.reasons, '')
            from (select _partition_date as day, count(*) as raw_rows from raw.naloxone_administrations
                  where list_contains(?::DATE[], _partition_date) group by 1) r
            left join (select partition_date as day, count(*) as fact_rows
                       from restricted.fct_naloxone_administrations group by 1) f using (day)
            left join (select day, string_agg(reason || ': ' || n, ', ') as reasons from (
                         select partition_date as day, quarantine_reason as reason, count(*) as n
                         from restricted.quarantine_naloxone_administrations group by 1, 2) group by 1) q using (day)
            order by 1
            """,
            [days],
        ).fetchall()
    print(f"\nEMS rows by incident day: {'day':<12}{'rows':>8}{'loaded':>8}  quarantined")
    for day, raw_rows, fact_rows, reasons in rows:
        print(f"                          {day!s:<12}{raw_rows:>8}{fact_rows:>8}  {reasons or '-'}")


def failure_lines(result: RangeRun) -> list[str]:
    """What failed and why, one step a line: the step, then the first line of its error."""
    lines = []
    for event in result.get_step_failure_events():
        error = event.event_specific_data.error if event.event_specific_data else None
        text = ""
        while error is not None and not text:
            text = (error.message or "").strip()
            error = error.cause
        text = text.splitlines()[-1] if text else "unknown error"
        lines.append(f"  {event.step_key}: {text[:400]}")
    return lines


def print_summary(path: Path, ems_days: list[date], result: RangeRun | None) -> None:
    """Every section guarded: after a failed run some tables or the serving file may not exist."""
    print(f"\nWarehouse: {path}")
    try:
        counts = table_counts(str(path)) if path.exists() else []
        print(f"{'table':<52}{'rows':>12}")
        for schema, table, rows in counts:
            print(f"{schema + '.' + table:<52}{rows:>12,}")
        if not counts:
            print("  (no tables yet)")
        if settings.source_for("ems") == "real" and ems_days:
            print_ems_intake(str(path), ems_days)
    except duckdb.Error as exc:
        print(f"  could not read the warehouse: {exc}")
    serving = settings.serving_path()
    try:
        with duckdb.connect(str(serving), read_only=True) as conn:
            pub_id, published_at = conn.execute("select publication_id, published_at from meta.publication").fetchone()
        kept = " (kept: this run did not publish)" if result is not None and not result.success else ""
        print(
            f"\nServing database for BI (read-only): {serving}{kept}\n  publication {pub_id} at {published_at}; "
            f"Parquet files in {serving.parent / 'parquet'}"
        )
    except (duckdb.Error, OSError):
        print("\nNo serving database was published yet (a blocking check failed or publish did not run).")


def main_run(start_text: str | None, end_text: str | None) -> int:
    """`make run`: materialize the range and print a summary; never a traceback, an exit code instead."""
    try:
        start, end = settings.demo_range()
        start = date.fromisoformat(start_text) if start_text else start
        end = date.fromisoformat(end_text) if end_text else end
        last = settings.today_local() - timedelta(days=1)
        if end > last:
            raise settings.SettingError(f"the last day {end} has no partition yet: the newest is yesterday, {last}")
        if start < date.fromisoformat(FIRST_DAY) or end < start:
            raise settings.SettingError(f"{start}..{end} is not a range of days from {FIRST_DAY} to {last}")
        warnings.filterwarnings("ignore", category=dg.BetaWarning)
        ems_days: list[date] = []
        if settings.source_for("ems") == "real":
            inbox = settings.ems_inbox_path()
            reports = ems_reports.all_reports(inbox)
            spans = [ems_reports.report_span(r) for r in reports]
            ems_days = sorted(
                {first + timedelta(days=i) for first, last in spans for i in range((last - first).days + 1)}
            )
            print(f"EMS_SOURCE=real: {len(reports)} report(s) in {inbox}, rows for {len(ems_days)} incident day(s)")
            if ems_days:
                start = min(start, ems_days[0])
                if ems_days[-1] > end:
                    print(f"  rows after {end} (the newest partition) stay in the inbox until their day has ended")
    except (ValueError, ems_reports.EmsFileError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    path = settings.warehouse_path()
    print(f"Materializing every asset for {start}..{end} into {path} ...", flush=True)
    began = time.monotonic()
    try:
        result = run_range(start, end)
    except Exception as exc:  # the run could not even start (definitions, instance): say so plainly
        print(f"\nThe run could not start: {type(exc).__name__}: {exc}", file=sys.stderr)
        print_summary(path, [], None)
        return 1
    elapsed = time.monotonic() - began
    checks = result.get_asset_check_evaluations()
    failed = [c for c in checks if not c.passed]
    print(f"\nRun {result.run_id} {'succeeded' if result.success else 'FAILED'} in {elapsed:.0f} s")
    print(f"Asset checks: {len(checks) - len(failed)} passed, {len(failed)} failed")
    for check in failed:
        print(f"  FAILED {check.asset_key.to_user_string()} :: {check.check_name}")
    if not result.success:
        print("What failed, and why (loads that fail are not committed: the previous rows are kept):")
        print("\n".join(failure_lines(result)) or "  (no step failure recorded)")
    print_summary(path, ems_days, result)
    print("\nOpen the Dagster UI on the same definitions and run history with `make dev`.")
    return 0 if result.success else 1
