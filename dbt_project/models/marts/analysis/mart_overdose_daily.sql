-- Overdose 911 calls, EMS naloxone administrations and non-fatal overdoses by day and CSA,
-- zero-filled over every CSA (and Unknown) and every day the warehouse has data for.
with calls as (
    select f.date_key, geo.csa, count(*) as overdose_calls
    from {{ ref('fct_calls_for_service') }} as f
    join {{ ref('dim_call_type') }} as ct using (call_type_key)
    join {{ ref('dim_geography') }} as geo using (geography_key)
    where ct.is_overdose
    group by all
),

naloxone as (
    select
        f.date_key,
        geo.csa,
        count(*) as naloxone_administrations,
        count(*) filter (where f.is_nonfatal_overdose) as nonfatal_overdoses
    from {{ ref('fct_naloxone_administrations') }} as f
    join {{ ref('dim_geography') }} as geo using (geography_key)
    group by all
),

bounds as (
    select min(partition_date) as first_day, max(partition_date) as last_day
    from (
        select partition_date from {{ ref('fct_calls_for_service') }}
        union all
        select partition_date from {{ ref('fct_naloxone_administrations') }}
    )
),

grid as (
    select d.date_key, d.date_day, c.csa
    from {{ ref('dim_date') }} as d
    cross join (select distinct csa from {{ ref('dim_geography') }}) as c
    cross join bounds
    where d.date_day between bounds.first_day and bounds.last_day
)

select
    grid.date_day as day,
    grid.date_key,
    grid.csa,
    coalesce(calls.overdose_calls, 0) as overdose_calls,
    coalesce(naloxone.naloxone_administrations, 0) as naloxone_administrations,
    coalesce(naloxone.nonfatal_overdoses, 0) as nonfatal_overdoses
from grid
left join calls on grid.date_key = calls.date_key and grid.csa = calls.csa
left join naloxone on grid.date_key = naloxone.date_key and grid.csa = naloxone.csa
