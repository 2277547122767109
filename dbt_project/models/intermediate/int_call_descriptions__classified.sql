-- Every distinct description the feed has sent (as staged: trimmed) with
-- its description key and call type (macros/call_descriptions.sql: characters, then the
-- spellings seed, then the first matching rule of the rules seed). Computed once per spelling,
-- not once per call: a few thousand spellings stand for millions of calls.
with calls as (
    select * from {{ ref('int_calls_for_service__validated') }}
),

spellings as (
    select distinct description_raw from calls where description_raw is not null
),

classified as (
    {{ classify_call_descriptions('spellings') }}
)

select
    description_raw,
    description_key,
    case when description_key is null then {{ unknown_key() }}
        else {{ surrogate_key(['description_key']) }} end as call_type_key,
    rule_id,
    match_type as rule_match_type,
    pattern as rule_pattern,
    coalesce(category, case when description_key is null then 'Unknown' else 'Unclassified' end)
        as call_category,
    coalesce(subcategory, case when description_key is null then 'Unknown' else 'Unclassified' end)
        as call_subcategory,
    coalesce(is_overdose, false) as is_overdose,
    rule_id is not null as is_classified
from classified
