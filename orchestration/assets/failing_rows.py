"""Failing rows of dbt tests, kept in schema `audit` by the dbt step rather than by dbt.

dbt's `store_failures` writes a table for every test it runs, passing or not: a drop, a create
and a count per test, about 20 ms each, on every daily run (130 tests). Only failing rows are
worth keeping, so dbt stores none (`store_failures` stays off) and the dbt step, once dbt has
closed the database, runs the compiled SQL of each test that failed or warned into
`audit.<test>` and shows its first rows in the check's metadata. A test that passes has its
table dropped, so `audit` holds the rows of the tests failing now, never of an old failure.

Which tests may keep rows is the project's policy in `dbt_project.yml`: `meta:
{keep_failing_rows: true}`, turned off for tests on patient-level models (EMS staging and the
restricted schemas), whose failing rows would copy patient data out of them. Those checks report
counts only.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb

from orchestration.dbt_in_process import RUN_RESULTS

KEEP_META = "keep_failing_rows"
EXAMPLES = 5
# dbt's statuses of a data test whose rows are worth keeping; an `error` (the SQL failed) has none
FAILING_STATUSES = ("fail", "warn")


def keeps_rows(node: Mapping[str, Any]) -> bool:
    """True when the project lets this test keep its failing rows (never a patient-level test)."""
    return bool((node.get("config", {}).get("meta") or {}).get(KEEP_META))


def audit_relation(node: Mapping[str, Any]) -> str:
    """The table of a test's failing rows: dbt's own name for it (schema `audit`, the test's alias)."""
    return f'{node["schema"]}."{node.get("alias") or node["name"]}"'


def run_results(target_path: Path) -> dict[str, dict]:
    """dbt's results of its last invocation in `target_path`, by unique id (empty when none)."""
    path = target_path / RUN_RESULTS
    if not path.exists():
        return {}
    return {r["unique_id"]: r for r in json.loads(path.read_text())["results"]}


def keep_failing_rows(
    conn: duckdb.DuckDBPyConnection, manifest: Mapping[str, Any], results: Mapping[str, dict]
) -> dict[str, list[dict[str, str]] | str]:
    """Store the rows of each failing test that may keep them, drop the tables of passing ones.

    Returns, per failing test that may keep rows, its first rows as text (or why they could not
    be read: the check still fails, with the reason instead of examples).
    """
    nodes = manifest["nodes"]
    tests = {uid: r for uid, r in results.items() if uid in nodes and nodes[uid]["resource_type"] == "test"}
    existing = {
        (schema, table)
        for schema, table in conn.execute("select table_schema, table_name from information_schema.tables").fetchall()
    }
    examples: dict[str, list[dict[str, str]] | str] = {}
    for uid, result in tests.items():
        node = nodes[uid]
        relation = audit_relation(node)
        name = (node["schema"], node.get("alias") or node["name"])
        if result["status"] in FAILING_STATUSES and keeps_rows(node) and result.get("compiled_code"):
            try:
                conn.execute(f"create schema if not exists {node['schema']}")
                conn.execute(
                    f"create or replace table {relation} as select * from ({result['compiled_code']}) as failing"
                )
                cursor = conn.execute(f"select * from {relation} limit {EXAMPLES}")
                columns = [d[0] for d in cursor.description]
                examples[uid] = [dict(zip(columns, map(str, row), strict=True)) for row in cursor.fetchall()]
            except duckdb.Error as exc:
                examples[uid] = f"could not keep the failing rows in {relation}: {exc}"
        elif name in existing and (result["status"] == "pass" or not keeps_rows(node)):
            # passing now (or no longer allowed to keep rows): its rows describe an old failure
            conn.execute(f"drop table if exists {relation}")
    return examples


def with_examples(result: dg.AssetCheckResult, node: Mapping[str, Any], kept: list | str) -> dg.AssetCheckResult:
    """A failed test's check result with its first failing rows and the table holding all of them."""
    metadata = {**result.metadata}
    if isinstance(kept, str):
        metadata["examples_error"] = kept
    else:
        metadata["examples"] = dg.MetadataValue.json(kept)
        metadata["failing_rows_table"] = audit_relation(node)
    return dg.AssetCheckResult(
        passed=False,
        asset_key=result.asset_key,
        check_name=result.check_name,
        severity=result.severity,
        metadata=metadata,
    )
