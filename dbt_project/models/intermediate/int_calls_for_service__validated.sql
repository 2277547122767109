{{ config(
    materialized='incremental',
    incremental_strategy='replace_days',
    on_schema_change='fail',
    pre_hook={"sql": "{{ plan_validated_calls_days() }}", "transaction": false},
    post_hook="{{ finish_validated_calls_days() }}",
) }}
-- Every staged call with its resolved neighborhood and the reason it cannot enter the fact
-- table (NULL when it can). The feed's neighborhood name wins when it matches a neighborhood
-- (its name or alternate name, spelling-insensitively: macro name_key); a call whose name
-- matches nothing, or that has none, takes the neighborhood its point falls in. Of rows sharing
-- a record id, the most recently loaded one is kept; the others are duplicates.
-- Incremental by day (macros/incremental_days.sql); the boundaries are part of its fingerprint.
-- not materialized: the ranking below reads only a few of its columns over other days
with staged as not materialized (
    select * from {{ ref('stg_open_baltimore__calls_for_service') }}
),

-- read by the fingerprint only (macros/incremental_calls.sql), not by the select
boundaries as (
    select * from {{ source('reference', 'boundaries') }}
),

-- an incremental run rebuilds the pending days only. Only the columns the decision and the
-- analysis marts read are carried (staging's others are never computed here: the fact reads
-- them from staging, joined on the row's identity, the quarantine stages its rows), and the
-- CTE is not materialized: it is read twice (rows, distinct names).
calls as not materialized (
    select
        record_id,
        called_at_local,
        priority,
        description_raw,
        neighborhood,
        latitude,
        longitude,
        partition_date,
        source_row,
        loaded_at
    from staged
    {%- if is_incremental() %}
    where partition_date in {{ pending_days() }}
    {%- endif %}
),

-- every copy of the calls' record ids, in any day; ranking needs only their keys, so the other
-- days' rows are never staged in full (the kept copy is the same as in a full build)
copies as (
    select record_id, loaded_at, partition_date, source_row
    from staged
    where record_id is not null
    {%- if is_incremental() %}
        and record_id in (select record_id from staged where partition_date in {{ pending_days() }})
    {%- endif %}
),

-- ids with more than one copy: a few hundred among millions, so only their copies are ranked
-- and joined back (ranking and joining every copy cost a full build about 2 s)
duplicated_ids as (
    select record_id from copies group by record_id having count(*) > 1
),

copy_ranks as (
    select
        partition_date,
        source_row,
        loaded_at,
        row_number() over (
            partition by record_id order by loaded_at desc, partition_date desc, source_row
        ) as record_rank
    from copies
    where record_id in (select record_id from duplicated_ids)
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

-- a row is identified by its day, position and load (tested unique); an id with one copy ranks 1
ranked as (
    select
        calls.*,
        case when calls.record_id is not null then coalesce(copy_ranks.record_rank, 1) end as record_rank
    from calls
    left join copy_ranks using (partition_date, source_row, loaded_at)
)

-- the row's identity, the text the analysis marts group by, and the decision. The copy of the
-- call's other columns that this table once held took about half of a ten-year build of it
-- (25-31 s against 14 s by hand); fct_calls_for_service takes them from staging and the
-- quarantine from raw (staged with the same macro), joined on (partition_date, source_row,
-- loaded_at), which costs them some of that back (the three models: 33 s against 35-39 s;
-- docs/performance.md, eighteenth round).
select
    ranked.partition_date,
    ranked.source_row,
    ranked.loaded_at,
    ranked.record_id,
    ranked.called_at_local,
    ranked.description_raw,
    ranked.neighborhood,
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
