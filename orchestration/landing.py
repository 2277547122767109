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
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq


class LandingError(RuntimeError):
    """Nothing landed for the window a load asks for."""


@dataclass(frozen=True)
class Landed:
    """A landed window: its Parquet file, read by DuckDB (a load never holds it in pandas)."""

    path: Path
    source: str
    origin: str
    start: date
    end: date
    exact: bool  # landed for exactly the window asked (else a wider landed window covers it)
    rows_per_day: dict[str, int]

    @property
    def relation(self) -> str:
        """SQL relation of the window's rows (all of the file when it was landed for the window)."""
        quoted = str(self.path).replace("'", "''")
        rows = f"read_parquet('{quoted}')"
        if self.exact:
            return rows
        # a wider window's file: its other days stay there for their own loads (a fetched row's
        # day is never NULL: an unreadable timestamp is given the window's first day)
        return f"(select * from {rows} where _partition_date between '{self.start}' and '{self.end}')"

    @property
    def days(self) -> set[date]:
        """Days of the window that have rows."""
        return {
            date.fromisoformat(d)
            for d, n in self.rows_per_day.items()
            if n and self.start <= date.fromisoformat(d) <= self.end
        }


def landing_dir(warehouse: Path, table: str) -> Path:
    return warehouse.parent / "landing" / table


def land_chunks(
    warehouse: Path, table: str, chunks: Iterable[pd.DataFrame], start: date, end: date, source: str, origin: str
) -> tuple[Path, int]:
    """Write the window's rows chunk by chunk into one Parquet file, so memory holds one chunk.

    Each row gets `_source_row`, its position in the window; the sidecar counts rows per day.
    Returns the file and the number of rows.
    """
    folder = landing_dir(warehouse, table)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{start}_{end}.parquet"
    temp = path.with_suffix(".parquet.tmp")
    per_day: Counter[str] = Counter()
    rows = 0
    writer: pq.ParquetWriter | None = None
    empty: pd.DataFrame | None = None  # an empty chunk's columns, if no chunk has rows
    try:
        for chunk in chunks:
            if not len(chunk):
                empty = chunk.assign(_source_row=pd.Series(dtype="int64"))
                continue
            chunk = chunk.assign(_source_row=range(rows + 1, rows + len(chunk) + 1))
            arrow = pa.Table.from_pandas(chunk, preserve_index=False)
            if writer is None:
                writer = pq.ParquetWriter(temp, arrow.schema)
            else:
                arrow = arrow.cast(writer.schema)
            writer.write_table(arrow)
            rows += len(chunk)
            per_day.update(pd.to_datetime(chunk["_partition_date"]).dt.date.astype(str).value_counts().to_dict())
    finally:
        if writer is not None:
            writer.close()
    if writer is None:  # nothing at all: an empty file still says "landed, nothing there"
        (
            empty if empty is not None else pd.DataFrame({"_partition_date": pd.Series(dtype="datetime64[ns]")})
        ).to_parquet(temp, index=False)
    sidecar = {"source": source, "origin": origin, "rows": rows, "rows_per_day": dict(sorted(per_day.items()))}
    path.with_suffix(".json").write_text(json.dumps(sidecar))
    os.replace(temp, path)
    return path, rows


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
    sidecar = json.loads(path.with_suffix(".json").read_text())
    return Landed(
        path,
        sidecar["source"],
        sidecar["origin"],
        start,
        end,
        (first, last) == (start, end),
        {d: int(n) for d, n in sidecar.get("rows_per_day", {}).items()},
    )


def consume(landed_window: Landed) -> None:
    """Drop a landed window once its rows are committed (a wider window stays: other days need it)."""
    if not landed_window.exact:
        return
    landed_window.path.unlink(missing_ok=True)
    landed_window.path.with_suffix(".json").unlink(missing_ok=True)
