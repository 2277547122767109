"""dbt tests whose inputs have not changed since they passed are not run again.

A daily update rebuilds the days that changed, but `dbt build` also runs every test of the
reference side of the graph (seeds, neighborhoods, CSA indicators, boundaries, the date and
time dimensions): some 65 of its 190 tests, about 70 ms of dbt's own work each, on data that
changes a few times a year. A test is reused when nothing it reads can have changed since it
last passed:

- it reads no source that grows by day (the calls and the naloxone reports: tests downstream
  of them always run);
- its fingerprint is the one recorded when it last passed: the test's own definition and the
  code and configuration of every node upstream of it (manifest checksums and configs, seed
  files included), every macro, the dbt version and project file, and the content of every
  source table upstream of it (row count and a sum of row hashes, leaving out the load time:
  the reference tables are reloaded every day with the same rows).

The project's unit test (the calls' staging model on fixed rows) reads no data at all: its result
depends on its own definition, the code upstream, the macros, the versions of dbt and DuckDB,
and the columns (names and types) of the tables its fixtures stand in for. With those the same
since it passed, it is reused too (about 0.3 s of each update); dbt reports unit tests to
Dagster as nothing, so a reused one is only logged.

A reused data test is reported to Dagster as passed, saying so in its metadata with the time it
last ran: the publication audit reads it like any other result. A test that fails, warns or
errors is never recorded, so it runs again until it passes. `full_refresh` and
`rerun_unchanged_tests` run every test.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from importlib import metadata
from typing import Any

import duckdb

from orchestration.raw_tables import LOADED_AT_COLUMN, RAW_TABLES

# what the SQL runs on: a new DuckDB or adapter may compute a function differently
ENGINE_VERSIONS = ("duckdb", "dbt-duckdb")

# bookkeeping of reused tests (beside the incremental models' ledgers; never published)
PASSED_TESTS_TABLE = "incremental_state.passed_tests"


def _digest(value: Any) -> str:
    return hashlib.md5(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def grows_by_day(source: Mapping[str, Any]) -> bool:
    """A source whose rows arrive by day (its tests' inputs change with every load)."""
    table = RAW_TABLES.get(source.get("identifier") or source["name"])
    return source.get("schema") == "raw" and table is not None and table.partitioned


class DbtTestInputs:
    """The tests of a manifest that may be reused, and the fingerprint of each one's inputs."""

    def __init__(self, manifest: Mapping[str, Any], project_file: str = ""):
        """`project_file`: the text of dbt_project.yml, whose vars reach the models' SQL without
        changing their checksums in the manifest."""
        self.manifest = manifest
        self.project_file = project_file
        self.parents: Mapping[str, list[str]] = manifest["parent_map"]
        self._ancestors: dict[str, frozenset[str]] = {}

    def ancestors(self, unique_id: str) -> frozenset[str]:
        if unique_id not in self._ancestors:
            found: set[str] = set()
            for parent in self.parents.get(unique_id, []):
                found |= {parent, *self.ancestors(parent)}
            self._ancestors[unique_id] = frozenset(found)
        return self._ancestors[unique_id]

    def unit_tests(self) -> list[str]:
        """The project's unit tests (they read fixed rows, never a table's data)."""
        return sorted(self.manifest.get("unit_tests", {}))

    def candidates(self) -> list[str]:
        """Data tests that read no source growing by day."""
        sources = self.manifest["sources"]
        return sorted(
            uid
            for uid, node in self.manifest["nodes"].items()
            if node["resource_type"] == "test"
            and not any(a in sources and grows_by_day(sources[a]) for a in self.ancestors(uid))
        )

    def _code(self, unique_id: str) -> Any:
        node = (
            self.manifest["nodes"].get(unique_id)
            or self.manifest.get("unit_tests", {}).get(unique_id)
            or self.manifest["sources"][unique_id]
        )
        return [
            unique_id,
            node.get("checksum"),
            node.get("config"),
            node.get("test_metadata"),
            node.get("raw_code"),
            node.get("schema"),
            node.get("identifier"),
            # a unit test's fixtures and expected rows
            *([node.get("given"), node.get("expect"), node.get("overrides")] if "given" in node else []),
        ]

    def fingerprints(self, conn: duckdb.DuckDBPyConnection, tests: Iterable[str]) -> dict[str, str]:
        """Each test's fingerprint (see the module's docstring), source contents read from `conn`."""
        shared = _digest(
            [
                self.manifest["metadata"].get("dbt_version"),
                [_installed(name) for name in ENGINE_VERSIONS],
                self.manifest["metadata"].get("project_id"),
                self.project_file,
                sorted((uid, m.get("macro_sql")) for uid, m in self.manifest["macros"].items()),
            ]
        )
        unit_tests = set(self.manifest.get("unit_tests", {}))
        contents: dict[str, Any] = {}
        columns: dict[str, Any] = {}
        result = {}
        for test in tests:
            upstream = sorted(self.ancestors(test))
            # a data test reads its sources' rows; a unit test only their columns
            read, kind = (columns, column_types) if test in unit_tests else (contents, table_content)
            for uid in upstream:
                if uid in self.manifest["sources"] and uid not in read:
                    source = self.manifest["sources"][uid]
                    read[uid] = kind(conn, source["schema"], source.get("identifier") or source["name"])
            result[test] = _digest(
                [shared, self._code(test), [self._code(u) for u in upstream], [read.get(u) for u in upstream]]
            )
        return result


def _installed(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def column_types(conn: duckdb.DuckDBPyConnection, schema: str, table: str) -> Any:
    """Names and types of a table's columns, in order (what dbt builds a unit test's fixture from)."""
    return conn.execute(
        "select column_name, data_type from information_schema.columns where table_schema = ? and table_name = ? "
        "order by ordinal_position",
        [schema, table],
    ).fetchall()


def table_content(conn: duckdb.DuckDBPyConnection, schema: str, table: str) -> Any:
    """Row count and sum of row hashes, without the load time (a daily reload of the same rows
    is the same content); a table that cannot be read gives a value no earlier run recorded."""
    try:
        columns = [c for c, _ in column_types(conn, schema, table) if c != LOADED_AT_COLUMN]
        if not columns:
            return "missing"
        select = ", ".join(f'"{c}"' for c in columns)
        rows = f'select {select} from {schema}."{table}"'
        return conn.execute(f"select count(*), sum(hash(t)) from ({rows}) t").fetchone()
    except duckdb.Error as exc:
        return f"unreadable: {exc}"


def outcomes(
    candidates: Iterable[str],
    reused: Iterable[str],
    unit_tests: Iterable[str],
    passed_checks: set[str],
    statuses: Mapping[str, str],
) -> tuple[set[str], set[str]]:
    """(passed, not passed) among the `candidates` this build ran rather than reused.

    A data test that was not reused ran (its check reports it; `passed_checks` are those that
    passed). A unit test gives Dagster no check: it ran if dbt reported a status for it
    (`statuses`), and passed if that status is "pass"; one dbt did not run (its model not
    selected, or the build stopped before it) is neither, and keeps what was recorded."""
    units, skipped = set(unit_tests), set(reused)
    ran = {uid for uid in candidates if uid not in skipped and (uid not in units or uid in statuses)}
    passed = {uid for uid in ran if (statuses.get(uid) == "pass" if uid in units else uid in passed_checks)}
    return passed, ran - passed


def recorded(conn: duckdb.DuckDBPyConnection) -> dict[str, tuple[str, datetime]]:
    """{test: (fingerprint, passed_at)} of the tests that passed with their current inputs."""
    _ensure(conn)
    rows = conn.execute(f"select unique_id, fingerprint, passed_at from {PASSED_TESTS_TABLE}").fetchall()
    return {uid: (fingerprint, passed_at) for uid, fingerprint, passed_at in rows}


def record(
    conn: duckdb.DuckDBPyConnection,
    passed: Mapping[str, str],
    not_passed: Iterable[str],
    known: Iterable[str] | None = None,
) -> None:
    """Record the fingerprints tests passed with; forget tests that did not pass, and (given the
    tests the project has now, `known`) those it no longer has."""
    _ensure(conn)
    forget = sorted({*passed, *not_passed})
    if forget:
        conn.execute(f"delete from {PASSED_TESTS_TABLE} where list_contains(?, unique_id)", [forget])
    if known is not None:
        conn.execute(f"delete from {PASSED_TESTS_TABLE} where not list_contains(?, unique_id)", [sorted(known)])
    if passed:
        now = datetime.now(UTC)
        conn.executemany(
            f"insert into {PASSED_TESTS_TABLE} values (?, ?, ?)", [(uid, fp, now) for uid, fp in passed.items()]
        )


def _ensure(conn: duckdb.DuckDBPyConnection) -> None:
    schema = PASSED_TESTS_TABLE.split(".")[0]
    conn.execute(f"create schema if not exists {schema}")
    conn.execute(
        f"create table if not exists {PASSED_TESTS_TABLE} "
        "(unique_id varchar, fingerprint varchar, passed_at timestamptz)"
    )
