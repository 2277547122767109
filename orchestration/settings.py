"""Settings, in one place: the only module that reads the environment.

Every setting is an environment variable so that `make run`, `dagster dev`, CI and the tests
configure the same code the same way. Paths are resolved here, once, to absolute paths: dbt
runs in `dbt_project/` while Dagster runs wherever it was started, so a relative path would
name two different files. Values are read when asked for (not frozen at import) so a test or
a run can point a setting elsewhere; Dagster resources (`orchestration.resources`) default to
them and a run launched from the UI may override them.

Project facts that SQL and Python share (the local time zone, the city's extent) live in the
dbt project's vars and are read from there, so each is stated once.
"""

from __future__ import annotations

import functools
import os
import shutil
import sys
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"
DATA_DIR = PROJECT_ROOT / "data"
SHARED_DATA_DIR = PROJECT_ROOT.parent / "shared" / "data"

SOURCE_CHOICES = ("demo", "real")
DEFAULT_DEMO_SEED = 20130101
DEFAULT_ARCGIS_URL = "https://services1.arcgis.com/UWYHeuuJISiGmgXx/ArcGIS/rest/services/"

# Public copies beside the project (../shared/data), used when a file setting is not given.
FILE_SETTINGS = {
    "NHP_INDICATORS": "health/bchd_neighborhood_health_profile_2017_by_csa.xlsx",
    "VITAL_SIGNS_INDICATORS": "health/bnia_vital_signs_2017_by_csa.csv",
    "CSA_BOUNDARIES": "geography/baltimore_csa2010_boundaries_vs16_wgs84.geojson",
    "NEIGHBORHOOD_BOUNDARIES": "geography/mapbaltimore_neighborhoods_2020_wgs84.geojson",
    "POLICE_DISTRICT_BOUNDARIES": "geography/mapbaltimore_police_districts_2023_wgs84.geojson",
    "NEIGHBORHOOD_CSA_CROSSWALK": "geography/mapbaltimore_xwalk_csa2nsa.csv",
    "ZIP_CSA_CROSSWALK": "geography/mapbaltimore_xwalk_zip2csa.csv",
}


class SettingError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


def _env(name: str) -> str | None:
    value = os.environ.get(name)
    return value.strip() if value and value.strip() else None


def absolute(path: Path) -> Path:
    """An absolute, normalized path that keeps symlinks as they are: the serving database is a link
    that moves to each new publication, so resolving it once would pin an old one."""
    return Path(os.path.abspath(path.expanduser()))


def _path(name: str, default: Path) -> Path:
    raw = _env(name)
    return absolute(Path(raw) if raw else default)


@functools.cache
def dbt_vars() -> dict:
    """The dbt project's `vars`: facts shared by the SQL models and the Python code."""
    return yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text())["vars"]


LOCAL_TZ_NAME: str = dbt_vars()["local_timezone"]
LOCAL_TZ = ZoneInfo(LOCAL_TZ_NAME)


def city_extent() -> tuple[float, float, float, float]:
    """Baltimore City's extent (min lon, min lat, max lon, max lat), from dbt vars.

    The quality gate's box is this extent widened by `city_box_margin_deg`, computed by the
    `inside_city` macro alone (Python renders it: `orchestration.sql_rules`)."""
    return tuple(float(x) for x in dbt_vars()["city_extent"])  # type: ignore[return-value]


# --- stores -------------------------------------------------------------------------------


def warehouse_path() -> Path:
    """The working DuckDB file (`WAREHOUSE_DB`, default `data/warehouse.duckdb`)."""
    return _path("WAREHOUSE_DB", DATA_DIR / "warehouse.duckdb")


def dbt_target_path() -> Path:
    """dbt's target and log folder for runs on this warehouse (beside it: `<warehouse>.dbt/`).

    One folder per warehouse, kept between runs, so that each run finds the partial-parse file
    the previous run on the same profile wrote. dagster-dbt's default (a new folder per run in
    `dbt_project/target/`, seeded from the project's own parse) made dbt parse the whole
    project again whenever the profile differed from that parse's (any `WAREHOUSE_DB` but the
    default), and left a folder behind per run."""
    warehouse = warehouse_path()
    return warehouse.with_name(f"{warehouse.name}.dbt")


def dbt_file_log_level() -> str:
    """The level of dbt's own log file (`DBT_LOG_LEVEL_FILE`, dbt's variable; default `info`).

    dbt's default, `debug`, writes every statement it sends with its SQL, as JSON, and cost a
    daily update about 3 s of dbt's time. At `info` the file keeps each node's start, result
    and error, which is what a failed run's `dbt_log` is read for; set `debug` to see the SQL."""
    return _env("DBT_LOG_LEVEL_FILE") or "info"


def serving_path() -> Path:
    """The published, read-only DuckDB file for BI (`SERVING_DB`)."""
    return _path("SERVING_DB", DATA_DIR / "serving" / "warehouse.duckdb")


# events per batch Dagster may hand over at once (a range run's partitions of one asset);
# orchestration/event_storage.py stores such a batch in one transaction
EVENT_BATCH_SIZE = 10_000


def ensure_event_batching() -> None:
    """Ask Dagster to hand partition events over in batches (unless the environment says otherwise)."""
    os.environ.setdefault("DAGSTER_EVENT_BATCH_SIZE", str(EVENT_BATCH_SIZE))


def reports_path() -> Path:
    """Where the daily surveillance reports are written (`REPORTS_DIR`, default `data/reports`)."""
    return _path("REPORTS_DIR", DATA_DIR / "reports")


def alerts_path() -> Path:
    """Where the spike sensor records notifications (`ALERTS_DB`), apart from the warehouse's lock."""
    return _path("ALERTS_DB", DATA_DIR / "alerts.duckdb")


def ems_inbox_path() -> Path:
    """The folder that receives the EMS daily reports (`EMS_INBOX_DIR`)."""
    return _path("EMS_INBOX_DIR", DATA_DIR / "ems_inbox")


def export_warehouse_path() -> Path:
    """Pin `WAREHOUSE_DB` to its absolute path, so dbt (its profile reads the same variable, in
    the run's process or in a `dbt` process started from it) opens the same file as Dagster.
    Called where a process starts working: the code location's import and the command line."""
    path = warehouse_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    os.environ["WAREHOUSE_DB"] = str(path)
    return path


# --- sources ------------------------------------------------------------------------------


def source_for(feed: str) -> str:
    """Source (`demo` or `real`) of one feed: `<FEED>_SOURCE`, else `BALTIMORE_SOURCE`, else demo."""
    value = (_env(f"{feed.upper()}_SOURCE") or _env("BALTIMORE_SOURCE") or "demo").lower()
    if value not in SOURCE_CHOICES:
        raise SettingError(f"{feed.upper()}_SOURCE / BALTIMORE_SOURCE must be one of {SOURCE_CHOICES}, got {value!r}")
    return value


def arcgis_base_url() -> str:
    """Base URL of the Open Baltimore 911 feature services (`OPEN_BALTIMORE_ARCGIS_URL`)."""
    url = _env("OPEN_BALTIMORE_ARCGIS_URL") or DEFAULT_ARCGIS_URL
    return url if url.endswith("/") else url + "/"


def file_location(name: str) -> str:
    """A URL-or-path setting: the variable, else the public copy in ../shared/data, else a clear error."""
    value = _env(name)
    if value:
        return value
    if name in FILE_SETTINGS:
        shared = SHARED_DATA_DIR / FILE_SETTINGS[name]
        if shared.exists():
            return str(shared)
    raise SettingError(f"{name} is not set: give the URL or path of the file (see README, Settings)")


def webhook_url() -> str | None:
    """Where spike notifications are POSTed (`OVERDOSE_ALERT_WEBHOOK_URL`), if anywhere."""
    return _env("OVERDOSE_ALERT_WEBHOOK_URL")


def git_commit_fallback() -> str:
    """The commit to record when git cannot be asked (`GIT_COMMIT`, e.g. in a container)."""
    return _env("GIT_COMMIT") or "unknown"


# --- demo ---------------------------------------------------------------------------------


# DuckDB's memory cap for the working database (dbt's connection and the Dagster steps'): beyond
# it DuckDB spills to disk instead of growing towards its own default, 80% of the machine's RAM.
# dbt_project/profiles.yml reads the same variable with the same default.
DUCKDB_MEMORY_LIMIT_DEFAULT = "4GB"


def duckdb_memory_limit() -> str:
    """Memory cap of DuckDB on the working database (`DUCKDB_MEMORY_LIMIT`, default 4GB)."""
    return _env("DUCKDB_MEMORY_LIMIT") or DUCKDB_MEMORY_LIMIT_DEFAULT


# Compression DuckDB does not use when it writes the working database and the publications
# (dbt's connections and the Dagster steps': dbt_project/profiles.yml and WarehouseDuckDB set it,
# by `SET`: DuckDB 1.5 ignores it in a connection's config, without a word). FSST packs long,
# varied text (call keys and numbers, addresses) into about two thirds of the space, but writing
# it costs more than the space is worth here: ten years of raw calls were inserted in 13.8-14.9 s
# without it against 15.9-16.9 s with it (787 against 538 MB), and whole ten-year builds took
# 105 s against 120-128 s (a working file of 1.7 GB against 1.2 GB); reading is no slower
# (docs/performance.md, nineteenth round).
DUCKDB_DISABLED_COMPRESSION = "fsst"


def demo_seed() -> int:
    """Seed of the demo generators (`DEMO_SEED`, default 20130101)."""
    raw = _env("DEMO_SEED")
    try:
        return int(raw) if raw else DEFAULT_DEMO_SEED
    except ValueError as exc:
        raise SettingError(f"DEMO_SEED must be an integer, got {raw!r}") from exc


def today_local() -> date:
    return datetime.now(LOCAL_TZ).date()


def demo_range() -> tuple[date, date]:
    """Inclusive date range `make run` loads: `DEMO_START`..`DEMO_END`.

    Defaults to the last two full calendar years plus the current year up to yesterday,
    so that year-over-year trends show.
    """
    yesterday = today_local() - timedelta(days=1)
    try:
        start = date.fromisoformat(_env("DEMO_START")) if _env("DEMO_START") else date(yesterday.year - 2, 1, 1)
        end = date.fromisoformat(_env("DEMO_END")) if _env("DEMO_END") else yesterday
    except ValueError as exc:
        raise SettingError(f"DEMO_START / DEMO_END must be YYYY-MM-DD: {exc}") from exc
    if end < start:
        raise SettingError(f"DEMO_END {end} is before DEMO_START {start}")
    return start, end


def dbt_executable() -> str:
    """The dbt installed beside this Python (works without an activated virtualenv): this
    package's `warehouse-dbt` launcher (orchestration/dbt_launcher.py) when installed, else `dbt`."""
    for name in ("warehouse-dbt", "dbt"):
        beside = Path(sys.executable).parent / name
        if beside.exists():
            return str(beside)
    return shutil.which("dbt") or "dbt"
