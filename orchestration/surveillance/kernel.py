"""The Monte Carlo's inner loop compiled with Numba: each replicate's maximum statistic.

Why it can skip most cylinders: a replicate only moves which cases fall in the last `max_days`
days (a few percent of them), so most locations hold no recent case. Along a circle growing one
neighbour at a time, a window's observed count `c` changes only when the added neighbour has
cases in that window, while its expected count `mu` never decreases; and for `c > mu` the
statistic decreases as `mu` grows. Each window's maximum over the circle sizes is therefore
reached where a neighbour with recent cases joins, and only those positions are evaluated. The
value at each evaluated position is the same expression as the NumPy path's, so the maximum is
the same (tested against it, replicate by replicate).

`replicate_maxima` is None when Numba cannot be imported: the scan then uses its NumPy path.
"""

from __future__ import annotations

import math

import numpy as np

try:  # an optional accelerator: the NumPy path gives the same results, slower
    from numba import njit
except ImportError:  # pragma: no cover - exercised where numba is absent
    njit = None


def _replicate_maxima(
    permuted_days: np.ndarray,  # (R, N) each replicate's day index per case
    case_location: np.ndarray,  # (N,)
    first_window_day: np.ndarray,  # (W,) first day of the w+1-day window, decreasing in w
    n_locations: int,
    neighbors: np.ndarray,  # (n, K) locations of each centre's circle, nearest first
    lengths: np.ndarray,  # (n,) how many of them the limits allow (a prefix)
    circle_cases: np.ndarray,  # (n, K) all cases in the circle of k+1 neighbours
    window_totals: np.ndarray,  # (W,) all cases in each window
    total: float,
    min_cases: float,
) -> np.ndarray:
    n_reps, n_cases = permuted_days.shape
    n_windows = first_window_day.shape[0]
    longest = first_window_day[n_windows - 1]
    counts = np.zeros((n_locations, n_windows))
    touched = np.empty(n_cases, dtype=np.int64)
    cumulative = np.zeros(n_windows)
    out = np.zeros(n_reps)
    for r in range(n_reps):
        n_touched = 0
        for i in range(n_cases):
            day = permuted_days[r, i]
            if day >= longest:
                location = case_location[i]
                if counts[location, n_windows - 1] == 0.0:
                    touched[n_touched] = location
                    n_touched += 1
                for w in range(n_windows):
                    if day >= first_window_day[w]:
                        counts[location, w] += 1.0
        best = 0.0
        for centre in range(neighbors.shape[0]):
            for w in range(n_windows):
                cumulative[w] = 0.0
            for k in range(lengths[centre]):
                location = neighbors[centre, k]
                if counts[location, n_windows - 1] == 0.0:
                    continue  # no recent case joins: every window's statistic can only fall
                for w in range(n_windows):
                    cumulative[w] += counts[location, w]
                for w in range(n_windows):
                    c = cumulative[w]
                    if c < min_cases:
                        continue
                    mu = circle_cases[centre, k] * window_totals[w] / total
                    if c > mu:
                        llr = c * math.log(c / mu)
                        rest = total - c
                        if rest > 0.0:
                            llr += rest * math.log(rest / (total - mu))
                        if llr > best:
                            best = llr
        out[r] = best
        for t in range(n_touched):
            for w in range(n_windows):
                counts[touched[t], w] = 0.0
    return out


replicate_maxima = njit(cache=True, nogil=True)(_replicate_maxima) if njit is not None else None
