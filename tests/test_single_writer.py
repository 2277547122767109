"""One writer at a time: two runs launched at once, in separate processes, as the UI launches them.

With the instance config the Makefile writes (pool `warehouse_writer` limited to one slot) both
runs succeed, taking turns; with the same instance but no pool limit, DuckDB's file lock makes
at least one of them fail. The second half shows that the first half tests something.
"""

import os
import shutil
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow

PAIR = (("2024-03-01", "2024-03-02"), ("2024-03-03", "2024-03-04"))


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


def _home(tmp_path, name, pool_limit: bool):
    home = tmp_path / name
    home.mkdir()
    text = "telemetry:\n  enabled: false\n"
    if pool_limit:
        text += "concurrency:\n  pools:\n    default_limit: 1\n"
    (home / "dagster.yaml").write_text(text)
    return home


def test_concurrent_runs_take_turns_only_with_the_writer_pool(built, tmp_path):
    warehouse = tmp_path / "w.duckdb"
    shutil.copy(built[0], warehouse)
    with_pool = _two_runs_at_once(_home(tmp_path, "pooled", True), warehouse, tmp_path / "s1" / "w.duckdb")
    assert [rc for rc, _ in with_pool] == [0, 0], [out[-2000:] for _, out in with_pool]
    assert not any("Could not set lock" in out for _, out in with_pool)

    shutil.copy(built[0], warehouse)
    without = _two_runs_at_once(_home(tmp_path, "unpooled", False), warehouse, tmp_path / "s2" / "w.duckdb")
    assert any(rc != 0 for rc, _ in without)
    assert any("Could not set lock" in out for _, out in without)
