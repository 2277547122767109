-- Every staged naloxone administration with its nearest reference neighborhood (when it has
-- a point within `max_neighborhood_distance_km`) and the reason it cannot enter the fact table.
with administrations as (
    select * from {{ ref('stg_ems__naloxone_administrations') }}
),

neighborhoods as (
    select * from {{ ref('stg_reference__neighborhoods') }}
),

nearest as (
    select
        a.partition_date,
        a.incident_number,
        a.patient_sequence,
        arg_min(n.neighborhood_normalized, {{ haversine_km('a.latitude', 'a.longitude', 'n.latitude', 'n.longitude') }})
            as neighborhood_normalized,
        min({{ haversine_km('a.latitude', 'a.longitude', 'n.latitude', 'n.longitude') }}) as distance_km
    from administrations as a
    cross join neighborhoods as n
    where a.latitude is not null and a.longitude is not null
    group by all
)

select
    a.*,
    case when nearest.distance_km <= {{ var('max_neighborhood_distance_km') }}
        then nearest.neighborhood_normalized end as neighborhood_normalized,
    nearest.distance_km as neighborhood_distance_km,
    case
        when a.incident_number is null then 'missing_incident_number'
        when a.incident_date is null then 'unparseable_incident_date'
        when a.incident_date <> a.partition_date then 'incident_date_outside_report_day'
    end as quarantine_reason
from administrations as a
left join nearest
    on a.partition_date = nearest.partition_date
    and a.incident_number = nearest.incident_number
    and a.patient_sequence = nearest.patient_sequence
