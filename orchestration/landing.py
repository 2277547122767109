"""Landing: where fetched rows wait, as Parquet, between the network and the warehouse.

Fetching a month of calls from ArcGIS can take minutes; DuckDB admits one writer. The landing
asset fetches without holding the warehouse's writer slot and writes `<warehouse dir>/landing/
<table>/<first>_<last>.parquet` plus a JSON sidecar (source, layers, rows per day); the raw asset,
which holds the slot, loads it. A landed window is consumed (deleted) once its load is committed;
a refused load leaves it for a person to inspect or a retry to reuse.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pandas as pd


class LandingError(RuntimeError):
    """Nothing landed for the window a load asks for."""


@dataclass(frozen=True)
class Landed:
    frame: pd.DataFrame
    source: str
    origin: str
    path: Path
    exact: bool  # landed for exactly the window asked (else a wider landed window covers it)


def landing_dir(warehouse: Path, table: str) -> Path:
    return warehouse.parent / "landing" / table


def land(warehouse: Path, table: str, frame: pd.DataFrame, start: date, end: date, source: str, origin: str) -> Path:
    """Write the window's rows (atomically: a reader sees the old file or the new one)."""
    folder = landing_dir(warehouse, table)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{start}_{end}.parquet"
    temp = path.with_suffix(".parquet.tmp")
    frame.to_parquet(temp, index=False)
    per_day = (
        pd.to_datetime(frame["_partition_date"]).dt.date.astype(str).value_counts().sort_index().to_dict()
        if len(frame)
        else {}
    )
    sidecar = {"source": source, "origin": origin, "rows": len(frame), "rows_per_day": per_day}
    path.with_suffix(".json").write_text(json.dumps(sidecar))
    os.replace(temp, path)
    return path


def landed(warehouse: Path, table: str, start: date, end: date) -> Landed:
    """The rows landed for exactly this window, else for the newest landed window that covers it."""
    folder = landing_dir(warehouse, table)
    candidates = []
    for path in folder.glob("*.parquet") if folder.exists() else []:
        try:
            first, last = (date.fromisoformat(p) for p in path.stem.split("_"))
        except ValueError:
            continue
        if first <= start and end <= last:
            candidates.append((not (first == start and last == end), -path.stat().st_mtime, path, first, last))
    if not candidates:
        raise LandingError(
            f"nothing landed for {table} {start}..{end} in {folder}: materialize landing/{table} for these days first"
        )
    *_, path, first, last = min(candidates)
    frame = pd.read_parquet(path)
    if (first, last) != (start, end):
        days = pd.to_datetime(frame["_partition_date"]).dt.date
        frame = frame[(days >= start) & (days <= end)].reset_index(drop=True)
    sidecar = json.loads(path.with_suffix(".json").read_text())
    return Landed(frame, sidecar["source"], sidecar["origin"], path, (first, last) == (start, end))


def consume(landed_window: Landed) -> None:
    """Drop a landed window once its rows are committed (a wider window stays: other days need it)."""
    if not landed_window.exact:
        return
    landed_window.path.unlink(missing_ok=True)
    landed_window.path.with_suffix(".json").unlink(missing_ok=True)
