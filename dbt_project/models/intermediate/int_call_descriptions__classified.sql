-- Every distinct description the feed has sent (as staged: trimmed, inner spaces collapsed) with
-- its description key and call type (macros/call_descriptions.sql: characters, then the
-- spellings seed, then the first matching rule of the rules seed). Computed once per spelling,
-- not once per call: a few thousand spellings stand for millions of calls.
with calls as (
    select * from {{ ref('int_calls_for_service__validated') }}
),

spellings as (
    select distinct description_raw from calls where description_raw is not null
),

keyed as (
    {{ call_description_keys('spellings') }}
),

keys as (
    select distinct description_key from keyed where description_key is not null
),

classified as (
    {{ classify_call_description_keys('keys') }}
)

select
    keyed.description_raw,
    keyed.description_key,
    case when keyed.description_key is null then {{ unknown_key() }}
        else {{ surrogate_key(['keyed.description_key']) }} end as call_type_key,
    classified.rule_id,
    classified.match_type as rule_match_type,
    classified.pattern as rule_pattern,
    coalesce(classified.category, case when keyed.description_key is null then 'Unknown' else 'Unclassified' end)
        as call_category,
    coalesce(classified.subcategory, case when keyed.description_key is null then 'Unknown' else 'Unclassified' end)
        as call_subcategory,
    coalesce(classified.is_overdose, false) as is_overdose,
    classified.rule_id is not null as is_classified
from keyed
left join classified using (description_key)
