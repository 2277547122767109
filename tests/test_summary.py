"""`make run`'s summary: after a failed run it says what failed, why and what was kept; never a traceback."""

import subprocess
import sys
from datetime import date, timedelta

import pytest

from orchestration import settings
from orchestration.demo.calls import generate_calls
from tests.conftest import patch_demo_calls


def test_a_range_reaching_today_is_one_clear_line(tmp_path):
    today = settings.today_local()
    done = subprocess.run(
        [sys.executable, "-m", "orchestration", "run", "--start", str(today - timedelta(days=2)), "--end", str(today)],
        cwd=settings.PROJECT_ROOT,
        env={"PATH": "/usr/bin:/bin", "WAREHOUSE_DB": str(tmp_path / "w.duckdb"), "DAGSTER_HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        f"error: the last day {today} has no partition yet: the newest is yesterday, {today - timedelta(days=1)}"
    )
    assert "Traceback" not in done.stdout + done.stderr


@pytest.mark.slow
def test_a_failed_run_is_summarized_without_a_traceback(tmp_path, monkeypatch, capsys):
    from orchestration.run_all import main_run

    monkeypatch.setenv("WAREHOUSE_DB", str(tmp_path / "w.duckdb"))
    monkeypatch.setenv("SERVING_DB", str(tmp_path / "serving" / "warehouse.duckdb"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()

    def corrupted(start, end, seed):
        frame = generate_calls(start, end, seed)
        frame.loc[frame.index[::10], ["latitude", "longitude"]] = [0.0, 0.0]
        return frame

    patch_demo_calls(monkeypatch, corrupted)
    day = date(2024, 3, 6)
    assert main_run(str(day), str(day)) == 1
    out = capsys.readouterr()
    text = out.out + out.err
    assert "Traceback" not in text
    assert "FAILED raw/calls_for_service :: coordinates_inside_baltimore" in text
    assert "What failed, and why (loads that fail are not committed: the previous rows are kept):" in text
    assert "raw__calls_for_service: " in text and "coordinates_inside_baltimore" in text
    assert "No serving database was published yet" in text


HOLDER = """
import os, sys, time, duckdb
path, stop = sys.argv[1], sys.argv[2]
conn = duckdb.connect(path)  # read-write: DuckDB's lock on the file, as a run's writer step holds it
conn.execute("create schema raw; create table raw.calls_for_service as select * from range(3)")
print("holding", flush=True)
while not os.path.exists(stop):
    time.sleep(0.05)
conn.close()
"""


def _hold_write_lock(path, stop):
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(path), str(stop)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "holding"
    return holder


def test_the_summary_waits_for_another_runs_writer_to_let_go(tmp_path, capsys):
    """`make run`'s summary reads outside the writer pool: while another process writes the
    warehouse (a run launched from the UI), it waits instead of printing a lock error."""
    import threading

    from orchestration.run_all import table_counts

    path, stop = tmp_path / "w.duckdb", tmp_path / "stop"
    holder = _hold_write_lock(path, stop)
    try:
        threading.Timer(1.0, stop.touch).start()
        counts = table_counts(str(path))
        assert stop.exists()  # read only after the writer was told to let go
        assert counts == [("raw", "calls_for_service", 3)]
        waiting = [line for line in capsys.readouterr().out.splitlines() if "waiting up to 300 s" in line]
        assert len(waiting) == 1  # said once, not at every retry
    finally:
        stop.touch()
        holder.wait(timeout=60)


def test_the_summary_gives_up_after_its_wait_with_duckdbs_error(tmp_path):
    import duckdb

    from orchestration.run_all import open_read_only

    path, stop = tmp_path / "w.duckdb", tmp_path / "stop"
    holder = _hold_write_lock(path, stop)
    try:
        with pytest.raises(duckdb.IOException, match="Could not set lock"):
            open_read_only(str(path), wait_seconds=0.5)
    finally:
        stop.touch()
        holder.wait(timeout=60)
    # another I/O error is not waited for: a file that is not a database fails at once
    (tmp_path / "not.duckdb").write_text("not a database")
    with pytest.raises(duckdb.Error):
        open_read_only(str(tmp_path / "not.duckdb"), wait_seconds=3600)
