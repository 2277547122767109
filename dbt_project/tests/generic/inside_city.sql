{#- Fails for every row whose point (latitude, longitude columns) lies outside the quality gate's
    box around the city (macro inside_city). Rows without a point pass (combine with not_null). -#}
{% test inside_city(model, column_name, longitude) %}
select *
from {{ model }}
where {{ column_name }} is not null and {{ longitude }} is not null
  and not {{ inside_city(column_name, longitude) }}
{% endtest %}
