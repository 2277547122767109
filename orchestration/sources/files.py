"""Reading a source file from a URL or a local path (the setting decides which)."""

from __future__ import annotations

import os
from pathlib import Path

from orchestration import settings
from orchestration.sources.http import JsonHttp, SourceError

# Public copies beside the project (../shared/data), used when a setting is not given.
SHARED_DEFAULTS = {
    "NHP_INDICATORS": "health/bchd_neighborhood_health_profile_2017_by_csa.xlsx",
    "VITAL_SIGNS_INDICATORS": "health/bnia_vital_signs_2017_by_csa.csv",
    "CSA_BOUNDARIES": "geography/baltimore_csa2010_boundaries_vs16_wgs84.geojson",
    "NEIGHBORHOOD_BOUNDARIES": "geography/mapbaltimore_neighborhoods_2020_wgs84.geojson",
    "POLICE_DISTRICT_BOUNDARIES": "geography/mapbaltimore_police_districts_2023_wgs84.geojson",
    "NEIGHBORHOOD_CSA_CROSSWALK": "geography/mapbaltimore_xwalk_csa2nsa.csv",
    "ZIP_CSA_CROSSWALK": "geography/mapbaltimore_xwalk_zip2csa.csv",
}


def read_bytes(location: str) -> bytes:
    """The bytes at `location`: http(s) URLs are fetched with retries, anything else is a path."""
    if location.startswith(("http://", "https://")):
        return JsonHttp().get_bytes(location)
    path = Path(location).expanduser()
    if not path.exists():
        raise SourceError(f"{path} does not exist")
    return path.read_bytes()


def setting(name: str) -> str:
    """A URL-or-path setting: the variable, else the public copy in ../shared/data, else a clear error."""
    value = os.environ.get(name)
    if value:
        return value
    shared = settings.PROJECT_ROOT.parent / "shared" / "data" / SHARED_DEFAULTS.get(name, "-")
    if name in SHARED_DEFAULTS and shared.exists():
        return str(shared)
    raise SourceError(f"{name} is not set: give the URL or path of the file (see README, Settings)")
