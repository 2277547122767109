-- Health indicators by CSA, renamed to snake_case; the city total row is flagged, not removed.
with source as (
    select * from {{ source('bchd_nhp', 'csa_health_indicators') }}
)

select
    {{ clean_text('CSA') }} as csa,
    {{ clean_text('CSA_as_published') }} as csa_as_published,
    upper({{ clean_text('CSA') }}) = 'BALTIMORE CITY' as is_city_total,
    cast(Population as bigint) as population,
    cast(MedianHHIncome as double) as median_household_income,
    cast(PercentBelowPovertyLine as double) as pct_below_poverty_line,
    cast(Unemployment as double) as unemployment_rate,
    cast(HardshipIndex as double) as hardship_index,
    cast(LifeExpectancy as double) as life_expectancy,
    cast(DrugAlcoholMortalityRate as double) as drug_alcohol_mortality_per_10k
from source
