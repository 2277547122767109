-- Boundary polygons for maps drawn without a basemap (dashboard, reports): CSAs, neighborhoods
-- and police districts as WKT in WGS84, as the reference load stored them.
with boundaries as (
    select * from {{ source('reference', 'boundaries') }}
)

select
    layer,
    name,
    code,
    population,
    geometry_wkt
from boundaries
