-- Every normalized call description seen in the data, mapped through the call_type_mapping
-- seed. Descriptions the seed does not list get category 'Unclassified' (counted in
-- mart_call_type_coverage); calls with no description use the Unknown member ('-1').
with calls as (
    select * from {{ ref('int_calls_for_service__validated') }}
),

mapping as (
    select * from {{ ref('call_type_mapping') }}
),

descriptions as (
    select description_normalized, min(description_raw) as example_raw_description
    from calls
    where description_normalized is not null
    group by description_normalized
)

select
    {{ surrogate_key(['d.description_normalized']) }} as call_type_key,
    d.description_normalized,
    d.example_raw_description,
    coalesce(m.category, 'Unclassified') as call_category,
    coalesce(m.subcategory, 'Unclassified') as call_subcategory,
    coalesce(m.is_overdose, false) as is_overdose,
    m.description_normalized is not null as is_mapped
from descriptions as d
left join mapping as m on d.description_normalized = m.description_normalized

union all

select {{ unknown_key() }}, null, null, 'Unknown', 'Unknown', false, false
