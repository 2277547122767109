-- Feed neighborhood spellings that match no neighborhood (name or alternate name), with how many
-- calls carried them, when, and how many of those calls their point placed anyway: the list to
-- review when the feed or the boundaries change their names.
with calls as (
    select * from {{ ref('int_calls_for_service__validated') }}
    where quarantine_reason is null
)

select
    neighborhood as feed_neighborhood,
    count(*) as calls,
    cast(min(called_at_local) as date) as first_seen,
    cast(max(called_at_local) as date) as last_seen,
    count(*) filter (where neighborhood_resolved is not null) as calls_placed_by_point,
    count(*) filter (where neighborhood_resolved is null) as calls_unknown
from calls
where neighborhood is not null and not neighborhood_name_matched
group by neighborhood
