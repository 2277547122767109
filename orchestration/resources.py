"""Configurable stores the assets and sensors write to, wired in `definitions.py`.

Each resource's `path` is empty by default, meaning the setting of the same name
(`orchestration.settings`), read when a run or a sensor tick starts; a run launched from the
UI may set another path. The working warehouse is `WarehouseDuckDB`, dagster-duckdb's resource
with one fix; dbt runs through `WarehouseDbtCli`.
"""

from __future__ import annotations

import importlib.metadata
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path

import dagster as dg
import duckdb
from dagster_dbt import DbtCliResource
from dagster_duckdb import DuckDBResource
from packaging import version
from pydantic import Field

from orchestration import settings


def _resolved(path: str, default: Path) -> Path:
    return settings.absolute(Path(path)) if path else default


class WarehouseDuckDB(DuckDBResource):
    """dagster-duckdb's `DuckDBResource`, closing the connection when the block raises too.

    Upstream closes it only after a block that succeeded, so a step that failed (a refused load)
    kept the database file open in the process, and the next open with another configuration
    (read-only, as the summary and the tests do) failed.
    """

    @contextmanager
    def get_connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        conn = super().get_connection().__enter__()
        try:
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


class WarehouseDbtCli(DbtCliResource):
    """dagster-dbt's `DbtCliResource` without the dbt adapter it opens in this process for each run.

    That adapter serves only `fetch_row_counts` and `fetch_column_metadata`, which this project
    does not use (row counts are read once dbt has closed the database: DuckDB admits one
    writer). Loading dbt's project and profile for it cost about 2 s of every dbt step.
    """

    def _initialize_dbt_core_adapter(self, args: Sequence[str]) -> None:  # noqa: ARG002 - dagster-dbt's signature
        return None

    @cached_property
    def _cli_version(self) -> version.Version:
        """The version of the dbt beside this Python, read from its package metadata.

        dagster-dbt asks `dbt --version` in a new process for each run (about 2 s: it imports
        dbt-core); the executable beside this interpreter is the installed dbt-core. Any other
        executable is still asked.
        """
        if Path(self.dbt_executable).parent == Path(sys.executable).parent:
            return version.parse(importlib.metadata.version("dbt-core"))
        return super()._cli_version
