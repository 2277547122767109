"""Demo 911 calls for service in the attribute layout of the Open Baltimore ArcGIS layers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta

import numpy as np
import pandas as pd

from orchestration.demo.call_mix import DESCRIPTION_MIX, OVERDOSE_VARIANTS, PRIORITY_MIX, STREETS
from orchestration.demo.neighborhoods import FEED_SPELLINGS
from orchestration.demo.reference import neighborhood_frame, neighborhood_weights
from orchestration.demo.rhythms import (
    EPOCH_DAY,
    HOURLY_CALLS,
    WEEKDAY_CALLS,
    day_rng,
    days,
    random_local_times,
    seasonal,
)
from orchestration.raw_tables import CALL_COLUMNS
from orchestration.sources.geography import POLICE_DISTRICTS

CALLS_PER_DAY = 3500.0
ODD_DISTRICTS = np.array(["TRU", "EVT", "HQ", ""])
_DISTRICT_CODES = list(POLICE_DISTRICTS)


def _mix(pairs: tuple[tuple[str, float], ...]) -> tuple[np.ndarray, np.ndarray]:
    labels = np.array([p[0] for p in pairs], dtype=object)
    weights = np.array([p[1] for p in pairs], dtype=float)
    return labels, weights / weights.sum()


# share of calls whose neighborhood the feed spells another way than the crosswalk does
OTHER_SPELLING_SHARE = 0.05


def _feed_spellings(feed_names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per neighborhood, the other spellings the feed may write (known ones, else upper case),
    as a padded table and the number of spellings in each row."""
    options = [FEED_SPELLINGS.get(name, ()) + (name.upper(),) for name in feed_names]
    width = max(len(o) for o in options)
    table = np.array([list(o) + [o[0]] * (width - len(o)) for o in options], dtype=object)
    return table, np.array([len(o) for o in options])


def overdose_share(year: int) -> float:
    """Citywide share of calls that are overdose calls: rising about 12% a year since 2013."""
    return 0.004 * 1.12 ** (year - 2013)


def volume_trend(year: int) -> float:
    """Total call volume drifts down slowly over the years."""
    return 1.12 - 0.015 * (year - 2013)


# days generated at a time by `iter_calls`: about 110,000 calls, a few tens of MB
CHUNK_DAYS = 31


def iter_calls(start: date, end: date, seed: int, chunk_days: int = CHUNK_DAYS) -> Iterator[pd.DataFrame]:
    """The calls of [start, end] in chunks of `chunk_days` days, so any range fits in memory.
    Each day is generated from its own seed: chunks concatenate to `generate_calls(start, end)`."""
    first = start
    while first <= end:
        last = min(end, first + timedelta(days=chunk_days - 1))
        yield generate_calls(first, last, seed)
        first = last + timedelta(days=1)


def generate_calls(start: date, end: date, seed: int) -> pd.DataFrame:
    """Calls for every day in [start, end] (inclusive), columns `CALL_COLUMNS`."""
    hoods = neighborhood_frame()
    call_w = neighborhood_weights(hoods, "call_factor")
    od_factor = hoods["overdose_factor"].to_numpy(float)
    od_factor = od_factor / (call_w * od_factor).sum()  # average factor over calls is 1
    desc_labels, desc_p = _mix(DESCRIPTION_MIX)
    od_labels, od_p = _mix(OVERDOSE_VARIANTS)
    prio_labels, prio_p = _mix(PRIORITY_MIX)
    district_idx = np.array([_DISTRICT_CODES.index(d) for d in hoods["police_district_code"]])
    district_codes = np.array(_DISTRICT_CODES, dtype=object)
    district_names = np.array([POLICE_DISTRICTS[d] for d in _DISTRICT_CODES], dtype=object)
    spellings, n_spellings = _feed_spellings(list(hoods["feed_name"]))
    council = (np.arange(len(hoods)) * 7) % 14 + 1
    tract_base = 100 + np.arange(len(hoods)) * 17

    parts: list[dict[str, np.ndarray]] = []
    for day in days(start, end):
        rng = day_rng(seed, day, stream=1)
        mean = CALLS_PER_DAY * WEEKDAY_CALLS[day.weekday()] * seasonal(day, 0.08) * volume_trend(day.year)
        n = int(rng.poisson(mean))
        when = random_local_times(rng, day, n, HOURLY_CALLS)
        hood = rng.choice(len(hoods), size=n, p=call_w)
        desc = desc_labels[rng.choice(len(desc_labels), size=n, p=desc_p)]
        is_od = rng.random(n) < overdose_share(day.year) * od_factor[hood]
        desc[is_od] = od_labels[rng.choice(len(od_labels), size=int(is_od.sum()), p=od_p)]
        seq = np.arange(1, n + 1)
        record_id = (day.toordinal() - EPOCH_DAY + 1) * 10_000 + seq
        yy, doy = day.year % 100, day.timetuple().tm_yday
        call_number = "P" + pd.Series(yy * 10_000_000 + doy * 10_000 + seq).astype(str).to_numpy(object)
        lat = hoods["latitude"].to_numpy()[hood] + rng.normal(0, 0.004, n)
        lon = hoods["longitude"].to_numpy()[hood] + rng.normal(0, 0.005, n)
        no_point = rng.random(n) < 0.015
        lat[no_point] = np.nan
        lon[no_point] = np.nan
        d_idx = district_idx[hood]
        district = district_codes[d_idx].copy()
        odd = rng.random(n) < 0.003
        district[odd] = ODD_DISTRICTS[rng.integers(0, len(ODD_DISTRICTS), int(odd.sum()))]
        feed_name = hoods["feed_name"].to_numpy(object)[hood]
        other = rng.random(n) < OTHER_SPELLING_SHARE
        pick = (rng.random(int(other.sum())) * n_spellings[hood[other]]).astype(int)
        feed_name[other] = spellings[hood[other], pick]
        block = rng.integers(1, 40, n) * 100
        street = np.array(STREETS, dtype=object)[rng.integers(0, len(STREETS), n)]
        parts.append(
            {
                "recordId": record_id,
                "callDateTime": when.asi8 // 1_000_000,
                "priority": prio_labels[rng.choice(len(prio_labels), size=n, p=prio_p)],
                "district": district,
                "description": desc,
                "callNumber": call_number,
                "incidentLocation": pd.Series(block).astype(str).to_numpy(object) + " " + street,
                "hood": hood,
                "feed_name": feed_name,
                "district_name": district_names[d_idx],
                "post": (d_idx + 1) * 100 + rng.integers(11, 45, n),
                "council": council[hood],
                "tract": tract_base[hood] + rng.integers(0, 3, n),
                "no_hood": rng.random(n) < 0.02,
                "latitude": lat,
                "longitude": lon,
            }
        )
    if not parts or sum(len(p["recordId"]) for p in parts) == 0:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in CALL_COLUMNS})
    cols = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    hood = cols.pop("hood")
    feed_name = cols.pop("feed_name")
    no_hood = cols.pop("no_hood")

    def geo(values: np.ndarray) -> np.ndarray:
        out = values.astype(object)
        out[no_hood] = None
        return out

    frame = pd.DataFrame(
        {
            "OBJECTID": cols["recordId"] - 10_000,
            "recordId": cols["recordId"],
            "callKey": "K" + cols["recordId"].astype(str).astype(object),
            "callDateTime": cols["callDateTime"],
            "priority": cols["priority"],
            "district": cols["district"],
            "description": cols["description"],
            "callNumber": cols["callNumber"],
            "incidentLocation": cols["incidentLocation"],
            "Neighborhood": geo(feed_name),
            "PoliceDistrict": cols["district_name"],
            "PolicePost": cols["post"].astype(str),
            "CouncilDistrict": cols["council"].astype(str),
            "Community_Statistical_Areas": geo(hoods["csa"].to_numpy(object)[hood]),
            "Census_Tracts": "Census Tract " + pd.Series(cols["tract"]).astype(str).to_numpy(object),
            "ZIPCode": geo(hoods["zip_code"].to_numpy(object)[hood]),
            "latitude": cols["latitude"],
            "longitude": cols["longitude"],
        }
    )
    return frame[list(CALL_COLUMNS)]
