"""Rebuilt days leave the scope of the day-scoped dbt tests only once all of those tests passed.

An incremental model's day ledger (macros/incremental_days.sql) marks the days a build rebuilt
`rebuilt`, and the model's day-scoped tests read only those days. Were they forgotten at the
next build, a day whose test failed would be checked once: the next day's run would test only
its own day, pass, and the publication (which audits each check's latest result) would publish
the failed day. So the ledger keeps them, and after each dbt build this clears the rebuilt days
of a ledger only when every test scoped to it passed in that build (or was reused: its inputs
are unchanged since it passed; a `warn` test only has to have run); the ledger of a model no
test is scoped by is cleared after every build. A run that selected only some of them, or a
build that failed before them, clears nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import duckdb

# a ledger named in a test's `where` config or arguments, as the yml writes it
_LEDGER = re.compile(r'incremental_state\."([A-Za-z0-9_]+__days)"')


def scoped_tests(manifest: Mapping[str, Any]) -> dict[str, set[str]]:
    """{ledger table: unique ids of the dbt tests whose rows are scoped by it}."""
    scoped: dict[str, set[str]] = {}
    for uid, node in manifest["nodes"].items():
        if node["resource_type"] != "test":
            continue
        text = f"{node.get('config', {}).get('where') or ''} {(node.get('test_metadata') or {}).get('kwargs', {})}"
        for ledger in set(_LEDGER.findall(text)):
            scoped.setdefault(ledger, set()).add(uid)
    return scoped


def checked_tests(manifest: Mapping[str, Any], passed: set[str], evaluated: set[str]) -> set[str]:
    """The tests that checked their rows: those that passed (or were reused), and those of `warn`
    severity that ran whatever their result. A warning does not block the publication, so a day
    a warning keeps failing on would otherwise stay in scope, and be rebuilt, on every run."""

    def severity(uid: str) -> str:  # dbt takes it in any case ("warn", "WARN")
        return str(manifest["nodes"].get(uid, {}).get("config", {}).get("severity", "")).lower()

    warn = {uid for uid in evaluated if severity(uid) == "warn"}
    return passed | warn


def clear_checked_days(conn: duckdb.DuckDBPyConnection, manifest: Mapping[str, Any], checked: set[str]) -> list[str]:
    """Delete the `rebuilt` days of every day ledger whose scoped tests are all in `checked`
    (`checked_tests`; a ledger no test reads, such as the quarantine's, included); returns those ledgers."""
    ledgers = [
        name
        for (name,) in conn.execute(
            "select table_name from information_schema.tables "
            "where table_schema = 'incremental_state' and table_name like '%\\_\\_days' escape '\\' order by 1"
        ).fetchall()
    ]
    scoped = scoped_tests(manifest)
    cleared = []
    for ledger in ledgers:
        if scoped.get(ledger, set()) <= checked:  # a ledger no test reads is cleared too
            conn.execute(f"delete from incremental_state.\"{ledger}\" where status = 'rebuilt'")
            cleared.append(ledger)
    return cleared
