{{ config(
    materialized='incremental',
    incremental_strategy='replace_days',
    on_schema_change='fail',
    pre_hook={"sql": "{{ plan_fct_calls_days() }}", "transaction": false},
    post_hook="{{ finish_fct_calls_days() }}",
) }}
-- One row per 911 call that passed validation, keyed to every dimension. Incremental by day
-- (macros/incremental_days.sql): the days the validated calls rebuilt, and every day when the
-- description keys or the neighborhoods change (the spellings seed is in its fingerprint).
with validated as (
    select * from {{ ref('int_calls_for_service__validated') }}
),

decisions as (
    select partition_date, source_row, loaded_at, neighborhood_resolved, geography_method
    from validated
    where quarantine_reason is null
    {%- if is_incremental() %}
        and partition_date in {{ pending_days() }}
    {%- endif %}
),

-- the call's own columns come from staging: the validated table keeps only the decision
staged as (
    select * from {{ ref('stg_open_baltimore__calls_for_service') }}
    {%- if is_incremental() %}
    where partition_date in {{ pending_days() }}
    {%- endif %}
),

-- a staged row enters the fact when the validated table decided so for that very row (its day,
-- position and load): a row loaded after the validated table was built matches nothing, and
-- the raw = fact + quarantine check says so
calls as (
    select staged.*, decisions.neighborhood_resolved, decisions.geography_method
    from staged
    join decisions using (partition_date, source_row, loaded_at)
),

call_types as (
    select * from {{ ref('int_call_descriptions__classified') }}
),

geography as (
    select * from {{ ref('dim_geography') }}
),

-- read by the fingerprint only (macros/incremental_calls.sql), not by the select
spellings as (
    select * from {{ ref('call_description_spellings') }}
)

select
    calls.record_id as call_id,
    calls.call_key,
    calls.call_number,
    calls.called_at_local,
    {{ date_key('calls.called_at_local') }} as date_key,
    cast(extract(hour from calls.called_at_local) as integer) as time_of_day_key,
    coalesce(ct.call_type_key, {{ unknown_key() }}) as call_type_key,
    coalesce(geo.geography_key, {{ unknown_key() }}) as geography_key,
    calls.priority,
    calls.district_code,
    calls.police_post,
    calls.council_district,
    calls.census_tract,
    calls.incident_location,
    calls.latitude,
    calls.longitude,
    calls.geography_method,
    calls.partition_date,
    1 as call_count
from calls
left join call_types as ct
    on calls.description_raw = ct.description_raw
left join geography as geo
    on calls.neighborhood_resolved = geo.neighborhood_normalized
    and not geo.is_unknown
