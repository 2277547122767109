-- Every staged call with its resolved neighborhood and the reason it cannot enter the fact
-- table (NULL when it can). The feed's neighborhood wins; a call without one takes the
-- neighborhood its point falls in. Of rows sharing a record id, the most recently loaded
-- one is kept; the others are duplicates.
with calls as (
    select * from {{ ref('stg_open_baltimore__calls_for_service') }}
),

points as (
    select * from {{ ref('stg_geography__point_assignments') }}
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
    case when ranked.neighborhood is not null then upper(ranked.neighborhood) else points.neighborhood_normalized end
        as neighborhood_resolved,
    case
        when ranked.neighborhood is not null then 'feed'
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
-- a pure equi-join (points are unique per coordinate pair); whether the point is used is
-- decided above, so DuckDB can hash-join millions of calls
left join points
    on ranked.latitude = points.latitude
    and ranked.longitude = points.longitude
