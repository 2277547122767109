"""The dbt project as Dagster assets: models, seeds and snapshots, with dbt tests as asset checks."""

import json
import subprocess
from collections import Counter
from collections.abc import Iterator, Mapping
from datetime import date
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    PARTITION_NAME_TAG,
)
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject, dbt_assets
from dagster_dbt.asset_utils import get_asset_check_key_for_test
from dagster_duckdb import DuckDBResource
from duckdb import Error as DuckDBError
from pydantic import Field

from orchestration import dbt_in_process, settings
from orchestration.assets import failing_rows, incremental_code, rebuilt_days, unchanged_tests
from orchestration.partitions import WRITER_POOL


def manifest_is_stale(project: DbtProject) -> bool:
    """True when the manifest is missing or older than any file of the dbt project."""
    if not project.manifest_path.exists():
        return True
    built = project.manifest_path.stat().st_mtime
    root = project.project_dir
    sources = [
        root / "dbt_project.yml",
        *[p for d in ("models", "macros", "seeds", "tests") for p in (root / d).rglob("*")],
    ]
    return any(p.is_file() and p.stat().st_mtime > built for p in sources)


def prepare_manifest(project: DbtProject) -> None:
    """`dbt parse` when the manifest is missing or older than any file of the project.

    Instead of `DbtProject.prepare_if_dev`, which runs `dbt` from PATH: `.venv/bin/dagster dev`
    without an activated virtualenv has none. This runs the dbt installed beside this Python,
    in `dagster dev` and outside it (make run, tests, CI) alike.
    """
    if manifest_is_stale(project):
        subprocess.run(
            [settings.dbt_executable(), "parse", "--quiet", "--profiles-dir", str(project.profiles_dir)],
            cwd=project.project_dir,
            check=True,
        )


dbt_project = DbtProject(project_dir=settings.DBT_PROJECT_DIR, profiles_dir=settings.DBT_PROJECT_DIR)
prepare_manifest(dbt_project)

# dbt folder (first level under models/, or the schema for nested ones) -> Dagster asset group
_GROUPS = {"staging": "staging", "intermediate": "intermediate", "quarantine": "quarantine"}


class WarehouseTranslator(DagsterDbtTranslator):
    """Asset keys are [schema, relation name], so the graph reads like the warehouse does.

    Sources keep the ["raw", <table>] keys declared in their yml `meta`, which connects the dbt
    graph to the ingest assets.
    """

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return super().get_asset_key(dbt_resource_props)
        name = dbt_resource_props.get("alias") or dbt_resource_props["name"]
        return dg.AssetKey([dbt_resource_props["schema"], name])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        if dbt_resource_props["resource_type"] == "seed":
            return "reference"
        schema = dbt_resource_props.get("schema")
        if schema == "restricted":
            return "restricted"
        fqn = dbt_resource_props.get("fqn", [])
        folder = fqn[1] if len(fqn) > 2 else None
        return _GROUPS.get(folder or "", "marts")


def relation_row_counts(conn: duckdb.DuckDBPyConnection, relations: dict[str, str]) -> dict[str, int]:
    """Row counts of `{unique_id: schema.table}`, read once dbt has closed the database.

    DuckDB admits one writing process: counting while dbt still runs would fail on the lock.
    """
    counts: dict[str, int] = {}
    for unique_id, relation in relations.items():
        try:
            counts[unique_id] = conn.execute(f"select count(*) from {relation}").fetchone()[0]
        except duckdb.Error:
            continue  # not built in this run (failed or not selected)
    return counts


# Relations earlier versions built under other names or in another layout. dbt never drops a
# relation it no longer builds, so a warehouse built before a rename keeps the old copy (for the
# EMS ones, patient data outside the restricted schema). They are dropped before dbt starts:
# a dbt run-start hook cannot do it, since dbt rolls a project hook's transaction back.
LEGACY_RELATIONS = (
    ("quarantine", "naloxone_administrations", "table"),
    ("intermediate", "int_naloxone_administrations__located", "table"),
    ("staging", "stg_ems__naloxone_administrations", "view"),
    ("staging", "stg_health__csa_indicators", "view"),
)
# (schema, table, column): a table holding the column has an older layout that an incremental
# build cannot change (on_schema_change: fail); it is dropped and rebuilt in full. The validated
# calls once carried every staging column (object_id among them), then every column the fact and
# the quarantine read (call_key among them); they now keep the decision only.
LEGACY_LAYOUTS = (
    ("intermediate", "int_calls_for_service__validated", "object_id"),
    ("intermediate", "int_calls_for_service__validated", "call_key"),
)


def drop_legacy_relations(database: str) -> list[str]:
    """Drop what `LEGACY_RELATIONS` and `LEGACY_LAYOUTS` name, if present; returns what was dropped."""
    if not Path(database).exists():
        return []
    dropped = []
    with duckdb.connect(database) as conn:
        present = {
            (s, t, kind)
            for s, t, kind in conn.execute(
                "select table_schema, table_name, case when table_type = 'VIEW' then 'view' else 'table' end "
                "from information_schema.tables"
            ).fetchall()
        }
        stale = [r for r in LEGACY_RELATIONS if r in present]
        for schema, table, column in LEGACY_LAYOUTS:
            if (schema, table, "table") in stale:
                continue  # an older layout still: already dropped once
            if conn.execute(
                "select count(*) from information_schema.columns "
                "where table_schema = ? and table_name = ? and column_name = ?",
                [schema, table, column],
            ).fetchone()[0]:
                stale.append((schema, table, "table"))
        for schema, table, kind in stale:
            conn.execute(f'drop {kind} if exists {schema}."{table}"')
            dropped.append(f"{schema}.{table}")
    return dropped


class DbtBuildConfig(dg.Config):
    """How the dbt build runs."""

    full_refresh: bool = Field(
        default=False,
        description="rebuild the incremental models from every raw row (dbt --full-refresh) instead of the run's days",
    )
    rerun_unchanged_tests: bool = Field(
        default=False,
        description="run every selected dbt test, also those whose inputs have not changed since they passed",
    )


class ReusedTests:
    """Which selected dbt tests this run reuses (assets/unchanged_tests.py), and their results."""

    def __init__(self, database: str, context: dg.AssetExecutionContext, rerun: bool, manifest: Mapping[str, Any]):
        self.database = database
        self.names = {uid: node["name"] for uid, node in manifest["nodes"].items()}
        inputs = unchanged_tests.DbtTestInputs(manifest, (dbt_project.project_dir / "dbt_project.yml").read_text())
        self.unit_tests = inputs.unit_tests()
        units = manifest.get("unit_tests", {})
        # selected by package and name (a unit test's name is unique only within its model)
        name_counts = Counter(units[uid]["name"] for uid in self.unit_tests)
        self.names.update(
            {uid: f"unit_test:{units[uid]['package_name']}.{units[uid]['name']}" for uid in self.unit_tests}
        )
        self.tests = [uid for uid, node in manifest["nodes"].items() if node["resource_type"] == "test"]
        self.tests += self.unit_tests
        translator = WarehouseTranslator()
        selected = set(context.selected_asset_check_keys)
        keys = {
            uid: get_asset_check_key_for_test(manifest, translator, uid, dbt_project) for uid in inputs.candidates()
        }
        self.keys = {uid: key for uid, key in keys.items() if key is not None and key in selected}
        reusable_units = [uid for uid in self.unit_tests if name_counts[units[uid]["name"]] == 1]
        with duckdb.connect(database) as conn:
            self.fingerprints = inputs.fingerprints(conn, [*self.keys, *reusable_units])
            previous = unchanged_tests.recorded(conn)
        self.reused = (
            {}
            if rerun
            else {
                uid: previous[uid][1]
                for uid, fingerprint in self.fingerprints.items()
                if uid in previous and previous[uid][0] == fingerprint
            }
        )

    def exclude_args(self) -> list[str]:
        """One `--exclude` value naming every reused test (dagster-dbt reads one value per flag)."""
        return ["--exclude", " ".join(sorted(self.names[uid] for uid in self.reused))] if self.reused else []

    def results(self) -> Iterator[dg.AssetCheckResult]:
        """A passed check for each reused data test (a unit test is no asset check)."""
        for uid, passed_at in self.reused.items():
            key = self.keys.get(uid)
            if key is None:
                continue
            yield dg.AssetCheckResult(
                asset_key=key.asset_key,
                check_name=key.name,
                passed=True,
                metadata={
                    "unique_id": uid,
                    "reused": f"not run again: inputs unchanged since it passed at {passed_at:%Y-%m-%d %H:%M %Z}",
                },
            )

    def record(self, passed: set[str], statuses: Mapping[str, str]) -> None:
        """Fingerprints of the tests that ran and passed; tests that ran and did not pass, and
        tests the project no longer has, are forgotten. `passed`: the data tests whose checks
        passed; `statuses`: dbt's status of each node it ran (a unit test passed as "pass"; one
        that did not run, its model not selected or the build stopped before it, is left as it was)."""
        ok, not_ok = unchanged_tests.outcomes(self.fingerprints, self.reused, self.unit_tests, passed, statuses)
        with duckdb.connect(self.database) as conn:
            unchanged_tests.record(conn, {uid: self.fingerprints[uid] for uid in ok}, not_ok, known=self.tests)


def partition_window(tags: Mapping[str, str]) -> tuple[date, date] | None:
    """The days of the run (its partition, or its range of partitions), or None for an unpartitioned run.

    The dbt assets are not partitioned themselves (they are one build over the whole warehouse),
    so the window comes from the run's tags: a daily schedule run carries its partition, a range
    run (make run, a backfill) its first and last partition.
    """
    if tags.get(PARTITION_NAME_TAG):
        day = date.fromisoformat(tags[PARTITION_NAME_TAG])
        return day, day
    start, end = tags.get(ASSET_PARTITION_RANGE_START_TAG), tags.get(ASSET_PARTITION_RANGE_END_TAG)
    if start and end:
        return date.fromisoformat(start), date.fromisoformat(end)
    return None


# The run's days, read by the incremental models' pre-hook (macros/incremental_days.sql,
# `run_window_relation`). A table rather than `--vars`: vars that change every day make dbt
# re-parse the whole project on every run (about 4 s), a table is read only when the models run.
RUN_WINDOW_TABLE = "incremental_state.run_window"


def write_run_window(database: str, window: tuple[date, date] | None) -> None:
    """Replace the run window's days (none: the models rebuild only what changed since their last build)."""
    schema = RUN_WINDOW_TABLE.split(".")[0]
    with duckdb.connect(database) as conn:
        conn.execute(f"create schema if not exists {schema}")
        conn.execute(f"create table if not exists {RUN_WINDOW_TABLE} (day date)")
        conn.execute(f"delete from {RUN_WINDOW_TABLE}")
        if window is not None:
            conn.execute(
                f"insert into {RUN_WINDOW_TABLE} "
                "select cast(unnest(generate_series(?::date, ?::date, interval 1 day)) as date)",
                list(window),
            )


def build_args(full_refresh: bool) -> list[str]:
    """`dbt build` arguments (the window goes through `RUN_WINDOW_TABLE`, not the command line).

    The models also rebuild days loaded since their last build and days whose record ids changed
    (macros/incremental_days.sql), so a run without a window is still correct, only broader.
    """
    return ["build", "--full-refresh"] if full_refresh else ["build"]


def _unique_id(event: Any) -> str | None:
    """The dbt unique id dagster-dbt puts in an event's metadata, if any."""
    value = getattr(event, "metadata", {}).get("unique_id")
    return value.value if hasattr(value, "value") else value


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    dagster_dbt_translator=WarehouseTranslator(),
    pool=WRITER_POOL,
)
def warehouse_dbt_models(
    context: dg.AssetExecutionContext, dbt: DbtCliResource, duckdb: DuckDBResource, config: DbtBuildConfig
) -> Iterator[Any]:
    """`dbt build` of the selected models: seeds, models and their tests, in dependency order; the
    incremental models rebuild the run's days."""
    window = partition_window(context.run.tags)
    dropped = drop_legacy_relations(duckdb.database)
    if dropped:
        context.log.info(f"dropped relations of an earlier layout (rebuilt by this build): {dropped}")
    write_run_window(duckdb.database, window)
    manifest = json.loads(dbt_project.manifest_path.read_text())
    with duckdb.get_connection() as conn:  # what the incremental models' rows are computed by
        incremental_code.write_code_digests(conn, incremental_code.code_digests(manifest))
    reuse = ReusedTests(
        duckdb.database, context, rerun=config.full_refresh or config.rerun_unchanged_tests, manifest=manifest
    )
    if reuse.reused:
        context.log.info(f"{len(reuse.reused)} dbt tests not run again: their inputs are unchanged since they passed")
    try:
        build = dbt_in_process.run_build(
            dbt,
            build_args(config.full_refresh) + reuse.exclude_args(),
            context=context,
            target_path=settings.dbt_target_path(),
        )
    finally:
        try:
            write_run_window(duckdb.database, None)  # a later dbt run by hand is not widened by it
        except DuckDBError as exc:  # never hide why the step failed behind this
            context.log.warning(f"could not clear {RUN_WINDOW_TABLE}: {exc}")
    events = build.events
    nodes = build.manifest["nodes"]
    relations = {
        uid: f'{node["schema"]}."{node.get("alias") or node["name"]}"'
        for uid, node in nodes.items()
        if node["resource_type"] in ("model", "seed")
    }
    evaluated = {_unique_id(e): e.passed for e in events if isinstance(e, dg.AssetCheckResult)}
    passed = {uid for uid, ok in evaluated.items() if ok}
    counts: dict[str, int] = {}
    kept: dict = {}
    if events:  # dbt has finished and closed the database: one connection for what follows it
        with duckdb.get_connection() as conn:
            counts = relation_row_counts(conn, relations)
            kept = failing_rows.keep_failing_rows(conn, build.manifest, failing_rows.run_results(build.target_path))
            checked = rebuilt_days.checked_tests(build.manifest, passed | set(reuse.reused), set(evaluated))
            cleared = rebuilt_days.clear_checked_days(conn, build.manifest, checked)
        if cleared:
            context.log.info(f"every day-scoped test passed: rebuilt days cleared from {cleared}")
    for event in events:
        uid = _unique_id(event)
        if isinstance(event, dg.Output) and uid in counts:
            yield event.with_metadata({**event.metadata, "dagster/row_count": counts[uid]})
        elif isinstance(event, dg.AssetCheckResult) and not event.passed and uid in kept:
            yield failing_rows.with_examples(event, nodes[uid], kept[uid])
        else:
            yield event
    yield from reuse.results()
    reuse.record(passed, build.statuses)
    if not build.success:
        raise dg.Failure(
            "dbt build failed: see the dbt log above (failed models and tests are listed there)"
            + (f"; dbt stopped with {type(build.exception).__name__}" if build.exception else ""),
            metadata={"dbt_log": str(build.target_path / "dbt.log")},
        )
