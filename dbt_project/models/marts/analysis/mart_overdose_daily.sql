-- Overdose 911 calls, EMS naloxone administrations and non-fatal overdoses by day and CSA,
-- zero-filled over every CSA (and Unknown) and every day the warehouse has data for. The
-- counts are mart_overdose_daily_by_area's (the neighborhood grain) summed by CSA: the events
-- are counted in one place.
with by_area as (
    select * from {{ ref('mart_overdose_daily_by_area') }}
),

call_facts as (
    select * from {{ ref('fct_calls_for_service') }}
),

naloxone_facts as (
    select * from {{ ref('fct_naloxone_administrations') }}
),

geography as (
    select * from {{ ref('dim_geography') }}
),

dates as (
    select * from {{ ref('dim_date') }}
),

by_csa as (
    select
        day,
        csa,
        sum(overdose_calls) as overdose_calls,
        sum(naloxone_administrations) as naloxone_administrations,
        sum(nonfatal_overdoses) as nonfatal_overdoses
    from by_area
    group by all
),

bounds as (
    -- every day with any call or administration (not only days with an overdose)
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
    coalesce(by_csa.overdose_calls, 0) as overdose_calls,
    coalesce(by_csa.naloxone_administrations, 0) as naloxone_administrations,
    coalesce(by_csa.nonfatal_overdoses, 0) as nonfatal_overdoses
from grid
left join by_csa on grid.date_day = by_csa.day and grid.csa = by_csa.csa
