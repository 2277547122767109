"""Demo 911 calls for service in the attribute layout of the Open Baltimore ArcGIS layers."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from orchestration.demo.call_mix import DESCRIPTION_MIX, OVERDOSE_VARIANTS, PRIORITY_MIX, STREETS
from orchestration.demo.neighborhoods import FEED_SPELLINGS
from orchestration.demo.reference import neighborhood_frame, neighborhood_weights
from orchestration.demo.rhythms import (
    EPOCH_DAY,
    HOURLY_CALLS,
    WEEKDAY_CALLS,
    day_rng,
    days,
    random_epoch_ms,
    seasonal,
)
from orchestration.raw_tables import CALL_COLUMNS
from orchestration.sources.geography import POLICE_DISTRICTS

CALLS_PER_DAY = 3500.0
EPOCH_DATE = date(1970, 1, 1)  # Arrow's date32 counts days from here
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


def _chunks(start: date, end: date, chunk_days: int) -> Iterator[tuple[date, date]]:
    first = start
    while first <= end:
        last = min(end, first + timedelta(days=chunk_days - 1))
        yield first, last
        first = last + timedelta(days=1)


def iter_call_tables(start: date, end: date, seed: int, chunk_days: int = CHUNK_DAYS) -> Iterator[pa.Table]:
    """The calls of [start, end] as Arrow tables of `chunk_days` days, so any range fits in memory
    (what the landing asset writes). Each day is generated from its own seed: chunks concatenate
    to `generate_call_table(start, end)`."""
    for first, last in _chunks(start, end, chunk_days):
        yield generate_call_table(first, last, seed)


def iter_calls(start: date, end: date, seed: int, chunk_days: int = CHUNK_DAYS) -> Iterator[pd.DataFrame]:
    """`iter_call_tables` as pandas frames in `CALL_COLUMNS` (object strings, None where the feed
    leaves a field empty)."""
    for first, last in _chunks(start, end, chunk_days):
        yield generate_calls(first, last, seed)


def generate_call_table(start: date, end: date, seed: int) -> pa.Table:
    """Calls for every day in [start, end] as Arrow: `CALL_COLUMNS`, then `_partition_date`. A demo
    call is drawn inside the local day it is generated for, so its partition is that day (a test
    holds this to the staging rule, across DST changes too)."""
    return _model().table(start, end, seed)


def generate_calls(start: date, end: date, seed: int) -> pd.DataFrame:
    """Calls for every day in [start, end] (inclusive), columns `CALL_COLUMNS`, as pandas."""
    return _model().table(start, end, seed).drop_columns(["_partition_date"]).to_pandas()


@functools.cache
def _model() -> _CallModel:
    return _CallModel()


def _joined(prefix: str, numbers: np.ndarray) -> pa.Array:
    """prefix + the decimal digits of `numbers`, built by Arrow, not one Python object a row."""
    return pc.binary_join_element_wise(pa.scalar(prefix), pc.cast(pa.array(numbers), pa.string()), "")


class _CallModel:
    """The demo's fixed facts (neighborhoods, mixes, spellings) as arrays, built once per range.

    A day draws only numbers (codes into these arrays), in the same order with the same seeded
    generator as ever, so every day regenerates identically; strings are assembled per chunk
    by Arrow's vectorized kernels instead of Python objects, which is what makes ten years take
    seconds rather than minutes.
    """

    def __init__(self) -> None:
        hoods = neighborhood_frame()
        self.n_hoods = len(hoods)
        self.call_w = neighborhood_weights(hoods, "call_factor")
        od_factor = hoods["overdose_factor"].to_numpy(float)
        self.od_factor = od_factor / (self.call_w * od_factor).sum()  # average factor over calls is 1
        desc_labels, self.desc_p = _mix(DESCRIPTION_MIX)
        od_labels, self.od_p = _mix(OVERDOSE_VARIANTS)
        prio_labels, self.prio_p = _mix(PRIORITY_MIX)
        self.n_desc, self.n_od, self.n_prio = len(desc_labels), len(od_labels), len(prio_labels)
        # one code space per text column: descriptions then overdose variants; districts then odd ones
        self.descriptions = pa.array(list(desc_labels) + list(od_labels), pa.string())
        self.priorities = pa.array(list(prio_labels), pa.string())
        self.district_idx = np.array([_DISTRICT_CODES.index(d) for d in hoods["police_district_code"]])
        self.districts = pa.array(_DISTRICT_CODES + list(ODD_DISTRICTS), pa.string())
        self.district_names = pa.array([POLICE_DISTRICTS[d] for d in _DISTRICT_CODES], pa.string())
        spellings, self.n_spellings = _feed_spellings(list(hoods["feed_name"]))
        self.spelling_width = spellings.shape[1]
        # code hood * width + k: the k-th other spelling; the feed's own name has code -1 - hood
        self.spellings = pa.array(spellings.ravel().tolist(), pa.string())
        self.feed_names = pa.array(hoods["feed_name"].tolist(), pa.string())
        self.csas = pa.array(hoods["csa"].tolist(), pa.string())
        self.zips = pa.array(hoods["zip_code"].tolist(), pa.string())
        self.lat = hoods["latitude"].to_numpy()
        self.lon = hoods["longitude"].to_numpy()
        self.council = (np.arange(self.n_hoods) * 7) % 14 + 1
        self.tract_base = 100 + np.arange(self.n_hoods) * 17
        self.streets = pa.array(list(STREETS), pa.string())

    def day(self, day: date, seed: int) -> dict[str, np.ndarray]:
        """One day's draws as numbers and codes (the order of draws is the generator's contract)."""
        rng = day_rng(seed, day, stream=1)
        mean = CALLS_PER_DAY * WEEKDAY_CALLS[day.weekday()] * seasonal(day, 0.08) * volume_trend(day.year)
        n = int(rng.poisson(mean))
        when = random_epoch_ms(rng, day, n, HOURLY_CALLS)
        hood = rng.choice(self.n_hoods, size=n, p=self.call_w)
        desc = rng.choice(self.n_desc, size=n, p=self.desc_p)
        is_od = rng.random(n) < overdose_share(day.year) * self.od_factor[hood]
        desc[is_od] = self.n_desc + rng.choice(self.n_od, size=int(is_od.sum()), p=self.od_p)
        seq = np.arange(1, n + 1)
        yy, doy = day.year % 100, day.timetuple().tm_yday
        lat = self.lat[hood] + rng.normal(0, 0.004, n)
        lon = self.lon[hood] + rng.normal(0, 0.005, n)
        no_point = rng.random(n) < 0.015
        lat[no_point] = np.nan
        lon[no_point] = np.nan
        d_idx = self.district_idx[hood]
        district = d_idx.copy()
        odd = rng.random(n) < 0.003
        district[odd] = len(_DISTRICT_CODES) + rng.integers(0, len(ODD_DISTRICTS), int(odd.sum()))
        feed = -1 - hood
        other = rng.random(n) < OTHER_SPELLING_SHARE
        pick = (rng.random(int(other.sum())) * self.n_spellings[hood[other]]).astype(int)
        feed[other] = hood[other] * self.spelling_width + pick
        block = rng.integers(1, 40, n) * 100
        street = rng.integers(0, len(self.streets), n)
        return {
            "recordId": (day.toordinal() - EPOCH_DAY + 1) * 10_000 + seq,
            "callDateTime": when,
            "priority": rng.choice(self.n_prio, size=n, p=self.prio_p),
            "district": district,
            "description": desc,
            "callNumber": yy * 10_000_000 + doy * 10_000 + seq,
            "block": block,
            "street": street,
            "hood": hood,
            "feed": feed,
            "district_idx": d_idx,
            "post": (d_idx + 1) * 100 + rng.integers(11, 45, n),
            "tract_offset": rng.integers(0, 3, n),
            "no_hood": rng.random(n) < 0.02,
            "latitude": lat,
            "longitude": lon,
            "day": np.full(n, (day - EPOCH_DATE).days, dtype=np.int32),
        }

    def table(self, start: date, end: date, seed: int) -> pa.Table:
        """The calls of [start, end] as one Arrow table: `CALL_COLUMNS`, then `_partition_date`."""
        days(start, end)  # a reversed range is an error, not an empty one
        parts = [self.day(day, seed) for day in days(start, end)]
        if not parts or sum(len(p["recordId"]) for p in parts) == 0:
            return pa.table(
                {**{c: pa.array([], pa.string()) for c in CALL_COLUMNS}, "_partition_date": pa.array([], pa.date32())}
            )
        cols = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        hood, no_hood = cols["hood"], cols["no_hood"]
        record_id = cols["recordId"]

        def geo(values: pa.Array, codes: np.ndarray) -> pa.Array:
            """A geographic field, empty where the feed left the call without a neighborhood."""
            return pc.if_else(pa.array(no_hood), pa.scalar(None, pa.string()), values.take(pa.array(codes)))

        own = cols["feed"] < 0
        feed_name = pc.if_else(
            pa.array(own),
            self.feed_names.take(pa.array(np.where(own, -1 - cols["feed"], 0))),
            self.spellings.take(pa.array(np.where(own, 0, cols["feed"]))),
        )
        return pa.table(
            {
                "OBJECTID": pa.array(record_id - 10_000),
                "recordId": pa.array(record_id),
                "callKey": _joined("K", record_id),
                "callDateTime": pa.array(cols["callDateTime"]),
                "priority": self.priorities.take(pa.array(cols["priority"])),
                "district": self.districts.take(pa.array(cols["district"])),
                "description": self.descriptions.take(pa.array(cols["description"])),
                "callNumber": _joined("P", cols["callNumber"]),
                "incidentLocation": pc.binary_join_element_wise(
                    pc.cast(pa.array(cols["block"]), pa.string()), self.streets.take(pa.array(cols["street"])), " "
                ),
                "Neighborhood": pc.if_else(pa.array(no_hood), pa.scalar(None, pa.string()), feed_name),
                "PoliceDistrict": self.district_names.take(pa.array(cols["district_idx"])),
                "PolicePost": pc.cast(pa.array(cols["post"]), pa.string()),
                "CouncilDistrict": pc.cast(pa.array(self.council[hood]), pa.string()),
                "Community_Statistical_Areas": geo(self.csas, hood),
                "Census_Tracts": _joined("Census Tract ", self.tract_base[hood] + cols["tract_offset"]),
                "ZIPCode": geo(self.zips, hood),
                "latitude": pa.array(cols["latitude"], from_pandas=True),
                "longitude": pa.array(cols["longitude"], from_pandas=True),
                "_partition_date": pc.cast(pa.array(cols["day"]), pa.date32()),
            }
        )
