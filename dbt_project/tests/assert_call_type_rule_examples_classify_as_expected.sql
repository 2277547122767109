-- Every example of the call_type_rule_examples seed (spellings the feed sends, most from public
-- sources) must come out of the spellings and rules seeds with its expected category and
-- subcategory. A changed rule that reclassifies an example fails here, naming it.
with examples as (
    select description as description_raw, category, subcategory from {{ ref('call_type_rule_examples') }}
),

keyed as (
    {{ call_description_keys('examples') }}
),

keys as (
    select distinct description_key from keyed
),

classified as (
    {{ classify_call_description_keys('keys') }}
)

select
    examples.description_raw,
    keyed.description_key,
    examples.category as expected_category,
    examples.subcategory as expected_subcategory,
    classified.category,
    classified.subcategory,
    classified.rule_id
from examples
join keyed using (description_raw)
left join classified using (description_key)
where classified.category is distinct from examples.category
   or classified.subcategory is distinct from examples.subcategory
