{#- Fails when the newest `column_name` is more than `max_lag_days` older than `reference`
    (a SQL expression; default the newest raw partition of `reference_source`, else today). -#}
{% test recency(model, column_name, max_lag_days=1, reference=none) %}
with newest as (select max({{ column_name }}) as newest_value from {{ model }})
select newest_value, ({{ reference or 'current_date' }}) as reference_value
from newest
where newest_value is null
   or cast(newest_value as date) < cast(({{ reference or 'current_date' }}) as date) - interval {{ max_lag_days }} day
{% endtest %}
