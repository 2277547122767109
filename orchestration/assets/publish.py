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
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
from dagster_duckdb import DuckDBResource

from orchestration import settings
from orchestration.partitions import WRITER_POOL
from orchestration.resources import ServingStore

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
    """Every check (with its blocking flag) on `targets` and on everything upstream of them."""
    parents: dict[dg.AssetKey, set[dg.AssetKey]] = {}
    for a in assets:
        for key, deps in a.asset_deps.items():
            parents.setdefault(key, set()).update(deps)
    ancestors, todo = set(), list(targets)
    while todo:
        key = todo.pop()
        if key not in ancestors:
            ancestors.add(key)
            todo.extend(parents.get(key, ()))
    specs = {spec.key: spec for a in assets for spec in a.check_specs if spec.asset_key in ancestors}
    return sorted(specs.values(), key=lambda s: (s.asset_key.to_user_string(), s.name))


def audit_checks(context: dg.AssetExecutionContext, specs: list[dg.AssetCheckSpec]) -> list[dict]:
    """The latest result of every check in `specs`; refuse on a blocking failure.

    A blocking check (dbt `error` severity, blocking Python checks) that failed, or never ran,
    stops the publication. Warnings are published with the data, in `meta.publication`. The
    checks are those of the whole code location upstream of the marts, not only the run's
    selection, so a run that selects only the publication is audited against everything too.
    """
    if not specs:
        raise PublishRefused("no checks upstream of the publication: nothing could be audited")
    records = context.instance.event_log_storage.get_latest_asset_check_execution_by_key([s.key for s in specs])
    results, refusals = [], []
    for spec in specs:
        record = records.get(spec.key)
        # a check planned in a run that failed before it ran has a record but no evaluation
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
        return publish(context, duckdb, serving.database(), audit_checks(context, specs))

    return serving_publication


def publish(
    context: dg.AssetExecutionContext, duckdb: DuckDBResource, target: Path, checks: list[dict]
) -> dg.MaterializeResult:
    """Write a new serving file and Parquet folder of the audited marts and switch to them."""
    target.parent.mkdir(parents=True, exist_ok=True)
    publication_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]
    building = target.with_name(f".{target.name}.{publication_id}.building")
    parquet_dir = target.parent / f"parquet-{publication_id}"
    published_at = datetime.now(UTC)
    try:
        with duckdb.get_connection() as conn:
            tables = [
                t
                for (t,) in conn.execute(
                    "select table_name from information_schema.tables where table_schema = ? "
                    "and table_type = 'BASE TABLE' order by 1",
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
            conn.execute(f"attach '{building}' as pub")
            try:
                conn.execute(f"create schema pub.{PUBLISHED_SCHEMA}")
                conn.execute("create schema pub.meta")
                counts = {}
                for table in tables:
                    conn.execute(
                        f"create table pub.{PUBLISHED_SCHEMA}.{table} as select * from {PUBLISHED_SCHEMA}.{table}"
                    )
                    counts[table] = conn.execute(f"select count(*) from pub.{PUBLISHED_SCHEMA}.{table}").fetchone()[0]
                conn.execute("""create table pub.meta.publication (
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
                for table in tables:
                    conn.execute(
                        f"copy pub.{PUBLISHED_SCHEMA}.{table} to '{parquet_dir / (table + '.parquet')}' "
                        "(format parquet)"
                    )
                conn.execute("checkpoint pub")
            finally:
                conn.execute("detach pub")
        os.replace(building, target)  # atomic: readers see the old file or the new one
        _swap_parquet_link(target.parent, parquet_dir)
    except BaseException:
        building.unlink(missing_ok=True)
        shutil.rmtree(parquet_dir, ignore_errors=True)
        raise
    warnings = [c for c in checks if c["passed"] is False]
    context.log.info(f"published {len(tables)} marts to {target} as {publication_id}")
    return dg.MaterializeResult(
        metadata={
            "publication_id": publication_id,
            "published_at": published_at.isoformat(),
            "path": str(target),
            "parquet": str(target.parent / "parquet"),
            "tables": len(tables),
            "dagster/row_count": sum(counts.values()),
            "row_counts": dg.MetadataValue.json(counts),
            "partitions": dg.MetadataValue.json(partitions),
            "checks_audited": len(checks),
            "warnings_published": dg.MetadataValue.json(warnings),
        }
    )


def _swap_parquet_link(folder: Path, new_dir: Path) -> None:
    """Point `parquet` at the new folder atomically, then drop folders older than the previous one."""
    link = folder / "parquet"
    previous = link.resolve() if link.is_symlink() else None
    temp_link = folder / f".parquet.{new_dir.name}"
    temp_link.symlink_to(new_dir.name)
    os.replace(temp_link, link)
    for old in folder.glob("parquet-*"):
        if old not in (new_dir, previous):
            shutil.rmtree(old, ignore_errors=True)
