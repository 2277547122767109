"""Demo health indicators by CSA in the layout of BCHD's 2017 Neighborhood Health Profile.

Column names are the NHP's own (`CSA`, `Population`, `LifeExpectancy`, ...), and the last
row is the "Baltimore City" total, as in the real file. Population is the 2010 census count
of the reference; the other indicators are synthetic, derived deterministically from each
CSA's overdose factor so that they correlate the way the real ones do.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from orchestration.demo.reference import CSAS
from orchestration.raw_tables import HEALTH_COLUMNS


def generate_health_indicators(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng([seed, 3])
    rows = []
    for csa in CSAS:
        burden = csa.overdose_factor
        rows.append(
            {
                "CSA": csa.name,
                "Population": csa.population_2010,
                "MedianHHIncome": round(float(95000 / (1 + 0.6 * burden) + rng.normal(0, 4000)), 0),
                "PercentBelowPovertyLine": round(float(8 + 8 * burden + rng.normal(0, 2)), 1),
                "Unemployment": round(float(5 + 4 * burden + rng.normal(0, 1.5)), 1),
                "HardshipIndex": round(float(min(95, 20 + 17 * burden + rng.normal(0, 5))), 1),
                "LifeExpectancy": round(float(80 - 3.2 * burden + rng.normal(0, 1)), 1),
                "DrugAlcoholMortalityRate": round(float(2 + 4.5 * burden + rng.normal(0, 0.8)), 1),
            }
        )
    frame = pd.DataFrame(rows)
    pop = frame["Population"]
    city = {"CSA": "Baltimore City", "Population": int(pop.sum())}
    for col in HEALTH_COLUMNS[2:]:
        city[col] = round(float((frame[col] * pop).sum() / pop.sum()), 1)
    return pd.concat([frame, pd.DataFrame([city])], ignore_index=True)[list(HEALTH_COLUMNS)]


def generate_vital_signs(seed: int) -> pd.DataFrame:
    """Demo BNIA Vital Signs in the raw table's long layout (CSA, indicator, value) plus the city row.

    Only the indicators the warehouse uses (dbt var `vital_signs_indicators`), named as BNIA
    names them; values are synthetic, tied to each CSA's overdose factor like the NHP ones.
    """
    from orchestration import settings

    names = dict(settings.dbt_vars()["vital_signs_indicators"])
    rng = np.random.default_rng([seed, 4])
    recipes = {
        "vs_median_household_income": lambda b: 90000 / (1 + 0.55 * b) + rng.normal(0, 5000),
        "vs_unemployment_rate": lambda b: 4 + 4.5 * b + rng.normal(0, 1.5),
        "vs_pct_families_below_poverty": lambda b: 6 + 9 * b + rng.normal(0, 2.5),
        "vs_pct_vacant_abandoned": lambda b: max(0.0, 1 + 6 * (b - 0.3) + rng.normal(0, 1.5)),
        "vs_narcotics_calls_per_1000": lambda b: max(1.0, 10 + 25 * b + rng.normal(0, 6)),
    }
    rows = []
    for csa in CSAS:
        for column, indicator in names.items():
            rows.append(
                {
                    "CSA": csa.name,
                    "indicator": indicator,
                    "value": round(float(recipes[column](csa.overdose_factor)), 3),
                }
            )
    frame = pd.DataFrame(rows)
    weights = {c.name: c.population_2010 for c in CSAS}
    frame["w"] = frame["CSA"].map(weights)
    city = (
        frame.assign(wv=frame["value"] * frame["w"]).groupby("indicator", sort=False)[["wv", "w"]].sum().reset_index()
    )
    city = pd.DataFrame(
        {"CSA": "Baltimore City", "indicator": city["indicator"], "value": (city["wv"] / city["w"]).round(3)}
    )
    frame = pd.concat([frame.drop(columns="w"), city], ignore_index=True)
    frame["CSA_as_published"] = frame["CSA"]
    return frame[["CSA", "CSA_as_published", "indicator", "value"]]
