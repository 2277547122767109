-- Every rule of call_type_rules must be the rule that classifies at least one example of
-- call_type_rule_examples: a rule without one is untested, or shadowed by an earlier rule and dead.
{{ config(meta={'dagster': {'ref': {'name': 'call_type_rules'}}}) }}
with examples as (
    select description as description_raw from {{ ref('call_type_rule_examples') }}
),

classified as (
    {{ classify_call_descriptions('examples') }}
),

rules as (
    select * from {{ ref('call_type_rules') }}
)

select rules.rule_id, rules.match_type, rules.pattern
from rules
where rules.rule_id not in (select rule_id from classified where rule_id is not null)
