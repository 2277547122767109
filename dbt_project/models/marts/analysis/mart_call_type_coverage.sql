-- How many calls each call type (description key) accounts for, whether a rule classifies it and
-- which: the coverage of the classifier by calls and by spelling, and the rule behind each figure.
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
    ct.description_key,
    ct.example_raw_description,
    ct.raw_spellings,
    ct.call_category,
    ct.call_subcategory,
    ct.is_classified,
    ct.rule_id,
    coalesce(counts.call_count, 0) as call_count,
    coalesce(counts.call_count, 0) / sum(coalesce(counts.call_count, 0)) over () as share_of_calls
from call_types as ct
left join counts using (call_type_key)
