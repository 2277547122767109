-- How many calls each normalized description accounts for and whether the mapping seed
-- classifies it: the Unclassified rows are the seed's to-do list.
with calls as (
    select * from {{ ref('fct_calls_for_service') }}
),

call_types as (
    select * from {{ ref('dim_call_type') }}
),

counts as (
    select call_type_key, count(*) as call_count
    from calls
    group by call_type_key
)

select
    ct.call_type_key,
    ct.description_normalized,
    ct.example_raw_description,
    ct.call_category,
    ct.is_mapped,
    coalesce(counts.call_count, 0) as call_count,
    coalesce(counts.call_count, 0) / sum(coalesce(counts.call_count, 0)) over () as share_of_calls
from call_types as ct
left join counts using (call_type_key)
