-- Blocks publication when rules classify less than `call_type_min_coverage` of calls: a floor a real
-- feed does not fall under by accident (a renamed or emptied description field, a feed of another
-- city). New spellings below it are the warnings' business (assert_call_type_coverage_target,
-- assert_no_new_unclassified_call_descriptions).
select
    sum(call_count) filter (where is_classified) / sum(call_count) as classified_share,
    {{ var('call_type_min_coverage') }} as floor
from {{ ref('mart_call_type_coverage') }}
having sum(call_count) > 0
   and sum(call_count) filter (where is_classified) / sum(call_count) < {{ var('call_type_min_coverage') }}
