"""How long is the reported cluster list on SaTScan's NYCfever sample, and how much is luck?

SaTScan reports a secondary cluster only if at least one replicate's maximum LLR fell below it
(rank <= R). Whether NYCfever's 4th cluster (LLR 1.427139) is listed therefore depends on the
Monte Carlo draw. This script measures, on `../shared/data/satscan/NYCfever.*`:
- from many replicates, the probability that one replicate's maximum falls below the LLR of
  each ranked candidate, and from it the chance that a 999-replicate run lists that candidate;
- over a range of seeds, how many clusters a 999-replicate run actually lists.
docs/surveillance.md quotes the results.

Usage: .venv/bin/python bench/satscan_report_length.py [--replicates 400000] [--seeds 2001:2031]
       [--out docs/satscan_report_length.json]
"""

import argparse
import json
from collections import Counter
from dataclasses import replace
from datetime import date
from pathlib import Path

from orchestration.surveillance.satscan_files import read_cas, read_geo
from orchestration.surveillance.scan import ScanParameters, SpaceTimePermutationScan

SATSCAN_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "satscan"
NYC_PARAMS = ScanParameters(max_days=7, max_radius_km=3.0, min_cases=2, replications=999)
START, END = date(2001, 11, 1), date(2001, 11, 24)


def nyc_scan(params: ScanParameters) -> SpaceTimePermutationScan:
    geo = read_geo(SATSCAN_DIR / "NYCfever.geo")
    case_location, case_day = read_cas(SATSCAN_DIR / "NYCfever.cas", geo.ids, START)
    return SpaceTimePermutationScan(geo.ids, geo.latitude, geo.longitude, case_location, case_day, START, END, params)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--replicates", type=int, default=400_000)
    parser.add_argument("--seeds", default="2001:2031", help="first:last+1")
    parser.add_argument("--out", default="docs/satscan_report_length.json")
    args = parser.parse_args()

    big = nyc_scan(replace(NYC_PARAMS, replications=args.replicates, seed=77, workers=2))
    maxima = big.monte_carlo()
    candidates = big.clusters()[:6]
    per_candidate = []
    for rank, cluster in enumerate(candidates, start=1):
        below = int((maxima < cluster.llr - 1e-9).sum())
        q = below / len(maxima)
        per_candidate.append(
            {
                "rank": rank,
                "locations": cluster.locations,
                "llr": round(cluster.llr, 6),
                "replicates_below": below,
                "probability_one_replicate_below": q,
                "probability_listed_by_999_replicate_run": 1 - (1 - q) ** NYC_PARAMS.replications,
            }
        )
        print(per_candidate[-1])

    first, last = (int(x) for x in args.seeds.split(":"))
    listed = {}
    for seed in range(first, last):
        result = nyc_scan(replace(NYC_PARAMS, seed=seed)).run()
        listed[seed] = len(result.clusters)
    print("clusters listed per seed:", listed)
    payload = {
        "data": "NYCfever, 2001/11/01-2001/11/24, windows 1-7 days, <= 3 km, >= 2 cases",
        "replicates": len(maxima),
        "replicate_seed": 77,
        "candidates": per_candidate,
        "listed_by_seed": listed,
        "listed_count_frequency": dict(sorted(Counter(listed.values()).items())),
    }
    Path(args.out).write_text(json.dumps(payload, indent=1) + "\n")


if __name__ == "__main__":
    main()
