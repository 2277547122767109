-- One row per CSA: health indicators next to call and overdose rates per 1,000 residents
-- per year (annualized over the days the warehouse covers).
with coverage as (
    select count(distinct day) as days_covered from {{ ref('mart_overdose_daily') }}
),

calls as (
    select geo.csa, count(*) as calls
    from {{ ref('fct_calls_for_service') }} as f
    join {{ ref('dim_geography') }} as geo using (geography_key)
    group by all
),

overdoses as (
    select csa, sum(overdose_calls) as overdose_calls,
        sum(naloxone_administrations) as naloxone_administrations,
        sum(nonfatal_overdoses) as nonfatal_overdoses
    from {{ ref('mart_overdose_daily') }}
    group by all
),

health as (
    select * from {{ ref('stg_health__csa_indicators') }} where not is_city_total
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
    coverage.days_covered,
    coalesce(c.calls, 0) as calls,
    coalesce(o.overdose_calls, 0) as overdose_calls,
    coalesce(o.naloxone_administrations, 0) as naloxone_administrations,
    coalesce(o.nonfatal_overdoses, 0) as nonfatal_overdoses,
    {% for measure in ['calls', 'overdose_calls', 'naloxone_administrations', 'nonfatal_overdoses'] -%}
    round(1000.0 * coalesce({{ 'c' if measure == 'calls' else 'o' }}.{{ measure }}, 0) / nullif(h.population, 0)
        * 365.25 / nullif(coverage.days_covered, 0), 3) as {{ measure }}_per_1000_per_year{{ ',' if not loop.last }}
    {% endfor %}
from health as h
cross join coverage
left join calls as c on h.csa = c.csa
left join overdoses as o on h.csa = o.csa
