"""The code an incremental model's rows are computed by: its SQL, the SQL of the views it reads,
and every macro either expands.

An incremental model's fingerprint (dbt_project/macros/incremental_days.sql) names what its rows
derive from besides its input's rows; when it changes, every day is rebuilt. From inside dbt a
hook sees the model's own SQL text, but not the SQL of the staging view it reads nor the macros
they expand (text cleaning, date and coordinate parsing): a fix there would reach new days only
and leave the history computed the old way. Dagster has the manifest, so before each dbt build it
writes every incremental model's code digest into `CODE_TABLE`, which the fingerprint reads.

A view is computed when it is read, so its code counts; a table, an incremental model, a seed or
a source upstream stops the walk (their rows are read, and the fingerprint names the rows it
depends on). Macros count transitively, dbt's own included: an upgrade of dbt or its adapter
rebuilds every day once.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import duckdb

# relation (as the day ledgers name it: "<schema>__<identifier>"), digest; read by the models'
# fingerprint (macro `inputs_fingerprint`), which also creates it for a dbt run by hand
# (macro `create_model_code`, the same columns) like the run window
CODE_TABLE = "incremental_state.model_code"
# computed on read: their code is part of what a model downstream computes
_COMPUTED_ON_READ = frozenset({"view", "ephemeral"})


def relation_key(node: Mapping[str, Any]) -> str:
    """The model's key in `CODE_TABLE`, as `incremental_state_relation` names its ledgers."""
    return f"{node['schema']}__{node.get('alias') or node['name']}"


def _macros(manifest: Mapping[str, Any], roots: list[str]) -> set[str]:
    """The macros in `roots` and every macro they call, transitively."""
    found: set[str] = set()
    pending = list(roots)
    while pending:
        uid = pending.pop()
        if uid in found or uid not in manifest["macros"]:
            continue
        found.add(uid)
        pending.extend(manifest["macros"][uid].get("depends_on", {}).get("macros", []))
    return found


def code_digest(manifest: Mapping[str, Any], unique_id: str) -> str:
    """md5 of the model's SQL, the SQL of the views upstream of it up to the first stored
    relation, and the text of every macro any of them expands."""
    nodes = manifest["nodes"]
    models: set[str] = set()
    pending = [unique_id]
    while pending:
        uid = pending.pop()
        if uid in models:
            continue
        models.add(uid)
        pending.extend(
            parent
            for parent in nodes[uid].get("depends_on", {}).get("nodes", [])
            if parent in nodes
            and nodes[parent]["resource_type"] == "model"
            and nodes[parent]["config"].get("materialized") in _COMPUTED_ON_READ
        )
    macros = _macros(manifest, [m for uid in models for m in nodes[uid].get("depends_on", {}).get("macros", [])])
    text = json.dumps(
        [
            sorted((uid, nodes[uid].get("raw_code")) for uid in models),
            sorted((uid, manifest["macros"][uid].get("macro_sql")) for uid in macros),
        ]
    )
    return hashlib.md5(text.encode()).hexdigest()


def code_digests(manifest: Mapping[str, Any]) -> dict[str, str]:
    """{relation key: code digest} of every incremental model of the manifest."""
    return {
        relation_key(node): code_digest(manifest, uid)
        for uid, node in manifest["nodes"].items()
        if node["resource_type"] == "model" and node["config"].get("materialized") == "incremental"
    }


def write_code_digests(conn: duckdb.DuckDBPyConnection, digests: Mapping[str, str]) -> None:
    """Replace the rows of `CODE_TABLE` (kept between builds: a dbt run by hand reads the last ones)."""
    conn.execute(f"create schema if not exists {CODE_TABLE.split('.')[0]}")
    conn.execute(f"create table if not exists {CODE_TABLE} (relation varchar, digest varchar)")
    conn.execute(f"delete from {CODE_TABLE}")
    if digests:
        conn.executemany(f"insert into {CODE_TABLE} values (?, ?)", sorted(digests.items()))
