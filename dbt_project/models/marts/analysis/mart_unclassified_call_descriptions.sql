-- The classifier's to-do list: every description key no rule classifies (grain - one key), with
-- the spellings behind it, its calls, when it was first and last seen, and a suggested rule when a
-- classified key is spelled nearly the same (Jaro-Winkler similarity at least
-- `call_description_suggestion_similarity`): add the suggested row to call_type_rules, or a
-- spelling to call_description_spellings, after checking it.
with calls as (
    select * from {{ ref('int_calls_for_service__validated') }}
    where quarantine_reason is null
),

spellings as (
    select * from {{ ref('int_call_descriptions__classified') }}
),

unclassified as (
    select
        spellings.description_key,
        list(distinct spellings.description_raw order by spellings.description_raw) as raw_spellings,
        count(*) as calls,
        min(calls.partition_date) as first_seen,
        max(calls.partition_date) as last_seen
    from calls
    join spellings using (description_raw)
    where not spellings.is_classified and spellings.description_key is not null
    group by spellings.description_key
),

classified as (
    select distinct description_key, call_category, call_subcategory, rule_id
    from spellings
    where is_classified
),

nearest as (
    select
        u.description_key,
        c.description_key as similar_key,
        c.call_category,
        c.call_subcategory,
        c.rule_id,
        jaro_winkler_similarity(u.description_key, c.description_key) as similarity,
        row_number() over (
            partition by u.description_key
            order by jaro_winkler_similarity(u.description_key, c.description_key) desc, c.description_key
        ) as closeness_rank
    from unclassified as u
    cross join classified as c
)

select
    u.description_key,
    u.raw_spellings,
    u.calls,
    u.first_seen,
    u.last_seen,
    n.similar_key as suggested_like,
    n.similarity as suggestion_similarity,
    n.rule_id as suggested_like_rule_id,
    case when n.similar_key is not null
        then concat_ws(',', 'exact', u.description_key, n.call_category, n.call_subcategory,
                       case when n.call_category = 'overdose' then 'true' else 'false' end)
    end as suggested_rule
from unclassified as u
left join nearest as n
    on u.description_key = n.description_key
    and n.closeness_rank = 1
    and n.similarity >= {{ var('call_description_suggestion_similarity') }}
