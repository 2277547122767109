"""Configurable stores the assets and sensors write to, wired in `definitions.py`.

Each resource's `path` is empty by default, meaning the setting of the same name
(`orchestration.settings`), read when a run or a sensor tick starts; a run launched from the
UI may set another path. The working warehouse itself is dagster-duckdb's `DuckDBResource`.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from pydantic import Field

from orchestration import settings


def _resolved(path: str, default: Path) -> Path:
    if not path:
        return default
    p = Path(path).expanduser()
    return (p if p.is_absolute() else Path.cwd() / p).resolve()


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
