"""Read-only access to the newest publication of the serving database.

Every query opens the current publication's file read-only, runs, and closes: the dashboard never
holds a lock or an old file across a publication (a publication switches the `current` link, and
the next query reads the new file). The publication a page was computed from is named on it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from orchestration import settings


class NoPublication(RuntimeError):
    """Nothing has been published yet (run `make run` first)."""


@dataclass(frozen=True)
class Publication:
    publication_id: str
    published_at: str
    path: Path


def current_database(serving: Path | None = None) -> Path:
    """The current publication's DuckDB file, resolved once (a later switch does not change it):
    SERVING_DB is a link through `current` to a publication's own file (assets/publish.py)."""
    target = serving or settings.serving_path()
    path = target.resolve()
    if not path.exists():
        raise NoPublication(f"no published serving database at {target}: run `make run` first")
    return path


def query(sql: str, params: Sequence | None = None, serving: Path | None = None) -> pd.DataFrame:
    """The rows of `sql` on the current publication, read-only."""
    with duckdb.connect(str(current_database(serving)), read_only=True) as conn:
        return conn.execute(sql, list(params or [])).df()


def publication(serving: Path | None = None) -> Publication:
    path = current_database(serving)
    with duckdb.connect(str(path), read_only=True) as conn:
        pub_id, published_at = conn.execute("select publication_id, published_at from meta.publication").fetchone()
    return Publication(pub_id, str(published_at)[:19], path)
