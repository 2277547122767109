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
