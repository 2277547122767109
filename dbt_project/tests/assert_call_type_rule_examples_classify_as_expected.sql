-- Every example of the call_type_rule_examples seed (spellings the feed sends, most from public
-- sources) must come out of the spellings and rules seeds with its expected category and
-- subcategory. A changed rule that reclassifies an example fails here, naming it.
{{ config(meta={'dagster': {'ref': {'name': 'call_type_rules'}}}) }}
with examples as (
    select description as description_raw, category, subcategory from {{ ref('call_type_rule_examples') }}
),

classified as (
    {{ classify_call_descriptions('examples') }}
)

select
    examples.description_raw,
    classified.description_key,
    examples.category as expected_category,
    examples.subcategory as expected_subcategory,
    classified.category,
    classified.subcategory,
    classified.rule_id
from examples
join classified using (description_raw)
where classified.category is distinct from examples.category
   or classified.subcategory is distinct from examples.subcategory
