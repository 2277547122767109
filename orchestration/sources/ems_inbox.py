"""EMS daily naloxone reports dropped into an inbox folder (`EMS_INBOX_DIR`).

A report is a `.csv` or `.xlsx` in the layout of BCHD's Daily Naloxone Report. Its day comes
from the file name (`2024-03-05`, `20240305` or `03-05-2024`), else from its most common
`Incident Date`. After a successful load a report moves to `archive/<day>/`; a re-delivered
report for the same day replaces that day's rows (the newest file of a day wins).
"""

from __future__ import annotations

import difflib
import os
import re
import shutil
from collections import Counter
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Report:
    path: Path
    day: date
    mtime: float
    size: int

    @property
    def fingerprint(self) -> str:
        return f"{self.path.name}:{self.mtime:.0f}:{self.size}"


def inbox_files(inbox: Path) -> list[Path]:
    """Report files waiting in the inbox itself (not yet archived), oldest first."""
    if not inbox.exists():
        return []
    files = [p for p in inbox.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES]
    return sorted(files, key=lambda p: p.stat().st_mtime)


def report_for(path: Path) -> Report:
    """A file's report record (its day read from the name, else from the file)."""
    stat = path.stat()
    return Report(path, report_day(path), stat.st_mtime, stat.st_size)


def pending_reports(inbox: Path) -> list[Report]:
    """Reports waiting in the inbox itself (not yet archived)."""
    return sorted((report_for(p) for p in inbox_files(inbox)), key=lambda r: (r.day, r.mtime))


def reports_for_days(inbox: Path, start: date, end: date) -> dict[date, Report]:
    """The newest report of every day in start..end, pending or archived."""
    candidates = pending_reports(inbox)
    archive = inbox / ARCHIVE
    if archive.exists():
        candidates += [report_for(p) for p in archive.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES]
    newest: dict[date, Report] = {}
    for report in candidates:
        if start <= report.day <= end and (report.day not in newest or report.mtime >= newest[report.day].mtime):
            newest[report.day] = report
    return newest


def archive_report(inbox: Path, report: Report) -> Path:
    """Move a loaded report from the inbox to `archive/<day>/` (archived files stay where they are)."""
    if report.path.parent != inbox:
        return report.path
    target_dir = inbox / ARCHIVE / report.day.isoformat()
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / report.path.name
    if target.exists():
        target = target_dir / f"{report.path.stem}.{int(report.mtime)}{report.path.suffix}"
    shutil.move(str(report.path), target)
    os.utime(target, (report.mtime, report.mtime))  # keep delivery time: newest-wins stays true
    return target
