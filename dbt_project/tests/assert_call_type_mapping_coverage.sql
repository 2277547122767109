-- Fails when the call_type_mapping seed classifies less than `call_type_min_coverage` of calls.
select sum(call_count) filter (where is_mapped) / sum(call_count) as mapped_share
from {{ ref('mart_call_type_coverage') }}
having sum(call_count) > 0
   and sum(call_count) filter (where is_mapped) / sum(call_count) < {{ var('call_type_min_coverage') }}
