"""Open Baltimore 911 calls for service from the ArcGIS REST feature services.

A day partition becomes a `where` on `callDateTime` over the UTC instants of that local day,
sent to the layer(s) the registry names for its year. Pages are fetched concurrently (bounded)
by `resultOffset`, continuing while the server says `exceededTransferLimit`; rows repeated
across pages are dropped by OBJECTID, and the result must match `returnCountOnly`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from orchestration import settings
from orchestration.raw_tables import CALL_COLUMNS
from orchestration.settings import LOCAL_TZ
from orchestration.sources.http import RETRY_STATUS, JsonHttp, RetryableError, SourceError

log = logging.getLogger(__name__)

# Spellings seen across the yearly layers, keyed by the lower-cased name without separators.
_ALIASES = {
    "csa": "Community_Statistical_Areas",
    "csa2010": "Community_Statistical_Areas",
    "zip": "ZIPCode",
    "zipcode": "ZIPCode",
    "censustract": "Census_Tracts",
    "lat": "latitude",
    "long": "longitude",
    "lon": "longitude",
}


def _squash(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


CANONICAL_FIELDS = {_squash(c): c for c in CALL_COLUMNS} | _ALIASES


def default_layers() -> dict[int, str]:
    """Year -> layer path under the base URL (Open Baltimore's publication history)."""
    layers = {year: f"911_2013_2022/FeatureServer/{year - 2013}" for year in range(2013, 2023)}
    layers[2023] = "911_CallsForService_2023/FeatureServer/0"
    return layers


LATEST_LAYER = "911_Calls_For_Services_2024/FeatureServer/0"  # 2024 onward, unless the directory says otherwise

# a 911 service named for a year (`911_CallsForService_2023`) or a range of years (`911_2013_2022`,
# one layer per year in order)
_SERVICE_YEARS = re.compile(r"(?<!\d)(20\d{2})(?:_(20\d{2}))?$")


def layers_from_directory(body: Any, url: str) -> dict[int, str]:
    """Year -> layer path from an ArcGIS services directory (`<base>?f=json`)."""
    services = body.get("services") if isinstance(body, dict) else None
    if not isinstance(services, list):
        raise ArcGISResponseError(f"{url}: the services directory has no services list")
    layers: dict[int, str] = {}
    for service in services:
        if not isinstance(service, dict) or service.get("type") != "FeatureServer":
            continue
        name = str(service.get("name", ""))
        match = _SERVICE_YEARS.search(name)
        if not name.startswith("911") or not match:
            continue
        first, last = int(match[1]), int(match[2] or match[1])
        for year in range(first, last + 1):
            layers[year] = f"{name}/FeatureServer/{year - first}"
    return layers


@dataclass
class LayerRegistry:
    """Which layer holds which year: `overrides` (run config), else the services directory
    (`discovered`), else the built-in table; a year after all of them goes to the newest layer,
    where the raw asset's empty-day refusal catches a service that is not listed yet."""

    overrides: Mapping[int, str] = field(default_factory=dict)
    discovered: Mapping[int, str] = field(default_factory=dict)

    def layer_for_year(self, year: int) -> str:
        if year in self.overrides:
            return self.overrides[year]
        if year < 2013:
            raise SourceError(f"Open Baltimore publishes 911 calls from 2013; no layer for {year}")
        known = {**default_layers(), 2024: LATEST_LAYER, **self.discovered}
        if year in known:
            return known[year]
        return known[max(y for y in known if y < year)]  # the newest layer before it

    def slices(self, start: date, end: date) -> list[tuple[str, date, date]]:
        """Split the inclusive day range by year: (layer, first day, last day)."""
        out = []
        day = start
        while day <= end:
            last = min(end, date(day.year, 12, 31))
            out.append((self.layer_for_year(day.year), day, last))
            day = last + timedelta(days=1)
        return out


class ArcGISResponseError(SourceError):
    """An answer that is not shaped as an ArcGIS REST answer should be; the message names the URL."""


def _whole_number(value: Any, what: str, url: str) -> int:
    """A count or a record limit as a non-negative int, or the client's own error naming the URL."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ArcGISResponseError(f"{url}: {what} is not a number: {value!r}")
    try:
        number = float(value)
    except ValueError:
        raise ArcGISResponseError(f"{url}: {what} is not a number: {value!r}") from None
    if number < 0 or number != int(number):
        raise ArcGISResponseError(f"{url}: {what} is not a whole non-negative number: {value!r}")
    return int(number)


def utc_bounds(first: date, last: date) -> tuple[datetime, datetime]:
    """UTC instants of local midnight starting `first` and local midnight after `last`."""
    lo = datetime.combine(first, time(0), LOCAL_TZ).astimezone(ZoneInfo("UTC"))
    hi = datetime.combine(last + timedelta(days=1), time(0), LOCAL_TZ).astimezone(ZoneInfo("UTC"))
    return lo, hi


def _check_arcgis_body(body: Any, url: str) -> None:
    """ArcGIS reports failures as `{"error": {...}}` with HTTP 200."""
    if isinstance(body, dict) and "error" in body:
        err = body["error"] if isinstance(body["error"], dict) else {}
        code = err.get("code")
        message = f"{url}: ArcGIS error {code}: {err.get('message')} {err.get('details') or ''}".strip()
        if code in RETRY_STATUS:  # an error code inside an HTTP 200 body worth another attempt
            raise RetryableError(message)
        raise SourceError(message)


def normalize_epoch_ms(values: pd.Series) -> pd.Series:
    """callDateTime as epoch ms whether the layer sends numbers or date strings (taken as UTC)."""
    numeric = pd.to_numeric(values, errors="coerce")
    text = values.where(numeric.isna() & values.notna())
    if text.notna().any():
        parsed = pd.to_datetime(text, errors="coerce", utc=True, format="mixed")
        numeric = numeric.fillna(
            pd.Series(parsed.astype("int64") // 1_000_000, index=values.index).where(parsed.notna())
        )
    return numeric.astype("Int64")


def features_to_frame(features: list[dict[str, Any]]) -> pd.DataFrame:
    """ArcGIS features -> the raw call columns (canonical names, epoch ms, latitude/longitude)."""
    rows = []
    for feature in features:
        attributes = feature.get("attributes") or {}
        row = {CANONICAL_FIELDS.get(_squash(k), k): v for k, v in attributes.items()}
        geometry = feature.get("geometry") or {}
        if geometry.get("x") is not None and geometry.get("y") is not None:
            row["longitude"], row["latitude"] = geometry["x"], geometry["y"]
        rows.append(row)
    frame = pd.DataFrame(rows, dtype=object)
    for column in CALL_COLUMNS:
        if column not in frame.columns:
            frame[column] = None
    frame["callDateTime"] = normalize_epoch_ms(frame["callDateTime"])
    for column in ("OBJECTID", "recordId"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("Int64")
    for column in ("latitude", "longitude"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    # NaN coordinates (0,0 "no point" placeholders included) are kept as missing, never invented
    zero = (frame["latitude"] == 0) & (frame["longitude"] == 0)
    frame.loc[zero, ["latitude", "longitude"]] = np.nan
    for column in CALL_COLUMNS:
        if column not in ("OBJECTID", "recordId", "callDateTime", "latitude", "longitude"):
            frame[column] = frame[column].map(lambda v: None if v is None or v != v else str(v))
    return frame[list(CALL_COLUMNS)]


@dataclass
class ArcGISCallsClient:
    base_url: str = field(default_factory=settings.arcgis_base_url)
    registry: LayerRegistry = field(default_factory=LayerRegistry)
    http: JsonHttp = field(default_factory=JsonHttp)
    max_workers: int = 4
    date_field: str = "callDateTime"
    # pages of one query at most: a month of Baltimore's calls is ~110 pages of 1,000; a server
    # that keeps saying "more" past this is looping, and the load stops rather than run forever
    max_pages: int = 2000

    def __post_init__(self) -> None:
        self.http.inspect = _check_arcgis_body
        if not self.base_url.endswith("/"):
            self.base_url += "/"

    def discover_layers(self) -> dict[int, str]:
        """Year -> layer from the services directory (`<base>?f=json`), so a new yearly service is used."""
        return layers_from_directory(self.http.get_json(self.base_url, {"f": "json"}), self.base_url)

    def layer_url(self, layer: str) -> str:
        return self.base_url + layer.strip("/")

    def layer_metadata(self, layer: str) -> dict[str, Any]:
        body = self.http.get_json(self.layer_url(layer), {"f": "json"})
        if not isinstance(body, dict):
            raise ArcGISResponseError(f"{self.layer_url(layer)}: layer metadata is not a JSON object")
        return body

    def _where(self, metadata: dict[str, Any], first: date, last: date) -> str:
        names = {f["name"].lower(): f["name"] for f in metadata.get("fields", [])}
        field_name = names.get(self.date_field.lower(), self.date_field)
        lo, hi = utc_bounds(first, last)
        fmt = "%Y-%m-%d %H:%M:%S"
        return f"{field_name} >= TIMESTAMP '{lo.strftime(fmt)}' AND {field_name} < TIMESTAMP '{hi.strftime(fmt)}'"

    def _query(self, layer: str, params: dict[str, Any]) -> dict[str, Any]:
        body = self.http.get_json(self.layer_url(layer) + "/query", {"f": "json", **params})
        if not isinstance(body, dict):
            raise ArcGISResponseError(f"{self.layer_url(layer)}/query: the answer is not a JSON object")
        return body

    def count(self, layer: str, where: str) -> int:
        body = self._query(layer, {"where": where, "returnCountOnly": "true"})
        if "count" not in body:
            raise ArcGISResponseError(
                f"{self.layer_url(layer)}/query: count query answered without a count: {str(body)[:200]}"
            )
        return _whole_number(body["count"], "count", self.layer_url(layer) + "/query")

    def _page(self, layer: str, where: str, offset: int, size: int) -> dict[str, Any]:
        body = self._query(
            layer,
            {
                "where": where,
                "outFields": "*",
                "orderByFields": "OBJECTID",
                "outSR": "4326",
                "returnGeometry": "true",
                "resultOffset": offset,
                "resultRecordCount": size,
            },
        )
        url = f"{self.layer_url(layer)}/query (resultOffset={offset})"
        features = body.get("features")
        if not isinstance(features, list):
            raise ArcGISResponseError(f"{url}: the page has no features list: {str(body)[:200]}")
        bad = [i for i, f in enumerate(features) if not isinstance(f, dict)]
        if bad:
            raise ArcGISResponseError(f"{url}: feature {bad[0]} is not an object: {features[bad[0]]!r:.100}")
        return body

    def fetch_slice(self, layer: str, first: date, last: date) -> pd.DataFrame:
        """All calls of one layer for days first..last, verified against the layer's count."""
        metadata = self.layer_metadata(layer)
        limit = metadata.get("maxRecordCount")
        page_size = _whole_number(limit, "maxRecordCount", self.layer_url(layer)) if limit is not None else 1000
        page_size = page_size or 1000
        where = self._where(metadata, first, last)
        expected = self.count(layer, where)
        log.info("%s %s..%s: %d calls expected, pages of %d", layer, first, last, expected, page_size)
        features: list[dict[str, Any]] = []
        if expected:
            offsets = list(range(0, expected, page_size))
            if len(offsets) > self.max_pages:
                raise ArcGISResponseError(
                    f"{self.layer_url(layer)}: {expected} calls for {first}..{last} would take {len(offsets)} pages, "
                    f"more than the cap of {self.max_pages}; load a shorter range"
                )
            with ThreadPoolExecutor(max_workers=max(1, self.max_workers)) as pool:
                pages = list(pool.map(lambda o: self._page(layer, where, o, page_size), offsets))
            for page in pages:
                features.extend(page["features"])
            offset = offsets[-1] + page_size
            # the count can be stale by the time the last page is read: follow the server's word,
            # but not into a loop (a "more" with nothing in it, or past the page cap)
            while pages[-1].get("exceededTransferLimit"):
                if not pages[-1]["features"]:
                    raise ArcGISResponseError(
                        f"{self.layer_url(layer)}/query (resultOffset={offset - page_size}): the server says more "
                        "records follow (exceededTransferLimit) but sent an empty page; nothing was loaded"
                    )
                if len(pages) >= self.max_pages:
                    raise ArcGISResponseError(
                        f"{self.layer_url(layer)}: still exceededTransferLimit after {len(pages)} pages (the cap); "
                        "nothing was loaded"
                    )
                pages.append(self._page(layer, where, offset, page_size))
                features.extend(pages[-1]["features"])
                offset += page_size
        frame = features_to_frame(features)
        duplicated = frame["OBJECTID"].duplicated()
        if duplicated.any():
            log.warning("%s: %d records repeated across pages, kept once", layer, int(duplicated.sum()))
            frame = frame[~duplicated]
        if len(frame) != expected:
            raise SourceError(
                f"{layer} {first}..{last}: the layer counts {expected} calls but paging returned {len(frame)} "
                "distinct records; nothing was loaded"
            )
        return frame.reset_index(drop=True)

    def fetch(
        self, start: date, end: date, progress: Callable[[str, date, date, int], None] | None = None
    ) -> pd.DataFrame:
        """Every call of the local days start..end, across layers, a month at a time.

        A month per query keeps each count and page run small, and `progress(layer, first,
        last, calls)` is told after each, so a backfill logs how far it got.
        """
        frames = []
        for layer, first, last in self.registry.slices(start, end):
            month_start = first
            while month_start <= last:
                next_month = (month_start.replace(day=28) + timedelta(days=4)).replace(day=1)
                month_end = min(last, next_month - timedelta(days=1))
                frames.append(self.fetch_slice(layer, month_start, month_end))
                if progress is not None:
                    progress(layer, month_start, month_end, len(frames[-1]))
                month_start = month_end + timedelta(days=1)
        return pd.concat(frames, ignore_index=True) if frames else features_to_frame([])
