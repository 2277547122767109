"""Write-audit-publish: copy the audited marts into a separate, read-only serving database.

dbt writes the working database; only after every blocking check upstream passed does this
asset build a *new* serving file (plus Parquet files of every mart) and atomically rename it
over the old one. A reader holding the old file keeps reading it; a reader opening the path
gets either the old or the new publication, never a half-written one. A failed check leaves
the last good serving file untouched.
"""

import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
from dagster._core.definitions.assets.graph.asset_graph import AssetGraph
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecord
from dagster_duckdb import DuckDBResource

from orchestration import settings
from orchestration.partitions import WRITER_POOL
from orchestration.resources import ServingStore
from orchestration.warehouse import setting

PUBLISHED_SCHEMA = "marts"  # BI sees the marts, never raw, staging, restricted or quarantine rows
PUBLICATION_KEY = dg.AssetKey(["serving", "publication"])


def published_keys(assets: Sequence[dg.AssetsDefinition]) -> list[dg.AssetKey]:
    """What is published: every asset whose key starts with the published schema."""
    return sorted({key for a in assets for key in a.keys if key.path[0] == PUBLISHED_SCHEMA}, key=str)


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=settings.PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], cwd=settings.PROJECT_ROOT, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return settings.git_commit_fallback()


class PublishRefused(dg.Failure):
    """Publishing would expose data that did not pass its blocking checks."""


def checks_upstream(assets: Sequence[dg.AssetsDefinition], targets: list[dg.AssetKey]) -> list[dg.AssetCheckSpec]:
    """Every check (with its blocking flag) on `targets` and on everything upstream of them.

    Dagster's own graph of the definitions walks the ancestors (the code location's Definitions
    are not built yet when this asset is)."""
    graph = AssetGraph.from_assets(list(assets))
    ancestors = set(targets).union(*(graph.get_ancestor_asset_keys(t) for t in targets))
    keys = [k for k in graph.asset_check_keys if k.asset_key in ancestors]
    return sorted((graph.get_check_spec(k) for k in keys), key=lambda s: (s.asset_key.to_user_string(), s.name))


class _PendingRuns:
    """Which planned check executions belong to a run that has not touched the checked asset yet.

    Dagster records a check as "planned" when a run is created, long before the run's step
    executes it. A run launched beside this one (two schedules, or the UI) therefore leaves
    planned records that are newer than the evaluations describing the data now in the
    warehouse, while its steps wait for the writer slot this publication holds. Such a record says
    nothing about the data, so the audit looks past it to the execution before it. A planned
    record is passed over only while its run is still going and none of that run's steps that
    execute the check or write the checked asset has started: a started step may have rewritten
    the table (dbt's results reach Dagster only when its step ends), and a run that ended without
    the evaluation (failed, cancelled, killed) leaves a check that never ran, which blocks.
    """

    def __init__(self, instance: dg.DagsterInstance):
        self.instance = instance
        self._runs: dict[str, tuple[bool, set[str], dict[dg.AssetKey, set[str]]]] = {}

    def _run(self, run_id: str) -> tuple[bool, set[str], dict[dg.AssetKey, set[str]]]:
        """(in progress, started step keys, step keys writing each asset) of one run, read once."""
        if run_id not in self._runs:
            run = self.instance.get_run_by_id(run_id)
            if run is None or run.is_finished or run.execution_plan_snapshot_id is None:
                self._runs[run_id] = (False, set(), {})
            else:
                started = {
                    r.event_log_entry.step_key
                    for r in self.instance.get_records_for_run(
                        run_id, of_type=dg.DagsterEventType.STEP_START, limit=None
                    ).records
                }
                writers: dict[dg.AssetKey, set[str]] = {}
                plan = self.instance.get_execution_plan_snapshot(run.execution_plan_snapshot_id)
                for step in plan.steps:
                    for output in step.outputs:
                        if output.properties is not None and output.properties.asset_key is not None:
                            writers.setdefault(output.properties.asset_key, set()).add(step.key)
                self._runs[run_id] = (True, started, writers)
        return self._runs[run_id]

    def not_started(self, record: AssetCheckExecutionRecord) -> bool:
        """True when `record` is a planned execution whose run has not reached it (see above)."""
        if record.status.value != "PLANNED" or record.event is None or record.event.dagster_event is None:
            return False
        in_progress, started, writers = self._run(record.run_id)
        steps = {record.event.dagster_event.step_key} | writers.get(record.key.asset_key, set())
        return in_progress and not (steps & started)


def latest_executions(instance: dg.DagsterInstance, keys: list[dg.AssetCheckKey]) -> dict:
    """Per check key, the latest execution that describes the data now in the warehouse.

    That is Dagster's latest execution, unless it is only planned by a run that has not reached
    it yet (`_PendingRuns`); then the one before it, and so on."""
    storage = instance.event_log_storage
    records = dict(storage.get_latest_asset_check_execution_by_key(keys))
    pending = _PendingRuns(instance)
    for key, record in records.items():
        while record is not None and pending.not_started(record):
            earlier = storage.get_asset_check_execution_history(key, limit=1, cursor=record.id)
            record = earlier[0] if earlier else None
        records[key] = record
    return records


def audit_checks(instance: dg.DagsterInstance, specs: list[dg.AssetCheckSpec]) -> list[dict]:
    """The latest result of every check in `specs`; refuse on a blocking failure.

    A blocking check (dbt `error` severity, blocking Python checks) that failed, or never ran,
    stops the publication. Warnings are published with the data, in `meta.publication`. The
    checks are those of the whole code location upstream of the marts, not only the run's
    selection, so a run that selects only the publication is audited against everything too.
    """
    if not specs:
        raise PublishRefused("no checks upstream of the publication: nothing could be audited")
    records = latest_executions(instance, [s.key for s in specs])
    results, refusals = [], []
    for spec in specs:
        record = records.get(spec.key)
        # a check planned in a run that ended before it ran has a record but no evaluation
        finished = record is not None and record.status.value in ("SUCCEEDED", "FAILED")
        evaluation = record.evaluation if finished else None
        passed = getattr(evaluation, "passed", None)
        severity = evaluation.severity.value if evaluation is not None else None
        asset = spec.asset_key.to_user_string()
        results.append(
            {"asset": asset, "check": spec.name, "passed": passed, "severity": severity, "blocking": spec.blocking}
        )
        if spec.blocking and passed is not True:
            refusals.append(f"{asset}:{spec.name} ({'never ran' if passed is None else 'failed'})")
    if refusals:
        raise PublishRefused(
            f"{len(refusals)} blocking check(s) did not pass; the serving database was not changed",
            metadata={"refused_because": dg.MetadataValue.json(refusals[:50])},
        )
    return results


def build_serving_publication(audited: Sequence[dg.AssetsDefinition]) -> dg.AssetsDefinition:
    """The publication asset over `audited` (every asset and check definition of the code location).

    It depends on the published marts (`published_keys`), so a new mart is always built before
    it is published, and audits every check upstream of them.
    """
    marts = published_keys(audited)
    specs = checks_upstream(audited, marts)

    @dg.asset(
        key=PUBLICATION_KEY,
        group_name="publish",
        pool=WRITER_POOL,
        deps=marts,
        kinds={"duckdb", "parquet"},
        description="The audited marts, published to the read-only serving database and Parquet for BI.",
    )
    def serving_publication(
        context: dg.AssetExecutionContext, duckdb: DuckDBResource, serving: ServingStore
    ) -> dg.MaterializeResult:
        return publish(context, duckdb, serving.database(), audit_checks(context.instance, specs))

    return serving_publication


def sql_string(text: str | Path) -> str:
    """A SQL string literal (a serving path may contain a quote)."""
    return "'" + str(text).replace("'", "''") + "'"


class ServingLayout:
    """Where publications live, and the one pointer that says which is current.

    `<folder>/publications/<id>/` holds a publication's `warehouse.duckdb` and `parquet/`;
    `<folder>/current` is a symlink to one of them, replaced atomically, so the database and its
    Parquet files switch together. The paths BI tools use are fixed links through it:
    `<folder>/<name>` (SERVING_DB) -> `current/<name>` and `<folder>/parquet` -> `current/parquet`.
    A reader that resolves `current` once sees one publication, whole.
    """

    def __init__(self, target: Path):
        self.target = target
        self.folder = target.parent
        self.publications = self.folder / "publications"
        self.current = self.folder / "current"
        self.parquet = self.folder / "parquet"

    def building(self, publication_id: str) -> Path:
        return self.publications / f"{publication_id}.building"

    def current_id(self) -> str | None:
        return self.current.resolve().name if self.current.is_symlink() else None

    def current_folder(self) -> Path | None:
        """The current publication's folder, if there is one."""
        folder = self.current.resolve() if self.current.is_symlink() else None
        return folder if folder is not None and folder.is_dir() else None

    def remove_stale(self) -> list[str]:
        """Folders of earlier publish runs that crashed before switching (one publisher at a time:
        the writer pool)."""
        removed = []
        for stale in self.publications.glob("*.building"):
            shutil.rmtree(stale, ignore_errors=True)
            removed.append(stale.name)
        for stale in self.folder.glob(f".{self.target.name}.*.building"):
            stale.unlink(missing_ok=True)
            removed.append(stale.name)
        return removed

    def _link(self, link: Path, to: str) -> None:
        """Make `link` a symlink to `to` atomically (replacing a file, or a link, in one rename)."""
        if link.is_symlink() and os.readlink(link) == to:
            return
        temp = link.with_name(f".{link.name}.{uuid.uuid4().hex[:8]}.link")
        temp.symlink_to(to)
        if link.is_dir() and not link.is_symlink():
            shutil.rmtree(link)
        os.replace(temp, link)

    def switch(self, built: Path, publication_id: str) -> Path:
        """Move the built publication into place and point `current` at it: the one atomic step."""
        final = self.publications / publication_id
        os.replace(built, final)
        self._link(self.current, f"publications/{publication_id}")
        self._link(self.target, f"current/{self.target.name}")
        self._link(self.parquet, "current/parquet")
        return final

    def keep_recent(self, keep: int = 2, min_age: timedelta = timedelta(hours=1)) -> list[str]:
        """Drop old publications: never the current one, the one before it, or any published within
        `min_age` (a BI query may still be reading it). A publication's id starts with its UTC time."""
        current = self.current_id()
        done = sorted(p for p in self.publications.iterdir() if p.is_dir() and not p.name.endswith(".building"))
        now = datetime.now(UTC)
        removed = []
        for old in done[:-keep]:
            try:
                published = datetime.strptime(old.name[:15], "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
            except ValueError:
                continue  # not a publication folder: leave it alone
            if old.name != current and now - published > min_age:
                shutil.rmtree(old, ignore_errors=True)
                removed.append(old.name)
        for legacy in self.folder.glob("parquet-*"):  # the layout before publications/ (one link per file)
            shutil.rmtree(legacy, ignore_errors=True)
            removed.append(legacy.name)
        return removed


# Tables with this column are published day by day: only days whose rows differ from the previous
# publication are rewritten in its database, and their Parquet is a folder of one file per year,
# of which only the years holding such days are written again (the others are hard links).
DAY_COLUMN = "partition_date"
# A table without it but with one of these date columns (the first it has, in this order) is
# compared and rewritten in the publication's database by that column's values, its slices: the
# daily, weekly and monthly marts gain a day or change a recent period on each update, and
# rewriting a slice costs less than the whole table (0.66 s against 1.6 s for the seven such
# marts at ten years). Its Parquet stays one file, written again when any slice changed.
# Other tables are compared whole. A table that did not change is neither copied nor written to
# Parquet again (its file is a hard link).
SLICE_COLUMNS = (DAY_COLUMN, "day", "period_start", "month_start", "analysis_date")


def table_columns(conn, catalog: str, table: str) -> list[tuple[str, str]]:
    """(name, type) of a published table's columns, in order."""
    return conn.execute(
        "select column_name, data_type from information_schema.columns "
        "where table_catalog = ? and table_schema = ? and table_name = ? order by ordinal_position",
        [catalog, PUBLISHED_SCHEMA, table],
    ).fetchall()


# Per-day row counts and row-hash sums of each published table (one row with a NULL day for a
# table not published by day), kept in the publication's database. The next publication starts
# as a copy of that file, so it reads there what its copy holds instead of hashing every
# published row again (about 1.2 s for 13 million calls). After a sync the published rows
# equal the working ones, so the working side's summary is stored. (Should a DuckDB upgrade
# change `hash`, every day and table compares as changed once and is rewritten.)
DAY_SUMMARIES = "meta.day_summaries"


def slice_column(columns: list[tuple[str, str]]) -> str | None:
    """The column a table is compared and rewritten by (`SLICE_COLUMNS`, a DATE), or None: whole."""
    dates = {name for name, data_type in columns if data_type == "DATE"}
    return next((name for name in SLICE_COLUMNS if name in dates), None)


def summarize_days(conn, relation: str, into: str, column: str | None = DAY_COLUMN) -> None:
    """`into` (a temporary table): each value of `column` (day), with the row count and sum of
    row hashes of its rows in `relation` (a sum, unlike a XOR, does not cancel repeated rows);
    one row with a NULL day for the whole table when `column` is None (none for an empty table,
    either way)."""
    day = f'"{column}"' if column else "cast(null as date)"
    conn.execute(
        f"create or replace temp table {into} as "
        f"select {day} as day, count(*) as n, sum(hash(t)) as h from {relation} as t group by 1"
    )


def published_summary(conn, table: str, published: str, column: str | None = DAY_COLUMN) -> str:
    """The summary of the published copy (a relation): the one stored with it, or computed when
    none is (a publication written before summaries were kept, or before they covered every
    table). A stored summary of an empty table has no row either: it is computed again, cheaply.
    A summary stored by another column (a whole-table one, before the table was sliced) has a
    NULL day, so it differs and the table is rewritten whole once."""
    stored = f"(select day, n, h from pub.{DAY_SUMMARIES} where table_name = {sql_string(table)})"
    if conn.execute(f"select count(*) from {stored}").fetchone()[0]:
        return stored
    summarize_days(conn, published, "_published_days", column)
    return "_published_days"


def changed_days(conn, source: str, published: str) -> list[date] | None:
    """Days whose summaries (`summarize_days`) differ, or None when a NULL day differs."""
    rows = conn.execute(
        f"""
        select coalesce(a.day, b.day) from {source} as a full join {published} as b on a.day is not distinct from b.day
        where a.n is distinct from b.n or a.h is distinct from b.h
        """
    ).fetchall()
    days = [d for (d,) in rows]
    return None if any(d is None for d in days) else days


@dataclass(frozen=True)
class WorkingTable:
    """A working mart as the publication compares it: its columns, the column it is compared and
    rewritten by (`slice_column`), and the temporary table holding its summary (`summarize_days`)."""

    columns: list[tuple[str, str]]
    column: str | None
    summary: str


def summarize_working(conn, tables: list[str]) -> dict[str, WorkingTable]:
    """Each working mart's `WorkingTable`. It reads the working database only, so it runs while
    the previous publication's file is being copied (`copied_in_background`)."""
    catalog = conn.execute("select current_database()").fetchone()[0]
    working = {}
    for index, table in enumerate(tables):
        columns = table_columns(conn, catalog, table)
        column = slice_column(columns)
        working[table] = WorkingTable(columns, column, f"_working_days_{index}")
        summarize_days(conn, f"{PUBLISHED_SCHEMA}.{table}", working[table].summary, column)
    return working


def sync_table(conn, table: str, previous: set[str], working: WorkingTable) -> tuple[dict, int]:
    """Make the publication's copy of `table` equal to the working one, rewriting as little as
    possible: nothing when its columns and summary did not change; else, when its columns did
    not change, only its changed days (DAY_COLUMN) or slices (`slice_column`); else the whole
    table. Returns what was done (for metadata and the Parquet step: `by_day` tables have a
    Parquet file per year, the others one file, written again when `rewritten`) and the
    published copy's row count."""
    source, published = f"{PUBLISHED_SCHEMA}.{table}", f"pub.{PUBLISHED_SCHEMA}.{table}"
    columns, column = working.columns, working.column
    by_day = column == DAY_COLUMN
    change: dict = {"by_day": by_day, "rewritten": True}
    if table in previous and table_columns(conn, "pub", table) == columns:
        days = changed_days(conn, working.summary, published_summary(conn, table, published, column))
        if column is None:
            if days == []:
                change = {"by_day": False, "rewritten": False}
        elif days is not None:
            if days:
                conn.execute("create or replace temp table _changed_days as select unnest(?::DATE[]) as day", [days])
                in_changed = f'"{column}" in (select day from _changed_days)'
                conn.execute(f"delete from {published} where {in_changed}")
                conn.execute(f"insert into {published} select * from {source} where {in_changed}")
            if by_day:
                change = {"by_day": True, "days_rewritten": len(days), "years": sorted({d.year for d in days})}
            else:
                change = {"by_day": False, "rewritten": bool(days), "sliced_by": column, "slices_rewritten": len(days)}
    source_rows = conn.execute(f"select coalesce(sum(n), 0) from {working.summary}").fetchone()[0]
    if change.get("rewritten") and "sliced_by" not in change:
        conn.execute(f"create or replace table {published} as select * from {source}")
    else:
        # The working side was compared with the sums stored when the serving file was last
        # written, not with the file: a row added to or deleted from it by other means would
        # stay. The row counts tell; the table is then rewritten whole.
        published_rows = conn.execute(f"select count(*) from {published}").fetchone()[0]
        if published_rows != source_rows:
            conn.execute(f"create or replace table {published} as select * from {source}")
            change = {
                "by_day": by_day,
                "rewritten": True,
                "repaired": f"the published copy had {published_rows} rows for {source_rows} working rows",
            }
    conn.execute(f"delete from pub.{DAY_SUMMARIES} where table_name = ?", [table])
    conn.execute(f"insert into pub.{DAY_SUMMARIES} select {sql_string(table)}, day, n, h from {working.summary}")
    return change, source_rows


def write_parquet(conn, table: str, change: dict, folder: Path, previous_folder: Path | None) -> None:
    """A table's Parquet: one file, or for a table published by day a folder of one file per
    year (`<table>/year=<year>/data.parquet`, readable as a hive-partitioned dataset). The file
    of a table that did not change, and of a year with no changed day, is a hard link to the
    previous publication's."""
    published = f"pub.{PUBLISHED_SCHEMA}.{table}"
    # A file's rows need no particular order (none is promised to readers); keeping the table's
    # made DuckDB's Parquet writer wait on its threads: ten years of the fact by year 8.1-10.4 s
    # against 6.6-6.7 s (docs/performance.md, seventeenth round).
    with setting(conn, "preserve_insertion_order", False):
        _write_parquet(conn, table, published, change, folder, previous_folder)


def _write_parquet(conn, table: str, published: str, change: dict, folder: Path, previous_folder: Path | None) -> None:
    if not change["by_day"]:
        target = folder / (table + ".parquet")
        old = previous_folder / target.name if previous_folder else None
        if not change["rewritten"] and old is not None and old.exists():
            os.link(old, target)
        else:
            conn.execute(f"copy {published} to {sql_string(target)} (format parquet)")
        return
    changed = None if change.get("rewritten") else set(change["years"])
    years = [y for (y,) in conn.execute(f"select distinct year({DAY_COLUMN}) from {published} order by 1").fetchall()]
    for year in years:
        target = folder / table / f"year={year}" / "data.parquet"
        target.parent.mkdir(parents=True)
        old = previous_folder / table / f"year={year}" / "data.parquet" if previous_folder else None
        if changed is not None and year not in changed and old is not None and old.exists():
            os.link(old, target)
            continue
        # a range, not year(): DuckDB skips the row groups of other years by their min/max
        day_filter = (
            f"{DAY_COLUMN} >= date '{int(year)}-01-01' and {DAY_COLUMN} < date '{int(year) + 1}-01-01'"
            if year is not None
            else f"{DAY_COLUMN} is null"
        )
        conn.execute(f"copy (select * from {published} where {day_filter}) to {sql_string(target)} (format parquet)")


@contextmanager
def copied_in_background(source: Path | None, target: Path) -> Iterator[Callable[[], None]]:
    """Copy the file `source` (None, or a missing file: nothing to copy) to `target` in a thread
    of its own; yields the function that waits for the copy and raises its error.

    The previous publication's file is the ten-year serving database, 730 MB: copying it took
    0.2-1.9 s, nearly all in the kernel (`sendfile`), which needs no Python or DuckDB. Summarizing
    the working marts meanwhile (about 1.1 s) needs DuckDB, not the file. However the block ends,
    the copy has ended when it is left: a failed publication removes its folder after that."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="publication-copy") as pool:
        copying = pool.submit(shutil.copyfile, source, target) if source is not None and source.exists() else None
        yield lambda: None if copying is None else copying.result()


def publish(
    context: dg.AssetExecutionContext, duckdb: DuckDBResource, target: Path, checks: list[dict]
) -> dg.MaterializeResult:
    """Write a new serving database and Parquet folder of the audited marts and switch to them.

    The new database starts as a copy of the current publication's file (a file copy, not a
    row copy, made while the working marts are summarized) and is brought up to date table by
    table (`sync_table`); Parquet files of tables and years that did not change are hard links.
    A publication is still a complete, separate folder: the previous one is never written to.
    """
    layout = ServingLayout(target)
    layout.publications.mkdir(parents=True, exist_ok=True)
    stale = layout.remove_stale()
    if stale:
        context.log.warning(f"removed leftovers of earlier interrupted publications: {stale}")
    publication_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]
    building = layout.building(publication_id)
    building.mkdir()
    database = building / target.name
    parquet_dir = building / "parquet"
    published_at = datetime.now(UTC)
    previous = layout.current_folder()
    previous_database = previous / target.name if previous is not None else None
    try:
        with (
            copied_in_background(previous_database, database) as copied,
            duckdb.get_connection() as conn,
        ):
            tables = [
                t
                for (t,) in conn.execute(
                    "select table_name from information_schema.tables where table_schema = ? "
                    "and table_type = 'BASE TABLE' and table_catalog = current_database() order by 1",
                    [PUBLISHED_SCHEMA],
                ).fetchall()
            ]
            partitions = {
                table: dict(
                    zip(
                        ("first_day", "last_day", "days"),
                        map(
                            str,
                            conn.execute(
                                f"select min(_partition_date), max(_partition_date), count(distinct _partition_date) "
                                f"from raw.{table}"
                            ).fetchone(),
                        ),
                        strict=True,
                    )
                )
                for table in ("calls_for_service", "naloxone_administrations")
            }
            working = summarize_working(conn, tables)
            copied()
            conn.execute(f"attach {sql_string(database)} as pub")
            try:
                conn.execute(f"create schema if not exists pub.{PUBLISHED_SCHEMA}")
                conn.execute("create schema if not exists pub.meta")
                conn.execute(
                    f"create table if not exists pub.{DAY_SUMMARIES} "
                    "(table_name varchar, day date, n bigint, h hugeint)"
                )
                kept = {
                    t
                    for (t,) in conn.execute(
                        "select table_name from information_schema.tables where table_catalog = 'pub' "
                        "and table_schema = ?",
                        [PUBLISHED_SCHEMA],
                    ).fetchall()
                }
                for gone in sorted(kept - set(tables)):
                    conn.execute(f"drop table pub.{PUBLISHED_SCHEMA}.{gone}")
                    conn.execute(f"delete from pub.{DAY_SUMMARIES} where table_name = ?", [gone])
                counts, changes = {}, {}
                for table in tables:
                    # the count: the published copy's, equal to the working one's once synced
                    changes[table], counts[table] = sync_table(conn, table, kept, working[table])
                    if "repaired" in changes[table]:
                        context.log.warning(
                            f"{table}: {changes[table]['repaired']} (changed outside the publication): rewritten whole"
                        )
                conn.execute("""create or replace table pub.meta.publication (
                    publication_id varchar, published_at timestamptz, git_commit varchar,
                    partitions json, row_counts json, check_results json)""")
                conn.execute(
                    "insert into pub.meta.publication values (?, ?, ?, ?, ?, ?)",
                    [
                        publication_id,
                        published_at,
                        git_commit(),
                        json.dumps(partitions),
                        json.dumps(counts),
                        json.dumps(checks),
                    ],
                )
                parquet_dir.mkdir()
                previous_parquet = previous / "parquet" if previous is not None else None
                for table in tables:
                    write_parquet(conn, table, changes[table], parquet_dir, previous_parquet)
                (parquet_dir / "_publication.json").write_text(
                    json.dumps({"publication_id": publication_id, "row_counts": counts})
                )
                conn.execute("checkpoint pub")
            finally:
                conn.execute("detach pub")
        layout.switch(building, publication_id)  # the one atomic step: database and Parquet together
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)  # never the current publication
        raise
    removed = layout.keep_recent()
    warnings = [c for c in checks if c["passed"] is False]
    context.log.info(f"published {len(tables)} marts to {target} as {publication_id}")
    return dg.MaterializeResult(
        metadata={
            "publication_id": publication_id,
            "published_at": published_at.isoformat(),
            "path": str(target),
            "parquet": str(layout.parquet),
            "tables": len(tables),
            "dagster/row_count": sum(counts.values()),
            "row_counts": dg.MetadataValue.json(counts),
            "changes": dg.MetadataValue.json(changes),
            "partitions": dg.MetadataValue.json(partitions),
            "checks_audited": len(checks),
            "warnings_published": dg.MetadataValue.json(warnings),
            "old_publications_removed": dg.MetadataValue.json(removed),
        }
    )
