"""What an incremental model's code digest covers (orchestration/assets/incremental_code.py).

The expectations name the project's own files: the calls' staging view and the macros it
expands, read from the project's manifest; a change made to a copy of the manifest must change
the digest of exactly the models computed through it.
"""

import copy
import json

import duckdb

from orchestration.assets.dbt import dbt_project
from orchestration.assets.incremental_code import CODE_TABLE, code_digests, write_code_digests

PROJECT = "baltimore_warehouse"
CALL_MODELS = {"intermediate__int_calls_for_service__validated"}
NALOXONE_LOCATED = "restricted__int_naloxone_administrations__located"


def manifest() -> dict:
    return json.loads(dbt_project.manifest_path.read_text())


def changed(before: dict, after: dict) -> set[str]:
    return {key for key in before if before[key] != after[key]}


def test_every_incremental_model_has_a_digest_named_like_its_ledgers():
    digests = code_digests(manifest())
    assert set(digests) == {
        "intermediate__int_calls_for_service__validated",
        "marts__fct_calls_for_service",
        "quarantine__calls_for_service",
        "marts__mart_call_volume_monthly",
        "restricted__int_naloxone_administrations__located",
        "restricted__fct_naloxone_administrations",
        "restricted__quarantine_naloxone_administrations",
    }
    assert code_digests(manifest()) == digests  # the same manifest, the same digests


def test_the_staging_views_sql_and_the_macros_it_expands_reach_the_models_reading_it():
    base = manifest()
    before = code_digests(base)
    # the calls' staging view (a view: computed when the validated model reads it)
    edited = copy.deepcopy(base)
    staging = edited["nodes"][f"model.{PROJECT}.stg_open_baltimore__calls_for_service"]
    assert staging["config"]["materialized"] == "view"
    staging["raw_code"] += "\n-- parsed differently"
    assert changed(before, code_digests(edited)) == CALL_MODELS
    # a macro the staging view expands (trimmed_text), and one that macro calls in turn
    edited = copy.deepcopy(base)
    uid = f"macro.{PROJECT}.trimmed_text"
    assert uid in base["nodes"][f"model.{PROJECT}.stg_open_baltimore__calls_for_service"]["depends_on"]["macros"]
    edited["macros"][uid]["macro_sql"] += " "
    assert CALL_MODELS <= changed(before, code_digests(edited))
    called = {
        (caller, callee)
        for caller in base["nodes"][f"model.{PROJECT}.stg_open_baltimore__calls_for_service"]["depends_on"]["macros"]
        for callee in base["macros"].get(caller, {}).get("depends_on", {}).get("macros", [])
    }
    assert called, "the staging view's macros call no macro: the transitive case is untested"
    _, callee = sorted(called)[0]
    edited = copy.deepcopy(base)
    edited["macros"][callee]["macro_sql"] += " "
    assert CALL_MODELS <= changed(before, code_digests(edited))


def test_a_stored_relation_upstream_stops_the_walk_and_unrelated_code_changes_nothing():
    base = manifest()
    before = code_digests(base)
    # the neighborhood names are a table: their rows are in the fingerprint, not their code
    edited = copy.deepcopy(base)
    names = edited["nodes"][f"model.{PROJECT}.int_reference__neighborhood_names"]
    assert names["config"]["materialized"] == "table"
    names["raw_code"] += "\n-- edited"
    assert changed(before, code_digests(edited)) == set()
    # a mart no incremental model reads
    edited = copy.deepcopy(base)
    edited["nodes"][f"model.{PROJECT}.mart_csa_profile"]["raw_code"] += "\n-- edited"
    assert changed(before, code_digests(edited)) == set()
    # the naloxone staging view reaches the located naloxone model, not the calls
    edited = copy.deepcopy(base)
    edited["nodes"][f"model.{PROJECT}.stg_bchd_ems__naloxone_administrations"]["raw_code"] += "\n-- edited"
    assert changed(before, code_digests(edited)) == {NALOXONE_LOCATED}


def test_the_digests_replace_the_tables_rows(tmp_path):
    with duckdb.connect(str(tmp_path / "w.duckdb")) as conn:
        write_code_digests(conn, {"a__b": "1", "c__d": "2"})
        write_code_digests(conn, {"a__b": "3"})
        assert conn.execute(f"select * from {CODE_TABLE}").fetchall() == [("a__b", "3")]
