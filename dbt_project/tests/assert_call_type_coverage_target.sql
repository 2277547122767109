{{ config(severity='warn') }}
-- Warns (does not block) when rules classify less than `call_type_target_coverage` of calls: time to
-- read mart_unclassified_call_descriptions and add rules or spellings.
select
    sum(call_count) filter (where is_classified) / sum(call_count) as classified_share,
    {{ var('call_type_target_coverage') }} as target
from {{ ref('mart_call_type_coverage') }}
having sum(call_count) > 0
   and sum(call_count) filter (where is_classified) / sum(call_count) < {{ var('call_type_target_coverage') }}
