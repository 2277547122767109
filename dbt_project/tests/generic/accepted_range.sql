{#- Fails for every row whose value lies outside [min_value, max_value] (NULLs pass;
    combine with not_null). `inclusive: false` makes both bounds strict. -#}
{% test accepted_range(model, column_name, min_value=none, max_value=none, inclusive=true) %}
select *
from {{ model }}
where {{ column_name }} is not null
  and (
    {%- if min_value is not none %} {{ column_name }} {{ '<' if inclusive else '<=' }} {{ min_value }}{% endif %}
    {%- if min_value is not none and max_value is not none %} or{% endif %}
    {%- if max_value is not none %} {{ column_name }} {{ '>' if inclusive else '>=' }} {{ max_value }}{% endif %}
    {%- if min_value is none and max_value is none %} false{% endif %}
  )
{% endtest %}
