"""Shared calendar rhythms of the demo generators: seeded per day, time of day, local time."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import numpy as np
import pandas as pd

from orchestration.settings import LOCAL_TZ

EPOCH_DAY = date(2013, 1, 1).toordinal()
UNIX_DAY = date(1970, 1, 1).toordinal()

# Relative call volume by local hour (0..23): quiet before dawn, busy late afternoon/evening.
HOURLY_CALLS = np.array(
    [
        4.2,
        3.6,
        3.0,
        2.4,
        1.9,
        1.7,
        2.0,
        2.8,
        3.6,
        4.2,
        4.6,
        4.8,
        4.9,
        5.0,
        5.1,
        5.2,
        5.3,
        5.4,
        5.4,
        5.3,
        5.1,
        4.9,
        4.7,
        4.4,
    ]
)
# Overdoses peak late morning to evening.
HOURLY_OVERDOSES = np.array(
    [
        2.0,
        1.6,
        1.3,
        1.1,
        1.0,
        1.0,
        1.4,
        2.2,
        3.2,
        4.2,
        5.0,
        5.6,
        6.0,
        6.2,
        6.2,
        6.0,
        5.8,
        5.4,
        5.0,
        4.4,
        3.8,
        3.2,
        2.8,
        2.4,
    ]
)
# Monday..Sunday
WEEKDAY_CALLS = np.array([1.0, 0.98, 0.99, 1.0, 1.06, 1.04, 0.95])


def day_rng(seed: int, day: date, stream: int) -> np.random.Generator:
    """A generator that depends only on (seed, day, stream): partitions regenerate identically."""
    return np.random.default_rng([seed, day.toordinal() - EPOCH_DAY, stream])


def days(start: date, end: date) -> list[date]:
    """Inclusive list of days."""
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def seasonal(day: date, amplitude: float, peak_doy: int = 200) -> float:
    """Annual cycle peaking on day-of-year `peak_doy`."""
    doy = day.timetuple().tm_yday
    return 1.0 + amplitude * np.cos(2 * np.pi * (doy - peak_doy) / 365.25)


def random_local_times(rng: np.random.Generator, day: date, n: int, hourly: np.ndarray) -> pd.DatetimeIndex:
    """`n` sorted, tz-aware America/New_York instants on `day`, hours drawn from `hourly`."""
    return pd.DatetimeIndex(random_epoch_ms(rng, day, n, hourly) * 1_000_000).tz_localize("UTC").tz_convert(LOCAL_TZ)


def _day_offsets(day: date) -> tuple[int, int]:
    """UTC offsets (seconds) at the start of `day` and at 23:59 local: equal unless DST changes."""
    first = datetime.combine(day, time(0), LOCAL_TZ).utcoffset()
    last = datetime.combine(day, time(23, 59), LOCAL_TZ).utcoffset()
    return int(first.total_seconds()), int(last.total_seconds())


def random_epoch_ms(rng: np.random.Generator, day: date, n: int, hourly: np.ndarray) -> np.ndarray:
    """`random_local_times` as epoch milliseconds (int64), the same draws and instants.

    In numbers rather than pandas objects: a ten-year demo draws 3,653 days of calls, and the
    per-day pandas calls cost more than the draws themselves."""
    hours = rng.choice(24, size=n, p=hourly / hourly.sum())
    seconds = hours * 3600 + rng.integers(0, 3600, size=n)
    seconds.sort()
    midnight = (day.toordinal() - UNIX_DAY) * 86_400
    first, last = _day_offsets(day)
    if first == last:  # no DST change today: one offset for the whole day (fast path)
        return (midnight + seconds - first).astype(np.int64) * 1000
    # The repeated hour at the end of DST is split at random between its two readings;
    # the skipped hour at its start moves forward, as a clock would.
    ambiguous = rng.random(n) < 0.5
    naive = (pd.Timestamp(day) + pd.to_timedelta(seconds, unit="s")).to_numpy()
    local = pd.DatetimeIndex(naive).tz_localize(LOCAL_TZ, ambiguous=ambiguous, nonexistent="shift_forward")
    return local.asi8 // 1_000_000
