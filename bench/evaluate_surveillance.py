"""Evaluate the overdose surveillance methods on demo background data with injected outbreaks.

Background: demo non-fatal overdoses without the demo's own clusters (`inject_clusters=False`).
- False alarms: daily prospective scans (and EARS on citywide and per-CSA counts) over a
  cluster-free period; alarms per year = alarm days / days x 365.
- Sensitivity and timeliness: outbreaks of `extra` cases a day for `days` days, ~100 m across,
  injected at random hot-spot neighborhoods and dates; each is watched by daily analyses from its
  first day to two days after its last. Detected = a spike (p < 0.05) whose circle holds an
  injected case (scan), or an EARS alert in the outbreak's CSA (C1/C2/C3); days to detection
  counts from the outbreak's first day (1 = detected on day one).

Usage: .venv/bin/python bench/evaluate_surveillance.py [--outbreaks 8] [--replications 199]
Writes docs/surveillance_evaluation.json; docs/surveillance.md quotes it.
"""

import argparse
import json
import time
from datetime import date, timedelta

import numpy as np
import pandas as pd

from orchestration.demo.naloxone import generate_naloxone
from orchestration.demo.reference import neighborhood_frame
from orchestration.surveillance.ears import EarsParameters, ears
from orchestration.surveillance.scan import ScanParameters, SpaceTimePermutationScan

START, END = date(2024, 1, 1), date(2025, 6, 30)
STUDY_DAYS = 30


def background(seed: int) -> pd.DataFrame:
    frame = generate_naloxone(START, END, seed=seed, inject_clusters=False)
    frame = frame[frame["Medication Response - to Med (E18.7)"] == "Improved"]
    out = pd.DataFrame(
        {
            "lat": pd.to_numeric(frame["Incident Location Latitude"], errors="coerce"),
            "lon": pd.to_numeric(frame["Incident Location Longitude"], errors="coerce"),
            "day": pd.to_datetime(frame["Incident Date"], format="%m/%d/%Y").dt.date,
        }
    ).dropna()
    return out


def assign_csa(frame: pd.DataFrame, hoods: pd.DataFrame) -> np.ndarray:
    d = (frame["lat"].to_numpy()[:, None] - hoods["latitude"].to_numpy()) ** 2 + (
        (frame["lon"].to_numpy()[:, None] - hoods["longitude"].to_numpy()) * 0.77
    ) ** 2
    return hoods["csa"].to_numpy()[d.argmin(axis=1)]


def scan_day(cases: pd.DataFrame, day: date, params: ScanParameters):
    start = day - timedelta(days=STUDY_DAYS - 1)
    window = cases[(cases["day"] >= start) & (cases["day"] <= day)]
    keys = window["lat"].round(4).astype(str) + "," + window["lon"].round(4).astype(str)
    ids, index = np.unique(keys.to_numpy(), return_inverse=True)
    first = window.assign(key=keys.to_numpy()).drop_duplicates("key").set_index("key").loc[ids]
    scan = SpaceTimePermutationScan(
        list(ids),
        first["lat"].to_numpy(),
        first["lon"].to_numpy(),
        index,
        np.array([(d - start).days for d in window["day"]]),
        start,
        day,
        params,
    )
    return scan.run(), ids, index, window


def ears_alert_days(counts: pd.Series, params: EarsParameters) -> dict[str, set]:
    stats = ears(counts.to_numpy(), params)
    return {m: {counts.index[i] for i in np.flatnonzero(stats[f"{m}_alert"].to_numpy())} for m in ("C1", "C2", "C3")}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--outbreaks", type=int, default=8)
    parser.add_argument("--replications", type=int, default=199)
    parser.add_argument("--fa-days", type=int, default=120)
    parser.add_argument("--out", default="docs/surveillance_evaluation.json")
    args = parser.parse_args()
    began = time.time()
    rng = np.random.default_rng(7)
    hoods = neighborhood_frame()
    hot = hoods.sort_values("overdose_factor", ascending=False).head(15).reset_index(drop=True)
    base = background(seed=11)
    base["csa"] = assign_csa(base, hoods)
    params = ScanParameters(replications=args.replications, seed=3)
    ears_params = EarsParameters()
    all_days = pd.date_range(START, END).date

    # false alarms on cluster-free data
    fa_days = [END - timedelta(days=i) for i in range(args.fa_days)]
    scan_alarms = 0
    for day in fa_days:
        result, *_ = scan_day(base, day, params)
        scan_alarms += any(c.p_value is not None and c.p_value < 0.05 for c in result.clusters)
    citywide = base.groupby("day").size().reindex(all_days, fill_value=0)
    per_csa = base.groupby(["day", "csa"]).size().unstack(fill_value=0).reindex(all_days, fill_value=0)
    fa = {"scan": scan_alarms / len(fa_days) * 365}
    window_days = set(fa_days)
    for method in ("C1", "C2", "C3"):
        city = ears_alert_days(citywide, ears_params)[method] & window_days
        csa_alarm_days = set()
        for csa in per_csa.columns:
            csa_alarm_days |= ears_alert_days(per_csa[csa], ears_params)[method] & window_days
        fa[f"EARS {method} citywide"] = len(city) / len(fa_days) * 365
        fa[f"EARS {method} any CSA"] = len(csa_alarm_days) / len(fa_days) * 365

    # sensitivity and days to detection
    scenarios = []
    for extra, duration in ((1, 3), (2, 3), (2, 5), (3, 5), (4, 5)):
        outcomes = {"scan": [], "EARS C1": [], "EARS C2": [], "EARS C3": []}
        for _ in range(args.outbreaks):
            row = hot.iloc[rng.integers(len(hot))]
            first = START + timedelta(days=int(rng.integers(60, (END - START).days - 10)))
            centre = (row["latitude"] + rng.normal(0, 0.003), row["longitude"] + rng.normal(0, 0.003))
            injected = pd.DataFrame(
                [
                    {
                        "lat": round(centre[0] + rng.normal(0, 0.0008), 6),
                        "lon": round(centre[1] + rng.normal(0, 0.001), 6),
                        "day": first + timedelta(days=d),
                        "csa": row["csa"],
                    }
                    for d in range(duration)
                    for _ in range(extra)
                ]
            )
            cases = pd.concat([base, injected], ignore_index=True)
            injected_keys = set(injected["lat"].round(4).astype(str) + "," + injected["lon"].round(4).astype(str))
            detected = None
            for offset in range(duration + 2):
                day = first + timedelta(days=offset)
                result, ids, *_ = scan_day(cases, day, params)
                if any(
                    c.p_value < 0.05 and injected_keys & set(c.locations)
                    for c in result.clusters
                    if c.p_value is not None
                ):
                    detected = offset + 1
                    break
            outcomes["scan"].append(detected)
            series = cases[cases["csa"] == row["csa"]].groupby("day").size().reindex(all_days, fill_value=0)
            alerts = ears_alert_days(series, ears_params)
            for method in ("C1", "C2", "C3"):
                hits = [
                    (d - first).days + 1
                    for d in sorted(alerts[method])
                    if first <= d <= first + timedelta(days=duration + 1)
                ]
                outcomes[f"EARS {method}"].append(hits[0] if hits else None)
        summary = {"extra_cases_per_day": extra, "days": duration, "outbreaks": args.outbreaks}
        for method, found in outcomes.items():
            hits = [d for d in found if d is not None]
            summary[method] = {
                "sensitivity": round(len(hits) / len(found), 3),
                "median_days_to_detection": float(np.median(hits)) if hits else None,
            }
        scenarios.append(summary)
        print(json.dumps(summary))
    report = {
        "measured": time.strftime("%Y-%m-%d"),
        "background_nonfatal_per_day": round(len(base) / len(all_days), 1),
        "replications": args.replications,
        "false_alarm_days_evaluated": len(fa_days),
        "false_alarms_per_year": {k: round(v, 1) for k, v in fa.items()},
        "scenarios": scenarios,
        "seconds": round(time.time() - began, 1),
    }
    print(json.dumps(report["false_alarms_per_year"]))
    with open(args.out, "w") as handle:
        json.dump(report, handle, indent=1)


if __name__ == "__main__":
    main()
