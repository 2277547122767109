"""SaTScan's own input files: `.cas` (location, cases, date) and `.geo` (location, latitude, longitude;
or location, x, y for Cartesian coordinates).

Whitespace-separated; blank lines and lines starting with `;` or `#` are ignored. A bad line
raises `SatscanFileError` naming the file and the line number.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import numpy as np


class SatscanFileError(ValueError):
    """A line of a .cas/.geo file that cannot be read."""


@functools.lru_cache(maxsize=4096)  # a case file repeats its few hundred dates thousands of times
def parse_date(text: str) -> date:
    for fmt in ("%Y/%m/%d", "%Y-%m-%d", "%Y/%m", "%Y"):
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise ValueError(f"unreadable date {text!r} (expected YYYY/MM/DD)")


def _lines(path: Path):
    with open(path, encoding="utf-8-sig") as handle:
        for number, line in enumerate(handle, start=1):
            stripped = line.strip()
            if stripped and not stripped.startswith((";", "#")):
                yield number, stripped.split()


@dataclass
class Coordinates:
    ids: list[str]
    latitude: np.ndarray  # x for Cartesian coordinates
    longitude: np.ndarray  # y for Cartesian coordinates


def read_geo(path: str | Path, cartesian: bool = False) -> Coordinates:
    """Locations and their coordinates: latitude/longitude in degrees, or x/y (any unit) when
    `cartesian` (SaTScan's CoordinatesType=0)."""
    path = Path(path)
    names = "x y" if cartesian else "latitude longitude"
    ids, lat, lon = [], [], []
    for number, fields in _lines(path):
        if len(fields) < 3:
            raise SatscanFileError(f"{path.name} line {number}: expected 'location {names}', got {fields}")
        try:
            la, lo = float(fields[1]), float(fields[2])
        except ValueError as exc:
            raise SatscanFileError(
                f"{path.name} line {number}: {names.replace(' ', '/')} must be numbers: {fields}"
            ) from exc
        if not (np.isfinite(la) and np.isfinite(lo)):
            raise SatscanFileError(f"{path.name} line {number}: coordinates must be finite: {la}, {lo}")
        if not cartesian and not (-90 <= la <= 90 and -180 <= lo <= 180):
            raise SatscanFileError(f"{path.name} line {number}: coordinates out of range: {la}, {lo}")
        if fields[0] in ids:
            raise SatscanFileError(f"{path.name} line {number}: location {fields[0]} appears twice")
        ids.append(fields[0])
        lat.append(la)
        lon.append(lo)
    if not ids:
        raise SatscanFileError(f"{path.name}: no locations")
    return Coordinates(ids, np.array(lat), np.array(lon))


def read_cas(path: str | Path, locations: list[str], start: date) -> tuple[np.ndarray, np.ndarray]:
    """(location index, day index from `start`) per case, counts expanded to one entry per case."""
    path = Path(path)
    index = {loc: i for i, loc in enumerate(locations)}
    loc_out, day_out = [], []
    for number, fields in _lines(path):
        if len(fields) < 3:
            raise SatscanFileError(f"{path.name} line {number}: expected 'location cases date', got {fields}")
        if fields[0] not in index:
            raise SatscanFileError(f"{path.name} line {number}: location {fields[0]} is not in the coordinates file")
        try:
            count = int(fields[1])
            day = parse_date(fields[2])
        except ValueError as exc:
            raise SatscanFileError(f"{path.name} line {number}: {exc}") from exc
        if count < 0:
            raise SatscanFileError(f"{path.name} line {number}: negative case count {count}")
        loc_out += [index[fields[0]]] * count
        day_out += [(day - start).days] * count
    return np.array(loc_out, dtype=np.int64), np.array(day_out, dtype=np.int64)
