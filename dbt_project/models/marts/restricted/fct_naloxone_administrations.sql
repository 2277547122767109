{{ config(
    materialized='incremental',
    incremental_strategy='replace_days',
    on_schema_change='fail',
    pre_hook={"sql": "{{ plan_fct_naloxone_days() }}", "transaction": false},
    post_hook="{{ finish_fct_naloxone_days() }}",
) }}
-- One row per patient given naloxone by EMS. Restricted schema: carries the incident point
-- and an age band, so only surveillance code reads it; BI marts aggregate it. Incremental by
-- report day (macros/incremental_days.sql): the days the located administrations rebuilt.
with administrations as (
    select * from {{ ref('int_naloxone_administrations__located') }}
    where quarantine_reason is null
    {%- if is_incremental() %}
        and partition_date in {{ pending_days() }}
    {%- endif %}
),

geography as (
    select * from {{ ref('dim_geography') }}
)

select
    {{ surrogate_key(['a.partition_date', 'a.incident_number', 'a.patient_sequence']) }} as administration_id,
    a.incident_number,
    a.patient_sequence,
    a.incident_date,
    a.arrived_on_scene_at_local,
    {{ date_key('a.incident_date') }} as date_key,
    coalesce(cast(extract(hour from a.arrived_on_scene_at_local) as integer), -1) as time_of_day_key,
    coalesce(geo.geography_key, {{ unknown_key() }}) as geography_key,
    a.latitude,
    a.longitude,
    case
        when a.patient_age is null then 'Unknown'
        when a.patient_age < 18 then '0-17'
        when a.patient_age < 25 then '18-24'
        when a.patient_age < 35 then '25-34'
        when a.patient_age < 45 then '35-44'
        when a.patient_age < 55 then '45-54'
        when a.patient_age < 65 then '55-64'
        else '65+'
    end as age_band,
    coalesce(a.patient_gender, 'Unknown') as sex,
    a.primary_impression,
    a.medication_response,
    a.dose_mg,
    a.disposition,
    a.destination,
    -- BCHD's definition: the patient's condition improved after naloxone (and survived)
    coalesce(lower(a.medication_response) = 'improved' and coalesce(lower(a.disposition), '') <> 'dead at scene', false)
        as is_nonfatal_overdose,
    a.partition_date,
    1 as administration_count
from administrations as a
left join geography as geo
    on a.neighborhood_normalized = geo.neighborhood_normalized
    and not geo.is_unknown
