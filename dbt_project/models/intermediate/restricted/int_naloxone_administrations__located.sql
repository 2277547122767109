{{ config(
    materialized='incremental',
    incremental_strategy='replace_days',
    on_schema_change='fail',
    pre_hook={"sql": "{{ plan_located_naloxone_days() }}", "transaction": false},
    post_hook="{{ finish_located_naloxone_days() }}",
) }}
-- Every staged naloxone administration with the neighborhood its point falls in and the
-- reason it cannot enter the fact table (NULL when it can). Surveillance needs a usable
-- point, so rows without one are quarantined rather than counted in an unknown place.
-- Incremental by report day (macros/incremental_days.sql, macros/incremental_naloxone.sql).
with administrations as (
    select * from {{ ref('stg_bchd_ems__naloxone_administrations') }}
    {%- if is_incremental() %}
    where partition_date in {{ pending_days() }}
    {%- endif %}
),

-- read by the fingerprint only (macros/incremental_naloxone.sql), not by the select
boundaries as (
    select * from {{ source('reference', 'boundaries') }}
),

points as (
    select * from {{ ref('stg_geography__point_assignments') }}
)

select
    a.*,
    points.neighborhood_normalized,
    points.assignment_method,
    case
        when a.incident_number is null then 'missing_incident_number'
        when a.incident_date is null then 'unparseable_incident_date'
        -- a report cannot deliver an incident from after its own day (a typo in the date)
        when a.incident_date > a.report_date then 'incident_date_after_report_date'
        when a.latitude is null or a.longitude is null then 'missing_coordinates'
        when not {{ inside_city('a.latitude', 'a.longitude') }} then 'coordinates_outside_baltimore'
        when a.medication_response is null
            or lower(a.medication_response) not in ({{ quoted_list(var('medication_responses') | map('lower') | list) }})
            then 'unknown_medication_response'
        when points.neighborhood is null then 'coordinates_outside_baltimore'
    end as quarantine_reason
from administrations as a
left join points
    on a.latitude = points.latitude
    and a.longitude = points.longitude
