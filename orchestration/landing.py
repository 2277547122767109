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
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

# The landed file's codec. The raw load reads all of it once: LZ4 decompresses faster than
# Arrow's default Snappy at about the same size (ten years of calls, the raw insert: 18.0-18.6 s
# against 22.3-22.9 s, 870 MB either way; docs/performance.md, seventeenth round).
LANDING_COMPRESSION = "lz4"


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


def _as_arrow(chunk: pd.DataFrame | pa.Table) -> pa.Table:
    return chunk if isinstance(chunk, pa.Table) else pa.Table.from_pandas(chunk, preserve_index=False)


def land_chunks(
    warehouse: Path,
    table: str,
    chunks: Iterable[pd.DataFrame | pa.Table],
    start: date,
    end: date,
    source: str,
    origin: str,
) -> tuple[Path, int]:
    """Write the window's rows chunk by chunk into one Parquet file, so memory holds one chunk.

    A chunk is a pandas frame or an Arrow table with a `_partition_date` column. Each row gets
    `_source_row`, its position in the window; the sidecar counts rows per day. Returns the file
    and the number of rows.
    """
    folder = landing_dir(warehouse, table)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{start}_{end}.parquet"
    temp = path.with_suffix(".parquet.tmp")
    per_day: Counter[str] = Counter()
    rows = 0
    writer: pq.ParquetWriter | None = None
    empty: pa.Table | None = None  # an empty chunk's columns, if no chunk has rows
    # Arrow writes without the GIL: one chunk is written on a thread while the next is made, so
    # generation and compression share the two cores; at most two chunks are in memory
    with ThreadPoolExecutor(max_workers=1) as pool:
        writing: Future | None = None
        try:
            for chunk in chunks:
                arrow = _as_arrow(chunk)
                if not arrow.num_rows:
                    empty = arrow.append_column("_source_row", pa.array([], pa.int64()))
                    continue
                arrow = arrow.append_column("_source_row", pa.array(np.arange(rows + 1, rows + arrow.num_rows + 1)))
                if writer is None:
                    writer = pq.ParquetWriter(temp, arrow.schema, compression=LANDING_COMPRESSION)
                else:
                    arrow = arrow.cast(writer.schema)
                if writing is not None:
                    writing.result()
                writing = pool.submit(writer.write_table, arrow)
                rows += arrow.num_rows
                counts = pc.value_counts(pc.cast(arrow["_partition_date"], pa.date32()))
                days, n = counts.field("values").to_pylist(), counts.field("counts").to_pylist()
                per_day.update({str(d): c for d, c in zip(days, n, strict=True)})
            if writing is not None:
                writing.result()
        finally:
            if writing is not None:
                writing.exception()  # never close the file under a write still running
            if writer is not None:
                writer.close()
    if writer is None:  # nothing at all: an empty file still says "landed, nothing there"
        pq.write_table(empty if empty is not None else pa.table({"_partition_date": pa.array([], pa.date32())}), temp)
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
