-- Neighborhood assigned to each distinct point by point-in-polygon (see orchestration/sources/geography.py).
with source as (
    select * from {{ source('geography', 'point_assignments') }}
)

select
    cast(latitude as double) as latitude,
    cast(longitude as double) as longitude,
    {{ clean_text('neighborhood') }} as neighborhood,
    {{ normalized_text('neighborhood') }} as neighborhood_normalized,
    method as assignment_method
from source
