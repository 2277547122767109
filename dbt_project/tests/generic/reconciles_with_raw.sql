{#- Fails for every load partition where raw rows <> rows in this fact + rows in `quarantine`:
    nothing may be dropped or duplicated between raw and the fact table. -#}
{% test reconciles_with_raw(model, raw, quarantine, partition_column='partition_date') %}
with raw_rows as (
    select _partition_date as partition_date, count(*) as n from {{ raw }} group by 1
), fact_rows as (
    select {{ partition_column }} as partition_date, count(*) as n from {{ model }} group by 1
), quarantined_rows as (
    select partition_date, count(*) as n from {{ quarantine }} group by 1
)
select
    coalesce(r.partition_date, f.partition_date, q.partition_date) as partition_date,
    coalesce(r.n, 0) as raw_rows, coalesce(f.n, 0) as fact_rows, coalesce(q.n, 0) as quarantined_rows
from raw_rows as r
full join fact_rows as f using (partition_date)
full join quarantined_rows as q using (partition_date)
where coalesce(r.n, 0) <> coalesce(f.n, 0) + coalesce(q.n, 0)
{% endtest %}
