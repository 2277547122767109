-- BNIA Vital Signs indicators by CSA, one row per CSA and indicator (CSA in canonical spelling).
with source as (
    select * from {{ source('bnia', 'vital_signs') }}
)

select
    {{ clean_text('CSA') }} as csa,
    {{ clean_text('CSA_as_published') }} as csa_as_published,
    upper({{ clean_text('CSA') }}) = 'BALTIMORE CITY' as is_city_total,
    {{ clean_text('indicator') }} as indicator,
    cast(value as double) as value
from source
