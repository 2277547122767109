"""A local stand-in for an ArcGIS REST feature service, with injectable faults.

It answers what Open Baltimore's layers answer: layer metadata (`?f=json` with fields and
maxRecordCount), `returnCountOnly`, and pages ordered by OBJECTID with `resultOffset` /
`resultRecordCount` and `exceededTransferLimit`, filtering on the `callDateTime` TIMESTAMP
bounds of the `where`. Faults are consumed in order, one per matching request.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pandas as pd
from werkzeug import Request, Response

from orchestration.raw_tables import CALL_COLUMNS

_BOUND = re.compile(r"(\w+)\s*(>=|<)\s*TIMESTAMP\s*'([^']+)'", re.I)


def calls_to_features(calls: pd.DataFrame, lowercase: bool = False, string_dates: bool = False) -> list[dict]:
    """Demo calls as ArcGIS features (attributes + point geometry); optionally a schema variant."""
    features = []
    for row in calls.to_dict("records"):
        attributes = {c: row[c] for c in CALL_COLUMNS if c not in ("latitude", "longitude")}
        attributes = {k: (None if isinstance(v, float) and v != v else v) for k, v in attributes.items()}
        if string_dates:
            attributes["callDateTime"] = datetime.fromtimestamp(attributes["callDateTime"] / 1000, tz=UTC).strftime(
                "%Y-%m-%d %H:%M:%S"
            )
        if lowercase:
            attributes = {k.lower(): v for k, v in attributes.items()}
        lat, lon = row["latitude"], row["longitude"]
        geometry = None if lat != lat else {"x": float(lon), "y": float(lat)}
        features.append({"attributes": attributes, "geometry": geometry})
    return features


@dataclass
class Fault:
    # "429", "500", "timeout", "error200", "error400", "truncated", "duplicate", "drop",
    # "bad_feature" (a string among the features), "bad_count" / "bad_max" (a non-numeric count / maxRecordCount)
    kind: str
    on: str = "page"  # "page", "count", "metadata" or "any"
    retry_after: str | None = None


@dataclass
class Layer:
    features: list[dict]
    max_record_count: int = 1000
    date_field: str = "callDateTime"

    def _ms(self, feature: dict) -> int:
        value = feature["attributes"][self.date_field]
        if isinstance(value, str):
            return int(datetime.fromisoformat(value).replace(tzinfo=UTC).timestamp() * 1000)
        return int(value)

    def select(self, where: str) -> list[dict]:
        rows = self.features
        for _field, op, stamp in _BOUND.findall(where):
            bound = int(datetime.fromisoformat(stamp).replace(tzinfo=UTC).timestamp() * 1000)
            rows = [f for f in rows if (self._ms(f) >= bound if op == ">=" else self._ms(f) < bound)]
        if not rows:
            return []
        key = "OBJECTID" if "OBJECTID" in rows[0]["attributes"] else "objectid"
        return sorted(rows, key=lambda f: f["attributes"][key])


@dataclass
class FakeArcGIS:
    layers: dict[str, Layer]
    faults: list[Fault] = field(default_factory=list)
    read_delay: float = 1.5  # how long a "timeout" fault stalls
    always_more: bool = False  # every page says exceededTransferLimit, even the empty ones past the end
    directory: list[dict] | None = None  # the services directory at the base URL (`?f=json`), if served
    requests: list[str] = field(default_factory=list)

    def _fault_for(self, kind: str) -> Fault | None:
        for i, fault in enumerate(self.faults):
            if fault.on in (kind, "any"):
                return self.faults.pop(i)
        return None

    def __call__(self, request: Request) -> Response:
        path = request.path.strip("/")
        args = request.args
        is_query = path.endswith("/query")
        layer_path = path[: -len("/query")] if is_query else path
        layer = next((v for k, v in self.layers.items() if layer_path.endswith(k)), None)
        kind = "metadata" if not is_query else "count" if args.get("returnCountOnly") == "true" else "page"
        self.requests.append(f"{kind} {layer_path} {args.get('resultOffset', '')}")
        if layer is None and not is_query and path.endswith("rest/services") and self.directory is not None:
            return self._json({"currentVersion": 11.1, "folders": [], "services": self.directory})
        if layer is None:
            return self._json({"error": {"code": 400, "message": "Invalid URL", "details": []}})
        fault = self._fault_for(kind)
        if fault and fault.kind in ("429", "500"):
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            return Response("busy", status=int(fault.kind), headers=headers)
        if fault and fault.kind == "timeout":
            time.sleep(self.read_delay)
        if fault and fault.kind in ("error200", "error400"):
            code = 503 if fault.kind == "error200" else 400
            return self._json({"error": {"code": code, "message": "Unable to complete operation.", "details": []}})
        if kind == "metadata":
            names = list(layer.features[0]["attributes"]) if layer.features else list(CALL_COLUMNS)
            return self._json(
                {
                    "name": layer_path,
                    "maxRecordCount": "lots" if fault and fault.kind == "bad_max" else layer.max_record_count,
                    "fields": [{"name": n, "type": "esriFieldTypeString"} for n in names],
                }
            )
        rows = layer.select(args.get("where", "1=1")) if layer.features else []
        if kind == "count":
            return self._json({"count": "many" if fault and fault.kind == "bad_count" else len(rows)})
        offset, size = int(args.get("resultOffset", 0)), int(args.get("resultRecordCount", layer.max_record_count))
        size = min(size, layer.max_record_count)
        page = rows[offset : offset + size]
        if fault and fault.kind == "duplicate" and offset > 0:
            page = rows[offset - 1 : offset + size]  # the previous page's last record again
        if fault and fault.kind == "drop" and page:
            page = page[1:]  # a record silently missing
        if fault and fault.kind == "bad_feature" and page:
            page = [*page[:-1], "not a feature"]
        body = {"features": page, "exceededTransferLimit": self.always_more or offset + size < len(rows)}
        text = json.dumps(body)
        if fault and fault.kind == "truncated":
            return Response(text[: len(text) // 2], content_type="application/json")
        return Response(text, content_type="application/json")

    @staticmethod
    def _json(body: dict) -> Response:
        return Response(json.dumps(body), content_type="application/json")
