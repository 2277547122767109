"""The publication's audit of check results when another run is queued behind it.

Dagster records every check a run will execute as "planned" when the run is created. A second
run launched at the same moment as the first therefore owns the newest record of every check
long before its steps (waiting for the writer slot) touch the warehouse. The audit must judge
the data by the evaluations that describe it, and still refuse when the other run has started
writing, or ended without evaluating.
"""

import dagster as dg
import pytest
from dagster._core.storage.dagster_run import DagsterRunStatus

from orchestration.assets.publish import PublishRefused, audit_checks

PASS = {"value": True}


@dg.asset(check_specs=[dg.AssetCheckSpec("inline", asset="a", blocking=True)])
def a():
    """An asset whose check runs in its own step, the way dbt's tests do."""
    yield dg.MaterializeResult(check_results=[dg.AssetCheckResult(check_name="inline", passed=PASS["value"])])


@dg.asset_check(asset=a, blocking=True)
def separate():
    """A check in a step of its own, the way the Python checks are."""
    return dg.AssetCheckResult(passed=PASS["value"])


DEFS = dg.Definitions(
    assets=[a], asset_checks=[separate], jobs=[dg.define_asset_job("job", selection=dg.AssetSelection.all())]
)
SPECS = [
    dg.AssetCheckSpec("inline", asset="a", blocking=True),
    dg.AssetCheckSpec("separate", asset="a", blocking=True),
]


@pytest.fixture
def instance():
    with dg.instance_for_test() as instance:
        yield instance


def _evaluated(instance, passed: bool = True) -> str:
    PASS["value"] = passed
    try:
        return DEFS.resolve_job_def("job").execute_in_process(instance=instance, raise_on_error=False).run_id
    finally:
        PASS["value"] = True


def _queued(instance) -> dg.DagsterRun:
    """A run created as the launcher creates it (its checks planned) whose steps have not started."""
    return instance.create_run_for_job(job_def=DEFS.resolve_job_def("job"), status=DagsterRunStatus.NOT_STARTED)


def _start_step(instance, run: dg.DagsterRun, step_key: str) -> None:
    instance.report_dagster_event(
        dg.DagsterEvent(dg.DagsterEventType.STEP_START.value, "job", step_key=step_key), run.run_id
    )


def _refusals(instance) -> list[str]:
    """What the audit refuses on (it must refuse)."""
    with pytest.raises(PublishRefused) as refused:
        audit_checks(instance, SPECS)
    return refused.value.metadata["refused_because"].value


def _latest_run_ids(instance) -> set[str]:
    keys = [spec.key for spec in SPECS]
    return {r.run_id for r in instance.event_log_storage.get_latest_asset_check_execution_by_key(keys).values()}


def test_a_run_queued_behind_does_not_hide_the_evaluations_of_the_data(instance):
    _evaluated(instance)
    queued = _queued(instance)
    assert _latest_run_ids(instance) == {queued.run_id}  # the situation: its plans are the newest records
    results = audit_checks(instance, SPECS)
    assert [(r["check"], r["passed"]) for r in results] == [("inline", True), ("separate", True)]
    # two runs queued, one behind the other
    _queued(instance)
    assert [r["passed"] for r in audit_checks(instance, SPECS)] == [True, True]


def test_looking_past_a_queued_run_still_finds_a_failure(instance):
    _evaluated(instance, passed=False)
    _queued(instance)
    # the failed blocking check stopped its run before the other check's step ran
    assert _refusals(instance) == ["a:inline (failed)", "a:separate (never ran)"]


def test_a_queued_run_that_started_writing_the_asset_blocks(instance):
    _evaluated(instance)
    queued = _queued(instance)
    # its step that writes `a` (and evaluates `inline`) started: the table may have changed, and
    # the check in the other step describes the new table only once that step has run
    _start_step(instance, queued, "a")
    assert _refusals(instance) == ["a:inline (never ran)", "a:separate (never ran)"]


def test_a_run_that_ended_without_evaluating_blocks(instance):
    _evaluated(instance)
    ended = _queued(instance)
    instance.report_run_failed(ended)
    assert _refusals(instance) == ["a:inline (never ran)", "a:separate (never ran)"]
    # a later run that evaluates them again clears it
    _evaluated(instance)
    assert [r["passed"] for r in audit_checks(instance, SPECS)] == [True, True]


def test_nothing_evaluated_before_the_queued_run_blocks(instance):
    _queued(instance)
    assert _refusals(instance) == ["a:inline (never ran)", "a:separate (never ran)"]
