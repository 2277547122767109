"""SaTScan's own parameter file (`.prm`), read for the analysis this scan implements.

A `.prm` is an INI file of `Name=value` lines in `[Sections]`, `;` comments. Every setting falls
in one of three groups, so nothing is silently misread:

- **used**: the files, study period, coordinate type, spatial and temporal window limits, the
  minimum cases and the replications become the scan's inputs and `ScanParameters`;
- **required**: settings that change the analysis itself. The scan implements one analysis
  (prospective space-time permutation, high rates, days, circles around the locations, no
  adjustments, secondary clusters without geographical overlap); a file asking for another
  value is refused with the setting, its value and what is supported;
- **ignored**: output and reporting options (result files, KML, maps, charts, drilldowns...),
  named in `ignored` so the caller can say so.
"""

from __future__ import annotations

import configparser
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from orchestration.surveillance.satscan_files import parse_date
from orchestration.surveillance.scan import CARTESIAN, LATLONG

# setting -> the values this scan implements (compared case-insensitively; "" = left empty)
REQUIRED: dict[str, tuple[str, ...]] = {
    "AnalysisType": ("4",),  # prospective space-time
    "ModelType": ("2",),  # space-time permutation
    "ScanAreas": ("1",),  # high rates
    "PrecisionCaseTimes": ("3",),  # day
    "TimeAggregationUnits": ("3",),  # day
    "TimeAggregationLength": ("1",),
    "ControlFile": ("",),
    "PopulationFile": ("",),
    "UseGridFile": ("n",),
    "SpatialWindowShapeType": ("0",),  # circles
    "IncludePurelyTemporal": ("n",),
    "IncludePurelySpatial": ("n",),
    "MinimumTemporalClusterSize": ("1",),
    "UseMaxCirclePopulationFileOption": ("n",),
    "MultipleCoordinatesType": ("0",),  # one coordinate per location
    "UseNeighborsFile": ("n",),
    "UseMetaLocationsFile": ("n",),
    "UseLocationsNetworkFile": ("n",),
    "TimeTrendAdjustmentType": ("0",),
    "SpatialAdjustmentType": ("0",),
    "AdjustForWeeklyTrends": ("n",),
    "UseAdjustmentsByRRFile": ("n",),
    "RiskLimitHighClusters": ("n",),
    "AdjustForEarlierAnalyses": ("n",),
    "IterativeScan": ("n",),
    "IsotonicScan": ("0",),
    "CriteriaForReportingSecondaryClusters": ("0",),  # no geographical overlap
    "PerformPowerEvaluation": ("n",),
    "UseReportOnlySmallerClusters": ("n",),
    "PerformStandardDrilldown": ("n",),
    "PerformBernoulliDrilldown": ("n",),
}

# settings read into the analysis
USED = (
    "CaseFile",
    "CoordinatesFile",
    "StartDate",
    "EndDate",
    "CoordinatesType",
    "MaxSpatialSizeInPopulationAtRisk",
    "UseDistanceFromCenterOption",
    "MaxSpatialSizeInDistanceFromCenter",
    "MaxTemporalSizeInterpretation",
    "MaxTemporalSize",
    "MinimumCasesInHighRateClusters",
    "MonteCarloReps",
)

# a circle may hold at most this share of cases when the file says nothing (SaTScan's default)
DEFAULT_MAX_SHARE_PERCENT = 50.0


class PrmError(ValueError):
    """A parameter file that cannot be read, or asks for an analysis this scan does not do."""


@dataclass
class PrmSettings:
    """What a `.prm` file says, in the scan's terms."""

    case_file: Path
    coordinates_file: Path
    start: date
    end: date
    coordinates: str
    scan: dict[str, float | int | str] = field(default_factory=dict)  # ScanParameters fields
    ignored: list[str] = field(default_factory=list)  # settings with no effect here (output, reporting)


def _flatten(path: Path) -> dict[str, str]:
    parser = configparser.ConfigParser(interpolation=None, comment_prefixes=(";", "#"), strict=False)
    parser.optionxform = str  # keep SaTScan's capitalization
    try:
        parser.read_string(path.read_text(encoding="utf-8-sig"))
    except configparser.Error as exc:
        raise PrmError(f"{path.name}: not a SaTScan parameter file ({exc})") from exc
    values: dict[str, str] = {}
    for section in parser.sections():
        for name, value in parser.items(section):
            values[name] = value.strip()
    return values


def _number(values: dict[str, str], name: str, path: Path, kind=float):
    try:
        return kind(values[name])
    except (KeyError, ValueError) as exc:
        raise PrmError(f"{path.name}: {name}={values.get(name, '(missing)')!r} is not a number") from exc


def read_prm(path: str | Path) -> PrmSettings:
    """The analysis a `.prm` file describes; file names are relative to the file's folder."""
    path = Path(path)
    values = _flatten(path)
    refused = [
        f"{name}={values[name]!r} (supported: {' or '.join(repr(v) for v in allowed)})"
        for name, allowed in REQUIRED.items()
        if name in values and values[name].lower() not in allowed
    ]
    if refused:
        raise PrmError(f"{path.name}: not supported by this scan: " + "; ".join(refused))
    missing = [n for n in ("CaseFile", "CoordinatesFile", "StartDate", "EndDate") if not values.get(n)]
    if missing:
        raise PrmError(f"{path.name}: missing {', '.join(missing)}")
    try:
        start, end = parse_date(values["StartDate"]), parse_date(values["EndDate"])
    except ValueError as exc:
        raise PrmError(f"{path.name}: {exc}") from exc
    if end < start:
        raise PrmError(f"{path.name}: EndDate {values['EndDate']} is before StartDate {values['StartDate']}")
    coordinate_type = values.get("CoordinatesType", "1")
    if coordinate_type not in ("0", "1"):
        raise PrmError(f"{path.name}: CoordinatesType={coordinate_type!r} (0 = Cartesian, 1 = latitude/longitude)")
    scan: dict[str, float | int | str] = {"coordinates": CARTESIAN if coordinate_type == "0" else LATLONG}
    share = (
        _number(values, "MaxSpatialSizeInPopulationAtRisk", path)
        if values.get("MaxSpatialSizeInPopulationAtRisk")
        else DEFAULT_MAX_SHARE_PERCENT
    )
    if not 0 < share <= 50:
        raise PrmError(f"{path.name}: MaxSpatialSizeInPopulationAtRisk={share} must be in (0, 50] percent")
    scan["max_share_of_cases"] = share / 100.0
    if values.get("UseDistanceFromCenterOption", "n").lower() == "y":
        scan["max_radius_km"] = _number(values, "MaxSpatialSizeInDistanceFromCenter", path)
    else:
        scan["max_radius_km"] = float("inf")  # circles limited by the share of cases only
    if "MaxTemporalSize" in values:
        size = _number(values, "MaxTemporalSize", path)
        if values.get("MaxTemporalSizeInterpretation", "0") == "1":  # time units (days)
            scan["max_days"] = int(size)
        else:  # percent of the study period
            scan["max_days"] = max(1, int(((end - start).days + 1) * size / 100.0))
    if "MinimumCasesInHighRateClusters" in values:
        scan["min_cases"] = _number(values, "MinimumCasesInHighRateClusters", path, int)
    if "MonteCarloReps" in values:
        scan["replications"] = _number(values, "MonteCarloReps", path, int)
    ignored = sorted(
        name for name, value in values.items() if name not in REQUIRED and name not in USED and value not in ("",)
    )
    return PrmSettings(
        case_file=path.parent / values["CaseFile"],
        coordinates_file=path.parent / values["CoordinatesFile"],
        start=start,
        end=end,
        coordinates=str(scan["coordinates"]),
        scan=scan,
        ignored=ignored,
    )
