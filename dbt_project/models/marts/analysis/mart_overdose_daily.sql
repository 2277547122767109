-- Overdose 911 calls, EMS naloxone administrations and non-fatal overdoses by day and CSA,
-- zero-filled over every CSA (and Unknown) and every day the warehouse has data for.
with call_facts as (
    select * from {{ ref('fct_calls_for_service') }}
),

naloxone_facts as (
    select * from {{ ref('fct_naloxone_administrations') }}
),

call_types as (
    select * from {{ ref('dim_call_type') }}
),

geography as (
    select * from {{ ref('dim_geography') }}
),

dates as (
    select * from {{ ref('dim_date') }}
),

calls as (
    select f.date_key, geo.csa, count(*) as overdose_calls
    from call_facts as f
    join call_types as ct using (call_type_key)
    join geography as geo using (geography_key)
    where ct.is_overdose
    group by all
),

naloxone as (
    select
        f.date_key,
        geo.csa,
        count(*) as naloxone_administrations,
        count(*) filter (where f.is_nonfatal_overdose) as nonfatal_overdoses
    from naloxone_facts as f
    join geography as geo using (geography_key)
    group by all
),

bounds as (
    select min(partition_date) as first_day, max(partition_date) as last_day
    from (
        select partition_date from call_facts
        union all
        select partition_date from naloxone_facts
    )
),

grid as (
    select d.date_key, d.date_day, c.csa
    from dates as d
    cross join (select distinct csa from geography) as c
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
