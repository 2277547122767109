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

HEALTH_COLUMNS: tuple[str, ...] = (
    "CSA",
    "Population",
    "MedianHHIncome",
    "PercentBelowPovertyLine",
    "Unemployment",
    "HardshipIndex",
    "LifeExpectancy",
    "DrugAlcoholMortalityRate",
)


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
