"""Shared fixtures: a warehouse built once per session on a short demo range.

The range spans the spring DST change (2024-03-10) so local-time handling is exercised, and
holds 30 days so the overdose scan has its full study period.
"""

import os
import shutil
import subprocess
from datetime import date
from pathlib import Path

import dagster as dg
import pytest
from pytest_httpserver import HTTPServer

TEST_START = date(2024, 2, 17)  # 30 days: the surveillance study period
TEST_END = date(2024, 3, 17)
SHARED = Path(__file__).resolve().parents[2] / "shared"


def makefile_instance_config(home: Path) -> Path:
    """`home`/dagster.yaml as the Makefile writes it for `make run` and `make dev` (the one place
    that config is spelled out); its path."""
    from orchestration import settings

    config = home / "dagster.yaml"
    subprocess.run(
        ["make", "-s", f"DAGSTER_HOME={home}", str(config)], cwd=settings.PROJECT_ROOT, check=True, timeout=60
    )
    return config


@pytest.fixture(scope="session")
def session_warehouse(tmp_path_factory) -> Path:
    """WAREHOUSE_DB for the whole session, in a temporary folder."""
    folder = tmp_path_factory.mktemp("warehouse")
    path = folder / "warehouse.duckdb"
    os.environ["WAREHOUSE_DB"] = str(path)
    os.environ["SERVING_DB"] = str(folder / "serving" / "warehouse.duckdb")
    os.environ["REPORTS_DIR"] = str(folder / "reports")
    return path


@pytest.fixture(scope="session")
def session_instance() -> dg.DagsterInstance:
    """One Dagster instance for the session, so check history persists between runs."""
    with dg.DagsterInstance.ephemeral() as instance:
        yield instance


@pytest.fixture(scope="session")
def built(session_warehouse: Path, session_instance: dg.DagsterInstance):
    """One full run of warehouse_job over TEST_START..TEST_END; returns (path, result)."""
    from orchestration.run_all import run_range

    result = run_range(TEST_START, TEST_END, instance=session_instance)
    assert result.success, "the end-to-end demo run failed"
    # the reports this run wrote stay as it wrote them: later runs of other tests write elsewhere
    os.environ["REPORTS_DIR"] = str(session_warehouse.parent / "reports-of-later-runs")
    return session_warehouse, result


@pytest.fixture(scope="session")
def built_reports(built) -> Path:
    """REPORTS_DIR of the session's run (`built`)."""
    return built[0].parent / "reports"


@pytest.fixture
def warehouse_copy(built, tmp_path, monkeypatch) -> Path:
    """A private copy of the built warehouse that a test may damage.

    Same file name as the original: DuckDB names the catalog after the file, and the staging
    views refer to their tables through it."""
    path = tmp_path / built[0].name
    shutil.copy(built[0], path)
    monkeypatch.setenv("WAREHOUSE_DB", str(path))
    serving = tmp_path / "serving" / "warehouse.duckdb"
    serving.parent.mkdir()
    shutil.copy(Path(os.environ["SERVING_DB"]), serving)
    monkeypatch.setenv("SERVING_DB", str(serving))
    monkeypatch.setenv("REPORTS_DIR", str(tmp_path / "reports"))  # the session's reports stay the session's
    return path


def run_in_location(keys: list[dg.AssetKey], instance: dg.DagsterInstance, partition_key: str | None = None):
    """Materialize `keys` as a run of the code location's warehouse job (so the run sees the whole
    asset graph, as a run launched from the UI does), without raising on failure."""
    from orchestration.definitions import defs

    return defs.resolve_job_def("warehouse_job").execute_in_process(
        asset_selection=keys,
        instance=instance,
        partition_key=partition_key or TEST_END.isoformat(),
        raise_on_error=False,
    )


def shared_file(*parts: str) -> Path:
    """A file of ../shared, or skip the test cleanly when it is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is not available (../shared is absent)")
    return path


@pytest.fixture
def arcgis_server():
    """A threaded local server: concurrent page requests are served concurrently, as ArcGIS does."""
    server = HTTPServer(host="127.0.0.1", threaded=True)
    server.start()
    yield server
    server.clear()
    server.stop()


def patch_demo_calls(monkeypatch, make_frame) -> None:
    """Make the landing asset land `make_frame(start, end, seed)`, a (damaged) demo frame in
    `CALL_COLUMNS`, instead of the generator's own Arrow chunks."""
    import pyarrow as pa

    import orchestration.demo.calls as demo_calls
    from orchestration.sql_rules import local_day_of_epoch_ms

    def table(start, end, seed):
        frame = make_frame(start, end, seed)
        days = local_day_of_epoch_ms(frame["callDateTime"]) if len(frame) else frame["callDateTime"]
        return pa.Table.from_pandas(frame.assign(_partition_date=days), preserve_index=False)

    monkeypatch.setattr(demo_calls, "generate_call_table", table)
