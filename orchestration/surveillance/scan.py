"""Prospective space-time permutation scan statistic (Kulldorff et al. 2005), as SaTScan computes it.

Cylinders are circles centred on each location, grown over its neighbours in order of
distance (limited by a maximum radius and a maximum share of all cases), times windows of
1..`max_days` days that end on the last day of the study period. For a cylinder with `c`
cases, circle total `C_Z` (whole period) and window total `C_W` (all locations), the expected
count is `mu = C_Z * C_W / C` and the statistic the Poisson log-likelihood ratio
`c log(c/mu) + (C-c) log((C-c)/(C-mu))` for `c > mu`. Each centre keeps its best cylinder;
candidates are ranked by statistic, dropping any that shares a location with a better one. Significance
comes from permuting the case dates (locations fixed): `p = (1 + #{replicates with max >=
observed}) / (R + 1)`. Distances follow SaTScan for latitude/longitude input: straight-line
(chord) distance between points on a sphere of radius 6367 km, converted as SaTScan converts them
(`ConvertFromLatLong`); Cartesian input (SaTScan's CoordinatesType=0, e.g. Maryland State Plane
feet) uses plane distances, with the radius in the file's units.

Ties are resolved as SaTScan 10's source does (scanstatistics/satscan):
- neighbours at equal distance enter a circle in order of their coordinates (x, then y, then z:
  `CompareIdentifierDistance`), then of their names;
- a centre keeps the first cylinder that reaches its best statistic (strictly greater replaces:
  `CClusterSet::update`), circles growing one neighbour at a time and, for each circle, windows
  from the shortest to the longest (`TemporalDataEvaluator::CompareClusterSet`);
- candidates are ranked by statistic, equal within 1e-9, then by fewer locations, then by the
  smaller index of the most central location, then of the centre (`CompareClustersRatios`); a
  location's index is its rank in name order (SaTScan keeps identifiers sorted by name).

Which clusters are reported follows SaTScan's results file: the most likely cluster always; a
secondary cluster only while its statistic is at least 0.001 and at least one replicate's
maximum fell below it (rank <= R, i.e. p < 1). With no replications, up to 10 clusters.

The Monte Carlo is vectorized: a replicate only changes which cases fall in the last
`max_days` days, so each batch of replicates is one shuffle, one bincount per window and one
cumulative sum over every centre's sorted neighbours.
"""

from __future__ import annotations

import functools
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, fields
from datetime import date, timedelta

import numpy as np

from orchestration.surveillance import kernel

EARTH_RADIUS_KM = 6367.0
SATSCAN_PI = 3.1415926535897932384626433832795  # as SaTScan writes it (the same double as math.pi)
LATLONG, CARTESIAN = "latlong", "cartesian"  # SaTScan's CoordinatesType 1 and 0
ENGINES = ("auto", "numba", "numpy")
TIE_TOLERANCE = 1e-9  # SaTScan's DBL_CMP_TOLERANCE: statistics this close rank as equal
MIN_LLR_TO_REPORT = 0.001  # SaTScan's floor for reporting a secondary cluster
UNSIMULATED_REPORT_LIMIT = 10  # SaTScan lists at most this many clusters when R = 0
RANK_TOLERANCE = 1e-9  # replicate maxima this close to a cluster's statistic count as ties


@dataclass(frozen=True)
class ScanParameters:
    max_days: int = 7
    # largest circle radius: km for latitude/longitude input, the file's units for Cartesian input
    max_radius_km: float = 1.207  # 0.75 mile
    coordinates: str = LATLONG  # or CARTESIAN (x, y in the file's units)
    # the Monte Carlo's inner loop: "auto" (compiled when numba imports), "numba" or "numpy"
    engine: str = "auto"
    max_share_of_cases: float = 0.5
    min_cases: int = 3
    replications: int = 999
    seed: int = 20130101
    workers: int = 1  # threads for the Monte Carlo (numpy releases the GIL)
    batch: int = 64  # replicates computed at once

    @classmethod
    def from_attributes(cls, source: object) -> ScanParameters:
        """Parameters from any object with attributes of the same names (run config, CLI arguments);
        what it lacks keeps the default."""
        defaults = cls()
        return cls(**{f.name: getattr(source, f.name, getattr(defaults, f.name)) for f in fields(cls)})


@dataclass
class Cluster:
    rank: int
    center: str
    center_latitude: float
    center_longitude: float
    locations: list[str]
    start: date
    end: date
    observed: int
    expected: float
    llr: float
    radius_km: float
    p_value: float | None = None
    recurrence_interval_days: float | None = None

    @property
    def relative_risk(self) -> float:
        return self.observed / self.expected if self.expected else float("inf")

    def to_json(self, cartesian: bool = False) -> dict:
        """As the CLI writes it; with Cartesian input the centre is (x, y) and the radius is in the
        file's units (`radius`), not km."""
        out = asdict(self)
        out["start"], out["end"] = self.start.strftime("%Y/%m/%d"), self.end.strftime("%Y/%m/%d")
        first, second = ("x", "y") if cartesian else ("latitude", "longitude")
        out["center"] = {"location": self.center, first: self.center_latitude, second: self.center_longitude}
        del out["center_latitude"], out["center_longitude"]
        if cartesian:
            out["radius"] = out.pop("radius_km")
        return out


@dataclass
class ScanResult:
    clusters: list[Cluster]
    total_cases: int
    start: date
    end: date
    parameters: ScanParameters
    replicate_maxima: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))
    not_reported: int = 0  # ranked candidates left out by the reporting rule


def satscan_points(first: np.ndarray, second: np.ndarray, coordinates: str = LATLONG) -> np.ndarray:
    """Each location as SaTScan stores it: latitude/longitude on its 6367 km sphere as (x, y, z),
    with its operations in its order (so equal distances come out bitwise equal where SaTScan's
    do); Cartesian input as (x, y)."""
    first, second = np.asarray(first, float), np.asarray(second, float)
    if coordinates == CARTESIAN:
        return np.column_stack([first, second])
    if coordinates != LATLONG:
        raise ValueError(f"coordinates must be {LATLONG!r} or {CARTESIAN!r}, not {coordinates!r}")
    lat, lon = first * SATSCAN_PI / 180.0, second * SATSCAN_PI / 180.0
    return np.column_stack(
        [
            EARTH_RADIUS_KM * np.cos(lon) * np.cos(lat),
            EARTH_RADIUS_KM * np.sin(lon) * np.cos(lat),
            EARTH_RADIUS_KM * np.sin(lat),
        ]
    )


def pairwise_distances(points: np.ndarray) -> np.ndarray:
    """Straight-line distances between every pair of points (squares summed coordinate by coordinate)."""
    total = np.zeros((len(points), len(points)))
    for axis in range(points.shape[1]):
        diff = points[:, axis][:, None] - points[:, axis][None, :]
        total += diff * diff
    return np.sqrt(total)


def chord_distances_km(latitude: np.ndarray, longitude: np.ndarray) -> np.ndarray:
    """Pairwise straight-line distances between points on SaTScan's sphere (radius 6367 km)."""
    return pairwise_distances(satscan_points(latitude, longitude))


def neighbour_order(
    distances: np.ndarray, points: np.ndarray, name_rank: np.ndarray, limit: float = np.inf
) -> tuple[np.ndarray, np.ndarray]:
    """For each centre, the locations within `limit`, nearest first, and their distances (n, K);
    equal distances in SaTScan's order (lesser coordinates first, compared x, then y, then z),
    then by name. A row with fewer than K padded with distance inf (never inside a circle).
    Only the pairs within the radius are sorted (a few dozen a row, not every location)."""
    n = len(distances)
    rows, cols = np.nonzero(distances <= limit) if np.isfinite(limit) else np.indices((n, n)).reshape(2, -1)
    # np.lexsort: the last key is the primary one
    keys = [name_rank[cols]] + [points[cols, axis] for axis in reversed(range(points.shape[1]))]
    picked = np.lexsort(keys + [distances[rows, cols], rows])
    rows, cols = rows[picked], cols[picked]
    counts = np.bincount(rows, minlength=n)
    position = np.arange(len(rows)) - np.repeat(np.cumsum(counts) - counts, counts)
    order = np.zeros((n, max(1, int(counts.max(initial=1)))), dtype=np.int64)
    sorted_d = np.full(order.shape, np.inf)
    order[rows, position] = cols
    sorted_d[rows, position] = distances[rows, cols]
    return order, sorted_d


def xlogy(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """x * log(y), taken as 0 where x == 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(x > 0, x * np.log(np.where(x > 0, y, 1.0)), 0.0)


def _poisson_llr(c: np.ndarray, mu: np.ndarray, total: int) -> np.ndarray:
    """LLR for excess cases; 0 where c <= mu."""
    with np.errstate(divide="ignore", invalid="ignore"):
        llr = xlogy(c, c / mu) + xlogy(total - c, (total - c) / (total - mu))
    return np.where(c > mu, llr, 0.0)


class SpaceTimePermutationScan:
    """Precomputes the circles and expected counts once; `run` adds the Monte Carlo."""

    def __init__(
        self,
        location_ids: list[str],
        latitude: np.ndarray,
        longitude: np.ndarray,
        case_location: np.ndarray,
        case_day: np.ndarray,
        start: date,
        end: date,
        params: ScanParameters | None = None,
    ):
        self.params = params or ScanParameters()
        self.ids = list(location_ids)
        # latitude/longitude, or x/y for Cartesian input (params.coordinates)
        self.latitude, self.longitude = np.asarray(latitude, float), np.asarray(longitude, float)
        # SaTScan indexes locations in name order: its ties go to the lesser index
        self.name_rank = np.argsort(np.argsort(np.array(self.ids, dtype=object), kind="stable"), kind="stable")
        self.start, self.end = start, end
        n_days = (end - start).days + 1
        self.max_days = min(self.params.max_days, n_days)
        case_location, case_day = np.asarray(case_location, np.int64), np.asarray(case_day, np.int64)
        inside = (case_day >= 0) & (case_day < n_days)
        self.case_location, self.case_day = case_location[inside], case_day[inside]
        self.total = len(self.case_location)
        n = len(self.ids)
        self.location_totals = np.bincount(self.case_location, minlength=n).astype(float)
        # cases of each location in the last w days, w = 1..max_days: (n, W)
        self.first_window_day = n_days - np.arange(1, self.max_days + 1)
        self.window_totals = np.array([(self.case_day >= d).sum() for d in self.first_window_day], dtype=float)

        points = satscan_points(self.latitude, self.longitude, self.params.coordinates)
        distances = pairwise_distances(points)
        limit = self.params.max_radius_km + 1e-9
        order, sorted_d = neighbour_order(distances, points, self.name_rank, limit)
        cum_pop = np.cumsum(self.location_totals[order], axis=1)
        allowed = (sorted_d <= limit) & (cum_pop <= self.params.max_share_of_cases * self.total)
        allowed &= np.cumprod(allowed, axis=1).astype(bool)  # a circle stops growing at the first limit
        self.k_max = max(1, int(allowed.sum(axis=1).max()))
        self.neighbors = order[:, : self.k_max]
        self.neighbor_distance = sorted_d[:, : self.k_max]
        self.allowed = allowed[:, : self.k_max]
        self.circle_cases = cum_pop[:, : self.k_max]
        # expected cases of every cylinder: (n, K, W)
        self.expected = self.circle_cases[:, :, None] * self.window_totals[None, None, :] / max(self.total, 1)

    def _window_counts(self, case_day: np.ndarray) -> np.ndarray:
        n = len(self.ids)
        return np.stack(
            [np.bincount(self.case_location[case_day >= d], minlength=n) for d in self.first_window_day], axis=1
        ).astype(float)

    def _cylinder_llr(self, window_counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        observed = np.cumsum(window_counts[self.neighbors], axis=1)  # (n, K, W)
        llr = _poisson_llr(observed, self.expected, self.total)
        llr[~self.allowed] = 0.0
        llr[observed < self.params.min_cases] = 0.0
        return llr, observed

    def _replicate_maxima(self, seeds: np.ndarray) -> np.ndarray:
        """Each replicate's maximum: its seed's permutation of the case days, then the compiled
        kernel (events only: `kernel.py`) or, without Numba or with engine "numpy", every cylinder."""
        permutations = [np.random.default_rng(seed).permutation(self.case_day) for seed in seeds]
        if self._use_kernel():
            return kernel.replicate_maxima(
                np.stack(permutations) if permutations else np.zeros((0, self.total), np.int64),
                self.case_location,
                self.first_window_day.astype(np.int64),
                len(self.ids),
                self.neighbors.astype(np.int64),
                self.allowed.sum(axis=1).astype(np.int64),
                np.ascontiguousarray(self.circle_cases, dtype=float),
                self.window_totals,
                float(max(self.total, 1)),
                float(self.params.min_cases),
            )
        out = np.empty(len(seeds))
        for i, permuted in enumerate(permutations):
            llr, _ = self._cylinder_llr(self._window_counts(permuted))
            out[i] = llr.max(initial=0.0)
        return out

    def _use_kernel(self) -> bool:
        engine = self.params.engine
        if engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}, not {engine!r}")
        if engine == "numba" and kernel.replicate_maxima is None:
            raise RuntimeError("engine 'numba' was asked for, but numba cannot be imported")
        return engine != "numpy" and kernel.replicate_maxima is not None

    def monte_carlo(self) -> np.ndarray:
        """Maximum LLR of each of `replications` date permutations (seeded, reproducible)."""
        reps = self.params.replications
        if reps <= 0 or self.total == 0:
            return np.zeros(0)
        seeds = np.random.SeedSequence(self.params.seed).generate_state(reps, dtype=np.uint64)
        chunks = np.array_split(seeds, max(1, int(np.ceil(reps / self.params.batch))))
        if self.params.workers > 1:
            with ThreadPoolExecutor(self.params.workers) as pool:
                return np.concatenate(list(pool.map(self._replicate_maxima, chunks)))
        return np.concatenate([self._replicate_maxima(c) for c in chunks])

    def clusters(self) -> list[Cluster]:
        """Ranked candidates: each centre's best cylinder, minus those sharing a location with a better one."""
        if self.total == 0:
            return []
        llr, observed = self._cylinder_llr(self._window_counts(self.case_day))
        n, k, w = llr.shape
        flat = llr.reshape(n, -1)
        best = flat.argmax(axis=1)
        best_llr = flat[np.arange(n), best]
        found, used = [], set()
        # each centre's best cylinder is the first reaching its maximum (argmax: circles in growth
        # order, then windows shortest first), as SaTScan keeps it; then SaTScan's ranking of ties
        size = best // w + 1  # locations in each centre's best circle
        central = self.name_rank[self.neighbors[:, 0]]  # the circle's most central location
        order = sorted(
            (int(c) for c in np.flatnonzero(best_llr > 0)),
            key=functools.cmp_to_key(
                lambda a, b: _compare_candidates(
                    (best_llr[a], size[a], central[a], self.name_rank[a]),
                    (best_llr[b], size[b], central[b], self.name_rank[b]),
                )
            ),
        )
        for centre in order:
            if best_llr[centre] <= 0:
                break
            kk, ww = divmod(int(best[centre]), w)
            members = [int(m) for m in self.neighbors[centre, : kk + 1]]
            if used.intersection(members):
                continue
            used.update(members)
            days = ww + 1
            found.append(
                Cluster(
                    rank=len(found) + 1,
                    center=self.ids[centre],
                    center_latitude=float(self.latitude[centre]),
                    center_longitude=float(self.longitude[centre]),
                    locations=sorted(self.ids[m] for m in members),
                    start=self.end - timedelta(days=days - 1),
                    end=self.end,
                    observed=int(observed[centre, kk, ww]),
                    expected=float(self.expected[centre, kk, ww]),
                    llr=float(best_llr[centre]),
                    radius_km=float(self.neighbor_distance[centre, kk]),
                )
            )
        return found

    def run(self) -> ScanResult:
        candidates = self.clusters()
        maxima = self.monte_carlo() if candidates else np.zeros(0)
        reported = reported_clusters(candidates, maxima)
        return ScanResult(
            reported, self.total, self.start, self.end, self.params, maxima, len(candidates) - len(reported)
        )


def _compare_candidates(a: tuple, b: tuple) -> int:
    """SaTScan's `CompareClustersRatios` for one coordinate per location: the higher statistic
    first, equal within `TIE_TOLERANCE`; then fewer locations; then the lesser index of the most
    central location; then of the centre. Each tuple is (llr, locations, central index, centre index)."""
    if abs(a[0] - b[0]) >= TIE_TOLERANCE:
        return -1 if a[0] > b[0] else 1
    for x, y in zip(a[1:], b[1:], strict=True):
        if x != y:
            return -1 if x < y else 1
    return 0


def reported_clusters(candidates: list[Cluster], maxima: np.ndarray) -> list[Cluster]:
    """Give the ranked candidates their p-values and keep the ones SaTScan's results file would list.

    A candidate's rank is 1 + the replicates whose maximum reached its statistic, p = rank / (R + 1).
    The most likely cluster is always reported; a secondary one only if its statistic is at least
    `MIN_LLR_TO_REPORT` and its rank is at most R. Without that rule the list runs on into clusters
    that no replicate ever fell below (p = 1), which SaTScan leaves out. With R = 0 there are no
    p-values and SaTScan lists up to `UNSIMULATED_REPORT_LIMIT` clusters.
    """
    replications = len(maxima)
    if replications == 0:
        return [c for i, c in enumerate(candidates[:UNSIMULATED_REPORT_LIMIT]) if i == 0 or c.llr >= MIN_LLR_TO_REPORT]
    reported = []
    for i, cluster in enumerate(candidates):
        rank = 1 + int((maxima >= cluster.llr - RANK_TOLERANCE).sum())
        if i > 0 and (cluster.llr < MIN_LLR_TO_REPORT or rank > replications):
            break  # candidates are ranked by statistic, so every later one fails too
        cluster.p_value = rank / (replications + 1)
        cluster.recurrence_interval_days = 1.0 / cluster.p_value  # daily prospective analysis
        reported.append(cluster)
    return reported


def scan(location_ids, latitude, longitude, case_location, case_day, start, end, params=None) -> ScanResult:
    return SpaceTimePermutationScan(
        location_ids, latitude, longitude, case_location, case_day, start, end, params
    ).run()
