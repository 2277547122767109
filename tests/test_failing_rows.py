"""Failing rows of dbt tests are kept by the dbt step (orchestration/assets/failing_rows.py):
only for tests that fail or warn and may keep them, and never left behind once a test passes."""

from __future__ import annotations

import json

import dagster as dg
import duckdb

from orchestration.assets import failing_rows

# a failing test's compiled SQL, as dbt writes it to run_results.json
NEGATIVE = "select * from main.cases where n < 0"


def _node(name: str, keep: bool) -> dict:
    return {
        "resource_type": "test",
        "schema": "audit",
        "alias": name,
        "name": name,
        "config": {"meta": {"keep_failing_rows": keep}},
    }


def _result(status: str, sql: str = NEGATIVE) -> dict:
    return {"status": status, "compiled_code": sql}


def test_rows_are_kept_for_failing_tests_that_may_keep_them_and_dropped_once_they_pass(tmp_path):
    manifest = {
        "nodes": {
            "test.p.fails": _node("fails", keep=True),
            "test.p.warns": _node("warns", keep=True),
            "test.p.patient": _node("patient", keep=False),
            "test.p.now_passes": _node("now_passes", keep=True),
            "test.p.broken": _node("broken", keep=True),
            "test.p.errored": _node("errored", keep=True),
            "model.p.cases": {"resource_type": "model", "schema": "main", "name": "cases"},
        }
    }
    with duckdb.connect(str(tmp_path / "w.duckdb")) as conn:
        conn.execute("create table cases as select * from (values (1, -2), (2, 3), (3, -7)) as t(id, n)")
        conn.execute("create schema audit")
        # rows kept by an earlier run: one test passes now, one errors now (state unknown)
        conn.execute("create table audit.now_passes as select 1 as id")
        conn.execute("create table audit.errored as select 1 as id")
        conn.execute("create table audit.patient as select 1 as id")  # from before the policy
        results = {
            "test.p.fails": _result("fail"),
            "test.p.warns": _result("warn", "select id from main.cases where n > 2"),
            "test.p.patient": _result("fail"),
            "test.p.now_passes": _result("pass"),
            "test.p.broken": _result("fail", "select * from main.no_such_table"),
            "test.p.errored": _result("error"),
            "model.p.cases": {"status": "success"},
        }
        kept = failing_rows.keep_failing_rows(conn, manifest, results)
        tables = {
            t
            for (t,) in conn.execute(
                "select table_name from information_schema.tables where table_schema = 'audit'"
            ).fetchall()
        }
        fails = conn.execute("select id, n from audit.fails order by id").fetchall()
    assert fails == [(1, -2), (3, -7)]
    assert kept["test.p.fails"] == [{"id": "1", "n": "-2"}, {"id": "3", "n": "-7"}]
    assert kept["test.p.warns"] == [{"id": "2"}]
    assert "no_such_table" in kept["test.p.broken"]  # the reason, instead of examples
    assert "test.p.patient" not in kept and "test.p.now_passes" not in kept
    # a patient-level test keeps nothing (an old table is dropped), a passing one loses its old rows,
    # an errored one keeps what it had
    assert tables == {"fails", "warns", "errored"}


def test_a_failed_check_carries_its_examples_or_the_reason_there_are_none():
    failed = dg.AssetCheckResult(
        asset_key=dg.AssetKey(["marts", "m"]), check_name="t", passed=False, metadata={"unique_id": "test.p.t"}
    )
    node = _node("t", keep=True)
    with_rows = failing_rows.with_examples(failed, node, [{"id": "1"}])
    assert not with_rows.passed and with_rows.metadata["examples"].value == [{"id": "1"}]
    assert with_rows.metadata["failing_rows_table"].value == 'audit."t"'
    assert with_rows.metadata["unique_id"].value == "test.p.t"
    without = failing_rows.with_examples(failed, node, "could not keep")
    assert without.metadata["examples_error"].value == "could not keep" and "examples" not in without.metadata


def test_run_results_are_read_by_unique_id(tmp_path):
    assert failing_rows.run_results(tmp_path) == {}  # dbt wrote none (it failed to start)
    (tmp_path / "run_results.json").write_text(json.dumps({"results": [{"unique_id": "test.p.a", "status": "pass"}]}))
    assert failing_rows.run_results(tmp_path) == {"test.p.a": {"unique_id": "test.p.a", "status": "pass"}}
