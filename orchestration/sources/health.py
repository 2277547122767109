"""Health indicators by CSA: BCHD's Neighborhood Health Profile and BNIA's Vital Signs.

Both files spell CSA names their own way and carry a "Baltimore City" total row; loading
maps every name to the canonical spelling (failing on any it cannot place) and keeps what
the file said in `CSA_as_published`.
"""

from __future__ import annotations

import io

import pandas as pd

from orchestration.raw_tables import HEALTH_COLUMNS
from orchestration.sources.files import read_bytes
from orchestration.sources.geography import canonical_csa_names

NHP_SHEET = "NHP2017 All Indicators"


def read_nhp(location: str, canonical: list[str]) -> pd.DataFrame:
    """The NHP indicators this warehouse uses, from the .xlsx (first matching sheet) or a .csv export."""
    data = read_bytes(location)
    if location.lower().endswith((".xlsx", ".xlsm")):
        book = pd.ExcelFile(io.BytesIO(data), engine="openpyxl")
        sheet = NHP_SHEET if NHP_SHEET in book.sheet_names else book.sheet_names[0]
        frame = book.parse(sheet)
    else:
        frame = pd.read_csv(io.BytesIO(data), encoding="utf-8-sig")
    missing = [c for c in HEALTH_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{location}: the Neighborhood Health Profile lacks column(s) {missing}")
    frame = frame[list(HEALTH_COLUMNS)].dropna(subset=["CSA"]).copy()
    frame["CSA_as_published"] = frame["CSA"].astype(str)
    frame["CSA"] = canonical_csa_names(frame["CSA"].astype(str).str.strip(), canonical, location)
    return frame.reset_index(drop=True)


def read_vital_signs(location: str, canonical: list[str]) -> pd.DataFrame:
    """Vital Signs (wide, keyed on CSA2010) as long rows: CSA, indicator, value."""
    frame = pd.read_csv(io.BytesIO(read_bytes(location)), encoding="utf-8-sig")
    if "CSA2010" not in frame.columns:
        raise ValueError(f"{location}: Vital Signs file has no CSA2010 column")
    frame = frame.dropna(subset=["CSA2010"]).drop(columns=[c for c in ("ID",) if c in frame.columns])
    long = frame.melt(id_vars=["CSA2010"], var_name="indicator", value_name="value")
    long["value"] = pd.to_numeric(long["value"], errors="coerce")
    long["CSA_as_published"] = long["CSA2010"].astype(str)
    long["CSA"] = canonical_csa_names(long["CSA2010"].astype(str).str.strip(), canonical, location)
    return long[["CSA", "CSA_as_published", "indicator", "value"]].reset_index(drop=True)
