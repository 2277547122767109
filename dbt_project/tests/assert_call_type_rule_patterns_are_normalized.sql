-- A rule's pattern is compared with description keys, so it must itself be a description key
-- (upper case, single spaces, spellings applied): `Larceny f/Auto` would never match anything.
{{ config(meta={'dagster': {'ref': {'name': 'call_type_rules'}}}) }}
with patterns as (
    select distinct pattern as description_raw from {{ ref('call_type_rules') }}
),

keyed as (
    {{ call_description_keys('patterns') }}
)

select description_raw as pattern, description_key as normalized_form
from keyed
where description_key is distinct from description_raw
