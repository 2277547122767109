{{ config(severity='warn') }}
-- Warns (does not block) with the list of description keys no rule classifies that the feed first
-- sent in the last `call_description_new_days` days of loaded calls: new spellings to review.
with unclassified as (
    select * from {{ ref('mart_unclassified_call_descriptions') }}
),

latest as (
    select max(last_seen) as day from unclassified
)

select
    unclassified.description_key,
    unclassified.raw_spellings,
    unclassified.calls,
    unclassified.first_seen,
    unclassified.suggested_rule
from unclassified, latest
where unclassified.first_seen > latest.day - {{ var('call_description_new_days') }}
