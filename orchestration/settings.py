"""Settings read from the environment, in one place.

Every setting is an environment variable so that `make run`, `dagster dev`, CI and the
tests configure the same code the same way; Dagster config on the assets can override
the per-feed source at run time.
"""

from __future__ import annotations

import os
import shutil
import sys
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"
LOCAL_TZ = ZoneInfo("America/New_York")

SOURCE_CHOICES = ("demo", "real")


def warehouse_path() -> Path:
    """Absolute path of the working DuckDB file (`WAREHOUSE_DB`, default `data/warehouse.duckdb`).

    Resolved to an absolute path because dbt runs in `dbt_project/` while Dagster runs
    wherever it was started: a relative path would name two different files.
    """
    raw = os.environ.get("WAREHOUSE_DB") or str(PROJECT_ROOT / "data" / "warehouse.duckdb")
    path = Path(raw).expanduser()
    if not path.is_absolute():
        path = Path.cwd() / path
    return path.resolve()


def export_warehouse_env() -> Path:
    """Pin `WAREHOUSE_DB` to the absolute path so the dbt subprocess opens the same file."""
    path = warehouse_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    os.environ["WAREHOUSE_DB"] = str(path)
    return path


def source_for(feed: str) -> str:
    """Source (`demo` or `real`) of one feed: `<FEED>_SOURCE`, else `BALTIMORE_SOURCE`, else demo."""
    value = os.environ.get(f"{feed.upper()}_SOURCE") or os.environ.get("BALTIMORE_SOURCE") or "demo"
    value = value.strip().lower()
    if value not in SOURCE_CHOICES:
        raise ValueError(f"{feed.upper()}_SOURCE / BALTIMORE_SOURCE must be one of {SOURCE_CHOICES}, got {value!r}")
    return value


def demo_seed() -> int:
    """Seed of the demo generators (`DEMO_SEED`, default 20130101)."""
    return int(os.environ.get("DEMO_SEED", "20130101"))


def today_local() -> date:
    return datetime.now(LOCAL_TZ).date()


def demo_range() -> tuple[date, date]:
    """Inclusive date range `make run` loads: `DEMO_START`..`DEMO_END`.

    Defaults to the last two full calendar years plus the current year up to yesterday,
    so that year-over-year trends show.
    """
    yesterday = today_local() - timedelta(days=1)
    start = date(yesterday.year - 2, 1, 1)
    start = date.fromisoformat(os.environ["DEMO_START"]) if os.environ.get("DEMO_START") else start
    end = date.fromisoformat(os.environ["DEMO_END"]) if os.environ.get("DEMO_END") else yesterday
    if end < start:
        raise ValueError(f"DEMO_END {end} is before DEMO_START {start}")
    return start, end


def dbt_executable() -> str:
    """The dbt installed beside this Python (works without an activated virtualenv)."""
    beside = Path(sys.executable).parent / "dbt"
    return str(beside) if beside.exists() else (shutil.which("dbt") or "dbt")
