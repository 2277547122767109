-- EMS naloxone administrations by month, CSA and the patient's response to the medication
-- (Improved, Unchanged, Worse, Not Recorded): aggregates only, no patient rows.
with naloxone_facts as (
    select * from {{ ref('fct_naloxone_administrations') }}
),

geography as (
    select * from {{ ref('dim_geography') }}
)

select
    cast(date_trunc('month', f.partition_date) as date) as month_start,
    geo.csa,
    coalesce(f.medication_response, 'Not Recorded') as medication_response,
    count(*) as administrations
from naloxone_facts as f
join geography as geo using (geography_key)
group by all
