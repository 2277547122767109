"""dbt tests whose inputs have not changed since they passed are not run again
(orchestration/assets/unchanged_tests.py): a change of any input brings a test back, a failed
test always runs again, and tests downstream of the daily sources always run."""

from __future__ import annotations

import json

import dagster as dg
import duckdb

from orchestration import settings
from orchestration.assets.dbt import dbt_project, warehouse_dbt_models
from orchestration.assets.unchanged_tests import PASSED_TESTS_TABLE, DbtTestInputs, outcomes, record, recorded
from tests.conftest import TEST_END

POPULATION_TEST = "accepted_range_stg_bchd_nhp__csa_indicators_population__0"
DATE_TEST = "unique_dim_date_date_key"
CALL_ID_TEST = "unique_fct_calls_for_service_call_id"
UNIT_TEST = "calls_staging_converts_epoch_ms_to_local_time_and_normalizes_text"


def _unit_tests_run() -> dict[str, str]:
    """dbt's status of each unit test the last invocation ran (run_results.json of this warehouse)."""
    results = json.loads((settings.dbt_target_path() / "run_results.json").read_text())["results"]
    return {r["unique_id"].split(".")[-1]: r["status"] for r in results if r["unique_id"].startswith("unit_test.")}


def _dbt_run(instance, config: dict | None = None):
    run_config = {"ops": {"warehouse_dbt_models": {"config": config}}} if config else None
    from orchestration.definitions import defs

    return defs.resolve_job_def("warehouse_job").execute_in_process(
        asset_selection=list(warehouse_dbt_models.keys),
        instance=instance,
        partition_key=TEST_END.isoformat(),
        raise_on_error=False,
        run_config=run_config,
    )


def _by_name(result) -> dict[str, tuple[bool, bool]]:
    names = {}
    for evaluation in result.get_asset_check_evaluations():
        uid = evaluation.metadata["unique_id"].value if "unique_id" in evaluation.metadata else None
        if uid:
            names[uid.split(".")[2]] = (evaluation.passed, "reused" in evaluation.metadata)
    return names


def _audit_tables(conn) -> list[str]:
    return [
        t
        for (t,) in conn.execute(
            "select table_name from information_schema.tables where table_schema = 'audit' order by 1"
        ).fetchall()
    ]


def _assert_dbt_parsed_the_project_once(runs: int) -> None:
    """The runs on one warehouse share dbt's target folder beside it: only the first parses the
    whole project (its profile differs from the project's own parse), the others reuse the parse
    (orchestration/settings.py::dbt_target_path). dbt's log file keeps info and above only."""
    target = settings.dbt_target_path()
    assert target.parent == settings.warehouse_path().parent
    lines = [json.loads(line) for line in (target / "dbt.log").read_text().splitlines() if line.startswith("{")]
    invocations = {line["info"]["invocation_id"] for line in lines}
    full_parses = [line for line in lines if line["info"]["name"] == "UnableToPartialParse"]
    assert len(invocations) == runs and len(full_parses) == 1
    assert {line["info"]["level"] for line in lines} <= {"info", "warn", "error"}


def test_which_tests_may_be_reused_follows_the_graph():
    manifest = json.loads(dbt_project.manifest_path.read_text())
    candidates = {uid.split(".")[2] for uid in DbtTestInputs(manifest).candidates()}
    assert {POPULATION_TEST, DATE_TEST} <= candidates
    # anything reading the calls or the naloxone reports always runs
    assert CALL_ID_TEST not in candidates
    assert not any("fct_naloxone" in c or "fct_calls" in c or "mart_overdose" in c for c in candidates)


def test_unchanged_tests_are_reused_and_a_changed_input_brings_its_tests_back(warehouse_copy):
    with dg.DagsterInstance.ephemeral() as instance:
        first_result = _dbt_run(instance)
        assert first_result.success  # dbt ran with the reused tests left out
        first = _by_name(first_result)
        # the session's build recorded what passed: reference tests are reused, the rest ran
        assert first[DATE_TEST] == (True, True)
        assert first[POPULATION_TEST] == (True, True)
        assert first[CALL_ID_TEST] == (True, False)
        reused = sum(1 for _, r in first.values() if r)
        assert reused >= 40, reused
        assert _unit_tests_run() == {}  # passed in the session's build, its code and columns unchanged

        # a bad population arrives in the NHP table: its test runs again, and fails
        with duckdb.connect(str(warehouse_copy)) as conn:
            [(bad_csa, bad_rows)] = conn.execute(
                "select CSA, count(*) from raw.csa_health_indicators "
                "where CSA = (select min(CSA) from raw.csa_health_indicators) group by CSA"
            ).fetchall()
            conn.execute("update raw.csa_health_indicators set Population = -5 where CSA = ?", [bad_csa])
            # what the session's build kept: the demo's by-design warning (new call spellings)
            before = _audit_tables(conn)
            assert before == ["assert_no_new_unclassified_call_descriptions"]
        second_result = _dbt_run(instance)
        second = _by_name(second_result)
        assert second[POPULATION_TEST] == (False, False)
        assert second[DATE_TEST] == (True, True)  # the date dimension does not read it
        assert not second_result.success
        # the check shows the failing rows, kept in `audit` (orchestration/assets/failing_rows.py)
        [failed] = [e for e in second_result.get_asset_check_evaluations() if POPULATION_TEST in e.check_name]
        examples = failed.metadata["examples"].value
        assert len(examples) == min(bad_rows, 5) and {e["population"] for e in examples} == {"-5"}
        table = failed.metadata["failing_rows_table"].value
        with duckdb.connect(str(warehouse_copy), read_only=True) as conn:
            assert conn.execute(f"select count(*) from {table}").fetchone()[0] == bad_rows
            assert _audit_tables(conn) == sorted([*before, table.split(".")[1].strip('"')])

        # still failing: it runs again rather than being reused (a failure is never recorded)
        assert _by_name(_dbt_run(instance))[POPULATION_TEST] == (False, False)

        # corrected: it runs and passes, then is reused
        with duckdb.connect(str(warehouse_copy)) as conn:
            conn.execute("update raw.csa_health_indicators set Population = 1000 where Population = -5")
        corrected = _dbt_run(instance)
        assert corrected.success and _by_name(corrected)[POPULATION_TEST] == (True, False)
        with duckdb.connect(str(warehouse_copy), read_only=True) as conn:
            assert _audit_tables(conn) == before  # an old failure's rows do not stay behind
        assert _by_name(_dbt_run(instance))[POPULATION_TEST] == (True, True)

        # asked to: every test runs
        forced = _by_name(_dbt_run(instance, {"rerun_unchanged_tests": True}))
        assert not any(r for _, r in forced.values())
        assert _unit_tests_run() == {UNIT_TEST: "pass"}
    _assert_dbt_parsed_the_project_once(runs=6)
    with duckdb.connect(str(warehouse_copy), read_only=True) as conn:
        # the bookkeeping holds test ids and digests only
        assert [d[0] for d in conn.execute(f"describe {PASSED_TESTS_TABLE}").fetchall()] == [
            "unique_id",
            "fingerprint",
            "passed_at",
        ]


def test_a_fingerprint_changes_with_every_input_and_only_with_its_own(tmp_path):
    """Code upstream (a seed file's checksum, a macro), data upstream (a source table's rows): each
    changes the fingerprint of the tests reading it, and of no other test."""
    import copy

    manifest = json.loads(dbt_project.manifest_path.read_text())
    inputs = DbtTestInputs(manifest)
    uid = {u.split(".")[2]: u for u in inputs.candidates()}
    population, date_key = uid[POPULATION_TEST], uid[DATE_TEST]
    rules = uid["unique_call_type_rules_rule_id"]
    nhp = next(u for u, s in manifest["sources"].items() if s["name"] == "csa_health_indicators")
    database = tmp_path / "w.duckdb"
    with duckdb.connect(str(database)) as conn:
        conn.execute("create schema raw")
        conn.execute("create table raw.csa_health_indicators as select 'A' as CSA, 10.0 as Population")

        def prints(m):
            return DbtTestInputs(m).fingerprints(conn, [population, date_key, rules])

        before = prints(manifest)
        assert prints(manifest) == before  # deterministic
        conn.execute("update raw.csa_health_indicators set Population = 11")
        after_data = prints(manifest)
        assert after_data[population] != before[population]
        assert after_data[date_key] == before[date_key] and after_data[rules] == before[rules]

        edited = copy.deepcopy(manifest)
        seed = next(u for u in edited["nodes"] if u.startswith("seed.") and u.endswith(".call_type_rules"))
        edited["nodes"][seed]["checksum"]["checksum"] = "0" * 64
        after_seed = prints(edited)
        assert after_seed[rules] != after_data[rules]
        assert after_seed[population] == after_data[population] and after_seed[date_key] == after_data[date_key]

        # a project var (dbt_project.yml) reaches the SQL without changing any checksum
        revars = DbtTestInputs(edited, "vars: {date_spine_end: '2031-12-31'}").fingerprints(conn, [date_key])
        assert revars[date_key] != DbtTestInputs(edited, "").fingerprints(conn, [date_key])[date_key]

        macro = next(iter(edited["macros"]))
        edited["macros"][macro]["macro_sql"] += " "
        assert all(prints(edited)[t] != after_seed[t] for t in (population, date_key, rules))
    assert nhp in inputs.ancestors(population) and nhp not in inputs.ancestors(date_key)


def test_a_test_the_project_no_longer_has_is_forgotten(tmp_path):
    """A removed (or renamed) test's row would otherwise stay in the bookkeeping for good."""
    with duckdb.connect(str(tmp_path / "w.duckdb")) as conn:
        record(conn, {"test.p.kept": "a", "test.p.removed": "b", "test.p.failed_later": "c"}, [])
        record(conn, {"test.p.new": "d"}, ["test.p.failed_later"], known=["test.p.kept", "test.p.new", "test.p.x"])
        assert {uid: fingerprint for uid, (fingerprint, _) in recorded(conn).items()} == {
            "test.p.kept": "a",
            "test.p.new": "d",
        }
        record(conn, {}, [])  # without the project's tests, nothing else is forgotten
        assert set(recorded(conn)) == {"test.p.kept", "test.p.new"}


def test_a_unit_tests_fingerprint_follows_its_code_and_its_inputs_columns_not_their_rows(tmp_path, monkeypatch):
    """The unit test reads fixed rows: new calls leave it reusable; a column of the table its
    fixture stands in for, its fixtures, the model's SQL or the DuckDB version bring it back."""
    import copy

    from orchestration.assets import unchanged_tests

    manifest = json.loads(dbt_project.manifest_path.read_text())
    inputs = DbtTestInputs(manifest)
    [unit] = [u for u in inputs.unit_tests() if u.endswith(UNIT_TEST)]
    date_key = next(u for u in inputs.candidates() if u.split(".")[2] == DATE_TEST)
    calls = next(u for u, s in manifest["sources"].items() if s["name"] == "calls_for_service")
    model = manifest["unit_tests"][unit]["depends_on"]["nodes"][0]
    assert calls in inputs.ancestors(unit) and model in inputs.ancestors(unit)
    with duckdb.connect(str(tmp_path / "w.duckdb")) as conn:
        conn.execute("create schema raw")
        conn.execute("create table raw.calls_for_service as select 1::bigint as recordId, 'x' as description")

        def prints(m):
            return DbtTestInputs(m).fingerprints(conn, [unit, date_key])

        before = prints(manifest)
        conn.execute("insert into raw.calls_for_service values (2, 'y')")  # a day of calls arrives
        assert prints(manifest) == before
        conn.execute("alter table raw.calls_for_service add column priority varchar")
        after_columns = prints(manifest)
        assert after_columns[unit] != before[unit] and after_columns[date_key] == before[date_key]

        fixtures = copy.deepcopy(manifest)
        fixtures["unit_tests"][unit]["given"][0]["rows"] = [{"recordId": 99}]
        assert prints(fixtures)[unit] != after_columns[unit] and prints(fixtures)[date_key] == before[date_key]
        code = copy.deepcopy(manifest)
        code["nodes"][model]["raw_code"] += "\n-- edited"
        assert prints(code)[unit] != after_columns[unit]

        monkeypatch.setattr(unchanged_tests, "_installed", lambda name: "9.9.9")  # another DuckDB
        assert all(prints(manifest)[t] != after_columns[t] for t in (unit, date_key))


def test_a_unit_test_is_recorded_only_when_dbt_ran_it_and_it_passed():
    units = ["unit_test.p.m.passes", "unit_test.p.m.fails", "unit_test.p.m.not_run"]
    passed, not_passed = outcomes(
        ["test.p.ok", "test.p.bad", "test.p.reused", *units],
        reused=["test.p.reused"],
        unit_tests=units,
        passed_checks={"test.p.ok"},
        statuses={"unit_test.p.m.passes": "pass", "unit_test.p.m.fails": "fail", "test.p.ok": "pass"},
    )
    assert passed == {"test.p.ok", "unit_test.p.m.passes"}
    # a unit test dbt did not run (model not selected, build stopped) keeps what was recorded
    assert not_passed == {"test.p.bad", "unit_test.p.m.fails"}
