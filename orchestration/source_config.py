"""The run-time choice of a feed's source (demo or real), shared by every ingest asset."""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from orchestration import settings


class SourceConfig(dg.Config):
    """Run-time choice of the feed's source; empty means the environment's setting."""

    source: str | None = Field(
        default=None, description="demo or real; defaults to <FEED>_SOURCE, then BALTIMORE_SOURCE, then demo"
    )


class LoadConfig(dg.Config):
    """Run-time choices of a raw load."""

    allow_empty_days: bool = Field(
        default=False,
        description="load a day with no rows even where the table has rows for it, or the same weekday had rows "
        "(off: such a load is refused as a broken feed)",
    )


def resolve_source(feed: str, config: SourceConfig) -> str:
    """The source of `feed` for this run: the run's config, else the settings."""
    if config.source:
        if config.source not in settings.SOURCE_CHOICES:
            raise dg.Failure(f"source must be one of {settings.SOURCE_CHOICES}, got {config.source!r}")
        return config.source
    return settings.source_for(feed)
