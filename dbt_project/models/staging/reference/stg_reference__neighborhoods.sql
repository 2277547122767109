-- Neighborhood reference, cleaned; `neighborhood_normalized` is the join key facts use, and
-- `neighborhood_key` / `name_alt_key` the spelling-insensitive keys feed names are matched on.
with source as (
    select * from {{ source('reference', 'neighborhoods') }}
)

select
    {{ clean_text('neighborhood') }} as neighborhood,
    {{ normalized_text('neighborhood') }} as neighborhood_normalized,
    {{ name_key('neighborhood') }} as neighborhood_key,
    {{ clean_text('name_alt') }} as name_alt,
    {{ name_key(clean_text('name_alt')) }} as name_alt_key,
    {{ clean_text('csa') }} as csa,
    {{ clean_text('zip_code') }} as zip_code,
    {{ normalized_text('police_district_code') }} as police_district_code,
    {{ clean_text('police_district') }} as police_district,
    cast(latitude as double) as latitude,
    cast(longitude as double) as longitude,
    cast(population as bigint) as population
from source
