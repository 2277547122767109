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
VALIDATED = "intermediate__int_calls_for_service__validated"
# the models computed through the calls' staging: the validated decisions and the fact read the
# staging view; the quarantine stages its own raw rows with the view's macro
VIEW_READERS = {VALIDATED, "marts__fct_calls_for_service"}
CALL_MODELS = {*VIEW_READERS, "quarantine__calls_for_service"}
NALOXONE_LOCATED = "restricted__int_naloxone_administrations__located"


def manifest() -> dict:
    return json.loads(dbt_project.manifest_path.read_text())


def changed_by(base: dict, edit) -> set[str]:
    """The models whose digest changes when `edit` is applied to a copy of the manifest."""
    edited = copy.deepcopy(base)
    edit(edited)
    before, after = code_digests(base), code_digests(edited)
    return {key for key in before if before[key] != after[key]}


def node(manifest: dict, name: str) -> dict:
    return manifest["nodes"][f"model.{PROJECT}.{name}"]


def append_to_sql(name: str):
    def edit(manifest: dict) -> None:
        node(manifest, name)["raw_code"] += "\n-- edited"

    return edit


def append_to_macro(uid: str):
    def edit(manifest: dict) -> None:
        manifest["macros"][uid]["macro_sql"] += " "

    return edit


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
    staging = node(base, "stg_open_baltimore__calls_for_service")
    # a view: computed when the validated model and the fact read it
    assert staging["config"]["materialized"] == "view"
    assert changed_by(base, append_to_sql("stg_open_baltimore__calls_for_service")) == VIEW_READERS
    # the macro that is staging's column list, which the quarantine applies to its rows too
    direct = staging["depends_on"]["macros"]
    assert f"macro.{PROJECT}.staged_open_baltimore_calls" in direct
    assert changed_by(base, append_to_macro(f"macro.{PROJECT}.staged_open_baltimore_calls")) == CALL_MODELS
    # a macro that one expands
    assert (
        f"macro.{PROJECT}.trimmed_text"
        in base["macros"][f"macro.{PROJECT}.staged_open_baltimore_calls"]["depends_on"]["macros"]
    )
    assert CALL_MODELS <= changed_by(base, append_to_macro(f"macro.{PROJECT}.trimmed_text"))
    # a macro reached only through another one: the model's pre-hook calls it
    validated = node(base, "int_calls_for_service__validated")
    hook, inner = f"macro.{PROJECT}.plan_validated_calls_days", f"macro.{PROJECT}.validated_calls_sharing_record_ids"
    assert hook in validated["depends_on"]["macros"] and inner in base["macros"][hook]["depends_on"]["macros"]
    assert not any(inner in n["depends_on"].get("macros", []) for n in base["nodes"].values())
    assert changed_by(base, append_to_macro(inner)) == {VALIDATED}


def test_a_stored_relation_upstream_stops_the_walk_and_unrelated_code_changes_nothing():
    base = manifest()
    # the neighborhood names are a table: their rows are in the fingerprint, not their code
    assert node(base, "int_reference__neighborhood_names")["config"]["materialized"] == "table"
    assert changed_by(base, append_to_sql("int_reference__neighborhood_names")) == set()
    # a mart no incremental model reads
    assert changed_by(base, append_to_sql("mart_csa_profile")) == set()
    # the naloxone staging view reaches the located naloxone model, not the calls
    assert changed_by(base, append_to_sql("stg_bchd_ems__naloxone_administrations")) == {NALOXONE_LOCATED}


def test_the_digests_replace_the_tables_rows(tmp_path):
    with duckdb.connect(str(tmp_path / "w.duckdb")) as conn:
        write_code_digests(conn, {"a__b": "1", "c__d": "2"})
        write_code_digests(conn, {"a__b": "3"})
        assert conn.execute(f"select * from {CODE_TABLE}").fetchall() == [("a__b", "3")]
        write_code_digests(conn, {})  # a project without incremental models: no stale digest stays
        assert conn.execute(f"select count(*) from {CODE_TABLE}").fetchone() == (0,)
