-- EMS naloxone administrations by month, neighborhood and the patient's response to the
-- medication (Improved, Unchanged, Worse, Not Recorded), with the neighborhood's CSA, ZIP and
-- police district so every area filter of the dashboard applies: aggregates only, no patient rows.
with naloxone_facts as (
    select * from {{ ref('fct_naloxone_administrations') }}
),

geography as (
    select * from {{ ref('dim_geography') }}
),

outcomes as (
    select
        cast(date_trunc('month', partition_date) as date) as month_start,
        geography_key,
        coalesce(medication_response, 'Not Recorded') as medication_response,
        count(*) as administrations
    from naloxone_facts
    group by all
)

select
    outcomes.month_start,
    outcomes.geography_key,
    geo.neighborhood,
    geo.csa,
    geo.zip_code,
    geo.police_district_code,
    outcomes.medication_response,
    outcomes.administrations
from outcomes
join geography as geo using (geography_key)
