"""Patient data stays restricted: run EMS reports written here through the pipeline, then look for
every patient value of those reports in the whole Dagster event log, the dbt logs, every table
outside the restricted schemas and the serving database."""

from datetime import date

import dagster as dg
import duckdb
import pytest

from orchestration import settings
from orchestration.demo.naloxone import generate_naloxone

pytestmark = pytest.mark.slow

DAY = date(2024, 3, 12)
REAL = {"ops": {"raw__naloxone_administrations": {"config": {"source": "real"}}}}
# where patient-level rows may live (README, "Where patient data lives")
RESTRICTED_SCHEMAS = {"raw", "staging", "restricted", "geography"}


def _patients() -> tuple:
    """A report whose every patient value is unmistakable text, plus a row the gate quarantines."""
    frame = generate_naloxone(DAY, DAY, seed=77)
    n = len(frame)
    frame["Incident Number"] = [f"ZQINC{i:04d}" for i in range(n)]
    frame["Incident Address"] = [f"{100 + i} ZQTEST LANE" for i in range(n)]
    frame["Patient Gender"] = "ZQGENDER"
    frame["Patient Race (E6.12)"] = "ZQRACE"
    frame["Patient Age"] = [f"{30 + i} ZQYRS" for i in range(n)]
    # exact points with digits no aggregate would produce
    frame["Incident Location Latitude"] = [f"39.30{i:02d}7319" for i in range(n)]
    frame["Incident Location Longitude"] = [f"-76.61{i:02d}4821" for i in range(n)]
    frame.loc[0, "Medication Response - to Med (E18.7)"] = "ZQRESPONSE"  # quarantined: unknown response
    values = [
        *frame["Incident Number"],
        *frame["Incident Address"],
        "ZQGENDER",
        "ZQRACE",
        "ZQYRS",
        "ZQRESPONSE",
        *frame["Incident Location Latitude"],
        *frame["Incident Location Longitude"],
    ]
    return frame, values


def _hits(text: str, values: list[str]) -> list[str]:
    return sorted({v for v in values if v in text})


def test_no_patient_value_leaves_the_restricted_schemas(warehouse_copy, tmp_path, monkeypatch):
    from orchestration.definitions import defs

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    monkeypatch.setenv("EMS_INBOX_DIR", str(inbox))
    frame, values = _patients()
    frame.to_csv(inbox / f"naloxone_{DAY}.csv", index=False)
    # a warehouse built by an earlier version kept EMS quarantine rows in schema quarantine
    with duckdb.connect(str(warehouse_copy)) as conn:
        conn.execute("create or replace table quarantine.naloxone_administrations as select 'ZQINC0000' as incident")
    instance = dg.DagsterInstance.ephemeral()
    job = defs.resolve_job_def("ems_intake_job")
    keys = [k for k in job.asset_layer.asset_graph.get_all_asset_keys() if k.path[0] != "serving"]
    result = job.execute_in_process(
        partition_key=DAY.isoformat(), run_config=REAL, instance=instance, asset_selection=keys, raise_on_error=False
    )
    assert result.success
    with duckdb.connect(str(warehouse_copy), read_only=True) as conn:
        loaded = conn.execute(
            "select count(*) from raw.naloxone_administrations where \"Incident Number\" like 'ZQINC%'"
        ).fetchone()[0]
        quarantined = conn.execute(
            "select count(*) from restricted.quarantine_naloxone_administrations "
            "where quarantine_reason = 'unknown_medication_response' and partition_date = ?",
            [DAY],
        ).fetchone()[0]
    assert loaded == len(frame) and quarantined >= 1  # the values went in, so their absence below means something

    # 1. the whole event log of the run: metadata, check results, log messages, failures
    log = "\n".join(dg.serialize_value(record) for record in instance.get_records_for_run(result.run_id).records)
    assert _hits(log, values) == []

    # 2. dbt's own log and run results from this run (its target folder beside the warehouse)
    for path in (settings.dbt_target_path() / "run_results.json", settings.dbt_target_path() / "dbt.log"):
        assert _hits(path.read_text(errors="replace"), values) == [], path

    # 3. every table and view outside the restricted schemas, as text
    leaks = []
    with duckdb.connect(str(warehouse_copy), read_only=True) as conn:
        relations = conn.execute(
            "select table_schema, table_name from information_schema.tables where table_catalog = current_database()"
        ).fetchall()
        open_relations = [(s, t) for s, t in relations if s not in RESTRICTED_SCHEMAS]
        assert {s for s, _ in open_relations} >= {"marts", "quarantine", "intermediate", "reference"}
        for schema, table in open_relations:
            text = conn.execute(f'select cast(list(t) as varchar) from "{schema}"."{table}" as t').fetchone()[0] or ""
            if _hits(text, values):
                leaks.append(f"{schema}.{table}: {_hits(text, values)[:3]}")
    assert leaks == []

    # 4. the day's surveillance reports (files outside the warehouse, e-mailed to outreach)
    written = sorted(settings.reports_path().glob(f"{DAY}/*.html"))
    assert [p.name for p in written] == ["epidemiology.html", "outreach.html"]
    for path in written:
        assert _hits(path.read_text(), values) == [], path


def test_tests_on_patient_level_models_keep_no_failing_rows():
    """Failing rows are kept in `audit` for BI debugging, never for a test on a patient-level model."""
    import json

    from orchestration.assets.failing_rows import keeps_rows

    manifest = json.loads((settings.DBT_PROJECT_DIR / "target" / "manifest.json").read_text())
    nodes = manifest["nodes"]
    patient_models = {
        uid
        for uid, n in nodes.items()
        if n["resource_type"] == "model" and (n["schema"] == "restricted" or "bchd_ems" in n["fqn"])
    }
    assert {
        "model.baltimore_warehouse.fct_naloxone_administrations",
        "model.baltimore_warehouse.int_naloxone_administrations__located",
        "model.baltimore_warehouse.quarantine_naloxone_administrations",
        "model.baltimore_warehouse.stg_bchd_ems__naloxone_administrations",
    } <= patient_models
    tests = {uid: n for uid, n in nodes.items() if n["resource_type"] == "test"}
    # dbt itself stores no test's rows (orchestration/assets/failing_rows.py keeps those allowed)
    assert [uid for uid, n in tests.items() if n["config"].get("store_failures")] == []
    keeping = [uid for uid, n in tests.items() if keeps_rows(n) and set(n["depends_on"]["nodes"]) & patient_models]
    assert keeping == []
    # the policy is not vacuous: the other tests keep their rows
    assert sum(keeps_rows(n) for n in tests.values()) > 100
