-- Neighborhood -> CSA -> ZIP and police district, plus the explicit Unknown member ('-1')
-- for facts with no or an unrecognized neighborhood.
with neighborhoods as (
    select * from {{ ref('stg_reference__neighborhoods') }}
)

select
    {{ surrogate_key(['neighborhood_normalized']) }} as geography_key,
    neighborhood,
    neighborhood_normalized,
    csa,
    zip_code,
    police_district_code,
    police_district,
    latitude,
    longitude,
    population,
    false as is_unknown
from neighborhoods

union all

select {{ unknown_key() }}, 'Unknown', 'UNKNOWN', 'Unknown', 'Unknown', 'Unknown', 'Unknown', null, null, null, true
