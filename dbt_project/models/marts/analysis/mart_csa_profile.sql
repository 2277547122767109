-- One row per CSA: health indicators (BCHD's Neighborhood Health Profile and BNIA's Vital
-- Signs) next to call and overdose rates per 1,000 residents per year (annualized over the
-- days the warehouse covers). BNIA's narcotics calls per 1,000 residents is an independent
-- cross-check of our own narcotics call rate (different years: Vital Signs 17 counts 2017).
{%- set vital_signs = var('vital_signs_indicators') %}
with daily as (
    select * from {{ ref('mart_overdose_daily') }}
),

-- calls by month, category and CSA: equal to the fact month by month (its test
-- assert_call_volume_monthly_adds_up_to_the_fact), and 80 thousand rows instead of 13 million
-- fact rows joined to two dimensions at ten years (1.0 s -> a few ms of every update)
call_volume as (
    select * from {{ ref('mart_call_volume_monthly') }}
),

health as (
    select * from {{ ref('stg_bchd_nhp__csa_indicators') }} where not is_city_total
),

vital_signs_long as (
    select * from {{ ref('stg_bnia__vital_signs') }} where not is_city_total
),

coverage as (
    select count(distinct day) as days_covered from daily
),

calls as (
    select
        csa,
        cast(sum(call_count) as bigint) as calls,
        cast(coalesce(sum(call_count) filter (where call_category = 'drugs'), 0) as bigint) as narcotics_calls
    from call_volume
    group by all
),

overdoses as (
    select csa, sum(overdose_calls) as overdose_calls,
        sum(naloxone_administrations) as naloxone_administrations,
        sum(nonfatal_overdoses) as nonfatal_overdoses
    from daily
    group by all
),

vital_signs as (
    select
        csa,
        {%- for column, indicator in vital_signs.items() %}
        max(value) filter (where indicator = '{{ indicator | replace("'", "''") }}') as {{ column }}{{ ',' if not loop.last }}
        {%- endfor %}
    from vital_signs_long
    group by csa
)

select
    h.csa,
    h.population,
    h.median_household_income,
    h.pct_below_poverty_line,
    h.unemployment_rate,
    h.hardship_index,
    h.life_expectancy,
    h.drug_alcohol_mortality_per_10k,
    {%- for column in vital_signs %}
    vs.{{ column }},
    {%- endfor %}
    coverage.days_covered,
    coalesce(c.calls, 0) as calls,
    coalesce(c.narcotics_calls, 0) as narcotics_calls,
    coalesce(o.overdose_calls, 0) as overdose_calls,
    coalesce(o.naloxone_administrations, 0) as naloxone_administrations,
    coalesce(o.nonfatal_overdoses, 0) as nonfatal_overdoses,
    {% for measure in ['calls', 'narcotics_calls', 'overdose_calls', 'naloxone_administrations', 'nonfatal_overdoses'] -%}
    round(1000.0 * coalesce({{ 'c' if measure in ('calls', 'narcotics_calls') else 'o' }}.{{ measure }}, 0)
        / nullif(h.population, 0) * 365.25 / nullif(coverage.days_covered, 0), 3)
        as {{ measure }}_per_1000_per_year{{ ',' if not loop.last }}
    {% endfor %}
from health as h
cross join coverage
left join calls as c on h.csa = c.csa
left join overdoses as o on h.csa = o.csa
left join vital_signs as vs on h.csa = vs.csa
