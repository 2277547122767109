"""The whole graph on a short demo range: reconciliation, joins, coverage, idempotence, checks."""

from datetime import date

import dagster as dg
import duckdb
import pytest

from orchestration import settings
from orchestration.demo.calls import generate_calls
from orchestration.demo.naloxone import generate_naloxone
from tests.conftest import TEST_END, TEST_START

pytestmark = pytest.mark.slow


def _q(path, sql, params=None):
    with duckdb.connect(str(path), read_only=True) as conn:
        return conn.execute(sql, params or []).fetchall()


def _one(path, sql, params=None):
    return _q(path, sql, params)[0][0]


def test_every_check_passed_and_every_mart_was_built(built):
    path, result = built
    evaluations = result.get_asset_check_evaluations()
    assert len(evaluations) > 50
    failed = [e for e in evaluations if not e.passed]
    assert [e.check_name for e in failed if e.severity == dg.AssetCheckSeverity.ERROR] == []
    # the expected warnings: the demo's injected outbreak is an active spike, and the demo's rare
    # unclassifiable spellings that first appear in the last week are new to review
    new_unclassified = _one(
        path,
        """select count(*) from marts.mart_unclassified_call_descriptions
        where first_seen > (select max(last_seen) from marts.mart_unclassified_call_descriptions) - 7""",
    )
    expected = ["no_active_overdose_spike"] + (
        ["assert_no_new_unclassified_call_descriptions"] if new_unclassified else []
    )
    assert sorted(e.check_name for e in failed) == sorted(expected)
    for table in (
        "fct_calls_for_service",
        "dim_call_type",
        "dim_geography",
        "dim_date",
        "dim_time_of_day",
        "mart_call_volume_monthly",
        "mart_overdose_daily",
        "mart_overdose_weekly",
        "mart_overdose_monthly",
        "mart_csa_profile",
    ):
        assert _one(path, f"select count(*) from marts.{table}") > 0, table


def test_raw_rows_equal_what_the_generators_produce_for_the_range(built):
    path, _ = built
    calls = generate_calls(TEST_START, TEST_END, settings.demo_seed())
    naloxone = generate_naloxone(TEST_START, TEST_END, settings.demo_seed())
    assert _one(path, "select count(*) from raw.calls_for_service") == len(calls)
    assert _one(path, "select count(*) from raw.naloxone_administrations") == len(naloxone)
    days = _q(path, "select distinct _partition_date from raw.calls_for_service order by 1")
    assert [d for (d,) in days][0] == TEST_START and [d for (d,) in days][-1] == TEST_END
    assert len(days) == (TEST_END - TEST_START).days + 1


@pytest.mark.parametrize(
    ("raw", "fact", "quarantine"),
    [
        ("raw.calls_for_service", "marts.fct_calls_for_service", "quarantine.calls_for_service"),
        (
            "raw.naloxone_administrations",
            "restricted.fct_naloxone_administrations",
            "restricted.quarantine_naloxone_administrations",
        ),
    ],
)
def test_every_raw_row_is_in_the_fact_or_in_quarantine(built, raw, fact, quarantine):
    path, _ = built
    raw_n = _one(path, f"select count(*) from {raw}")
    assert raw_n > 0
    assert raw_n == _one(path, f"select count(*) from {fact}") + _one(path, f"select count(*) from {quarantine}")


def test_every_call_joins_to_every_dimension(built):
    path, _ = built
    total = _one(path, "select count(*) from marts.fct_calls_for_service")
    joined = _one(
        path,
        """
        select count(*) from marts.fct_calls_for_service f
        join marts.dim_date using (date_key)
        join marts.dim_time_of_day using (time_of_day_key)
        join marts.dim_call_type using (call_type_key)
        join marts.dim_geography using (geography_key)""",
    )
    assert joined == total
    nal_total = _one(path, "select count(*) from restricted.fct_naloxone_administrations")
    nal_joined = _one(
        path,
        """
        select count(*) from restricted.fct_naloxone_administrations f
        join marts.dim_date using (date_key)
        join marts.dim_time_of_day using (time_of_day_key)
        join marts.dim_geography using (geography_key)""",
    )
    assert nal_joined == nal_total


def test_calls_without_a_neighborhood_are_placed_by_their_point(built):
    """Demo boundaries are Voronoi cells, so the right neighborhood is the nearest demo point:
    recomputed here by brute force, independent of the shapely code under test."""
    import numpy as np

    from orchestration.demo.reference import neighborhood_frame

    path, _ = built
    rows = _q(
        path,
        """select f.latitude, f.longitude, g.neighborhood, f.geography_method
        from marts.fct_calls_for_service f join marts.dim_geography g using (geography_key)
        where f.geography_method like 'point%' or f.geography_key = '-1'""",
    )
    hoods = neighborhood_frame()
    placed = [(lat, lon, n) for lat, lon, n, m in rows if m == "point_within"]
    assert len(placed) > 100
    lat = np.array([p[0] for p in placed])[:, None]
    lon = np.array([p[1] for p in placed])[:, None]
    nearest = hoods["neighborhood"].to_numpy()[
        np.argmin((lat - hoods["latitude"].to_numpy()) ** 2 + (lon - hoods["longitude"].to_numpy()) ** 2, axis=1)
    ]
    assert [p[2] for p in placed] == list(nearest)
    raw_unplaceable = _one(
        path,
        """select count(*) from raw.calls_for_service
        where nullif(trim(Neighborhood), '') is null and latitude is null""",
    )
    unknown = [r for r in rows if r[2] == "Unknown"]
    assert raw_unplaceable > 0 and len(unknown) >= raw_unplaceable
    assert all(r[0] is None or r[3] == "point_none" for r in unknown)


def test_the_classifier_recovers_what_each_demo_spelling_stands_for(built):
    """The demo sends real descriptions mangled the ways the feed mangles them; the category each
    spelling stands for (call_mix.TRUTH) is written apart from the dbt seeds that classify them."""
    from orchestration.demo.call_mix import TOP_TEN, TRUTH

    path, _ = built
    rows = _q(
        path,
        """select v.description_raw, ct.call_category, count(*)
        from marts.fct_calls_for_service f
        join marts.dim_call_type ct using (call_type_key)
        join intermediate.int_calls_for_service__validated v on v.record_id = f.call_id and v.quarantine_reason is null
        group by all""",
    )
    calls = sum(n for *_, n in rows)
    assert calls == _one(path, "select count(*) from marts.fct_calls_for_service")
    raw_spelling = {r: r.strip() for r in TRUTH}
    truth = {raw_spelling[r]: c for r, c in TRUTH.items()}
    agree = sum(n for spelling, category, n in rows if truth[spelling] == category)
    assert agree / calls >= 0.98
    classified_calls = sum(n for _, category, n in rows if category != "Unclassified")
    assert classified_calls / calls >= 0.98
    spellings = {spelling for spelling, _, _ in rows}
    classified = {spelling for spelling, category, _ in rows if category != "Unclassified"}
    assert len(spellings) >= 300 and len(classified) / len(spellings) >= 0.90
    by_spelling = {spelling: category for spelling, category, _ in rows}
    for spelling, _ in TOP_TEN:
        assert by_spelling[spelling] == truth[spelling], spelling
    # the noise the demo sends is left Unclassified, not forced into a category
    noise = [s for s, c in truth.items() if c == "Unclassified" and s in by_spelling]
    assert noise and all(by_spelling[s] == "Unclassified" for s in noise)


def test_unclassified_spellings_are_listed_for_review_with_counts_and_suggestions(built):
    path, _ = built
    listed = {
        key: (calls, suggestion)
        for key, calls, suggestion in _q(
            path, "select description_key, calls, suggested_rule from marts.mart_unclassified_call_descriptions"
        )
    }
    unclassified_calls = _one(
        path,
        """select count(*) from marts.fct_calls_for_service join marts.dim_call_type using (call_type_key)
        where call_category = 'Unclassified'""",
    )
    assert sum(c for c, _ in listed.values()) == unclassified_calls > 0
    # the demo's codes (P, 7C) are like nothing, a run-together LARCENY F/AUTO is like LARCENY F/AUTO
    assert listed["7C"][1] is None
    assert listed["LARCENYF/AUTO"][1].startswith("exact,LARCENYF/AUTO,property,")


def test_local_dates_survive_the_dst_change(built):
    path, _ = built
    # 2024-03-10 has 23 local hours; no call of that partition may fall on another local date
    wrong = _one(
        path,
        """select count(*) from marts.fct_calls_for_service
        where partition_date = date '2024-03-10' and cast(called_at_local as date) <> partition_date""",
    )
    assert wrong == 0
    assert (
        _one(
            path,
            """select count(*) from marts.fct_calls_for_service
        where partition_date = date '2024-03-10' and extract(hour from called_at_local) = 2""",
        )
        == 0
    )


@pytest.mark.parametrize(
    ("day", "name", "observed"),
    [  # from the OPM federal holiday calendars
        ("2024-11-28", "Thanksgiving Day", True),
        ("2025-01-20", "Martin Luther King Jr. Day", True),
        ("2025-05-26", "Memorial Day", True),
        ("2024-09-02", "Labor Day", True),
        ("2022-06-19", "Juneteenth National Independence Day", False),  # a Sunday
        ("2020-06-19", None, False),  # before Juneteenth became a federal holiday
    ],
)
def test_dim_date_knows_federal_holidays(built, day, name, observed):
    path, _ = built
    row = _q(
        path,
        "select federal_holiday_name, is_federal_holiday_observed from marts.dim_date where date_day = ?",
        [date.fromisoformat(day)],
    )[0]
    assert row == (name, observed)
    if day == "2022-06-19":
        assert (
            _one(path, "select observed_holiday_name from marts.dim_date where date_day = date '2022-06-20'")
            == "Juneteenth National Independence Day"
        )


def test_overdose_marts_add_up_to_the_facts(built):
    path, _ = built
    od_calls = _one(
        path,
        """select count(*) from marts.fct_calls_for_service
        join marts.dim_call_type using (call_type_key) where is_overdose""",
    )
    assert od_calls > 0
    for mart in ("mart_overdose_daily", "mart_overdose_weekly", "mart_overdose_monthly"):
        assert _one(path, f"select sum(overdose_calls) from marts.{mart}") == od_calls
        assert _one(path, f"select sum(naloxone_administrations) from marts.{mart}") == _one(
            path, "select count(*) from restricted.fct_naloxone_administrations"
        )
    n_days = (TEST_END - TEST_START).days + 1
    n_csas = _one(path, "select count(distinct csa) from marts.dim_geography")
    assert _one(path, "select count(*) from marts.mart_overdose_daily") == n_days * n_csas  # zero-filled


def test_csa_profile_rates_follow_from_counts_and_population(built):
    path, _ = built
    n_days = (TEST_END - TEST_START).days + 1
    rows = _q(path, "select csa, population, calls, calls_per_1000_per_year from marts.mart_csa_profile")
    assert len(rows) == 55
    for csa, population, calls, rate in rows:
        assert rate == pytest.approx(1000 * calls / population * 365.25 / n_days, abs=0.001), csa


def test_csa_profile_counts_the_facts_calls_in_each_csa(built):
    """The profile reads the monthly mart (much smaller than the fact); its counts are those of
    the fact's rows, placed in a CSA through the geography dimension."""
    path, _ = built
    rows = _q(
        path,
        """select p.csa, p.calls, coalesce(f.calls, 0)
           from marts.mart_csa_profile as p
           left join (select g.csa, count(*) as calls from marts.fct_calls_for_service
                      join marts.dim_geography as g using (geography_key) group by 1) as f using (csa)""",
    )
    assert len(rows) == 55
    assert [(csa, calls) for csa, calls, _ in rows] == [(csa, fact) for csa, _, fact in rows]
    assert sum(calls for _, calls, _ in rows) > 0.9 * _one(path, "select count(*) from marts.fct_calls_for_service")


def test_csa_profile_carries_vital_signs_and_our_narcotics_rate(built):
    """BNIA's indicators sit beside our own rates; narcotics calls are counted from the raw
    descriptions the demo generates as drugs calls (call_mix.TRUTH), independently of the classifier."""
    from orchestration.demo.health import generate_vital_signs

    path, _ = built
    csa = "Penn North/Reservoir Hill"
    demo = generate_vital_signs(settings.demo_seed())
    income = demo[(demo["CSA"] == csa) & (demo["indicator"] == "Median Household Income")]["value"].item()
    narcotics_per_1000 = demo[
        (demo["CSA"] == csa) & (demo["indicator"] == "Number of Narcotics Calls for Service per 1,000 Residents")
    ]["value"].item()
    row = _q(
        path,
        """select vs_median_household_income, vs_narcotics_calls_per_1000, narcotics_calls,
            narcotics_calls_per_1000_per_year, population from marts.mart_csa_profile where csa = ?""",
        [csa],
    )[0]
    assert row[0] == pytest.approx(income) and row[1] == pytest.approx(narcotics_per_1000)
    from orchestration.demo.call_mix import TRUTH

    drugs = [spelling.strip() for spelling, category in TRUTH.items() if category == "drugs"]
    # calls the warehouse placed in the CSA (placement is tested on its own above and below) whose
    # raw description the demo generated as a drugs call
    counted = _one(
        path,
        r"""select count(*) from marts.fct_calls_for_service f
        join marts.dim_geography g using (geography_key)
        join (select distinct recordId, _partition_date, description from raw.calls_for_service) r
            on r.recordId = f.call_id and r._partition_date = f.partition_date
        where g.csa = ? and list_contains(?, trim(r.description))""",
        [csa, drugs],
    )
    assert row[2] == counted > 0
    n_days = (TEST_END - TEST_START).days + 1
    assert row[3] == pytest.approx(1000 * counted / row[4] * 365.25 / n_days, abs=0.001)


def test_marts_expose_no_patient_level_rows(built):
    path, _ = built
    columns = {
        c for (c,) in _q(path, "select column_name from information_schema.columns where table_schema = 'marts'")
    }
    assert not columns & {"patient_age", "patient_race", "incident_number", "age_band", "sex"}


def test_the_warehouse_and_the_publication_hold_no_fsst_compressed_text(built, tmp_path):
    """Every writer (the raw loads, dbt, the publication) leaves out the compression methods
    `settings.DUCKDB_DISABLED_COMPRESSION` names. The same rows written by a connection with
    DuckDB's defaults do use FSST, so its absence is the setting's doing; and the text columns
    are stored compressed (dictionary), so the file was read as written, not from its log."""
    path, _ = built
    assert settings.DUCKDB_DISABLED_COMPRESSION == "fsst"
    tables = {
        path: ["raw.calls_for_service", "intermediate.int_calls_for_service__validated", "marts.fct_calls_for_service"],
        settings.serving_path(): ["marts.fct_calls_for_service"],
    }

    def text_compression(database, table: str) -> set[str]:
        schema, name = table.split(".")
        return {
            method.upper()
            for (method,) in _q(
                database,
                f"""select distinct compression from pragma_storage_info('{table}')
                where column_name in (select column_name from information_schema.columns
                  where table_schema = '{schema}' and table_name = '{name}' and data_type = 'VARCHAR')""",
            )
        }

    for database, names in tables.items():
        for table in names:
            methods = text_compression(database, table)
            assert "FSST" not in methods, (database, table, methods)
            assert "DICTIONARY" in methods, (database, table, methods)
    default = tmp_path / "defaults.duckdb"
    with duckdb.connect(str(default)) as conn:
        conn.execute(f"attach '{path}' as built (read_only)")
        conn.execute("create schema marts")
        conn.execute("create table marts.fct_calls_for_service as select * from built.marts.fct_calls_for_service")
    assert "FSST" in text_compression(default, "marts.fct_calls_for_service")


def test_rerunning_a_partition_changes_no_counts(built):
    from orchestration.run_all import run_range

    path, _ = built
    tables = [
        "raw.calls_for_service",
        "raw.naloxone_administrations",
        "marts.fct_calls_for_service",
        "restricted.fct_naloxone_administrations",
        "quarantine.calls_for_service",
        "marts.mart_overdose_daily",
    ]
    before = {t: _one(path, f"select count(*) from {t}") for t in tables}
    again = run_range(date(2024, 3, 10), date(2024, 3, 10), instance=dg.DagsterInstance.ephemeral())
    assert again.success
    assert {t: _one(path, f"select count(*) from {t}") for t in tables} == before


def test_feed_neighborhood_names_match_by_spelling_and_fall_back_to_the_point(warehouse_copy, session_instance):
    """Variant spellings of demo neighborhoods resolve by name; a name that matches nothing is placed by
    its point (at a neighborhood's own reference point, which its Voronoi cell contains) or is Unknown."""
    import dagster as dg

    from orchestration.assets.dbt import warehouse_dbt_models
    from orchestration.assets.reference import point_assignments
    from orchestration.definitions import defs

    day = date(2024, 3, 6)
    with duckdb.connect(str(warehouse_copy)) as conn:
        josephs = conn.execute(
            "select latitude, longitude from raw.neighborhoods where neighborhood = 'Saint Josephs'"
        ).fetchone()
        spelled = [("st. josephs", None), ("PENN-NORTH", None), (" Reservoir  Hill. ", None), ("BUTCHER'S HILL", None)]
        unmatched = [("Nowhere Land", josephs), ("Nowhere Land", None)]
        for i, (name, point) in enumerate(spelled + unmatched):
            lat, lon = point if point else (None, None)
            conn.execute(
                f"""insert into raw.calls_for_service select * replace (
                    990000000 + {i} as recordId, ? as Neighborhood, ?::double as latitude,
                    ?::double as longitude, _source_row + 9000000 + {i} as _source_row,
                    now() as _loaded_at)
                from raw.calls_for_service where _partition_date = ? and priority = 'Low'
                order by recordId limit 1""",
                [name, lat, lon, day],
            )
    result = dg.materialize(
        [point_assignments, warehouse_dbt_models],
        resources=defs.resources,
        instance=session_instance,
        raise_on_error=False,
    )
    assert result.success
    rows = dict(
        _q(
            warehouse_copy,
            """select f.call_id - 990000000, g.neighborhood from marts.fct_calls_for_service f
            join marts.dim_geography g using (geography_key) where f.call_id >= 990000000""",
        )
    )
    assert [rows.get(i) for i in range(6)] == [
        "Saint Josephs",
        "Penn North",
        "Reservoir Hill",
        "Butchers Hill",  # the boundary's alternate name, spelled in capitals
        "Saint Josephs",
        "Unknown",
    ]
    [unresolved] = _q(
        warehouse_copy,
        "select feed_neighborhood, calls, calls_placed_by_point, calls_unknown "
        "from marts.mart_unresolved_neighborhood_names where feed_neighborhood = 'Nowhere Land'",
    )
    assert unresolved == ("Nowhere Land", 2, 1, 1)


def test_the_demo_feeds_real_neighborhood_names_resolve(built):
    """The demo feed writes the crosswalk's spellings (`Butcher's Hill`, `Stadium Area`), which the
    demo boundaries carry as alternate names, as the real 2020 file does; other spellings
    (`Booth-Boyd`, capitals) resolve by spelling or by point."""
    path, _ = built
    named, by_name, placed = _q(
        path,
        """select count(*), count(*) filter (where neighborhood_name_matched),
            count(*) filter (where neighborhood_resolved is not null)
        from intermediate.int_calls_for_service__validated
        where quarantine_reason is null and neighborhood is not null""",
    )[0]
    assert by_name / named >= 0.98 and placed / named >= 0.99
    stadium = _q(
        path,
        """select distinct neighborhood_resolved from intermediate.int_calls_for_service__validated
        where neighborhood = 'Stadium Area'""",
    )
    assert stadium == [("STADIUM/ENTERTAINMENT AREA",)]
