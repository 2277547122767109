"""Declared schemas of the `raw` tables: one place that says what lands in the warehouse.

Raw tables keep the sources' own column names and text; three bookkeeping columns record
the load partition, where the row came from and when it was loaded.
"""

from __future__ import annotations

from dataclasses import dataclass

from orchestration.demo.calls import CALL_COLUMNS
from orchestration.demo.health import HEALTH_COLUMNS
from orchestration.demo.naloxone import NALOXONE_COLUMNS


@dataclass(frozen=True)
class RawTable:
    name: str
    columns: tuple[tuple[str, str], ...]  # (column, DuckDB type)
    partitioned: bool

    @property
    def qualified(self) -> str:
        return f"raw.{self.name}"

    @property
    def source_columns(self) -> tuple[str, ...]:
        return tuple(c for c, _ in self.columns)

    def all_columns(self) -> tuple[tuple[str, str], ...]:
        """Source columns, then the bookkeeping columns every raw table has."""
        bookkeeping = (("_partition_date", "DATE"),) if self.partitioned else ()
        return (
            self.columns
            + bookkeeping
            + (("_source", "VARCHAR"), ("_source_row", "BIGINT"), ("_loaded_at", "TIMESTAMPTZ"))
        )

    def ddl(self) -> str:
        cols = [f'"{c}" {t}' for c, t in self.all_columns()]
        return f"CREATE TABLE IF NOT EXISTS {self.qualified} (\n  " + ",\n  ".join(cols) + "\n)"


_CALL_TYPES = {
    "OBJECTID": "BIGINT",
    "recordId": "BIGINT",
    "callDateTime": "BIGINT",
    "latitude": "DOUBLE",
    "longitude": "DOUBLE",
}

CALLS = RawTable(
    "calls_for_service",
    tuple((c, _CALL_TYPES.get(c, "VARCHAR")) for c in CALL_COLUMNS),
    partitioned=True,
)
NALOXONE = RawTable(
    "naloxone_administrations",
    tuple((c, "VARCHAR") for c in NALOXONE_COLUMNS),
    partitioned=True,
)
NEIGHBORHOODS = RawTable(
    "neighborhoods",
    (
        ("neighborhood", "VARCHAR"),
        ("csa", "VARCHAR"),
        ("zip_code", "VARCHAR"),
        ("police_district_code", "VARCHAR"),
        ("police_district", "VARCHAR"),
        ("latitude", "DOUBLE"),
        ("longitude", "DOUBLE"),
        ("population", "BIGINT"),
    ),
    partitioned=False,
)
HEALTH = RawTable(
    "csa_health_indicators",
    # CSA holds the canonical spelling; CSA_as_published what the file said
    tuple((c, "VARCHAR" if c == "CSA" else "DOUBLE") for c in HEALTH_COLUMNS) + (("CSA_as_published", "VARCHAR"),),
    partitioned=False,
)
VITAL_SIGNS = RawTable(
    "vital_signs",
    (("CSA", "VARCHAR"), ("CSA_as_published", "VARCHAR"), ("indicator", "VARCHAR"), ("value", "DOUBLE")),
    partitioned=False,
)
BOUNDARIES = RawTable(
    "boundaries",
    (
        ("layer", "VARCHAR"),
        ("name", "VARCHAR"),
        ("code", "VARCHAR"),
        ("population", "BIGINT"),
        ("geometry_wkt", "VARCHAR"),
    ),
    partitioned=False,
)

RAW_TABLES = {t.name: t for t in (CALLS, NALOXONE, NEIGHBORHOODS, HEALTH, VITAL_SIGNS, BOUNDARIES)}
