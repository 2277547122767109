-- Every spelling key a feed neighborhood name is matched on: each neighborhood's own name and
-- the alternate name the boundary file gives it (e.g. "Butcher's Hill", "Port Covington").
with neighborhoods as (
    select * from {{ ref('stg_reference__neighborhoods') }}
)

select neighborhood_key as name_key, neighborhood_normalized, neighborhood as matched_name, 'name' as name_source
from neighborhoods

union all

select name_alt_key, neighborhood_normalized, name_alt, 'alternate'
from neighborhoods
where name_alt_key is not null
    and name_alt_key not in (select neighborhood_key from neighborhoods)  -- an alternate never shadows a name
