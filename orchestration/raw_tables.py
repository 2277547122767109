"""The raw contract: the declared schema of every `raw` table, the one place that says what lands.

Raw tables keep the sources' own column names and text; bookkeeping columns record the load
partition, where the row came from and when it was loaded. The real connectors
(`orchestration.sources`) and the demo generators (`orchestration.demo`) both produce these
columns; the dbt sources yml declares the same columns with `data_type` (a test compares them).
"""

from __future__ import annotations

from dataclasses import dataclass

# 911 calls: attribute names exactly as the Open Baltimore ArcGIS layers return them, then the point.
CALL_COLUMNS: tuple[str, ...] = (
    "OBJECTID",
    "recordId",
    "callKey",
    "callDateTime",
    "priority",
    "district",
    "description",
    "callNumber",
    "incidentLocation",
    "Neighborhood",
    "PoliceDistrict",
    "PolicePost",
    "CouncilDistrict",
    "Community_Statistical_Areas",
    "Census_Tracts",
    "ZIPCode",
    "latitude",
    "longitude",
)

# EMS: the columns of BCHD's Daily Naloxone Report, one row per patient, every value text.
NALOXONE_COLUMNS: tuple[str, ...] = (
    "Incident Date",
    "Incident Number",
    "Patient Age",
    "Patient Gender",
    "Patient Race (E6.12)",
    "Incident Address",
    "Primary Impression",
    "Incident Location Latitude",
    "Incident Location Longitude",
    "Times : Arrived on Scene Time",
    "Destination Code (E20.2)",
    "Medication Administered (E18.3)",
    "Medication Response - to Med (E18.7)",
    "Medication Dosage (E18.5)",
    "Destination Patient Disposition (E20.10)",
)

# The Neighborhood Health Profile (BCHD, 2017) columns the warehouse uses, spelled as the file does.
HEALTH_COLUMNS: tuple[str, ...] = (
    "CSA",
    "Population",
    "MedianHHIncome",
    "PercentBelowPovertyLine",
    "Unemployment",
    "HardshipIndex",
    "LifeExpectancy",
    "DrugAlcoholMortalityRate",
)


# when a row was loaded: a reload of the same rows changes only this column
LOADED_AT_COLUMN = "_loaded_at"

# where loads once waited for their checks (now a load's own transaction): dropped on sight
LEGACY_PENDING_SCHEMA = "raw_pending"


@dataclass(frozen=True)
class RawTable:
    name: str
    columns: tuple[tuple[str, str], ...]  # (column, DuckDB type)
    partitioned: bool
    # bookkeeping of this table only (after _partition_date), filled by the loader or NULL
    provenance: tuple[tuple[str, str], ...] = ()

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
            + self.provenance
            + (("_source", "VARCHAR"), ("_source_row", "BIGINT"), (LOADED_AT_COLUMN, "TIMESTAMPTZ"))
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
    # a row's partition is its incident date; the report that delivered it is provenance:
    # the report's day (file name) and its arrival order (a later delivery of an incident wins)
    provenance=(("_report_date", "DATE"), ("_arrival", "BIGINT")),
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
        # another name the boundary file gives the neighborhood (older or variant spelling)
        ("name_alt", "VARCHAR"),
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
        ("alt_name", "VARCHAR"),
    ),
    partitioned=False,
)

RAW_TABLES = {t.name: t for t in (CALLS, NALOXONE, NEIGHBORHOODS, HEALTH, VITAL_SIGNS, BOUNDARIES)}
