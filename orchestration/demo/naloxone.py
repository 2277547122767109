"""Demo EMS naloxone administrations in the layout of BCHD's "Daily Naloxone Report".

One row per patient, every value as text, exactly as the daily `.csv`/`.xlsx` arrives.
Background overdoses follow the neighborhoods' overdose factors; on top of them the demo
injects recurring space-time clusters (see `cluster_for_day`) that surveillance must find.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from orchestration.demo.call_mix import STREETS
from orchestration.demo.reference import neighborhood_frame, neighborhood_weights
from orchestration.demo.rhythms import (
    EPOCH_DAY,
    HOURLY_OVERDOSES,
    day_rng,
    days,
    random_local_times,
    seasonal,
)
from orchestration.raw_tables import NALOXONE_COLUMNS

RESPONSES = (("Improved", 0.78), ("Unchanged", 0.15), ("Worse", 0.03), ("Not Recorded", 0.04))
GENDERS = (("Male", 0.69), ("Female", 0.30), ("Unknown", 0.01))
RACES = (
    ("Black or African American", 0.58),
    ("White", 0.36),
    ("Hispanic or Latino", 0.03),
    ("Asian", 0.005),
    ("Other Race", 0.01),
    ("Not Recorded", 0.015),
)
IMPRESSIONS = (
    ("Overdose - Opioid", 0.55),
    ("Substance/Drug Abuse", 0.2),
    ("Altered Level of Consciousness", 0.12),
    ("Unconscious/Unresponsive", 0.08),
    ("Cardiac Arrest", 0.03),
    ("Respiratory Distress", 0.02),
)
DESTINATIONS = (
    ("Johns Hopkins Hospital", 0.18),
    ("University of Maryland Medical Center", 0.16),
    ("MedStar Harbor Hospital", 0.1),
    ("Sinai Hospital", 0.12),
    ("Mercy Medical Center", 0.12),
    ("Johns Hopkins Bayview Medical Center", 0.12),
    ("MedStar Union Memorial Hospital", 0.1),
    ("Ascension Saint Agnes Hospital", 0.1),
)
DISPOSITIONS = (
    ("Transported", 0.68),
    ("Patient Refused Transport", 0.24),
    ("Treated and Released", 0.05),
    ("Dead at Scene", 0.03),
)
DOSES = (("2", 0.5), ("4", 0.35), ("0.4", 0.1), ("8", 0.05))

ADMINISTRATIONS_PER_DAY = 11.0
CLUSTER_CYCLE_DAYS = 10
CLUSTER_PHASE_DAYS = 3  # shifts the cycles so that one outbreak runs 2024-03-11..17 (the tests' range)
CLUSTER_ACTIVE_DAYS = (0, 1, 2, 3, 4, 5, 6)  # positions in the cycle
CLUSTER_EXTRA_CASES = (3, 4, 4, 5, 5, 6, 6)  # extra non-fatal overdoses on each active day


@dataclass(frozen=True)
class InjectedCluster:
    """An injected outbreak on one day: where, how many extra cases and how tight."""

    day: date
    neighborhood: str
    latitude: float
    longitude: float
    cases: int
    spread_deg: float = 0.0008  # about 90 m


def yearly_trend(year: int) -> float:
    """Naloxone administrations rose steeply to 2018 and have stayed high since."""
    return min(1.0, 0.45 * 1.18 ** (year - 2013))


@functools.cache
def _outbreak_neighborhoods() -> tuple[tuple[str, float, float], ...]:
    """(name, latitude, longitude) of the ten neighborhoods with the highest overdose factor."""
    hoods = neighborhood_frame().sort_values(["overdose_factor", "neighborhood"], ascending=[False, True])
    return tuple((str(r.neighborhood), float(r.latitude), float(r.longitude)) for r in hoods.head(10).itertuples())


def cluster_for_day(day: date) -> InjectedCluster | None:
    """The demo's injected cluster active on `day`, if any.

    Every `CLUSTER_CYCLE_DAYS` days an outbreak lasts seven days in one of the ten neighborhoods
    with the highest overdose factor (a different one each cycle), growing from 3 to 6 extra
    cases a day. The rule depends on the date alone, so every load of a day agrees, and the last
    seven days of any study period hold at least four outbreak days (22 extra cases).
    """
    ordinal = day.toordinal() - EPOCH_DAY + CLUSTER_PHASE_DAYS
    position = ordinal % CLUSTER_CYCLE_DAYS
    if position not in CLUSTER_ACTIVE_DAYS:
        return None
    hot = _outbreak_neighborhoods()
    cycle = ordinal // CLUSTER_CYCLE_DAYS
    name, latitude, longitude = hot[(cycle * 7) % len(hot)]
    # the outbreak's centre sits a little off the neighborhood's point, fixed for the cycle
    offset = np.random.default_rng([cycle, 99]).normal(0, 0.003, 2)
    return InjectedCluster(
        day=day,
        neighborhood=name,
        latitude=float(latitude + offset[0]),
        longitude=float(longitude + offset[1]),
        cases=CLUSTER_EXTRA_CASES[CLUSTER_ACTIVE_DAYS.index(position)],
    )


def _pick(rng: np.random.Generator, pairs: tuple[tuple[str, float], ...], n: int) -> np.ndarray:
    labels = np.array([p[0] for p in pairs], dtype=object)
    weights = np.array([p[1] for p in pairs], dtype=float)
    return labels[rng.choice(len(labels), size=n, p=weights / weights.sum())]


def _text(values: np.ndarray, fmt: str) -> np.ndarray:
    return np.array([fmt.format(v) if np.isfinite(v) else "" for v in values], dtype=object)


def generate_naloxone(start: date, end: date, seed: int, inject_clusters: bool = True) -> pd.DataFrame:
    """Patients given naloxone on every day in [start, end], columns `NALOXONE_COLUMNS`."""
    hoods = neighborhood_frame()
    od_w = neighborhood_weights(hoods, "overdose_factor")
    frames: list[dict[str, np.ndarray | list | str]] = []
    for day in days(start, end):
        rng = day_rng(seed, day, stream=2)
        n_background = int(rng.poisson(ADMINISTRATIONS_PER_DAY * seasonal(day, 0.12, 210) * yearly_trend(day.year)))
        hood = rng.choice(len(hoods), size=n_background, p=od_w)
        lat = hoods["latitude"].to_numpy()[hood] + rng.normal(0, 0.004, n_background)
        lon = hoods["longitude"].to_numpy()[hood] + rng.normal(0, 0.005, n_background)
        response = _pick(rng, RESPONSES, n_background)
        cluster = cluster_for_day(day) if inject_clusters else None
        if cluster is not None:
            k = cluster.cases
            lat = np.concatenate([lat, cluster.latitude + rng.normal(0, cluster.spread_deg, k)])
            lon = np.concatenate([lon, cluster.longitude + rng.normal(0, cluster.spread_deg * 1.25, k)])
            response = np.concatenate([response, np.array(["Improved"] * k, dtype=object)])
        n = len(lat)
        if n == 0:
            continue
        missing = rng.random(n) < 0.02
        lat[missing] = np.nan
        lon[missing] = np.nan
        when = random_local_times(rng, day, n, HOURLY_OVERDOSES)
        order = rng.permutation(n)  # clusters are not all at the end of the day's report
        lat, lon, response = lat[order], lon[order], response[order]
        # a few incidents have a second patient: they share the incident number
        incident_seq = np.cumsum(np.r_[True, rng.random(n - 1) >= 0.03])
        doy = day.timetuple().tm_yday
        frames.append(
            {
                "Incident Date": [day.strftime("%m/%d/%Y")] * n,
                "Incident Number": [f"{day.year}-{doy:03d}{s:03d}" for s in incident_seq],
                "Patient Age": np.clip(rng.normal(42, 12, n), 14, 90).astype(int).astype(str),
                "Patient Gender": _pick(rng, GENDERS, n),
                "Patient Race (E6.12)": _pick(rng, RACES, n),
                "Incident Address": [
                    f"{b} {s}"
                    for b, s in zip(
                        rng.integers(1, 40, n) * 100,
                        np.array(STREETS)[rng.integers(0, len(STREETS), n)],
                        strict=True,
                    )
                ],
                "Primary Impression": _pick(rng, IMPRESSIONS, n),
                "Incident Location Latitude": _text(lat, "{:.6f}"),
                "Incident Location Longitude": _text(lon, "{:.6f}"),
                "Times : Arrived on Scene Time": when.strftime("%m/%d/%Y %H:%M:%S"),
                "Destination Code (E20.2)": _pick(rng, DESTINATIONS, n),
                "Medication Administered (E18.3)": ["Naloxone (Narcan)"] * n,
                "Medication Response - to Med (E18.7)": response,
                "Medication Dosage (E18.5)": _pick(rng, DOSES, n),
                "Destination Patient Disposition (E20.10)": _pick(rng, DISPOSITIONS, n),
            }
        )
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in NALOXONE_COLUMNS})
    # one frame from every day's columns (a frame a day costs more than the draws)
    frame = pd.DataFrame({c: np.concatenate([np.asarray(f[c], dtype=object) for f in frames]) for c in frames[0]})
    # an unimproved patient is not "Dead at Scene" only by chance; keep the report coherent
    improved = frame["Medication Response - to Med (E18.7)"] == "Improved"
    dead = frame["Destination Patient Disposition (E20.10)"] == "Dead at Scene"
    frame.loc[improved & dead, "Destination Patient Disposition (E20.10)"] = "Transported"
    return frame[list(NALOXONE_COLUMNS)]
