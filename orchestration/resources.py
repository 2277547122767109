"""Configurable stores the assets and sensors write to, wired in `definitions.py`.

Each resource's `path` is empty by default, meaning the setting of the same name
(`orchestration.settings`), read when a run or a sensor tick starts; a run launched from the
UI may set another path. The working warehouse is `WarehouseDuckDB`, dagster-duckdb's resource
with one fix. dbt's settings are dagster-dbt's `DbtCliResource` (see `definitions.py`); its build
runs in the run's process (`orchestration/dbt_in_process.py`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource
from pydantic import Field

from orchestration import settings


def _resolved(path: str, default: Path) -> Path:
    return settings.absolute(Path(path)) if path else default


class WarehouseDuckDB(DuckDBResource):
    """dagster-duckdb's `DuckDBResource`, closing the connection when the block raises too, and
    writing without the compression methods `settings.DUCKDB_DISABLED_COMPRESSION` names.

    Upstream closes it only after a block that succeeded, so a step that failed (a refused load)
    kept the database file open in the process, and the next open with another configuration
    (read-only, as the summary and the tests do) failed. The compression setting is `SET` on the
    connection: given in `connection_config`, DuckDB 1.5 ignores it.
    """

    @contextmanager
    def get_connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        conn = super().get_connection().__enter__()
        try:
            conn.execute(f"set disabled_compression_methods = '{settings.DUCKDB_DISABLED_COMPRESSION}'")
            yield conn
        finally:
            conn.close()


class ServingStore(dg.ConfigurableResource):
    """The published, read-only DuckDB file for BI, with its Parquet folder beside it."""

    path: str = Field(default="", description="serving DuckDB file; empty means SERVING_DB")

    def database(self) -> Path:
        return _resolved(self.path, settings.serving_path())


class AlertStore(dg.ConfigurableResource):
    """Where spike notifications are recorded (a DuckDB file of its own) and sent."""

    path: str = Field(default="", description="alerts DuckDB file; empty means ALERTS_DB")

    def database(self) -> Path:
        return _resolved(self.path, settings.alerts_path())

    def webhook_url(self) -> str | None:
        # from the environment only: a webhook URL carries a token, and resource config is shown in the UI
        return settings.webhook_url()


class EmsInbox(dg.ConfigurableResource):
    """The folder that receives BCHD's daily naloxone reports."""

    path: str = Field(default="", description="inbox folder; empty means EMS_INBOX_DIR")

    def folder(self) -> Path:
        return _resolved(self.path, settings.ems_inbox_path())
