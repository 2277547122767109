-- One row per description key (the feed's spellings after normalization; see
-- macros/call_descriptions.sql), classified by the first matching rule of the call_type_rules
-- seed; keys no rule matches are 'Unclassified'. Key '-1' is the Unknown member for calls without
-- a usable description.
with spellings as (
    select * from {{ ref('int_call_descriptions__classified') }}
),

keys as (
    select
        call_type_key,
        description_key,
        min(description_raw) as example_raw_description,
        count(*) as raw_spellings,
        any_value(call_category) as call_category,
        any_value(call_subcategory) as call_subcategory,
        any_value(is_overdose) as is_overdose,
        any_value(is_classified) as is_classified,
        any_value(rule_id) as rule_id,
        any_value(rule_match_type) as rule_match_type,
        any_value(rule_pattern) as rule_pattern
    from spellings
    where description_key is not null
    group by call_type_key, description_key
)

select * from keys

union all

select {{ unknown_key() }}, null, null, 0, 'Unknown', 'Unknown', false, false, null, null, null
