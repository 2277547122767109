-- Every staged call with its resolved neighborhood and the reason it cannot enter the fact
-- table (NULL when it can). The feed's neighborhood name wins when it matches a neighborhood
-- (its name or alternate name, spelling-insensitively: macro name_key); a call whose name
-- matches nothing, or that has none, takes the neighborhood its point falls in. Of rows sharing
-- a record id, the most recently loaded one is kept; the others are duplicates.
with calls as (
    select * from {{ ref('stg_open_baltimore__calls_for_service') }}
),

points as (
    select * from {{ ref('stg_geography__point_assignments') }}
),

names as (
    select * from {{ ref('int_reference__neighborhood_names') }}
),

-- the key of each distinct feed spelling, computed once per spelling rather than per call
name_matches as (
    select seen.neighborhood, names.neighborhood_normalized
    from (select distinct neighborhood from calls where neighborhood is not null) as seen
    join names on {{ name_key('seen.neighborhood') }} = names.name_key
),

ranked as (
    select
        *,
        row_number() over (
            partition by record_id order by loaded_at desc, partition_date desc, source_row
        ) as record_rank
    from calls
)

select
    ranked.*,
    coalesce(name_matches.neighborhood_normalized, points.neighborhood_normalized) as neighborhood_resolved,
    name_matches.neighborhood_normalized is not null as neighborhood_name_matched,
    case
        when name_matches.neighborhood_normalized is not null then 'feed'
        when points.latitude is not null then 'point_' || points.assignment_method
    end as geography_method,
    case
        when ranked.record_id is null then 'missing_record_id'
        when ranked.called_at_local is null then 'unparseable_timestamp'
        when ranked.record_rank > 1 then 'duplicate_record_id'
        when ranked.latitude is not null and not {{ inside_city('ranked.latitude', 'ranked.longitude') }}
            then 'impossible_coordinates'
        when ranked.priority is not null and ranked.priority not in ({{ quoted_list(var('priority_codes')) }})
            then 'unknown_priority_code'
    end as quarantine_reason
from ranked
left join name_matches on ranked.neighborhood = name_matches.neighborhood
-- a pure equi-join (points are unique per coordinate pair); whether the point is used is
-- decided above, so DuckDB can hash-join millions of calls
left join points
    on ranked.latitude = points.latitude
    and ranked.longitude = points.longitude
