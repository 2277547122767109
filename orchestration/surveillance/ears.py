"""EARS C1, C2 and C3 (CDC Early Aberration Reporting System; Hutwagner et al. 2003, 2005).

On a zero-filled daily count series x:
- C1: baseline the 7 days before day t; C1_t = (x_t - mean) / sd.
- C2: baseline the 7 days ending 3 days before t (a 2-day guard band); C2_t likewise.
- C3: sum of max(0, C2 - 1) over days t-2, t-1, t.
The baseline standard deviation (sample, ddof=1) is floored at `min_sd` so a flat baseline
cannot divide by zero; an alert needs C1/C2 > 3 (C3 > 2) and at least `min_count` events on t.
A purely spatial scan cannot see a citywide surge; these can.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

BASELINE_DAYS = 7
THRESHOLDS = {"C1": 3.0, "C2": 3.0, "C3": 2.0}


@dataclass(frozen=True)
class EarsParameters:
    min_sd: float = 0.5
    min_count: int = 3


def _baseline(x: np.ndarray, guard: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and sample sd of the 7 days ending `guard` days before each day (NaN without history)."""
    n = len(x)
    mean, sd = np.full(n, np.nan), np.full(n, np.nan)
    first = BASELINE_DAYS + guard
    if n > first:
        windows = np.lib.stride_tricks.sliding_window_view(x.astype(float), BASELINE_DAYS)
        # windows[j] covers days j..j+6; day t uses j = t - guard - 7
        use = windows[: n - first]
        mean[first:] = use.mean(axis=1)
        sd[first:] = use.std(axis=1, ddof=1)
    return mean, sd


def ears(counts: np.ndarray, params: EarsParameters | None = None) -> pd.DataFrame:
    """Per day: the count, baselines and C1/C2/C3 statistics with their alerts."""
    params = params or EarsParameters()
    x = np.asarray(counts, dtype=float)
    out = {"count": x}
    for name, guard in (("C1", 0), ("C2", 2)):
        mean, sd = _baseline(x, guard)
        sd_used = np.maximum(sd, params.min_sd)
        out[f"{name}_mean"], out[f"{name}_sd"] = mean, sd_used
        out[name] = (x - mean) / sd_used
    c2_excess = np.maximum(0.0, np.nan_to_num(out["C2"], nan=-np.inf) - 1)
    c3 = np.full(len(x), np.nan)
    for t in range(len(x)):
        if t >= 2 and not np.isnan(out["C2"][t - 2]):
            c3[t] = c2_excess[t - 2 : t + 1].sum()
    out["C3"] = c3
    frame = pd.DataFrame(out)
    for name, threshold in THRESHOLDS.items():
        frame[f"{name}_alert"] = (frame[name] > threshold) & (frame["count"] >= params.min_count)
    return frame
