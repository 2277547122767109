-- Overdose 911 calls, EMS naloxone administrations and non-fatal overdoses by day and
-- neighborhood, with the neighborhood's CSA, ZIP and police district, so every area filter of
-- the dashboard applies (ZIP and district included). Days and neighborhoods without events have
-- no row; mart_overdose_daily sums it by CSA and fills the zeros.
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

calls as (
    select f.partition_date as day, f.geography_key, count(*) as overdose_calls
    from call_facts as f
    join call_types as ct using (call_type_key)
    where ct.is_overdose
    group by all
),

naloxone as (
    select
        partition_date as day,
        geography_key,
        count(*) as naloxone_administrations,
        count(*) filter (where is_nonfatal_overdose) as nonfatal_overdoses
    from naloxone_facts
    group by all
),

events as (
    select
        day,
        geography_key,
        coalesce(calls.overdose_calls, 0) as overdose_calls,
        coalesce(naloxone.naloxone_administrations, 0) as naloxone_administrations,
        coalesce(naloxone.nonfatal_overdoses, 0) as nonfatal_overdoses
    from calls
    full outer join naloxone using (day, geography_key)
)

select
    events.day,
    events.geography_key,
    geo.neighborhood,
    geo.csa,
    geo.zip_code,
    geo.police_district_code,
    events.overdose_calls,
    events.naloxone_administrations,
    events.nonfatal_overdoses
from events
join geography as geo using (geography_key)
