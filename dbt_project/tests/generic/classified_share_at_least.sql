{#- Fails when rules classify less than `minimum` of the calls of a coverage model (columns
    call_count and is_classified), returning the share and the minimum. -#}
{% test classified_share_at_least(model, minimum) %}
select
    sum(call_count) filter (where is_classified) / sum(call_count) as classified_share,
    {{ minimum }} as minimum
from {{ model }}
having sum(call_count) > 0
   and sum(call_count) filter (where is_classified) / sum(call_count) < {{ minimum }}
{% endtest %}
