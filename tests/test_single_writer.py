"""One writer at a time: two runs launched at once, in separate processes, as the UI launches them.

With the instance config the Makefile writes (pool `warehouse_writer` limited to one slot) both
runs succeed and their writer steps take turns: no writer step of one run is running while a
writer step of another is. With the same instance but no pool limit, the writer steps of the two
runs run at the same time; the second half shows that the first half tests something.

What overlapping writers do to a run depends on timing: dagster-duckdb retries a refused open for
about 100 s (0.1 s doubling, 10 times), dbt's adapter does not, so an overlap fails a run with
DuckDB's "Could not set lock" only when dbt opens the file while another run holds it. The
control therefore asserts the overlap itself (from the runs' step events), which is what the pool
prevents, rather than a failure that happens in most runs but not all (CI once saw none).
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from orchestration.partitions import WRITER_POOL
from tests.conftest import makefile_instance_config

pytestmark = pytest.mark.slow

PAIR = (("2024-03-01", "2024-03-02"), ("2024-03-03", "2024-03-04"))
STEP_ENDS = {dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE}


def _two_runs_at_once(home, warehouse, serving) -> list[tuple[int, str]]:
    env = {**os.environ, "DAGSTER_HOME": str(home), "WAREHOUSE_DB": str(warehouse), "SERVING_DB": str(serving)}
    # create the instance's storage first: two processes racing to create SQLite tables is a
    # different problem (a fresh DAGSTER_HOME), not the one under test
    subprocess.run(
        [sys.executable, "-c", "import dagster; dagster.DagsterInstance.get().get_runs(limit=1)"],
        env=env,
        check=True,
        timeout=120,
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "orchestration", "run", "--start", a, "--end", b],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for a, b in PAIR
    ]
    return [(p.wait(timeout=900), p.stdout.read()) for p in procs]


POOL_LIMIT = "concurrency:\n  pools:\n    default_limit: 1\n"


def _home(tmp_path, name, pool_limit: bool):
    """A DAGSTER_HOME with the instance config the Makefile writes for `make run` and `make dev`
    (its event storage claims a pool's slot atomically, which the stock SQLite storage does not:
    tests/test_event_storage.py), or the same without the pool limit."""
    home = tmp_path / name
    config = makefile_instance_config(home)
    text = config.read_text()
    assert POOL_LIMIT in text and "BatchingSqliteEventLogStorage" in text, text
    if not pool_limit:
        config.write_text(text.replace(POOL_LIMIT, ""))
    return home


def _writer_steps() -> set[str]:
    """The warehouse job's steps in the writer pool, from the definitions."""
    from orchestration.definitions import defs

    job = defs.resolve_job_def("warehouse_job")
    return {node.name for node in job.graph.nodes if node.definition.pool == WRITER_POOL}


def _writer_intervals(home: Path) -> dict[str, list[tuple[float, float, str]]]:
    """Per run id, (start, end, step) of every writer step, from the instance's step events."""
    writers = _writer_steps()
    intervals: dict[str, list[tuple[float, float, str]]] = {}
    with dg.DagsterInstance.from_config(str(home)) as instance:
        for run in instance.get_runs():
            starts: dict[str, float] = {}
            for record in instance.all_logs(run.run_id):
                event = record.dagster_event
                if event is None or event.step_key not in writers:
                    continue
                if event.event_type == dg.DagsterEventType.STEP_START:
                    starts[event.step_key] = record.timestamp
                elif event.event_type in STEP_ENDS:
                    span = (starts.pop(event.step_key), record.timestamp, event.step_key)
                    intervals.setdefault(run.run_id, []).append(span)
            assert not starts, f"writer steps started and never ended in run {run.run_id}: {starts}"
    return intervals


def _overlaps(intervals: dict[str, list[tuple[float, float, str]]]) -> list[tuple[str, str]]:
    """Pairs of writer steps of different runs that were running at the same moment."""
    spans = [(start, end, f"{run_id[:8]}:{step}") for run_id, runs in intervals.items() for start, end, step in runs]
    found = []
    for i, (a_start, a_end, a) in enumerate(spans):
        for b_start, b_end, b in spans[i + 1 :]:
            if a.split(":")[0] != b.split(":")[0] and a_start < b_end and b_start < a_end:
                found.append((a, b))
    return found


def test_overlap_is_found_only_between_runs():
    """The interval arithmetic the test relies on, on spans written by hand."""
    assert _overlaps({"run-a": [(0.0, 2.0, "x")], "run-b": [(1.0, 3.0, "y")]}) == [("run-a:x", "run-b:y")]
    assert _overlaps({"run-a": [(0.0, 2.0, "x")], "run-b": [(2.0, 3.0, "y")]}) == []  # one after the other
    assert _overlaps({"run-a": [(0.0, 2.0, "x"), (1.0, 3.0, "y")]}) == []  # same run: not a collision


def test_concurrent_runs_take_turns_only_with_the_writer_pool(built, tmp_path):
    # each process makes two runs (the range, then the last day's surveillance and publication)
    warehouse = tmp_path / "w.duckdb"
    shutil.copy(built[0], warehouse)
    pooled_home = _home(tmp_path, "pooled", True)
    with_pool = _two_runs_at_once(pooled_home, warehouse, tmp_path / "s1" / "w.duckdb")
    assert [rc for rc, _ in with_pool] == [0, 0], [out[-2000:] for _, out in with_pool]
    assert not any("Could not set lock" in out for _, out in with_pool)
    pooled = _writer_intervals(pooled_home)
    assert len(pooled) == 4 and all(len(spans) >= 1 for spans in pooled.values()), pooled
    assert _overlaps(pooled) == []

    shutil.copy(built[0], warehouse)
    unpooled_home = _home(tmp_path, "unpooled", False)
    _two_runs_at_once(unpooled_home, warehouse, tmp_path / "s2" / "w.duckdb")
    assert _overlaps(_writer_intervals(unpooled_home)), "without the pool the writer steps never overlapped"
