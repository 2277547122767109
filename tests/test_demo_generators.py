"""The demo generators: deterministic per day, Baltimore-like volumes and mix, real layouts."""

from datetime import date

import numpy as np
import pandas as pd
import pytest

from orchestration.demo.call_mix import DESCRIPTION_MIX, OVERDOSE_VARIANTS, TOP_TEN, TRUTH, variants
from orchestration.demo.calls import generate_calls, iter_calls
from orchestration.demo.naloxone import cluster_for_day, generate_naloxone
from orchestration.demo.neighborhoods import FEED_SPELLINGS, NEIGHBORHOODS
from orchestration.demo.reference import CSAS, neighborhood_frame
from orchestration.raw_tables import CALL_COLUMNS, NALOXONE_COLUMNS
from tests.conftest import shared_file


def test_a_day_regenerates_identically_alone_or_inside_a_range():
    whole = generate_calls(date(2024, 3, 9), date(2024, 3, 11), seed=7)
    alone = generate_calls(date(2024, 3, 10), date(2024, 3, 10), seed=7).reset_index(drop=True)
    inside = whole[whole["recordId"].isin(alone["recordId"])].reset_index(drop=True)
    pd.testing.assert_frame_equal(alone, inside)
    nal_whole = generate_naloxone(date(2024, 3, 9), date(2024, 3, 11), seed=7)
    nal_alone = generate_naloxone(date(2024, 3, 10), date(2024, 3, 10), seed=7)
    pd.testing.assert_frame_equal(
        nal_alone.reset_index(drop=True),
        nal_whole[nal_whole["Incident Date"] == "03/10/2024"].reset_index(drop=True),
    )


def test_chunks_of_a_range_are_the_range():
    whole = generate_calls(date(2024, 2, 25), date(2024, 3, 12), seed=7).reset_index(drop=True)
    chunks = list(iter_calls(date(2024, 2, 25), date(2024, 3, 12), seed=7, chunk_days=5))
    assert len(chunks) == 4  # 17 days: 5 + 5 + 5 + 2
    pd.testing.assert_frame_equal(pd.concat(chunks, ignore_index=True), whole)


def test_calls_have_the_arcgis_attribute_layout_and_unique_ids():
    calls = generate_calls(date(2024, 6, 1), date(2024, 6, 3), seed=1)
    assert tuple(calls.columns) == CALL_COLUMNS
    assert calls["recordId"].is_unique
    assert calls["callDateTime"].dtype == np.int64  # epoch milliseconds


def test_daily_volume_and_weekly_rhythm_look_like_baltimore():
    calls = generate_calls(date(2024, 1, 1), date(2024, 3, 31), seed=1)
    local = pd.to_datetime(calls["callDateTime"], unit="ms", utc=True).dt.tz_convert("America/New_York")
    per_day = local.dt.date.value_counts()
    assert 3000 <= per_day.mean() <= 4000
    by_hour = local.dt.hour.value_counts()
    assert by_hour[17] > 2 * by_hour[5]  # evening rush vs. before dawn
    weekday = local.dt.dayofweek
    assert (weekday == 4).sum() > (weekday == 6).sum()  # Fridays busier than Sundays


def test_local_day_boundaries_hold_across_daylight_saving_changes():
    for day in (date(2024, 3, 10), date(2024, 11, 3)):
        calls = generate_calls(day, day, seed=3)
        local = pd.to_datetime(calls["callDateTime"], unit="ms", utc=True).dt.tz_convert("America/New_York")
        assert set(local.dt.date) == {day}


def test_overdose_calls_rise_over_the_years_and_concentrate_in_21217():
    def overdose_share(year: int) -> float:
        calls = generate_calls(date(year, 5, 1), date(year, 5, 28), seed=1)
        is_od = calls["description"].str.strip().str.upper().isin({"OD", "OVERDOSE", "OD/ OVERDOSE"})
        return is_od.mean(), calls[is_od]

    share_2014, _ = overdose_share(2014)
    share_2024, od_2024 = overdose_share(2024)
    assert share_2024 > 2 * share_2014
    top_zip = od_2024["ZIPCode"].value_counts().index[0]
    assert top_zip == "21217"


def test_calls_carry_realistic_gaps_and_messy_descriptions():
    calls = generate_calls(date(2024, 6, 1), date(2024, 6, 14), seed=1)
    assert 0.01 < calls["Neighborhood"].isna().mean() < 0.04
    assert 0.005 < calls["latitude"].isna().mean() < 0.03
    descriptions = calls["description"].value_counts(normalize=True)
    # the top ten at their public shares of 2,799,916 calls (2015-2018), within sampling error
    for spelling, n in TOP_TEN:
        assert descriptions[spelling] == pytest.approx(n / 2_799_916, rel=0.08), spelling
    assert descriptions[[s for s, _ in TOP_TEN]].sum() == pytest.approx(0.52, abs=0.01)
    # a long tail of real descriptions and the feed's manglings of them
    assert len(descriptions) >= 300
    assert {"HANDGUN VIOLATIO", "ASSAULT BY THREA", "Larceny F/Auto", "LARCENCY", "BUSINESS  CHECK"} <= set(
        descriptions.index
    )


def test_the_description_mix_has_over_300_spellings_each_with_its_meaning():
    assert len(DESCRIPTION_MIX) >= 300
    assert sum(w for _, w in DESCRIPTION_MIX) == pytest.approx(1.0)
    assert set(TRUTH) == {s for s, _ in DESCRIPTION_MIX} | {s for s, _ in OVERDOSE_VARIANTS}
    spellings = {s for s, _ in DESCRIPTION_MIX}
    assert {"*PROTECTIVE ORDE", "SERVE PEACE ORDE", "BY THEAT", "ESCOURT", "ECORT", "**ESCORT**"} <= spellings
    assert {"ProstitutionComp", "ATTMPT BURGLARY", "Aggrav Assault"} <= spellings
    # every mangling stays within the old CAD field when the canonical text fits it
    assert all(len(v) <= 16 for v in variants("PROTECTIVE ORDER") if v.isupper() and " " in v and "  " not in v)


def test_demo_feed_spells_neighborhoods_as_the_real_feed_does():
    calls = generate_calls(date(2024, 6, 1), date(2024, 6, 14), seed=1)
    names = set(calls["Neighborhood"].dropna())
    feed_names = set(neighborhood_frame()["feed_name"])
    assert len(names & feed_names) > 250  # nearly all 278 neighborhoods within two weeks
    assert {"Butcher's Hill", "Carroll - Camden Industrial Area", "University Of Maryland"} <= names
    other = names - feed_names
    assert other and all(n.isupper() or any(n in v for v in FEED_SPELLINGS.values()) for n in other)


@pytest.mark.parametrize("crosswalk", ["mapbaltimore_xwalk_csa2nsa.csv"])
def test_demo_neighborhoods_are_the_crosswalks_with_points_inside_their_polygons(crosswalk):
    """The facts written into demo/neighborhoods.py, checked against the public files."""
    import json

    import shapely
    from shapely.geometry import shape

    xwalk = pd.read_csv(shared_file("data", "geography", crosswalk))
    assert {(n.feed_name, n.csa) for n in NEIGHBORHOODS} == set(zip(xwalk["neighborhood"], xwalk["csa"], strict=True))
    features = json.loads(shared_file("data", "geography", "mapbaltimore_neighborhoods_2020_wgs84.geojson").read_text())
    polygons = {f["properties"]["name"]: shapely.make_valid(shape(f["geometry"])) for f in features["features"]}
    alternates = {f["properties"]["name"]: f["properties"]["name_alt"] for f in features["features"]}
    inside = 0
    for n in NEIGHBORHOODS:
        name = n.boundary_name or n.feed_name
        if name in polygons:
            assert alternates[name] == n.name_alt, name
            # 4-decimal rounding moves a point by at most about 7 m
            assert polygons[name].distance(shapely.Point(n.longitude, n.latitude)) < 1e-4, name
            inside += 1
    assert inside == 274  # the four 2010 areas without a 2020 polygon are placed within their CSA


def test_naloxone_rows_follow_the_daily_report_layout():
    report = generate_naloxone(date(2024, 6, 1), date(2024, 6, 7), seed=1)
    assert tuple(report.columns) == NALOXONE_COLUMNS
    assert report.map(lambda v: isinstance(v, str)).all().all()  # a delivered report is text
    assert pd.to_datetime(report["Incident Date"], format="%m/%d/%Y").notna().all()


def test_injected_clusters_add_tight_cases_on_cluster_days():
    day = next(d for d in pd.date_range("2024-06-01", "2024-06-20").date if cluster_for_day(d))
    cluster = cluster_for_day(day)
    with_clusters = generate_naloxone(day, day, seed=5)
    without = generate_naloxone(day, day, seed=5, inject_clusters=False)
    assert len(with_clusters) == len(without) + cluster.cases
    lat = pd.to_numeric(with_clusters["Incident Location Latitude"], errors="coerce")
    lon = pd.to_numeric(with_clusters["Incident Location Longitude"], errors="coerce")
    near = ((lat - cluster.latitude).abs() < 0.004) & ((lon - cluster.longitude).abs() < 0.005)
    assert near.sum() >= cluster.cases - 1  # a point may be blanked as missing coordinates


def test_reference_covers_baltimores_55_csas_with_unique_neighborhoods():
    assert len({c.name for c in CSAS}) == 55
    hoods = neighborhood_frame()
    assert hoods["neighborhood"].is_unique
    assert set(hoods["csa"]) == {c.name for c in CSAS}
    assert hoods["latitude"].between(39.19, 39.38).all()
    assert hoods["longitude"].between(-76.72, -76.52).all()


def test_generators_reject_a_reversed_range():
    with pytest.raises(ValueError, match="before"):
        generate_calls(date(2024, 1, 2), date(2024, 1, 1), seed=1)


@pytest.mark.parametrize("day", [date(2024, 3, 10), date(2024, 7, 4), date(2024, 11, 3)])
def test_drawn_times_are_the_local_clock_readings_of_their_instants(day):
    """The epoch instants of a day's draws, against Python's own time zone rules: the clock reading
    drawn, read in Baltimore's zone (the repeated hour at either reading; a reading in the skipped
    hour becomes the first reading after it, 03:00, as pandas' `shift_forward` does)."""
    from datetime import UTC, datetime, timedelta
    from zoneinfo import ZoneInfo

    from orchestration.demo.rhythms import HOURLY_CALLS, day_rng, random_epoch_ms

    n = 20_000
    drawn = random_epoch_ms(day_rng(5, day, stream=1), day, n, HOURLY_CALLS)
    rng = day_rng(5, day, stream=1)  # the same draws again, by hand
    hours = rng.choice(24, size=n, p=HOURLY_CALLS / HOURLY_CALLS.sum())
    seconds = np.sort(hours * 3600 + rng.integers(0, 3600, size=n))
    zone = ZoneInfo("America/New_York")
    instants = pd.to_datetime(drawn, unit="ms", utc=True)
    for second, instant in zip(seconds.tolist(), instants, strict=True):
        reading = datetime.combine(day, datetime.min.time()) + timedelta(seconds=second)
        local = instant.tz_convert(zone).tz_localize(None).to_pydatetime()
        after_gap = reading.replace(tzinfo=zone).astimezone(UTC).astimezone(zone).replace(tzinfo=None)
        expected = reading if after_gap == reading else after_gap.replace(minute=0, second=0)  # in the gap
        assert local == expected, (reading, instant)
    assert (np.diff(drawn) >= 0).all() or day == date(2024, 11, 3)  # the repeated hour reads twice
