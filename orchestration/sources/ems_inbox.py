"""EMS daily naloxone reports dropped into an inbox folder (`EMS_INBOX_DIR`).

A report is a `.csv` or `.xlsx` in the layout of BCHD's Daily Naloxone Report. A report is a
*delivery*: its rows belong to their `Incident Date`, whatever the file is called (BCHD's public
sample is named for 2019-02-14 and holds incidents of 2018-01-01..07). The report's own day (from
its name, `2024-03-05`, `20240305` or `03-05-2024`, else its most common incident date) is
provenance. Deliveries are ordered by *arrival* (as the inbox sensor saw them, else by
modification time): when two reports carry the same incident (incident number and date), the
rows of the later arrival are kept, all of them (several patients share an incident), so a
re-delivered or overlapping report never counts a patient twice, and two different files for
one day are both read. After a successful load a report moves to
`archive/<report day>/<arrival>__<name>`, which keeps its arrival for later rebuilds.
"""

from __future__ import annotations

import difflib
import os
import re
import shutil
from collections import Counter
from dataclasses import dataclass, replace
from datetime import date, datetime
from datetime import time as dtime
from pathlib import Path

import pandas as pd

from orchestration.raw_tables import NALOXONE_COLUMNS
from orchestration.sql_rules import ems_incident_day

SUFFIXES = (".csv", ".xlsx")
ARCHIVE = "archive"


class EmsFileError(ValueError):
    """A report that cannot be loaded; the message names the file and what is wrong."""


def _squash(name: str) -> str:
    return re.sub(r"\s+", " ", str(name)).strip().lower()


def match_headers(columns: list[str], path: Path) -> dict[str, str]:
    """Map the file's headers to the report's columns (case and spacing ignored) or explain why not."""
    seen: dict[str, str] = {}
    for column in columns:
        if column is None:
            continue
        if _squash(column) in seen:
            raise EmsFileError(
                f"{path.name}: duplicate column(s) '{seen[_squash(column)]}' and '{column}' "
                "(headers are matched ignoring case and spacing); nothing was loaded"
            )
        seen[_squash(column)] = str(column)
    by_squash = {_squash(c): c for c in columns if c is not None}
    mapping, missing = {}, []
    for expected in NALOXONE_COLUMNS:
        found = by_squash.get(_squash(expected))
        if found is None:
            missing.append(expected)
        else:
            mapping[found] = expected
    if missing:
        extra = [c for c in columns if c not in mapping and c is not None]
        hints = []
        for name in missing:
            close = difflib.get_close_matches(name, [str(c) for c in extra], n=1, cutoff=0.6)
            hints.append(f"'{name}'" + (f" (renamed to '{close[0]}'?)" if close else ""))
        raise EmsFileError(f"{path.name}: missing column(s) {', '.join(hints)}; nothing was loaded")
    return mapping


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        if value.time() == dtime(0):
            return value.strftime("%m/%d/%Y")
        return value.strftime("%m/%d/%Y %H:%M:%S")
    if isinstance(value, date):
        return value.strftime("%m/%d/%Y")
    if isinstance(value, dtime):
        return value.strftime("%H:%M:%S")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _read_xlsx(path: Path) -> tuple[list[str], list[list[str]]]:
    from openpyxl import load_workbook

    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises several types for a damaged file
        raise EmsFileError(f"{path.name}: not a readable .xlsx workbook ({exc}); nothing was loaded") from exc
    try:
        rows = book.worksheets[0].iter_rows(values_only=True)
        header = next(rows, None)
        if header is None:
            raise EmsFileError(f"{path.name}: the first sheet is empty; nothing was loaded")
        body = [[_cell_text(v) for v in row] for row in rows if any(v not in (None, "") for v in row)]
        return [str(h).strip() if h is not None else None for h in header], body
    finally:
        book.close()


def read_report(path: Path) -> pd.DataFrame:
    """The report's rows as text in `NALOXONE_COLUMNS` order, with `_source_row` (1-based)."""
    if path.suffix.lower() == ".xlsx":
        header, body = _read_xlsx(path)
        frame = pd.DataFrame(body, columns=header, dtype=object) if body else pd.DataFrame(columns=header)
    elif path.suffix.lower() == ".csv":
        try:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
        except (pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise EmsFileError(f"{path.name}: not a readable CSV ({exc}); nothing was loaded") from exc
    else:
        raise EmsFileError(f"{path.name}: reports must be .csv or .xlsx")
    mapping = match_headers(list(frame.columns), path)
    frame = frame.rename(columns=mapping)[list(NALOXONE_COLUMNS)].fillna("").astype(str)
    frame = frame.apply(lambda col: col.str.strip())
    frame["_source_row"] = range(1, len(frame) + 1)
    return frame.reset_index(drop=True)


_NAME_DATES = (
    (re.compile(r"(\d{4})-(\d{2})-(\d{2})"), lambda m: date(int(m[1]), int(m[2]), int(m[3]))),
    (re.compile(r"(?<!\d)(\d{4})(\d{2})(\d{2})(?!\d)"), lambda m: date(int(m[1]), int(m[2]), int(m[3]))),
    (re.compile(r"(\d{1,2})[-_.](\d{1,2})[-_.](\d{4})"), lambda m: date(int(m[3]), int(m[1]), int(m[2]))),
)


def date_from_name(name: str) -> date | None:
    for pattern, build in _NAME_DATES:
        match = pattern.search(name)
        if match:
            try:
                return build(match)
            except ValueError:
                continue
    return None


def report_day(path: Path, frame: pd.DataFrame | None = None) -> date:
    """The day a report covers: from its name, else its most common incident date."""
    named = date_from_name(path.name)
    if named:
        return named
    frame = read_report(path) if frame is None else frame
    parsed = ems_incident_day(frame["Incident Date"]).dropna()
    if parsed.empty:
        raise EmsFileError(f"{path.name}: no date in the file name and no readable Incident Date")
    return Counter(parsed.dt.date).most_common(1)[0][0]


_ARRIVAL = re.compile(r"^(\d{6,})__(.+)$")


@dataclass(frozen=True)
class Report:
    path: Path
    day: date  # the report's own day: provenance, not where its rows go
    mtime: float
    size: int
    arrival: int | None = None  # known for archived reports (from the name) or from the sensor

    @property
    def name(self) -> str:
        """The file's name as delivered (without the archive's arrival prefix)."""
        match = _ARRIVAL.match(self.path.name)
        return match[2] if match else self.path.name

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.name, self.mtime, self.size)


def fingerprint(name: str, mtime: float, size: int) -> str:
    """One version of a delivered file: its name, modification time and size."""
    return f"{name}:{mtime:.0f}:{size}"


def inbox_files(inbox: Path) -> list[Path]:
    """Report files waiting in the inbox itself (not yet archived), oldest first."""
    if not inbox.exists():
        return []
    files = [p for p in inbox.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES]
    return sorted(files, key=lambda p: (p.stat().st_mtime, p.name))


def report_for(path: Path) -> Report:
    """A file's report record: its day from the archive folder it was filed under, else its name,
    else its most common incident date (only then is the file read)."""
    stat = path.stat()
    match = _ARRIVAL.match(path.name)
    filed = path.parent.parent.name == ARCHIVE and date_from_name(path.parent.name)
    return Report(path, filed or report_day(path), stat.st_mtime, stat.st_size, int(match[1]) if match else None)


def last_archived_arrival(inbox: Path) -> int:
    """The highest arrival number in the archive (0 when empty): new arrivals come after it."""
    archive = inbox / ARCHIVE
    numbers = [int(m[1]) for p in archive.rglob("*") if (m := _ARRIVAL.match(p.name))] if archive.exists() else []
    return max(numbers, default=0)


def all_reports(inbox: Path, arrivals: dict[str, int] | None = None) -> list[Report]:
    """Every report, archived and pending, in arrival order.

    Archived reports carry their arrival in their name; ones archived before arrivals were recorded
    come first, in the order of their modification time (as the newest-file rule then had it).
    Pending ones take the arrival the sensor gave them (`arrivals`: file name -> number), else come
    after every archived one in the order of their modification time.
    """
    archived = []
    archive = inbox / ARCHIVE
    if archive.exists():
        archived = [report_for(p) for p in archive.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES]
    unnumbered = sorted((r for r in archived if r.arrival is None), key=lambda r: (r.mtime, r.name))
    legacy = {r.path: i - len(unnumbered) for i, r in enumerate(unnumbered)}  # -n..-1: before every number
    archived = [replace(r, arrival=legacy[r.path]) if r.path in legacy else r for r in archived]
    arrivals = arrivals or {}
    last = max([r.arrival or 0 for r in archived] + list(arrivals.values()) + [0])
    pending = []
    for path in inbox_files(inbox):
        report = report_for(path)
        if report.name in arrivals:
            arrival = arrivals[report.name]
        else:
            last += 1
            arrival = last
        pending.append(replace(report, arrival=arrival))
    return sorted(archived + pending, key=lambda r: (r.arrival, r.mtime, r.name))


def report_rows(report: Report) -> pd.DataFrame:
    """A report's rows with their partition (incident date), report day, arrival, file and row number.

    A row whose incident date cannot be read is kept with the report's earliest readable incident
    date (else the report's day), where staging quarantines it as unparseable.
    """
    frame = read_report(report.path)
    days = ems_incident_day(frame["Incident Date"])
    fallback = days.min() if days.notna().any() else pd.Timestamp(report.day)
    frame["_partition_date"] = days.fillna(fallback)
    frame["_report_date"] = pd.Timestamp(report.day)
    frame["_arrival"] = report.arrival
    frame["_source"] = report.name
    return frame


def span_of(rows: pd.DataFrame, report: Report) -> tuple[date, date]:
    """The first and last day a report's rows (from `report_rows`) belong to."""
    days = rows["_partition_date"]
    if days.empty:
        return report.day, report.day
    return days.min().date(), days.max().date()


def report_span(report: Report) -> tuple[date, date]:
    """The first and last day the report's rows belong to."""
    return span_of(report_rows(report), report)


def rows_for_window(report_frames: list[pd.DataFrame], start: date, end: date) -> pd.DataFrame:
    """Of the reports' rows (`report_rows` of each), those of days start..end, each incident from its
    latest delivery.

    An incident is its incident number and incident date; all rows of the latest arrival that
    carries it are kept (one per patient). A row without an incident number is its own content:
    identical rows delivered twice count once.
    """
    frames = [f[(f["_partition_date"].dt.date >= start) & (f["_partition_date"].dt.date <= end)] for f in report_frames]
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame(
            columns=[*NALOXONE_COLUMNS, "_partition_date", "_report_date", "_arrival", "_source", "_source_row"]
        )
    rows = pd.concat(frames, ignore_index=True)
    number = rows["Incident Number"].str.strip().str.upper()
    content = rows[list(NALOXONE_COLUMNS)].agg("\x1f".join, axis=1)
    key = (number.where(number != "", "#" + content)) + "|" + rows["_partition_date"].astype(str)
    latest = rows.groupby(key)["_arrival"].transform("max")
    return rows[rows["_arrival"] == latest].reset_index(drop=True)


def archive_report(inbox: Path, report: Report) -> Path:
    """Move a loaded report from the inbox to `archive/<report day>/<arrival>__<name>`."""
    if report.path.parent != inbox:
        return report.path
    target_dir = inbox / ARCHIVE / report.day.isoformat()
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / f"{report.arrival or 0:06d}__{report.name}"
    shutil.move(str(report.path), target)
    os.utime(target, (report.mtime, report.mtime))
    return target
